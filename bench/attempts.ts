/**
 * Retry-runner benchmark: with N open cases (10,000 and 100,000 by default, side by side) and the
 * sandbox answering in ~50 ms, let `RATE` attempts per second fall due for `SECONDS` seconds and
 * measure attempts executed per second, lateness (actual start minus planned start) p50/p99, the
 * worker's peak RSS, and the database work per attempt. Prints figures, not pass/fail.
 *
 *   node bench/attempts.ts [--sizes 10000,100000] [--rate 200] [--seconds 15]
 *
 * Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) to create and drop one
 * database per size. The sandbox runs in a child process so its memory is not counted as ours.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { systemClock } from '../src/clock.ts';
import { connect } from '../src/db.ts';
import { defaultPolicy } from '../src/dunning/policy.ts';
import { startRetryWorkers } from '../src/dunning/runner.ts';
import { savePolicy } from '../src/dunning/scheduler.ts';
import { createLogger } from '../src/log.ts';
import { migrate } from '../src/migrate.ts';
import { QUEUES, startQueue } from '../src/queue.ts';
import { startSandbox } from '../src/sandbox/index.ts';
import { createStripeClient } from '../src/stripe/client.ts';
import { createThrottle } from '../src/stripe/throttle.ts';

interface SandboxInvoice { id: string; customer: string }
interface SandboxInfo { host: string; port: number; apiKey: string; invoices: SandboxInvoice[] }

/** Child mode: a sandbox with `count` failed invoices (30 % will pay on retry), then wait. */
async function sandboxChild(count: number): Promise<void> {
  const sandbox = await startSandbox({ clock: systemClock, seed: 42, latencyMs: 50 });
  const invoices: SandboxInvoice[] = [];
  for (let i = 0; i < count; i += 1) {
    const c = await sandbox.createCustomer({
      email: `b${i}@example.com`, name: `B ${i}`, country: 'US', timeZone: 'America/New_York',
      card: { brand: 'visa', failure: 'generic_decline', expMonth: 1, expYear: 2030 },
    });
    const inv = await sandbox.createFailingInvoice(c.id, { amount: 1_000 + (i % 5_000), currency: 'usd', subscription: true });
    if (i % 10 < 3) await sandbox.updateCard(c.id, { brand: 'visa', failure: null, expMonth: 1, expYear: 2031 });
    invoices.push({ id: inv.id, customer: c.id });
  }
  process.stdout.write(JSON.stringify({ host: sandbox.host, port: sandbox.port, apiKey: sandbox.apiKey, invoices } satisfies SandboxInfo) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => void sandbox.stop().then(() => process.exit(0)));
}

async function startSandboxChild(count: number): Promise<{ child: ChildProcess; info: SandboxInfo }> {
  const child = spawn(process.execPath, [import.meta.filename, '--sandbox-child', String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const info = await new Promise<SandboxInfo>((resolve, reject) => {
    lines.once('line', (line) => resolve(JSON.parse(line) as SandboxInfo));
    child.once('exit', (code) => reject(new Error(`sandbox child exited with ${code}`)));
  });
  return { child, info };
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface DbStats { xact: number; blksHit: number; blksRead: number; tupReturned: number; tupFetched: number }

async function dbStats(adminUrl: string, name: string): Promise<DbStats> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin`select pg_stat_clear_snapshot()`;
    const [r] = await admin`
      select xact_commit + xact_rollback as xact, blks_hit, blks_read, tup_returned, tup_fetched
        from pg_stat_database where datname = ${name}`;
    return { xact: Number(r!.xact), blksHit: Number(r!.blks_hit), blksRead: Number(r!.blks_read), tupReturned: Number(r!.tup_returned), tupFetched: Number(r!.tup_fetched) };
  } finally {
    await admin.end();
  }
}

export interface Result {
  openCases: number;
  due: number;
  executed: number;
  perSecond: number;
  latenessP50: number;
  latenessP99: number;
  latenessMax: number;
  peakRssMb: number;
  statementsPerAttempt: number;
  xactPerAttempt: number;
  blocksPerAttempt: number;
  tuplesPerAttempt: number;
  outcomes: Record<string, number>;
}

async function runOne(adminUrl: string, size: number, rate: number, seconds: number): Promise<Result> {
  const log = createLogger('silent');
  const name = `dunning_bench_${size}_${process.pid}`;
  const admin = connect(adminUrl, { max: 1 });
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.unsafe(`create database "${name}"`);
  const url = withDatabase(adminUrl, name);
  const setup = connect(url, { max: 4 });
  await migrate(setup, log);
  const boss = await startQueue(url, log, { eventMaxTries: 3 });
  const due = rate * seconds;
  process.stderr.write(`[${size}] starting sandbox with ${due} failed invoices...\n`);
  const { child, info } = await startSandboxChild(due);
  const policy = defaultPolicy();
  await savePolicy(setup, policy);

  process.stderr.write(`[${size}] seeding ${size} open cases...\n`);
  const background = size - due;
  await setup`insert into customers (id, country, time_zone, stripe_updated_at)
              select 'cus_bench_' || g, 'US', 'America/New_York', now() from generate_series(1, ${Math.ceil(background / 2)}) g`;
  await setup`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_attempt_count, stripe_created, stripe_updated_at)
              select 'in_bench_' || g, 'cus_bench_' || (1 + g % ${Math.ceil(background / 2)}), 'open', 'usd', 1000 + g % 5000, 1000 + g % 5000, 1,
                     now() - interval '1 day', now() from generate_series(1, ${background}) g`;
  const ids = info.invoices.map((i) => i.id);
  const customers = info.invoices.map((i) => i.customer);
  await setup`insert into customers (id, country, time_zone, stripe_updated_at)
              select c, 'US', 'America/New_York', now() from unnest(${customers}::text[]) c`;
  await setup`insert into invoices (id, customer_id, subscription_id, status, currency, amount_due, amount_remaining, stripe_attempt_count, stripe_created, stripe_updated_at)
              select i, c, null, 'open', 'usd', 1000, 1000, 1, now() - interval '1 day', now() from unnest(${ids}::text[], ${customers}::text[]) as u(i, c)`;
  await setup`insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at)
              select id, customer_id, currency, amount_due, ${policy.version}, 'smart', now() - interval '1 day' from invoices`;
  await setup`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, payment_method, card_brand, decline_code, failure_code)
              select id, invoice_id, 1, 'stripe', 'declined', opened_at, opened_at, null, 'visa', 'generic_decline', 'card_declined' from dunning_cases`;
  // Background cases: their next attempt is days away (a job waits in pg-boss for each).
  const far = await setup<{ id: string; invoice_id: string; planned_at: Date }[]>`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, idempotency_key)
    select id, invoice_id, 2, 'scheduled', 'planned', now() + (1 + id % 7) * interval '1 day', 'bench: later', 'dunning:' || invoice_id || ':2'
      from dunning_cases where invoice_id like 'in_bench_%'
    returning id::text, invoice_id, planned_at`;
  // Due cases: RATE per second, starting a few seconds from now.
  const t0 = Date.now() + 4_000;
  const near = await setup<{ id: string; invoice_id: string; planned_at: Date }[]>`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, idempotency_key)
    select c.id, c.invoice_id, 2, 'scheduled', 'planned',
           to_timestamp((${t0} + (u.n - 1) * 1000.0 / ${rate}) / 1000), 'bench: due', 'dunning:' || c.invoice_id || ':2'
      from unnest(${ids}::text[]) with ordinality as u(i, n) join dunning_cases c on c.invoice_id = u.i
    returning id::text, invoice_id, planned_at`;
  await setup`update dunning_cases c set next_attempt_at = a.planned_at, next_attempt_reason = a.plan_reason
                from payment_attempts a where a.invoice_id = c.invoice_id and a.status = 'planned'`;
  for (let i = 0; i < far.length; i += 5_000) {
    await boss.insert(QUEUES.attempts, far.slice(i, i + 5_000).map((a) => ({ data: { attemptId: Number(a.id) }, startAfter: a.planned_at, singletonKey: a.invoice_id })));
  }
  await boss.insert(QUEUES.attempts, near.map((a) => ({ data: { attemptId: Number(a.id) }, startAfter: a.planned_at, singletonKey: a.invoice_id })));
  await setup.unsafe('vacuum analyze');
  if (Date.now() > t0 - 500) process.stderr.write(`[${size}] warning: seeding took longer than the lead time; early attempts start late\n`);

  let statements = 0;
  // The runner's own pool, counting statements (pg-boss has its own pool; its work shows in pg_stat).
  const sql = postgres(url, {
    max: 10, onnotice: () => {}, types: { bigint: postgres.BigInt }, transform: { undefined: null },
    debug: () => {
      statements += 1;
    },
  });
  const stripe = createStripeClient({ stripeSecretKey: info.apiKey, stripeApiBase: { protocol: 'http', host: info.host, port: info.port } }, { timeoutMs: 10_000 });
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 100);
  const before = await dbStats(adminUrl, name);
  const stop = await startRetryWorkers({
    sql, boss, stripe, clock: systemClock, log, policy,
    config: { stripeRequestsPerSecond: 100, defaultTimeZone: 'UTC', workerConcurrency: 25 },
    throttle: createThrottle(2_000, { burst: 200 }), batchSize: 100, pollingIntervalSeconds: 0.5,
  });
  process.stderr.write(`[${size}] running: ${due} attempts due over ${seconds} s\n`);
  const deadline = Date.now() + (seconds + 90) * 1000;
  for (;;) {
    const [r] = await setup`select count(*)::int as n from payment_attempts where id = any(${near.map((a) => a.id)}::bigint[]) and status in ('planned', 'in_flight')`;
    if (r!.n === 0 || Date.now() > deadline) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  await stop();
  clearInterval(sampler);
  await sql.end({ timeout: 5 });
  await boss.stop({ graceful: true, timeout: 5_000 });
  // Backends flush their statistics when they end; give the collector a moment.
  await new Promise((res) => setTimeout(res, 1_500));
  const after = await dbStats(adminUrl, name);

  const rows = await setup<{ status: string; late_ms: number | null; started: Date | null; finished: Date | null }[]>`
    select status, extract(epoch from (started_at - planned_at)) * 1000 as late_ms, started_at as started, finished_at as finished
      from payment_attempts where id = any(${near.map((a) => a.id)}::bigint[])`;
  const outcomes: Record<string, number> = {};
  for (const r of rows) outcomes[r.status] = (outcomes[r.status] ?? 0) + 1;
  const done = rows.filter((r) => r.finished !== null);
  const lateness = rows.filter((r) => r.late_ms !== null).map((r) => Number(r.late_ms)).sort((a, b) => a - b);
  const first = Math.min(...done.map((r) => r.started!.getTime()));
  const last = Math.max(...done.map((r) => r.finished!.getTime()));
  const executed = done.length;

  await setup.end();
  child.stdin!.end();
  await new Promise((res) => child.once('exit', res));
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
  return {
    openCases: size, due, executed,
    perSecond: executed / ((last - first) / 1000),
    latenessP50: percentile(lateness, 50), latenessP99: percentile(lateness, 99), latenessMax: lateness[lateness.length - 1] ?? NaN,
    peakRssMb: peakRss / 2 ** 20,
    statementsPerAttempt: statements / executed,
    xactPerAttempt: (after.xact - before.xact) / executed,
    blocksPerAttempt: (after.blksHit + after.blksRead - before.blksHit - before.blksRead) / executed,
    tuplesPerAttempt: (after.tupReturned + after.tupFetched - before.tupReturned - before.tupFetched) / executed,
    outcomes,
  };
}

function report(results: Result[]): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const rows: Array<[string, (r: Result) => string]> = [
    ['open cases', (r) => String(r.openCases)],
    ['attempts due', (r) => String(r.due)],
    ['attempts executed', (r) => String(r.executed)],
    ['executed per second', (r) => f(r.perSecond, 1)],
    ['lateness p50 (ms)', (r) => f(r.latenessP50)],
    ['lateness p99 (ms)', (r) => f(r.latenessP99)],
    ['lateness max (ms)', (r) => f(r.latenessMax)],
    ['worker peak RSS (MB)', (r) => f(r.peakRssMb, 1)],
    ['runner SQL statements / attempt', (r) => f(r.statementsPerAttempt, 1)],
    ['transactions / attempt (all, incl. pg-boss)', (r) => f(r.xactPerAttempt, 1)],
    ['buffer accesses / attempt (all)', (r) => f(r.blocksPerAttempt, 0)],
    ['tuples read / attempt (all)', (r) => f(r.tuplesPerAttempt, 0)],
    ['outcomes', (r) => Object.entries(r.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, fn]) => `${label.padEnd(width)}  ${results.map((r) => fn(r).padStart(14)).join('  ')}`).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { sizes: { type: 'string', default: '10000,100000' }, rate: { type: 'string', default: '200' }, seconds: { type: 'string', default: '15' } },
    strict: true,
  });
  const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const sizes = (values.sizes ?? '').split(',').map(Number);
  const results: Result[] = [];
  for (const size of sizes) results.push(await runOne(adminUrl, size, Number(values.rate), Number(values.seconds)));
  console.log(report(results));
}

if (process.argv[2] === '--sandbox-child') {
  await sandboxChild(Number(process.argv[3]));
} else {
  await main();
  process.exit(0);
}

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

interface SandboxInvoice {
  id: string;
  customer: string;
}
interface SandboxInfo {
  host: string;
  port: number;
  apiKey: string;
  invoices: SandboxInvoice[];
}

/** Child mode: a sandbox with `count` failed invoices (30 % will pay on retry), then wait. */
async function sandboxChild(count: number): Promise<void> {
  const sandbox = await startSandbox({ clock: systemClock, seed: 42, latencyMs: 50 });
  const invoices: SandboxInvoice[] = [];
  for (let i = 0; i < count; i += 1) {
    const c = await sandbox.createCustomer({
      email: `b${i}@example.com`,
      name: `B ${i}`,
      country: 'US',
      timeZone: 'America/New_York',
      card: { brand: 'visa', failure: 'generic_decline', expMonth: 1, expYear: 2030 },
    });
    const inv = await sandbox.createFailingInvoice(c.id, {
      amount: 1_000 + (i % 5_000),
      currency: 'usd',
      subscription: true,
    });
    if (i % 10 < 3) await sandbox.updateCard(c.id, { brand: 'visa', failure: null, expMonth: 1, expYear: 2031 });
    invoices.push({ id: inv.id, customer: c.id });
  }
  process.stdout.write(
    JSON.stringify({ host: sandbox.host, port: sandbox.port, apiKey: sandbox.apiKey, invoices } satisfies SandboxInfo) +
      '\n',
  );
  process.stdin.resume();
  process.stdin.on('end', () => void sandbox.stop().then(() => process.exit(0)));
}

async function startSandboxChild(count: number): Promise<{ child: ChildProcess; info: SandboxInfo }> {
  const child = spawn(process.execPath, [import.meta.filename, '--sandbox-child', String(count)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const info = await new Promise<SandboxInfo>((resolve, reject) => {
    lines.once('line', (line) => resolve(JSON.parse(line) as SandboxInfo));
    child.once('exit', (code) => reject(new Error(`sandbox child exited with ${code}`)));
  });
  return { child, info };
}

/** Node flags for the worker process (BENCH_WORKER_FLAGS, space-separated), e.g. heap limits. */
const WORKER_NODE_FLAGS = (process.env.BENCH_WORKER_FLAGS ?? '').split(' ').filter(Boolean);

interface WorkerReport {
  statements: number;
  peakRssMb: number;
  idleRssMb: number;
  peakHeapMb: number;
}

/**
 * Child mode: only the retry workers, so the RSS measured is the worker's, not the seeding's.
 * Prints `ready`, then on end of stdin stops and prints its figures as JSON.
 */
async function workerChild(url: string, sandbox: { host: string; port: number; apiKey: string }): Promise<void> {
  const log = createLogger('silent');
  // Counting statements through postgres.js's debug hook makes it capture a stack trace per query
  // (`new Error()`), which cost this process more CPU than the luxon and JSON work of an attempt.
  // Production runs without the hook; without stacks here the count stays and the cost goes.
  Error.stackTraceLimit = 0;
  let statements = 0;
  // The runner's own pool, counting statements (pg-boss has its own pool; its work shows in pg_stat).
  const sql = postgres(url, {
    max: 10,
    onnotice: () => {},
    types: { bigint: postgres.BigInt },
    transform: { undefined: null },
    debug: () => {
      statements += 1;
    },
  });
  const boss = await startQueue(url, log);
  const stripe = createStripeClient(
    { stripeSecretKey: sandbox.apiKey, stripeApiBase: { protocol: 'http', host: sandbox.host, port: sandbox.port } },
    { timeoutMs: 10_000 },
  );
  const stop = await startRetryWorkers({
    sql,
    boss,
    stripe,
    clock: systemClock,
    log,
    policy: defaultPolicy(),
    config: { stripeRequestsPerSecond: 100, defaultTimeZone: 'UTC', workerConcurrency: 25 },
    throttle: createThrottle(2_000, { burst: 200 }),
    localConcurrency: 8,
    batchSize: 10,
    pollingIntervalSeconds: 0.5,
  });
  const idleRss = process.memoryUsage().rss;
  let peakRss = idleRss;
  let peakHeap = 0;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
    if (process.env.BENCH_DEBUG && m.rss === peakRss) process.stderr.write(`${JSON.stringify(m)}\n`);
  }, 100);
  statements = 0;
  process.stdout.write('ready\n');
  process.stdin.resume();
  await new Promise((res) => process.stdin.once('end', res));
  clearInterval(sampler);
  await stop();
  await boss.stop({ graceful: true, timeout: 5_000 });
  await sql.end({ timeout: 5 });
  process.stdout.write(
    JSON.stringify({
      statements,
      peakRssMb: peakRss / 2 ** 20,
      idleRssMb: idleRss / 2 ** 20,
      peakHeapMb: peakHeap / 2 ** 20,
    } satisfies WorkerReport) + '\n',
  );
  process.exit(0);
}

async function startWorkerChild(
  url: string,
  info: SandboxInfo,
): Promise<{ child: ChildProcess; finish(): Promise<WorkerReport> }> {
  const child = spawn(
    process.execPath,
    [
      ...WORKER_NODE_FLAGS,
      import.meta.filename,
      '--worker',
      url,
      JSON.stringify({ host: info.host, port: info.port, apiKey: info.apiKey }),
    ],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout });
  const queue: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  lines.on('line', (line) => {
    const w = waiters.shift();
    if (w) w(line);
    else queue.push(line);
  });
  const next = () =>
    new Promise<string>((resolve) => {
      const line = queue.shift();
      if (line !== undefined) resolve(line);
      else waiters.push(resolve);
    });
  const ready = await next();
  if (ready !== 'ready') throw new Error(`worker child said ${ready}`);
  return {
    child,
    async finish() {
      child.stdin.end();
      return JSON.parse(await next()) as WorkerReport;
    },
  };
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

interface DbStats {
  xact: number;
  ourBlocks: number;
  queueBlocks: number;
  ourSeqScans: number;
  ourIdxScans: number;
}

/** Buffer accesses per schema: `public` is the runner's own tables, `pgboss` the queue's. */
async function dbStats(url: string): Promise<DbStats> {
  const db = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [x] =
      await db`select xact_commit + xact_rollback as xact from pg_stat_database where datname = current_database()`;
    const io = await db`
      select schemaname, sum(heap_blks_hit + heap_blks_read + coalesce(idx_blks_hit, 0) + coalesce(idx_blks_read, 0)
                             + coalesce(toast_blks_hit, 0) + coalesce(toast_blks_read, 0)) as blocks
        from pg_statio_user_tables group by schemaname`;
    // The tables that grow with the number of cases (the one-row policies table is read by a
    // foreign-key check with a sequential scan, which is as cheap as it gets).
    const [scans] = await db`
      select sum(seq_scan) as seq, sum(coalesce(idx_scan, 0)) as idx from pg_stat_user_tables
       where schemaname = 'public' and relname in ('payment_attempts', 'dunning_cases', 'invoices', 'customers')`;
    const blocks = (schema: string) => Number(io.find((r) => r.schemaname === schema)?.blocks ?? 0);
    return {
      xact: Number(x!.xact),
      ourBlocks: blocks('public'),
      queueBlocks: blocks('pgboss'),
      ourSeqScans: Number(scans!.seq),
      ourIdxScans: Number(scans!.idx),
    };
  } finally {
    await db.end();
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
  idleRssMb: number;
  peakRssMb: number;
  peakHeapMb: number;
  statementsPerAttempt: number;
  xactPerAttempt: number;
  ourBlocksPerAttempt: number;
  queueBlocksPerAttempt: number;
  ourSeqScans: number;
  outcomes: Record<string, number>;
}

type Attempt = { id: string; invoice_id: string; planned_at: Date };

async function runOne(adminUrl: string, size: number, rate: number, seconds: number): Promise<Result> {
  const log = createLogger('silent');
  const name = `dunning_bench_${size}_${process.pid}`;
  const admin = connect(adminUrl, { max: 1 });
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.unsafe(`create database "${name}"`);
  const url = withDatabase(adminUrl, name);
  const setup = connect(url, { max: 4 });
  await migrate(setup, log);
  const boss = await startQueue(url, log);
  const due = rate * seconds;
  process.stderr.write(`[${size}] starting sandbox with ${due} failed invoices...\n`);
  const { child, info } = await startSandboxChild(due);
  const policy = defaultPolicy();
  await savePolicy(setup, policy);

  process.stderr.write(`[${size}] seeding ${size} open cases...\n`);
  const background = size - due;
  const half = Math.ceil(background / 2);
  await setup`insert into customers (id, country, time_zone, stripe_updated_at)
              select 'cus_bench_' || g, 'US', 'America/New_York', now() from generate_series(1, ${half}) g`;
  await setup`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_attempt_count, stripe_created, stripe_updated_at)
              select 'in_bench_' || g, 'cus_bench_' || (1 + g % ${half}), 'open', 'usd', 1000 + g % 5000, 1000 + g % 5000, 1,
                     now() - interval '1 day', now() from generate_series(1, ${background}) g`;
  const ids = info.invoices.map((i) => i.id);
  const customers = info.invoices.map((i) => i.customer);
  await setup`insert into customers (id, country, time_zone, stripe_updated_at)
              select c, 'US', 'America/New_York', now() from unnest(${customers}::text[]) c`;
  await setup`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_attempt_count, stripe_created, stripe_updated_at)
              select i, c, 'open', 'usd', 1000, 1000, 1, now() - interval '1 day', now() from unnest(${ids}::text[], ${customers}::text[]) as u(i, c)`;
  await setup`insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at)
              select id, customer_id, currency, amount_due, ${policy.version}, 'smart', now() - interval '1 day' from invoices`;
  await setup`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, card_brand, decline_code, failure_code)
              select id, invoice_id, 1, 'stripe', 'declined', opened_at, opened_at, 'visa', 'generic_decline', 'card_declined' from dunning_cases`;
  // Background cases: their next attempt is days away, and a job waits in pg-boss for each.
  for (let from = 1; from <= background; from += 10_000) {
    const far = await setup<Attempt[]>`
      insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, idempotency_key)
      select id, invoice_id, 2, 'scheduled', 'planned', now() + (1 + id % 7) * interval '1 day', 'bench: later', 'dunning:' || invoice_id || ':2'
        from dunning_cases where id between ${from} and ${from + 9_999} and invoice_id like 'in_bench_%'
      returning id::text, invoice_id, planned_at`;
    await boss.insert(
      QUEUES.attempts,
      far.map((a) => ({ data: { attemptId: Number(a.id) }, startAfter: a.planned_at, singletonKey: a.invoice_id })),
    );
  }
  await setup.unsafe('vacuum analyze');
  await boss.stop({ graceful: true, timeout: 5_000 });

  const worker = await startWorkerChild(url, info);
  // Due cases: RATE per second, from two seconds after the worker is up.
  const t0 = Date.now() + 2_000;
  // One backend, closed before the first snapshot: a backend flushes its statistics when it exits,
  // so the seeding does not leak into the figures measured.
  const seeder = connect(url, { max: 1 });
  const near = await seeder<Attempt[]>`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, idempotency_key)
    select c.id, c.invoice_id, 2, 'scheduled', 'planned',
           to_timestamp((${t0} + (u.n - 1) * 1000.0 / ${rate}) / 1000), 'bench: due', 'dunning:' || c.invoice_id || ':2'
      from unnest(${ids}::text[]) with ordinality as u(i, n) join dunning_cases c on c.invoice_id = u.i
    returning id::text, invoice_id, planned_at`;
  await seeder`update dunning_cases c set next_attempt_at = a.planned_at, next_attempt_reason = a.plan_reason
                 from payment_attempts a where a.invoice_id = c.invoice_id and a.status = 'planned' and a.id >= ${near[0]!.id}`;
  await seeder.end();
  await setup.end();
  const sender = await startQueue(url, log);
  await sender.insert(
    QUEUES.attempts,
    near.map((a) => ({ data: { attemptId: Number(a.id) }, startAfter: a.planned_at, singletonKey: a.invoice_id })),
  );
  await sender.stop({ graceful: true, timeout: 5_000 });
  if (Date.now() > t0) process.stderr.write(`[${size}] warning: due attempts were enqueued after the first was due\n`);
  const before = await dbStats(url);

  process.stderr.write(`[${size}] running: ${due} attempts due over ${seconds} s\n`);
  const nearIds = near.map((a) => a.id);
  const lo = near[0]!.id;
  const hi = near[near.length - 1]!.id;
  // Watch sparingly (a range on the primary key, once a second, only once the window is over), so
  // the watching barely shows in the database figures.
  const watch = connect(url, { max: 1 });
  await new Promise((res) => setTimeout(res, Math.max(0, t0 + seconds * 1000 - Date.now())));
  const deadline = Date.now() + 90_000;
  for (;;) {
    const [r] =
      await watch`select count(*)::int as n from payment_attempts where id between ${lo} and ${hi} and status in ('planned', 'in_flight')`;
    if (r!.n === 0 || Date.now() > deadline) break;
    await new Promise((res) => setTimeout(res, 1_000));
  }
  await watch.end();
  const figures = await worker.finish();
  // Backends flush their statistics when they end; give the collector a moment.
  await new Promise((res) => setTimeout(res, 1_500));
  const after = await dbStats(url);

  const results = connect(url, { max: 1 });
  const rows = await results<{ status: string; late_ms: number | null; started: Date | null; finished: Date | null }[]>`
    select status, extract(epoch from (started_at - planned_at)) * 1000 as late_ms, started_at as started, finished_at as finished
      from payment_attempts where id = any(${nearIds}::bigint[])`;
  await results.end();
  const outcomes: Record<string, number> = {};
  for (const r of rows) outcomes[r.status] = (outcomes[r.status] ?? 0) + 1;
  const done = rows.filter((r) => r.finished !== null);
  const lateness = rows
    .filter((r) => r.late_ms !== null)
    .map((r) => Number(r.late_ms))
    .sort((a, b) => a - b);
  const first = Math.min(...done.map((r) => r.started!.getTime()));
  const last = Math.max(...done.map((r) => r.finished!.getTime()));
  const executed = done.length;

  child.stdin!.end();
  await new Promise((res) => child.once('exit', res));
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
  return {
    openCases: size,
    due,
    executed,
    perSecond: executed / ((last - first) / 1000),
    latenessP50: percentile(lateness, 50),
    latenessP99: percentile(lateness, 99),
    latenessMax: lateness[lateness.length - 1] ?? NaN,
    idleRssMb: figures.idleRssMb,
    peakRssMb: figures.peakRssMb,
    peakHeapMb: figures.peakHeapMb,
    statementsPerAttempt: figures.statements / executed,
    xactPerAttempt: (after.xact - before.xact) / executed,
    ourBlocksPerAttempt: (after.ourBlocks - before.ourBlocks) / executed,
    queueBlocksPerAttempt: (after.queueBlocks - before.queueBlocks) / executed,
    ourSeqScans: after.ourSeqScans - before.ourSeqScans,
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
    ['worker RSS idle / peak (MB)', (r) => `${f(r.idleRssMb)} / ${f(r.peakRssMb)}`],
    ['worker peak JS heap used (MB)', (r) => f(r.peakHeapMb)],
    ['runner SQL statements / attempt', (r) => f(r.statementsPerAttempt, 1)],
    ['transactions / attempt (incl. pg-boss)', (r) => f(r.xactPerAttempt, 1)],
    ['buffers / attempt, our tables', (r) => f(r.ourBlocksPerAttempt, 1)],
    ['buffers / attempt, pg-boss tables', (r) => f(r.queueBlocksPerAttempt, 1)],
    ['seq scans on cases/attempts/invoices/customers', (r) => String(r.ourSeqScans)],
    [
      'outcomes',
      (r) =>
        Object.entries(r.outcomes)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
    ],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows
    .map(([label, fn]) => `${label.padEnd(width)}  ${results.map((r) => fn(r).padStart(14)).join('  ')}`)
    .join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      sizes: { type: 'string', default: '10000,100000' },
      rate: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '15' },
    },
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
} else if (process.argv[2] === '--worker') {
  await workerChild(
    process.argv[3] ?? '',
    JSON.parse(process.argv[4] ?? '{}') as { host: string; port: number; apiKey: string },
  );
} else {
  await main();
  process.exit(0);
}

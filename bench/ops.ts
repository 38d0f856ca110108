/**
 * Benchmark: the /ops case list over 1,000,000 cases (about 400,000 open), page by page, with each
 * filter and search. Each query is timed next to the same page fetched with OFFSET at the same
 * depth in the same run: the paging the list would have without its keyset.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/ops.ts [--cases N] [--reseed]
 *
 * Seeds a separate database `dunning_bench_ops` (reused on later runs when it already holds N
 * cases), then prints the median of several runs of each query. Target: every page under 300 ms.
 */
import { parseArgs } from 'node:util';
import { connect, databaseServer, withDatabase, type Sql } from '../src/db.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { migrate } from '../src/migrate.ts';
import { listCasePage } from '../src/ops/case-list.ts';
import { parseFilters, type CaseFilters } from '../src/ops/filters.ts';

const BATCH = 50_000;
const CUSTOMERS = 200_000;
const RUNS = 7;
const TARGET_MS = 300;
const NOW = new Date('2026-12-01T12:00:00Z');
const CATEGORIES = ['funds', 'generic', 'customer_action', 'generic', 'authentication', 'temporary'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { cases: { type: 'string', default: '1000000' }, reseed: { type: 'boolean', default: false } },
    strict: true,
  });
  const total = Number(values.cases);
  if (!Number.isInteger(total) || total < BATCH) throw new Error(`--cases: expected an integer of at least ${BATCH}`);
  const log = createLogger('warn');
  const server = await databaseServer(loadConfig(process.env), log);
  const adminUrl = server.url;
  const admin = connect(adminUrl, { max: 1 });
  const [exists] = await admin`select 1 from pg_database where datname = 'dunning_bench_ops'`;
  if (exists && values.reseed) await admin.unsafe('drop database dunning_bench_ops with (force)');
  if (!exists || values.reseed) await admin.unsafe('create database dunning_bench_ops');
  await admin.end();
  const sql = connect(withDatabase(adminUrl, 'dunning_bench_ops'), { max: 4 });
  try {
    await migrate(sql, log);
    const [{ n } = { n: 0 }] = await sql<{ n: number }[]>`select count(*)::int as n from dunning_cases`;
    if (n !== total) {
      if (n !== 0) throw new Error(`dunning_bench_ops holds ${n} cases, not ${total}: run with --reseed`);
      await seed(sql, total);
    } else {
      console.log(`reusing dunning_bench_ops with ${n.toLocaleString('en')} cases (--reseed to rebuild)`);
    }
    await time(sql);
  } finally {
    await sql.end({ timeout: 5 });
    await server.stop();
  }
}

/**
 * 40 % of cases open, amounts 5.00 to 660.00, three currencies, six decline categories; 1 % of open
 * cases paused and 0.1 % with a charge of unknown outcome; one customer in five has several cases.
 */
async function seed(sql: Sql, total: number): Promise<void> {
  await sql`insert into policies (version, body) values ('bench-a', '{}'), ('bench-b', '{}') on conflict do nothing`;
  await sql`
    insert into customers (id, email, name, stripe_updated_at)
    select 'cus_' || g, 'customer' || g || '@example' || (g % 97) || '.com', 'Customer ' || g, ${NOW}
    from generate_series(1, ${CUSTOMERS}::int) g`;
  const began = Date.now();
  for (let lo = 0; lo < total; lo += BATCH) {
    const hi = Math.min(total, lo + BATCH);
    await sql.begin(async (tx) => {
      await tx`set local synchronous_commit = off`;
      await tx`
        create temporary table batch on commit drop as
        select g, 'in_bench_' || g as invoice_id, 'cus_' || (1 + g % ${CUSTOMERS}::int) as customer_id,
          case when g % 10 < 6 then 'usd' when g % 10 < 9 then 'eur' else 'jpy' end as currency,
          500 + (hashint4(g) & 65535) as amount, (hashint4(g * 7) & 2147483647) % 1000 as roll,
          ${NOW}::timestamptz - ((hashint4(g * 3) & 2147483647) % (60 * 86400)) * interval '1 second' as opened_at
        from generate_series(${lo}::int, ${hi - 1}::int) g`;
      await tx`
        insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
        select invoice_id, customer_id, 'open', currency, amount, amount, opened_at, opened_at from batch`;
      await tx`
        with cases as (
          insert into dunning_cases (invoice_id, customer_id, currency, amount, status, policy_version, cohort, opened_at, closed_at,
            paused, last_decline_code, last_decline_category, next_attempt_at, next_attempt_reason)
          select invoice_id, customer_id, currency, amount,
            case when roll < 400 then 'open' when roll < 750 then 'recovered' else 'lost' end,
            case when g % 3 = 0 then 'bench-b' else 'bench-a' end, case when g % 10 = 0 then 'holdout' else 'smart' end,
            opened_at, case when roll < 400 then null else opened_at + interval '20 days' end,
            roll < 4, 'generic_decline', (${CATEGORIES}::text[])[1 + g % 6],
            case when roll < 396 then ${NOW}::timestamptz + ((roll % 240) - 20) * interval '1 hour' end,
            case when roll < 396 then 'planner: payday' end
          from batch
          returning id, invoice_id, status, opened_at
        )
        insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, decline_code, decline_category)
        select c.id, c.invoice_id, n, case when n = 1 then 'stripe' else 'scheduled' end,
          case when n = 2 and c.status = 'open' and c.id % 1000 = 7 then 'unknown' else 'declined' end,
          c.opened_at + (n - 1) * interval '3 days', c.opened_at + (n - 1) * interval '3 days', 'generic_decline', 'generic'
        from cases c cross join generate_series(1, 2) n`;
    });
    const secs = (Date.now() - began) / 1000;
    process.stdout.write(
      `seeded ${hi.toLocaleString('en')} / ${total.toLocaleString('en')} cases (${secs.toFixed(0)} s)\n`,
    );
  }
  console.log('vacuum analyze...');
  await sql`vacuum analyze`;
}

const med = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;

async function measure(fn: () => Promise<unknown>): Promise<number[]> {
  await fn(); // warm: both sides are timed warm
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return ms.sort((a, b) => a - b);
}

/** The same page by OFFSET: what the list would cost without the keyset. */
async function offsetPage(sql: Sql, f: CaseFilters, offset: number): Promise<unknown> {
  return sql`
    select c.id, c.invoice_id, cu.email, c.amount from dunning_cases c left join customers cu on cu.id = c.customer_id
     where c.status = 'open' and (${f.currency}::text is null or c.currency = ${f.currency})
     order by c.amount desc, c.id desc offset ${offset} limit 51`;
}

async function time(sql: Sql): Promise<void> {
  const [{ open } = { open: 0 }] = await sql<{ open: number }[]>`
    select count(*)::int as open from dunning_cases where status = 'open'`;
  console.log(`database: ${open.toLocaleString('en')} open cases`);
  // A cursor deep in the list: the row at `depth`, as if ops had paged that far.
  const depth = Math.floor(open / 2);
  const [mid] = await sql<{ amount: number; id: number }[]>`
    select amount::float8 as amount, id::float8 as id from dunning_cases where status = 'open'
     order by amount desc, id desc offset ${depth} limit 1`;
  const deep = `after=${mid!.amount}.${mid!.id}`;
  const [someone] = await sql<{ customer_id: string }[]>`
    select customer_id from dunning_cases where status = 'open' order by id limit 1`;
  const scenarios: Array<[string, string]> = [
    ['first page, all open cases', ''],
    [`page at depth ${depth.toLocaleString('en')}`, deep],
    ['currency=jpy, first page', 'currency=jpy'],
    ['currency=eur, deep page', `currency=eur&${deep}`],
    ['category=authentication', 'category=authentication'],
    ['category=merchant_error (no match)', 'category=merchant_error'],
    ['status=paused', 'status=paused'],
    ['status=needs_ops', 'status=needs_ops'],
    ['due=overdue', 'due=overdue'],
    ['due=none', 'due=none'],
    ['policy=bench-b & cohort=holdout', 'policy=bench-b&cohort=holdout'],
    ['search email prefix', 'q=customer12345@'],
    ['search customer id', `q=${someone!.customer_id}`],
    ['search invoice id', 'q=in_bench_4242'],
  ];
  let worst = 0;
  for (const [label, query] of scenarios) {
    const f = parseFilters(new URLSearchParams(query));
    let rows = 0;
    const ms = await measure(async () => {
      rows = (await listCasePage(sql, f, NOW)).rows.length;
    });
    worst = Math.max(worst, med(ms));
    console.log(
      `${label.padEnd(40)} ${String(rows).padStart(3)} rows  median ${med(ms).toFixed(1)} ms, max ${ms[ms.length - 1]!.toFixed(1)} ms`,
    );
  }
  const keysetDeep = await measure(() => listCasePage(sql, parseFilters(new URLSearchParams(deep)), NOW));
  const offsetDeep = await measure(() => offsetPage(sql, parseFilters(new URLSearchParams()), depth));
  console.log(
    `baseline: the same deep page by OFFSET ${depth.toLocaleString('en')}: median ${med(offsetDeep).toFixed(1)} ms; keyset ${med(keysetDeep).toFixed(1)} ms; ratio offset / keyset ${(med(offsetDeep) / med(keysetDeep)).toFixed(1)}`,
  );
  console.log(
    `target: every page under ${TARGET_MS} ms: ${worst < TARGET_MS ? 'met' : 'NOT met'} (slowest median ${worst.toFixed(1)} ms)`,
  );
  if (worst >= TARGET_MS) process.exitCode = 1;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

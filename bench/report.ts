/**
 * Benchmark: the monthly recovery report over 1,000,000 cases and 5,000,000 attempts, timed next
 * to a plain count(*) over the attempts table in the same run.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/report.ts [--cases N] [--reseed]
 *
 * Seeds a separate database `dunning_bench` (reused on later runs when it already holds N cases),
 * then prints the median of several runs of each query and their ratio. Without DATABASE_URL it
 * uses the embedded Postgres.
 */
import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import { connect, databaseServer, withDatabase, type Sql } from '../src/db.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { migrate } from '../src/migrate.ts';
import { loadReport } from '../src/reports/build.ts';
import { resolvePeriod } from '../src/reports/period.ts';

const BATCH = 50_000;
const ATTEMPTS_PER_CASE = 5;
const CUSTOMERS = 200_000;
const RUNS = 7;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { cases: { type: 'string', default: '1000000' }, reseed: { type: 'boolean', default: false } },
    strict: true,
  });
  const total = Number(values.cases);
  if (!Number.isInteger(total) || total < BATCH) throw new Error(`--cases: expected an integer of at least ${BATCH}`);
  const log = createLogger('warn');
  const config = loadConfig(process.env);
  const { url: adminUrl, stop } = await databaseServer(config, log);
  const admin = connect(adminUrl, { max: 1 });
  const [exists] = await admin`select 1 from pg_database where datname = 'dunning_bench'`;
  if (exists && values.reseed) await admin.unsafe('drop database dunning_bench with (force)');
  if (!exists || values.reseed) await admin.unsafe('create database dunning_bench');
  await admin.end();
  const sql = connect(withDatabase(adminUrl, 'dunning_bench'), { max: 12 });
  try {
    await migrate(sql, log);
    const now = DateTime.utc().startOf('day');
    const [{ n } = { n: 0 }] = await sql<{ n: number }[]>`select count(*)::int as n from dunning_cases`;
    if (n !== total) {
      if (n !== 0) throw new Error(`dunning_bench holds ${n} cases, not ${total}: run with --reseed`);
      await seed(sql, total, now);
    } else {
      console.log(`reusing dunning_bench with ${n.toLocaleString('en')} cases (--reseed to rebuild)`);
    }
    await time(sql, now);
  } finally {
    await sql.end({ timeout: 5 });
    await stop();
  }
}

/** Two years of cases ending today, spread evenly, three currencies, realistic outcomes. */
async function seed(sql: Sql, total: number, now: DateTime): Promise<void> {
  const spanSeconds = 730 * 86_400;
  const start = now.minus({ seconds: spanSeconds }).toJSDate();
  const nowDate = now.toJSDate();
  await sql`insert into policies (version, body) values ('bench', '{}') on conflict do nothing`;
  await sql`
    insert into subscriptions (id, customer_id, status, started_at, ended_at, cancellation_reason, stripe_updated_at)
    select 'sub_' || g, 'cus_' || g, case when g % 7 = 0 then 'canceled' else 'active' end,
      ${start}::timestamptz - (g % 365) * interval '1 day',
      case when g % 7 = 0 then ${start}::timestamptz + (g % 700) * interval '1 day' end,
      case when g % 7 = 0 then case when g % 2 = 0 then 'payment_failed' else 'cancellation_requested' end end,
      ${nowDate}
    from generate_series(1, ${CUSTOMERS}::int) g`;
  const began = Date.now();
  for (let lo = 0; lo < total; lo += BATCH) {
    const hi = Math.min(total, lo + BATCH);
    await sql.begin(async (tx) => {
      await tx`set local synchronous_commit = off`;
      await tx`
        create temporary table batch on commit drop as
        select g,
          'in_bench_' || g as invoice_id,
          'cus_' || (1 + g % ${CUSTOMERS}::int) as customer_id,
          case when g % 10 < 6 then 'usd' when g % 10 < 9 then 'eur' else 'jpy' end as currency,
          500 + (hashint4(g) & 65535) as amount,
          opened_at,
          roll,
          case when opened_at + (1 + (hashint4(g * 13) & 2147483647) % 25) * interval '1 day' > ${nowDate}::timestamptz then null
               else opened_at + (1 + (hashint4(g * 13) & 2147483647) % 25) * interval '1 day' end as closed_at
        from (
          select g, ${start}::timestamptz + (g::float8 / ${total}::float8 * ${spanSeconds}::float8) * interval '1 second' as opened_at,
            (hashint4(g * 7) & 2147483647) % 100 as roll
          from generate_series(${lo}::int, ${hi - 1}::int) g
        ) s`;
      await tx`
        insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
        select invoice_id, customer_id, 'open', currency, amount, amount, opened_at, opened_at from batch`;
      await tx`
        with cases as (
          insert into dunning_cases (invoice_id, customer_id, currency, amount, status, policy_version, cohort, opened_at, closed_at,
            recovery_path, recovered_amount, first_decline_code, first_decline_category, last_decline_code, last_decline_category)
          select invoice_id, customer_id, currency, amount,
            case when closed_at is null then 'open' when roll < 5 then 'closed' when roll < 60 then 'recovered' else 'lost' end,
            'bench', case when g % 10 = 0 then 'holdout' else 'smart' end, opened_at, closed_at,
            case when closed_at is not null and roll >= 5 and roll < 60 then
              (array['scheduled_retry', 'scheduled_retry', 'card_update_retry', 'customer_paid', 'paid_outside'])[1 + roll % 5] end,
            case when closed_at is not null and roll >= 5 and roll < 60 then case when roll = 59 then amount / 2 else amount end end,
            (array['insufficient_funds', 'do_not_honor', 'expired_card', 'generic_decline', 'authentication_required', 'try_again_later'])[1 + g % 6],
            (array['funds', 'generic', 'customer_action', 'generic', 'authentication', 'temporary'])[1 + g % 6],
            (array['insufficient_funds', 'do_not_honor', 'expired_card', 'generic_decline', 'authentication_required', 'try_again_later'])[1 + g % 6],
            (array['funds', 'generic', 'customer_action', 'generic', 'authentication', 'temporary'])[1 + g % 6]
          from batch
          returning id, invoice_id, status, recovery_path, opened_at
        ), attempts as (
          insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, finished_at, decline_code, decline_category)
          select c.id, c.invoice_id, n, case when n = 1 then 'stripe' else 'scheduled' end,
            case
              when c.status = 'recovered' and c.recovery_path in ('scheduled_retry', 'card_update_retry') then
                case when n < 2 + c.id % 4 then 'declined' when n = 2 + c.id % 4 then 'succeeded' else 'cancelled' end
              when c.status = 'lost' then 'declined'
              when c.status = 'open' then case when n <= 2 then 'declined' when n = 3 then 'planned' else 'cancelled' end
              else case when n = 1 then 'declined' else 'cancelled' end
            end,
            c.opened_at + (n - 1) * interval '3 days', 'insufficient_funds', 'funds'
          from cases c cross join generate_series(1, ${ATTEMPTS_PER_CASE}::int) n
        )
        insert into reminder_outbox (case_id, customer_id, invoice_id, kind, step, dedupe_key, status, due_at, send_at, sent_at, locale, time_zone)
        select c.id, 'cus_bench', c.invoice_id, 'first_notice', 1, 'bench:' || c.id, 'sent',
          c.opened_at + interval '1 day', c.opened_at + interval '1 day', c.opened_at + interval '1 day', 'en', 'UTC'
        from cases c where c.id % 2 = 0`;
    });
    const secs = (Date.now() - began) / 1000;
    process.stdout.write(
      `seeded ${hi.toLocaleString('en')} / ${total.toLocaleString('en')} cases, ${(hi * ATTEMPTS_PER_CASE).toLocaleString('en')} attempts (${secs.toFixed(0)} s, ${Math.round(hi / secs).toLocaleString('en')} cases/s)\n`,
    );
  }
  // A live database is kept vacuumed by autovacuum; without the visibility map the index-only
  // scans the report relies on would read the heap.
  console.log('vacuum analyze...');
  await sql`vacuum analyze`;
}

async function time(sql: Sql, now: DateTime): Promise<void> {
  const month = now.minus({ months: 1 });
  const period = resolvePeriod({
    from: month.startOf('month').toISODate()!,
    to: month.endOf('month').toISODate()!,
    timeZone: 'UTC',
    now: now.toJSDate(),
  });
  const [{ attempts } = { attempts: 0 }] = await sql<
    { attempts: number }[]
  >`select count(*)::int as attempts from payment_attempts`;
  const [{ cases } = { cases: 0 }] = await sql<{ cases: number }[]>`select count(*)::int as cases from dunning_cases`;
  console.log(
    `database: ${cases.toLocaleString('en')} cases, ${attempts.toLocaleString('en')} attempts; report period ${period.fromDate} .. ${period.toDate}`,
  );

  const measure = async (fn: () => Promise<unknown>): Promise<number[]> => {
    await fn(); // warm the cache: both sides are timed warm
    const ms: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      await fn();
      ms.push(performance.now() - t);
    }
    return ms.sort((a, b) => a - b);
  };
  let opened = 0;
  const report = await measure(async () => {
    const r = await loadReport(sql, { period, currency: null, asOf: now.toJSDate() });
    opened = r.currencies.reduce((s, c) => s + c.opened.count, 0);
  });
  const baseline = await measure(() => sql`select count(*) from payment_attempts`);
  const med = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;
  console.log(
    `monthly report (${opened.toLocaleString('en')} cases opened in the month): median ${med(report).toFixed(0)} ms, max ${report[report.length - 1]!.toFixed(0)} ms over ${RUNS} runs`,
  );
  console.log(
    `baseline count(*) over payment_attempts: median ${med(baseline).toFixed(0)} ms, max ${baseline[baseline.length - 1]!.toFixed(0)} ms over ${RUNS} runs`,
  );
  console.log(`ratio report / baseline: ${(med(report) / med(baseline)).toFixed(2)}`);
  console.log(`target: report under 1000 ms: ${med(report) < 1000 ? 'met' : 'NOT met'}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

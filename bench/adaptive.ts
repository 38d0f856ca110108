/**
 * Benchmark: the learned-timing refresh query (`countRetries`, src/dunning/adaptive-refresh.ts) over
 * N cases of five charges each (Stripe's and four scheduled retries), in a throwaway database that
 * is dropped afterwards.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/adaptive.ts [cases, default 200000]
 */
import { connect, withDatabase } from '../src/db.ts';
import { migrate } from '../src/migrate.ts';
import { createLogger } from '../src/log.ts';
import { countRetries } from '../src/dunning/adaptive-refresh.ts';
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const admin = connect(url, { max: 1 });
const name = `dunning_adaptive_bench_${process.pid}`;
await admin.unsafe(`create database "${name}"`);
const sql = connect(withDatabase(url, name), { max: 2 });
try {
  await migrate(sql, createLogger('silent'));
  const N = Number(process.argv[2] ?? 200_000);
  const now = new Date('2026-12-07T05:00:00Z');
  let t = performance.now();
  await sql`insert into policies (version, body) values ('v', '{}')`;
  await sql`insert into customers (id, time_zone, stripe_updated_at)
    select 'c' || i, (array['Europe/Berlin','America/New_York',null,'Asia/Tokyo'])[1 + i % 4], ${now}::timestamptz from generate_series(1, ${N}::int) i`;
  await sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
    select 'in' || i, 'c' || i, 'open', 'eur', 1000, 1000, ${now}::timestamptz, ${now}::timestamptz from generate_series(1, ${N}::int) i`;
  await sql`insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at)
    select 'in' || i, 'c' || i, 'eur', 1000, 'v', 'smart', ${now}::timestamptz - (i % 170) * interval '1 day' from generate_series(1, ${N}::int) i`;
  // Five charges per case: Stripe's, then four scheduled retries 1-5 days apart; the last pays in a third of cases.
  await sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, payment_method, card_brand, decline_code)
    select c.id, c.invoice_id, k, case when k = 1 then 'stripe' else 'scheduled' end,
           case when k = 5 and c.id % 3 = 0 then 'succeeded' else 'declined' end,
           c.opened_at + (k - 1) * (1 + c.id % 5) * interval '1 day', c.opened_at + (k - 1) * (1 + c.id % 5) * interval '1 day',
           'pm' || c.id, 'visa', case when k = 5 and c.id % 3 = 0 then null else (array['do_not_honor','insufficient_funds','generic_decline','try_again_later'])[1 + c.id % 4] end
      from dunning_cases c, generate_series(1, 5) k`;
  await sql`update payment_attempts set decline_category = 'funds' where decline_code = 'insufficient_funds'`;
  // A third of the customers have an earlier invoice recovered after a funds decline: their observed
  // payday, looked up once per case with a funds retry.
  await sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, paid_at, stripe_updated_at)
    select 'inp' || i, 'c' || i, 'paid', 'eur', 1000, 0, ${now}::timestamptz - interval '200 days',
           ${now}::timestamptz - (171 + i % 20) * interval '1 day', ${now}::timestamptz
      from generate_series(1, ${N}::int) i where i % 3 = 0`;
  await sql`insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at,
                                       status, closed_at, recovery_path, last_decline_category)
    select 'inp' || i, 'c' || i, 'eur', 1000, 'v', 'smart', ${now}::timestamptz - interval '200 days', 'recovered',
           ${now}::timestamptz - (171 + i % 20) * interval '1 day', 'scheduled_retry', 'funds'
      from generate_series(1, ${N}::int) i where i % 3 = 0`;
  await sql`vacuum analyze`;
  console.log(`seeded ${N} cases, ${5 * N} attempts in ${Math.round(performance.now() - t)} ms`);
  const since = new Date(now.getTime() - 180 * 86400000);
  for (let i = 0; i < 2; i++) {
    t = performance.now();
    const counts = await countRetries(sql, since, 'Europe/Berlin');
    const n = Object.values(counts.byDelay)
      .flat()
      .reduce((s, [, x]) => s + x, 0);
    const byPayday = counts.byPaydayDistance.reduce((s, [, x]) => s + x, 0);
    console.log(
      `countRetries: ${n} retries (${byPayday} funds retries by payday) in ${Math.round(performance.now() - t)} ms`,
    );
  }
} finally {
  await sql.end();
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
}

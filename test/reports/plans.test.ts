import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tx } from '../../src/db.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import { reportQueries } from '../../src/reports/queries.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/**
 * The report answers in under a second over a million cases only through its indexes
 * (sql/003_reports.sql). These tests EXPLAIN the queries the report runs, over two years of cases
 * (10,000, five attempts each) with fresh statistics and visibility map, and check that the
 * planner picks the index each query was written for.
 */
let db: TestDatabase;
const NOW = new Date('2026-12-10T12:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql`insert into policies (version, body) values ('p', '{}')`;
  await db.sql`
    insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
    select 'in_' || g, 'cus_' || g, 'open', 'usd', 1000 + g % 5000, 1000 + g % 5000, now(), now() from generate_series(1, 10000) g`;
  // Opened evenly over 2025-2026; all but the last weeks' cases closed within 25 days.
  await db.sql`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, status, policy_version, cohort, opened_at, closed_at, recovered_amount)
    select 'in_' || g, 'cus_' || g, 'usd', 1000 + g % 5000, s.status, 'p', 'smart', o.at,
      case when s.status <> 'open' then o.at + (1 + g % 25) * interval '1 day' end,
      case when s.status = 'recovered' then 1000 + g % 5000 end
    from generate_series(1, 10000) g,
      lateral (select '2025-01-01T00:00:00Z'::timestamptz + g * interval '104 minutes' as at) o,
      lateral (select case when o.at > '2026-11-15'::timestamptz and g % 2 = 0 then 'open'
                           when g % 3 = 0 then 'lost' else 'recovered' end as status) s`;
  await db.sql`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status)
    select c.id, c.invoice_id, k, case when k = 1 then 'stripe' else 'scheduled' end,
      case when k = 5 and c.status = 'recovered' then 'succeeded' when k = 3 then 'cancelled' else 'declined' end
    from dunning_cases c, generate_series(1, 5) k`;
  await db.sql`vacuum analyze dunning_cases`;
  await db.sql`vacuum analyze payment_attempts`;
});
afterAll(async () => db?.drop());

type Queries = ReturnType<typeof reportQueries>;

/** The plan of one report query, as indented text, with sequential scans priced out when asked. */
async function planOf(pick: (q: Queries) => Queries[keyof Queries], o: { noSeqScan: boolean }): Promise<string> {
  const query = {
    period: resolvePeriod({ from: '2026-11-01', to: '2026-11-30', timeZone: 'Europe/Berlin', now: NOW }),
    currency: null,
    asOf: NOW,
  };
  return await db.sql.begin<string>(async (tx: Tx) => {
    if (o.noSeqScan) await tx`set local enable_seqscan = off`;
    const rows = await tx<{ 'QUERY PLAN': string }[]>`explain ${pick(reportQueries(tx, query))}`;
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  });
}

describe.each([false, true])('report query plans (enable_seqscan off: %s)', (noSeqScan) => {
  it('finds what was at risk at the period end through the open-span GiST index', async () => {
    expect(await planOf((q) => q.atRisk, { noSeqScan })).toMatch(/Index.* Scan .*on dunning_cases_open_span/);
  });

  it('finds the policies of the cases open in the period through the open-span GiST index', async () => {
    expect(await planOf((q) => q.policies, { noSeqScan })).toMatch(/Index.* Scan .*on dunning_cases_open_span/);
  });

  it("joins the period's cases to their attempts through the covering index, without the heap", async () => {
    const plan = await planOf((q) => q.attempts, { noSeqScan });
    expect(plan).toMatch(/Index Only Scan using payment_attempts_case_outcome on payment_attempts/);
    expect(plan).toMatch(/dunning_cases_opened/);
  });
});

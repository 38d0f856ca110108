import { DateTime } from 'luxon';
import type { Tx } from '../db.ts';
import type { Period } from './period.ts';

/**
 * The SQL behind the recovery report. Each query touches one slice of cases through an index
 * (opened_at for the period's cases, closed_at for what ended in the period, the open-span GiST
 * index for what was at risk at the end); they run in parallel on the pool. Money sums are cast to
 * float8 so they arrive as JS numbers (exact below 2^53 minor units); the pool maps int8 to BigInt.
 */

export interface ReportQuery {
  period: Period;
  currency: string | null;
  /** When the report is read: the at-risk snapshot is taken at min(period end, asOf). */
  asOf: Date;
}

export interface CohortTotalsRow {
  currency: string;
  opened: number;
  openedAmount: number;
  voided: number;
  voidedAmount: number;
  recovered: number;
  recoveredAmount: number;
  lost: number;
  open: number;
}
export interface ClosedTotalsRow {
  currency: string;
  recovered: number;
  recoveredAmount: number;
  partial: number;
  lost: number;
  lostAmount: number;
  p50: number | null;
  p90: number | null;
}
export interface AtRiskRow {
  currency: string;
  count: number;
  amount: number;
}
export interface DeclineRow {
  currency: string;
  category: string | null;
  code: string | null;
  /** The named policy the cases opened with (segment rules); `default` (or absent) when none applied. */
  policy?: string;
  cases: number;
  amount: number;
  recovered: number;
  recoveredAmount: number;
}
export interface AttemptRow {
  currency: string;
  attemptNo: number;
  attempted: number;
  succeeded: number;
  succeededAmount: number;
}
/** Cases of the period grouped by how many charges they had, and whether the last one paid. */
export interface ChargeCountRow {
  currency: string;
  charges: number;
  won: boolean;
  cases: number;
  paidAmount: number;
}
export interface PathRow {
  currency: string;
  path: string | null;
  count: number;
  amount: number;
}
export interface ArmRow {
  currency: string;
  cohort: string;
  /** The case's first decline category: the lift is shown per category too. */
  category: string | null;
  cases: number;
  recovered: number;
  amount: number;
  recoveredAmount: number;
}
/** `bucket`: 1 for the first month of `monthStartsOf`, 2 for the next, ... */
interface MonthBucketRow {
  currency: string;
  bucket: number;
  opened: number;
  voided: number;
  recovered: number;
  lost: number;
  open: number;
  amount: number;
  recoveredAmount: number;
}
export interface MonthRow {
  currency: string;
  month: string;
  opened: number;
  voided: number;
  recovered: number;
  lost: number;
  open: number;
  amount: number;
  recoveredAmount: number;
}
export interface TimelineRow {
  currency: string;
  bucket: string;
  count: number;
  amount: number;
}
export interface ReminderRow {
  currency: string;
  kind: string;
  step: number;
  reached: number;
  recoveredAfter: number;
  merged: number;
  deferred: number;
}
export interface ChurnRow {
  activeAtStart: number;
  churned: number;
}
export interface ChurnRevenueRow {
  currency: string;
  base: number;
  churned: number;
}

/** A policy version that cases in the period ran, with its stored body (for its `retry.adaptive`). */
export interface PolicyCasesRow {
  name: string;
  version: string;
  body: unknown;
  cases: number;
}

export interface ReportData {
  query: ReportQuery;
  snapshotAt: Date;
  cohortStart: Date;
  timelineUnit: 'day' | 'month';
  cohortTotals: CohortTotalsRow[];
  closedTotals: ClosedTotalsRow[];
  atRisk: AtRiskRow[];
  declines: DeclineRow[];
  attempts: AttemptRow[];
  paths: PathRow[];
  arms: ArmRow[];
  months: MonthRow[];
  timeline: TimelineRow[];
  /** Null until the reminders migration has created `reminder_outbox`. */
  reminders: ReminderRow[] | null;
  churn: ChurnRow;
  churnRevenue: ChurnRevenueRow[];
  /** The policies of the cases open at some time in the period (not voided), per stored version. */
  policies: PolicyCasesRow[];
}

/** Cohort tables show at least twelve months so a one-month report still shows the year's trend. */
export const TREND_MONTHS = 12;

export function cohortStartOf(period: Period): Date {
  const back = DateTime.fromJSDate(period.end, { zone: period.timeZone })
    .minus({ milliseconds: 1 })
    .minus({ months: TREND_MONTHS - 1 })
    .startOf('month')
    .toJSDate();
  return back < period.start ? back : period.start;
}

interface Frame {
  snapshotAt: Date;
  cohortStart: Date;
  timelineUnit: 'day' | 'month';
  /** The cohort table's months (`monthStartsOf`): the SQL buckets by them, the labels come from them. */
  monthStarts: Date[];
}

/** When the at-risk snapshot is taken, where the cohort table starts, its months, and the timeline's bucket. */
function frameOf(query: ReportQuery): Frame {
  const { start, end, timeZone } = query.period;
  const cohortStart = cohortStartOf(query.period);
  return {
    snapshotAt: query.asOf < end ? query.asOf : end,
    cohortStart,
    timelineUnit: end.getTime() - start.getTime() <= 92 * 86_400_000 ? 'day' : 'month',
    monthStarts: monthStartsOf(cohortStart, end, timeZone),
  };
}

/** The first instant of each month from `from`'s month up to `to` (exclusive), in `zone`, plus the end. */
export function monthStartsOf(from: Date, to: Date, zone: string): Date[] {
  const out: Date[] = [];
  for (let m = DateTime.fromJSDate(from, { zone }).startOf('month'); m.toJSDate() < to; m = m.plus({ months: 1 }))
    out.push(m.toJSDate());
  out.push(to);
  return out;
}

/**
 * Rows per attempt number from cases grouped by their number of charges: attempt N was made in
 * every case with at least N charges, and succeeded in the recovered cases whose N-th charge was
 * their last. Pure.
 */
export function chargesByNumber(groups: readonly ChargeCountRow[]): AttemptRow[] {
  const rows = new Map<string, AttemptRow>();
  for (const g of groups) {
    for (let n = 1; n <= g.charges; n += 1) {
      const key = `${g.currency}:${n}`;
      const row = rows.get(key) ?? {
        currency: g.currency,
        attemptNo: n,
        attempted: 0,
        succeeded: 0,
        succeededAmount: 0,
      };
      row.attempted += g.cases;
      if (g.won && n === g.charges) {
        row.succeeded += g.cases;
        row.succeededAmount += g.paidAmount;
      }
      rows.set(key, row);
    }
  }
  return [...rows.values()];
}

/**
 * The report's queries, built but not run (postgres.js runs a query when it is awaited), so tests
 * can EXPLAIN the very text the report runs.
 */
export function reportQueries(sql: Tx, query: ReportQuery, frame: Frame = frameOf(query)) {
  const { period, currency: cur } = query;
  const from = period.start;
  const to = period.end;
  // Customers active at the start whose subscription ended in the period for a failed payment, and
  // who hold none at its end (another one, or a new one, means they have not left).
  const churnedCtes = sql`
      -- Canceled by this worker's final action (Stripe records that as an API cancellation, not
      -- payment_failed). The case closes moments after the cancellation, so a day's margin on
      -- either side of the period catches the pairs that straddle a boundary; the period's lost
      -- cases come through dunning_cases_closed, never a scan of all cases.
      canceled_by_worker as (
        select distinct i.subscription_id as id from dunning_cases c join invoices i on i.id = c.invoice_id
        where c.closed_at >= ${from}::timestamptz - interval '1 day' and c.closed_at < ${to}::timestamptz + interval '1 day'
          and c.status = 'lost' and c.final_action = 'cancel_subscription' and i.subscription_id is not null
      ),
      ended_by_failure as (
        select distinct s.customer_id from subscriptions s
        where s.ended_at >= ${from} and s.ended_at < ${to} and s.started_at < ${from}
          and (s.cancellation_reason = 'payment_failed' or s.id in (select id from canceled_by_worker))
      ),
      -- Few rows, each through subscriptions_customer.
      churned as (
        select e.customer_id from ended_by_failure e where not exists (
          select 1 from subscriptions s where s.customer_id = e.customer_id
            and s.started_at < ${to} and (s.ended_at is null or s.ended_at >= ${to}))
      )`;
  const tz = period.timeZone;
  const { snapshotAt, cohortStart, timelineUnit, monthStarts } = frame;
  const bucketFormat = timelineUnit === 'day' ? 'YYYY-MM-DD' : 'YYYY-MM';

  // Cases opened in the period: the denominator of every rate.
  const cohort = sql`c.opened_at >= ${from} and c.opened_at < ${to} and (${cur}::text is null or c.currency = ${cur})`;

  return {
    cohortTotals: sql<CohortTotalsRow[]>`
      select c.currency,
        count(*)::int as opened,
        coalesce(sum(c.amount), 0)::float8 as "openedAmount",
        (count(*) filter (where c.status = 'closed'))::int as voided,
        coalesce(sum(c.amount) filter (where c.status = 'closed'), 0)::float8 as "voidedAmount",
        (count(*) filter (where c.status = 'recovered'))::int as recovered,
        coalesce(sum(coalesce(c.recovered_amount, c.amount)) filter (where c.status = 'recovered'), 0)::float8 as "recoveredAmount",
        (count(*) filter (where c.status = 'lost'))::int as lost,
        (count(*) filter (where c.status = 'open'))::int as open
      from dunning_cases c where ${cohort}
      group by c.currency`,
    closedTotals: sql<ClosedTotalsRow[]>`
      select c.currency,
        (count(*) filter (where c.status = 'recovered'))::int as recovered,
        coalesce(sum(coalesce(c.recovered_amount, c.amount)) filter (where c.status = 'recovered'), 0)::float8 as "recoveredAmount",
        (count(*) filter (where c.status = 'recovered' and c.recovered_amount < c.amount))::int as partial,
        (count(*) filter (where c.status = 'lost'))::int as lost,
        coalesce(sum(c.amount - coalesce(c.recovered_amount, 0)) filter (where c.status = 'lost'), 0)::float8 as "lostAmount",
        percentile_cont(0.5) within group (order by extract(epoch from c.closed_at - c.opened_at)) filter (where c.status = 'recovered') as p50,
        percentile_cont(0.9) within group (order by extract(epoch from c.closed_at - c.opened_at)) filter (where c.status = 'recovered') as p90
      from dunning_cases c
      where c.closed_at >= ${from} and c.closed_at < ${to} and (${cur}::text is null or c.currency = ${cur})
      group by c.currency`,
    // Open at the snapshot instant: opened before it and not closed by then. Matches the GiST index.
    atRisk: sql<AtRiskRow[]>`
      select c.currency, count(*)::int as count, coalesce(sum(c.amount), 0)::float8 as amount
      from dunning_cases c
      where tstzrange(c.opened_at, c.closed_at) @> ${snapshotAt}::timestamptz and (${cur}::text is null or c.currency = ${cur})
      group by c.currency`,
    declines: sql<DeclineRow[]>`
      select c.currency, c.first_decline_category as category, c.first_decline_code as code, c.policy_name as policy,
        count(*)::int as cases, coalesce(sum(c.amount), 0)::float8 as amount,
        (count(*) filter (where c.status = 'recovered'))::int as recovered,
        coalesce(sum(coalesce(c.recovered_amount, c.amount)) filter (where c.status = 'recovered'), 0)::float8 as "recoveredAmount"
      from dunning_cases c where ${cohort} and c.status <> 'closed'
      group by 1, 2, 3, 4`,
    // Attempt N is the case's Nth charge that reached the bank and came back with an answer. The
    // ledger's attempt_no also numbers retries that were cancelled, skipped or never sent (and must
    // keep doing so: idempotency keys are built from it), so charges are counted here instead. A
    // case's charges end with its success (the invoice is paid), so a recovered case succeeded at
    // its last charge: one pass groups cases by how many charges they had, and `chargesByNumber`
    // turns that into rows per attempt number, with no per-row numbering or sort.
    attempts: sql<ChargeCountRow[]>`
      select currency, charges, won, count(*)::int as cases,
        coalesce(sum(paid) filter (where won and recovered), 0)::float8 as "paidAmount"
      from (
        select c.currency, c.status = 'recovered' as recovered, coalesce(c.recovered_amount, c.amount) as paid,
          count(*)::int as charges, bool_or(a.status = 'succeeded') as won
        from dunning_cases c join payment_attempts a on a.case_id = c.id
        where ${cohort} and c.status <> 'closed' and a.status in ('succeeded', 'declined')
        group by c.id
      ) per_case
      group by 1, 2, 3`,
    paths: sql<PathRow[]>`
      select c.currency, c.recovery_path as path, count(*)::int as count,
        coalesce(sum(coalesce(c.recovered_amount, c.amount)), 0)::float8 as amount
      from dunning_cases c where ${cohort} and c.status = 'recovered'
      group by 1, 2`,
    arms: sql<ArmRow[]>`
      select c.currency, c.cohort, c.first_decline_category as category, count(*)::int as cases,
        (count(*) filter (where c.status = 'recovered'))::int as recovered,
        coalesce(sum(c.amount), 0)::float8 as amount,
        coalesce(sum(coalesce(c.recovered_amount, c.amount)) filter (where c.status = 'recovered'), 0)::float8 as "recoveredAmount"
      from dunning_cases c where ${cohort} and c.status <> 'closed'
      group by 1, 2, 3`,
    // Every case open at some time in the period ran its policy version's retries in it, also one
    // opened before the period; the few versions are joined to their bodies after the grouping.
    policies: sql<PolicyCasesRow[]>`
      select k.name, k.version, p.body, k.cases
      from (
        select c.policy_name as name, c.policy_version as version, count(*)::int as cases
        from dunning_cases c
        where tstzrange(c.opened_at, c.closed_at) && tstzrange(${from}, ${to})
          and c.status <> 'closed' and (${cur}::text is null or c.currency = ${cur})
        group by 1, 2
      ) k
      join policies p on p.version = k.version`,
    // Bucketed by the months' own instants (luxon, in the merchant zone): a time zone conversion
    // and a truncation per row cost more than the whole aggregate.
    months: sql<MonthBucketRow[]>`
      select c.currency, width_bucket(c.opened_at, ${monthStarts.map((m) => m.toISOString())}::timestamptz[]) as bucket,
        count(*)::int as opened,
        (count(*) filter (where c.status = 'closed'))::int as voided,
        (count(*) filter (where c.status = 'recovered'))::int as recovered,
        (count(*) filter (where c.status = 'lost'))::int as lost,
        (count(*) filter (where c.status = 'open'))::int as open,
        coalesce(sum(c.amount) filter (where c.status <> 'closed'), 0)::float8 as amount,
        coalesce(sum(coalesce(c.recovered_amount, c.amount)) filter (where c.status = 'recovered'), 0)::float8 as "recoveredAmount"
      from dunning_cases c
      where c.opened_at >= ${cohortStart} and c.opened_at < ${to} and (${cur}::text is null or c.currency = ${cur})
      group by 1, 2`,
    timeline: sql<TimelineRow[]>`
      select c.currency, to_char(c.closed_at at time zone ${tz}, ${bucketFormat}) as bucket, count(*)::int as count,
        coalesce(sum(coalesce(c.recovered_amount, c.amount)), 0)::float8 as amount
      from dunning_cases c
      where c.closed_at >= ${from} and c.closed_at < ${to} and c.status = 'recovered' and (${cur}::text is null or c.currency = ${cur})
      group by 1, 2`,
    // Subscriptions active at the start (started before it, not ended by then), counted by
    // customer with a hash aggregate; those of them that ended in the period come through
    // subscriptions_ended, not a second pass over every subscription.
    churn: sql<ChurnRow[]>`
      with ${churnedCtes}
      select
        (select count(*) from (
          select customer_id from subscriptions
          where started_at < ${from} and (ended_at is null or ended_at >= ${from}) group by customer_id) active)::int as "activeAtStart",
        (select count(*) from churned)::int as churned`,
    // The same customers weighed by revenue: each customer's latest invoice before the start is
    // what they paid per period, so a few large customers lost show as the share they were.
    churnRevenue: sql<ChurnRevenueRow[]>`
      with ${churnedCtes},
      active as (
        select distinct customer_id from subscriptions where started_at < ${from} and (ended_at is null or ended_at >= ${from})
      ),
      latest as (
        select distinct on (i.customer_id) i.customer_id, i.currency, i.amount_due
          from invoices i join active a on a.customer_id = i.customer_id
         where i.stripe_created < ${from}
         order by i.customer_id, i.stripe_created desc, i.id desc
      )
      select l.currency, sum(l.amount_due)::float8 as base,
        coalesce(sum(l.amount_due) filter (where l.customer_id in (select customer_id from churned)), 0)::float8 as churned
      from latest l where ${cur}::text is null or l.currency = ${cur}
      group by 1`,
  };
}

export async function loadReportData(sql: Tx, query: ReportQuery): Promise<ReportData> {
  const frame = frameOf(query);
  const { snapshotAt, cohortStart, timelineUnit, monthStarts } = frame;
  const q = reportQueries(sql, query, frame);
  const { period, currency: cur } = query;
  const [
    cohortTotals,
    closedTotals,
    atRisk,
    declines,
    attempts,
    paths,
    arms,
    months,
    timeline,
    reminders,
    churn,
    churnRevenue,
    policies,
  ] = await Promise.all([
    q.cohortTotals,
    q.closedTotals,
    q.atRisk,
    q.declines,
    q.attempts,
    q.paths,
    q.arms,
    q.months,
    q.timeline,
    loadReminders(sql, period.start, period.end, cur),
    q.churn,
    q.churnRevenue,
    q.policies,
  ]);

  const monthLabel = (bucket: number) =>
    DateTime.fromJSDate(monthStarts[bucket - 1]!, { zone: period.timeZone }).toFormat('yyyy-MM');
  return {
    query,
    snapshotAt,
    cohortStart,
    timelineUnit,
    cohortTotals,
    closedTotals,
    atRisk,
    declines,
    paths,
    arms,
    timeline,
    reminders,
    attempts: chargesByNumber(attempts),
    months: months.map(({ bucket, ...m }) => ({ ...m, month: monthLabel(bucket) })),
    churn: churn[0] ?? { activeAtStart: 0, churned: 0 },
    churnRevenue,
    policies,
  };
}

async function loadReminders(sql: Tx, from: Date, to: Date, cur: string | null): Promise<ReminderRow[] | null> {
  // The reminders migration may not be applied on this database yet; the report still works.
  const [exists] = await sql<{ present: boolean }[]>`select to_regclass('reminder_outbox') is not null as present`;
  if (!exists?.present) return null;
  // The step is the email's place in what the customer received (1st, 2nd, ...): the outbox's own
  // `step` is a per-kind dedupe counter, 1 for every kind but action_required. A reminder merged
  // into another invoice's email reached the customer when that email was sent (sql/019), so it
  // counts as sent then; `merged` and `deferred` say how many were carried by another invoice's
  // email and how many the frequency cap held back first.
  return sql<ReminderRow[]>`
    select c.currency, r.kind, r.step::int as step,
      count(distinct c.id)::int as reached,
      (count(distinct c.id) filter (where c.status = 'recovered' and c.closed_at >= r.sent_at))::int as "recoveredAfter",
      (count(distinct c.id) filter (where r.merged))::int as merged,
      (count(distinct c.id) filter (where r.deferred))::int as deferred
    from dunning_cases c
    join (
      select o.case_id, o.kind, coalesce(o.sent_at, h.sent_at) as sent_at, o.status = 'merged' as merged,
             o.cap_deferrals > 0 as deferred,
             row_number() over (partition by o.case_id order by coalesce(o.sent_at, h.sent_at), o.id) as step
        from reminder_outbox o
        left join reminder_outbox h on h.id = o.merged_into
       -- The thank-you mail follows the payment; it cannot have helped bring it about.
       where (o.status = 'sent' or (o.status = 'merged' and h.status = 'sent')) and o.kind <> 'recovered'
         -- Only the period's cases (each with all its emails, so the numbering holds).
         and o.case_id in (select d.id from dunning_cases d where d.opened_at >= ${from} and d.opened_at < ${to})
    ) r on r.case_id = c.id
    where c.opened_at >= ${from} and c.opened_at < ${to} and (${cur}::text is null or c.currency = ${cur})
      and c.status <> 'closed'
    group by 1, 2, 3`;
}

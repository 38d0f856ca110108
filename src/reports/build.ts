import type { Tx } from '../db.ts';
import { DEFINITIONS, type Definition } from './definitions.ts';
import { formatMoney, liftOf, liftsByCategory, rate, type CategoryLift, type Lift } from './metrics.ts';
import { loadReportData, type ReportData, type ReportQuery } from './queries.ts';
import { latestSnapshot, type Snapshot } from '../dunning/adaptive-refresh.ts';
import { adaptiveSummary, type AdaptiveSummary } from './adaptive.ts';

/** The report as every renderer sees it: plain, JSON-ready data. */
export interface Money {
  minor: number;
  formatted: string;
}

const moneyOf = (minor: number, currency: string): Money => ({ minor, formatted: formatMoney(minor, currency) });

export interface BreakdownRow {
  key: string;
  cases: number;
  amount: Money;
  recovered: number;
  recoveredAmount: Money;
  rate: number | null;
}

export interface AttemptBreakdown {
  attemptNo: number;
  attempted: number;
  succeeded: number;
  rate: number | null;
  shareOfRecoveries: number | null;
  amount: Money;
}
export interface PathBreakdown {
  path: string;
  count: number;
  amount: Money;
  share: number | null;
}
export interface ReminderBreakdown {
  kind: string;
  step: number;
  reached: number;
  recoveredAfter: number;
  rate: number | null;
  /** Of `reached`: cases this step reached in one email with other invoices of the customer. */
  merged: number;
  /** Of `reached`: cases whose email of this step the frequency cap held back first. */
  deferred: number;
}
export interface MonthBreakdown {
  month: string;
  opened: number;
  voided: number;
  recovered: number;
  lost: number;
  open: number;
  amount: Money;
  recoveredAmount: Money;
  rate: number | null;
  revenueRate: number | null;
}
export interface ArmSummary {
  cases: number;
  recovered: number;
  rate: number | null;
  amount: Money;
  recoveredAmount: Money;
}

export interface CurrencyReport {
  currency: string;
  opened: { count: number; amount: Money };
  voided: { count: number; amount: Money };
  recovered: { count: number; amount: Money; partial: number };
  lost: { count: number; amount: Money };
  atRisk: { count: number; amount: Money };
  cohort: {
    eligible: number;
    recovered: number;
    lost: number;
    open: number;
    rateByCount: number | null;
    rateByRevenue: number | null;
    eligibleAmount: Money;
    recoveredAmount: Money;
  };
  timeToRecover: { medianSeconds: number | null; p90Seconds: number | null };
  byCategory: BreakdownRow[];
  byCode: BreakdownRow[];
  /**
   * By the named policy cases opened with (segment rules, docs/policy.md). Empty while every case
   * ran the default, so installs without segments see no extra table.
   */
  byPolicy: BreakdownRow[];
  byAttempt: AttemptBreakdown[];
  byPath: PathBreakdown[];
  byReminder: ReminderBreakdown[] | null;
  byMonth: MonthBreakdown[];
  /** Overall, and per first decline category (each with its own interval). */
  policy: { smart: ArmSummary; holdout: ArmSummary; lift: Lift | null; byCategory: CategoryLift[] };
  timeline: Array<{ bucket: string; count: number; amount: Money }>;
}

export interface Report {
  period: {
    from: string;
    to: string;
    timeZone: string;
    start: string;
    end: string;
    snapshotAt: string;
    timelineUnit: 'day' | 'month';
  };
  currency: string | null;
  churn: {
    activeAtStart: number;
    churned: number;
    rate: number | null;
    /** The same churn weighed by each customer's latest invoice before the period, per currency. */
    byRevenue: Array<{ currency: string; base: Money; churned: Money; rate: number | null }>;
  };
  currencies: CurrencyReport[];
  /** Null before the first refresh of the learned timing (src/reports/adaptive.ts). */
  adaptive: AdaptiveSummary | null;
  definitions: readonly Definition[];
}

export async function loadReport(sql: Tx, query: ReportQuery): Promise<Report> {
  const [data, snapshot] = await Promise.all([loadReportData(sql, query), latestSnapshot(sql)]);
  return buildReport(data, snapshot);
}

const PATHS = [
  'scheduled_retry',
  'card_update_retry',
  'backup_card_retry',
  'manual_retry',
  'customer_paid',
  'paid_outside',
];

export function buildReport(data: ReportData, snapshot: Snapshot | null = null): Report {
  const currencies = new Set<string>();
  for (const rows of [data.cohortTotals, data.closedTotals, data.atRisk])
    for (const r of rows) currencies.add(r.currency);
  const { period } = data.query;
  return {
    period: {
      from: period.fromDate,
      to: period.toDate,
      timeZone: period.timeZone,
      start: period.start.toISOString(),
      end: period.end.toISOString(),
      snapshotAt: data.snapshotAt.toISOString(),
      timelineUnit: data.timelineUnit,
    },
    currency: data.query.currency,
    churn: {
      ...data.churn,
      rate: rate(data.churn.churned, data.churn.activeAtStart),
      byRevenue: [...data.churnRevenue]
        .sort((a, b) => a.currency.localeCompare(b.currency))
        .map((r) => ({
          currency: r.currency,
          base: moneyOf(r.base, r.currency),
          churned: moneyOf(r.churned, r.currency),
          rate: rate(r.churned, r.base),
        })),
    },
    currencies: [...currencies].sort().map((c) => currencyReport(data, c)),
    adaptive: adaptiveSummary(snapshot, data.policies),
    definitions: DEFINITIONS,
  };
}

function currencyReport(data: ReportData, currency: string): CurrencyReport {
  const money = (minor: number): Money => ({ minor, formatted: formatMoney(minor, currency) });
  const mine = <T extends { currency: string }>(rows: readonly T[]): T[] => rows.filter((r) => r.currency === currency);
  const co = mine(data.cohortTotals)[0];
  const cl = mine(data.closedTotals)[0];
  const risk = mine(data.atRisk)[0];

  const eligible = (co?.opened ?? 0) - (co?.voided ?? 0);
  const eligibleAmount = (co?.openedAmount ?? 0) - (co?.voidedAmount ?? 0);
  const cohortRecovered = co?.recovered ?? 0;

  const declines = mine(data.declines);
  const group = (keyOf: (r: (typeof declines)[number]) => string): BreakdownRow[] => {
    const acc = new Map<string, { cases: number; amount: number; recovered: number; recoveredAmount: number }>();
    for (const r of declines) {
      const key = keyOf(r);
      const a = acc.get(key) ?? { cases: 0, amount: 0, recovered: 0, recoveredAmount: 0 };
      a.cases += r.cases;
      a.amount += r.amount;
      a.recovered += r.recovered;
      a.recoveredAmount += r.recoveredAmount;
      acc.set(key, a);
    }
    return [...acc]
      .map(([key, a]) => ({
        key,
        cases: a.cases,
        amount: money(a.amount),
        recovered: a.recovered,
        recoveredAmount: money(a.recoveredAmount),
        rate: rate(a.recovered, a.cases),
      }))
      .sort((x, y) => y.cases - x.cases || x.key.localeCompare(y.key));
  };

  const attempts = mine(data.attempts).sort((a, b) => a.attemptNo - b.attemptNo);
  const paths = mine(data.paths);
  const pathTotal = paths.reduce((s, p) => s + p.count, 0);
  const arms = mine(data.arms);
  const arm = (name: string): ArmSummary => {
    const r = { cases: 0, recovered: 0, amount: 0, recoveredAmount: 0 };
    for (const a of arms.filter((x) => x.cohort === name)) {
      r.cases += a.cases;
      r.recovered += a.recovered;
      r.amount += a.amount;
      r.recoveredAmount += a.recoveredAmount;
    }
    return {
      cases: r.cases,
      recovered: r.recovered,
      rate: rate(r.recovered, r.cases),
      amount: money(r.amount),
      recoveredAmount: money(r.recoveredAmount),
    };
  };
  const smart = arm('smart');
  const holdout = arm('holdout');

  return {
    currency,
    opened: { count: co?.opened ?? 0, amount: money(co?.openedAmount ?? 0) },
    voided: { count: co?.voided ?? 0, amount: money(co?.voidedAmount ?? 0) },
    recovered: { count: cl?.recovered ?? 0, amount: money(cl?.recoveredAmount ?? 0), partial: cl?.partial ?? 0 },
    lost: { count: cl?.lost ?? 0, amount: money(cl?.lostAmount ?? 0) },
    atRisk: { count: risk?.count ?? 0, amount: money(risk?.amount ?? 0) },
    cohort: {
      eligible,
      recovered: cohortRecovered,
      lost: co?.lost ?? 0,
      open: co?.open ?? 0,
      rateByCount: rate(cohortRecovered, eligible),
      rateByRevenue: rate(co?.recoveredAmount ?? 0, eligibleAmount),
      eligibleAmount: money(eligibleAmount),
      recoveredAmount: money(co?.recoveredAmount ?? 0),
    },
    timeToRecover: { medianSeconds: cl?.p50 ?? null, p90Seconds: cl?.p90 ?? null },
    byCategory: group((r) => r.category ?? 'unknown'),
    byCode: group((r) => r.code ?? 'unknown'),
    byPolicy: declines.some((r) => (r.policy ?? 'default') !== 'default') ? group((r) => r.policy ?? 'default') : [],
    byAttempt: attempts.map((a) => ({
      attemptNo: a.attemptNo,
      attempted: a.attempted,
      succeeded: a.succeeded,
      rate: rate(a.succeeded, a.attempted),
      shareOfRecoveries: rate(a.succeeded, cohortRecovered),
      amount: money(a.succeededAmount),
    })),
    byPath: paths
      .map((p) => ({
        path: p.path ?? 'unknown',
        count: p.count,
        amount: money(p.amount),
        share: rate(p.count, pathTotal),
      }))
      .sort((a, b) => pathOrder(a.path) - pathOrder(b.path)),
    byReminder:
      data.reminders === null
        ? null
        : mine(data.reminders)
            .map((r) => ({
              kind: r.kind,
              step: r.step,
              reached: r.reached,
              recoveredAfter: r.recoveredAfter,
              rate: rate(r.recoveredAfter, r.reached),
              merged: r.merged,
              deferred: r.deferred,
            }))
            .sort((a, b) => a.step - b.step || a.kind.localeCompare(b.kind)),
    byMonth: mine(data.months)
      .sort((a, b) => a.month.localeCompare(b.month))
      .map((m) => ({
        month: m.month,
        opened: m.opened,
        voided: m.voided,
        recovered: m.recovered,
        lost: m.lost,
        open: m.open,
        amount: money(m.amount),
        recoveredAmount: money(m.recoveredAmount),
        rate: rate(m.recovered, m.opened - m.voided),
        revenueRate: rate(m.recoveredAmount, m.amount),
      })),
    policy: {
      smart,
      holdout,
      lift: liftOf(smart, holdout),
      byCategory: liftsByCategory(arms.map((a) => ({ ...a, category: a.category ?? 'unknown' }))),
    },
    timeline: mine(data.timeline)
      .sort((a, b) => a.bucket.localeCompare(b.bucket))
      .map((t) => ({ bucket: t.bucket, count: t.count, amount: money(t.amount) })),
  };
}

function pathOrder(path: string): number {
  const i = PATHS.indexOf(path);
  return i < 0 ? PATHS.length : i;
}

/**
 * `dunning simulate --months N`: the learning curve of adaptive timing. A merchant's failed
 * renewals arrive month by month; each month the policy plans with the table learned from every
 * earlier month's retries, next to the default policy and the holdout on the same customers. The
 * table learns from each case in its own cohort (the holdout share on the fixed schedule, the rest
 * adaptive), as the scheduled job learns from the whole ledger; it is rebuilt once a month.
 */
import { generatePopulation } from '../demo/population.ts';
import {
  learnTable,
  observationsFromLedger,
  paydayRetries,
  tableInUse,
  type RetryObservation,
} from '../dunning/adaptive.ts';
import { assignCohort, type Policy } from '../dunning/policy.ts';
import { majorUnits } from '../money.ts';
import { simulateCase, type CaseResult } from './engine.ts';
import { EUR_PER_UNIT, FAMILY_SPREAD_DAYS, variantPopulation } from './family.ts';
import { ISSUER_VARIANTS, issuerModelOf, type IssuerVariant } from './issuers.ts';
import { plannerStrategy, toLedger } from './strategies.ts';
import { cacheZoneOffsets } from './zone-offsets.ts';

const DAY = 86_400_000;

export interface MonthFigures {
  month: number;
  /** Retries the table was built from at the start of the month, and whether it may move a retry. */
  learnedRetries: number;
  /** Of those, funds retries of customers whose payday was on record: what the payday table learned from. */
  paydayRetries: number;
  inUse: boolean;
  adaptive: number;
  defaults: number;
  holdout: number;
  /** Adaptive minus holdout, revenue-weighted over paired cases, with its 95 % interval. */
  overHoldout: { lift: number; low: number; high: number };
}

export interface LearningCurve {
  variant: IssuerVariant;
  months: MonthFigures[];
}

export interface LearningOptions {
  seed: number;
  months: number;
  perMonth: number;
  policy: Policy;
  merchantTimeZone: string;
  start: Date;
  variants?: readonly IssuerVariant[];
  /** Share of customers with an observed payday (engine's `SimSettings`); the assumption when absent. */
  observedPaydayShare?: number;
}

function weight(r: CaseResult): number {
  return majorUnits(r.amount, r.currency) * (EUR_PER_UNIT[r.currency] ?? 1);
}

function share(results: readonly CaseResult[]): number {
  const total = results.reduce((s, r) => s + weight(r), 0);
  return total === 0 ? 0 : results.reduce((s, r) => s + (r.recovered ? weight(r) : 0), 0) / total;
}

/** Paired difference in recovered revenue share, with a normal 95 % interval over cases. */
export function pairedLift(a: readonly CaseResult[], b: readonly CaseResult[]): MonthFigures['overHoldout'] {
  const w = a.map(weight);
  const total = w.reduce((s, x) => s + x, 0);
  if (total === 0) return { lift: 0, low: 0, high: 0 };
  const d = a.map((r, i) => (r.recovered ? 1 : 0) - ((b[i] as CaseResult).recovered ? 1 : 0));
  const lift = d.reduce((s, x, i) => s + (w[i] as number) * x, 0) / total;
  const variance = d.reduce((s, x, i) => s + (w[i] as number) ** 2 * (x - lift) ** 2, 0) / total ** 2;
  const half = 1.96 * Math.sqrt(variance);
  return { lift, low: lift - half, high: lift + half };
}

export function learningCurves(o: LearningOptions): LearningCurve[] {
  cacheZoneOffsets();
  return (o.variants ?? ISSUER_VARIANTS).map((variant) => {
    const observations: RetryObservation[] = [];
    const issuer = issuerModelOf(variant);
    const months: MonthFigures[] = [];
    for (let m = 1; m <= o.months; m += 1) {
      const seed = (o.seed * 1000 + m) >>> 0;
      const start = new Date(o.start.getTime() + (m - 1) * FAMILY_SPREAD_DAYS * DAY);
      const base = generatePopulation({ seed, customers: o.perMonth, spreadDays: FAMILY_SPREAD_DAYS });
      const population = variantPopulation(base, variant, seed);
      const table = learnTable(observations, start);
      const settings = { seed, start, issuer, observedPaydayShare: o.observedPaydayShare };
      const run = (s: ReturnType<typeof plannerStrategy>) =>
        population.map((member, i) => simulateCase(member, i, s, settings));
      const adaptive = run(plannerStrategy(o.policy, o.merchantTimeZone, 'adaptive', 'smart', table));
      const defaults = run(plannerStrategy(o.policy, o.merchantTimeZone, 'policy'));
      const holdout = run(plannerStrategy(o.policy, o.merchantTimeZone, 'holdout', 'holdout'));
      months.push({
        month: m,
        learnedRetries: table.retries,
        paydayRetries: paydayRetries(table),
        inUse: tableInUse(table),
        adaptive: share(adaptive),
        defaults: share(defaults),
        holdout: share(holdout),
        overHoldout: pairedLift(adaptive, holdout),
      });
      // The job learns from the whole ledger, as in production: each case in the cohort its
      // invoice is drawn into (assignCohort), the holdout's fixed days included.
      // The customer's observed payday goes with the case, so funds retries are learned by the days
      // since it (byPaydayDistance), as the refresh job reads it from the ledger.
      const ledger = (results: readonly CaseResult[], i: number) => {
        const member = population[i] as (typeof population)[number];
        const result = results[i] as CaseResult;
        return {
          attempts: toLedger({ attempts: result.attempts, cardBrand: member.card.brand }),
          timeZone: member.timeZone,
          paydayOfMonth: result.observedPayday?.dayOfMonth ?? null,
        };
      };
      observations.push(
        ...observationsFromLedger(
          population.map((_, i) =>
            ledger(
              assignCohort(`in_sim_${(adaptive[i] as CaseResult).key}`, o.policy) === 'holdout' ? holdout : adaptive,
              i,
            ),
          ),
        ),
      );
    }
    return { variant, months };
  });
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)} %`;
}

function points(x: number): string {
  return `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}`;
}

export function renderLearning(curves: readonly LearningCurve[], o: { seed: number; perMonth: number }): string {
  const out = [
    `Learning curve: ${o.perMonth} failed renewals a month (seed ${o.seed}); the table is rebuilt each month from the retries of both cohorts.`,
    '',
  ];
  const rows = [
    [
      'variant',
      'month',
      'learned retries',
      'of them by payday',
      'table',
      'adaptive',
      'defaults',
      'holdout',
      'adaptive - holdout (95 %)',
    ],
  ];
  for (const c of curves) {
    for (const m of c.months) {
      rows.push([
        c.variant.name,
        String(m.month),
        String(m.learnedRetries),
        String(m.paydayRetries),
        m.inUse ? 'in use' : 'too few',
        pct(m.adaptive),
        pct(m.defaults),
        pct(m.holdout),
        `${points(m.overHoldout.lift)} (${points(m.overHoldout.low)} to ${points(m.overHoldout.high)})`,
      ]);
    }
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  out.push(
    ...rows.map((r) =>
      r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
    ),
  );
  return out.join('\n') + '\n';
}

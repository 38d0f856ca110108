/**
 * The pure arithmetic of the reports: rates, the holdout lift with its confidence interval, and
 * money formatting per currency. No I/O, no clock.
 */
import { minorDigits } from '../money.ts';

/** `part / whole`, or null when there is nothing to divide by (an empty period is not 0 %). */
export function rate(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

export interface Arm {
  /** Cases that could be recovered (voided cases excluded). */
  cases: number;
  recovered: number;
}

export interface Lift {
  smartRate: number;
  holdoutRate: number;
  /** Absolute difference smart - holdout, as a proportion (0.05 = 5 percentage points). */
  difference: number;
  /**
   * 95 % Agresti-Caffo interval of the difference of two independent proportions: the Wald
   * interval after adding one success and one failure to each group, which keeps its coverage for
   * small groups and rates near 0 or 100 % (where the plain Wald interval shrinks to nothing).
   */
  low: number;
  high: number;
  /** smart / holdout - 1, null when the holdout recovered nothing. */
  relative: number | null;
}

const Z_95 = 1.959963984540054;

/** Null when either arm is empty: a lift without a comparison group means nothing. */
export function liftOf(smart: Arm, holdout: Arm): Lift | null {
  if (smart.cases === 0 || holdout.cases === 0) return null;
  const p1 = smart.recovered / smart.cases;
  const p2 = holdout.recovered / holdout.cases;
  const a1 = (smart.recovered + 1) / (smart.cases + 2);
  const a2 = (holdout.recovered + 1) / (holdout.cases + 2);
  const se = Math.sqrt((a1 * (1 - a1)) / (smart.cases + 2) + (a2 * (1 - a2)) / (holdout.cases + 2));
  const centre = a1 - a2;
  return {
    smartRate: p1,
    holdoutRate: p2,
    difference: p1 - p2,
    low: Math.max(-1, centre - Z_95 * se),
    high: Math.min(1, centre + Z_95 * se),
    relative: p2 > 0 ? p1 / p2 - 1 : null,
  };
}

/** Cases of one decline category in one arm, as the report's query groups them. */
export interface CategoryArmCount {
  category: string;
  cohort: string;
  cases: number;
  recovered: number;
}

export interface CategoryLift {
  category: string;
  smart: Arm;
  holdout: Arm;
  /** Null when either arm has no case of this category. */
  lift: Lift | null;
}

/**
 * The holdout lift per decline category, with the same Agresti-Caffo interval as the overall lift
 * (`liftOf`): each category is its own comparison of two independent groups, so a small category
 * gets a wide interval instead of a confident-looking zero. Intervals are per row, not adjusted for
 * the several categories compared at once; they say how sure each row is, not which row is "best".
 * Rows follow the larger categories first, so the ones with evidence lead.
 */
export function liftsByCategory(rows: readonly CategoryArmCount[]): CategoryLift[] {
  const byCategory = new Map<string, { smart: Arm; holdout: Arm }>();
  for (const r of rows) {
    if (r.cohort !== 'smart' && r.cohort !== 'holdout') continue;
    const arms = byCategory.get(r.category) ?? {
      smart: { cases: 0, recovered: 0 },
      holdout: { cases: 0, recovered: 0 },
    };
    arms[r.cohort] = { cases: arms[r.cohort].cases + r.cases, recovered: arms[r.cohort].recovered + r.recovered };
    byCategory.set(r.category, arms);
  }
  return [...byCategory]
    .map(([category, { smart, holdout }]) => ({ category, smart, holdout, lift: liftOf(smart, holdout) }))
    .sort(
      (a, b) =>
        b.smart.cases + b.holdout.cases - (a.smart.cases + a.holdout.cases) || a.category.localeCompare(b.category),
    );
}

export function formatMoney(minor: number, currency: string, locale = 'en'): string {
  const digits = minorDigits(currency);
  try {
    return new Intl.NumberFormat(locale, {
      style: 'currency',
      currency: currency.toUpperCase(),
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(minor / 10 ** digits);
  } catch (err) {
    // Intl refuses a code that is not three letters: one odd row must not take the report down.
    if (!(err instanceof RangeError)) throw err;
    return `${currency} ${(minor / 10 ** digits).toFixed(digits)}`;
  }
}

export function formatPercent(value: number | null, digits = 1): string {
  return value === null ? 'n/a' : `${(value * 100).toFixed(digits)} %`;
}

/** Percentage points, signed: the unit of a lift. */
export function formatPoints(value: number): string {
  const pts = value * 100;
  return `${pts >= 0 ? '+' : ''}${pts.toFixed(1)} pts`;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null) return 'n/a';
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * 86_400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

/**
 * Retry timing learned from the merchant's own ledger, kept explainable: a table of success rates
 * per decline category by delay since the decline, by local hour and (funds) by days since the
 * customer's observed payday, each cell a Beta posterior shrunk towards the category's pooled rate.
 *
 * The prior, stated: a cell with `trials` retries and `successes` successes has posterior mean
 * (successes + k * m) / (trials + k), where m is the category's pooled success rate over all cells
 * and k = `priorStrength` pseudo-retries (default 20). A cell with a handful of retries therefore
 * reads as "average", and cannot out-score the default delay by luck.
 *
 * Pure: a scheduled job builds the table from the ledger and hands the planner a snapshot; the
 * planner never reads the database. Network limits and the dunning window stay hard limits in the
 * planner, whatever the table says.
 */
import { DateTime } from 'luxon';
import { classifyDecline, type DeclineCategory } from './declines.ts';
import type { LedgerAttempt } from './planner.ts';

export type LearnedCategory = Extract<DeclineCategory, 'generic' | 'funds' | 'temporary'>;
export const LEARNED_CATEGORIES: readonly LearnedCategory[] = ['generic', 'funds', 'temporary'];

/** Delays (hours after the decline) the table learns and the planner may choose; a retry counts in the last bucket it reached. */
export const DELAY_BUCKETS_HOURS: readonly number[] = [1, 4, 24, 48, 72, 96, 120, 168, 240];
/** Days since the customer's observed payday, 0..7; later days share the last bucket. */
export const PAYDAY_BUCKETS = 8;

export interface AdaptiveSettings {
  /** Learned retries needed before the table may move a retry; below it the defaults plan alone. */
  minRetries: number;
  /** k of the Beta prior, in pseudo-retries at the category's pooled rate. */
  priorStrength: number;
  /** Share of learned-timing retries sent to another candidate delay, so every delay keeps being measured. */
  explorationShare: number;
}

/** 300 retries: about 30 per delay bucket, enough for a 95 % interval of roughly +-15 points. */
export const ADAPTIVE_DEFAULTS: AdaptiveSettings = { minRetries: 300, priorStrength: 20, explorationShare: 0.1 };

/** One scheduled retry of a declined card, as the ledger tells it. */
export interface RetryObservation {
  category: LearnedCategory;
  hoursSinceDecline: number;
  /** 0-23 in the customer's zone. */
  localHour: number;
  /** Days since the customer's observed payday (the day of month a past invoice of theirs was paid), if known. */
  daysFromPayday: number | null;
  succeeded: boolean;
}

export interface Cell {
  successes: number;
  trials: number;
  /** Posterior mean under the stated prior. */
  rate: number;
  /** 95 % interval of the posterior (normal approximation to the Beta). */
  low: number;
  high: number;
}

export interface LearnedTable {
  builtAt: Date;
  /** Retries the table learned from, over all categories. */
  retries: number;
  settings: AdaptiveSettings;
  /** Pooled success rate per category: the prior's mean. */
  pooled: Record<LearnedCategory, Cell>;
  /** Aligned with DELAY_BUCKETS_HOURS. */
  byDelay: Record<LearnedCategory, Cell[]>;
  /** 24 local hours. */
  byLocalHour: Record<LearnedCategory, Cell[]>;
  /** Funds retries by days since the customer's payday, PAYDAY_BUCKETS cells. */
  byPaydayDistance: Cell[];
}

export function delayBucket(hours: number): number {
  let i = 0;
  while (i + 1 < DELAY_BUCKETS_HOURS.length && hours >= (DELAY_BUCKETS_HOURS[i + 1] as number)) i += 1;
  return i;
}

function cell(successes: number, trials: number, priorMean: number, k: number): Cell {
  const a = successes + k * priorMean;
  const b = trials - successes + k * (1 - priorMean);
  const n = a + b;
  const rate = n === 0 ? priorMean : a / n;
  const sd = n === 0 ? 0.5 : Math.sqrt((rate * (1 - rate)) / (n + 1));
  return { successes, trials, rate, low: Math.max(0, rate - 1.96 * sd), high: Math.min(1, rate + 1.96 * sd) };
}

function counts(size: number): Array<{ s: number; n: number }> {
  return Array.from({ length: size }, () => ({ s: 0, n: 0 }));
}

export function learnTable(
  observations: readonly RetryObservation[],
  builtAt: Date,
  settings: AdaptiveSettings = ADAPTIVE_DEFAULTS,
): LearnedTable {
  if (!(settings.priorStrength > 0)) throw new Error(`priorStrength must be > 0, got ${settings.priorStrength}`);
  if (!(settings.explorationShare >= 0 && settings.explorationShare < 1))
    throw new Error(`explorationShare must be in [0, 1), got ${settings.explorationShare}`);
  const k = settings.priorStrength;
  const pooled = {} as LearnedTable['pooled'];
  const byDelay = {} as LearnedTable['byDelay'];
  const byLocalHour = {} as LearnedTable['byLocalHour'];
  let byPaydayDistance: Cell[] = [];
  for (const category of LEARNED_CATEGORIES) {
    const mine = observations.filter((o) => o.category === category);
    const wins = mine.filter((o) => o.succeeded).length;
    // With no data at all the prior mean is a neutral one half; it only matters once data arrive.
    const mean = mine.length === 0 ? 0.5 : wins / mine.length;
    pooled[category] = cell(wins, mine.length, mean, k);
    const delays = counts(DELAY_BUCKETS_HOURS.length);
    const hours = counts(24);
    const paydays = counts(PAYDAY_BUCKETS);
    for (const o of mine) {
      const add = (c: { s: number; n: number } | undefined) => {
        if (!c) return;
        c.n += 1;
        if (o.succeeded) c.s += 1;
      };
      add(delays[delayBucket(o.hoursSinceDecline)]);
      add(hours[o.localHour]);
      if (o.daysFromPayday !== null) add(paydays[Math.min(PAYDAY_BUCKETS - 1, Math.max(0, o.daysFromPayday))]);
    }
    byDelay[category] = delays.map((c) => cell(c.s, c.n, mean, k));
    byLocalHour[category] = hours.map((c) => cell(c.s, c.n, mean, k));
    if (category === 'funds') byPaydayDistance = paydays.map((c) => cell(c.s, c.n, mean, k));
  }
  return { builtAt, retries: observations.length, settings, pooled, byDelay, byLocalHour, byPaydayDistance };
}

/** Whether the planner may let this table move a retry: enough of the merchant's own retries. */
export function tableInUse(table: LearnedTable | null | undefined): table is LearnedTable {
  return !!table && table.retries >= table.settings.minRetries;
}

/**
 * The merchant's scheduled retries from their cases' ledgers: each scheduled charge of the card
 * that was just declined, with its delay and local hour. A retry after a card change is not
 * timing evidence and is left out.
 */
export function observationsFromLedger(
  cases: ReadonlyArray<{ attempts: readonly LedgerAttempt[]; timeZone: string; paydayOfMonth?: number | null }>,
): RetryObservation[] {
  const out: RetryObservation[] = [];
  for (const c of cases) {
    const sorted = [...c.attempts]
      .filter((a) => a.outcome === 'declined' || a.outcome === 'succeeded')
      .sort((a, b) => a.at.getTime() - b.at.getTime());
    for (let i = 1; i < sorted.length; i += 1) {
      const prev = sorted[i - 1] as LedgerAttempt;
      const a = sorted[i] as LedgerAttempt;
      if (a.source !== 'scheduled' || prev.outcome !== 'declined' || !prev.decline) continue;
      if ((prev.paymentMethod ?? '') !== (a.paymentMethod ?? '')) continue;
      const { category } = classifyDecline(prev.decline);
      if (!(LEARNED_CATEGORIES as readonly string[]).includes(category)) continue;
      const local = DateTime.fromJSDate(a.at, { zone: c.timeZone });
      if (!local.isValid) throw new Error(`invalid time zone ${c.timeZone} in the ledger of a learned case`);
      let daysFromPayday: number | null = null;
      if (c.paydayOfMonth) {
        const payday = Math.min(c.paydayOfMonth, local.daysInMonth ?? 31);
        const since = local.day - payday;
        daysFromPayday = since >= 0 ? since : since + (local.minus({ months: 1 }).daysInMonth ?? 30);
      }
      out.push({
        category: category as LearnedCategory,
        hoursSinceDecline: (a.at.getTime() - prev.at.getTime()) / 3_600_000,
        localHour: local.hour,
        daysFromPayday,
        succeeded: a.outcome === 'succeeded',
      });
    }
  }
  return out;
}

export interface LearnedDelay {
  hours: number;
  explored: boolean;
  /** The reason's data clause, e.g. `34 % success at this delay over your last 512 retries`. */
  evidence: string;
}

/**
 * The delay for the next retry of this category: the default delay unless the table, in use, has a
 * candidate (from half to twice the default, so a retry count still fits the window) whose
 * posterior beats the default's. `unit` in [0, 1) is a stable draw per invoice and attempt: below
 * the exploration share, another candidate is tried instead, so no delay goes unmeasured. A
 * candidate later than `maxHours` (the dunning window's end) is never chosen: the window stays a hard
 * limit, and the default decides then.
 */
export function chooseDelay(
  table: LearnedTable | null | undefined,
  category: LearnedCategory,
  defaultHours: number,
  unit: number,
  maxHours = Infinity,
): LearnedDelay | null {
  if (!tableInUse(table)) return null;
  const cells = table.byDelay[category];
  const candidates = DELAY_BUCKETS_HOURS.map((hours, i) => ({ hours, cell: cells[i] as Cell })).filter(
    (c) => c.hours >= defaultHours / 2 && c.hours <= defaultHours * 2 && c.hours <= maxHours,
  );
  if (candidates.length === 0) return null;
  const base = candidates.find((c) => c.hours === DELAY_BUCKETS_HOURS[delayBucket(defaultHours)]) ?? null;
  const share = table.settings.explorationShare;
  let pick = candidates.reduce(
    (best, c) => (c.cell.rate > best.cell.rate ? c : best),
    base ?? (candidates[0] as (typeof candidates)[number]),
  );
  const explored = unit < share && candidates.length > 1;
  if (explored)
    pick = candidates[Math.min(candidates.length - 1, Math.floor((unit / share) * candidates.length))] as typeof pick;
  const c = pick.cell;
  const pct = Math.round(100 * c.rate);
  const evidence = `${pct} % success at this delay over your last ${c.trials} retries at it (${table.retries} learned; prior ${table.settings.priorStrength} retries at ${Math.round(100 * table.pooled[category].rate)} %)`;
  return { hours: pick.hours, explored, evidence: explored ? `exploring, ${evidence}` : evidence };
}

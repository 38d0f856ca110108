/**
 * Retry timing learned from the merchant's own ledger, kept explainable: a table of success rates
 * per decline category by delay since the decline (within the number of declines so far), by local
 * hour and (funds) by days since the customer's observed payday, each cell a Beta posterior.
 *
 * The prior, stated: a cell with `trials` retries and `successes` successes has posterior mean
 * (successes + k * m) / (trials + k), where m is the pooled success rate of its row (the category's,
 * for the pooled tables) and k = `priorStrength` pseudo-retries (default 20). A cell with a handful
 * of retries therefore reads as "average", and cannot out-score the default delay by luck.
 *
 * Pure: a scheduled job (adaptive-refresh.ts) counts the ledger into a snapshot and the planner gets
 * the table as input; it never reads the database. Network limits and the dunning window stay hard
 * limits in the planner, whatever the table says; `retry.adaptive` in the policy switches it.
 */
import { createHash } from 'node:crypto';
import { DateTime } from 'luxon';
import { classifyDecline, type DeclineCategory } from './declines.ts';
import { local, placeInWindow, type LocalWindow } from './local-time.ts';
import { daysSincePayday, ordinal, type ObservedPayday } from './observed-payday.ts';
import type { LedgerAttempt } from './planner.ts';

export type LearnedCategory = Extract<DeclineCategory, 'generic' | 'funds' | 'temporary'>;
export const LEARNED_CATEGORIES: readonly LearnedCategory[] = ['generic', 'funds', 'temporary'];

/** Delays (hours after the decline) the table learns and the planner may choose; a retry counts in the last bucket it reached. */
export const DELAY_BUCKETS_HOURS: readonly number[] = [1, 4, 24, 48, 72, 96, 120, 168, 240];
/** Days since the customer's observed payday, 0..7; later days share the last bucket. */
export const PAYDAY_BUCKETS = 8;
/**
 * Declines of the invoice so far (1..8; more share the last row). Delays are compared within one
 * row: pooled over rows, a long wait looks good only because the policy uses long waits late,
 * when more issuers have stopped declining, and moving an early retry there buys nothing of that.
 */
export const DECLINE_ROWS = 8;

export function declineRow(declinesSoFar: number): number {
  return Math.min(DECLINE_ROWS, Math.max(1, declinesSoFar)) - 1;
}

/**
 * `retry.adaptive` in the policy. `auto` (the default): a category's timing is learned once the
 * merchant has `minRetriesPerCategory` of its own retries of that category; `on`: from the first
 * learned retry (the prior alone guards); `off`: never, the policy's timing only.
 */
export const ADAPTIVE_MODES = ['auto', 'on', 'off'] as const;
export type AdaptiveMode = (typeof ADAPTIVE_MODES)[number];

export interface AdaptiveSettings {
  /** Learned retries of a category needed (in `auto`) before the table may move a retry of it. */
  minRetriesPerCategory: number;
  /** k of the Beta prior, in pseudo-retries at the category's pooled rate. */
  priorStrength: number;
  /** Share of cases (a stable hash of the invoice) kept on the policy's timing, so the default keeps being measured. */
  explorationShare: number;
}

/**
 * 200 retries of a category: a choice compares the 3-4 delay buckets from half to twice the
 * default wait, so about 50 retries each, a 95 % interval of about +-13 points at a 30 % rate.
 * Fewer, and a 10-point difference is noise; the prior and the move rule (`chooseDelay`) guard the rest.
 */
export const ADAPTIVE_DEFAULTS: AdaptiveSettings = {
  minRetriesPerCategory: 200,
  priorStrength: 20,
  explorationShare: 0.1,
};

export interface RetryObservation {
  category: LearnedCategory;
  hoursSinceDecline: number;
  /** Declines of the invoice up to the one this retry follows (backup-card charges left out). */
  declinesSoFar: number;
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
  /** Pooled success rate per category: the prior's mean; its `trials` are the category's learned retries. */
  pooled: Record<LearnedCategory, Cell>;
  /** Aligned with DELAY_BUCKETS_HOURS. */
  byDelay: Record<LearnedCategory, Cell[]>;
  /** Per decline row (`declineRow`), aligned with DELAY_BUCKETS_HOURS, shrunk towards the row's own pooled rate. */
  byRowDelay: Record<LearnedCategory, Cell[][]>;
  /** 24 local hours. */
  byLocalHour: Record<LearnedCategory, Cell[]>;
  /** Funds retries by days since the customer's payday, PAYDAY_BUCKETS cells. */
  byPaydayDistance: Cell[];
  /** The same per decline row (`declineRow`), shrunk towards the row's own rate: what the planner compares. */
  byRowPayday: Cell[][];
}

/** Successes and trials, as [s, n]. */
export type Count = [number, number];

/**
 * What a snapshot stores: raw counts only, so a change of prior needs no new refresh and the
 * stored row is small (about 3 x (9 + 24) + 8 pairs).
 */
export interface TableCounts {
  byDelay: Record<LearnedCategory, Count[]>;
  byRowDelay: Record<LearnedCategory, Count[][]>;
  byLocalHour: Record<LearnedCategory, Count[]>;
  byPaydayDistance: Count[];
  /** Absent in snapshots stored before it was counted: read as empty. */
  byRowPayday?: Count[][];
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

const zeros = (size: number): Count[] => Array.from({ length: size }, (): Count => [0, 0]);

export function emptyCounts(): TableCounts {
  const per = (size: number) =>
    Object.fromEntries(LEARNED_CATEGORIES.map((c) => [c, zeros(size)])) as Record<LearnedCategory, Count[]>;
  const rows = Object.fromEntries(
    LEARNED_CATEGORIES.map((c) => [c, Array.from({ length: DECLINE_ROWS }, () => zeros(DELAY_BUCKETS_HOURS.length))]),
  ) as Record<LearnedCategory, Count[][]>;
  return {
    byDelay: per(DELAY_BUCKETS_HOURS.length),
    byRowDelay: rows,
    byLocalHour: per(24),
    byPaydayDistance: zeros(PAYDAY_BUCKETS),
    byRowPayday: Array.from({ length: DECLINE_ROWS }, () => zeros(PAYDAY_BUCKETS)),
  };
}

/** Adds `trials` retries (`successes` of them paid) of one kind to the counts. */
export function addObservation(
  counts: TableCounts,
  o: Omit<RetryObservation, 'succeeded'>,
  successes: number,
  trials = 1,
): void {
  const add = (c: Count | undefined) => {
    if (!c) return;
    c[0] += successes;
    c[1] += trials;
  };
  add(counts.byDelay[o.category][delayBucket(o.hoursSinceDecline)]);
  add(counts.byRowDelay[o.category][declineRow(o.declinesSoFar)]?.[delayBucket(o.hoursSinceDecline)]);
  add(counts.byLocalHour[o.category][o.localHour]);
  if (o.category === 'funds' && o.daysFromPayday !== null) {
    const bucket = Math.min(PAYDAY_BUCKETS - 1, Math.max(0, o.daysFromPayday));
    add(counts.byPaydayDistance[bucket]);
    add(counts.byRowPayday?.[declineRow(o.declinesSoFar)]?.[bucket]);
  }
}

export function countObservations(observations: readonly RetryObservation[]): TableCounts {
  const counts = emptyCounts();
  for (const o of observations) addObservation(counts, o, o.succeeded ? 1 : 0);
  return counts;
}

/** Learned retries per category in the counts (every retry falls in exactly one delay bucket). */
export function retriesByCategory(counts: TableCounts): Record<LearnedCategory, number> {
  return Object.fromEntries(
    LEARNED_CATEGORIES.map((c) => [c, counts.byDelay[c].reduce((s, [, n]) => s + n, 0)]),
  ) as Record<LearnedCategory, number>;
}

function checkSettings(settings: AdaptiveSettings): void {
  if (!(settings.priorStrength > 0)) throw new Error(`priorStrength must be > 0, got ${settings.priorStrength}`);
  if (!(settings.explorationShare >= 0 && settings.explorationShare < 1))
    throw new Error(`explorationShare must be in [0, 1), got ${settings.explorationShare}`);
  if (!(Number.isInteger(settings.minRetriesPerCategory) && settings.minRetriesPerCategory >= 0))
    throw new Error(`minRetriesPerCategory must be a whole number >= 0, got ${settings.minRetriesPerCategory}`);
}

/** The shrunk table from raw counts (a snapshot's, or `countObservations`'). */
export function tableFromCounts(
  counts: TableCounts,
  builtAt: Date,
  settings: AdaptiveSettings = ADAPTIVE_DEFAULTS,
): LearnedTable {
  checkSettings(settings);
  const k = settings.priorStrength;
  const pooled = {} as LearnedTable['pooled'];
  const byDelay = {} as LearnedTable['byDelay'];
  const byRowDelay = {} as LearnedTable['byRowDelay'];
  const byLocalHour = {} as LearnedTable['byLocalHour'];
  let byPaydayDistance: Cell[] = [];
  let byRowPayday: Cell[][] = [];
  let retries = 0;
  for (const category of LEARNED_CATEGORIES) {
    const delays = counts.byDelay[category];
    const wins = delays.reduce((s, [w]) => s + w, 0);
    const trials = delays.reduce((s, [, n]) => s + n, 0);
    retries += trials;
    // With no data at all the prior mean is a neutral one half; it only matters once data arrive.
    const mean = trials === 0 ? 0.5 : wins / trials;
    pooled[category] = cell(wins, trials, mean, k);
    byDelay[category] = delays.map(([w, n]) => cell(w, n, mean, k));
    byRowDelay[category] = counts.byRowDelay[category].map((row) => {
      const rw = row.reduce((s, [w]) => s + w, 0);
      const rn = row.reduce((s, [, n]) => s + n, 0);
      const rowMean = rn === 0 ? mean : rw / rn;
      return row.map(([w, n]) => cell(w, n, rowMean, k));
    });
    byLocalHour[category] = counts.byLocalHour[category].map(([w, n]) => cell(w, n, mean, k));
    if (category === 'funds') {
      byPaydayDistance = counts.byPaydayDistance.map(([w, n]) => cell(w, n, mean, k));
      const rows = counts.byRowPayday ?? emptyCounts().byRowPayday ?? [];
      byRowPayday = rows.map((row) => {
        const rw = row.reduce((s, [w]) => s + w, 0);
        const rn = row.reduce((s, [, n]) => s + n, 0);
        return row.map(([w, n]) => cell(w, n, rn === 0 ? mean : rw / rn, k));
      });
    }
  }
  return { builtAt, retries, settings, pooled, byDelay, byRowDelay, byLocalHour, byPaydayDistance, byRowPayday };
}

export function learnTable(
  observations: readonly RetryObservation[],
  builtAt: Date,
  settings: AdaptiveSettings = ADAPTIVE_DEFAULTS,
): LearnedTable {
  return tableFromCounts(countObservations(observations), builtAt, settings);
}

/**
 * The rule of `categoryInUse` on a category's learned retries alone: the report applies it to a
 * stored snapshot's counts under each policy's own mode, without building the table.
 */
export function retriesInUse(retries: number, mode: AdaptiveMode, minRetriesPerCategory: number): boolean {
  if (mode === 'off') return false;
  return mode === 'on' ? retries > 0 : retries >= minRetriesPerCategory;
}

/** Whether the table may move a retry of this category under the policy's `retry.adaptive`. */
export function categoryInUse(
  table: LearnedTable | null | undefined,
  category: LearnedCategory,
  mode: AdaptiveMode = 'auto',
): boolean {
  if (!table) return false;
  return retriesInUse(table.pooled[category].trials, mode, table.settings.minRetriesPerCategory);
}

/** Whether the table may move any retry: some category has enough of the merchant's own retries. */
export function tableInUse(table: LearnedTable | null | undefined, mode: AdaptiveMode = 'auto'): boolean {
  return LEARNED_CATEGORIES.some((c) => categoryInUse(table, c, mode));
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
    let declines = 0;
    for (let i = 1; i < sorted.length; i += 1) {
      const prev = sorted[i - 1] as LedgerAttempt;
      const a = sorted[i] as LedgerAttempt;
      if (prev.outcome === 'declined' && prev.source !== 'backup_card') declines += 1;
      if (a.source !== 'scheduled' || prev.outcome !== 'declined' || !prev.decline) continue;
      if ((prev.paymentMethod ?? '') !== (a.paymentMethod ?? '')) continue;
      const { category } = classifyDecline(prev.decline);
      if (!(LEARNED_CATEGORIES as readonly string[]).includes(category)) continue;
      const localAt = DateTime.fromJSDate(a.at, { zone: c.timeZone });
      if (!localAt.isValid) throw new Error(`invalid time zone ${c.timeZone} in the ledger of a learned case`);
      const daysFromPayday = c.paydayOfMonth ? daysSincePayday(a.at, c.timeZone, c.paydayOfMonth) : null;
      out.push({
        category: category as LearnedCategory,
        hoursSinceDecline: (a.at.getTime() - prev.at.getTime()) / 3_600_000,
        declinesSoFar: declines,
        localHour: localAt.hour,
        daysFromPayday,
        succeeded: a.outcome === 'succeeded',
      });
    }
  }
  return out;
}

export interface LearnedDelay {
  /** The wait after the decline, in hours. */
  hours: number;
  /** Whether the table moved the retry off the policy's wait. */
  moved: boolean;
  /** The reason's data clause, e.g. `34 % success at this delay over your last 512 retries at it`. */
  evidence: string;
}

function pct(x: number): string {
  return `${Math.round(100 * x)} %`;
}

function hoursText(h: number): string {
  return `${Math.round(h * 100) / 100} h`;
}

/** A stable unit in [0, 1) per invoice: below the exploration share, the case keeps the policy's timing. */
export function explorationUnit(invoiceId: string): number {
  return createHash('sha256').update(`explore:${invoiceId}`).digest().readUInt32BE(0) / 2 ** 32;
}

export interface DelayChoice {
  category: LearnedCategory;
  /** The policy's wait for this retry. */
  defaultHours: number;
  /**
   * The longest wait that still leaves the policy's waits for the category's remaining retries
   * inside the dunning window: a learned wait never costs a retry. The policy's own wait is
   * always allowed (the window decides about it as before).
   */
  maxHours: number;
  mode: AdaptiveMode;
  invoiceId: string;
  /** Declines of the invoice so far, the one this retry follows included (backup-card charges left out). */
  declinesSoFar: number;
}

/**
 * The wait for the next retry of a category, with the data behind it; null when no table is
 * given or `retry.adaptive` is off (the reason then stays the policy's alone).
 *
 * Candidates are the delay buckets from half to twice the policy's wait, up to `maxHours`. The
 * best posterior moves the retry only when its whole 95 % interval lies above the policy wait's
 * posterior rate: a table that is merely noisy, or a few lucky retries (the prior pulls them to
 * the pool), keeps the policy's timing. Cases whose stable draw falls below the exploration share
 * keep the policy's timing whatever the table says, so the default goes on being measured.
 */
export function chooseDelay(table: LearnedTable | null | undefined, c: DelayChoice): LearnedDelay | null {
  if (!table || c.mode === 'off') return null;
  const keep = (evidence: string): LearnedDelay => ({ hours: c.defaultHours, moved: false, evidence });
  const n = table.pooled[c.category].trials;
  if (!categoryInUse(table, c.category, c.mode))
    return keep(
      c.mode === 'on'
        ? `policy timing: none of your ${c.category} retries learned yet`
        : `policy timing: learned timing needs ${table.settings.minRetriesPerCategory} of your ${c.category} retries, ${n} so far`,
    );
  const row = declineRow(c.declinesSoFar);
  const cells = table.byRowDelay[c.category][row] as Cell[];
  const base = cells[delayBucket(c.defaultHours)] as Cell;
  const after = `after ${row + 1 === DECLINE_ROWS ? `${DECLINE_ROWS} or more` : row + 1} decline${row === 0 ? '' : 's'}`;
  const baseText = `${pct(base.rate)} success at this delay over your last ${base.trials} retries at it ${after}`;
  if (explorationUnit(c.invoiceId) < table.settings.explorationShare)
    return keep(
      `policy timing kept for ${pct(table.settings.explorationShare)} of cases, to go on measuring it (${baseText})`,
    );
  const candidates = DELAY_BUCKETS_HOURS.map((hours, i) => ({ hours, cell: cells[i] as Cell })).filter(
    (x) =>
      x.hours >= c.defaultHours / 2 &&
      x.hours <= c.defaultHours * 2 &&
      x.hours <= c.maxHours &&
      delayBucket(x.hours) !== delayBucket(c.defaultHours),
  );
  const best = candidates.reduce<(typeof candidates)[number] | null>(
    (b, x) => (b === null || x.cell.rate > b.cell.rate ? x : b),
    null,
  );
  if (!best || best.cell.low <= base.rate)
    return keep(
      `${baseText}; no other delay from ${hoursText(c.defaultHours / 2)} to ${hoursText(Math.max(c.defaultHours, Math.min(2 * c.defaultHours, c.maxHours)))} did better at 95 %`,
    );
  return {
    hours: best.hours,
    moved: true,
    evidence: `${pct(best.cell.rate)} success at this delay over your last ${best.cell.trials} retries at it ${after} (policy wait ${hoursText(c.defaultHours)}: ${pct(base.rate)} over ${base.trials})`,
  };
}

/** A learned move of a slot the policy chose: where to, and the data clause for the reason. */
export interface LearnedSlot {
  at: Date;
  moved: boolean;
  evidence: string;
}

/** Learned funds retries from customers whose payday was known at the time. */
export function paydayRetries(table: LearnedTable): number {
  return table.byPaydayDistance.reduce((s, c) => s + c.trials, 0);
}

function paydayInUse(table: LearnedTable, mode: AdaptiveMode): boolean {
  if (!categoryInUse(table, 'funds', mode)) return false;
  const n = paydayRetries(table);
  return mode === 'on' ? n > 0 : n >= table.settings.minRetriesPerCategory;
}

function distanceText(bucket: number): string {
  if (bucket === 0) return 'on the payday';
  const plus = bucket === PAYDAY_BUCKETS - 1 ? ' or more' : '';
  return `${bucket}${plus} day${bucket === 1 && !plus ? '' : 's'} after the payday`;
}

export interface FundsDayChoice {
  /** The slot the policy's payday calendar chose. */
  policy: { at: Date; label: string };
  /** No earlier than this (the funds spacing and network advice), no later than the dunning window's end. */
  earliest: Date;
  latest: Date;
  zone: string;
  window: LocalWindow;
  payday: ObservedPayday | null | undefined;
  mode: AdaptiveMode;
  invoiceId: string;
  /** Declines of the invoice so far, the one this retry follows included (backup-card charges left out). */
  declinesSoFar: number;
}

/**
 * The day of a funds retry, from the merchant's funds retries by days since each customer's own
 * payday (`byPaydayDistance`). Candidates are the local days from `earliest` up to the calendar's
 * slot, each at its window's opening (money lands overnight). The best day moves the retry only
 * when its whole 95 % interval lies above the rate at the calendar slot's distance, the earliest
 * such day on a tie; the exploration share keeps the calendar. Null when no table is given or
 * `retry.adaptive` is off.
 *
 * Never later than the calendar's slot: a payday seen once is a weak guess (a month-end payer's day
 * of month moves, a weekly payer has four), and a retry moved past a calendar payday skipped the day
 * money most likely came. Moved earlier, a wrong guess costs one charge: the calendar's slot still
 * follows. Measured on the issuer family (docs/simulate.md): up to a week later lost up to 3 points
 * on the month-end model.
 */
export function chooseFundsDay(table: LearnedTable | null | undefined, c: FundsDayChoice): LearnedSlot | null {
  if (!table || c.mode === 'off') return null;
  const keep = (evidence: string): LearnedSlot => ({ at: c.policy.at, moved: false, evidence });
  if (!c.payday) return keep("policy calendar: this customer's payday is not on record yet");
  const n = paydayRetries(table);
  if (!paydayInUse(table, c.mode))
    return keep(
      `policy calendar: learned paydays need ${table.settings.minRetriesPerCategory} of your funds retries from customers with a known payday, ${n} so far`,
    );
  const whose = `this customer's payday: the ${ordinal(c.payday.dayOfMonth)}, seen when ${c.payday.invoiceId} was paid`;
  const bucketOf = (at: Date) =>
    Math.min(PAYDAY_BUCKETS - 1, daysSincePayday(at, c.zone, (c.payday as ObservedPayday).dayOfMonth));
  // Compared within the number of declines so far, as delays are: pooled, a day far from the payday
  // looks bad mostly because late retries of customers whose money never came fall there.
  const row = declineRow(c.declinesSoFar);
  const cells = table.byRowPayday[row] as Cell[];
  const after = `after ${row + 1 === DECLINE_ROWS ? `${DECLINE_ROWS} or more` : row + 1} decline${row === 0 ? '' : 's'}`;
  const baseBucket = bucketOf(c.policy.at);
  const base = cells[baseBucket] as Cell;
  const baseText = `${pct(base.rate)} success ${distanceText(baseBucket)} over your last ${base.trials} funds retries at it ${after} (${whose})`;
  if (explorationUnit(c.invoiceId) < table.settings.explorationShare)
    return keep(
      `policy calendar kept for ${pct(table.settings.explorationShare)} of cases, to go on measuring it (${baseText})`,
    );
  const until = Math.min(c.latest.getTime(), c.policy.at.getTime());
  let best: { at: Date; bucket: number; cell: Cell } | null = null;
  let day = local(c.earliest, c.zone).startOf('day');
  for (let i = 0; i < 40 && day.toJSDate().getTime() <= until; i += 1, day = day.plus({ days: 1 }).startOf('day')) {
    const from = day.toJSDate() > c.earliest ? day.toJSDate() : c.earliest;
    const at = placeInWindow(from, c.zone, c.window);
    if (!local(at, c.zone).hasSame(day, 'day') || at.getTime() > until) continue;
    const bucket = bucketOf(at);
    const cell = cells[bucket] as Cell;
    if (bucket !== baseBucket && (best === null || cell.rate > best.cell.rate)) best = { at, bucket, cell };
  }
  if (!best || best.cell.low <= base.rate) return keep(`${baseText}; no earlier day did better at 95 %`);
  return {
    at: best.at,
    moved: true,
    evidence: `${pct(best.cell.rate)} success ${distanceText(best.bucket)} over your last ${best.cell.trials} funds retries at it ${after} (${whose}; ${c.policy.label}, ${distanceText(baseBucket)}: ${pct(base.rate)} over ${base.trials})`,
  };
}

export interface HourChoice {
  category: LearnedCategory;
  /** The slot the policy chose, inside the local window, whatever the time of planning. */
  planned: Date;
  /** Not before this (the planned slot, or now when planning later than it). */
  earliest: Date;
  /** Not after this: the dunning window's end, less what later retries need after this one. */
  latest: Date;
  zone: string;
  window: LocalWindow;
  mode: AdaptiveMode;
  invoiceId: string;
}

/**
 * A later hour of the same local window, from the merchant's retries of the category by local hour.
 * Only later: an earlier hour would shorten the wait the delay table chose. Moves only when the
 * whole 95 % interval of the best hour lies above the planned hour's rate; otherwise (and for the
 * exploration share, or with too few retries) null, and the reason stays the delay's.
 */
export function chooseHour(table: LearnedTable | null | undefined, c: HourChoice): LearnedSlot | null {
  if (!table || !categoryInUse(table, c.category, c.mode)) return null;
  if (explorationUnit(c.invoiceId) < table.settings.explorationShare) return null;
  const first =
    c.planned.getTime() >= c.earliest.getTime() || local(c.planned, c.zone).hasSame(local(c.earliest, c.zone), 'day');
  const planned = local(first ? c.planned : c.earliest, c.zone);
  const cells = table.byLocalHour[c.category];
  const base = cells[planned.hour] as Cell;
  let best: { at: Date; hour: number; cell: Cell } | null = null;
  for (let hour = planned.hour + 1; hour < c.window.endHour; hour += 1) {
    const at = planned.set({ hour, minute: 0, second: 0, millisecond: 0 });
    // A gap hour (the spring change) does not exist on that day.
    if (at.hour !== hour || at.toJSDate() > c.latest || at.toJSDate() < c.earliest) continue;
    const cell = cells[hour] as Cell;
    if (best === null || cell.rate > best.cell.rate) best = { at: at.toJSDate(), hour, cell };
  }
  if (!best || best.cell.low <= base.rate) return null;
  const hh = (h: number) => `${String(h).padStart(2, '0')}:00`;
  return {
    at: best.at,
    moved: true,
    evidence: `at ${hh(best.hour)} local: ${pct(best.cell.rate)} success at this hour over your last ${best.cell.trials} ${c.category} retries at it (${hh(planned.hour)}: ${pct(base.rate)} over ${base.trials})`,
  };
}

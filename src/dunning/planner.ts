/**
 * The retry planner: a pure function of (case history, customer context, policy, now) that says
 * when to charge a failed invoice next, or why not. No I/O, no clock reads, no randomness: the
 * same inputs always give the same plan, so a crashed worker re-plans to the same instant.
 */
import { classifyDecline, type Classification, type DeclineCategory, type DeclineInfo } from './declines.ts';
import type { Policy } from './policy.ts';
import { formatLocal, jitterMs, local, placeInWindow, resolveZone, windowClose } from './local-time.ts';
import { nextPaydaySlot } from './paydays.ts';
import { earliestWithinLimits, limitsFor, WINDOW_24H_MS, WINDOW_30D_MS, type CardLimits } from './network-limits.ts';
import { chooseDelay, chooseFundsDay, chooseHour, type LearnedCategory, type LearnedTable } from './adaptive.ts';
import type { ObservedPayday } from './observed-payday.ts';
import { chooseBackupCard, describeCard, type SavedCard, type SavedCards } from './backup-cards.ts';

export interface LedgerAttempt {
  attemptNo: number;
  at: Date;
  source: 'stripe' | 'scheduled' | 'card_update' | 'manual' | 'backup_card';
  outcome: 'succeeded' | 'declined' | 'not_sent' | 'unknown' | 'planned';
  paymentMethod: string | null;
  decline: DeclineInfo | null;
  /**
   * The card as the networks count it: its fingerprint where Stripe gave one, else the payment
   * method id. Absent: derived from `paymentMethod` and `CaseHistory.cards`.
   */
  card?: string | null;
}

/** What we know of a payment method's card. */
export interface CardInfo {
  /** Fingerprint where Stripe gave one, else the payment method id. */
  card: string;
  brand: string | null;
}

export interface CaseHistory {
  invoiceId: string;
  openedAt: Date;
  /** Where the dunning window starts when not at `openedAt` (an invoice taken over by backfill). */
  windowStartsAt?: Date;
  cohort: 'smart' | 'holdout';
  attempts: LedgerAttempt[];
  currentPaymentMethod: string | null;
  /**
   * The customer's attempts on its other invoices. Never-retry answers and network limits are per
   * card, whichever invoice the card was charged for; caps and categories stay per invoice.
   */
  otherInvoices?: LedgerAttempt[];
  /** Card identity and brand per payment method id. */
  cards?: ReadonlyMap<string, CardInfo>;
  /**
   * The customer's saved cards, for backup retries (`retry.backupCards`); absent or null: not
   * listed yet. A listing older than the last decline on the default card is listed again first.
   */
  savedCards?: SavedCards | null;
}

export interface CustomerContext {
  timeZone: string | null;
  country: string | null;
  /**
   * The brand of the card to be charged, when the caller knows it and the ledger does not (the
   * brand recorded for the card itself wins). Not the last brand seen on the invoice: that may be
   * another card's.
   */
  cardBrand: string | null;
  /**
   * The customer's own payday as the ledger shows it (src/dunning/observed-payday.ts): the local
   * day of month on which an earlier invoice of theirs, declined for lack of funds, was paid.
   * Absent or null: not observed; funds retries keep the policy's payday calendar.
   */
  observedPayday?: ObservedPayday | null;
}

export type Plan =
  /** `paymentMethod`: the card this retry was reasoned about, which is the card it must charge (null: unknown). */
  | {
      kind: 'retry';
      at: Date;
      reason: string;
      isLast: boolean;
      category: DeclineCategory | null;
      paymentMethod: string | null;
      /** A retry on another of the customer's saved cards, not the one Stripe would charge. */
      backupCard?: boolean;
      listCards?: boolean;
    }
  /** No blind retry: wait for a new payment method (or 3-D Secure) until `until`, then the final action. */
  | { kind: 'await_customer'; until: Date; reason: string; category: DeclineCategory; listCards?: boolean }
  /** Nothing more to try: policy exhausted, window over, network cap or merchant error. */
  | { kind: 'stop'; reason: string; category: DeclineCategory | null; listCards?: boolean }
  /** An attempt is planned or its outcome unknown: reconcile it first; never plan a second charge. */
  | { kind: 'blocked'; reason: string };

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Outcomes that used up a dunning attempt; `not_sent` never reached the bank. */
const COUNTED: ReadonlySet<LedgerAttempt['outcome']> = new Set(['succeeded', 'declined', 'unknown']);
const AWAIT_CATEGORIES: ReadonlySet<DeclineCategory> = new Set(['hard', 'customer_action', 'authentication']);

interface Decline {
  attempt: LedgerAttempt;
  c: Classification;
}

interface Ctx {
  history: CaseHistory;
  policy: Policy;
  now: Date;
  zone: string;
  say: (text: string) => string;
  windowEnd: Date;
  counted: LedgerAttempt[];
  declines: Decline[];
  targetPm: string | null;
  customer: CustomerContext;
  nextAttemptNo: number;
  /** The merchant's learned timing, a snapshot the caller passes in; null plans by the policy alone. */
  learned: LearnedTable | null;
}

interface Slot {
  base: Date;
  label: string;
  category: DeclineCategory | null;
  /** Keep inside the local charging window (not for a card-change retry or the holdout baseline). */
  windowed: boolean;
  jitter: boolean;
  /** Attempts still allowed by the category rule or baseline after this one. */
  remainingAfter: number;
  /**
   * The learned table's category whose local hours may move this retry later in its window, and the
   * latest it may move to (later retries spaced from this one must still fit in the window).
   */
  learnedHour?: { category: LearnedCategory; latest: Date; from: Date };
}

function byTime(a: LedgerAttempt, b: LedgerAttempt): number {
  return a.at.getTime() - b.at.getTime() || a.attemptNo - b.attemptNo;
}

function maxDate(...dates: Date[]): Date {
  return new Date(Math.max(...dates.map((d) => d.getTime())));
}

function hours(ms: number): string {
  return ms % DAY === 0 ? `${ms / DAY} d` : `${Math.round((ms / HOUR) * 100) / 100} h`;
}

/**
 * Stripe's card updater changes the card behind a payment method id. For never-retry answers, an
 * attempt made before that change was on another card (its decline does not bar the updated one),
 * so the loader names its card apart with this suffix; `realCard` turns it back into the id to
 * charge. The network limits count by card identity instead (`LedgerAttempt.card`): an update that
 * kept the card number keeps the fingerprint, and the 30-day count goes on.
 */
export const BEFORE_UPDATE = '#before-card-update';

export function realCard(pm: string | null): string | null {
  return pm?.endsWith(BEFORE_UPDATE) ? pm.slice(0, -BEFORE_UPDATE.length) : pm;
}

/** The card identity networks count by, for a payment method id (null: unknown card). */
function identityOf(history: CaseHistory, pm: string | null): string | null {
  const real = realCard(pm);
  return real === null ? null : (history.cards?.get(real)?.card ?? real);
}

/** The card a never-retry answer is about: a decline from before a card update is about the old card. */
function barKeyOf(history: CaseHistory, pm: string | null): string | null {
  return pm?.endsWith(BEFORE_UPDATE) ? pm : identityOf(history, pm);
}

function countKeyOf(history: CaseHistory, a: LedgerAttempt): string | null {
  return a.card ?? identityOf(history, a.paymentMethod);
}

/** The brand of a card: as the payment method says, else as a charge of that card said. */
function brandOfCard(history: CaseHistory, card: string | null, all: LedgerAttempt[]): string | null {
  if (card === null) return null;
  for (const [pm, info] of history.cards ?? [])
    if (info.brand && (info.card === card || pm === card)) return info.brand;
  const seen = all.filter((a) => a.decline?.cardBrand && countKeyOf(history, a) === card).sort(byTime);
  return seen[seen.length - 1]?.decline?.cardBrand ?? null;
}

function declinesOf(history: CaseHistory, attempts: LedgerAttempt[], customer: CustomerContext): Decline[] {
  const all = [...history.attempts, ...(history.otherInvoices ?? [])];
  return attempts
    .filter((a) => a.outcome === 'declined')
    .map((attempt) => ({
      attempt,
      c: classifyDecline({
        ...attempt.decline,
        cardBrand:
          attempt.decline?.cardBrand ?? brandOfCard(history, countKeyOf(history, attempt), all) ?? customer.cardBrand,
      }),
    }));
}

/**
 * The card the next charge will use: a new one the caller names, else the one last declined.
 * Backup-card attempts are left out: the case stays about the card Stripe charges.
 */
function targetPaymentMethod(history: CaseHistory, declines: Decline[]): string | null {
  const own = declines.filter((d) => d.attempt.source !== 'backup_card');
  return history.currentPaymentMethod ?? own[own.length - 1]?.attempt.paymentMethod ?? null;
}

/** The card a charge planned now would be for, as the planner reasons: a planned attempt records it. */
export function plannedCard(history: CaseHistory): string | null {
  const declined = history.attempts.filter((a) => a.outcome === 'declined' && a.source !== 'backup_card').sort(byTime);
  return history.currentPaymentMethod ?? declined[declined.length - 1]?.paymentMethod ?? null;
}

/**
 * The card a new plan treats as current (`CaseHistory.currentPaymentMethod`). A card the caller
 * names (a card-update event) wins. Otherwise the customer's default counts when this case has not
 * tried it yet: it was set while an attempt was running, or its event was not acted on, and Stripe
 * would charge it. A default the case already tried is no news (it may be the very card a
 * never-retry answer barred); with the last card unknown, the default is most likely what Stripe
 * tried, so it is not treated as a change.
 */
export function currentCard(
  attempts: LedgerAttempt[],
  explicit: string | null,
  customerDefault: string | null,
): string | null {
  if (explicit) return explicit;
  if (!customerDefault) return null;
  const tried = attempts.filter((a) => COUNTED.has(a.outcome)).sort(byTime);
  const last = tried[tried.length - 1];
  if (!last) return customerDefault;
  if (last.paymentMethod === null || tried.some((a) => a.paymentMethod === customerDefault)) return null;
  return customerDefault;
}

/** Why a barring decline bars the card, in the words ops read. */
function barredBecause(d: Decline): string {
  return d.c.category === 'authentication'
    ? 'only the customer can complete authentication, so this card is not retried off-session'
    : 'this card must never be retried';
}

/** Which card-network rule holds a charge back. */
export type CardRule = 'never_retry' | 'network_advice' | 'network_limit';

/** The per-card verdict for one more charge of `targetPm` at `candidate` or later. */
interface CardVerdict {
  /** A never-retry answer on this card, on any of the customer's invoices. */
  barred: Decline | null;
  /** The earliest instant >= candidate the card's advice and limits allow. */
  at: Date;
  rule: CardRule | null;
  reason: string | null;
}

/**
 * The card-network rules for one more charge of a card, over every invoice of the customer: a
 * never-retry answer bars the card, a retry-after advice (Mastercard 24-30) holds it until the
 * wait is over, and the 30-day and 24-hour counts run per card. Attempts whose card is unknown
 * count against every card: the limits are fines, not hints.
 */
/** Every attempt of the customer that reached the bank, on any invoice, oldest first. */
function customerAttempts(history: CaseHistory): LedgerAttempt[] {
  return [...history.attempts, ...(history.otherInvoices ?? [])].filter((a) => COUNTED.has(a.outcome)).sort(byTime);
}

/** Whether an attempt counts against `card`'s limits: an attempt on an unknown card counts against every card. */
function countsAgainst(history: CaseHistory, card: string | null): (a: LedgerAttempt) => boolean {
  return (a) => {
    const k = countKeyOf(history, a);
    return k === null || k === card;
  };
}

function cardVerdict(
  history: CaseHistory,
  customer: CustomerContext,
  targetPm: string | null,
  candidate: Date,
): CardVerdict {
  const all = customerAttempts(history);
  const declines = declinesOf(history, all, customer);
  const barKey = barKeyOf(history, targetPm);
  const barred =
    declines.find(
      (d) => d.c.neverRetrySameCard && (barKeyOf(history, d.attempt.paymentMethod) ?? '') === (barKey ?? ''),
    ) ?? null;
  const card = identityOf(history, targetPm);
  const onCard = countsAgainst(history, card);
  let at = candidate;
  let rule: CardRule | null = null;
  let reason: string | null = null;
  for (const d of declines) {
    const wait = d.c.retryAfterMs;
    if (!wait || (countKeyOf(history, d.attempt) ?? '') !== (card ?? '')) continue;
    const until = new Date(d.attempt.at.getTime() + wait);
    if (until > at) {
      at = until;
      rule = 'network_advice';
      reason = `${d.c.retryAfterBy ?? 'network'} advice to wait ${hours(wait)} after ${d.c.code}`;
    }
  }
  const limited = earliestWithinLimits(
    all.filter(onCard).map((a) => ({ at: a.at, declined: a.outcome === 'declined' })),
    at,
    limitsFor(brandOfCard(history, card, all) ?? customer.cardBrand),
  );
  if (limited.at > at) {
    at = limited.at;
    rule = 'network_limit';
    reason = limited.reason;
  }
  return { barred, at, rule, reason };
}

export type ChargeCheck =
  | { allowed: true }
  /** `until`: the earliest time the rule allows a charge of this card; null: never (a new card is needed). */
  | { allowed: false; rule: CardRule; reason: string; until: Date | null };

/**
 * Whether one more charge now stays clear of never-retry answers, network retry-after advice and
 * card-network limits, with the same rules the planner plans by, across all of the customer's
 * invoices. The runner asks this right before charging (decline details can reach the ledger after
 * the attempt was planned), and so does an operator's retry-now: no override breaks these rules.
 * `history` must not contain the attempt about to be charged.
 */
export function checkCharge(history: CaseHistory, customer: CustomerContext, now: Date): ChargeCheck {
  return checkOf(cardVerdict(history, customer, chargedCard(history, customer), now), now);
}

/** The card the next charge of this invoice uses: a new one the caller names, else the one last declined. */
function chargedCard(history: CaseHistory, customer: CustomerContext): string | null {
  const counted = history.attempts.filter((a) => COUNTED.has(a.outcome)).sort(byTime);
  return targetPaymentMethod(history, declinesOf(history, counted, customer));
}

function checkOf(v: CardVerdict, now: Date): ChargeCheck {
  if (v.barred) {
    return {
      allowed: false,
      rule: 'never_retry',
      reason: `${v.barred.c.code}: ${barredBecause(v.barred)}`,
      until: null,
    };
  }
  if (v.at > now && v.rule) {
    return {
      allowed: false,
      rule: v.rule,
      reason: `held back by the ${v.reason} until ${v.at.toISOString()}`,
      until: v.at,
    };
  }
  return { allowed: true };
}

/** The network budget of the card the next charge of this invoice would use, over all of the customer's invoices. */
export interface CardBudget {
  /** The payment method the next charge uses (null: unknown). */
  paymentMethod: string | null;
  brand: string | null;
  limits: CardLimits;
  /** Charges of this card in the 30 days up to now, on any invoice of the customer. */
  charges30d: number;
  /** Of those, the charges for the customer's other invoices. */
  otherInvoices30d: number;
  /** Declines of this card in the 24 hours up to now. */
  declines24h: number;
  /** Whether the card rules allow a charge now, else which rule and the earliest time it allows one. */
  next: ChargeCheck;
}

/**
 * What the card rules leave of the card's budget, counted as `checkCharge` counts (same window
 * edges, same card identity, attempts on an unknown card counting against it), for people to read.
 */
export function cardBudget(history: CaseHistory, customer: CustomerContext, now: Date): CardBudget {
  const pm = chargedCard(history, customer);
  const card = identityOf(history, pm);
  const all = customerAttempts(history);
  const mine = new Set(history.attempts);
  const recent = all.filter(countsAgainst(history, card)).filter((a) => a.at.getTime() <= now.getTime());
  const in30d = recent.filter((a) => a.at.getTime() >= now.getTime() - WINDOW_30D_MS);
  const brand = brandOfCard(history, card, all) ?? customer.cardBrand;
  return {
    paymentMethod: realCard(pm),
    brand,
    limits: limitsFor(brand),
    charges30d: in30d.length,
    otherInvoices30d: in30d.filter((a) => !mine.has(a)).length,
    declines24h: recent.filter((a) => a.outcome === 'declined' && a.at.getTime() >= now.getTime() - WINDOW_24H_MS)
      .length,
    next: checkOf(cardVerdict(history, customer, pm, now), now),
  };
}

export function planNextAttempt(
  history: CaseHistory,
  customer: CustomerContext,
  policy: Policy,
  now: Date,
  merchantTimeZone: string,
  learned: LearnedTable | null = null,
): Plan {
  const attempts = [...history.attempts].sort(byTime);
  const paid = attempts.find((a) => a.outcome === 'succeeded');
  if (paid) return { kind: 'stop', reason: `invoice paid by attempt #${paid.attemptNo}`, category: null };
  const pending = attempts.find((a) => a.outcome === 'unknown' || a.outcome === 'planned');
  if (pending) {
    return {
      kind: 'blocked',
      reason: `attempt #${pending.attemptNo} is ${pending.outcome}: resolve it before planning another charge`,
    };
  }

  const { zone, note } = resolveZone(customer.timeZone, merchantTimeZone);
  const say = (text: string) => (note ? `${text} (${note})` : text);
  const retry = policy.retry;
  const windowEnd = new Date((history.windowStartsAt ?? history.openedAt).getTime() + retry.windowDays * DAY);
  const counted = attempts.filter((a) => COUNTED.has(a.outcome));
  // Backup-card attempts count against the caps and their card's network budget, but the case's
  // categories and schedule stay those of the default card's declines.
  const declines = declinesOf(history, counted, customer).filter((d) => d.attempt.source !== 'backup_card');
  const last = declines[declines.length - 1];
  const lastCategory = last?.c.category ?? null;

  if (now >= windowEnd) {
    return {
      kind: 'stop',
      reason: say(`dunning window of ${retry.windowDays} days ended ${formatLocal(windowEnd, zone)}`),
      category: lastCategory,
    };
  }
  if (counted.length >= retry.maxAttempts) {
    return {
      kind: 'stop',
      reason: `policy cap reached: ${counted.length} of ${retry.maxAttempts} attempts used`,
      category: lastCategory,
    };
  }

  const targetPm = targetPaymentMethod(history, declines);
  const ctx: Ctx = {
    history,
    policy,
    now,
    zone,
    say,
    windowEnd,
    counted,
    declines,
    targetPm,
    customer,
    nextAttemptNo: Math.max(0, ...attempts.map((a) => a.attemptNo)) + 1,
    learned,
  };

  if (!last) {
    return finish(ctx, {
      base: now,
      label: 'no decline on record: charging in the next local window',
      category: null,
      windowed: true,
      jitter: true,
      remainingAfter: Infinity,
    });
  }
  const { c } = last;
  if (c.category === 'merchant_error') {
    return {
      kind: 'stop',
      reason: `${c.code}: ${c.explanation}; alert ops, the customer is not asked`,
      category: c.category,
    };
  }
  const awaitCustomer = (d: Decline, why: string): Plan => {
    const wanted = d.c.category === 'authentication' ? 'complete authentication' : 'update the payment method';
    return {
      kind: 'await_customer',
      until: windowEnd,
      category: d.c.category,
      reason: say(`${d.c.code}: ${why}; waiting for the customer to ${wanted} until ${formatLocal(windowEnd, zone)}`),
    };
  };
  const { barred } = cardVerdict(history, customer, targetPm, now);
  // A card re-added under a new id is the same card (same fingerprint): not a change.
  if (!barred && (barKeyOf(history, targetPm) ?? '') !== (barKeyOf(history, last.attempt.paymentMethod) ?? '')) {
    return finish(ctx, {
      base: now,
      label: `${c.code}: payment method changed, retrying now`,
      category: c.category,
      windowed: false,
      jitter: false,
      remainingAfter: Infinity,
    });
  }
  const backup = backupStep(ctx, last, barred);
  if (backup.plan) return backup.plan;
  const regular = ((): Plan => {
    if (barred) return awaitCustomer(barred, barredBecause(barred));
    if (history.cohort === 'holdout') {
      const baseline = baselineSlot(ctx, last);
      return 'kind' in baseline ? baseline : finish(ctx, baseline);
    }
    if (AWAIT_CATEGORIES.has(c.category)) return awaitCustomer(last, 'no blind retry');
    const slot = categorySlot(ctx, last);
    return 'kind' in slot ? slot : finish(ctx, slot);
  })();
  if (regular.kind === 'blocked' || !backup.note) return regular;
  return { ...regular, reason: `${regular.reason}; ${backup.note}`, ...(backup.listCards ? { listCards: true } : {}) };
}

const SOFT: ReadonlySet<DeclineCategory> = new Set(['funds', 'temporary', 'generic']);
const BACKUP_AFTER: ReadonlySet<DeclineCategory> = new Set(['hard', 'customer_action']);

/**
 * Whether the default card's declines call for another card on file (`retry.backupCards`): a hard
 * or customer-action decline (or a never-retry answer on it from another invoice), or the stated
 * number of soft declines on it. Null: they do not, or the policy does not ask for backup cards.
 */
function backupTrigger(ctx: Ctx, last: Decline, barred: Decline | null): string | null {
  const rule = ctx.policy.retry.backupCards;
  if (!rule.enabled || ctx.history.cohort === 'holdout') return null;
  if (barred) return `${barred.c.code} on the default card`;
  if (BACKUP_AFTER.has(last.c.category)) return `${last.c.code} on the default card`;
  const card = identityOf(ctx.history, ctx.targetPm);
  const onDefault = (a: LedgerAttempt) =>
    (countKeyOf(ctx.history, a) ?? '') === (card ?? '') || realCard(a.paymentMethod) === realCard(ctx.targetPm);
  const soft = ctx.declines.filter((d) => SOFT.has(d.c.category) && onDefault(d.attempt)).length;
  return soft >= rule.afterSoftDeclines ? `${soft} soft declines on the default card` : null;
}

/**
 * A retry on another of the customer's saved cards, when the policy asks for one and a card is
 * allowed now; otherwise a note the regular plan's reason carries (why there is no backup retry),
 * and `listCards` when the cards must be listed first (never listed, or only before the latest
 * decline on the default card). Each saved card is tried at most once per invoice, one at a time.
 */
function backupStep(
  ctx: Ctx,
  last: Decline,
  barred: Decline | null,
): { plan?: Plan; note?: string; listCards?: boolean } {
  const trigger = backupTrigger(ctx, last, barred);
  if (!trigger) return {};
  const saved = ctx.history.savedCards;
  if (!saved || saved.listedAt < last.attempt.at) {
    return { note: `${trigger}: listing the customer's other cards on file for a backup retry`, listCards: true };
  }
  const cards = new Map(ctx.history.cards ?? []);
  for (const c of saved.cards) cards.set(c.paymentMethod, { card: c.card, brand: c.brand });
  const history: CaseHistory = { ...ctx.history, cards };
  const all = [...history.attempts, ...(history.otherInvoices ?? [])];
  const defaultCard = identityOf(history, ctx.targetPm);
  const choice = chooseBackupCard({
    cards: saved.cards,
    exclude: new Set(defaultCard === null ? [] : [defaultCard]),
    declinedHere: new Set(
      history.attempts
        .filter((a) => a.outcome === 'declined')
        .map((a) => countKeyOf(history, a))
        .filter((k): k is string => k !== null),
    ),
    now: ctx.now,
    rules: (c: SavedCard) => {
      const v = cardVerdict(history, ctx.customer, c.paymentMethod, ctx.now);
      return {
        barred: v.barred ? `${v.barred.c.code}: ${barredBecause(v.barred)}` : null,
        heldUntil: v.at > ctx.now ? { at: v.at, reason: v.reason ?? 'card-network rules' } : null,
      };
    },
    lastSuccess: (c: SavedCard) => {
      const paid = all.filter((a) => a.outcome === 'succeeded' && countKeyOf(history, a) === c.card).sort(byTime);
      return paid[paid.length - 1]?.at ?? null;
    },
  });
  const passed = choice.passedOver.length > 0 ? ` (passed over: ${choice.passedOver.join('; ')})` : '';
  if (!choice.card) return { note: `no backup card: ${choice.why}${passed}` };
  const plan = finish(
    { ...ctx, history, targetPm: choice.card.paymentMethod },
    {
      base: ctx.now,
      label: `${trigger}: retrying with backup card ${describeCard(choice.card)} (${choice.card.paymentMethod}), ${choice.why}${passed}`,
      category: last.c.category,
      windowed: true,
      jitter: true,
      remainingAfter: Infinity,
    },
  );
  if (plan.kind !== 'retry') return { note: `no backup retry: ${plan.reason}` };
  return { plan: { ...plan, backupCard: true } };
}

/** The earliest moment the network's retry-after advice allows, never before `now`. */
function notBefore(ctx: Ctx, last: Decline, waitMs: number): Date {
  const wait = Math.max(waitMs, last.c.retryAfterMs ?? 0);
  return maxDate(ctx.now, new Date(last.attempt.at.getTime() + wait));
}

/**
 * The category each decline is planned by. A temporary error that is still failing once its quick
 * retries are used up is not temporary: from that decline on it is handled as a generic soft
 * decline (days apart, under the generic caps) instead of ending the case.
 */
function plannedCategories(declines: Decline[], policy: Policy): DeclineCategory[] {
  const quick = policy.retry.categories.temporary.maxAttempts;
  let temporary = 0;
  return declines.map((d) => {
    if (d.c.category !== 'temporary') return d.c.category;
    temporary += 1;
    return temporary >= quick ? 'generic' : 'temporary';
  });
}

function categorySlot(ctx: Ctx, last: Decline): Slot | Plan {
  const { c } = last;
  const categories = ctx.policy.retry.categories;
  const planned = plannedCategories(ctx.declines, ctx.policy);
  const category = planned[planned.length - 1] ?? c.category;
  const sameCategory = planned.filter((p) => p === category).length;
  const stop = (why: string): Plan => ({ kind: 'stop', reason: ctx.say(`${c.code}: ${why}`), category: c.category });

  if (category === 'funds') {
    const rule = categories.funds;
    if (sameCategory >= rule.maxAttempts)
      return stop(`${sameCategory} funds declines, policy allows ${rule.maxAttempts}`);
    const earliest = notBefore(ctx, last, rule.minSpacingHours * HOUR);
    const slot = nextPaydaySlot(
      earliest,
      ctx.windowEnd,
      ctx.zone,
      ctx.policy.retry.localWindow,
      ctx.policy.retry.paydays,
      ctx.customer.observedPayday,
    );
    if (!slot) return stop(`no payday left before the dunning window ends ${formatLocal(ctx.windowEnd, ctx.zone)}`);
    // The merchant's funds retries by days since each customer's own payday may move the day.
    const learned = chooseFundsDay(ctx.learned, {
      policy: { at: slot.at, label: `the calendar's next ${slot.label}` },
      earliest,
      latest: ctx.windowEnd,
      zone: ctx.zone,
      window: ctx.policy.retry.localWindow,
      payday: ctx.customer.observedPayday,
      mode: ctx.policy.retry.adaptive,
      invoiceId: ctx.history.invoiceId,
      declinesSoFar: ctx.declines.length,
    });
    return {
      base: learned?.moved ? learned.at : slot.at,
      label: learned?.moved
        ? `${c.code}: learned payday timing: ${learned.evidence}`
        : `${c.code}: next ${slot.label}${learned ? `: ${learned.evidence}` : ''}`,
      category: c.category,
      windowed: true,
      jitter: true,
      remainingAfter: rule.maxAttempts - sameCategory - 1,
      // Later funds retries follow the calendar, not this one's hour: only the window bounds it.
      learnedHour: {
        category: 'funds',
        latest: ctx.windowEnd,
        from: local(slot.at, ctx.zone).startOf('day').toJSDate(),
      },
    };
  }

  const escalated = category !== c.category;
  const rule = category === 'temporary' ? categories.temporary : categories.generic;
  if (sameCategory >= rule.maxAttempts) {
    return stop(
      `${sameCategory} ${category} declines${escalated ? ' (counting temporary errors that outlasted their quick retries)' : ''}, policy allows ${rule.maxAttempts}`,
    );
  }
  if (category === 'generic') {
    let identical = 0;
    for (
      let i = ctx.declines.length - 1;
      i >= 0 && planned[i] === 'generic' && ctx.declines[i]?.c.code === c.code;
      i -= 1
    )
      identical += 1;
    const limit = categories.generic.stopAfterIdenticalDeclines;
    if (identical >= limit)
      return stop(`${identical} identical declines in a row; the issuer is not changing its answer`);
  }
  const defaultHours = rule.spacingHours[Math.min(sameCategory - 1, rule.spacingHours.length - 1)] ?? 24;
  // The merchant's learned timing may move this wait (src/dunning/adaptive.ts), never so far that
  // the policy's waits for the retries still allowed after it fall out of the window.
  const retriesAfter = Math.max(
    0,
    Math.min(rule.maxAttempts - sameCategory - 1, ctx.policy.retry.maxAttempts - ctx.counted.length - 1),
  );
  let laterHours = 0;
  for (let i = 0; i < retriesAfter; i += 1)
    laterHours += rule.spacingHours[Math.min(sameCategory + i, rule.spacingHours.length - 1)] ?? 24;
  // The table files a retry under the category of the decline it follows (a processing error
  // stays `temporary` however long it lasts), its row by the declines so far: read it the same way.
  const learned = chooseDelay(ctx.learned, {
    category: c.category as 'generic' | 'temporary',
    defaultHours,
    maxHours: (ctx.windowEnd.getTime() - last.attempt.at.getTime()) / HOUR - laterHours,
    mode: ctx.policy.retry.adaptive,
    invoiceId: ctx.history.invoiceId,
    declinesSoFar: ctx.declines.length,
  });
  const spacingHours = learned?.hours ?? defaultHours;
  const spacingMs = spacingHours * HOUR;
  const advised = (c.retryAfterMs ?? 0) > spacingMs;
  const why = escalated
    ? `still failing after ${categories.temporary.maxAttempts} temporary declines, spaced as a generic decline: `
    : '';
  const evidence = learned && !advised ? `: ${learned.evidence}` : '';
  return {
    base: notBefore(ctx, last, spacingMs),
    label: `${c.code}: ${why}${advised ? `${c.retryAfterBy ?? 'network'} asked to wait ${hours(c.retryAfterMs ?? 0)}` : `retry ${hours(spacingMs)} after the decline${evidence}`}`,
    category: c.category,
    windowed: true,
    jitter: true,
    remainingAfter: rule.maxAttempts - sameCategory - 1,
    // Quick retries of a temporary error are about the outage, not the time of day.
    ...(category === 'generic'
      ? {
          learnedHour: {
            category: c.category as LearnedCategory,
            latest: new Date(ctx.windowEnd.getTime() - laterHours * HOUR),
            from: new Date(last.attempt.at.getTime() + Math.max(spacingMs, c.retryAfterMs ?? 0)),
          },
        }
      : {}),
  };
}

/**
 * The holdout's plain schedule: fixed days after the first failure at the same local time,
 * ignoring categories. Never-retry answers and network limits still apply (handled by the caller
 * and by `finish`), because those are not the merchant's to switch off.
 */
function baselineSlot(ctx: Ctx, last: Decline): Slot | Plan {
  const days = ctx.policy.baseline.retryDays;
  const retriesUsed = ctx.counted.length - 1;
  const day = days[retriesUsed];
  const first = ctx.counted[0];
  if (day === undefined || !first) {
    return {
      kind: 'stop',
      reason: `baseline schedule done: ${retriesUsed} retries after the first failure`,
      category: last.c.category,
    };
  }
  const scheduled = local(first.at, ctx.zone).plus({ days: day }).toJSDate();
  const base = maxDate(scheduled, notBefore(ctx, last, 0));
  return {
    base,
    label: `${last.c.code}: baseline retry, day ${day} after the first failure`,
    category: last.c.category,
    windowed: false,
    jitter: true,
    remainingAfter: days.length - retriesUsed - 1,
  };
}

/** Applies the local window, network limits, jitter and the dunning window to a candidate slot. */
function finish(ctx: Ctx, slot: Slot): Plan {
  const { zone, policy } = ctx;
  const window = policy.retry.localWindow;
  const place = (d: Date) => (slot.windowed ? placeInWindow(d, zone, window) : d);
  const earliest = maxDate(slot.base, ctx.now);
  let at = place(earliest);
  const windowNote =
    at > earliest
      ? `, moved into the ${String(window.startHour).padStart(2, '0')}:00-${String(window.endHour).padStart(2, '0')}:00 local window`
      : '';
  const hour =
    slot.learnedHour && slot.windowed
      ? chooseHour(ctx.learned, {
          category: slot.learnedHour.category,
          // The policy's slot as planned from the decline, not from now: a re-plan later the same
          // morning compares from the same hour as the first plan did.
          planned: place(slot.learnedHour.from),
          earliest: at,
          latest: slot.learnedHour.latest,
          zone,
          window,
          mode: policy.retry.adaptive,
          invoiceId: ctx.history.invoiceId,
        })
      : null;
  if (hour) at = hour.at;

  const limited = cardVerdict(ctx.history, ctx.customer, ctx.targetPm, at);
  if (limited.at > at) at = place(limited.at);
  // A network hold that moved the retry leaves the learned hour behind: the reason must not claim it.
  const hourNote = hour && at.getTime() === hour.at.getTime() ? `, ${hour.evidence}` : '';

  if (slot.jitter && at < ctx.windowEnd) {
    let maxJitter = Math.min(policy.retry.jitterMinutes * 60_000, ctx.windowEnd.getTime() - at.getTime());
    if (slot.windowed) maxJitter = Math.min(maxJitter, windowClose(at, zone, window).getTime() - at.getTime());
    at = new Date(at.getTime() + jitterMs(ctx.history.invoiceId, ctx.nextAttemptNo, maxJitter));
  }
  const capNote = limited.reason ? `; held back by the ${limited.reason}` : '';
  if (at > ctx.windowEnd) {
    return {
      kind: 'stop',
      category: slot.category,
      reason: ctx.say(
        `${slot.label}: next allowed time ${formatLocal(at, zone)} is after the dunning window ends ${formatLocal(ctx.windowEnd, zone)}${capNote}`,
      ),
    };
  }
  const isLast = ctx.counted.length + 1 >= policy.retry.maxAttempts || slot.remainingAfter <= 0;
  return {
    kind: 'retry',
    at,
    isLast,
    category: slot.category,
    paymentMethod: ctx.targetPm,
    reason: ctx.say(`${slot.label}${windowNote}${hourNote}, ${formatLocal(at, zone)}${capNote}`),
  };
}

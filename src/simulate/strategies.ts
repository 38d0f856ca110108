/**
 * Retry strategies the simulator compares. A strategy decides when to retry the card that failed,
 * how long its case stays open (its window) and when its reminders go out; how customers answer a
 * reminder is the same for every strategy. Each strategy brings its own window, so the baselines
 * do not move when the merchant's policy file does.
 */
import { classifyDecline, type DeclineInfo } from '../dunning/declines.ts';
import {
  checkCharge,
  planNextAttempt,
  type CardInfo,
  type CaseHistory,
  type CustomerContext,
  type LedgerAttempt,
} from '../dunning/planner.ts';
import { choosePolicy, type Policy } from '../dunning/policy.ts';
import type { Member } from '../demo/population.ts';
import type { LearnedTable } from '../dunning/adaptive.ts';
import type { ObservedPayday } from '../dunning/observed-payday.ts';
import { defaultReminderPolicy, parseReminderPolicy, type ReminderPolicy } from '../reminders/policy.ts';
import { declineFor, type FailureReason } from '../sandbox/issuer-model.ts';
import type { ConversationRules, SimReminder } from './conversation.ts';

export interface SimAttempt {
  at: Date;
  /** 0 is the card the renewal failed on; later numbers are cards the customer put in. */
  card: number;
  /**
   * The payment method id charged: a card re-added by the customer gets a new id but stays the same
   * card (the same fingerprint). Absent: the card's first id, `paymentMethodOf(card)`.
   */
  paymentMethod?: string;
  source: 'stripe' | 'scheduled' | 'card_update';
  ok: boolean;
  /** The failure the card carries, when this attempt was declined. */
  reason: FailureReason | null;
}

export interface SimCase {
  invoiceId: string;
  openedAt: Date;
  timeZone: string;
  country: string;
  cardBrand: string;
  attempts: SimAttempt[];
  /** The payment method the next charge would use, when the customer re-added the card under a new id. */
  current?: { paymentMethod: string; card: number };
  /** The customer's attempts on its other invoices so far: card-network rules are per card. */
  otherInvoices?: SimAttempt[];
  /** When the strategy decides; the last attempt's time when absent. */
  now?: Date;
  /** The customer's payday as their ledger shows it (observed-paydays.ts); absent or null: none. */
  observedPayday?: ObservedPayday | null;
}

export interface Strategy {
  name: string;
  /** One line saying what the strategy does, printed above its results. */
  describe: string;
  /** Days from the failure until the case ends: retries, reminders and card updates count until then. */
  windowDays: number;
  /**
   * The reminders each case schedules, hours after its failure. An email that goes out may make the
   * customer put in a card, however many invoices it lists.
   */
  reminders: SimReminder[];
  /**
   * How a customer's reminders become emails: one conversation under these rules (the mailer's cap
   * and merging, src/simulate/conversation.ts), or null: every invoice its own emails, none held
   * back or merged, each a chance of its own (how the simulator counted before conversations).
   */
  conversation: ConversationRules | null;
  /** When to retry the failed card next, after its last decline; null when no blind retry follows. */
  nextRetry(c: SimCase): Date | null;
  /**
   * The policy file's segment rules: the named policy (and its strategy) a case runs, as a new case
   * would open with it. Absent: every case runs this strategy, as `default`.
   */
  segment?(m: Pick<Member, 'currency' | 'amount'>): { policy: string; strategy: Strategy };
  /**
   * The check right before a due retry charges, as the worker's runner makes it (`checkCharge`):
   * another invoice of the customer may have charged the card since the retry was planned. False:
   * the engine asks `nextRetry` again. Absent: the strategy charges whatever happened meanwhile.
   */
  allows?(c: SimCase, at: Date): boolean;
}

const DAY = 86_400_000;

export function declineInfo(reason: FailureReason, cardBrand: string): DeclineInfo {
  const d = declineFor(reason, cardBrand);
  return {
    declineCode: d.declineCode,
    failureCode: d.code,
    adviceCode: d.adviceCode,
    networkAdviceCode: d.networkAdviceCode,
    networkDeclineCode: d.networkDeclineCode,
    cardBrand,
  };
}

/** A card's first payment method id; a re-added card gets another one. */
export function paymentMethodOf(card: number): string {
  return `pm_sim_${card}`;
}

/** The card's fingerprint: what the networks count by, whatever its payment method id. */
function fingerprintOf(card: number): string {
  return `fp_sim_${card}`;
}

/** A simulated case's attempts as the worker's ledger would hold them, each with its card's fingerprint. */
export function toLedger(c: Pick<SimCase, 'attempts' | 'cardBrand'>): LedgerAttempt[] {
  return c.attempts.map((a, i) => ({
    attemptNo: i + 1,
    at: a.at,
    source: a.source,
    outcome: a.ok ? 'succeeded' : 'declined',
    paymentMethod: a.paymentMethod ?? paymentMethodOf(a.card),
    card: fingerprintOf(a.card),
    decline: a.ok || a.reason === null ? null : declineInfo(a.reason, c.cardBrand),
  }));
}

/**
 * The case as the worker's planner sees it (`loadPlanContext`): its own ledger, the customer's other
 * invoices, and the card (fingerprint and brand) behind every payment method id.
 */
export function toHistory(c: SimCase, cohort: CaseHistory['cohort']): CaseHistory {
  const last = c.attempts[c.attempts.length - 1];
  const current =
    c.current ?? (last ? { paymentMethod: last.paymentMethod ?? paymentMethodOf(last.card), card: last.card } : null);
  const cards = new Map<string, CardInfo>();
  for (const a of [...c.attempts, ...(c.otherInvoices ?? [])])
    cards.set(a.paymentMethod ?? paymentMethodOf(a.card), { card: fingerprintOf(a.card), brand: c.cardBrand });
  if (current) cards.set(current.paymentMethod, { card: fingerprintOf(current.card), brand: c.cardBrand });
  return {
    invoiceId: c.invoiceId,
    openedAt: c.openedAt,
    cohort,
    attempts: toLedger(c),
    currentPaymentMethod: current?.paymentMethod ?? null,
    otherInvoices: toLedger({ attempts: c.otherInvoices ?? [], cardBrand: c.cardBrand }),
    cards,
  };
}

/** A notice at the failure and a last chance `lastChanceHoursBefore` the window ends, as the reminder policy has them. */
export function reminderSchedule(
  windowDays: number,
  o: { firstNotice: boolean; lastChanceHoursBefore: number | null },
): SimReminder[] {
  return [
    ...(o.firstNotice ? [{ hours: 0, kind: 'first_notice' as const }] : []),
    ...(o.lastChanceHoursBefore === null
      ? []
      : [{ hours: Math.max(0, windowDays * 24 - o.lastChanceHoursBefore), kind: 'last_chance' as const }]),
  ];
}

/** The conversation rules of a reminder policy (the cap, merging, and which closing emails it sends). */
export function conversationOf(p: ReminderPolicy): ConversationRules {
  return {
    frequencyCap: p.frequencyCap,
    merge: p.merge,
    finalNotice: { enabled: p.enabled && p.finalNotice.enabled },
    recovered: { enabled: p.enabled && p.recovered.enabled },
  };
}

/** The customer as the worker's planner sees them (`CustomerContext`). */
function customerOf(c: SimCase): CustomerContext {
  return {
    timeZone: c.timeZone,
    country: c.country,
    cardBrand: c.cardBrand,
    // A fact about the customer, so every planner strategy gets it; only learned timing uses it.
    observedPayday: c.observedPayday ?? null,
  };
}

/**
 * The worker's own planner with the merchant's policy, with its window and reminders: every case
 * in the smart cohort, or (`cohort: 'holdout'`) every case on the policy's plain baseline schedule.
 */
export function plannerStrategy(
  policy: Policy,
  merchantTimeZone: string,
  name = 'policy',
  cohort: CaseHistory['cohort'] = 'smart',
  learned: LearnedTable | null = null,
): Strategy {
  const reminders = parseReminderPolicy(policy.reminders);
  return {
    name,
    describe:
      cohort === 'smart'
        ? `the planner with policy ${policy.version} (${policy.retry.maxAttempts} attempts in ${policy.retry.windowDays} days, by decline category)`
        : `the policy's holdout schedule (retries on days ${policy.baseline.retryDays.join(', ')} after the failure, in a ${policy.retry.windowDays}-day window)`,
    windowDays: policy.retry.windowDays,
    reminders: reminderSchedule(policy.retry.windowDays, {
      firstNotice: reminders.enabled && reminders.firstNotice.enabled,
      lastChanceHoursBefore:
        reminders.enabled && reminders.lastChance.enabled ? reminders.lastChance.hoursBefore : null,
    }),
    // The worker's mailer writes to the holdout's customers as to everyone else's.
    conversation: conversationOf(reminders),
    nextRetry(c) {
      const last = c.attempts[c.attempts.length - 1];
      if (!last) return null;
      const plan = planNextAttempt(
        toHistory(c, cohort),
        customerOf(c),
        policy,
        c.now ?? last.at,
        merchantTimeZone,
        learned,
      );
      return plan.kind === 'retry' ? plan.at : null;
    },
    allows(c, at) {
      return checkCharge(toHistory(c, cohort), customerOf(c), at).allowed;
    },
  };
}

/**
 * The planner with the policy's segment rules: each case runs the named policy its rule picks. The
 * simulated population has no prices, products, intervals or metadata, so only currency and amount
 * rules can match here; every other case runs the default.
 */
export function segmentedPlannerStrategy(policy: Policy, merchantTimeZone: string, name = 'policy'): Strategy {
  const base = plannerStrategy(policy, merchantTimeZone, name);
  if (!policy.segments) return base;
  const named = new Map<string, Strategy>();
  return {
    ...base,
    segment(m) {
      const chosen = choosePolicy(policy, {
        prices: [],
        products: [],
        intervals: [],
        currency: m.currency,
        amount: m.amount,
        metadata: {},
      });
      if (chosen.policy === policy) return { policy: chosen.name, strategy: base };
      let strategy = named.get(chosen.name);
      if (!strategy) {
        strategy = plannerStrategy(chosen.policy, merchantTimeZone, name);
        named.set(chosen.name, strategy);
      }
      return { policy: chosen.name, strategy };
    },
  };
}

/** Stripe's published never-retry list: even its fixed schedule stops on these. */
const STRIPE_NEVER_RETRY = new Set([
  'incorrect_number',
  'lost_card',
  'pickup_card',
  'stolen_card',
  'revocation_of_authorization',
  'revocation_of_all_authorizations',
  'authentication_required',
  'highest_risk_level',
]);

/** The baselines' reminders: a notice at the failure and a last chance two days before their window ends. */
const BASELINE_REMINDERS = { firstNotice: true, lastChanceHoursBefore: 48 };

/**
 * The baselines' emails follow the default conversation rules, not the policy file's (so they stay
 * put when it changes), and not one sequence per invoice as Stripe's own emails would: each email
 * is one chance that the customer puts in a card, so per-invoice emails would credit a baseline
 * with recoveries that come from writing more often, not from when it retries (docs/simulate.md).
 */
export const BASELINE_CONVERSATION: ConversationRules = conversationOf(defaultReminderPolicy());

/**
 * `retries` charges after the failed renewal, evenly over `days` (the last on the day the window
 * ends), at the time of day the renewal failed, whatever the decline said, except Stripe's own
 * never-retry codes unless told to ignore them: Stripe does not retry those on any schedule.
 */
export function fixedSchedule(opts: {
  retries: number;
  days: number;
  name?: string;
  ignoreNeverRetry?: boolean;
  reminders?: SimReminder[];
}): Strategy {
  const gap = (opts.days * DAY) / Math.max(1, opts.retries);
  return {
    name: opts.name ?? 'fixed',
    describe: `${opts.retries} retries evenly over ${opts.days} days after the failed renewal, whatever the decline, ${
      opts.ignoreNeverRetry ? 'never-retry codes included' : "except Stripe's never-retry codes"
    }; the case ends with the last retry`,
    windowDays: opts.days,
    reminders: opts.reminders ?? reminderSchedule(opts.days, BASELINE_REMINDERS),
    conversation: BASELINE_CONVERSATION,
    nextRetry(c) {
      const last = c.attempts[c.attempts.length - 1];
      const retries = c.attempts.filter((a) => a.source === 'scheduled').length;
      if (!last || retries >= opts.retries) return null;
      if (
        !opts.ignoreNeverRetry &&
        last.reason !== null &&
        STRIPE_NEVER_RETRY.has(declineFor(last.reason, c.cardBrand).declineCode)
      )
        return null;
      return new Date(c.openedAt.getTime() + (retries + 1) * gap);
    },
  };
}

/**
 * Stripe's recommended Smart Retries setting is "8 tries within 2 weeks", set in its dashboard as
 * a number of retries: 8 retries after the failed renewal, the last on day 14. No retries gets the
 * same 14 days and reminders, so the two baselines differ only in retrying.
 */
export const STRIPE_LIKE = { retries: 8, days: 14 } as const;

export const noRetries: Strategy = {
  name: 'no retries',
  describe: `only Stripe's failed renewal; recoveries come from reminders and card updates alone, over ${STRIPE_LIKE.days} days`,
  windowDays: STRIPE_LIKE.days,
  reminders: reminderSchedule(STRIPE_LIKE.days, BASELINE_REMINDERS),
  conversation: BASELINE_CONVERSATION,
  nextRetry: () => null,
};

/** Whether the networks said this card must never be charged again after this decline. */
export function neverRetryAfter(reason: FailureReason, cardBrand: string): boolean {
  return classifyDecline(declineInfo(reason, cardBrand)).neverRetrySameCard;
}

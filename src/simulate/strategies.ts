/**
 * Retry strategies the simulator compares. A strategy only decides when to retry the card that
 * failed; reminders and card updates are the same for every strategy, so the comparison isolates
 * retry timing.
 */
import { classifyDecline, type DeclineInfo } from '../dunning/declines.ts';
import { planNextAttempt, type CaseHistory, type LedgerAttempt } from '../dunning/planner.ts';
import type { Policy } from '../dunning/policy.ts';
import { declineFor, type FailureReason } from '../sandbox/issuer-model.ts';

export interface SimAttempt {
  at: Date;
  /** 0 is the card the renewal failed on; later numbers are cards the customer put in. */
  card: number;
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
}

export interface Strategy {
  name: string;
  /** One line saying what the strategy does, printed above its results. */
  describe: string;
  /** When to retry the failed card next, after its last decline; null when no blind retry follows. */
  nextRetry(c: SimCase): Date | null;
}

const DAY = 86_400_000;

export function declineInfo(reason: FailureReason, cardBrand: string): DeclineInfo {
  const d = declineFor(reason);
  return {
    declineCode: d.declineCode,
    failureCode: d.code,
    adviceCode: d.adviceCode,
    networkAdviceCode: d.networkAdviceCode,
    networkDeclineCode: d.networkDeclineCode,
    cardBrand,
  };
}

function toLedger(c: SimCase): LedgerAttempt[] {
  return c.attempts.map((a, i) => ({
    attemptNo: i + 1,
    at: a.at,
    source: a.source,
    outcome: a.ok ? 'succeeded' : 'declined',
    paymentMethod: `pm_sim_${a.card}`,
    decline: a.ok || a.reason === null ? null : declineInfo(a.reason, c.cardBrand),
  }));
}

/** The worker's own planner with the merchant's policy (every case in the smart cohort). */
export function plannerStrategy(policy: Policy, merchantTimeZone: string, name = 'policy'): Strategy {
  return {
    name,
    describe: `the planner with policy ${policy.version} (${policy.retry.maxAttempts} attempts in ${policy.retry.windowDays} days, by decline category)`,
    nextRetry(c) {
      const last = c.attempts[c.attempts.length - 1];
      if (!last) return null;
      const history: CaseHistory = {
        invoiceId: c.invoiceId,
        openedAt: c.openedAt,
        cohort: 'smart',
        attempts: toLedger(c),
        currentPaymentMethod: `pm_sim_${last.card}`,
      };
      const plan = planNextAttempt(history, { timeZone: c.timeZone, country: c.country, cardBrand: c.cardBrand }, policy, last.at, merchantTimeZone);
      return plan.kind === 'retry' ? plan.at : null;
    },
  };
}

/** Stripe's published never-retry list: even its fixed schedule stops on these. */
const STRIPE_NEVER_RETRY = new Set([
  'incorrect_number', 'lost_card', 'pickup_card', 'stolen_card', 'revocation_of_authorization',
  'revocation_of_all_authorizations', 'authentication_required', 'highest_risk_level',
]);

/**
 * `tries` charges (the failed renewal included) evenly over `days`, at the time of day the renewal
 * failed, whatever the decline said, except Stripe's own never-retry codes unless told to ignore them.
 */
export function fixedSchedule(opts: { tries: number; days: number; name?: string; ignoreNeverRetry?: boolean }): Strategy {
  const gap = (opts.days * DAY) / Math.max(1, opts.tries - 1);
  return {
    name: opts.name ?? 'fixed',
    describe: `${opts.tries} tries evenly over ${opts.days} days, blind to decline categories`,
    nextRetry(c) {
      const last = c.attempts[c.attempts.length - 1];
      if (!last || c.attempts.length >= opts.tries) return null;
      if (!opts.ignoreNeverRetry && last.reason !== null && STRIPE_NEVER_RETRY.has(declineFor(last.reason).declineCode)) return null;
      return new Date(c.openedAt.getTime() + c.attempts.length * gap);
    },
  };
}

export const noRetries: Strategy = {
  name: 'no retries',
  describe: 'only Stripe\'s failed renewal; recoveries come from reminders and card updates alone',
  nextRetry: () => null,
};

/** Whether the networks said this card must never be charged again after this decline. */
export function neverRetryAfter(reason: FailureReason, cardBrand: string): boolean {
  return classifyDecline(declineInfo(reason, cardBrand)).neverRetrySameCard;
}

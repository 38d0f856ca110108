import { DateTime } from 'luxon';

/**
 * The simulated card issuer: pure decisions over (card state, instant, random draw).
 * Nothing here reads a clock or keeps state; the caller passes the seeded RNG so one seed
 * replays the same story.
 *
 * The model, per failure reason: the chance that a charge goes through, from the days since the
 * card first failed and the hour in the card holder's time zone. Our assumptions, not Stripe data:
 *
 * | reason                                | chance per charge                                  | hour of day (local)                       |
 * |---------------------------------------|----------------------------------------------------|-------------------------------------------|
 * | insufficient_funds                    | paydays 0.45; other days 0.06, + 0.01 per day      | x1.4 from 05:00 to 10:00 (pay has landed, |
 * |                                       | since the failure up to 0.15 (money trickles in)   | nothing spent yet)                        |
 * | generic_decline, do_not_honor         | 0.05 per day since the failure, up to 0.5          | x0.6 from 00:00 to 06:00 (risk rules are  |
 * |                                       |                                                    | strictest at night)                       |
 * | processing_error, issuer_not_available| 1 - e^(-hours since the failure / 3)               | x0.3 from 01:00 to 04:00 (issuers' batch  |
 * |                                       |                                                    | and maintenance windows)                  |
 * | expired_card, lost_card, stolen_card, | 0: only a new card helps                           |                                           |
 * | authentication_required               |                                                    |                                           |
 *
 * Paydays are the 1st, the 15th, Fridays and the last business day of the month. Advice codes
 * depend on the card brand: only Mastercard sends Merchant Advice Codes (`network_advice_code`:
 * 03 "do not try again" for lost and stolen cards, 24 "retry after 1 hour" for issuer outages);
 * Visa and Amex declines carry none. Stripe's own `advice_code` is the same for every brand.
 */

export type FailureReason =
  | 'insufficient_funds'
  | 'expired_card'
  | 'generic_decline'
  | 'do_not_honor'
  | 'processing_error'
  | 'issuer_not_available'
  | 'lost_card'
  | 'stolen_card'
  | 'authentication_required';

export const failureReasons: readonly FailureReason[] = [
  'insufficient_funds',
  'expired_card',
  'generic_decline',
  'do_not_honor',
  'processing_error',
  'issuer_not_available',
  'lost_card',
  'stolen_card',
  'authentication_required',
];

export type Rng = () => number;

/** mulberry32: tiny, fast and good enough to make simulations repeatable. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the issuer answers, in the fields Stripe spreads over the error, charge and intent. */
export interface Decline {
  code: string;
  declineCode: string;
  adviceCode: string | null;
  networkAdviceCode: string | null;
  networkDeclineCode: string | null;
  message: string;
}

const declines: Record<FailureReason, Decline> = {
  insufficient_funds: {
    code: 'card_declined',
    declineCode: 'insufficient_funds',
    adviceCode: 'try_again_later',
    networkAdviceCode: null,
    networkDeclineCode: '51',
    message: 'Your card has insufficient funds.',
  },
  expired_card: {
    code: 'expired_card',
    declineCode: 'expired_card',
    adviceCode: 'confirm_card_data',
    networkAdviceCode: null,
    networkDeclineCode: '54',
    message: 'Your card has expired.',
  },
  generic_decline: {
    code: 'card_declined',
    declineCode: 'generic_decline',
    adviceCode: 'try_again_later',
    networkAdviceCode: null,
    networkDeclineCode: '05',
    message: 'Your card was declined.',
  },
  do_not_honor: {
    code: 'card_declined',
    declineCode: 'do_not_honor',
    adviceCode: 'try_again_later',
    networkAdviceCode: null,
    networkDeclineCode: '05',
    message: 'Your card was declined.',
  },
  processing_error: {
    code: 'processing_error',
    declineCode: 'processing_error',
    adviceCode: 'try_again_later',
    networkAdviceCode: '24',
    networkDeclineCode: '96',
    message: 'An error occurred while processing your card. Try again in a little bit.',
  },
  issuer_not_available: {
    code: 'card_declined',
    declineCode: 'issuer_not_available',
    adviceCode: 'try_again_later',
    networkAdviceCode: '24',
    networkDeclineCode: '91',
    message: 'Your card was declined.',
  },
  lost_card: {
    code: 'card_declined',
    declineCode: 'lost_card',
    adviceCode: 'do_not_try_again',
    networkAdviceCode: '03',
    networkDeclineCode: '41',
    message: 'Your card was declined.',
  },
  stolen_card: {
    code: 'card_declined',
    declineCode: 'stolen_card',
    adviceCode: 'do_not_try_again',
    networkAdviceCode: '03',
    networkDeclineCode: '43',
    message: 'Your card was declined.',
  },
  authentication_required: {
    code: 'authentication_required',
    declineCode: 'authentication_required',
    adviceCode: null,
    networkAdviceCode: null,
    networkDeclineCode: '1A',
    message: 'Your card was declined. This transaction requires authentication.',
  },
};

/** `networkAdviceCode` in the table is Mastercard's Merchant Advice Code; other brands send none. */
export function declineFor(reason: FailureReason, cardBrand: string): Decline {
  const base = declines[reason];
  return { ...base, networkAdviceCode: cardBrand === 'mastercard' ? base.networkAdviceCode : null };
}

/**
 * What Stripe answers when a merchant asks it to pay an invoice (`POST /v1/invoices/:id/pay`) with a
 * card that needs 3-D Secure: no charge and no decline code, the invoice's PaymentIntent waits in
 * `requires_action` for the customer, and the call fails with a card error of its own code.
 */
export const invoiceRequiresAction = {
  code: 'invoice_payment_intent_requires_action',
  message:
    'This payment requires additional user action before it can be completed successfully. Payment can be completed ' +
    'using the PaymentIntent associated with the invoice. For more details see: https://docs.stripe.com/billing/subscriptions/overview#requires-action',
} as const;

/** Whether an off-session charge of this card stops at 3-D Secure (only the customer can complete it). */
export function needsAuthentication(reason: FailureReason | null): boolean {
  return reason === 'authentication_required';
}

/** 1st, 15th, last business day of the month, or a Friday, in the card holder's zone. */
export function isPayday(local: DateTime): boolean {
  if (local.day === 1 || local.day === 15 || local.weekday === 5) return true;
  let last = local.endOf('month').startOf('day');
  while (last.weekday > 5) last = last.minus({ days: 1 });
  return local.day === last.day;
}

export interface ChargeContext {
  reason: FailureReason | null;
  /** `visa`, `mastercard`, `amex`...: decides the network advice code of a decline. */
  cardBrand: string;
  /** When this card first failed; recovery of temporary and generic declines counts from here. */
  firstFailedAt: Date | null;
  at: Date;
  timeZone: string;
}

function localTime(ctx: ChargeContext): DateTime {
  const local = DateTime.fromJSDate(ctx.at, { zone: ctx.timeZone });
  // An invalid zone must not silently become UTC; fail loudly here.
  if (!local.isValid) throw new Error(`invalid time zone ${ctx.timeZone}`);
  return local;
}

/** Chance that a charge made at `at` goes through: the table at the top of this file. */
export function successProbability(ctx: ChargeContext): number {
  const { reason } = ctx;
  if (reason === null) return 1;
  const since = ctx.firstFailedAt === null ? 0 : Math.max(0, ctx.at.getTime() - ctx.firstFailedAt.getTime());
  const hours = since / 3_600_000;
  switch (reason) {
    case 'insufficient_funds': {
      const local = localTime(ctx);
      const base = isPayday(local) ? 0.45 : Math.min(0.15, 0.06 + 0.01 * (hours / 24));
      const earlyMorning = local.hour >= 5 && local.hour < 10;
      return earlyMorning ? Math.min(1, base * 1.4) : base;
    }
    case 'processing_error':
    case 'issuer_not_available': {
      const hour = localTime(ctx).hour;
      const maintenance = hour >= 1 && hour < 4;
      return (1 - Math.exp(-hours / 3)) * (maintenance ? 0.3 : 1);
    }
    case 'generic_decline':
    case 'do_not_honor': {
      const night = localTime(ctx).hour < 6;
      return Math.min(0.5, 0.05 * (hours / 24)) * (night ? 0.6 : 1);
    }
    case 'expired_card':
    case 'lost_card':
    case 'stolen_card':
    case 'authentication_required':
      return 0;
  }
}

export type ChargeDecision = { ok: true } | { ok: false; decline: Decline };

export function decideCharge(ctx: ChargeContext, rng: Rng): ChargeDecision {
  if (ctx.reason === null) return { ok: true };
  if (rng() < successProbability(ctx)) return { ok: true };
  return { ok: false, decline: declineFor(ctx.reason, ctx.cardBrand) };
}

/** Whether a reminder makes this customer put in a new card. */
export function decideCardUpdate(probabilityPerReminder: number, rng: Rng): boolean {
  return rng() < probabilityPerReminder;
}

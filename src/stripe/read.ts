import type Stripe from 'stripe';

/**
 * What we read out of Stripe objects, in one place for the event processor, the runner and
 * backfill alike: ids of expandable references, an invoice's subscription, and what the bank said
 * to a charge or a PaymentIntent.
 */

/** The id of an expandable reference, whether Stripe sent the id or the expanded object. */
export function idOf(ref: string | { id: string } | null | undefined): string | null {
  if (ref === null || ref === undefined) return null;
  return typeof ref === 'string' ? ref : ref.id;
}

/** The id of the invoice's subscription, from `parent.subscription_details`; null for a one-off invoice. */
export function subscriptionOfInvoice(inv: Stripe.Invoice): string | null {
  return idOf(inv.parent?.subscription_details?.subscription ?? null);
}

/** What a failed charge told us; every field may be missing depending on which event carried it. */
export interface DeclineDetails {
  chargeId: string | null;
  paymentIntentId: string | null;
  paymentMethod: string | null;
  /** `card.fingerprint`: the same card under any payment method id. */
  cardFingerprint: string | null;
  cardBrand: string | null;
  declineCode: string | null;
  failureCode: string | null;
  adviceCode: string | null;
  networkAdviceCode: string | null;
  networkDeclineCode: string | null;
  failureMessage: string | null;
}

export const NO_DETAILS: DeclineDetails = {
  chargeId: null,
  paymentIntentId: null,
  paymentMethod: null,
  cardFingerprint: null,
  cardBrand: null,
  declineCode: null,
  failureCode: null,
  adviceCode: null,
  networkAdviceCode: null,
  networkDeclineCode: null,
  failureMessage: null,
};

/** Fields of `a` win; `b` fills the gaps. */
export function mergeDetails(a: DeclineDetails, b: DeclineDetails): DeclineDetails {
  const out = { ...a };
  for (const k of Object.keys(out) as Array<keyof DeclineDetails>) out[k] = a[k] ?? b[k];
  return out;
}

/**
 * `outcome.reason` names the decline for an issuer decline, and for a charge Stripe blocked before
 * the bank saw it (`highest_risk_level` from Radar, `rule` for the merchant's own Radar rules):
 * dropping it would retry a Radar block, which Stripe never lets through, as a generic decline.
 */
function declineReason(outcome: Stripe.Charge.Outcome | null | undefined): string | null {
  if (outcome?.type !== 'issuer_declined' && outcome?.type !== 'blocked') return null;
  return outcome.reason ?? null;
}

export function detailsOfCharge(ch: Stripe.Charge): DeclineDetails {
  return {
    chargeId: ch.id,
    paymentIntentId: idOf(ch.payment_intent),
    paymentMethod: ch.payment_method ?? null,
    cardFingerprint: ch.payment_method_details?.card?.fingerprint ?? null,
    cardBrand: ch.payment_method_details?.card?.brand ?? null,
    declineCode: declineReason(ch.outcome),
    failureCode: ch.failure_code ?? null,
    adviceCode: ch.outcome?.advice_code ?? null,
    networkAdviceCode: ch.outcome?.network_advice_code ?? null,
    networkDeclineCode: ch.outcome?.network_decline_code ?? null,
    failureMessage: ch.failure_message ?? null,
  };
}

export function detailsOfIntent(pi: Stripe.PaymentIntent): DeclineDetails {
  const e = pi.last_payment_error;
  const pm = e?.payment_method;
  return {
    ...NO_DETAILS,
    chargeId: e?.charge ?? idOf(pi.latest_charge),
    paymentIntentId: pi.id,
    paymentMethod: pm?.id ?? idOf(pi.payment_method),
    cardFingerprint: pm?.card?.fingerprint ?? null,
    cardBrand: pm?.card?.brand ?? null,
    declineCode: e?.decline_code ?? null,
    failureCode: e?.code ?? null,
    adviceCode: e?.advice_code ?? null,
    networkAdviceCode: e?.network_advice_code ?? null,
    networkDeclineCode: e?.network_decline_code ?? null,
    failureMessage: e?.message ?? null,
  };
}

/**
 * The PaymentIntents of an invoice read with `expand[]=payments.data.payment.payment_intent` (all
 * of its InvoicePayments: see `withAllPayments`), oldest first. Stripe lists newest first; the
 * payment's `created` orders them whatever order the list came in.
 */
export function intentsOf(inv: Stripe.Invoice): Stripe.PaymentIntent[] {
  const payments = [...(inv.payments?.data ?? [])].reverse();
  return payments
    .map((p, i) => ({ created: p.created, i, pi: p.payment?.payment_intent }))
    .filter(
      (x): x is { created: number; i: number; pi: Stripe.PaymentIntent } => typeof x.pi === 'object' && x.pi !== null,
    )
    .sort((a, b) => a.created - b.created || a.i - b.i)
    .map((x) => x.pi);
}

/** What the bank said to the latest of those PaymentIntents that failed; null when none did. */
export function lastIntentError(inv: Stripe.Invoice): DeclineDetails | null {
  const failed = intentsOf(inv).filter((pi) => pi.last_payment_error != null);
  const latest = failed[failed.length - 1];
  return latest ? detailsOfIntent(latest) : null;
}

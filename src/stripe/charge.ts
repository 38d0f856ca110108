import Stripe from 'stripe';
import { idOf, intentsOf } from './read.ts';
import type { Throttle } from './throttle.ts';

/**
 * The charge call and what its failure means. A charge has three outcomes, not two: the bank said
 * no (`declined`), the request never reached Stripe (`not_sent`), or nobody knows whether it ran
 * (`unknown`). Only the first one uses up a dunning attempt.
 */

export interface StripeGateway {
  stripe: Stripe;
  throttle: Throttle;
}

export interface DeclineDetails {
  declineCode: string | null;
  failureCode: string | null;
  adviceCode: string | null;
  networkAdviceCode: string | null;
  networkDeclineCode: string | null;
  chargeId: string | null;
  paymentIntentId: string | null;
  paymentMethod: string | null;
  cardFingerprint: string | null;
  cardBrand: string | null;
  message: string;
}

export type ChargeOutcome =
  | { kind: 'succeeded'; invoice: Stripe.Invoice; paidBy: PaidBy }
  | { kind: 'declined'; decline: DeclineDetails }
  /** Stripe refused the request itself (e.g. the invoice is already paid or void): re-read it. */
  | { kind: 'refused'; message: string; code: string | null }
  | { kind: 'not_sent'; message: string; retryAfterMs: number | null }
  | { kind: 'unknown'; message: string }
  /**
   * The key was first used with other parameters (Stripe answers 400 idempotency_error). Stripe will
   * not replay or say what that first request did, and asking again can only get the same answer.
   */
  | { kind: 'key_conflict'; message: string };

/** Wraps any Stripe call: every request of the process goes through the shared throttle. */
export async function call<T>(gateway: StripeGateway, fn: (stripe: Stripe) => Promise<T>): Promise<T> {
  await gateway.throttle.take();
  return fn(gateway.stripe);
}

/**
 * The invoice as Stripe holds it now; null when Stripe answers 404 (a deleted draft, or an invoice
 * of another account or mode than this key): asking again would get the same answer forever.
 */
export async function retrieveInvoice(gateway: StripeGateway, invoiceId: string): Promise<Stripe.Invoice | null> {
  // In the same request: the subscription, whose `pause_collection` decides whether to charge, and
  // the PaymentIntents, whose last error tells what the bank said to Stripe's own charge when its
  // event has not reached us yet.
  const params: Stripe.InvoiceRetrieveParams = {
    expand: ['parent.subscription_details.subscription', 'payments.data.payment.payment_intent'],
  };
  try {
    return await withAllPayments(gateway, await call(gateway, (s) => s.invoices.retrieve(invoiceId, params)));
  } catch (cause) {
    if (cause instanceof Stripe.errors.StripeError && cause.statusCode === 404) return null;
    throw new Error(`cannot read invoice ${invoiceId} from Stripe`, { cause });
  }
}

/**
 * The invoice with every one of its InvoicePayments, PaymentIntents expanded. An invoice can have
 * several, and an expanded `payments` holds only its first page (`has_more` says there is more):
 * the rest is listed through `GET /v1/invoice_payments`, each page one request through the throttle.
 * An invoice read without `payments` is returned as it is.
 */
export async function withAllPayments(gateway: StripeGateway, inv: Stripe.Invoice): Promise<Stripe.Invoice> {
  const list = inv.payments;
  if (!list?.has_more || !inv.id) return inv;
  const invoice = inv.id;
  const data = [...list.data];
  for (;;) {
    const after = data[data.length - 1]?.id;
    const page = await call(gateway, (s) =>
      s.invoicePayments.list({
        invoice,
        limit: 100,
        expand: ['data.payment.payment_intent'],
        ...(after ? { starting_after: after } : {}),
      }),
    );
    data.push(...page.data);
    if (!page.has_more || page.data.length === 0) break;
  }
  return { ...inv, payments: { ...list, data, has_more: false } };
}

/**
 * The failed charges of one PaymentIntent, every page. The PaymentIntent lists no charges since API
 * 2022-11-15 (only `latest_charge`), and each try on it is a charge of its own: "Returns a list of
 * charges you've previously created", filtered by `payment_intent` ("Only return charges that were
 * created by the PaymentIntent specified by this PaymentIntent ID").
 */
export async function failedChargesOf(gateway: StripeGateway, paymentIntent: string): Promise<Stripe.Charge[]> {
  const out: Stripe.Charge[] = [];
  let startingAfter: string | undefined;
  for (;;) {
    const params: Stripe.ChargeListParams = {
      payment_intent: paymentIntent,
      limit: 100,
      ...(startingAfter ? { starting_after: startingAfter } : {}),
    };
    const page = await call(gateway, (s) => s.charges.list(params));
    out.push(...page.data.filter((c) => c.status === 'failed'));
    const last = page.data[page.data.length - 1];
    if (!page.has_more || !last) return out;
    startingAfter = last.id;
  }
}

/** An invoice at our API version with every failed charge on it, oldest first. */
export interface InvoiceCharges {
  invoice: Stripe.Invoice;
  failedCharges: Stripe.Charge[];
}

/**
 * The invoice (see `retrieveInvoice`: all of its InvoicePayments, their PaymentIntents expanded)
 * and every failed charge of every one of those PaymentIntents, whoever made it: the worker, Stripe,
 * the customer on the hosted invoice page, someone in the Dashboard. One request for the invoice,
 * one more per further page of payments, one per PaymentIntent (and page of its charges), each
 * through the shared throttle. Null when Stripe has no such invoice.
 */
export async function retrieveInvoiceCharges(
  gateway: StripeGateway,
  invoiceId: string,
): Promise<InvoiceCharges | null> {
  const invoice = await retrieveInvoice(gateway, invoiceId);
  if (!invoice) return null;
  const failedCharges: Stripe.Charge[] = [];
  try {
    for (const pi of intentsOf(invoice)) failedCharges.push(...(await failedChargesOf(gateway, pi.id)));
  } catch (cause) {
    throw new Error(`cannot list the charges of invoice ${invoiceId} from Stripe`, { cause });
  }
  failedCharges.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  return { invoice, failedCharges };
}

/**
 * Whether asking Stripe again later may get another answer: it was busy (429), a lock was held
 * (409), it had trouble of its own (5xx), or it never answered (connection refused, timeout).
 */
export function isTransientStripeError(err: unknown): boolean {
  if (!(err instanceof Stripe.errors.StripeError)) return true;
  const status = err.statusCode;
  return (
    err instanceof Stripe.errors.StripeConnectionError ||
    err instanceof Stripe.errors.StripeRateLimitError ||
    err instanceof Stripe.errors.StripeAPIError ||
    status === undefined ||
    status === 409 ||
    status === 429 ||
    status >= 500
  );
}

export interface ReadRetries {
  /** Tries in all, the first included. */
  tries: number;
  /** Wait before the second try; doubles after each. */
  firstDelayMs: number;
}

/**
 * A read repeated, with backoff, while Stripe's answer is transient. Reads only: repeating them is
 * always safe, where a write has an idempotency key and an outcome of its own to reason about.
 */
export async function readWithRetries<T>(read: () => Promise<T>, r: ReadRetries): Promise<T> {
  for (let tryNo = 1; ; tryNo += 1) {
    try {
      return await read();
    } catch (err) {
      if (tryNo >= r.tries || !isTransientStripeError(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, r.firstDelayMs * 2 ** (tryNo - 1)));
    }
  }
}

/**
 * The customer as Stripe holds it now; null when it was deleted. Repeated while Stripe is busy
 * (by default three tries within about 1.5 s): without it a customer first seen during a burst of
 * 429s would be dunned in the merchant's zone and language.
 */
export async function retrieveCustomer(
  gateway: StripeGateway,
  customerId: string,
  retries: ReadRetries = { tries: 3, firstDelayMs: 500 },
): Promise<Stripe.Customer | null> {
  try {
    const c = await readWithRetries(() => call(gateway, (s) => s.customers.retrieve(customerId)), retries);
    return c.deleted ? null : c;
  } catch (cause) {
    throw new Error(`cannot read customer ${customerId} from Stripe`, { cause });
  }
}

/**
 * `POST /v1/invoices/:id/pay` with the attempt's idempotency key. The same key with the same
 * parameters is safe to send again: Stripe replays the first answer, so a retried request never
 * charges twice.
 */
export async function payInvoice(
  gateway: StripeGateway,
  invoiceId: string,
  idempotencyKey: string,
  paymentMethod: string | null,
): Promise<ChargeOutcome> {
  // Since API 2025-03-31 the invoice names its PaymentIntent only under `payments`, and the
  // charge only on that PaymentIntent.
  const params: Stripe.InvoicePayParams = {
    expand: ['payments', 'payments.data.payment.payment_intent'],
    ...(paymentMethod ? { payment_method: paymentMethod } : {}),
  };
  try {
    const invoice = await call(gateway, (s) => s.invoices.pay(invoiceId, params, { idempotencyKey }));
    return { kind: 'succeeded', invoice, paidBy: paidBy(invoice) };
  } catch (err) {
    return classifyChargeError(err);
  }
}

/** What paid the invoice, as far as the (expanded) invoice says. */
export interface PaidBy {
  chargeId: string | null;
  paymentIntentId: string | null;
}

export function paidBy(invoice: Stripe.Invoice): PaidBy {
  const paid = invoice.payments?.data.find((p) => p.status === 'paid');
  const pi = paid?.payment.payment_intent ?? null;
  const charge = paid?.payment.charge ?? (pi !== null && typeof pi !== 'string' ? pi.latest_charge : null) ?? null;
  return {
    chargeId: idOf(charge),
    paymentIntentId: idOf(pi),
  };
}

const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Exported for tests: maps an SDK error to one of the outcomes. Unrecognised errors count as unknown. */
export function classifyChargeError(err: unknown): ChargeOutcome {
  if (!(err instanceof Stripe.errors.StripeError)) {
    return { kind: 'unknown', message: err instanceof Error ? err.message : String(err) };
  }
  if (err instanceof Stripe.errors.StripeCardError || err.statusCode === 402) {
    const raw = (err.raw ?? {}) as Record<string, unknown>;
    const pi = err.payment_intent;
    const pm = err.payment_method;
    return {
      kind: 'declined',
      decline: {
        // The SDK gives a missing decline code as '' (Stripe sends none with, e.g., 3-D Secure's
        // invoice_payment_intent_requires_action); '' is no code, not a code to record.
        declineCode: stringOrNull(err.decline_code),
        failureCode: stringOrNull(err.code),
        adviceCode: err.advice_code ?? stringOrNull(raw.advice_code),
        networkAdviceCode: err.network_advice_code ?? stringOrNull(raw.network_advice_code),
        networkDeclineCode: err.network_decline_code ?? stringOrNull(raw.network_decline_code),
        chargeId: err.charge ?? null,
        paymentIntentId: pi?.id ?? null,
        paymentMethod: pm?.id ?? null,
        cardFingerprint: pm?.card?.fingerprint ?? null,
        cardBrand: pm?.card?.brand ?? null,
        message: err.message,
      },
    };
  }
  if (err instanceof Stripe.errors.StripeRateLimitError || err.statusCode === 429) {
    const header = err.headers?.['retry-after'];
    const seconds = header === undefined ? NaN : Number(header);
    return { kind: 'not_sent', message: err.message, retryAfterMs: Number.isFinite(seconds) ? seconds * 1000 : null };
  }
  // Another request with this key is still running: it was not executed twice, ask again later.
  if (err.statusCode === 409) {
    return { kind: 'not_sent', message: err.message, retryAfterMs: null };
  }
  if (err instanceof Stripe.errors.StripeIdempotencyError) {
    return { kind: 'key_conflict', message: err.message };
  }
  if (err instanceof Stripe.errors.StripeConnectionError) {
    const code = (err.detail as { code?: string } | undefined)?.code;
    // The SDK's message ("An error occurred with our connection to Stripe") says neither why nor
    // what to check; this one is logged and stored on the attempt.
    const message = `${err.message} (${code ?? 'no answer'}: check STRIPE_API_BASE, or the network to Stripe)`;
    // Refused or unresolvable: the request cannot have reached Stripe. Anything else (timeout,
    // reset) may have run there.
    if (code !== undefined && NOT_SENT_CODES.has(code)) return { kind: 'not_sent', message, retryAfterMs: null };
    return { kind: 'unknown', message };
  }
  if (
    err instanceof Stripe.errors.StripeInvalidRequestError ||
    (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
  ) {
    return { kind: 'refused', message: err.message, code: err.code ?? null };
  }
  return { kind: 'unknown', message: err.message };
}

function stringOrNull(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

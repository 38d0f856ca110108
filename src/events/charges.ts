import type Stripe from 'stripe';
import type { Tx } from '../db.ts';
import type { HandlerContext, Outcome } from './context.ts';
import { classifyDecline } from '../dunning/declines.ts';
import { enrichAttempt, ourAttemptMayOwn, parkChargeFailure, rememberCard, startedBy } from '../ledger.ts';
import { detailsOfCharge, detailsOfIntent, idOf, type DeclineDetails } from '../stripe/read.ts';

/**
 * `charge.failed` and `payment_intent.payment_failed` carry the decline details that the invoice
 * event lacks. They enrich the ledger row of the same charge (ours or Stripe's) and never add one:
 * the invoice event is what counts an attempt. With a Stripe key that row is found by charge id
 * first (the invoice event records every failed charge by id); else by the rules below, which only
 * find rows recorded without a charge id.
 */

/**
 * The ledger row these details belong to: the row with this charge id (the runner records its own
 * charges), else the invoice's latest declined row without a charge, found through the
 * PaymentIntent, unless one of our attempts on that invoice is still unresolved and may have made
 * this charge (then the runner will record it). An attempt of ours that started after the charge,
 * give or take the clocks' skew, did not make it: a charge.failed may arrive late, behind our retry.
 */
async function attemptFor(tx: Tx, d: DeclineDetails, customerId: string | null, at: Date): Promise<number | null> {
  if (d.chargeId) {
    const byCharge = await tx`select id from payment_attempts where charge_id = ${d.chargeId}`;
    if (byCharge[0]) return Number(byCharge[0].id);
  }
  if (d.paymentIntentId) {
    const known = await tx`select 1 from payment_attempts where payment_intent_id = ${d.paymentIntentId} limit 1`;
    if (known.length > 0) return byIntent(tx, d.paymentIntentId, at);
  }
  if (!customerId) return null;
  // Webhook invoices name no charge: a Stripe attempt recorded without one, for this customer,
  // within the hour around this charge, is the one it belongs to (unless one of ours may own it).
  const from = new Date(at.getTime() - 3600_000);
  const to = new Date(at.getTime() + 3600_000);
  const rows = await tx`
    select a.id, a.invoice_id from payment_attempts a join invoices i on i.id = a.invoice_id
     where i.customer_id = ${customerId} and a.source = 'stripe' and a.status = 'declined'
       and a.charge_id is null and a.payment_intent_id is null and a.finished_at between ${from} and ${to}
     order by a.finished_at desc limit 1`;
  const r = rows[0];
  if (!r) return null;
  // Ours on any of the customer's invoices: the charge names no invoice, so it may be that one's.
  const [{ busy }] = (await tx`select ${ourAttemptMayOwn(tx, customerId, at)} as busy`) as [{ busy: boolean }];
  return busy ? null : Number(r.id);
}

async function attemptByCharge(tx: Tx, d: DeclineDetails): Promise<number | null> {
  if (!d.chargeId) return null;
  const [row] = await tx`select id from payment_attempts where charge_id = ${d.chargeId}`;
  return row ? Number(row.id) : null;
}

/** `at`: the charge's time; attempts that started after it cannot have made it. */
async function byIntent(tx: Tx, paymentIntentId: string, at: Date): Promise<number | null> {
  const rows = await tx`
    select id, status, charge_id, started_at from payment_attempts
     where invoice_id in (select invoice_id from payment_attempts where payment_intent_id = ${paymentIntentId})
     order by started_at desc nulls first, attempt_no desc`;
  const started = rows.filter((r) => startedBy(r.started_at as Date | null, at));
  if (started.some((r) => r.status === 'in_flight' || r.status === 'unknown')) return null;
  // The latest declined row without a charge that had started by the charge's time.
  const open = started.find((r) => r.status === 'declined' && r.charge_id === null);
  return open ? Number(open.id) : null;
}

async function apply(ctx: HandlerContext, d: DeclineDetails, customerId: string | null): Promise<Outcome> {
  if (!d.chargeId && !d.paymentIntentId) return 'ignored';
  ctx.deps.reportUnknownCodes?.(classifyDecline(d));
  await rememberCard(ctx.tx, {
    paymentMethod: d.paymentMethod,
    customerId,
    fingerprint: d.cardFingerprint,
    brand: d.cardBrand,
    at: ctx.at,
  });
  // With the invoice's charges read from Stripe, each failed charge reaches the ledger by its id
  // from the invoice event; these details join that row by id. A Stripe row without any charge id
  // is one whose invoice event could not read them (Stripe busy or away): for it, as without a
  // key, the rules of `attemptFor`.
  const attemptId = ctx.deps.fetchInvoiceCharges
    ? ((await attemptByCharge(ctx.tx, d)) ?? (await attemptFor(ctx.tx, d, customerId, ctx.at)))
    : await attemptFor(ctx.tx, d, customerId, ctx.at);
  if (attemptId !== null) {
    const enriched = await enrichAttempt(ctx.tx, attemptId, d);
    ctx.log.debug({ attemptId, chargeId: d.chargeId }, 'attempt enriched with decline details');
    if (enriched?.declineChanged && enriched.caseId !== null) {
      await ctx.deps.hooks.declineLearned?.(ctx.tx, {
        caseId: enriched.caseId,
        invoiceId: enriched.invoiceId,
        attemptId,
        at: ctx.at,
      });
    }
  } else {
    await parkChargeFailure(ctx.tx, customerId, ctx.at, d);
  }
  return 'processed';
}

export async function chargeFailed(ctx: HandlerContext): Promise<Outcome> {
  const ch = ctx.event.data.object as Stripe.Charge;
  return apply(ctx, detailsOfCharge(ch), idOf(ch.customer));
}

export async function intentFailed(ctx: HandlerContext): Promise<Outcome> {
  const pi = ctx.event.data.object as Stripe.PaymentIntent;
  return apply(ctx, detailsOfIntent(pi), idOf(pi.customer));
}

import type Stripe from 'stripe';
import { EventUnprocessable, type HandlerContext, type Outcome } from './context.ts';
import {
  caseOfInvoice,
  claimChargeFailure,
  claimFailureRow,
  closeCase,
  enrichAttempt,
  insertStripeAttempt,
  ledgerOf,
  openCase,
  recoveryPath,
  refreshCaseDeclines,
} from '../ledger.ts';
import { loseToDeletedSubscription, subscriptionDeletedInOurCopy } from './customers.ts';
import { recordFailedCharges } from './invoice-charges.ts';
import { upsertInvoice, type InvoiceState } from './objects.ts';
import { idOf, NO_DETAILS } from '../stripe/read.ts';
import { segmentFactsOf } from '../dunning/segment-facts.ts';

/** Handlers for `invoice.*` events. Each first brings our invoice copy up to date, then acts on the result. */

function invoiceOf(ctx: HandlerContext): Stripe.Invoice {
  return ctx.event.data.object as Stripe.Invoice;
}

/** The payment Stripe recorded as paid on the invoice (present when the payload expands `payments`). */
function paidPayment(inv: Stripe.Invoice): { chargeId: string | null; offStripe: boolean } {
  const paid = inv.payments?.data.find((p) => p.status === 'paid');
  const offStripe = (inv.amount_paid_off_stripe ?? 0) > 0 || paid?.payment.type === 'payment_record';
  return { chargeId: idOf(paid?.payment.charge ?? null), offStripe };
}

function intentOf(inv: Stripe.Invoice): string | null {
  const withIntent = (inv.payments?.data ?? []).filter((p) => p.payment.payment_intent);
  return idOf(withIntent[withIntent.length - 1]?.payment.payment_intent ?? null);
}

/**
 * Closes the open case of a paid or void invoice. Runs after every invoice event, so the final
 * state wins whichever event brought it.
 */
async function settle(ctx: HandlerContext, state: InvoiceState, inv: Stripe.Invoice): Promise<boolean> {
  if (state.status !== 'paid' && state.status !== 'void') return false;
  const c = await caseOfInvoice(ctx.tx, state.id);
  if (!c || c.status !== 'open') return true;
  if (state.status === 'paid') {
    const paid = paidPayment(inv);
    const path = recoveryPath(await ledgerOf(ctx.tx, state.id), paid.chargeId, paid.offStripe);
    const amount = state.amountPaid > 0 ? state.amountPaid : state.amountDue;
    await closeCase(ctx.tx, c.caseId, {
      status: 'recovered',
      reason: 'invoice paid',
      at: ctx.at,
      recoveryPath: path,
      invoicePaid: amount,
    });
    ctx.log.info({ caseId: c.caseId, invoiceId: state.id, recoveryPath: path }, 'dunning case recovered');
    await ctx.deps.hooks.caseClosed?.(ctx.tx, {
      caseId: c.caseId,
      invoiceId: state.id,
      status: 'recovered',
      reason: 'invoice paid',
      at: ctx.at,
    });
  } else {
    await closeCase(ctx.tx, c.caseId, { status: 'closed', reason: 'invoice voided', at: ctx.at });
    ctx.log.info({ caseId: c.caseId, invoiceId: state.id }, 'dunning case closed');
    await ctx.deps.hooks.caseClosed?.(ctx.tx, {
      caseId: c.caseId,
      invoiceId: state.id,
      status: 'closed',
      reason: 'invoice voided',
      at: ctx.at,
    });
  }
  return true;
}

/** Only an open invoice that Stripe charges automatically is ours to dun. */
async function dunnable(ctx: HandlerContext): Promise<{ state: InvoiceState; inv: Stripe.Invoice } | null> {
  const inv = invoiceOf(ctx);
  const state = await upsertInvoice(ctx.tx, inv, ctx.at);
  if (!state) return null;
  if (await settle(ctx, state, inv)) return null;
  if (state.status !== 'open' || inv.collection_method !== 'charge_automatically') return null;
  return { state, inv };
}

/**
 * A failure that reaches us after its subscription's deletion (events arrive in any order) ends as
 * it would have in order: the case is opened with the failure in its ledger and at once closed as
 * lost, as `customer.subscription.deleted` closes the cases it finds open. Not opening it at all
 * would drop the invoice from the lost figures whenever the deletion happened to arrive first.
 * Returns true when the case was closed; the caller then plans nothing.
 */
async function lostAlready(ctx: HandlerContext, state: InvoiceState, caseId: number): Promise<boolean> {
  if (!(await subscriptionDeletedInOurCopy(ctx, state.subscriptionId))) return false;
  return loseToDeletedSubscription(ctx, caseId, state.id);
}

/** The policy a new case of this invoice opens with: the segment rules' choice, else the default. */
async function policyFor(ctx: HandlerContext, invoiceId: string) {
  const facts = ctx.deps.choosePolicy ? await segmentFactsOf(ctx.tx, invoiceId) : null;
  if (!facts || !ctx.deps.choosePolicy) return { name: 'default', ...ctx.deps.policy };
  return ctx.deps.choosePolicy(facts);
}

async function openFor(ctx: HandlerContext, state: InvoiceState) {
  const policy = await policyFor(ctx, state.id);
  const opened = await openCase(ctx.tx, {
    invoiceId: state.id,
    customerId: state.customerId,
    currency: state.currency,
    amount: state.amountRemaining,
    policyVersion: policy.version,
    policyBody: policy.body,
    policyName: policy.name,
    cohort: ctx.deps.assignCohort(state.id),
    at: ctx.at,
  });
  if (opened.opened && policy.name !== 'default') {
    ctx.log.info(
      { caseId: opened.caseId, invoiceId: state.id, policy: policy.name },
      'case opened under a segment policy',
    );
  }
  return opened;
}

/**
 * Records the failure an `invoice.payment_failed` reports, once, and returns its ledger row. Stripe
 * sends the event for every failed try, whoever made it ("Occurs whenever an invoice payment attempt
 * fails"), but its `attempt_count` moves only for the first try and Stripe's automatic retries, so
 * it cannot tell a new failure from one we know. With the invoice's failed charges read from Stripe
 * (`fetchInvoiceCharges`), every one of them is put on the ledger by its id (see
 * `recordFailedCharges`). Without them (no Stripe key, or the read failed) the event is matched to
 * the try it reports, ours or one backfill read, by time (see `claimFailureRow`); an event no known
 * try explains is a try someone else made and gets a row of its own.
 */
async function recordFailure(
  ctx: HandlerContext,
  inv: Stripe.Invoice,
  c: { caseId: number; invoiceId: string; customerId: string },
): Promise<number> {
  if (ctx.failedCharges) return recordFailedCharges(ctx, c, ctx.failedCharges);
  const known = await claimFailureRow(ctx.tx, c.invoiceId, ctx.event.id, ctx.at);
  if (known !== null) return known;
  const ledger = await ledgerOf(ctx.tx, c.invoiceId);
  const attemptNo = Math.max(0, ...ledger.map((a) => a.attemptNo)) + 1;
  const paymentIntentId = intentOf(inv);
  const attemptId = await insertStripeAttempt(ctx.tx, {
    caseId: c.caseId,
    invoiceId: c.invoiceId,
    attemptNo,
    at: ctx.at,
    eventId: ctx.event.id,
    details: { ...NO_DETAILS, paymentIntentId },
  });
  const parked = await claimChargeFailure(ctx.tx, {
    invoiceId: c.invoiceId,
    paymentIntentId,
    customerId: c.customerId,
    before: ctx.at,
    attemptId,
  });
  if (parked) await enrichAttempt(ctx.tx, attemptId, parked);
  await refreshCaseDeclines(ctx.tx, c.caseId);
  return attemptId;
}

/** ISO 4217 codes (Stripe's currencies are their lower-case forms). */
const CURRENCIES = new Set(Intl.supportedValuesOf('currency').map((c) => c.toLowerCase()));

/** Why an invoice cannot be dunned at all, whatever its state: not a debt in a real currency. */
function undunnable(inv: Stripe.Invoice): string | null {
  if (!Number.isInteger(inv.amount_due) || inv.amount_due < 0)
    return `invoice ${inv.id}: amount_due ${inv.amount_due} is not an amount to collect`;
  if (typeof inv.currency !== 'string' || !CURRENCIES.has(inv.currency))
    return `invoice ${inv.id}: currency "${String(inv.currency)}" is not an ISO 4217 currency`;
  return null;
}

export async function paymentFailed(ctx: HandlerContext): Promise<Outcome> {
  const reason = undunnable(invoiceOf(ctx));
  if (reason) throw new EventUnprocessable(reason);
  const d = await dunnable(ctx);
  if (!d) {
    await recordPastFailure(ctx);
    return 'processed';
  }
  const { state, inv } = d;
  const c = await openFor(ctx, state);
  if (c.status !== 'open') {
    await recordPastFailure(ctx);
    return 'processed';
  }
  const attemptId = await recordFailure(ctx, inv, {
    caseId: c.caseId,
    invoiceId: state.id,
    customerId: state.customerId,
  });
  ctx.log.info({ caseId: c.caseId, invoiceId: state.id, attemptId, opened: c.opened }, 'payment failure recorded');
  if (await lostAlready(ctx, state, c.caseId)) return 'processed';
  await ctx.deps.hooks.paymentFailed?.(ctx.tx, {
    caseId: c.caseId,
    invoiceId: state.id,
    attemptId,
    opened: c.opened,
    at: ctx.at,
  });
  return 'processed';
}

/**
 * A failure whose event arrives after its case closed (paid, lost or voided since) belongs to the
 * case's history when it happened before the close: recorded in the ledger, so the case's first
 * decline and attempt count are right in the reports; nothing is planned or sent.
 */
async function recordPastFailure(ctx: HandlerContext): Promise<void> {
  const inv = invoiceOf(ctx);
  const customerId = idOf(inv.customer);
  if (!inv.id || !customerId) return;
  const c = await caseOfInvoice(ctx.tx, inv.id);
  if (!c || c.status === 'open' || !c.closedAt || c.closedAt.getTime() <= ctx.at.getTime()) return;
  const attemptId = await recordFailure(ctx, inv, { caseId: c.caseId, invoiceId: inv.id, customerId });
  ctx.log.info({ caseId: c.caseId, invoiceId: inv.id, attemptId }, 'failure recorded in the history of a closed case');
}

export async function actionRequired(ctx: HandlerContext): Promise<Outcome> {
  const d = await dunnable(ctx);
  if (!d) return 'processed';
  const c = await openFor(ctx, d.state);
  if (c.status !== 'open') return 'processed';
  if (await lostAlready(ctx, d.state, c.caseId)) return 'processed';
  await ctx.deps.hooks.actionRequired?.(ctx.tx, {
    caseId: c.caseId,
    invoiceId: d.state.id,
    opened: c.opened,
    at: ctx.at,
  });
  return 'processed';
}

/** invoice.paid, invoice.payment_succeeded, invoice.voided, invoice.marked_uncollectible, invoice.updated. */
export async function invoiceChanged(ctx: HandlerContext): Promise<Outcome> {
  const inv = invoiceOf(ctx);
  const state = await upsertInvoice(ctx.tx, inv, ctx.at);
  if (!state) return 'ignored';
  await settle(ctx, state, inv);
  return 'processed';
}

import type Stripe from 'stripe';
import type { HandlerContext, Outcome } from './context.ts';
import { recordCard } from './cards.ts';
import { closeCase, recordCardUpdate, rememberCard } from '../ledger.ts';
import { upsertCustomer, upsertSubscription } from './objects.ts';
import { idOf } from '../stripe/read.ts';

/** Handlers for customers, subscriptions and payment methods. */

export async function customerUpdated(ctx: HandlerContext): Promise<Outcome> {
  const c = ctx.event.data.object as Stripe.Customer;
  const previous = ctx.event.data.previous_attributes as Partial<Stripe.Customer> | undefined;
  const before =
    previous && 'invoice_settings' in previous
      ? idOf(previous.invoice_settings?.default_payment_method ?? null)
      : undefined;
  const applied = await upsertCustomer(ctx.tx, c, ctx.at, before);
  const pm = idOf(c.invoice_settings?.default_payment_method ?? null);
  // Only a changed default card is news; an older event must not announce a card that was since replaced.
  if (applied && pm && previous && 'invoice_settings' in previous && !(await supersededCard(ctx, c.id, pm))) {
    await ctx.deps.hooks.paymentMethodChanged?.(ctx.tx, { customerId: c.id, paymentMethod: pm, at: ctx.at });
    await stampCardUpdate(ctx, c.id, pm);
  }
  return 'processed';
}

/** customer.subscription.created and .updated: our copy, and news when collection was paused or resumed. */
export async function subscriptionUpdated(ctx: HandlerContext): Promise<Outcome> {
  const s = ctx.event.data.object as Stripe.Subscription;
  const pauseOf = async () =>
    (
      await ctx.tx`
    select pause_collection_behavior as b, pause_collection_resumes_at as r from subscriptions where id = ${s.id}`
    )[0];
  const before = await pauseOf();
  if (!(await upsertSubscription(ctx.tx, s, ctx.at))) return 'processed';
  const after = await pauseOf();
  const paused = (p: typeof before) => (p?.b ?? null) !== null;
  const resumesAt = (p: typeof before) => (p?.r as Date | null | undefined)?.getTime() ?? null;
  if (paused(before) !== paused(after) || resumesAt(before) !== resumesAt(after)) {
    ctx.log.info({ subscriptionId: s.id, paused: paused(after) }, 'subscription collection pause changed');
    await ctx.deps.hooks.collectionPauseChanged?.(ctx.tx, { subscriptionId: s.id, at: ctx.at });
  }
  return 'processed';
}

/** A deleted subscription ends dunning on its invoices: what is still open is lost. */
export async function subscriptionDeleted(ctx: HandlerContext): Promise<Outcome> {
  const s = ctx.event.data.object as Stripe.Subscription;
  await upsertSubscription(ctx.tx, s, ctx.at);
  const open = await ctx.tx`
    select c.id, c.invoice_id from dunning_cases c join invoices i on i.id = c.invoice_id
     where i.subscription_id = ${s.id} and c.status = 'open' for update of c`;
  for (const r of open) await loseToDeletedSubscription(ctx, Number(r.id), r.invoice_id as string);
  return 'processed';
}

/**
 * Closes an open case as lost because its subscription was deleted, and tells the hooks (they
 * cancel planned retries and reminders, and send the final notice).
 */
export async function loseToDeletedSubscription(
  ctx: HandlerContext,
  caseId: number,
  invoiceId: string,
): Promise<boolean> {
  if (!(await closeCase(ctx.tx, caseId, { status: 'lost', reason: 'subscription deleted', at: ctx.at }))) return false;
  ctx.log.info({ caseId, invoiceId }, 'dunning case lost');
  await ctx.deps.hooks.caseClosed?.(ctx.tx, {
    caseId,
    invoiceId,
    status: 'lost',
    reason: 'subscription deleted',
    at: ctx.at,
  });
  return true;
}

/** Our copy says the subscription was deleted (canceled is final: no later event reopens it). */
export async function subscriptionDeletedInOurCopy(
  ctx: HandlerContext,
  subscriptionId: string | null,
): Promise<boolean> {
  if (!subscriptionId) return false;
  const rows = await ctx.tx`select 1 from subscriptions where id = ${subscriptionId} and status = 'canceled'`;
  return rows.length > 0;
}

/**
 * payment_method.attached, .updated and .automatically_updated ("Occurs whenever a payment
 * method's details are automatically updated by the network": the card updater's new number or
 * expiry). Each keeps the card's expiry for the expiry scan; new card details are news for retries.
 */
export async function paymentMethodChanged(ctx: HandlerContext): Promise<Outcome> {
  const pm = ctx.event.data.object as Stripe.PaymentMethod;
  const customerId = idOf(pm.customer);
  if (!customerId) return 'ignored';
  // Before anything else: the fingerprint says whether this is a card we know under another id.
  await rememberCard(ctx.tx, {
    paymentMethod: pm.id,
    customerId,
    fingerprint: pm.card?.fingerprint ?? null,
    brand: pm.card?.brand ?? null,
    at: ctx.at,
  });
  const fresh = await recordCard(ctx.tx, pm, ctx.at);
  // An update through the API that leaves the card alone (billing details, metadata) is no card news.
  const previous = ctx.event.data.previous_attributes as Partial<Stripe.PaymentMethod> | undefined;
  if (ctx.event.type === 'payment_method.updated' && !(fresh && previous && 'card' in previous)) return 'processed';
  if (await supersededCard(ctx, customerId, pm.id)) {
    ctx.log.info({ customerId, paymentMethod: pm.id }, 'card event older than the card already known: not acted on');
    return 'processed';
  }
  // The card updater keeps the id and changes the card behind it: the hooks must know, or a
  // decline on the old details would keep barring the new ones.
  const updated = ctx.event.type !== 'payment_method.attached';
  if (updated) await recordCardUpdate(ctx.tx, pm.id, customerId, ctx.at);
  await ctx.deps.hooks.paymentMethodChanged?.(ctx.tx, {
    customerId,
    paymentMethod: pm.id,
    at: ctx.at,
    ...(updated ? { updated } : {}),
  });
  await stampCardUpdate(ctx, customerId, pm.id);
  return 'processed';
}

/**
 * Whether this event's card was replaced by something newer we already know: the customer row was
 * written by a later event and names another default, or a card-update attempt on another card was
 * planned from a later event. Events arrive in any order; a late one for an older card must not
 * replace a retry planned on the newer card. Same-second events both apply (created is in seconds).
 */
async function supersededCard(ctx: HandlerContext, customerId: string, paymentMethod: string): Promise<boolean> {
  const rows = await ctx.tx`
    select 1 from customers
     where id = ${customerId} and stripe_updated_at > ${ctx.at} and default_payment_method is distinct from ${paymentMethod}
    union all
    select 1 from payment_attempts a
      join dunning_cases c on c.id = a.case_id
      join stripe_events e on e.id = a.stripe_event_id
     where c.customer_id = ${customerId} and a.source = 'card_update' and e.created > ${ctx.at}
       and a.payment_method is distinct from ${paymentMethod}
    limit 1`;
  return rows.length > 0;
}

/** Names the event behind the card-update attempts it just planned, so later card events can compare times with it. */
async function stampCardUpdate(ctx: HandlerContext, customerId: string, paymentMethod: string): Promise<void> {
  await ctx.tx`
    update payment_attempts a set stripe_event_id = ${ctx.event.id}
      from dunning_cases c
     where c.id = a.case_id and c.customer_id = ${customerId} and c.status = 'open'
       and a.source = 'card_update' and a.status = 'planned' and a.payment_method = ${paymentMethod} and a.stripe_event_id is null`;
}

export async function sourceExpiring(ctx: HandlerContext): Promise<Outcome> {
  const card = ctx.event.data.object as Stripe.Card;
  const customerId = idOf(card.customer ?? null);
  if (!customerId || card.object !== 'card') return 'ignored';
  await ctx.deps.hooks.cardExpiring?.(ctx.tx, {
    customerId,
    paymentMethod: card.id,
    expMonth: card.exp_month,
    expYear: card.exp_year,
    at: ctx.at,
  });
  return 'processed';
}

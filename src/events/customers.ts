import type Stripe from 'stripe';
import type { HandlerContext, Outcome } from './context.ts';
import { closeCase } from './ledger.ts';
import { idOf, upsertCustomer, upsertSubscription } from './objects.ts';

/** Handlers for customers, subscriptions and payment methods. */

export async function customerUpdated(ctx: HandlerContext): Promise<Outcome> {
  const c = ctx.event.data.object as Stripe.Customer;
  const applied = await upsertCustomer(ctx.tx, c, ctx.at);
  const previous = ctx.event.data.previous_attributes as Partial<Stripe.Customer> | undefined;
  const pm = idOf(c.invoice_settings?.default_payment_method ?? null);
  // Only a changed default card is news; an older event must not announce a card that was since replaced.
  if (applied && pm && previous && 'invoice_settings' in previous) {
    await ctx.deps.hooks.paymentMethodChanged?.(ctx.tx, { customerId: c.id, paymentMethod: pm, at: ctx.at });
  }
  return 'processed';
}

export async function subscriptionUpdated(ctx: HandlerContext): Promise<Outcome> {
  await upsertSubscription(ctx.tx, ctx.event.data.object as Stripe.Subscription, ctx.at);
  return 'processed';
}

/** A deleted subscription ends dunning on its invoices: what is still open is lost. */
export async function subscriptionDeleted(ctx: HandlerContext): Promise<Outcome> {
  const s = ctx.event.data.object as Stripe.Subscription;
  await upsertSubscription(ctx.tx, s, ctx.at);
  const open = await ctx.tx`
    select c.id, c.invoice_id from dunning_cases c join invoices i on i.id = c.invoice_id
     where i.subscription_id = ${s.id} and c.status = 'open' for update of c`;
  for (const r of open) {
    const caseId = Number(r.id);
    const invoiceId = r.invoice_id as string;
    if (await closeCase(ctx.tx, caseId, { status: 'lost', reason: 'subscription deleted', at: ctx.at })) {
      ctx.log.info({ caseId, invoiceId }, 'dunning case lost');
      await ctx.deps.hooks.caseClosed?.(ctx.tx, { caseId, invoiceId, status: 'lost', reason: 'subscription deleted', at: ctx.at });
    }
  }
  return 'processed';
}

/** payment_method.attached and payment_method.automatically_updated (card updater: new number or expiry). */
export async function paymentMethodChanged(ctx: HandlerContext): Promise<Outcome> {
  const pm = ctx.event.data.object as Stripe.PaymentMethod;
  const customerId = idOf(pm.customer);
  if (!customerId) return 'ignored';
  await ctx.deps.hooks.paymentMethodChanged?.(ctx.tx, { customerId, paymentMethod: pm.id, at: ctx.at });
  return 'processed';
}

export async function sourceExpiring(ctx: HandlerContext): Promise<Outcome> {
  const card = ctx.event.data.object as Stripe.Card;
  const customerId = idOf(card.customer ?? null);
  if (!customerId || card.object !== 'card') return 'ignored';
  await ctx.deps.hooks.cardExpiring?.(ctx.tx, {
    customerId, paymentMethod: card.id, expMonth: card.exp_month, expYear: card.exp_year, at: ctx.at,
  });
  return 'processed';
}

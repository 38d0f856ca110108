import type Stripe from 'stripe';
import type { Tx } from '../db.ts';
import { zoneOfCountry } from '../dunning/local-time.ts';
import { idOf, subscriptionOfInvoice } from '../stripe/read.ts';

/**
 * Our copies of Stripe customers, subscriptions and invoices. Each upsert is guarded by
 * `stripe_updated_at` (the `created` of the event that wrote the row): an older event never
 * overwrites newer state. Stripe's `created` has one-second precision, so for two events of the
 * same second the object's own progress decides (an invoice only moves forward).
 */

/** `stripe_updated_at` of a customer row we only know from an invoice. */
const STUB_TIME = new Date(0);

/** The customer an event is about: the object itself, or the customer it names. */
export function customerOfEvent(ev: Stripe.Event): string | null {
  const o = ev.data.object as { object?: string; id?: string; customer?: string | { id: string } | null };
  if (o.object === 'customer') return o.id ?? null;
  return idOf(o.customer);
}

/** True when a customer row came from Stripe (an event or a read), not only from an invoice's stub. */
export async function customerKnown(tx: Tx, customerId: string): Promise<boolean> {
  const [r] = await tx`select 1 from customers where id = ${customerId} and stripe_updated_at > ${STUB_TIME}`;
  return r !== undefined;
}

export interface InvoiceState {
  id: string;
  customerId: string;
  subscriptionId: string | null;
  status: 'draft' | 'open' | 'paid' | 'void' | 'uncollectible';
  currency: string;
  amountDue: number;
  amountPaid: number;
  amountRemaining: number;
  attemptCount: number;
  stripeUpdatedAt: Date;
}

/**
 * Prices and products the invoice bills, from its lines' `pricing.price_details` (the first page of
 * `lines` that the object carries), for segment rules.
 */
export function invoiceLinePricing(inv: Pick<Stripe.Invoice, 'lines'>): { prices: string[]; products: string[] } {
  const details = (inv.lines?.data ?? []).map((l) => l.pricing?.price_details).filter((d) => d !== undefined);
  const prices = details.map((d) => idOf(d.price)).filter((id): id is string => id !== null);
  return { prices: [...new Set(prices)], products: [...new Set(details.map((d) => d.product).filter(Boolean))] };
}

/** Prices, products and billing intervals of a subscription's items, for segment rules. */
export function subscriptionItemPricing(s: Pick<Stripe.Subscription, 'items'>): {
  prices: string[];
  products: string[];
  intervals: string[];
} {
  const prices = (s.items?.data ?? []).map((i) => i.price).filter((p) => p != null);
  const uniq = (xs: Array<string | null | undefined>) => [...new Set(xs.filter((x): x is string => !!x))];
  return {
    prices: uniq(prices.map((p) => p.id)),
    products: uniq(prices.map((p) => idOf(p.product))),
    intervals: uniq(prices.map((p) => p.recurring?.interval)),
  };
}

/** Upserts the invoice and returns the row as it stands afterwards (ours, not necessarily the event's). */
export async function upsertInvoice(tx: Tx, inv: Stripe.Invoice, at: Date): Promise<InvoiceState | null> {
  const customerId = idOf(inv.customer);
  if (!customerId || !inv.status) return null;
  const paidAt = inv.status_transitions?.paid_at ? new Date(inv.status_transitions.paid_at * 1000) : null;
  const lines = invoiceLinePricing(inv);
  // Status rank: how far an invoice has moved. `paid` and `void` are final; `uncollectible` is not.
  await tx`
    insert into invoices as i (id, customer_id, subscription_id, status, currency, amount_due, amount_paid,
                               amount_remaining, hosted_invoice_url, stripe_attempt_count, stripe_created, paid_at,
                               default_payment_method, line_prices, line_products, stripe_updated_at)
    values (${inv.id}, ${customerId}, ${subscriptionOfInvoice(inv)}, ${inv.status}, ${inv.currency}, ${inv.amount_due},
            ${inv.amount_paid}, ${inv.amount_remaining}, ${inv.hosted_invoice_url ?? null}, ${inv.attempt_count},
            ${new Date(inv.created * 1000)}, ${paidAt}, ${idOf(inv.default_payment_method ?? null)},
            ${lines.prices}, ${lines.products}, ${at})
    on conflict (id) do update set
      -- An open invoice's lines are fixed once it is finalized; a payload without them keeps ours.
      line_prices = case when cardinality(excluded.line_prices) > 0 then excluded.line_prices else i.line_prices end,
      line_products = case when cardinality(excluded.line_products) > 0 then excluded.line_products else i.line_products end,
      default_payment_method = excluded.default_payment_method,
      customer_id = excluded.customer_id,
      subscription_id = coalesce(excluded.subscription_id, i.subscription_id),
      status = excluded.status,
      currency = excluded.currency,
      amount_due = excluded.amount_due,
      amount_paid = excluded.amount_paid,
      amount_remaining = excluded.amount_remaining,
      hosted_invoice_url = coalesce(excluded.hosted_invoice_url, i.hosted_invoice_url),
      stripe_attempt_count = greatest(excluded.stripe_attempt_count, i.stripe_attempt_count),
      paid_at = coalesce(excluded.paid_at, i.paid_at),
      stripe_updated_at = greatest(excluded.stripe_updated_at, i.stripe_updated_at)
    where i.status not in ('paid', 'void') and (
      excluded.status in ('paid', 'void')
      or excluded.stripe_updated_at > i.stripe_updated_at
      or (excluded.stripe_updated_at = i.stripe_updated_at and (
            (case excluded.status when 'draft' then 0 when 'open' then 1 when 'uncollectible' then 2 else 3 end)
          > (case i.status when 'draft' then 0 when 'open' then 1 when 'uncollectible' then 2 else 3 end)
          or (excluded.status = i.status and excluded.stripe_attempt_count >= i.stripe_attempt_count))))`;
  // An invoice can name a customer we have not heard of yet: keep a stub with what the invoice
  // says, at epoch, so any customer event wins over it. A stub learns from each invoice.
  await tx`
    insert into customers as c (id, email, name, country, stripe_updated_at)
    values (${customerId}, ${inv.customer_email ?? null}, ${inv.customer_name ?? null}, ${inv.customer_address?.country ?? null}, ${STUB_TIME})
    on conflict (id) do update set
      email = coalesce(excluded.email, c.email), name = coalesce(excluded.name, c.name), country = coalesce(excluded.country, c.country)
    where c.stripe_updated_at = ${STUB_TIME}
      and (c.email, c.name, c.country) is distinct from (coalesce(excluded.email, c.email), coalesce(excluded.name, c.name), coalesce(excluded.country, c.country))`;
  return invoiceState(tx, inv.id);
}

export async function invoiceState(tx: Tx, invoiceId: string): Promise<InvoiceState | null> {
  const rows = await tx`select * from invoices where id = ${invoiceId}`;
  const r = rows[0];
  if (!r) return null;
  return {
    id: r.id as string,
    customerId: r.customer_id as string,
    subscriptionId: (r.subscription_id as string | null) ?? null,
    status: r.status as InvoiceState['status'],
    currency: r.currency as string,
    amountDue: Number(r.amount_due),
    amountPaid: Number(r.amount_paid),
    amountRemaining: Number(r.amount_remaining),
    attemptCount: Number(r.stripe_attempt_count),
    stripeUpdatedAt: r.stripe_updated_at as Date,
  };
}

/**
 * The customer's time zone: `metadata.time_zone` (or `timezone`) when the merchant set one, else
 * the zone of the address's country when that country keeps one clock; null leaves it to the
 * merchant default.
 */
export function customerTimeZone(c: Pick<Stripe.Customer, 'metadata' | 'address'>): string | null {
  const meta = c.metadata ?? {};
  return meta.time_zone ?? meta.timezone ?? zoneOfCountry(c.address?.country);
}

/**
 * Returns true when the event's state was applied (it was not older than what we hold).
 * `previousDefault`: the default payment method before this change, from the event's
 * `previous_attributes` (undefined when the event did not change it). Stripe's `created` is in whole
 * seconds, so two events of one second are ordered by it: an event whose new default is the
 * default our row's last change replaced is older than that change, and is not applied.
 */
export async function upsertCustomer(
  tx: Tx,
  c: Stripe.Customer,
  at: Date,
  previousDefault?: string | null,
): Promise<boolean> {
  const newDefault = idOf(c.invoice_settings?.default_payment_method ?? null);
  const meta = c.metadata ?? {};
  const timeZone = customerTimeZone(c);
  const rows = await tx`
    insert into customers as c (id, email, name, preferred_locales, country, time_zone, default_payment_method,
                                default_source, metadata, deleted, stripe_updated_at)
    values (${c.id}, ${c.email ?? null}, ${c.name ?? null}, ${c.preferred_locales ?? []}, ${c.address?.country ?? null},
            ${timeZone}, ${newDefault}, ${idOf(c.default_source ?? null)},
            ${tx.json(meta)}, false, ${at})
    on conflict (id) do update set
      email = excluded.email, name = excluded.name, preferred_locales = excluded.preferred_locales,
      country = excluded.country, time_zone = excluded.time_zone,
      default_payment_method = excluded.default_payment_method, default_source = excluded.default_source,
      metadata = excluded.metadata,
      default_payment_method_before = case
        when excluded.default_payment_method is distinct from c.default_payment_method
          then coalesce(${previousDefault ?? null}::text, c.default_payment_method)
        else c.default_payment_method_before end,
      stripe_updated_at = excluded.stripe_updated_at
    where not c.deleted and (
      excluded.stripe_updated_at > c.stripe_updated_at
      or (excluded.stripe_updated_at = c.stripe_updated_at
          and not (c.default_payment_method_before is not null
                   and excluded.default_payment_method is not distinct from c.default_payment_method_before
                   and excluded.default_payment_method is distinct from c.default_payment_method)))
    returning id`;
  return rows.length > 0;
}

/** Subscriptions only move towards their end: `canceled` and `incomplete_expired` are final. */
export async function upsertSubscription(tx: Tx, s: Stripe.Subscription, at: Date): Promise<boolean> {
  const customerId = idOf(s.customer);
  if (!customerId) return false;
  const pause = s.pause_collection ?? null;
  const items = subscriptionItemPricing(s);
  const rows = await tx`
    insert into subscriptions as s (id, customer_id, status, started_at, ended_at, cancellation_reason,
                                    pause_collection_behavior, pause_collection_resumes_at, default_payment_method,
                                    item_prices, item_products, item_intervals, stripe_updated_at)
    values (${s.id}, ${customerId}, ${s.status}, ${s.start_date ? new Date(s.start_date * 1000) : null},
            ${s.ended_at ? new Date(s.ended_at * 1000) : null}, ${s.cancellation_details?.reason ?? null},
            ${pause?.behavior ?? null}, ${pause?.resumes_at ? new Date(pause.resumes_at * 1000) : null},
            ${idOf(s.default_payment_method ?? null)}, ${items.prices}, ${items.products}, ${items.intervals}, ${at})
    on conflict (id) do update set
      -- Items are state: only an event at least as new as the row, and one that carries them, changes them.
      item_prices = case when excluded.stripe_updated_at >= s.stripe_updated_at and cardinality(excluded.item_prices) > 0
                         then excluded.item_prices else s.item_prices end,
      item_products = case when excluded.stripe_updated_at >= s.stripe_updated_at and cardinality(excluded.item_prices) > 0
                           then excluded.item_products else s.item_products end,
      item_intervals = case when excluded.stripe_updated_at >= s.stripe_updated_at and cardinality(excluded.item_prices) > 0
                            then excluded.item_intervals else s.item_intervals end,
      default_payment_method = case when excluded.stripe_updated_at >= s.stripe_updated_at
                                    then excluded.default_payment_method else s.default_payment_method end,
      status = excluded.status, started_at = coalesce(excluded.started_at, s.started_at),
      ended_at = coalesce(excluded.ended_at, s.ended_at),
      cancellation_reason = coalesce(excluded.cancellation_reason, s.cancellation_reason),
      -- A pause is state, not history: only an event at least as new as the row sets or lifts it.
      pause_collection_behavior = case when excluded.stripe_updated_at >= s.stripe_updated_at
                                       then excluded.pause_collection_behavior else s.pause_collection_behavior end,
      pause_collection_resumes_at = case when excluded.stripe_updated_at >= s.stripe_updated_at
                                         then excluded.pause_collection_resumes_at else s.pause_collection_resumes_at end,
      stripe_updated_at = greatest(excluded.stripe_updated_at, s.stripe_updated_at)
    where s.status not in ('canceled', 'incomplete_expired')
      and (excluded.status in ('canceled', 'incomplete_expired') or excluded.stripe_updated_at >= s.stripe_updated_at)
    returning id`;
  return rows.length > 0;
}

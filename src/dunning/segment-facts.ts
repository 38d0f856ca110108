import type { Tx } from '../db.ts';
import type { SegmentFacts } from './segments.ts';

/**
 * What segment rules match for one invoice, from our copies: prices and products of the invoice's
 * lines and of its subscription's items, the billing intervals of those items, the amount due and
 * currency, and the customer's metadata. A subscription we have not heard of yet gives no interval:
 * rules on intervals then do not match, and the next rule (or the default) applies.
 */
export async function segmentFactsOf(tx: Tx, invoiceId: string): Promise<SegmentFacts | null> {
  const [r] = await tx`
    select i.currency, i.amount_due, i.line_prices, i.line_products,
           coalesce(s.item_prices, '{}') as item_prices, coalesce(s.item_products, '{}') as item_products,
           coalesce(s.item_intervals, '{}') as item_intervals, coalesce(c.metadata, '{}') as metadata
      from invoices i
      left join subscriptions s on s.id = i.subscription_id
      left join customers c on c.id = i.customer_id
     where i.id = ${invoiceId}`;
  if (!r) return null;
  const union = (a: unknown, b: unknown) => [...new Set([...(a as string[]), ...(b as string[])])];
  return {
    prices: union(r.line_prices, r.item_prices),
    products: union(r.line_products, r.item_products),
    intervals: r.item_intervals as string[],
    currency: r.currency as string,
    amount: Number(r.amount_due),
    metadata: r.metadata as Record<string, string>,
  };
}

import type Stripe from 'stripe';

/**
 * Stripe's `pause_collection` on a subscription: while it holds, Stripe collects nothing for the
 * subscription and neither do we. Pure; our copy is on the subscription row (sql/010), Stripe's
 * comes with an invoice read that expands its subscription.
 */

export interface CollectionPause {
  behavior: string;
  /** Stripe resumes collection by itself at this instant; null: paused until someone lifts it. */
  resumesAt: Date | null;
}

export function pauseOfSubscription(s: Pick<Stripe.Subscription, 'pause_collection'>): CollectionPause | null {
  const p = s.pause_collection;
  if (!p) return null;
  return { behavior: p.behavior, resumesAt: p.resumes_at ? new Date(p.resumes_at * 1000) : null };
}

/** The pause as Stripe's invoice read shows it, when the read expanded the invoice's subscription. */
export function pauseOfInvoice(inv: Stripe.Invoice): CollectionPause | null {
  const sub = inv.parent?.subscription_details?.subscription;
  return sub && typeof sub !== 'string' ? pauseOfSubscription(sub) : null;
}

export function pausedAt(p: CollectionPause | null, now: Date): boolean {
  return p !== null && (p.resumesAt === null || p.resumesAt > now);
}

/** What ops read: `collection is paused at Stripe (void, until ...)`. */
export function pauseReason(p: CollectionPause): string {
  return `collection is paused at Stripe (pause_collection ${p.behavior}${p.resumesAt ? `, resumes ${p.resumesAt.toISOString()}` : ''})`;
}

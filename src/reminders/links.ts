/** The update-card link when an invoice has no hosted page: a Billing Portal session. */
import type Stripe from 'stripe';
import type { Logger } from '../log.ts';

/**
 * Sessions expire within hours, so one is created at send time, never at planning time. A Stripe
 * failure yields null: the mailer then records the reminder as failed rather than sending no link.
 */
export function billingPortalLinks(stripe: Stripe, log: Logger, returnUrl?: string): (customerId: string) => Promise<string | null> {
  return async (customerId) => {
    try {
      const session = await stripe.billingPortal.sessions.create({ customer: customerId, ...(returnUrl ? { return_url: returnUrl } : {}) });
      return session.url;
    } catch (err) {
      log.warn({ customerId, err: (err as Error).message }, 'billing portal session could not be created');
      return null;
    }
  };
}

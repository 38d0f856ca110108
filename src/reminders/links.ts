/** The update-card link when an invoice has no hosted page: a Billing Portal session. */
import type { Logger } from '../log.ts';
import type { StripeGateway } from '../stripe/charge.ts';
import { createPortalSession, PortalError } from '../stripe/portal.ts';
import { SendError } from './transport.ts';

/**
 * Sessions expire within hours, so one is created at send time, never at planning time. A failure
 * throws a SendError the mailer understands: Stripe busy or unreachable is temporary (the reminder
 * is retried), a rejected API key is our configuration (retried, logged as an error), anything
 * else (no such customer, no portal configured) is permanent for this reminder.
 */
export function billingPortalLinks(gateway: StripeGateway, log: Logger, returnUrl: string | null = null): (customerId: string) => Promise<string | null> {
  return async (customerId) => {
    try {
      return await createPortalSession(gateway, customerId, returnUrl);
    } catch (err) {
      const e = err instanceof PortalError ? err : new PortalError(String(err), { transient: true, configuration: false, cause: err });
      log.warn({ customerId, transient: e.transient, err: e.message }, 'billing portal session could not be created');
      throw new SendError(e.message, e.configuration ? 'transport' : e.transient ? 'temporary' : 'permanent', { cause: err });
    }
  };
}

import Stripe from 'stripe';
import { call, isTransientStripeError, type StripeGateway } from './charge.ts';

/**
 * Billing Portal sessions: the update-card link for a customer whose invoice has no hosted page
 * (card-expiry reminders). Through the shared gateway, so these calls count against the same
 * throttle as charges and reads.
 */

/** Why a session could not be made: `transient` means asking again later may work. */
export class PortalError extends Error {
  readonly transient: boolean;
  /** Our configuration (key, account) is at fault rather than this customer. */
  readonly configuration: boolean;
  constructor(message: string, o: { transient: boolean; configuration: boolean; cause: unknown }) {
    super(message, { cause: o.cause });
    this.name = 'PortalError';
    this.transient = o.transient;
    this.configuration = o.configuration;
  }
}

/**
 * Stripe busy (429), a lock (409), its own trouble (5xx), or no answer at all (connection refused,
 * timeout) are transient; so is a rejected key (401/403), which is ours to fix and must not cost a
 * customer the email. Anything else (no such customer, no portal configured) will not change.
 * A PortalError is returned as it is, so callers of `createPortalSession` can classify whatever it threw.
 */
export function classifyPortalError(err: unknown): PortalError {
  if (err instanceof PortalError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (!(err instanceof Stripe.errors.StripeError)) {
    return new PortalError(`billing portal: ${message}`, { transient: true, configuration: false, cause: err });
  }
  const status = err.statusCode;
  const configuration =
    err instanceof Stripe.errors.StripeAuthenticationError ||
    err instanceof Stripe.errors.StripePermissionError ||
    status === 401 ||
    status === 403;
  const transient = configuration || isTransientStripeError(err);
  return new PortalError(`billing portal: ${status ?? 'no answer'}: ${message}`, {
    transient,
    configuration,
    cause: err,
  });
}

/**
 * A new session's URL; throws a PortalError. The session is a deep link into the portal's
 * payment-method form (`flow_data.type = payment_method_update`): the customer came to fix a card,
 * and the new card becomes the default payment method, which is what retries charge.
 */
export async function createPortalSession(
  gateway: StripeGateway,
  customerId: string,
  returnUrl: string | null,
): Promise<string> {
  const params: Stripe.BillingPortal.SessionCreateParams = {
    customer: customerId,
    flow_data: { type: 'payment_method_update' },
    ...(returnUrl ? { return_url: returnUrl } : {}),
  };
  try {
    const session = await call(gateway, (s) => s.billingPortal.sessions.create(params));
    return session.url;
  } catch (err) {
    throw classifyPortalError(err);
  }
}

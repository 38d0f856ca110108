/**
 * The update-card link when an invoice has no hosted page (card-expiry reminders): a signed link to
 * our own `/update-card` when PUBLIC_URL is set, else a Billing Portal session made at send time.
 */
import { cardLinkUrl, createCardLinkSigner, type CardLinkSigner } from '../card-link.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { StripeGateway } from '../stripe/charge.ts';
import { classifyPortalError, createPortalSession } from '../stripe/portal.ts';
import type { ReminderPolicy } from './policy.ts';
import { SendError } from './transport.ts';

export type LinkSource = (customerId: string) => Promise<string | null>;

const DAY_MS = 86_400_000;

/**
 * Links the web role turns into a fresh portal session on click; they work for `days`. No Stripe
 * call at send time, so Stripe being busy never holds an email back.
 */
export function signedCardLinks(o: {
  signer: CardLinkSigner;
  publicUrl: string;
  clock: Clock;
  days: number;
}): LinkSource {
  return async (customerId) => {
    try {
      return cardLinkUrl(o.publicUrl, o.signer.sign(customerId, new Date(o.clock.now().getTime() + o.days * DAY_MS)));
    } catch (err) {
      // Not a Stripe customer id: asking again will not change it.
      throw new SendError((err as Error).message, 'permanent', { cause: err });
    }
  };
}

/**
 * Sessions are short-lived (Stripe expires one that is not visited soon), so one is created at send time, never at planning
 * time; even so the customer must click soon. A failure throws a SendError the mailer understands:
 * Stripe busy or unreachable is temporary (the reminder is retried), a rejected API key is our
 * configuration (retried, logged as an error), anything else (no such customer, no portal
 * configured) is permanent for this reminder.
 */
export function billingPortalLinks(gateway: StripeGateway, log: Logger, returnUrl: string | null = null): LinkSource {
  return async (customerId) => {
    try {
      return await createPortalSession(gateway, customerId, returnUrl);
    } catch (err) {
      const e = classifyPortalError(err);
      log.warn({ customerId, transient: e.transient, err: e.message }, 'billing portal session could not be created');
      throw new SendError(e.message, e.configuration ? 'transport' : e.transient ? 'temporary' : 'permanent', {
        cause: err,
      });
    }
  };
}

/**
 * Which links this worker puts into emails without an invoice page, said once at start when it
 * matters: signed links with PUBLIC_URL (and the key to sign them), else portal sessions at send
 * time with a warning, else none (no Stripe key: such reminders fail).
 */
export function updateCardLinks(o: {
  config: Pick<Config, 'publicUrl' | 'stripeSecretKey' | 'updateCardLinkDays' | 'billingPortalReturnUrl'>;
  clock: Clock;
  log: Logger;
  gateway?: StripeGateway | undefined;
  policy?: Pick<ReminderPolicy, 'cardExpiring'> | undefined;
}): LinkSource | undefined {
  const { config, log } = o;
  if (config.publicUrl && config.stripeSecretKey) {
    const days = config.updateCardLinkDays;
    if (o.policy?.cardExpiring.enabled && o.policy.cardExpiring.daysBefore > days) {
      log.warn(
        { daysBefore: o.policy.cardExpiring.daysBefore, updateCardLinkDays: days },
        'UPDATE_CARD_LINK_DAYS is shorter than cardExpiring.daysBefore: links in card-expiry emails stop working before the card does',
      );
    }
    return signedCardLinks({
      signer: createCardLinkSigner(config.stripeSecretKey),
      publicUrl: config.publicUrl,
      clock: o.clock,
      days,
    });
  }
  if (!o.gateway) return undefined;
  log.warn(
    {},
    "PUBLIC_URL not set: card-expiry emails carry a Billing Portal session link, which Stripe expires soon after it is made, so most customers will find it dead; set PUBLIC_URL to the web role's address so they carry a lasting link to /update-card",
  );
  return billingPortalLinks(o.gateway, log, config.billingPortalReturnUrl);
}

import Stripe from 'stripe';
import { loadConfig, type Config } from '../config.ts';
import { createStripeClient } from '../stripe/client.ts';

/** The account settings `dunning setup` and `dunning doctor` read, through the SDK. */

export async function listWebhookEndpoints(stripe: Stripe): Promise<Stripe.WebhookEndpoint[]> {
  const all: Stripe.WebhookEndpoint[] = [];
  for await (const e of stripe.webhookEndpoints.list({ limit: 100 })) all.push(e);
  return all;
}

export async function listPortalConfigurations(stripe: Stripe): Promise<Stripe.BillingPortal.Configuration[]> {
  const all: Stripe.BillingPortal.Configuration[] = [];
  for await (const c of stripe.billingPortal.configurations.list({ limit: 100 })) all.push(c);
  return all;
}

/** The configuration and an SDK client; these commands need no database. */
export function openStripe(env: NodeJS.ProcessEnv): { config: Config; stripe: Stripe } {
  const config = loadConfig(env, ['stripe']);
  return { config, stripe: createStripeClient(config) };
}

/** A Stripe API error in one line an operator can act on (the key, the request, Stripe's message). */
export function describeStripeError(err: unknown, what: string): Error {
  if (err instanceof Stripe.errors.StripeError) {
    const hint =
      err instanceof Stripe.errors.StripeAuthenticationError || err instanceof Stripe.errors.StripePermissionError
        ? ' (check STRIPE_SECRET_KEY: a restricted key needs write access to webhook endpoints and read access to the customer portal)'
        : '';
    return new Error(`${what}: Stripe answered ${err.statusCode ?? 'nothing'}: ${err.message}${hint}`, { cause: err });
  }
  return new Error(`${what}: ${(err as Error).message}`, { cause: err });
}

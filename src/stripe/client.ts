import Stripe from 'stripe';
import type { Config } from '../config.ts';

/**
 * The one place a Stripe SDK client is built. `STRIPE_API_BASE` points it at the sandbox, stripe-mock
 * or a proxy. Network retries are ours to make (the runner decides what a failure means), so the SDK
 * does not retry by itself.
 */
export function createStripeClient(
  config: Pick<Config, 'stripeSecretKey' | 'stripeApiBase'>,
  options: { timeoutMs?: number } = {},
): Stripe {
  if (!config.stripeSecretKey) throw new Error('STRIPE_SECRET_KEY is not set: cannot talk to Stripe');
  return new Stripe(config.stripeSecretKey, {
    maxNetworkRetries: 0,
    timeout: options.timeoutMs ?? 20_000,
    telemetry: false,
    appInfo: { name: 'stripe-dunning-worker' },
    ...(config.stripeApiBase ?? {}),
  });
}

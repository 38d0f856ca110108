import Stripe from 'stripe';
import type { Config } from '../config.ts';

/**
 * How long the SDK waits for Stripe's answer before giving up on a request (its `timeout`). A charge
 * request's charge, if it makes one, starts within this of the request leaving: the runner bounds
 * the search for a lost request's charge by it (src/dunning/runner.ts), so a client may be given a
 * shorter timeout (tests), never a longer one.
 */
export const STRIPE_REQUEST_TIMEOUT_MS = 20_000;

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
    timeout: options.timeoutMs ?? STRIPE_REQUEST_TIMEOUT_MS,
    telemetry: false,
    appInfo: { name: 'stripe-dunning-worker' },
    ...(config.stripeApiBase ?? {}),
  });
}

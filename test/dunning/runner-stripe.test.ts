import net from 'node:net';
import { describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { classifyChargeError, payInvoice } from '../../src/stripe/charge.ts';
import { createStripeClient } from '../../src/stripe/client.ts';
import { createThrottle } from '../../src/stripe/throttle.ts';

/** A port on loopback that nobody listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('Stripe calls', () => {
  it('the throttle spaces requests at its rate after the burst', async () => {
    const throttle = createThrottle(50, { burst: 1 });
    const started = performance.now();
    await Promise.all(Array.from({ length: 6 }, () => throttle.take()));
    // One token at once, then five more at 20 ms each.
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    expect(throttle.waiting()).toBe(0);
  });

  it('connection refused is "not sent": the request never reached Stripe', async () => {
    const port = await closedPort();
    const stripe = createStripeClient(
      { stripeSecretKey: 'sk_test_x', stripeApiBase: { protocol: 'http', host: '127.0.0.1', port } },
      { timeoutMs: 2_000 },
    );
    const outcome = await payInvoice({ stripe, throttle: createThrottle(100) }, 'in_1', 'dunning:in_1:2', null);
    expect(outcome.kind).toBe('not_sent');
  });

  it('an unknown Stripe host is "not sent", and the message names STRIPE_API_BASE', async () => {
    const stripe = createStripeClient(
      { stripeSecretKey: 'sk_test_x', stripeApiBase: { protocol: 'http', host: 'no-such-host.invalid', port: 80 } },
      { timeoutMs: 2_000 },
    );
    const outcome = await payInvoice({ stripe, throttle: createThrottle(100) }, 'in_1', 'dunning:in_1:2', null);
    expect(outcome).toMatchObject({
      kind: 'not_sent',
      message: expect.stringMatching(/\((ENOTFOUND|EAI_AGAIN): check STRIPE_API_BASE, or the network to Stripe\)$/),
    });
  });

  it('idempotency errors: 409 (key in use) is "not sent", 400 (other parameters) is a key conflict, not retried', () => {
    const inUse = new Stripe.errors.StripeIdempotencyError({
      type: 'idempotency_error',
      message: 'in progress',
      statusCode: 409,
    });
    const reused = new Stripe.errors.StripeIdempotencyError({
      type: 'idempotency_error',
      message: 'other parameters',
      statusCode: 400,
    });
    expect(classifyChargeError(inUse).kind).toBe('not_sent');
    expect(classifyChargeError(reused)).toEqual({ kind: 'key_conflict', message: 'other parameters' });
  });
});

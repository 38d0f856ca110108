import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { webhookEvents } from '../../src/setup/webhook-events.ts';
import { manualClock } from '../sandbox/helpers.ts';

/**
 * `dunning setup` and `dunning doctor` driven as an operator runs them: the real CLI in a child
 * process, the real SDK, against the sandbox's /v1/webhook_endpoints and
 * /v1/billing_portal/configurations.
 */

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
const URL_A = 'https://dunning.example.com/webhooks/stripe';
let sandbox: Sandbox;
let stripe: Stripe;

async function dunning(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH,
    STRIPE_SECRET_KEY: sandbox.apiKey,
    STRIPE_API_BASE: sandbox.url,
    LOG_LEVEL: 'silent',
  };
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function endpoints(): Promise<Stripe.WebhookEndpoint[]> {
  return (await stripe.webhookEndpoints.list({ limit: 100 })).data;
}

async function clear(): Promise<void> {
  for (const e of await endpoints()) await stripe.webhookEndpoints.del(e.id);
}

beforeAll(async () => {
  sandbox = await startSandbox({ clock: manualClock('2026-12-01T10:00:00Z') });
  stripe = sandbox.stripe();
});
afterAll(async () => {
  await sandbox?.stop();
});

describe('dunning setup', () => {
  it('--dry-run says what it would create and creates nothing', async () => {
    await clear();
    const r = await dunning('setup', '--url', URL_A, '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Would create a webhook endpoint for ${URL_A} at API version ${Stripe.API_VERSION}`);
    expect(r.stdout).toContain('invoice.payment_failed');
    expect(await endpoints()).toEqual([]);
  });

  it('creates the endpoint at the SDK version with exactly the handled events, and prints the secret once', async () => {
    await clear();
    const r = await dunning('setup', '--url', URL_A);
    expect(r.code).toBe(0);
    const [e, ...more] = await endpoints();
    expect(more).toEqual([]);
    expect(e!.url).toBe(URL_A);
    expect(e!.api_version).toBe(Stripe.API_VERSION);
    expect([...e!.enabled_events].sort()).toEqual(webhookEvents());
    // "The endpoint's secret, used to generate webhook signatures. Only returned at creation."
    expect(e!.secret).toBeUndefined();
    expect(r.stdout).toMatch(/whsec_\w+/);

    const again = await dunning('setup', '--url', URL_A);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already sends exactly the events');
    expect(again.stdout).not.toMatch(/whsec_/);
  });

  it('fixes the events of an existing endpoint of ours: adds the missing, removes the extra', async () => {
    await clear();
    const e = await stripe.webhookEndpoints.create({
      url: URL_A,
      enabled_events: ['invoice.paid', 'charge.succeeded'],
      api_version: Stripe.API_VERSION,
    });
    const dry = await dunning('setup', '--url', URL_A, '--dry-run');
    expect(dry.stdout).toContain(`Would update webhook endpoint ${e.id}`);
    expect((await stripe.webhookEndpoints.retrieve(e.id)).enabled_events).toEqual(['invoice.paid', 'charge.succeeded']);

    const r = await dunning('setup', '--url', URL_A);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('remove charge.succeeded');
    expect(r.stdout).toContain('add ');
    expect(r.stdout).not.toMatch(/whsec_/);
    expect([...(await stripe.webhookEndpoints.retrieve(e.id)).enabled_events].sort()).toEqual(webhookEvents());
  });

  it('an endpoint at another API version: says it cannot be changed and what to do; --recreate makes a new one', async () => {
    await clear();
    // "The API version that events are rendered as for this webhook endpoint. You can't change
    // this value after you create the endpoint." (WebhookEndpoint.api_version, stripe-node types)
    const old = await stripe.webhookEndpoints.create({
      url: URL_A,
      enabled_events: webhookEvents() as Stripe.WebhookEndpointCreateParams.EnabledEvent[],
      api_version: '2024-06-20',
    });
    await expect(
      stripe.webhookEndpoints.update(old.id, { api_version: Stripe.API_VERSION } as Stripe.WebhookEndpointUpdateParams),
    ).rejects.toThrow(/unknown parameter: api_version/);

    const r = await dunning('setup', '--url', URL_A);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('renders events at 2024-06-20');
    expect(r.stdout).toContain('cannot change');
    expect(r.stdout).toContain('--recreate');

    const re = await dunning('setup', '--url', URL_A, '--recreate');
    expect(re.code).toBe(0);
    expect(re.stdout).toMatch(/whsec_\w+/);
    expect(re.stdout).toContain(`replaces ${old.id}`);
    const now = await endpoints();
    expect(now.map((e) => e.api_version).sort()).toEqual(['2024-06-20', Stripe.API_VERSION].sort());
  });

  it('bad input: a clear error and exit code 2', async () => {
    const missing = await dunning('setup');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--url is required');
    const bad = await dunning('setup', '--url', 'not a url');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('not a URL');
    const path = await dunning('setup', '--url', 'https://dunning.example.com/hooks');
    expect(path.code).toBe(2);
    expect(path.stderr).toContain('/webhooks/stripe');
    const help = await dunning('setup', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--dry-run');
  });
});

describe('dunning doctor', () => {
  it('a correct account: exit 0, with the reminder about Smart Retries', async () => {
    await clear();
    expect((await dunning('setup', '--url', URL_A)).code).toBe(0);
    const r = await dunning('doctor');
    expect(r.stdout).not.toContain('PROBLEM');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Smart Retries');
  });

  it('names each thing that is wrong and exits non-zero', async () => {
    await clear();
    await stripe.webhookEndpoints.create({
      url: URL_A,
      enabled_events: ['invoice.payment_failed', 'charge.succeeded'],
      api_version: '2024-06-20',
    });
    const r = await dunning('doctor', '--url', URL_A);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('renders events at 2024-06-20');
    expect(r.stdout).toMatch(/does not send .*invoice\.paid/);
    expect(r.stdout).toContain('also sends charge.succeeded');
  });

  it('a test key against a live-mode endpoint', async () => {
    await clear();
    sandbox.addWebhookEndpoint({
      url: URL_A,
      enabledEvents: webhookEvents(),
      apiVersion: Stripe.API_VERSION,
      livemode: true,
    });
    const r = await dunning('doctor');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('live-mode endpoint, but STRIPE_SECRET_KEY is a test key');
  });

  it('a portal that does not let customers update their payment method', async () => {
    await clear();
    expect((await dunning('setup', '--url', URL_A)).code).toBe(0);
    const [def] = (await stripe.billingPortal.configurations.list({ is_default: true })).data;
    await stripe.billingPortal.configurations.update(def!.id, {
      features: { payment_method_update: { enabled: false } },
    });
    try {
      const r = await dunning('doctor');
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('does not let customers update their payment method');
    } finally {
      await stripe.billingPortal.configurations.update(def!.id, {
        features: { payment_method_update: { enabled: true } },
      });
    }
  });

  it('no endpoint for the worker at all', async () => {
    await clear();
    const r = await dunning('doctor');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('No webhook endpoint delivers to');
  });
});

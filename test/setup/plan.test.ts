import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { diagnose, hasProblems, keyIsLive, ourEndpoints } from '../../src/setup/doctor.ts';
import { diffEvents, OUR_METADATA_KEY, planEndpoint } from '../../src/setup/endpoint.ts';

/** The decisions behind `dunning setup` and `dunning doctor`, without Stripe. */

const V = '2026-10-28.endive';
const URL_A = 'https://a.example.com/webhooks/stripe';
const EVENTS = ['invoice.paid', 'invoice.payment_failed'];

function endpoint(o: Partial<Stripe.WebhookEndpoint>): Stripe.WebhookEndpoint {
  return {
    id: 'we_1',
    object: 'webhook_endpoint',
    api_version: V,
    application: null,
    created: 1,
    description: null,
    enabled_events: EVENTS,
    livemode: false,
    metadata: {},
    status: 'enabled',
    url: URL_A,
    ...o,
  };
}

describe('planEndpoint', () => {
  const wanted = { url: URL_A, events: EVENTS, apiVersion: V };

  it('creates when no endpoint of ours exists, marked so a moved URL still finds it', () => {
    const plan = planEndpoint([endpoint({ url: 'https://other.example.com/hook' })], wanted);
    expect(plan).toMatchObject({
      action: 'create',
      params: { api_version: V, metadata: { [OUR_METADATA_KEY]: 'true' } },
    });
  });

  it('finds ours by URL, else by the mark, and moves the URL', () => {
    const marked = endpoint({
      url: 'https://old.example.com/webhooks/stripe',
      metadata: { [OUR_METADATA_KEY]: 'true' },
    });
    expect(planEndpoint([marked], wanted)).toMatchObject({
      action: 'update',
      urlChanged: true,
      params: { url: URL_A },
    });
    expect(planEndpoint([endpoint({})], wanted)).toMatchObject({ action: 'none', wrongVersion: false });
  });

  it('a wrong version is never "fixed" by an update; --recreate creates a new one', () => {
    const old = endpoint({ api_version: '2024-06-20' });
    expect(planEndpoint([old], wanted)).toMatchObject({ action: 'none', wrongVersion: true });
    expect(planEndpoint([old], wanted, { recreate: true })).toMatchObject({ action: 'create', replaces: old });
  });

  it("'*' counts as every event extra, none missing", () => {
    expect(diffEvents(['*'], EVENTS)).toEqual({ missing: [], extra: ['*'] });
    expect(diffEvents(['invoice.paid', 'charge.succeeded'], EVENTS)).toEqual({
      missing: ['invoice.payment_failed'],
      extra: ['charge.succeeded'],
    });
  });
});

describe('diagnose', () => {
  const portal = (paymentMethodUpdate: boolean, isDefault = true): Stripe.BillingPortal.Configuration =>
    ({
      id: 'bpc_1',
      active: true,
      is_default: isDefault,
      features: { payment_method_update: { enabled: paymentMethodUpdate, payment_method_configuration: null } },
    }) as Stripe.BillingPortal.Configuration;
  const facts = { keyLivemode: false, wantedEvents: EVENTS, apiVersion: V, url: null };

  it('a right account has no problem, only the Smart Retries reminder', () => {
    const f = diagnose({ ...facts, endpoints: [endpoint({})], portalConfigurations: [portal(true)] });
    expect(hasProblems(f)).toBe(false);
    expect(f.filter((x) => x.level === 'note').map((x) => x.text)).toEqual([expect.stringContaining('Smart Retries')]);
  });

  it('names the mode mismatch, the disabled endpoint and the portal without card updates', () => {
    const f = diagnose({
      ...facts,
      endpoints: [endpoint({ livemode: true, status: 'disabled' })],
      portalConfigurations: [portal(false)],
    });
    const problems = f.filter((x) => x.level === 'problem').map((x) => x.text);
    expect(problems).toEqual([
      expect.stringContaining('live-mode endpoint, but STRIPE_SECRET_KEY is a test key'),
      expect.stringContaining('is disabled'),
      expect.stringContaining('does not let customers update their payment method'),
    ]);
  });

  it('no default portal configuration is a problem', () => {
    const f = diagnose({ ...facts, endpoints: [endpoint({})], portalConfigurations: [portal(true, false)] });
    expect(f.some((x) => x.level === 'problem' && x.text.includes('No active default Billing Portal'))).toBe(true);
  });

  it('recognises the worker by --url, else by the mark or the /webhooks/stripe path', () => {
    const other = endpoint({ id: 'we_2', url: 'https://crm.example.com/stripe-hook' });
    expect(ourEndpoints([endpoint({}), other], null).map((e) => e.id)).toEqual(['we_1']);
    expect(ourEndpoints([endpoint({}), other], 'https://crm.example.com/stripe-hook').map((e) => e.id)).toEqual([
      'we_2',
    ]);
  });

  it('reads the mode from the key prefix, restricted keys included', () => {
    expect(keyIsLive('sk_live_x')).toBe(true);
    expect(keyIsLive('rk_live_x')).toBe(true);
    expect(keyIsLive('sk_test_x')).toBe(false);
  });
});

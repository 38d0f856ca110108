import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyDigest } from '../../src/billing-status/api-keys.ts';
import { createCardLinkSigner, UPDATE_CARD_PATH } from '../../src/card-link.ts';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { BANNER_TOKEN_LABEL, billingStatusRoutesFor } from '../../src/http/billing-status.ts';
import { closeServer, createServer, listen } from '../../src/http/server.ts';
import { createLogger } from '../../src/log.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { insertOpsCases, NOW } from '../ops/fixtures.ts';

const API_KEY = 'merchant-backend-key-0123456789';
const STRIPE_KEY = 'sk_test_billing_status';
const ORIGIN = 'https://app.example.com';

let db: TestDatabase;
let server: http.Server;
let base: string;
const clock = new FixedClock(NOW);

beforeAll(async () => {
  db = await createTestDatabase();
  await insertOpsCases(db.sql, [
    { invoice: 'in_late', amount: 4_900 },
    { invoice: 'in_3ds', amount: 1_200, currency: 'eur', category: 'authentication' },
    { invoice: 'in_done', amount: 700, status: 'recovered' },
  ]);
  await db.sql`update invoices set hosted_invoice_url = 'https://invoice.stripe.com/i/' || id`;
  await db.sql`update invoices set status = 'paid', amount_remaining = 0 where id = 'in_done'`;
  await db.sql`update customers set preferred_locales = '{de-AT}' where id = 'cus_3ds'`;
  const config = loadConfig({
    API_KEYS: `backend:${apiKeyDigest(API_KEY).toString('hex')}`,
    STRIPE_SECRET_KEY: STRIPE_KEY,
    PUBLIC_URL: 'https://billing.example.com',
    BANNER_ORIGINS: ORIGIN,
  });
  server = createServer({
    log: createLogger('silent'),
    routes: billingStatusRoutesFor(config, { sql: db.sql, clock }),
  });
  base = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
});
afterAll(async () => {
  if (server) await closeServer(server);
  await db?.drop();
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers });
const authed = { authorization: `Bearer ${API_KEY}` };

describe('GET /api/v1/customers/{id}/billing-status', () => {
  it('refuses a missing or wrong key with 401, the same answer for both', async () => {
    const missing = await get('/api/v1/customers/cus_late/billing-status');
    const wrong = await get('/api/v1/customers/cus_late/billing-status', { authorization: 'Bearer nope' });
    const reportsStyle = await get('/api/v1/customers/cus_late/billing-status', {
      authorization: `Basic ${Buffer.from(`x:${API_KEY}`).toString('base64')}`,
    });
    for (const r of [missing, wrong, reportsStyle]) {
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="dunning api"');
    }
    // Even an unknown path under the API answers 401 first: nothing is learned without a key.
    expect((await get('/api/v1/customers/cus_late/nothing')).status).toBe(401);
    expect(await missing.text()).toBe(await wrong.text());
  });

  it('answers 404 for an unknown customer and 400 for something that is no customer id', async () => {
    const r = await get('/api/v1/customers/cus_nobody/billing-status', authed);
    expect(r.status).toBe(404);
    await expect(r.json()).resolves.toEqual({ error: 'no customer cus_nobody is known to the dunning worker' });
    expect((await get('/api/v1/customers/cus%2E..x/billing-status', authed)).status).toBe(400);
  });

  it('says ok for a customer with nothing due', async () => {
    const r = await get('/api/v1/customers/cus_done/billing-status', authed);
    expect(r.status).toBe(200);
    await expect(r.json()).resolves.toEqual({
      customer: 'cus_done',
      status: 'ok',
      amountsDue: [],
      banner: null,
      link: null,
      access: { decision: 'full', graceEndsAt: null },
      locale: 'en',
    });
  });

  it('says past_due with the amount, the English banner and a signed update-card link', async () => {
    const r = await get('/api/v1/customers/cus_late/billing-status', authed);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = (await r.json()) as { link: { url: string } };
    expect(body).toMatchObject({
      customer: 'cus_late',
      status: 'past_due',
      amountsDue: [{ amount: 4_900, currency: 'usd' }],
      banner: 'Your last payment of $49.00 failed. Please update your card to keep your subscription.',
      link: { kind: 'update_card', label: 'Update card' },
      // The fixture's case opened 2026-03-01T08:00Z; the default grace is 14 days.
      access: { decision: 'banner', graceEndsAt: '2026-03-15T08:00:00.000Z' },
    });
    const url = new URL(body.link.url);
    expect(`${url.origin}${url.pathname}`).toBe(`https://billing.example.com${UPDATE_CARD_PATH}`);
    expect(createCardLinkSigner(STRIPE_KEY).verify(url.searchParams.get('t')!, clock.now())).toMatchObject({
      ok: true,
      customerId: 'cus_late',
    });
  });

  it('sends a customer awaiting 3-D Secure to the hosted invoice page, in German', async () => {
    // Stripe, Invoice.hosted_invoice_url: "The URL for the hosted invoice page, which allows customers
    // to view and pay an invoice." Paying there is where the customer completes 3-D Secure.
    const r = await get('/api/v1/customers/cus_3ds/billing-status', authed);
    await expect(r.json()).resolves.toMatchObject({
      status: 'action_required',
      amountsDue: [{ amount: 1_200, currency: 'eur' }],
      banner: 'Ihre Bank bittet Sie, die Zahlung über 12,00\u00a0€ zu bestätigen. Bitte schließen Sie sie jetzt ab.',
      link: { kind: 'authenticate', url: 'https://invoice.stripe.com/i/in_3ds', label: 'Zahlung bestätigen' },
      locale: 'de',
    });
  });

  it('restricts access once the grace period is over', async () => {
    await db.sql`update dunning_cases set opened_at = '2026-02-01T08:00:00Z' where invoice_id = 'in_late'`;
    try {
      const r = await get('/api/v1/customers/cus_late/billing-status', authed);
      await expect(r.json()).resolves.toMatchObject({
        status: 'grace_ended',
        access: { decision: 'restricted', graceEndsAt: '2026-02-15T08:00:00.000Z' },
      });
    } finally {
      await db.sql`update dunning_cases set opened_at = '2026-03-01T08:00:00Z' where invoice_id = 'in_late'`;
    }
  });

  it('refuses other methods', async () => {
    const r = await fetch(`${base}/api/v1/customers/cus_late/billing-status`, { method: 'POST', headers: authed });
    expect(r.status).toBe(405);
  });
});

describe('banner tokens and /embed', () => {
  const mint = (id: string, headers = authed) =>
    fetch(`${base}/api/v1/customers/${id}/banner-token`, { method: 'POST', headers });

  it('mints a short-lived token for a known customer, behind the API key', async () => {
    expect((await mint('cus_late', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await mint('cus_nobody')).status).toBe(404);
    const r = await mint('cus_late');
    expect(r.status).toBe(200);
    const { token, expiresAt } = (await r.json()) as { token: string; expiresAt: string };
    expect(expiresAt).toBe('2026-03-03T08:10:00.000Z');
    // Not an update-card link: the two kinds are signed under different keys.
    expect(createCardLinkSigner(STRIPE_KEY).verify(token, clock.now())).toEqual({ ok: false, reason: 'bad_signature' });
    expect(createCardLinkSigner(STRIPE_KEY, BANNER_TOKEN_LABEL).verify(token, clock.now())).toMatchObject({ ok: true });
  });

  it('answers the status for a token, readable cross-origin only by BANNER_ORIGINS', async () => {
    const { token } = (await (await mint('cus_late')).json()) as { token: string };
    const r = await get(`/embed/billing-status?token=${token}`, { origin: ORIGIN });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    await expect(r.json()).resolves.toMatchObject({ status: 'past_due', link: { kind: 'update_card' } });
    const other = await get(`/embed/billing-status?token=${token}`, { origin: 'https://evil.example.net' });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const forged = await get(`/embed/billing-status?token=${token.slice(0, -2)}AA`, { origin: ORIGIN });
    expect(forged.status).toBe(401);
    expect(forged.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  });

  it('refuses an expired token', async () => {
    const token = createCardLinkSigner(STRIPE_KEY, BANNER_TOKEN_LABEL).sign(
      'cus_late',
      new Date(clock.now().getTime() - 1),
    );
    expect((await get(`/embed/billing-status?token=${token}`, { origin: ORIGIN })).status).toBe(401);
  });

  it('serves the banner script itself', async () => {
    const r = await get('/embed/billing-banner.js');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await r.text()).toContain('/embed/billing-status?token=');
  });
});

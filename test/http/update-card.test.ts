/**
 * `GET /update-card` over real HTTP, with the Stripe sandbox as Stripe: a good link is a 303 to a
 * fresh portal session on the card form; an expired, tampered or foreign link a small page; Stripe
 * trouble a 503 asking to retry; and the token never reaches a log line.
 */
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardLinkUrl, createCardLinkSigner } from '../../src/card-link.ts';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { closeServer, createServer, listen, mountRoutes } from '../../src/http/server.ts';
import { updateCardRoutes, updateCardRoutesFor } from '../../src/http/update-card.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { createStripeClient } from '../../src/stripe/client.ts';
import { createThrottle, type Throttle } from '../../src/stripe/throttle.ts';
import { capturingLogger, request } from './harness.ts';

const clock = new FixedClock('2026-03-02T12:00:00Z');
const DAY = 86_400_000;
const { log, lines } = capturingLogger();
let sandbox: Sandbox;
let server: http.Server;
let base: string;
let customerId: string;
let stripeCalls = 0;
const signer = () => createCardLinkSigner(sandbox.apiKey);
const linkFor = (customer: string, expiresAt = new Date(clock.now().getTime() + 30 * DAY)) =>
  signer().sign(customer, expiresAt);
const get = (token: string, headers: Record<string, string> = {}, method = 'GET') =>
  request(base, {
    method,
    path: new URL(cardLinkUrl(base, token)).pathname + new URL(cardLinkUrl(base, token)).search,
    headers,
  });

beforeAll(async () => {
  sandbox = await startSandbox({ clock, seed: 5 });
  customerId = (
    await sandbox.createCustomer({
      email: 'karte@kunde.de',
      name: 'K',
      country: 'DE',
      card: { brand: 'visa', failure: null, expMonth: 3, expYear: 2026 },
    })
  ).id;
  const inner = createThrottle(100);
  // Counts what passes the shared throttle: every portal session must be one of those calls.
  const throttle: Throttle = { take: () => ((stripeCalls += 1), inner.take()), waiting: () => inner.waiting() };
  const stripe = createStripeClient(
    { stripeSecretKey: sandbox.apiKey, stripeApiBase: { protocol: 'http', host: sandbox.host, port: sandbox.port } },
    { timeoutMs: 2_000 },
  );
  const config = loadConfig({
    MERCHANT_NAME: 'Acme GmbH',
    SUPPORT_EMAIL: 'hilfe@acme.test',
    BILLING_PORTAL_RETURN_URL: 'https://acme.test/account',
  });
  server = createServer({
    log,
    routes: updateCardRoutes({ signer: signer(), gateway: { stripe, throttle }, clock, config }),
  });
  base = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
});

afterAll(async () => {
  if (server) await closeServer(server);
  await sandbox?.stop();
});

const text = (a: { body: Record<string, unknown> }) => (typeof a.body.text === 'string' ? a.body.text : '');

describe('GET /update-card', () => {
  it('a valid link is a 303 to a fresh portal session on the card form, through the shared throttle', async () => {
    const token = linkFor(customerId);
    const before = stripeCalls;
    const first = await get(token);
    expect(first.status).toBe(303);
    expect(first.headers.location).toMatch(new RegExp(`^${sandbox.url.replace(/[.]/g, '\\.')}/portal/bps_\\w+$`));
    expect(first.headers).toMatchObject({ 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' });
    expect(stripeCalls - before).toBe(1);
    // The page Stripe's redirect lands on is the payment-method form of this customer.
    const portal = await fetch(first.headers.location!);
    expect(portal.status).toBe(200);
    const page = await portal.text();
    expect(page).toContain('<p id="flow">payment_method_update</p>');
    expect(page).toContain(customerId);
    // Every click makes a new session: the one before may have expired already.
    const second = await get(token);
    expect(second.status).toBe(303);
    expect(second.headers.location).not.toBe(first.headers.location);
  });

  it("an expired link is a 410 page pointing to a newer email, in the browser's language", async () => {
    const token = linkFor(customerId, new Date(clock.now().getTime() - 1_000));
    const before = stripeCalls;
    const en = await get(token);
    expect(en.status).toBe(410);
    expect(en.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(text(en)).toContain('This link has expired');
    expect(text(en)).toContain('a newer email from Acme GmbH');
    expect(text(en)).toContain('mailto:hilfe@acme.test');
    const de = await get(token, { 'accept-language': 'fr-FR, de-AT;q=0.8, en;q=0.5' });
    expect(de.status).toBe(410);
    expect(text(de)).toContain('Dieser Link ist abgelaufen');
    expect(text(de)).toContain('<html lang="de">');
    // Nothing of the page comes from elsewhere.
    expect(en.headers['content-security-policy']).toContain("default-src 'none'");
    expect(text(en)).not.toMatch(/<(script|link|img)\b/);
    expect(stripeCalls - before).toBe(0);
  });

  it('a tampered, cut-off, missing or foreign link is a 400 page, and Stripe is not asked', async () => {
    const token = linkFor(customerId);
    const [, exp, mac] = token.split('.');
    const other = (
      await sandbox.createCustomer({
        email: 'other@customer.com',
        name: 'O',
        country: 'US',
        card: { brand: 'visa', failure: null, expMonth: 1, expYear: 2030 },
      })
    ).id;
    const rotated = createCardLinkSigner('sk_test_an_older_key_0000000000').sign(
      customerId,
      new Date(clock.now().getTime() + DAY),
    );
    const before = stripeCalls;
    for (const bad of [`${other}.${exp}.${mac}`, token.slice(0, -4), '', rotated]) {
      const a = await get(bad);
      expect(a.status).toBe(400);
      expect(text(a)).toContain('This link does not work');
      expect(text(a)).toContain('the most recent email from Acme GmbH');
    }
    expect((await request(base, { method: 'GET', path: '/update-card' })).status).toBe(400);
    expect(stripeCalls - before).toBe(0);
  });

  it('Stripe answering 500 is a 503 "try again in a minute"; the next click works', async () => {
    const token = linkFor(customerId);
    sandbox.inject({ kind: 'http_500', route: 'POST /v1/billing_portal/sessions' });
    const down = await get(token, { 'accept-language': 'de' });
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBe('60');
    expect(text(down)).toContain('Bitte versuchen Sie es in einer Minute erneut');
    expect((await get(token)).status).toBe(303);
  });

  it('a customer Stripe does not know is a 410 page asking to contact support', async () => {
    const a = await get(linkFor('cus_deleted_at_stripe'));
    expect(a.status).toBe(410);
    expect(text(a)).toContain('This link no longer works');
  });

  it('HEAD checks a link without opening a session; other methods are refused', async () => {
    const before = stripeCalls;
    const good = await get(linkFor(customerId), {}, 'HEAD');
    expect(good.status).toBe(200);
    expect(text(good)).toBe('');
    expect((await get('nonsense', {}, 'HEAD')).status).toBe(400);
    expect(stripeCalls - before).toBe(0);
    const post = await get(linkFor(customerId), {}, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('logs the outcome and the customer id, never the token or an email address', async () => {
    const token = linkFor(customerId);
    await get(token);
    await get(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'));
    const all = lines.join('\n');
    const requests = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'request' && l.path === '/update-card');
    expect(requests.some((l) => l.link === 'redirected' && l.customerId === customerId && l.status === 303)).toBe(true);
    expect(requests.some((l) => l.link === 'bad_signature' && l.status === 400)).toBe(true);
    expect(requests.some((l) => l.link === 'stripe_unavailable' && l.status === 503)).toBe(true);
    expect(all).not.toContain(token.split('.')[2]!);
    expect(all).not.toContain('?t=');
    expect(all).not.toMatch(/@(kunde\.de|customer\.com)/);
  });
});

describe('mounted from the configuration', () => {
  it('is absent without PUBLIC_URL, and can be mounted once a server listens (the demo wires it so)', async () => {
    const env = { STRIPE_SECRET_KEY: sandbox.apiKey, STRIPE_API_BASE: sandbox.url };
    expect(updateCardRoutesFor(loadConfig(env), { clock })).toEqual({});
    const late = createServer({ log, routes: {} });
    const url = `http://127.0.0.1:${await listen(late, 0, '127.0.0.1')}`;
    try {
      const path = `/update-card?t=${linkFor(customerId)}`;
      expect((await request(url, { method: 'GET', path })).status).toBe(404);
      const routes = updateCardRoutesFor(loadConfig({ ...env, PUBLIC_URL: url }), { clock });
      mountRoutes(late, routes);
      expect((await request(url, { method: 'GET', path })).status).toBe(303);
      expect(() => mountRoutes(late, routes)).toThrow(/already mounted/);
    } finally {
      await closeServer(late);
    }
  });
});

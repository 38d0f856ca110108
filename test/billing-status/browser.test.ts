import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyDigest } from '../../src/billing-status/api-keys.ts';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { billingStatusRoutesFor } from '../../src/http/billing-status.ts';
import { closeServer, createServer, listen, mountRoutes } from '../../src/http/server.ts';
import { updateCardRoutesFor } from '../../src/http/update-card.ts';
import { createLogger } from '../../src/log.ts';
import { apply, recordingHooks, testDeps } from '../events/helpers.ts';
import { event, invoice, paidInvoice, T0 } from '../fixtures/events/stripe-objects.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';

const CHROMIUM = '/usr/bin/chromium';
const present = fs.existsSync(CHROMIUM);
// In CI the banner must be checked in a real browser: a missing Chromium fails there.
const run = present || Boolean(process.env.CI);
if (!run) console.warn(`banner browser test skipped: ${CHROMIUM} is missing (apt-get install chromium); CI is not set`);
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

const API_KEY = 'merchant-backend-key-0123456789';
const CUSTOMER = 'cus_banner';
const INVOICE = 'in_banner';

/**
 * The worker on one loopback port, the merchant's page on another (so another origin, as in
 * production): the page's backend mints a banner token with the API key for its signed-in customer
 * and embeds the script with one tag.
 */
describe.runIf(run)('the billing banner embedded in a merchant page, in headless Chromium', () => {
  let db: TestDatabase;
  let worker: http.Server;
  let merchant: http.Server;
  let workerBase: string;
  let merchantBase: string;
  let browser: Browser;
  const deps = testDeps(recordingHooks().hooks);

  beforeAll(async () => {
    if (!present) throw new Error(`CI is set but ${CHROMIUM} is missing: install Debian's chromium package`);
    db = await createTestDatabase();
    merchant = http.createServer((req, res) => {
      void merchantPage(req, res);
    });
    merchantBase = `http://127.0.0.1:${await listen(merchant, 0, '127.0.0.1')}`;
    // The worker's routes need the merchant's origin (CORS) and their own address (PUBLIC_URL): mounted once both listen.
    worker = createServer({ log: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), routes: {} });
    const workerPort = await listen(worker, 0, '127.0.0.1');
    workerBase = `http://127.0.0.1:${workerPort}`;
    const config = loadConfig({
      API_KEYS: `merchant-app:${apiKeyDigest(API_KEY).toString('hex')}`,
      STRIPE_SECRET_KEY: 'sk_test_banner',
      PUBLIC_URL: workerBase,
      BANNER_ORIGINS: merchantBase,
    });
    // Two days after the failure below: inside the default 14-day grace period.
    const clock = new FixedClock(new Date((T0 + 2 * 86_400) * 1000));
    mountRoutes(worker, {
      ...billingStatusRoutesFor(config, { sql: db.sql, clock }),
      ...updateCardRoutesFor(config, { clock }),
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    if (worker) await closeServer(worker);
    if (merchant) await closeServer(merchant);
    await db?.drop();
  });

  /** The merchant's backend: mints a token for the signed-in customer and renders the page. */
  async function merchantPage(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.url !== '/' && req.url !== '/forged') {
      res.writeHead(404).end();
      return;
    }
    const r = await fetch(`${workerBase}/api/v1/customers/${CUSTOMER}/banner-token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const minted = ((await r.json()) as { token: string }).token;
    const token = req.url === '/forged' ? `${minted.slice(0, -4)}AAAA` : minted;
    const html = `<!doctype html><html><head><title>Merchant app</title></head><body>
<main><h1>Your dashboard</h1></main>
<script src="${workerBase}/embed/billing-banner.js" data-token="${token}" async></script>
</body></html>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  }

  it('shows the banner for a past-due customer, links to the update-card page, and goes after payment', async () => {
    // The customer's payment fails: the worker opens a case as it does for a webhook.
    await apply(
      db.sql,
      deps,
      event('invoice.payment_failed', invoice({ id: INVOICE, customer: CUSTOMER }), { created: T0 }),
    );
    const context = await browser.newContext();
    const hosts = new Set<string>();
    context.on('request', (r) => hosts.add(new URL(r.url()).origin));
    try {
      const page = await context.newPage();
      await page.goto(merchantBase);
      const banner = page.locator('#dunning-billing-banner');
      await banner.waitFor();
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'billing-banner.png') });
      await expect(banner.getAttribute('data-status')).resolves.toBe('past_due');
      await expect(banner.textContent()).resolves.toBe(
        'Your last payment of $49.00 failed. Please update your card to keep your subscription. Update card',
      );
      const href = await banner.locator('a').getAttribute('href');
      expect(href).toMatch(new RegExp(`^${workerBase}/update-card\\?t=${CUSTOMER}\\.`));
      // The link is one the worker's update-card page accepts (HEAD checks it without opening a portal session).
      expect((await fetch(href!, { method: 'HEAD' })).status).toBe(200);

      // Stripe, invoice.paid: "Occurs whenever an invoice payment attempt succeeds or an invoice is
      // marked as paid out-of-band." The worker processes it and closes the case.
      await apply(
        db.sql,
        deps,
        event('invoice.paid', paidInvoice({ id: INVOICE, customer: CUSTOMER }, T0 + 3_600), { created: T0 + 3_600 }),
      );
      await waitFor('the recovered case', async () => {
        const [c] = await db.sql`select status from dunning_cases where invoice_id = ${INVOICE}`;
        return c?.status === 'recovered';
      });
      // Back in the tab (the customer paid in another one): the banner asks again and goes.
      // A string: the test project's types have no DOM.
      await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))");
      await banner.waitFor({ state: 'detached' });
      // And a fresh page view shows nothing either.
      const answered = page.waitForResponse((r) => r.url().includes('/embed/billing-status'));
      await page.reload();
      await answered;
      await expect(banner.count()).resolves.toBe(0);
      expect([...hosts].sort()).toEqual([merchantBase, workerBase].sort());
    } finally {
      await context.close();
    }
  });

  it('shows nothing, and breaks nothing, when the token is not ours', async () => {
    await apply(
      db.sql,
      deps,
      event('invoice.payment_failed', invoice({ id: 'in_banner2', customer: CUSTOMER }), { created: T0 + 7_200 }),
    );
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const refused = page.waitForResponse((r) => r.url().includes('/embed/billing-status') && r.status() === 401);
      await page.goto(`${merchantBase}/forged`);
      await refused;
      await expect(page.locator('#dunning-billing-banner').count()).resolves.toBe(0);
      await expect(page.locator('h1').textContent()).resolves.toBe('Your dashboard');
      // The same customer, with the token as minted: the banner is there.
      await page.goto(merchantBase);
      await page.locator('#dunning-billing-banner').waitFor();
    } finally {
      await context.close();
    }
  });
});

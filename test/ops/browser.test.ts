import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/db.ts';
import { ALICE_TOKEN, insertOpsCases, READ_TOKEN, startOpsWorld, type OpsWorld } from './fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
const present = fs.existsSync(CHROMIUM);
// In CI the ops pages must be checked in a real browser: a missing Chromium fails there.
const run = present || Boolean(process.env.CI);
if (!run) console.warn(`ops browser test skipped: ${CHROMIUM} is missing (apt-get install chromium); CI is not set`);
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

describe.runIf(run)('/ops in headless Chromium, without JavaScript', () => {
  let w: OpsWorld;
  let browser: Browser;

  beforeAll(async () => {
    if (!present) throw new Error(`CI is set but ${CHROMIUM} is missing: install Debian's chromium package`);
    w = await startOpsWorld();
    await insertOpsCases(w.db.sql, [
      { invoice: 'in_small', amount: 500, email: 'small@example.com' },
      { invoice: 'in_big', amount: 90_000, category: 'funds', attempts: ['planned'] },
      { invoice: 'in_eur', amount: 4_900, currency: 'eur' },
    ]);
    await w.db.sql`
      insert into reminder_outbox (case_id, customer_id, invoice_id, kind, step, dedupe_key, status, due_at, send_at, sent_at, locale, time_zone)
      select id, customer_id, invoice_id, 'first_notice', 1, 'case:' || id || ':first_notice:1', 'sent',
             '2026-03-01T09:00:00Z', '2026-03-01T09:00:00Z', '2026-03-01T09:00:05Z', 'en', 'Europe/Berlin'
        from dunning_cases where invoice_id = 'in_big'`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await w?.close();
  });

  /** A browser that sends the token as basic auth and runs no script: the pages must work without. */
  async function contextFor(token: string): Promise<{ context: BrowserContext; foreign: string[] }> {
    const context = await browser.newContext({
      httpCredentials: { username: 'ops', password: token },
      javaScriptEnabled: false,
      viewport: { width: 1280, height: 900 },
    });
    const foreign: string[] = [];
    context.on('request', (r) => {
      if (!r.url().startsWith(w.base)) foreign.push(r.url());
    });
    return { context, foreign };
  }

  it('lists, filters, opens a case, pauses it through the confirmation and shows the audit entry', async () => {
    const { context, foreign } = await contextFor(ALICE_TOKEN);
    try {
      const page = await context.newPage();
      await page.goto(`${w.base}/ops`);
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'ops-list.png'), fullPage: true });
      const rows = await page.locator('#cases tbody tr').all();
      await expect(Promise.all(rows.map((r) => r.getAttribute('data-invoice')))).resolves.toEqual([
        'in_big',
        'in_eur',
        'in_small',
      ]);
      await expect(page.locator('tr[data-invoice="in_big"] td').first().textContent()).resolves.toBe('$900.00');

      // The filter form, submitted as a plain GET form.
      await page.locator('input[name="currency"]').fill('eur');
      await Promise.all([page.waitForURL(/currency=eur/), page.locator('form.filters button.primary').click()]);
      await expect(page.locator('#cases tbody tr').count()).resolves.toBe(1);
      await expect(page.locator('tr[data-invoice="in_eur"] td').first().textContent()).resolves.toBe('€49.00');

      await page.goto(`${w.base}/ops?q=in_big`);
      await Promise.all([
        page.waitForURL(/\/ops\/case\?invoice=in_big/),
        page.locator('a', { hasText: 'in_big' }).click(),
      ]);
      await expect(page.locator('#amount').textContent()).resolves.toBe('$900.00');
      await expect(page.locator('#card').textContent()).resolves.toContain('1 of 15 charges in 30 days');
      // One timeline: the Stripe charge, the planned attempt with its reason, the email with its preview.
      const timeline = page.locator('#timeline li');
      await expect(timeline.allTextContents()).resolves.toEqual([
        expect.stringMatching(/Attempt #1 \(stripe\): declined/),
        expect.stringMatching(/Email first_notice \(step 1\): sent/),
        expect.stringMatching(/Attempt #2 \(scheduled\): planned.*planner: payday/s),
      ]);
      await expect(page.locator('#timeline details summary').textContent()).resolves.toMatch(/payment/i);

      await Promise.all([page.waitForURL(/\/ops\/confirm/), page.locator('button[data-action="pause"]').click()]);
      await page.screenshot({ path: path.join(ARTIFACTS, 'ops-confirm.png'), fullPage: true });
      await Promise.all([page.waitForURL(/\/ops\/case\?invoice=in_big&audit=/), page.locator('#confirm').click()]);
      await page.screenshot({ path: path.join(ARTIFACTS, 'ops-case.png'), fullPage: true });
      await expect(page.locator('#result').textContent()).resolves.toMatch(/Pause by alice: done/);
      await expect(page.locator('#status').textContent()).resolves.toContain('paused');
      await expect(page.locator('#audit tbody tr td').allTextContents()).resolves.toEqual([
        '2026-03-03 08:00 UTC',
        'alice',
        'pause',
        'done',
        'paused: planned attempts cancelled, pending emails held',
      ]);
      await waitFor(
        'the audit row',
        async () => (await w.db.sql`select 1 from ops_audit where actor = 'alice'`).length > 0,
      );
      expect(foreign).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a read-only token sees no actions, and a posted action is refused with 403', async () => {
    const { context } = await contextFor(READ_TOKEN);
    try {
      const page = await context.newPage();
      await page.goto(`${w.base}/ops/case?invoice=in_small`);
      await expect(page.locator('.actions button').count()).resolves.toBe(0);
      await expect(page.locator('main, body').first().textContent()).resolves.toContain('Read-only access');
      const res = await context.request.post(`${w.base}/ops/action`, {
        form: { invoice: 'in_small', action: 'pause', csrf: 'guess' },
      });
      expect(res.status()).toBe(403);
      const [c] = await w.db.sql`select paused from dunning_cases where invoice_id = 'in_small'`;
      expect(c!.paused).toBe(false);
    } finally {
      await context.close();
    }
  });
});

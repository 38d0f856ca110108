import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { reportRoutes } from '../../src/reports/routes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { insertCases, NOVEMBER } from './fixtures.ts';
import { serveRoutes } from './serve.ts';

const CHROMIUM = '/usr/bin/chromium';
const present = fs.existsSync(CHROMIUM);
// In CI the dashboard must be checked in a real browser: a missing Chromium fails there.
const run = present || Boolean(process.env.CI);
if (!run)
  console.warn(`dashboard browser test skipped: ${CHROMIUM} is missing (apt-get install chromium); CI is not set`);

const TOKEN = 'browser-test-token-0123456789';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

describe.runIf(run)('dashboard in headless Chromium', () => {
  let db: TestDatabase;
  let server: Awaited<ReturnType<typeof serveRoutes>>;
  let browser: Browser;

  beforeAll(async () => {
    if (!present) throw new Error(`CI is set but ${CHROMIUM} is missing: install Debian's chromium package`);
    db = await createTestDatabase();
    await insertCases(db.sql, NOVEMBER);
    server = await serveRoutes(
      reportRoutes({
        sql: db.sql,
        clock: new FixedClock('2026-12-10T12:00:00Z'),
        config: { reportsToken: TOKEN, defaultTimeZone: 'Europe/Berlin' },
      }),
    );
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
    await server?.close();
    await db?.drop();
  });

  it('renders the numbers, the four charts and their tables, fetching nothing from elsewhere', async () => {
    const context = await browser.newContext({
      httpCredentials: { username: 'ops', password: TOKEN },
      viewport: { width: 1280, height: 900 },
    });
    try {
      const page = await context.newPage();
      const foreign: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(server.base)) foreign.push(r.url());
      });
      const res = await page.goto(`${server.base}/reports?from=2026-11-01&to=2026-11-30`);
      // The artefact first: a run that fails below still leaves the page it saw.
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'reports-dashboard.png'), fullPage: true });
      expect(res?.status()).toBe(200);

      await expect(page.locator('#usd-recovered .value').textContent()).resolves.toBe('$60.00');
      await expect(page.locator('#usd-at-risk .value').textContent()).resolves.toBe('$118.00');
      await expect(page.locator('#usd-rate .value').textContent()).resolves.toBe('60.0 %');
      await expect(page.locator('#jpy-at-risk .value').textContent()).resolves.toBe('¥1,500');

      // One column per day of November; the three days with recoveries have height.
      const days = page.locator('#usd-chart-timeline rect.bar');
      await expect(days.count()).resolves.toBe(30);
      const tall = await days.evaluateAll((els) =>
        els.filter((e) => Number(e.getAttribute('height')) > 0).map((e) => e.getAttribute('data-label')),
      );
      expect(tall).toEqual(['2026-11-03', '2026-11-04', '2026-11-06']);
      await expect(page.locator('#usd-chart-attempt .bar').count()).resolves.toBe(3);
      await expect(
        page.locator('#usd-chart-category .bar[data-label="customer_action"]').getAttribute('data-value'),
      ).resolves.toBe('0.5');
      const pathWidths = await page
        .locator('#usd-chart-path rect')
        .evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width));
      expect(pathWidths).toHaveLength(3);
      expect(pathWidths.every((w) => w > 0)).toBe(true);

      // The same figures as numbers: two of the three recoveries came at the second charge.
      const attempt2 = page
        .locator('#usd-table-attempt tbody tr')
        .filter({ has: page.locator('td:first-child', { hasText: /^2$/ }) });
      await expect(attempt2.locator('td').allTextContents()).resolves.toEqual([
        '2',
        '3',
        '2',
        '66.7 %',
        '66.7 %',
        '$70.00',
      ]);
      const customerAction = page.locator('#usd-table-category tbody tr').filter({ hasText: 'customer_action' });
      await expect(customerAction.locator('td').allTextContents()).resolves.toEqual([
        'customer_action',
        '2',
        '1',
        '50.0 %',
        '$50.00',
      ]);
      await expect(page.locator('#usd-table-category').isVisible()).resolves.toBe(true);

      // The year's trend: twelve months ending with the period's, each month's cohort rate as a point
      // where that month had cases (September to November here), the months before on the axis.
      await page.locator('#usd-chart-trend').screenshot({ path: path.join(ARTIFACTS, 'reports-trend.png') });
      const months = page.locator('#usd-chart-trend rect.bar');
      await expect(months.count()).resolves.toBe(12);
      await expect(months.first().getAttribute('data-label')).resolves.toBe('2025-12');
      await expect(months.last().getAttribute('data-label')).resolves.toBe('2026-11');
      const points = await page.locator('#usd-chart-trend circle.rate').all();
      await expect(Promise.all(points.map((p) => p.getAttribute('data-label')))).resolves.toEqual([
        '2026-09',
        '2026-10',
        '2026-11',
      ]);
      await expect(page.locator('#usd-chart-trend polyline.rate').count()).resolves.toBe(1);
      // Churn by customers and by revenue, side by side.
      await expect(page.locator('#churn-customers .label').textContent()).resolves.toBe(
        'Involuntary churn by customers',
      );
      const churnTiles = await page.locator('#churn-section .tile').all();
      const tops = await Promise.all(churnTiles.map(async (t) => (await t.boundingBox())?.y));
      expect(tops).toHaveLength(2);
      expect(new Set(tops).size).toBe(1);

      await expect(page.locator('#definitions dt').first().textContent()).resolves.toBe('Period');
      expect(foreign).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('refuses the page to a browser without the token', async () => {
    const context = await browser.newContext();
    // A page navigation would stop at the browser's login prompt; the context's request API shows the answer.
    const res = await context.request.get(`${server.base}/reports`);
    expect(res.status()).toBe(401);
    expect(res.headers()['www-authenticate']).toMatch(/Basic/);
    await context.close();
  });
});

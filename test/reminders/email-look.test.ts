import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildValues } from '../../src/reminders/content.ts';
import type { ReminderKind } from '../../src/reminders/kinds.ts';
import type { Locale } from '../../src/reminders/localize.ts';
import type { SendContext } from '../../src/reminders/outbox.ts';
import { loadTemplates } from '../../src/reminders/templates.ts';

const templates = loadTemplates(null);
const LINK = 'https://billing.example.com/update-card?t=abc';
const LOGO = 'https://cdn.example.com/logo.png';
const NOW = new Date('2026-03-03T08:00:00Z');
const INVOICE_KINDS: ReminderKind[] = ['first_notice', 'action_required', 'last_chance', 'final_notice'];

function contextOf(kind: ReminderKind, locale: Locale): SendContext {
  return {
    id: 1,
    caseId: 1,
    customerId: 'cus_1',
    invoiceId: 'in_1',
    kind,
    step: 1,
    status: 'pending',
    sendAt: NOW,
    locale,
    timeZone: 'Europe/Berlin',
    data: { attemptAt: '2026-03-06T08:00:00Z' },
    tries: 0,
    firstFailedAt: null,
    email: 'someone@example.com',
    customerName: 'Some One',
    customerDeleted: false,
    defaultPaymentMethod: 'pm_1',
    reminderCardRenews: null,
    invoiceStatus: 'open',
    hostedInvoiceUrl: null,
    amountRemaining: 4_900,
    currency: 'eur',
    caseStatus: 'open',
    casePaused: false,
    pauseBehavior: null,
    pauseResumesAt: null,
    caseAmount: 4_900,
    declineCategory: 'funds',
    nextAttemptAt: new Date('2026-03-05T08:00:00Z'),
    invoiceCreated: new Date('2026-03-01T09:30:00Z'),
    invoiceForSubscription: true,
  };
}

const render = (kind: ReminderKind, locale: Locale, logo: string | null = LOGO) =>
  templates.render(
    kind,
    locale,
    buildValues(
      contextOf(kind, locale),
      { merchantName: 'Acme Cloud', supportEmail: 'help@acme.example', merchantLogoUrl: logo },
      LINK,
      NOW,
    ),
  );

describe('customer emails', () => {
  it.each(INVOICE_KINDS.flatMap((k) => (['en', 'de'] as const).map((l) => [k, l] as const)))(
    '%s (%s): one button for the one action, the logo, and the invoice summary in html and text',
    (kind, locale) => {
      const m = render(kind, locale);
      const buttons = [...m.html.matchAll(/<a [^>]*class="button"[^>]*>/g)];
      expect(buttons).toHaveLength(1);
      expect(buttons[0]![0]).toContain(`href="${LINK}"`);
      expect(m.html).toContain(`<img src="${LOGO}" alt="Acme Cloud"`);
      const amount = locale === 'en' ? '€49.00' : '49,00 €';
      const date = locale === 'en' ? 'March 1, 2026' : '1. März 2026';
      const what = locale === 'en' ? 'Acme Cloud subscription' : 'Abonnement bei Acme Cloud';
      for (const part of [m.html, m.text]) {
        expect(part.replace(/[\u00a0\u202f]/g, ' ')).toContain(amount);
        expect(part).toContain(date);
        expect(part).toContain(what);
      }
      // The plain-text alternative keeps the link itself.
      expect(m.text).toContain(LINK);
      expect(m.text).not.toContain('<');
    },
  );

  it('names the merchant in the header when there is no logo', () => {
    const m = render('first_notice', 'en', null);
    expect(m.html).not.toContain('<img');
    expect(m.html).toMatch(/<td class="brand"[^>]*>Acme Cloud<\/td>/);
  });
});

const CHROMIUM = '/usr/bin/chromium';
const present = fs.existsSync(CHROMIUM);
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

describe.runIf(present || Boolean(process.env.CI))('customer emails in headless Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it.each(['en', 'de'] as const)(
    'renders every invoice email in %s with a visible, tappable button',
    async (locale) => {
      const page = await browser.newPage({ viewport: { width: 640, height: 900 } });
      try {
        // The logo comes from the merchant's host; here a stand-in answers for it, nothing else loads.
        await page.route('**/*', (route) =>
          route.request().url() === LOGO
            ? route.fulfill({
                contentType: 'image/svg+xml',
                body: '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40"><rect width="40" height="40" rx="8" fill="#d9480f"/><text x="50" y="27" font-family="sans-serif" font-size="20" font-weight="700" fill="#222">Acme</text></svg>',
              })
            : route.abort(),
        );
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        for (const kind of INVOICE_KINDS) {
          await page.setContent(render(kind, locale).html);
          await page.screenshot({ path: path.join(ARTIFACTS, `email-${locale}-${kind}.png`), fullPage: true });
          const logo = await page.locator('td.brand img').boundingBox();
          expect(logo?.height).toBe(40);
          const box = await page.locator('a.button').boundingBox();
          expect(box?.height).toBeGreaterThanOrEqual(40);
          expect(box?.width).toBeGreaterThanOrEqual(160);
        }
      } finally {
        await page.close();
      }
    },
  );
});

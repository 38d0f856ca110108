/**
 * The card-expiry email end to end, as `dunning start` wires it: with PUBLIC_URL the reminder
 * workers put a signed link to our own /update-card into the email (no Stripe call at send time),
 * the email goes over SMTP to a catcher on loopback, and following the link from the email reaches
 * a fresh portal session on the sandbox's card form. Without PUBLIC_URL the worker says at start
 * that those links die quickly.
 */
import type http from 'node:http';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardLinkSigner } from '../../src/card-link.ts';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { closeServer, createServer, listen, mountRoutes } from '../../src/http/server.ts';
import { updateCardRoutesFor } from '../../src/http/update-card.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { createReminderHooks } from '../../src/reminders/hooks.ts';
import { startMailCatcher, type MailCatcher } from '../../src/reminders/mail-catcher.ts';
import { startReminderWorkers } from '../../src/reminders/worker.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { createStripeClient } from '../../src/stripe/client.ts';
import { createThrottle, type Throttle } from '../../src/stripe/throttle.ts';
import { request } from '../http/harness.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { insertCase } from './fixtures.ts';

const lines: Array<Record<string, unknown>> = [];
const log = createLogger('info', {
  write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
});
// Fri 20 March 2026, 13:00 in Berlin: a card expiring end of March is due for its reminder (14 days before).
const clock = new FixedClock('2026-03-20T12:00:00Z');
const DAY = 86_400_000;

let db: TestDatabase;
let boss: PgBoss;
let catcher: MailCatcher;
let sandbox: Sandbox;
let web: http.Server;
let base: string;
let stripeCalls = 0;
let throttle: Throttle;
let stop: (() => Promise<void>) | null = null;

const envFor = (extra: Record<string, string> = {}) => ({
  DEFAULT_TIME_ZONE: 'Europe/Berlin',
  MERCHANT_NAME: 'Acme GmbH',
  MAIL_FROM: 'billing@acme.test',
  SMTP_URL: catcher.url,
  STRIPE_SECRET_KEY: sandbox.apiKey,
  STRIPE_API_BASE: sandbox.url,
  ...extra,
});

beforeAll(async () => {
  db = await createTestDatabase();
  catcher = await startMailCatcher();
  sandbox = await startSandbox({ clock, seed: 11 });
  boss = await startQueue(db.url, log);
  const inner = createThrottle(100);
  throttle = { take: () => ((stripeCalls += 1), inner.take()), waiting: () => inner.waiting() };
  // The web role: it must listen before PUBLIC_URL (its address) is known.
  web = createServer({ log, routes: {} });
  base = `http://127.0.0.1:${await listen(web, 0, '127.0.0.1')}`;
  mountRoutes(web, updateCardRoutesFor(loadConfig(envFor({ PUBLIC_URL: base })), { clock, gateway: gateway() }));
});

afterAll(async () => {
  await stop?.();
  await boss?.stop({ graceful: false });
  if (web) await closeServer(web);
  await catcher?.close();
  await sandbox?.stop();
  await db?.drop();
});

async function expiringCustomer(email: string): Promise<string> {
  const { id, paymentMethodId } = await sandbox.createCustomer({
    email,
    name: 'Karla',
    country: 'DE',
    card: { brand: 'visa', failure: null, expMonth: 3, expYear: 2026 },
  });
  await db.sql`insert into customers (id, email, preferred_locales, time_zone, default_payment_method, stripe_updated_at)
               values (${id}, ${email}, '{de}', 'Europe/Berlin', ${paymentMethodId}, now())`;
  const config = loadConfig(envFor());
  const hooks = createReminderHooks({ boss, clock, log, config });
  await db.sql.begin((tx) =>
    hooks.cardExpiring(tx, {
      customerId: id,
      paymentMethod: paymentMethodId,
      expMonth: 3,
      expYear: 2026,
      at: clock.now(),
    }),
  );
  return id;
}

const gateway = () => ({
  stripe: createStripeClient(
    { stripeSecretKey: sandbox.apiKey, stripeApiBase: { protocol: 'http', host: sandbox.host, port: sandbox.port } },
    { timeoutMs: 2_000 },
  ),
  throttle,
});

describe('card-expiry email with PUBLIC_URL', () => {
  it('carries a signed 30-day link to /update-card, made without a Stripe call, that leads to the card form', async () => {
    const config = loadConfig(envFor({ PUBLIC_URL: `${base}/` }));
    stop = await startReminderWorkers({ sql: db.sql, boss, clock, log, config, gateway: gateway() });
    expect(lines.some((l) => String(l.msg).startsWith('PUBLIC_URL not set'))).toBe(false);

    const before = stripeCalls;
    const customerId = await expiringCustomer('karla@kunde.de');
    const mail = await waitFor('the card-expiry email', async () =>
      catcher.messages.find((m) => m.to.includes('karla@kunde.de')),
    );
    expect(stripeCalls - before).toBe(0);
    expect(mail.parsed.subject).toBe('Ihre Karte für Acme GmbH läuft bald ab');

    const link = new RegExp(`${base.replace(/[.]/g, '\\.')}/update-card\\?t=([\\w.-]+)`).exec(mail.parsed.text ?? '');
    expect(link).not.toBeNull();
    const [url, token] = link as unknown as [string, string];
    expect(String(mail.parsed.html)).toContain(`href="${url}"`);
    expect(createCardLinkSigner(sandbox.apiKey).verify(token, clock.now())).toEqual({
      ok: true,
      customerId,
      expiresAt: new Date(clock.now().getTime() + 30 * DAY),
    });

    // The customer clicks, days later: a fresh session, on the card form.
    clock.set(new Date(clock.now().getTime() + 9 * DAY));
    const click = await request(base, { method: 'GET', path: url.slice(base.length) });
    expect(click.status).toBe(303);
    expect(stripeCalls - before).toBe(1);
    const portal = await fetch(click.headers.location!);
    expect(await portal.text()).toContain('<p id="flow">payment_method_update</p>');

    // A month and more later the link has done its job.
    clock.set(new Date(clock.now().getTime() + 22 * DAY));
    expect((await request(base, { method: 'GET', path: url.slice(base.length) })).status).toBe(410);
    const [row] = await db.sql`select status from reminder_outbox where customer_id = ${customerId}`;
    expect(row).toEqual({ status: 'sent' });
  });

  it("still gives an invoice's own page first: there the customer can pay as well", async () => {
    const hooks = createReminderHooks({ boss, clock, log, config: loadConfig(envFor()) });
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_hosted',
      invoiceId: 'in_hosted',
      email: 'hosted@kunde.de',
      timeZone: 'Europe/Berlin',
    });
    await db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId, invoiceId: 'in_hosted', opened: true, at: clock.now() }),
    );
    const mail = await waitFor('the first notice', async () =>
      catcher.messages.find((m) => m.to.includes('hosted@kunde.de')),
    );
    expect(mail.parsed.text).toContain('https://invoice.stripe.test/i/in_hosted');
    expect(mail.parsed.text).not.toContain('/update-card');
    await stop?.();
    stop = null;
  });
});

describe('card-expiry email without PUBLIC_URL', () => {
  it('warns once at start that the links expire quickly, and still sends a portal session', async () => {
    await stop?.();
    stop = null;
    clock.set('2026-03-20T12:00:00Z');
    const config = loadConfig(envFor());
    stop = await startReminderWorkers({ sql: db.sql, boss, clock, log, config, gateway: gateway() });
    const warnings = lines.filter((l) => String(l.msg).startsWith('PUBLIC_URL not set'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.level).toBe(40);

    await expiringCustomer('kurt@kunde.de');
    const mail = await waitFor('the card-expiry email', async () =>
      catcher.messages.find((m) => m.to.includes('kurt@kunde.de')),
    );
    expect(mail.parsed.text).toMatch(new RegExp(`${sandbox.url.replace(/[.]/g, '\\.')}/portal/bps_\\w+`));
    expect(mail.parsed.text).not.toContain('/update-card');
  });

  it('warns when links would expire before the card the email is about', async () => {
    await stop?.();
    stop = null;
    const config = loadConfig(envFor({ PUBLIC_URL: base, UPDATE_CARD_LINK_DAYS: '7' }));
    const policy = (await import('../../src/reminders/policy.ts')).defaultReminderPolicy();
    stop = await startReminderWorkers({ sql: db.sql, boss, clock, log, config, gateway: gateway(), policy });
    expect(
      lines.some(
        (l) =>
          String(l.msg).startsWith('UPDATE_CARD_LINK_DAYS is shorter than cardExpiring.daysBefore') &&
          l.daysBefore === 14,
      ),
    ).toBe(true);
  });
});

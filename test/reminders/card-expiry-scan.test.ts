/**
 * Pre-dunning for PaymentMethod cards: card expiries kept from Stripe events (applied by the real
 * processor, hooks wired as `dunning start` wires them), the daily scan, and the reminder sent over
 * real SMTP to a loopback catcher.
 *
 * Stripe, on `customer.source.expiring`: "Occurs whenever a card or source will expire at the end
 * of the month. This event only works with legacy integrations using Card or Source objects. If you
 * use the PaymentMethod API, this event won't occur." Hence the scan.
 */
import { Writable } from 'node:stream';
import type { PgBoss } from 'pg-boss';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { savePolicy } from '../../src/dunning/scheduler.ts';
import type { ProcessorDeps } from '../../src/events/context.ts';
import { upsertCustomer } from '../../src/events/objects.ts';
import { processEvent } from '../../src/events/processor.ts';
import { insertEvent } from '../../src/events/store.ts';
import { createLogger } from '../../src/log.ts';
import { QUEUES, startQueue } from '../../src/queue.ts';
import { backfillRenewalCards } from '../../src/reminders/card-backfill.ts';
import { scanExpiringCards, startCardExpiryScan, type CardScanDeps } from '../../src/reminders/card-expiry-scan.ts';
import { startMailCatcher, type MailCatcher } from '../../src/reminders/mail-catcher.ts';
import { startMailer } from '../../src/reminders/mailer.ts';
import { defaultReminderPolicy } from '../../src/reminders/policy.ts';
import { loadTemplates } from '../../src/reminders/templates.ts';
import { smtpTransport } from '../../src/reminders/transport.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { createThrottle } from '../../src/stripe/throttle.ts';
import { processorDeps, wireHooks } from '../../src/worker.ts';
import { customer, event, paymentMethod, subscription } from '../fixtures/events/stripe-objects.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';

const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString('utf8').split('\n'))
      if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});
const log = createLogger('info', sink);
// Saturday 20 June 2026, noon in Berlin: a card ending in June is inside the 14 days.
const clock = new FixedClock('2026-06-20T10:00:00Z');
const policy = defaultPolicy();
const at = (iso: string) => Math.floor(new Date(iso).getTime() / 1000);

let db: TestDatabase;
let boss: PgBoss;
let catcher: MailCatcher;
let sandbox: Sandbox;
let config: Config;
let deps: ProcessorDeps;
let scan: CardScanDeps;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  catcher = await startMailCatcher();
  sandbox = await startSandbox({ clock });
  config = loadConfig({
    DEFAULT_TIME_ZONE: 'Europe/Berlin',
    DEFAULT_LOCALE: 'en',
    MERCHANT_NAME: 'Acme GmbH',
    MAIL_FROM: 'billing@acme.test',
    SMTP_URL: catcher.url,
  });
  boss = await startQueue(db.url, log);
  await savePolicy(db.sql, policy);
  const wiring = wireHooks({ boss, clock, log, config, policy });
  deps = processorDeps({ clock, log, policy }, wiring.hooks);
  scan = {
    sql: db.sql,
    clock,
    log,
    policy: defaultReminderPolicy(),
    reminders: wiring.reminders,
    gateway: { stripe: sandbox.stripe(), throttle: createThrottle(50) },
  };
  stops.push(
    await startMailer({
      sql: db.sql,
      boss,
      clock,
      log,
      config,
      transport: smtpTransport(catcher.url),
      templates: loadTemplates(null),
      portalLink: (customerId) => Promise.resolve(`https://billing.example.test/portal/${customerId}`),
      pollingIntervalSeconds: 0.5,
    }),
  );
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await boss?.stop({ graceful: false });
  await catcher?.close();
  await sandbox?.stop();
  await db?.drop();
});

let n = 0;
/** A subscriber: the customer (default card `pm`, or none) and a live subscription (its own card `subCard`). */
async function subscriber(o: { pm: string | null; subCard?: string | null }) {
  n += 1;
  const id = { cus: `cus_exp${n}`, sub: `sub_exp${n}`, email: `exp${n}@customer.test` };
  await upsertCustomer(
    db.sql,
    customer({
      id: id.cus,
      email: id.email,
      preferred_locales: ['en'],
      invoice_settings: { custom_fields: null, default_payment_method: o.pm, footer: null, rendering_options: null },
    }),
    new Date(at('2026-06-01T00:00:00Z') * 1000),
  );
  await apply(
    event(
      'customer.subscription.created',
      {
        ...subscription({ id: id.sub, customer: id.cus, status: 'active' }),
        default_payment_method: o.subCard ?? null,
      },
      { created: at('2026-06-01T00:00:00Z') },
    ),
  );
  return id;
}

/** Another live subscription of the customer, on its own card (or the customer's default when null). */
async function secondSubscription(cus: string, sub: string, subCard: string | null, createdIso: string) {
  await apply(
    event(
      'customer.subscription.created',
      { ...subscription({ id: sub, customer: cus, status: 'active' }), default_payment_method: subCard },
      { created: at(createdIso) },
    ),
  );
}

function card(id: string, cus: string, expMonth: number, expYear: number): Stripe.PaymentMethod {
  const pm = paymentMethod({ id, customer: cus });
  return { ...pm, card: { ...pm.card!, exp_month: expMonth, exp_year: expYear } };
}

async function apply(...events: Stripe.Event[]): Promise<void> {
  for (const ev of events) {
    await insertEvent(db.sql, ev);
    await processEvent(db.sql, deps, ev.id);
  }
}

const remindersOf = (cus: string) =>
  db.sql<{ status: string; step: number; data: { paymentMethod: string }; cancel_reason: string | null }[]>`
    select status, step, data, cancel_reason from reminder_outbox where customer_id = ${cus} and kind = 'card_expiring' order by id`;
const mailsTo = (email: string) => catcher.messages.filter((m) => m.to.includes(email));

describe('card-expiry scan for PaymentMethod cards', () => {
  it('emails a subscriber whose default card runs out, once however often the scan runs', async () => {
    const s = await subscriber({ pm: 'pm_a1' });
    await apply(
      event('payment_method.attached', card('pm_a1', s.cus, 6, 2026), { created: at('2026-06-02T00:00:00Z') }),
    );

    await scanExpiringCards(scan);
    await scanExpiringCards(scan);
    const mail = await waitFor('the card-expiry email', () => Promise.resolve(mailsTo(s.email)[0]));
    expect(mail.parsed.subject).toMatch(/card/i);
    expect(mail.parsed.text).toContain('06/2026');
    expect(mail.parsed.text).toContain(`https://billing.example.test/portal/${s.cus}`);
    await waitFor('the reminder marked sent', async () => (await remindersOf(s.cus))[0]?.status === 'sent');
    expect((await remindersOf(s.cus)).map((r) => [r.status, r.step, r.data.paymentMethod])).toEqual([
      ['sent', 202606, 'pm_a1'],
    ]);
    await scanExpiringCards(scan);
    expect(mailsTo(s.email)).toHaveLength(1);
  });

  it("follows Stripe's order: the subscription's own card, not the customer's default", async () => {
    // The customer's default runs out this month; the subscription charges another card that does not.
    const safe = await subscriber({ pm: 'pm_b_default', subCard: 'pm_b_sub' });
    await apply(
      event('payment_method.attached', card('pm_b_default', safe.cus, 6, 2026), {
        created: at('2026-06-02T00:00:00Z'),
      }),
      event('payment_method.attached', card('pm_b_sub', safe.cus, 9, 2030), { created: at('2026-06-02T00:00:00Z') }),
    );
    // ...and the other way round: the subscription's card runs out.
    const due = await subscriber({ pm: 'pm_c_default', subCard: 'pm_c_sub' });
    await apply(
      event('payment_method.attached', card('pm_c_default', due.cus, 9, 2030), { created: at('2026-06-02T00:00:00Z') }),
      event('payment_method.attached', card('pm_c_sub', due.cus, 6, 2026), { created: at('2026-06-02T00:00:00Z') }),
    );
    await scanExpiringCards(scan);
    // Sent, not cancelled at send time as "payment method changed": the mailer's last check uses the same card.
    await waitFor('the email about the subscription card', () => Promise.resolve(mailsTo(due.email)[0]));
    expect((await remindersOf(due.cus)).map((r) => [r.status, r.data.paymentMethod])).toEqual([['sent', 'pm_c_sub']]);
    expect(await remindersOf(safe.cus)).toEqual([]);
  });

  it('watches every card a renewal charges, not one per customer', async () => {
    // Stripe charges "the subscription's default_payment_method, if set, or else the customer's
    // invoice_settings.default_payment_method": a customer with two subscriptions can renew on two cards.
    const two = await subscriber({ pm: 'pm_h_default', subCard: 'pm_h_sub1' });
    await secondSubscription(two.cus, 'sub_h2', 'pm_h_sub2', '2026-06-03T00:00:00Z');
    // The other way: one subscription on its own card, one on the customer's default.
    const mixed = await subscriber({ pm: 'pm_i_default', subCard: null });
    await secondSubscription(mixed.cus, 'sub_i2', 'pm_i_sub2', '2026-06-03T00:00:00Z');
    await apply(
      // The subscription updated first charges the card that runs out; the later one is safe.
      event('payment_method.attached', card('pm_h_sub1', two.cus, 6, 2026), { created: at('2026-06-02T00:00:00Z') }),
      event('payment_method.attached', card('pm_h_sub2', two.cus, 9, 2030), { created: at('2026-06-02T00:00:00Z') }),
      event('payment_method.attached', card('pm_h_default', two.cus, 9, 2030), {
        created: at('2026-06-02T00:00:00Z'),
      }),
      // The customer's default runs out; the subscription with its own card is safe.
      event('payment_method.attached', card('pm_i_default', mixed.cus, 6, 2026), {
        created: at('2026-06-02T00:00:00Z'),
      }),
      event('payment_method.attached', card('pm_i_sub2', mixed.cus, 9, 2030), { created: at('2026-06-02T00:00:00Z') }),
    );
    await scanExpiringCards(scan);
    await waitFor('both emails', () => Promise.resolve(mailsTo(two.email)[0] && mailsTo(mixed.email)[0]));
    expect((await remindersOf(two.cus)).map((r) => [r.status, r.data.paymentMethod])).toEqual([['sent', 'pm_h_sub1']]);
    expect((await remindersOf(mixed.cus)).map((r) => [r.status, r.data.paymentMethod])).toEqual([
      ['sent', 'pm_i_default'],
    ]);
  });

  it('two renewal cards running out in the same month: a warning for each, and one left when the other is replaced', async () => {
    clock.set('2026-07-16T10:00:00Z');
    try {
      const two = await subscriber({ pm: 'pm_r_default', subCard: 'pm_r_sub1' });
      await secondSubscription(two.cus, 'sub_r2', 'pm_r_sub2', '2026-07-03T00:00:00Z');
      await apply(
        event('payment_method.attached', card('pm_r_sub1', two.cus, 7, 2026), { created: at('2026-07-02T00:00:00Z') }),
        event('payment_method.attached', card('pm_r_sub2', two.cus, 7, 2026), { created: at('2026-07-02T00:00:00Z') }),
        event('payment_method.attached', card('pm_r_default', two.cus, 9, 2030), {
          created: at('2026-07-02T00:00:00Z'),
        }),
      );
      await scanExpiringCards(scan);
      const pending = async () =>
        (await remindersOf(two.cus)).filter((r) => r.status === 'pending').map((r) => r.data.paymentMethod);
      expect((await pending()).sort()).toEqual(['pm_r_sub1', 'pm_r_sub2']);
      // The first subscription moves to a new card ("default_payment_method: ID of the default
      // payment method for the subscription"): its warning goes, the other card's stays.
      await apply(
        event(
          'customer.subscription.updated',
          { ...subscription({ id: two.sub, customer: two.cus, status: 'active' }), default_payment_method: 'pm_r_new' },
          { created: at('2026-07-16T09:00:00Z'), previous: { default_payment_method: 'pm_r_sub1' } },
        ),
      );
      await scanExpiringCards(scan);
      expect(await pending()).toContain('pm_r_sub2');
    } finally {
      clock.set('2026-06-20T10:00:00Z');
    }
  });

  it('a new card attached beside the expiring one does not drop its reminder', async () => {
    clock.set('2026-07-16T10:00:00Z');
    try {
      const s = await subscriber({ pm: 'pm_j1' });
      await apply(
        event('payment_method.attached', card('pm_j1', s.cus, 7, 2026), { created: at('2026-07-01T00:00:00Z') }),
      );
      await scanExpiringCards(scan);
      expect((await remindersOf(s.cus)).map((r) => r.status)).toEqual(['pending']);
      // Saved, not made the default: renewals still charge pm_j1, which still runs out.
      await apply(
        event('payment_method.attached', card('pm_j2', s.cus, 3, 2030), { created: at('2026-07-16T09:00:00Z') }),
      );
      expect((await remindersOf(s.cus)).map((r) => r.status)).toEqual(['pending']);
    } finally {
      clock.set('2026-06-20T10:00:00Z');
    }
  });

  it('a card replaced, or renewed by the card updater, before the reminder is due: dropped, nothing new', async () => {
    clock.set('2026-07-16T10:00:00Z'); // a July card is due on the 17th: the scan plans it ahead
    try {
      const replaced = await subscriber({ pm: 'pm_d1' });
      const renewed = await subscriber({ pm: 'pm_e1' });
      await apply(
        event('payment_method.attached', card('pm_d1', replaced.cus, 7, 2026), { created: at('2026-07-01T00:00:00Z') }),
        event('payment_method.attached', card('pm_e1', renewed.cus, 7, 2026), { created: at('2026-07-01T00:00:00Z') }),
      );
      await scanExpiringCards(scan);
      expect((await remindersOf(replaced.cus)).map((r) => r.status)).toEqual(['pending']);
      expect((await remindersOf(renewed.cus)).map((r) => r.status)).toEqual(['pending']);

      // A new card becomes the default...
      const newCard = card('pm_d2', replaced.cus, 3, 2030);
      const before = customer({ id: replaced.cus, email: replaced.email, preferred_locales: ['en'] });
      await apply(
        event('payment_method.attached', newCard, { created: at('2026-07-16T09:00:00Z') }),
        event(
          'customer.updated',
          { ...before, invoice_settings: { ...before.invoice_settings, default_payment_method: 'pm_d2' } },
          {
            created: at('2026-07-16T09:00:01Z'),
            previous: { invoice_settings: { ...before.invoice_settings, default_payment_method: 'pm_d1' } },
          },
        ),
      );
      // ...and Stripe's updater gives the other card a new expiry ("Occurs whenever a payment
      // method's details are automatically updated by the network").
      await apply(
        event('payment_method.automatically_updated', card('pm_e1', renewed.cus, 7, 2029), {
          created: at('2026-07-16T09:00:00Z'),
          previous: { card: { exp_year: 2026 } },
        }),
      );
      expect(await remindersOf(replaced.cus)).toEqual([
        expect.objectContaining({ status: 'cancelled', cancel_reason: 'payment method changed' }),
      ]);
      expect(await remindersOf(renewed.cus)).toEqual([
        expect.objectContaining({ status: 'cancelled', cancel_reason: 'payment method changed' }),
      ]);
      await scanExpiringCards(scan);
      expect(await remindersOf(replaced.cus)).toHaveLength(1);
      expect(await remindersOf(renewed.cus)).toHaveLength(1);
      const [kept] = await db.sql`select exp_month, exp_year from card_expiries where payment_method = 'pm_e1'`;
      expect(kept).toEqual({ exp_month: 7, exp_year: 2029 });
    } finally {
      clock.set('2026-06-20T10:00:00Z');
    }
  });

  it('a card whose expiry is changed through the API (payment_method.updated): the old reminder is dropped', async () => {
    clock.set('2026-07-16T10:00:00Z');
    try {
      const s = await subscriber({ pm: 'pm_g1' });
      await apply(
        event('payment_method.attached', card('pm_g1', s.cus, 7, 2026), { created: at('2026-07-01T00:00:00Z') }),
      );
      await scanExpiringCards(scan);
      expect((await remindersOf(s.cus)).map((r) => r.status)).toEqual(['pending']);
      // "Occurs whenever a payment method is updated via the PaymentMethod update API." Only a
      // change of the card itself is news: new billing details alone leave the reminder alone.
      await apply(
        event('payment_method.updated', card('pm_g1', s.cus, 7, 2026), {
          created: at('2026-07-16T08:00:00Z'),
          previous: { billing_details: { name: null } },
        }),
      );
      expect((await remindersOf(s.cus)).map((r) => r.status)).toEqual(['pending']);
      await apply(
        event('payment_method.updated', card('pm_g1', s.cus, 7, 2028), {
          created: at('2026-07-16T09:00:00Z'),
          previous: { card: { exp_year: 2026 } },
        }),
      );
      expect(await remindersOf(s.cus)).toEqual([
        expect.objectContaining({ status: 'cancelled', cancel_reason: 'payment method changed' }),
      ]);
      await scanExpiringCards(scan);
      expect(await remindersOf(s.cus)).toHaveLength(1);
    } finally {
      clock.set('2026-06-20T10:00:00Z');
    }
  });

  it('an older card event never overwrites a newer expiry', async () => {
    const s = await subscriber({ pm: 'pm_f1' });
    await apply(
      event('payment_method.automatically_updated', card('pm_f1', s.cus, 6, 2029), {
        created: at('2026-06-10T00:00:00Z'),
      }),
      event('payment_method.attached', card('pm_f1', s.cus, 6, 2026), { created: at('2026-06-02T00:00:00Z') }),
    );
    await scanExpiringCards(scan);
    expect(await remindersOf(s.cus)).toEqual([]);
  });

  it('a subscriber without any default card: a clear log line, nothing sent', async () => {
    const s = await subscriber({ pm: null });
    const result = await scanExpiringCards(scan);
    expect(result.withoutCard).toBeGreaterThanOrEqual(1);
    expect(
      lines.some(
        (l) =>
          l.customerId === s.cus && String(l.msg).includes('no default card') && String(l.msg).includes('nothing sent'),
      ),
    ).toBe(true);
    expect(await remindersOf(s.cus)).toEqual([]);
  });

  it('a card no event told us about is read once from Stripe (through the SDK), then reminded', async () => {
    const c = await sandbox.createCustomer({
      email: 'sandbox@customer.test',
      name: 'Sandbox',
      country: 'DE',
      card: { brand: 'visa', failure: null, expMonth: 6, expYear: 2026 },
    });
    await upsertCustomer(
      db.sql,
      customer({
        id: c.id,
        email: 'sandbox@customer.test',
        preferred_locales: ['en'],
        invoice_settings: {
          custom_fields: null,
          default_payment_method: c.paymentMethodId,
          footer: null,
          rendering_options: null,
        },
      }),
      new Date(at('2026-06-01T00:00:00Z') * 1000),
    );
    await apply(
      event(
        'customer.subscription.created',
        { ...subscription({ id: 'sub_sbx1', customer: c.id, status: 'active' }), default_payment_method: null },
        {
          created: at('2026-06-01T00:00:00Z'),
        },
      ),
    );
    const first = await scanExpiringCards(scan);
    expect(first.learned).toBe(1);
    expect((await remindersOf(c.id)).map((r) => r.data.paymentMethod)).toEqual([c.paymentMethodId]);
    const second = await scanExpiringCards(scan);
    expect(second.learned).toBe(0);
  });

  it('backfill copies live subscriptions with their cards, so the scan reminds with no event seen', async () => {
    const c = await sandbox.createCustomer({
      email: 'backfill@customer.test',
      name: 'Backfill',
      country: 'DE',
      preferredLocales: ['en'],
      card: { brand: 'visa', failure: null, expMonth: 6, expYear: 2026 },
    });
    await sandbox.createFailingInvoice(c.id, { amount: 1_000, currency: 'eur', subscription: true });
    const copied = await backfillRenewalCards({ sql: db.sql, gateway: scan.gateway!, clock, pageSize: 1 });
    expect(copied.subscriptions).toBe(1);
    expect(copied.cards).toBe(1);
    const [kept] =
      await db.sql`select exp_month, exp_year from card_expiries where payment_method = ${c.paymentMethodId}`;
    expect(kept).toEqual({ exp_month: 6, exp_year: 2026 });
    const result = await scanExpiringCards(scan);
    expect(result.learned).toBe(0);
    expect((await remindersOf(c.id)).map((r) => r.data.paymentMethod)).toEqual([c.paymentMethodId]);
  });

  it('runs daily as a pg-boss schedule in the merchant time zone', async () => {
    stops.push(await startCardExpiryScan({ ...scan, boss, timeZone: 'Europe/Berlin' }));
    const schedules = await boss.getSchedules(QUEUES.cardExpiryScan);
    expect(schedules).toEqual([
      expect.objectContaining({ name: QUEUES.cardExpiryScan, cron: '0 9 * * *', timezone: 'Europe/Berlin' }),
    ]);
  });
});

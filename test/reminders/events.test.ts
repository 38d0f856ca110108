/**
 * Reminders as Stripe events drive them: signed-event payloads stored and applied by the real
 * processor, with the hooks wired exactly as `dunning start` wires them (src/worker.ts), and the
 * mailer sending over real SMTP to a loopback catcher.
 */
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
import { startQueue } from '../../src/queue.ts';
import { startMailCatcher, type CaughtMail, type MailCatcher } from '../../src/reminders/mail-catcher.ts';
import { sendOne, startMailer, type MailerDeps } from '../../src/reminders/mailer.ts';
import { loadTemplates } from '../../src/reminders/templates.ts';
import { smtpTransport } from '../../src/reminders/transport.ts';
import { processorDeps, wireHooks } from '../../src/worker.ts';
import { charge, customer, event, expiringCard, invoice, T0 } from '../fixtures/events/stripe-objects.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
// 10:26:40 UTC on Thu 28 May 2026: midday in Berlin, the middle of the night in Los Angeles.
const DAY = T0 - 10 * 3_600;
const clock = new FixedClock(new Date((DAY + 200) * 1000));
const policy = defaultPolicy();

let db: TestDatabase;
let boss: PgBoss;
let catcher: MailCatcher;
let config: Config;
let deps: ProcessorDeps;
let mailerDeps: MailerDeps;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  catcher = await startMailCatcher();
  config = loadConfig({
    DEFAULT_TIME_ZONE: 'Europe/Berlin',
    MERCHANT_NAME: 'Acme GmbH',
    MAIL_FROM: 'billing@acme.test',
    SMTP_URL: catcher.url,
  });
  boss = await startQueue(db.url, log);
  await savePolicy(db.sql, policy);
  const wiring = wireHooks({ boss, clock, log, config, policy });
  deps = processorDeps({ clock, log, policy }, wiring.hooks);
  mailerDeps = {
    sql: db.sql,
    boss,
    clock,
    log,
    config,
    transport: smtpTransport(catcher.url),
    templates: loadTemplates(null),
    pollingIntervalSeconds: 0.5,
  };
  stops.push(await startMailer(mailerDeps));
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await boss?.stop({ graceful: false });
  await catcher?.close();
  await db?.drop();
});

let n = 0;
/** A customer we know (as a customer.* event or a read from Stripe leaves it) and ids for one invoice. */
async function someone(
  o: { zone?: string; country?: string; locales?: string[]; customer?: Partial<Stripe.Customer> } = {},
) {
  n += 1;
  const id = { cus: `cus_ev${n}`, inv: `in_ev${n}`, ch: `ch_ev${n}`, pi: `pi_ev${n}`, email: `ev${n}@customer.test` };
  await upsertCustomer(
    db.sql,
    customer({
      id: id.cus,
      email: id.email,
      preferred_locales: o.locales ?? ['en'],
      address: { city: null, country: o.country ?? 'DE', line1: null, line2: null, postal_code: null, state: null },
      metadata: { time_zone: o.zone ?? 'Europe/Berlin' },
      ...o.customer,
    }),
    new Date((DAY - 3_600) * 1000),
  );
  return id;
}

async function apply(...events: Stripe.Event[]): Promise<void> {
  for (const ev of events) {
    await insertEvent(db.sql, ev);
    await processEvent(db.sql, deps, ev.id);
  }
}

const caseIdOf = async (invoiceId: string) =>
  Number((await db.sql`select id from dunning_cases where invoice_id = ${invoiceId}`)[0]!.id);
const outboxOf = async (invoiceId: string) =>
  db.sql<{ id: number; kind: string; status: string; cancel_reason: string | null }[]>`
    select id::float8 as id, kind, status, cancel_reason from reminder_outbox where invoice_id = ${invoiceId} order by id`;
const alertsOf = async (caseId: number) =>
  db.sql<
    { kind: string; payload: { text: string; detail: string | null } }[]
  >`select kind, payload from ops_alerts where case_id = ${caseId} order by id`;
const mailsTo = (address: string): CaughtMail[] => catcher.messages.filter((m) => m.to.includes(address));
const FORBIDDEN = /stolen|lost|fraud|gestohlen|verloren|betrug/i;

describe('authentication requests', () => {
  it('one that opens a large case alerts ops once and asks for 3-D Secure on the hosted page, never "update your card"', async () => {
    const id = await someone();
    const inv = invoice({ id: id.inv, customer: id.cus, amount_due: 250_000, amount_remaining: 250_000 });
    await apply(event('invoice.payment_action_required', inv, { created: DAY }));
    const caseId = await caseIdOf(id.inv);
    expect((await alertsOf(caseId)).map((a) => [a.kind, a.payload.detail])).toEqual([
      ['case_opened_large', 'the bank asks for authentication (3-D Secure)'],
    ]);
    expect((await alertsOf(caseId))[0]!.payload.text).toContain('2500.00 USD');

    // The failure itself follows (Stripe sends both, in any order): neither a second alert nor a first notice.
    await apply(event('invoice.payment_failed', inv, { created: DAY + 1 }));
    expect((await alertsOf(caseId)).map((a) => a.kind)).toEqual(['case_opened_large']);
    const [mail] = await waitFor('the action-required email', async () =>
      mailsTo(id.email).length > 0 ? mailsTo(id.email) : null,
    );
    // The catcher has the email a moment before the mailer records it as sent.
    await waitFor('recorded as sent', async () => (await outboxOf(id.inv))[0]?.status === 'sent');
    expect((await outboxOf(id.inv)).map((r) => [r.kind, r.status])).toEqual([['action_required', 'sent']]);
    expect(mail!.parsed.subject).toBe('Please confirm your payment to Acme GmbH');
    expect(mail!.parsed.text).toContain('This is a security step (3-D Secure) that only you can complete.');
    expect(mail!.parsed.text).toContain('$2,500.00');
    expect(mail!.parsed.text).toContain(`https://invoice.stripe.test/${id.inv}`);
    expect(String(mail!.parsed.html)).toContain(`<a class="button" href="https://invoice.stripe.test/${id.inv}"`);
    expect(String(mail!.parsed.html)).toMatch(/<a class="button"[^>]*>Confirm the payment<\/a>/);
    expect(mail!.parsed.text).not.toMatch(/update your card|another card/i);
    expect(`${mail!.parsed.text} ${String(mail!.parsed.html)}`).not.toMatch(FORBIDDEN);
  });

  it('cancels a first notice still waiting for the morning when the bank then asks for authentication', async () => {
    const id = await someone({ zone: 'America/Los_Angeles', country: 'US' });
    const inv = invoice({ id: id.inv, customer: id.cus });
    await apply(event('invoice.payment_failed', inv, { created: DAY }));
    expect((await outboxOf(id.inv)).map((r) => [r.kind, r.status])).toEqual([['first_notice', 'pending']]);
    await apply(event('invoice.payment_action_required', inv, { created: DAY + 5 }));
    expect((await outboxOf(id.inv)).map((r) => [r.kind, r.status, r.cancel_reason])).toEqual([
      ['first_notice', 'cancelled', 'the bank asks for authentication'],
      ['action_required', 'pending', null],
    ]);
    // A redelivered failure does not bring the update-card notice back.
    await apply(event('invoice.payment_failed', inv, { created: DAY }));
    expect(await outboxOf(id.inv)).toHaveLength(2);
  });
});

describe('duplicate webhooks', () => {
  it('two event ids for the same failure, applied side by side: one reminder, one email', async () => {
    const id = await someone();
    const inv = invoice({ id: id.inv, customer: id.cus });
    const deliveries = [
      event('invoice.payment_failed', inv, { created: DAY }),
      event('invoice.payment_failed', inv, { created: DAY }),
    ];
    expect(deliveries[0]!.id).not.toBe(deliveries[1]!.id);
    for (const ev of deliveries) await insertEvent(db.sql, ev);
    expect(await Promise.all(deliveries.map((ev) => processEvent(db.sql, deps, ev.id)))).toEqual([
      'processed',
      'processed',
    ]);

    await waitFor('the first notice sent', async () => (await outboxOf(id.inv))[0]?.status === 'sent');
    await waitFor('every send job finished', async () => {
      const [open] = await db.sql<
        { n: number }[]
      >`select count(*)::int as n from pgboss.job where name = 'reminders-send' and state not in ('completed', 'failed')
        and (data ->> 'outboxId')::bigint in (select id from reminder_outbox where invoice_id = ${id.inv})`;
      return open?.n === 0;
    });
    expect((await outboxOf(id.inv)).map((r) => [r.kind, r.status])).toEqual([['first_notice', 'sent']]);
    expect(mailsTo(id.email)).toHaveLength(1);
    const [attempts] = await db.sql<
      { n: number }[]
    >`select count(*)::int as n from payment_attempts where invoice_id = ${id.inv} and source = 'stripe'`;
    expect(attempts!.n).toBe(1);
  });
});

describe("the merchant's own error", () => {
  it('alerts ops once per case, with the reason, and tells the customer nothing', async () => {
    const id = await someone();
    const inv = invoice({ id: id.inv, customer: id.cus });
    const failed = charge({
      id: id.ch,
      customer: id.cus,
      paymentIntent: id.pi,
      declineCode: 'invalid_amount',
      failureCode: 'invalid_amount',
      created: DAY - 1,
    });
    await apply(
      event('charge.failed', failed, { created: DAY - 1 }),
      event('invoice.payment_failed', inv, { created: DAY }),
    );
    const caseId = await caseIdOf(id.inv);
    const [c] = await db.sql`select last_decline_category, next_attempt_reason from dunning_cases where id = ${caseId}`;
    expect(c).toMatchObject({
      last_decline_category: 'merchant_error',
      next_attempt_reason: expect.stringMatching(/^needs ops \(merchant error\)/),
    });
    // Redeliveries plan again and reach the same stop: still one alert.
    await apply(
      event('invoice.payment_failed', inv, { created: DAY }),
      event('charge.failed', failed, { created: DAY - 1 }),
    );
    const alerts = await alertsOf(caseId);
    expect(alerts.map((a) => a.kind)).toEqual(['merchant_error']);
    expect(alerts[0]!.payload.text).toContain(`dunning retry-now ${id.inv}`);
    expect(alerts[0]!.payload.detail).toContain('invalid');
    expect(await outboxOf(id.inv)).toEqual([]);
  });
});

describe('card expiring', () => {
  // 28 May: a card expiring at the end of June is reminded on 16 June, so the reminder stays pending.
  const expiring = (cus: string, card: string) =>
    event('customer.source.expiring', expiringCard({ id: card, customer: cus, expMonth: 6, expYear: 2026 }), {
      created: DAY,
    });
  const remindersOf = async (cus: string) =>
    db.sql<{ id: number; status: string; data: { paymentMethod: string }; cancel_reason: string | null }[]>`
      select id::float8 as id, status, data, cancel_reason from reminder_outbox where customer_id = ${cus} and kind = 'card_expiring' order by id`;

  it('reminds only about the card Stripe charges: the default payment method, else the default source', async () => {
    const sourceOnly = await someone({
      customer: {
        default_source: 'card_src1',
        invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
      },
    });
    await apply(expiring(sourceOnly.cus, 'card_src2'));
    expect(await remindersOf(sourceOnly.cus)).toEqual([]);
    await apply(expiring(sourceOnly.cus, 'card_src1'));
    expect((await remindersOf(sourceOnly.cus)).map((r) => [r.status, r.data.paymentMethod])).toEqual([
      ['pending', 'card_src1'],
    ]);

    // A default payment method wins over the default source: its expiring source charges nothing.
    const both = await someone({
      customer: {
        default_source: 'card_both1',
        invoice_settings: {
          custom_fields: null,
          default_payment_method: 'pm_both',
          footer: null,
          rendering_options: null,
        },
      },
    });
    await apply(expiring(both.cus, 'card_both1'));
    expect(await remindersOf(both.cus)).toEqual([]);
  });

  it('drops the reminder at send time when another source became the default', async () => {
    const id = await someone({
      customer: {
        default_source: 'card_old',
        invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
      },
    });
    await apply(expiring(id.cus, 'card_old'));
    const [planned] = await remindersOf(id.cus);
    expect(planned!.status).toBe('pending');
    await apply(
      event(
        'customer.updated',
        customer({
          id: id.cus,
          email: id.email,
          default_source: 'card_new',
          metadata: { time_zone: 'Europe/Berlin' },
          invoice_settings: {
            custom_fields: null,
            default_payment_method: null,
            footer: null,
            rendering_options: null,
          },
        }),
        { created: DAY + 10, previous: { default_source: 'card_old' } },
      ),
    );
    await sendOne(mailerDeps, planned!.id);
    expect((await remindersOf(id.cus)).map((r) => [r.status, r.cancel_reason])).toEqual([
      ['cancelled', 'payment method changed'],
    ]);
    expect(mailsTo(id.email)).toHaveLength(0);
  });
});

/**
 * Where one conversation per customer meets the rest of the worker: Stripe's collection pause, a
 * subscription that ended under a card-expiry warning, and several final attempts in one email.
 * Real Postgres, pg-boss and SMTP on loopback; the mailer's `sendOne` as the queue runs it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { createLogger } from '../../src/log.ts';
import type { ReminderHooks } from '../../src/reminders/hooks.ts';
import { formatDate } from '../../src/reminders/localize.ts';
import type { MailCatcher } from '../../src/reminders/mail-catcher.ts';
import { sendOne, type MailerDeps } from '../../src/reminders/mailer.ts';
import * as outbox from '../../src/reminders/outbox.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { insertCase } from './fixtures.ts';
import { startMailWorld, type MailWorld } from './mail-world.ts';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const H = 3_600_000;
let db: TestDatabase;
let catcher: MailCatcher;
let hooks: ReminderHooks;
let deps: MailerDeps;
const clock = new FixedClock('2026-03-02T15:00:00Z');
const textTo = (email: string) =>
  (catcher.messages.find((m) => m.to.includes(email))?.parsed.text ?? '').replace(/[\u00a0\u202f]/g, ' ');

let world: MailWorld | undefined;
beforeAll(async () => {
  world = await startMailWorld({
    clock,
    log,
    merchantName: 'Acme',
    portalLink: (c) => Promise.resolve(`https://acme.test/portal/${c}`),
  });
  ({ db, catcher, hooks, mailerDeps: deps } = world);
});

afterAll(() => world?.stop());

describe('one conversation per customer, at its edges', () => {
  it("leaves out an invoice whose subscription's collection is paused at Stripe", async () => {
    // Stripe: pause_collection "If specified, payment collection for this subscription will be
    // paused." The worker holds such a case; an email must not ask for, or total, its invoice.
    const a = await insertCase(db.sql, {
      customerId: 'cus_p',
      invoiceId: 'in_pa',
      email: 'p@x.test',
      amount: 1000,
      currency: 'eur',
    });
    await insertCase(db.sql, {
      customerId: 'cus_p',
      invoiceId: 'in_pb',
      email: 'p@x.test',
      amount: 7777,
      currency: 'eur',
    });
    await db.sql`insert into subscriptions (id, customer_id, status, stripe_updated_at, pause_collection_behavior)
                 values ('sub_pb', 'cus_p', 'active', now(), 'void')`;
    await db.sql`update invoices set subscription_id = 'sub_pb' where id = 'in_pb'`;
    await db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId: a, invoiceId: 'in_pa', opened: true, at: clock.now() }),
    );
    const [row] = await db.sql<
      { id: number }[]
    >`select id::float8 as id from reminder_outbox where invoice_id = 'in_pa'`;
    await sendOne(deps, row!.id, null);
    const text = textTo('p@x.test');
    expect(text).toContain('10.00');
    expect(text).not.toContain('77.77');
    expect(text).not.toContain('87.77');
  });

  it('cancels a card-expiry warning once no subscription renews on the card any more', async () => {
    await db.sql`insert into customers (id, email, preferred_locales, default_payment_method, stripe_updated_at)
                 values ('cus_gone', 'gone@x.test', '{en}', 'pm_gone', now())`;
    await db.sql`insert into subscriptions (id, customer_id, status, stripe_updated_at)
                 values ('sub_gone', 'cus_gone', 'active', now())`;
    await db.sql.begin((tx) =>
      hooks.cardExpiring(tx, {
        customerId: 'cus_gone',
        paymentMethod: 'pm_gone',
        expMonth: 3,
        expYear: 2026,
        at: clock.now(),
      }),
    );
    await db.sql`update subscriptions set status = 'canceled' where id = 'sub_gone'`;
    const [row] = await db.sql<{ id: number; sendAt: Date }[]>`
      select id::float8 as id, send_at as "sendAt" from reminder_outbox where customer_id = 'cus_gone'`;
    await sendOne(deps, row!.id, row!.sendAt);
    const [after] = await db.sql`select status, cancel_reason from reminder_outbox where id = ${row!.id}`;
    expect(after).toEqual({ status: 'cancelled', cancel_reason: 'no subscription renews on this card' });
    expect(textTo('gone@x.test')).toBe('');
  });

  it("a last chance that takes another invoice's along names the earliest final attempt", async () => {
    const host = await insertCase(db.sql, {
      customerId: 'cus_lc',
      invoiceId: 'in_la',
      email: 'lc@x.test',
      amount: 1200,
      currency: 'eur',
    });
    const other = await insertCase(db.sql, {
      customerId: 'cus_lc',
      invoiceId: 'in_lb',
      email: 'lc@x.test',
      amount: 3400,
      currency: 'eur',
    });
    const now = clock.now().getTime();
    const lastChance = (caseId: number, invoiceId: string, sendIn: number, attemptIn: number) =>
      db.sql.begin((tx) =>
        outbox.insertReminder(tx, {
          caseId,
          customerId: 'cus_lc',
          invoiceId,
          kind: 'last_chance',
          step: 1,
          dedupeKey: `case:${caseId}:last_chance:1`,
          dueAt: new Date(now + sendIn),
          sendAt: new Date(now + sendIn),
          locale: 'en',
          timeZone: 'Europe/Berlin',
          data: { attemptAt: new Date(now + attemptIn).toISOString() },
        }),
      );
    const hostId = await lastChance(host, 'in_la', 0, 60 * H);
    await lastChance(other, 'in_lb', 2 * H, 24 * H);
    await sendOne(deps, hostId!, null);
    const text = textTo('lc@x.test');
    expect(text).toContain('34.00');
    expect(text).toContain(formatDate(new Date(now + 24 * H), 'Europe/Berlin', 'en'));
    expect(text).not.toContain(formatDate(new Date(now + 60 * H), 'Europe/Berlin', 'en'));
  });
});

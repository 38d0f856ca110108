/**
 * Reminders end to end: hooks inside real transactions, pg-boss on real Postgres, the mailer
 * sending over real SMTP to a loopback catcher, ops alerts POSTed to a loopback HTTP server.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { createReminderHooks, type ReminderHooks } from '../../src/reminders/hooks.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { wireHooks } from '../../src/worker.ts';
import { startMailCatcher, type CaughtMail, type MailCatcher } from '../../src/reminders/mail-catcher.ts';
import { failStuckSends, sendOne, startMailer, type MailerDeps } from '../../src/reminders/mailer.ts';
import * as outbox from '../../src/reminders/outbox.ts';
import { startOpsAlerter } from '../../src/reminders/ops-alerter.ts';
import { SIGNATURE_HEADER } from '../../src/reminders/ops-alerts.ts';
import { loadTemplates } from '../../src/reminders/templates.ts';
import { smtpTransport } from '../../src/reminders/transport.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { insertCase } from './fixtures.ts';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const SECRET = 'ops-secret-for-tests';
const FORBIDDEN = /stolen|lost|fraud|gestohlen|verloren|betrug/i;
const nbsp = (s: string) => s.replace(/[\u00a0\u202f]/g, ' ');
/**
 * What the customer reads: subject, text and HTML as decoded by mailparser. The raw MIME is no
 * good for a word check: quoted-printable soft line breaks can split a word in two.
 */
const wording = (m: CaughtMail) => `${m.parsed.subject ?? ''}\n${m.parsed.text ?? ''}\n${String(m.parsed.html ?? '')}`;

let db: TestDatabase;
let boss: PgBoss;
let catcher: MailCatcher;
let config: Config;
let hooks: ReminderHooks;
let mailerDeps: MailerDeps;
const stops: Array<() => Promise<void>> = [];
// Monday 2 March 2026, 16:00 in Berlin, 10:00 in New York: outside everyone's quiet hours.
const clock = new FixedClock('2026-03-02T15:00:00Z');
const refusals = new Map<string, number[]>();
const alerts: Array<{ body: string; signature: string }> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  catcher = await startMailCatcher({
    reject: (to) => {
      const codes = refusals.get(to);
      const code = codes?.shift();
      return code ? { code, message: code >= 500 ? 'No such mailbox' : 'Try again later' } : null;
    },
  });
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      alerts.push({ body, signature: String(req.headers[SIGNATURE_HEADER] ?? '') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise((r) => hook.close(() => r())));
  config = loadConfig({
    DEFAULT_TIME_ZONE: 'Europe/Berlin',
    DEFAULT_LOCALE: 'en',
    MERCHANT_NAME: 'Acme GmbH',
    SUPPORT_EMAIL: 'help@acme.test',
    MAIL_FROM: 'billing@acme.test',
    SMTP_URL: catcher.url,
    OPS_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`,
    OPS_WEBHOOK_SECRET: SECRET,
    OPS_ALERT_MIN_AMOUNT: '100000',
  });
  boss = await startQueue(db.url, log);
  hooks = createReminderHooks({ boss, clock, log, config });
  mailerDeps = {
    sql: db.sql,
    boss,
    clock,
    log,
    config,
    transport: smtpTransport(catcher.url),
    templates: loadTemplates(null),
    backoff: { baseMs: 20, maxMs: 100, horizonMs: 60_000 },
    pollingIntervalSeconds: 0.5,
  };
  stops.push(await startMailer(mailerDeps));
  stops.push(await startOpsAlerter({ sql: db.sql, boss, clock, log, config, pollingIntervalSeconds: 0.5 }));
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await boss?.stop({ graceful: false });
  await catcher?.close();
  await db?.drop();
});

const mailsTo = (address: string): CaughtMail[] => catcher.messages.filter((m) => m.to.includes(address));
const rowsOf = (caseId: number) =>
  db.sql<
    {
      id: number;
      kind: string;
      status: string;
      tries: number;
      last_error: string | null;
      send_at: Date;
      cancel_reason: string | null;
    }[]
  >`
    select id::float8 as id, kind, status, tries, last_error, send_at, cancel_reason from reminder_outbox where case_id = ${caseId} order by id`;
const failed = (caseId: number, attemptNo = 1) =>
  db.sql.begin((tx) =>
    hooks.paymentFailed(tx, { caseId, invoiceId: '', attemptId: attemptNo, opened: attemptNo === 1, at: clock.now() }),
  );

describe('content over real SMTP', () => {
  it('writes each customer in their language, with their currency, dates in their zone and the invoice link', async () => {
    const de = await insertCase(db.sql, {
      customerId: 'cus_de',
      invoiceId: 'in_de',
      email: 'anna@kunde.de',
      name: 'Anna',
      locales: ['de-DE'],
      timeZone: 'Europe/Berlin',
      currency: 'eur',
      amount: 123_456,
      declineCategory: 'hard',
    });
    const en = await insertCase(db.sql, {
      customerId: 'cus_en',
      invoiceId: 'in_en',
      email: 'bob@customer.com',
      locales: ['en-US'],
      timeZone: 'America/New_York',
      currency: 'usd',
      amount: 4_900,
    });
    const jp = await insertCase(db.sql, {
      customerId: 'cus_jp',
      invoiceId: 'in_jp',
      email: 'kenji@customer.jp',
      locales: ['ja-JP'],
      currency: 'jpy',
      amount: 1_200,
    });
    // 03:30 UTC on the 6th is still the 5th in New York.
    await db.sql`update dunning_cases set next_attempt_at = '2026-03-06T03:30:00Z' where id in (${de}, ${en})`;
    for (const id of [de, en, jp]) await failed(id);
    await waitFor(
      'three first notices',
      async () =>
        mailsTo('anna@kunde.de').length + mailsTo('bob@customer.com').length + mailsTo('kenji@customer.jp').length ===
        3,
    );

    const [anna] = mailsTo('anna@kunde.de');
    expect(anna!.parsed.subject).toBe('Ihre Zahlung an Acme GmbH ist fehlgeschlagen');
    expect(anna!.from).toBe('billing@acme.test');
    const annaText = nbsp(anna!.parsed.text ?? '');
    expect(annaText).toContain('Hallo Anna,');
    expect(annaText).toContain('1.234,56 €');
    expect(annaText).toContain('Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.');
    expect(annaText).toContain('Wir versuchen es am 6. März 2026 erneut.');
    expect(annaText).toContain('https://invoice.stripe.test/i/in_de');
    expect(annaText).toContain('help@acme.test');
    expect(String(anna!.parsed.html)).toContain('href="https://invoice.stripe.test/i/in_de"');
    expect(wording(anna!)).not.toMatch(FORBIDDEN);

    const [bob] = mailsTo('bob@customer.com');
    expect(bob!.parsed.subject).toBe('Your payment to Acme GmbH did not go through');
    expect(bob!.parsed.text).toContain('$49.00');
    expect(bob!.parsed.text).toContain('We will try again on March 5, 2026.');
    expect(bob!.parsed.text).toContain('Hello,');
    expect(bob!.parsed.text).not.toContain('declined the card');
    expect(wording(bob!)).not.toMatch(FORBIDDEN);

    const [kenji] = mailsTo('kenji@customer.jp');
    expect(kenji!.parsed.subject).toBe('Your payment to Acme GmbH did not go through');
    expect(kenji!.parsed.text).toContain('¥1,200');
    expect(kenji!.parsed.text).not.toContain('¥12.00');

    const rows = await rowsOf(de);
    expect(rows).toMatchObject([{ kind: 'first_notice', status: 'sent', tries: 1 }]);
  });
});

describe('exactly once', () => {
  it('sends one email for duplicate webhooks, duplicate jobs and two concurrent mailers', async () => {
    const second = await startQueue(db.url, log);
    const stopSecond = await startMailer({ ...mailerDeps, boss: second });
    try {
      const caseId = await insertCase(db.sql, {
        customerId: 'cus_dup',
        invoiceId: 'in_dup',
        email: 'dup@customer.com',
      });
      // The same failure delivered five times, two of them at the same moment.
      await Promise.all([failed(caseId), failed(caseId)]);
      await failed(caseId);
      await failed(caseId);
      await failed(caseId);
      const [row] = await rowsOf(caseId);
      // Stray extra jobs for the same row, as a retried or duplicated job would produce.
      for (const b of [boss, second, boss, second]) await b.send('reminders-send', { outboxId: row!.id });
      await waitFor('the row sent', async () => (await rowsOf(caseId))[0]?.status === 'sent');
      await waitFor('every job for the row finished', async () => {
        const [open] = await db.sql<{ n: number }[]>`
          select count(*)::int as n from pgboss.job
          where name = 'reminders-send' and (data ->> 'outboxId')::bigint = ${row!.id} and state not in ('completed', 'failed')`;
        return open?.n === 0;
      });
      expect(await rowsOf(caseId)).toHaveLength(1);
      expect(mailsTo('dup@customer.com')).toHaveLength(1);
    } finally {
      await stopSecond();
      await second.stop({ graceful: false });
    }
  });
});

describe('two mailers racing for one row', () => {
  it('six sends of the same row at the same moment: one email, one try', async () => {
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_race',
      invoiceId: 'in_race',
      email: 'race@customer.com',
    });
    // No job: only the racers below know about this row.
    const id = (await outbox.insertReminder(db.sql, {
      caseId,
      customerId: 'cus_race',
      invoiceId: 'in_race',
      kind: 'first_notice',
      step: 1,
      dedupeKey: 'race-first',
      dueAt: clock.now(),
      sendAt: clock.now(),
      locale: 'en',
      timeZone: 'Europe/Berlin',
      data: {},
    }))!;
    await Promise.all(Array.from({ length: 6 }, (_, i) => sendOne(mailerDeps, id, i % 2 === 0 ? clock.now() : null)));
    expect((await rowsOf(caseId)).map((r) => [r.status, r.tries])).toEqual([['sent', 1]]);
    expect(mailsTo('race@customer.com')).toHaveLength(1);
  });
});

describe('quiet hours', () => {
  it('holds a reminder due at night until 08:00 local, across the spring DST change', async () => {
    const night = new FixedClock('2026-03-28T21:30:00Z'); // Sat 22:30 CET; clocks go forward at 02:00
    const nightHooks = createReminderHooks({ boss, clock: night, log, config });
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_night',
      invoiceId: 'in_night',
      email: 'owl@kunde.de',
      timeZone: 'Europe/Berlin',
      locales: ['de'],
    });
    await db.sql.begin((tx) =>
      nightHooks.paymentFailed(tx, { caseId, invoiceId: 'in_night', opened: true, at: night.now() }),
    );
    const [row] = await rowsOf(caseId);
    expect(row!.send_at.toISOString()).toBe('2026-03-29T06:00:00.000Z'); // 08:00 CEST

    // Run early, the mailer sends nothing and keeps the row for later.
    await sendOne({ ...mailerDeps, clock: night }, row!.id);
    expect((await rowsOf(caseId))[0]!.status).toBe('pending');
    night.set('2026-03-29T06:00:00Z');
    await sendOne({ ...mailerDeps, clock: night }, row!.id);
    expect((await rowsOf(caseId))[0]!.status).toBe('sent');
    expect(mailsTo('owl@kunde.de')).toHaveLength(1);
  });
});

describe('stop rules', () => {
  it('cancels a pending reminder once the invoice is paid, even before the case is closed', async () => {
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_paid',
      invoiceId: 'in_paid',
      email: 'paid@customer.com',
    });
    await db.sql.begin(async (tx) => {
      await hooks.paymentFailed(tx, { caseId, invoiceId: 'in_paid', opened: true, at: clock.now() });
      await tx`update invoices set status = 'paid', amount_remaining = 0 where id = 'in_paid'`;
    });
    await waitFor('the reminder cancelled', async () => (await rowsOf(caseId))[0]?.status === 'cancelled');
    expect((await rowsOf(caseId))[0]!.cancel_reason).toBe('invoice paid');
    expect(mailsTo('paid@customer.com')).toHaveLength(0);
  });

  it('after a recovery, drops the planned last chance and sends only the thank-you', async () => {
    const caseId = await insertCase(db.sql, { customerId: 'cus_rec', invoiceId: 'in_rec', email: 'rec@customer.com' });
    await failed(caseId);
    await waitFor('first notice', async () => mailsTo('rec@customer.com').length === 1);
    const finalAttempt = new Date(clock.now().getTime() + 10 * 86_400_000);
    await db.sql.begin((tx) =>
      hooks.attemptPlanned(tx, { caseId, invoiceId: 'in_rec', at: finalAttempt, isLast: true }),
    );
    expect((await rowsOf(caseId)).map((r) => [r.kind, r.status])).toEqual([
      ['first_notice', 'sent'],
      ['last_chance', 'pending'],
    ]);

    await db.sql.begin(async (tx) => {
      await tx`update invoices set status = 'paid', amount_remaining = 0 where id = 'in_rec'`;
      await tx`update dunning_cases set status = 'recovered', closed_at = ${clock.now()} where id = ${caseId}`;
      await hooks.caseClosed(tx, { caseId, invoiceId: 'in_rec', status: 'recovered', reason: 'paid', at: clock.now() });
    });
    await waitFor('thank-you', async () => mailsTo('rec@customer.com').length === 2);
    // The catcher has the email a moment before the mailer records it as sent.
    await waitFor('thank-you recorded', async () => (await rowsOf(caseId)).at(-1)?.status === 'sent');
    const rows = await rowsOf(caseId);
    expect(rows.map((r) => [r.kind, r.status])).toEqual([
      ['first_notice', 'sent'],
      ['last_chance', 'cancelled'],
      ['recovered', 'sent'],
    ]);
    expect(mailsTo('rec@customer.com')[1]!.parsed.subject).toBe('Thank you: your payment to Acme GmbH went through');
    expect(mailsTo('rec@customer.com')[1]!.parsed.text).toContain('$49.00');
  });
});

describe('collection paused at Stripe', () => {
  const pauseSub = (id: string, paused: boolean) => db.sql`
    update subscriptions set pause_collection_behavior = ${paused ? 'void' : null}, pause_collection_resumes_at = null where id = ${id}`;

  it('holds the reminders of its cases like dunning pause; lifting it frees them to be planned again', async () => {
    // The worker's own wiring: the retry engine follows the pause and tells the reminders.
    const wiring = wireHooks({ boss, clock, log, config, policy: defaultPolicy() });
    const caseId = await insertCase(db.sql, { customerId: 'cus_sp', invoiceId: 'in_sp', email: 'sp@customer.com' });
    await db.sql`insert into subscriptions (id, customer_id, status, stripe_updated_at) values ('sub_sp', 'cus_sp', 'past_due', ${clock.now()})`;
    await db.sql`update invoices set subscription_id = 'sub_sp' where id = 'in_sp'`;
    const lastChance = () =>
      db.sql.begin((tx) =>
        hooks.attemptPlanned(tx, {
          caseId,
          invoiceId: 'in_sp',
          at: new Date(clock.now().getTime() + 10 * 86_400_000),
          isLast: true,
        }),
      );
    const pauseChanged = () =>
      db.sql.begin((tx) => wiring.hooks.collectionPauseChanged!(tx, { subscriptionId: 'sub_sp', at: clock.now() }));
    await lastChance();
    expect((await rowsOf(caseId)).map((r) => [r.kind, r.status])).toEqual([['last_chance', 'pending']]);

    await pauseSub('sub_sp', true);
    await pauseChanged();
    expect((await rowsOf(caseId)).map((r) => [r.kind, r.status, r.cancel_reason])).toEqual([
      ['last_chance', 'cancelled', 'case paused'],
    ]);

    await pauseSub('sub_sp', false);
    await pauseChanged();
    // The retry engine planned the case again; the held last chance is free to come back with
    // the last attempt, as after `dunning resume`.
    expect(await db.sql`select 1 from payment_attempts where invoice_id = 'in_sp' and status = 'planned'`).toHaveLength(
      1,
    );
    await lastChance();
    const held = (await rowsOf(caseId)).filter((r) => r.kind === 'last_chance');
    expect(held.map((r) => r.status)).toEqual(['cancelled', 'pending']);
  });

  it('a reminder already queued when the pause reached us is not sent while collection is paused', async () => {
    const caseId = await insertCase(db.sql, { customerId: 'cus_sp2', invoiceId: 'in_sp2', email: 'sp2@customer.com' });
    await db.sql`insert into subscriptions (id, customer_id, status, pause_collection_behavior, stripe_updated_at)
                 values ('sub_sp2', 'cus_sp2', 'past_due', 'keep_as_draft', ${clock.now()})`;
    await db.sql`update invoices set subscription_id = 'sub_sp2' where id = 'in_sp2'`;
    await failed(caseId);
    await waitFor('the first notice decided', async () => (await rowsOf(caseId))[0]?.status === 'cancelled');
    expect((await rowsOf(caseId))[0]!.cancel_reason).toBe('case paused');
    expect(mailsTo('sp2@customer.com')).toHaveLength(0);
  });
});

describe('a case waiting for a new card', () => {
  it('gets its last chance before the deadline, worded as a deadline rather than a final charge', async () => {
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_wait',
      invoiceId: 'in_wait',
      email: 'warten@kunde.de',
      locales: ['de-DE'],
      timeZone: 'Europe/Berlin',
      currency: 'eur',
      declineCategory: 'hard',
    });
    const deadline = new Date(clock.now().getTime() + 3_600_000);
    await db.sql.begin((tx) =>
      hooks.attemptPlanned(tx, { caseId, invoiceId: 'in_wait', at: deadline, isLast: true, deadline: true }),
    );
    await waitFor('last chance', async () => mailsTo('warten@kunde.de').length === 1);
    const text = nbsp(mailsTo('warten@kunde.de')[0]!.parsed.text ?? '');
    expect(text).toContain(
      'Bitte aktualisieren Sie Ihre Zahlungsdaten bis zum 2. März 2026, damit Ihr Abonnement bestehen bleibt.',
    );
    expect(text).not.toContain('letzten Versuch');
    expect(text).toContain('Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.');
    expect(wording(mailsTo('warten@kunde.de')[0]!)).not.toMatch(FORBIDDEN);
  });
});

describe('decline details that arrive late', () => {
  // 00:00 in Tokyo: quiet hours, so the reminders are still pending when the details arrive.
  const pendingCase = (id: string) =>
    insertCase(db.sql, {
      customerId: `cus_${id}`,
      invoiceId: `in_${id}`,
      email: `${id}@customer.jp`,
      timeZone: 'Asia/Tokyo',
    });
  const learn = async (caseId: number, category: string) => {
    await db.sql`update dunning_cases set last_decline_category = ${category} where id = ${caseId}`;
    await db.sql.begin((tx) => hooks.declineLearned(tx, { caseId, invoiceId: '', at: clock.now() }));
  };

  it('a merchant error learned after the first notice was planned: the customer hears nothing', async () => {
    const caseId = await pendingCase('late_merchant');
    await failed(caseId);
    expect((await rowsOf(caseId)).map((r) => [r.kind, r.status])).toEqual([['first_notice', 'pending']]);
    await learn(caseId, 'merchant_error');
    expect((await rowsOf(caseId)).map((r) => [r.kind, r.status, r.cancel_reason])).toEqual([
      ['first_notice', 'cancelled', 'decline is merchant_error'],
    ]);
  });

  it('authentication learned late: the update-card notice gives way to the action-required email', async () => {
    const caseId = await pendingCase('late_auth');
    await failed(caseId);
    await learn(caseId, 'authentication');
    expect((await rowsOf(caseId)).map((r) => [r.kind, r.status])).toEqual([
      ['first_notice', 'cancelled'],
      ['action_required', 'pending'],
    ]);
  });
});

describe('SMTP failures', () => {
  it('retries a temporary failure with backoff until it goes through', async () => {
    refusals.set('flaky@customer.com', [451, 421]);
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_flaky',
      invoiceId: 'in_flaky',
      email: 'flaky@customer.com',
    });
    await failed(caseId);
    await waitFor('sent after retries', async () => (await rowsOf(caseId))[0]?.status === 'sent');
    expect((await rowsOf(caseId))[0]!.tries).toBe(3);
    expect(mailsTo('flaky@customer.com')).toHaveLength(1);
  });

  it('records a permanent failure on the row and the case, and tells ops', async () => {
    refusals.set('gone@customer.com', [550]);
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_gone',
      invoiceId: 'in_gone',
      email: 'gone@customer.com',
    });
    await failed(caseId);
    await waitFor('failed', async () => (await rowsOf(caseId))[0]?.status === 'failed');
    const [row] = await rowsOf(caseId);
    expect(row!.tries).toBe(1);
    expect(row!.last_error).toContain('SMTP 550');
    expect(row!.last_error).not.toContain('gone@customer.com');
    const [c] = await db.sql<
      { reminder_problem: string | null }[]
    >`select reminder_problem from dunning_cases where id = ${caseId}`;
    expect(c!.reminder_problem).toContain('first_notice email failed: SMTP 550');
    await waitFor('ops told', async () =>
      alerts.some((a) => JSON.parse(a.body).caseId === caseId && JSON.parse(a.body).kind === 'email_failed'),
    );
  });
});

describe('a worker that dies mid-send', () => {
  it('fails the send once its lease has run out, tells ops, and never sends it again', async () => {
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_crash',
      invoiceId: 'in_crash',
      email: 'crash@customer.com',
    });
    const reminder = (kind: 'first_notice' | 'last_chance') =>
      outbox.insertReminder(db.sql, {
        caseId,
        customerId: 'cus_crash',
        invoiceId: 'in_crash',
        kind,
        step: 1,
        dedupeKey: `crash-${kind}`,
        dueAt: clock.now(),
        sendAt: clock.now(),
        locale: 'en',
        timeZone: 'Europe/Berlin',
        data: {},
      });
    const dead = (await reminder('first_notice'))!;
    const busy = (await reminder('last_chance'))!;
    // Claimed like the mailer does, then the process is gone: nothing ever finishes these sends.
    expect(await outbox.markSending(db.sql, dead, clock.now(), 0)).toBe(true);
    expect(await outbox.markSending(db.sql, busy, clock.now(), 900)).toBe(true);

    await failStuckSends(mailerDeps);
    const rows = await rowsOf(caseId);
    expect(rows.find((r) => r.id === dead)).toMatchObject({
      status: 'failed',
      last_error: expect.stringContaining('delivery unknown'),
    });
    // Still inside its lease: a live worker may be talking to the SMTP server right now.
    expect(rows.find((r) => r.id === busy)!.status).toBe('sending');
    const [c] = await db.sql<
      { reminder_problem: string | null }[]
    >`select reminder_problem from dunning_cases where id = ${caseId}`;
    expect(c!.reminder_problem).toContain('first_notice email failed: delivery unknown');
    await waitFor('ops told', async () =>
      alerts.some((a) => JSON.parse(a.body).caseId === caseId && JSON.parse(a.body).kind === 'email_failed'),
    );

    // A duplicate job for the failed row sends nothing.
    await sendOne(mailerDeps, dead);
    expect(mailsTo('crash@customer.com')).toHaveLength(0);
  });
});

describe('the final notice', () => {
  it('in German, for a hard decline: the amount in euros, the link, and no word of why the card failed', async () => {
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_final_de',
      invoiceId: 'in_final_de',
      email: 'ende@kunde.de',
      name: 'Jonas',
      locales: ['de-AT'],
      timeZone: 'Europe/Vienna',
      currency: 'eur',
      amount: 123_456,
      declineCategory: 'hard',
    });
    await db.sql.begin(async (tx) => {
      await tx`update dunning_cases set status = 'lost', closed_at = ${clock.now()} where id = ${caseId}`;
      await hooks.caseClosed(tx, {
        caseId,
        invoiceId: 'in_final_de',
        status: 'lost',
        reason: 'stolen_card: policy exhausted',
        at: clock.now(),
      });
    });
    const [mail] = await waitFor('the final notice', async () =>
      mailsTo('ende@kunde.de').length > 0 ? mailsTo('ende@kunde.de') : null,
    );
    expect(mail!.parsed.subject).toBe('Ihr Abonnement bei Acme GmbH ist gefährdet');
    const text = nbsp(mail!.parsed.text ?? '');
    expect(text).toContain('Hallo Jonas,');
    expect(text).toContain(
      'wir konnten Ihre Zahlung über 1.234,56 € an Acme GmbH nicht einziehen und haben die Versuche eingestellt.',
    );
    expect(text).toContain('https://invoice.stripe.test/i/in_final_de');
    // One button, for the one thing left to do: pay the open amount.
    expect(String(mail!.parsed.html)).toMatch(
      /<a class="button" href="https:\/\/invoice\.stripe\.test\/i\/in_final_de"[^>]*>Offenen Betrag bezahlen<\/a>/,
    );
    expect(text).toContain('Wenn Sie Hilfe brauchen, schreiben Sie an help@acme.test.');
    expect(wording(mail!)).not.toMatch(FORBIDDEN);
    await waitFor('recorded as sent', async () => (await rowsOf(caseId))[0]?.status === 'sent');
    expect((await rowsOf(caseId)).map((r) => [r.kind, r.status])).toEqual([['final_notice', 'sent']]);
  });
});

describe('ops alerts', () => {
  it('fires once per event with a valid signature when a large case opens and when it is lost', async () => {
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_big',
      invoiceId: 'in_big',
      email: 'big@customer.com',
      amount: 250_000,
    });
    const small = await insertCase(db.sql, {
      customerId: 'cus_small',
      invoiceId: 'in_small',
      email: 'small@customer.com',
      amount: 5_000,
    });
    await Promise.all([failed(caseId), failed(caseId), failed(small)]);
    const lost = () =>
      db.sql.begin(async (tx) => {
        await tx`update dunning_cases set status = 'lost', closed_at = ${clock.now()} where id = ${caseId}`;
        await hooks.caseClosed(tx, {
          caseId,
          invoiceId: 'in_big',
          status: 'lost',
          reason: 'policy exhausted',
          at: clock.now(),
        });
      });
    await lost();
    await lost();
    await waitFor('both alerts delivered', async () => {
      const rows = await db.sql`select 1 from ops_alerts where case_id = ${caseId} and status = 'sent'`;
      return rows.length === 2;
    });
    const mine = alerts.filter((a) => [caseId, small].includes(JSON.parse(a.body).caseId));
    expect(mine.map((a) => JSON.parse(a.body).kind).sort()).toEqual(['case_lost', 'case_opened_large']);
    for (const a of mine) {
      // As a receiver following docs/reminders.md would check it: t=<unix seconds>,v1=<hex HMAC-SHA256
      // of "<t>.<body>">, t within a few minutes of its own (real) clock, whatever the worker's clock says.
      const { t, v1 } = Object.fromEntries(a.signature.split(',').map((kv) => kv.split('='))) as {
        t: string;
        v1: string;
      };
      expect(v1).toBe(createHmac('sha256', SECRET).update(`${t}.${a.body}`).digest('hex'));
      expect(Math.abs(Date.now() / 1000 - Number(t))).toBeLessThan(60);
      expect(Math.abs(clock.now().getTime() / 1000 - Number(t))).toBeGreaterThan(3_600);
      const body = JSON.parse(a.body);
      expect(body.text).toContain(`case ${caseId}`);
      expect(body.text).toContain('2500.00 USD');
      expect(a.body).not.toContain('big@customer.com');
    }
    // The lost case still gets its final notice, once.
    await waitFor('final notice', async () =>
      mailsTo('big@customer.com').some((m) => m.parsed.subject?.includes('at risk')),
    );
    expect(mailsTo('big@customer.com').filter((m) => m.parsed.subject?.includes('at risk'))).toHaveLength(1);
  });
});

/**
 * What the mailer decides at the moment it sends, through the queue: a job that runs late into the
 * night is moved to the morning, a mail server that refuses connections holds reminders back
 * without failing them, and Billing Portal links come from the Stripe sandbox through the shared
 * gateway, with Stripe's own hiccups retried.
 */
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock, ScaledClock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { QUEUES, startQueue } from '../../src/queue.ts';
import { createReminderHooks, type ReminderHooks } from '../../src/reminders/hooks.ts';
import { billingPortalLinks } from '../../src/reminders/links.ts';
import { startMailCatcher, type MailCatcher } from '../../src/reminders/mail-catcher.ts';
import { lateSendMovedTo, startMailer, type MailerDeps } from '../../src/reminders/mailer.ts';
import { loadTemplates } from '../../src/reminders/templates.ts';
import { smtpTransport, type MailTransport } from '../../src/reminders/transport.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { createStripeClient } from '../../src/stripe/client.ts';
import { createThrottle, type Throttle } from '../../src/stripe/throttle.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { insertCase } from './fixtures.ts';
import { freePort } from '../helpers/net.ts';

const lines: Array<Record<string, unknown>> = [];
const log = createLogger('info', {
  write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
});
// Mon 2 March 2026, 19:30 in Berlin (CET): still allowed, 90 minutes before the quiet hours.
const clock = new FixedClock('2026-03-02T18:30:00Z');

let db: TestDatabase;
let boss: PgBoss;
let catcher: MailCatcher;
let sandbox: Sandbox;
let config: Config;
let hooks: ReminderHooks;
let mailerDeps: MailerDeps;
let portalCalls = 0;
let stopMailer: (() => Promise<void>) | null = null;
/** The mail server the mailer talks to; a test swaps it for one that refuses connections. */
let transport: MailTransport;

beforeAll(async () => {
  db = await createTestDatabase();
  catcher = await startMailCatcher();
  sandbox = await startSandbox({ clock: new FixedClock('2026-03-02T18:30:00Z'), seed: 3 });
  config = loadConfig({
    DEFAULT_TIME_ZONE: 'Europe/Berlin',
    MERCHANT_NAME: 'Acme GmbH',
    MAIL_FROM: 'billing@acme.test',
    SMTP_URL: catcher.url,
  });
  boss = await startQueue(db.url, log);
  hooks = createReminderHooks({ boss, clock, log, config });
  transport = smtpTransport(catcher.url);
  const inner = createThrottle(100);
  // Counts what passes the shared throttle: a portal session must be one of those calls.
  const throttle: Throttle = { take: () => ((portalCalls += 1), inner.take()), waiting: () => inner.waiting() };
  const stripe = createStripeClient(
    { stripeSecretKey: sandbox.apiKey, stripeApiBase: { protocol: 'http', host: sandbox.host, port: sandbox.port } },
    { timeoutMs: 2_000 },
  );
  mailerDeps = {
    sql: db.sql,
    boss,
    clock,
    log,
    config,
    transport: { send: (email) => transport.send(email), close: () => transport.close() },
    templates: loadTemplates(null),
    portalLink: billingPortalLinks({ stripe, throttle }, log, 'https://acme.test/account'),
    backoff: { baseMs: 20, maxMs: 200, horizonMs: 60_000 },
    pollingIntervalSeconds: 0.5,
  };
  stopMailer = await startMailer(mailerDeps);
});

afterAll(async () => {
  await stopMailer?.();
  await boss?.stop({ graceful: false });
  await catcher?.close();
  await sandbox?.stop();
  await db?.drop();
});

const rowOf = async (caseId: number) => {
  const [row] = await db.sql<
    {
      id: number;
      status: string;
      tries: number;
      send_at: Date;
      sent_at: Date | null;
      last_error: string | null;
      first_failed_at: Date | null;
    }[]
  >`
    select id::float8 as id, status, tries, send_at, sent_at, last_error, first_failed_at from reminder_outbox where case_id = ${caseId}`;
  return row!;
};
const jobsOf = (outboxId: number) =>
  db.sql<{ id: string; state: string; start_after: Date; data: { sendAt: string } }[]>`
    select id, state, start_after, data from pgboss.job where name = ${QUEUES.reminders} and (data ->> 'outboxId')::bigint = ${outboxId} order by created_on`;
/** The queue reaching a job's start time: what hours of real time would do. */
const runNow = (jobId: string) => db.sql`update pgboss.job set start_after = now() where id = ${jobId}`;
const failed = (caseId: number, invoiceId: string) =>
  db.sql.begin((tx) => hooks.paymentFailed(tx, { caseId, invoiceId, opened: true, at: clock.now() }));

describe('quiet hours at send time', () => {
  it('a job that runs late into the night moves the reminder to 08:00 and enqueues it for then, instead of sending', async () => {
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_late',
      invoiceId: 'in_late',
      email: 'late@kunde.de',
      timeZone: 'Europe/Berlin',
      locales: ['de'],
    });
    // The worker is down when the reminder falls due.
    await stopMailer!();
    await failed(caseId, 'in_late');
    const planned = await rowOf(caseId);
    expect(planned).toMatchObject({ status: 'pending', send_at: new Date('2026-03-02T18:30:00Z') });

    // It comes back at 22:15 Berlin time and finds the job waiting.
    clock.set('2026-03-02T21:15:00Z');
    stopMailer = await startMailer(mailerDeps);
    const [, next] = await waitFor('a job for the morning', async () => {
      const jobs = await jobsOf(planned.id);
      return jobs.length === 2 && jobs[0]!.state === 'completed' ? jobs : null;
    });
    const morning = new Date('2026-03-03T07:00:00Z'); // 08:00 CET
    expect(await rowOf(caseId)).toMatchObject({ status: 'pending', send_at: morning, tries: 0 });
    expect(next!.data.sendAt).toBe(morning.toISOString());
    // The queue starts it when the clock reads 08:00: 9 h 45 min of wall time from now.
    const expectedStart = clock.wallTimeOf(morning).getTime();
    expect(Math.abs(next!.start_after.getTime() - expectedStart)).toBeLessThan(60_000);
    expect(next!.start_after.getTime() - Date.now()).toBeGreaterThan(9.7 * 3_600_000);
    expect(catcher.messages.filter((m) => m.to.includes('late@kunde.de'))).toHaveLength(0);

    // Morning comes.
    clock.set(morning);
    await runNow(next!.id);
    await waitFor('sent in the morning', async () => (await rowOf(caseId)).status === 'sent');
    expect((await rowOf(caseId)).sent_at).toEqual(morning);
    expect(catcher.messages.filter((m) => m.to.includes('late@kunde.de'))).toHaveLength(1);
  });

  it('a clock that stands still defers a reminder once, not for ever: the queue ran the job at its time', async () => {
    clock.set('2026-03-03T20:30:00Z'); // 21:30 CET
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_still',
      invoiceId: 'in_still',
      email: 'still@kunde.de',
      timeZone: 'Europe/Berlin',
    });
    await db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId, invoiceId: 'in_still', opened: true, at: new Date('2026-03-03T19:00:00Z') }),
    );
    // Planned for 20:00, before the quiet hours: the first job runs now, at 21:30, and defers it.
    const row = await rowOf(caseId);
    const [, next] = await waitFor('deferred', async () => {
      const jobs = await jobsOf(row.id);
      return jobs.length === 2 ? jobs : null;
    });
    expect((await rowOf(caseId)).send_at).toEqual(new Date('2026-03-04T07:00:00Z'));
    await runNow(next!.id);
    await waitFor('sent', async () => (await rowOf(caseId)).status === 'sent');
    expect(await jobsOf(row.id)).toHaveLength(2);
  });
});

describe('a mail server that refuses connections', () => {
  it("is our problem, not the customer's: the reminder is retried, nothing is failed, and ops see an error in the log", async () => {
    clock.set('2026-03-04T10:00:00Z');
    const closed = await freePort();
    transport = smtpTransport(`smtp://127.0.0.1:${closed}`);
    const caseId = await insertCase(db.sql, {
      customerId: 'cus_refused',
      invoiceId: 'in_refused',
      email: 'refused@customer.com',
    });
    await failed(caseId, 'in_refused');
    const transportErrors = () =>
      lines.filter((l) => l.level === 50 && String(l.msg).includes('mail transport fails') && l.caseId === caseId);
    await waitFor('three refused tries', async () => transportErrors().length >= 3);

    const row = await rowOf(caseId);
    expect(row.status).not.toBe('failed');
    expect(row.last_error).toMatch(/^mail server unreachable or unusable \(check SMTP_URL\): ESOCKET/);
    // Our outage does not start the customer's retry horizon.
    expect(row.first_failed_at).toBeNull();
    const [c] = await db.sql`select reminder_problem from dunning_cases where id = ${caseId}`;
    expect(c!.reminder_problem).toBeNull();
    expect(await db.sql`select 1 from ops_alerts where case_id = ${caseId}`).toHaveLength(0);
    expect(JSON.stringify(transportErrors())).not.toContain('refused@customer.com');

    // The server is back: the next try delivers it, once.
    transport = smtpTransport(catcher.url);
    await waitFor('sent', async () => (await rowOf(caseId)).status === 'sent');
    expect(catcher.messages.filter((m) => m.to.includes('refused@customer.com'))).toHaveLength(1);
  });
});

describe('Billing Portal links', () => {
  const portalCase = async (name: string, customerId: string) =>
    insertCase(db.sql, { customerId, invoiceId: `in_${name}`, email: `${name}@customer.com`, hostedUrl: null });

  it('come from the sandbox through the shared throttle; a 500 and a 429 from Stripe are retried, not failed', async () => {
    clock.set('2026-03-04T11:00:00Z');
    const customer = await sandbox.createCustomer({
      email: 'portal@customer.com',
      name: 'P',
      country: 'DE',
      card: { brand: 'visa', failure: null, expMonth: 1, expYear: 2030 },
    });
    sandbox.inject({ kind: 'http_500', route: 'POST /v1/billing_portal/sessions' });
    sandbox.inject({ kind: 'http_429', route: 'POST /v1/billing_portal/sessions' });
    const before = portalCalls;
    const caseId = await portalCase('portal', customer.id);
    await failed(caseId, 'in_portal');
    await waitFor('sent after two refusals', async () => (await rowOf(caseId)).status === 'sent');

    const row = await rowOf(caseId);
    expect(row.tries).toBe(3);
    expect(row.first_failed_at).not.toBeNull();
    expect(portalCalls - before).toBe(3);
    const [mail] = catcher.messages.filter((m) => m.to.includes('portal@customer.com'));
    expect(mail!.parsed.text).toMatch(new RegExp(`${sandbox.url.replace(/[.]/g, '\\.')}/portal/bps_\\w+`));
    const warnings = lines
      .filter((l) => l.msg === 'reminder send failed; will retry' && l.caseId === caseId)
      .map((l) => String(l.err));
    expect(warnings).toEqual([
      expect.stringMatching(/^billing portal: 500/),
      expect.stringMatching(/^billing portal: 429/),
    ]);
  });

  it('a customer Stripe does not know fails the reminder for good, on the case and to ops', async () => {
    const caseId = await portalCase('ghost', 'cus_not_at_stripe');
    await failed(caseId, 'in_ghost');
    await waitFor('failed', async () => (await rowOf(caseId)).status === 'failed');
    expect((await rowOf(caseId)).last_error).toMatch(/^billing portal: 404/);
    const [c] = await db.sql`select reminder_problem from dunning_cases where id = ${caseId}`;
    expect(c!.reminder_problem).toMatch(/^first_notice email failed: billing portal: 404/);
  });
});

describe('how late a send job may run into quiet hours', () => {
  const quiet = { start: 21, end: 8 };
  // Due at 20:55 New York time; the job runs at 22:00 there.
  const due = new Date('2026-12-08T01:55:00Z');
  const ran = new Date('2026-12-08T03:00:00Z');
  const morning = new Date('2026-12-08T13:00:00Z');

  it('moves a reminder to the morning when the job ran over ten minutes late in real time', () => {
    expect(lateSendMovedTo(ran, due, 'America/New_York', quiet, new FixedClock(ran))).toEqual(morning);
  });

  it('sends a job that is late only by the queue polling: minutes of real time, or on the demo clock hours of its time', () => {
    const minutesLate = new Date(due.getTime() + 9 * 60_000);
    expect(
      lateSendMovedTo(minutesLate, due, 'America/New_York', { start: 20, end: 8 }, new FixedClock(ran)),
    ).toBeNull();
    // The demo's clock runs a day in a real second: an hour of its time late is 42 ms of real time.
    const demo = new ScaledClock(due, 86_400);
    expect(lateSendMovedTo(ran, due, 'America/New_York', quiet, demo)).toBeNull();
    expect(demo.realDurationMs(ran.getTime() - due.getTime())).toBeCloseTo(3_900_000 / 86_400);
  });
});

/**
 * One conversation per customer, end to end: hooks inside real transactions, pg-boss on real
 * Postgres, the mailer over real SMTP to the loopback catcher, then `dunning case` as its own
 * process and the report over the same rows.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { createLogger } from '../../src/log.ts';
import { loadReport } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import type { ReminderHooks } from '../../src/reminders/hooks.ts';
import type { CaughtMail, MailCatcher } from '../../src/reminders/mail-catcher.ts';
import { sendOne, type MailerDeps } from '../../src/reminders/mailer.ts';
import { waitFor, type TestDatabase } from '../helpers/db.ts';
import { insertCase } from './fixtures.ts';
import { startMailWorld, type MailWorld } from './mail-world.ts';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const nbsp = (s: string) => s.replace(/[\u00a0\u202f]/g, ' ');
const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
const H = 3_600_000;

let db: TestDatabase;
let catcher: MailCatcher;
let hooks: ReminderHooks;
let mailerDeps: MailerDeps;
// Monday 2 March 2026, 16:00 in Berlin: outside the quiet hours.
const clock = new FixedClock('2026-03-02T15:00:00Z');
const CUSTOMER = 'cus_three';
const EMAIL = 'clara@kunde.de';

let world: MailWorld | undefined;
beforeAll(async () => {
  world = await startMailWorld({
    clock,
    log,
    merchantName: 'Acme GmbH',
    portalLink: async (customerId) => `https://acme.test/update-card?c=${customerId}`,
    // Several slots, so the three first notices are picked up side by side.
    mailer: { pollingIntervalSeconds: 0.5, concurrency: 3 },
  });
  ({ db, catcher, hooks, mailerDeps } = world);
});

afterAll(() => world?.stop());

const mails = (): CaughtMail[] => catcher.messages.filter((m) => m.to.includes(EMAIL));
const rows = () =>
  db.sql<
    {
      id: number;
      invoice: string;
      kind: string;
      status: string;
      mergedInto: number | null;
      sendAt: Date;
      deferrals: number;
    }[]
  >`
    select id::float8 as id, invoice_id as invoice, kind, status, merged_into::float8 as "mergedInto", send_at as "sendAt",
           cap_deferrals as deferrals
    from reminder_outbox where customer_id = ${CUSTOMER} order by id`;

async function dunning(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH, DATABASE_URL: db.url, LOG_LEVEL: 'silent' },
      timeout: 20_000,
    });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: `${e.stdout}${e.stderr}` };
  }
}

describe('a customer with three failing invoices in two currencies', () => {
  const ids: Record<string, number> = {};
  // Which of the three hosts the first email is up to the race between the mailers.
  let hostInvoice = '';
  let mergedInvoice = '';

  it('gets one email listing all three with a total per currency and one update-card link', async () => {
    const invoices = [
      { invoiceId: 'in_eur_a', currency: 'eur', amount: 4_900, openedAt: new Date('2026-03-01T09:00:00Z') },
      { invoiceId: 'in_eur_b', currency: 'eur', amount: 123_456, openedAt: new Date('2026-03-01T10:00:00Z') },
      { invoiceId: 'in_usd_c', currency: 'usd', amount: 1_999, openedAt: new Date('2026-03-01T11:00:00Z') },
    ];
    for (const inv of invoices)
      ids[inv.invoiceId] = await insertCase(db.sql, {
        ...inv,
        customerId: CUSTOMER,
        email: EMAIL,
        name: 'Clara',
        locales: ['de-DE'],
        timeZone: 'Europe/Berlin',
      });
    // Three failures, three events, three first notices planned and queued at the same moment:
    // today that was three emails.
    for (const inv of invoices)
      await db.sql.begin((tx) =>
        hooks.paymentFailed(tx, {
          caseId: ids[inv.invoiceId]!,
          invoiceId: inv.invoiceId,
          opened: true,
          at: clock.now(),
        }),
      );

    // Wait on state: every row decided (one sent, the others carried by it).
    const settled = await waitFor('all three first notices decided', async () => {
      const r = await rows();
      return r.length === 3 && r.every((x) => x.status === 'sent' || x.status === 'merged') ? r : undefined;
    });
    const host = settled.find((r) => r.status === 'sent')!;
    expect(settled.filter((r) => r.status === 'sent')).toHaveLength(1);
    expect(settled.filter((r) => r.status === 'merged').map((r) => r.mergedInto)).toEqual([host.id, host.id]);
    expect(mails()).toHaveLength(1);
    hostInvoice = host.invoice;
    mergedInvoice = settled.find((r) => r.status === 'merged')!.invoice;

    const text = nbsp(mails()[0]!.parsed.text ?? '');
    const html = nbsp(String(mails()[0]!.parsed.html ?? ''));
    expect(mails()[0]!.parsed.subject).toBe('Ihre Zahlung an Acme GmbH ist fehlgeschlagen');
    // Each invoice in German, with its own currency, and the totals per currency, never added across.
    // Totals in the order their currencies first appear, the email's own invoice first.
    const totals = host.invoice.startsWith('in_eur') ? '1.283,56 € und 19,99 $' : '19,99 $ und 1.283,56 €';
    expect(text).toContain(`Ihre Zahlungen über insgesamt ${totals}`);
    expect(text).toContain('- 1. März 2026, Rechnung von Acme GmbH: 49,00 €');
    expect(text).toContain('- 1. März 2026, Rechnung von Acme GmbH: 1.234,56 €');
    expect(text).toContain('- 1. März 2026, Rechnung von Acme GmbH: 19,99 $');
    expect(text).toContain(`Gesamt: ${totals}`);
    for (const amount of ['49,00 €', '1.234,56 €', '19,99 $', totals]) expect(html).toContain(amount);
    // One link, the update-card one: a new card pays all three; one invoice's page pays only that one.
    const links = [...new Set(text.match(/https:\/\/\S+/g))];
    expect(links).toEqual([`https://acme.test/update-card?c=${CUSTOMER}`]);
    expect(html.match(/class="button"/g)).toHaveLength(1);
  });

  it('a second step two days later goes out; a third email in the same week waits for the cap, then goes', async () => {
    // Wednesday 17:00 UTC, 50 h after the first email: the last chance for one invoice.
    clock.set('2026-03-04T17:00:00Z');
    await db.sql.begin((tx) =>
      hooks.attemptPlanned(tx, {
        caseId: ids.in_eur_a!,
        invoiceId: 'in_eur_a',
        at: new Date(clock.now().getTime() + 48 * H),
        isLast: true,
      }),
    );
    await catcher.waitForCount(2);
    expect(mails()).toHaveLength(2);
    // It too states the whole balance: the customer has one conversation, not three.
    expect(nbsp(mails()[1]!.parsed.text ?? '')).toContain('Gesamt: 1.283,56 € und 19,99 $');

    // Friday: a fourth invoice fails. Two emails this week already: the first notice must wait
    // until the first of them is seven days old (Monday 15:00 UTC, 16:00 in Berlin).
    clock.set('2026-03-06T17:00:00Z');
    ids.in_usd_d = await insertCase(db.sql, {
      customerId: CUSTOMER,
      invoiceId: 'in_usd_d',
      email: EMAIL,
      locales: ['de-DE'],
      timeZone: 'Europe/Berlin',
      currency: 'usd',
      amount: 2_500,
      openedAt: clock.now(),
    });
    await db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId: ids.in_usd_d!, invoiceId: 'in_usd_d', opened: true, at: clock.now() }),
    );
    const held = await waitFor('the fourth first notice held back', async () => {
      const r = (await rows()).find((x) => x.invoice === 'in_usd_d' && x.deferrals > 0);
      return r;
    });
    expect(held).toMatchObject({ status: 'pending', kind: 'first_notice' });
    expect(held.sendAt).toEqual(new Date('2026-03-09T15:00:00Z'));
    expect(mails()).toHaveLength(2);

    const shown = await dunning('case', 'in_usd_d');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(
      /first_notice\s+1\s+pending\s+2026-03-09 15:00Z.*deferred once: frequency cap: 2 emails in the last 7 days \(at most 2\); held until 2026-03-09 15:00 UTC/,
    );
    const merged = await dunning('case', mergedInvoice);
    expect(merged.stdout).toMatch(
      new RegExp(`first_notice\\s+1\\s+merged\\s+.*in one email with ${hostInvoice} \\(first_notice #\\d+, sent\\)`),
    );

    // Monday 15:00 UTC: the queue runs the job then; the cap now allows it and it goes.
    clock.set('2026-03-09T15:00:00Z');
    await sendOne(mailerDeps, held.id, held.sendAt);
    await catcher.waitForCount(3);
    expect((await rows()).find((r) => r.id === held.id)).toMatchObject({ status: 'sent', deferrals: 1 });
    expect(nbsp(mails()[2]!.parsed.text ?? '')).toContain('Gesamt: 44,99 $ und 1.283,56 €');
  });

  it('the report counts the merged invoices as reached and the deferral, per currency', async () => {
    const now = new Date('2026-03-10T00:00:00Z');
    const report = await loadReport(db.sql, {
      period: resolvePeriod({ from: '2026-03-01', to: '2026-03-31', timeZone: 'Europe/Berlin', now }),
      currency: null,
      asOf: now,
    });
    const by = (currency: string) => report.currencies.find((c) => c.currency === currency)?.byReminder;
    // EUR: both invoices reached by the first email (one of them merged into the other's), then
    // in_eur_a's last chance. USD: in_usd_c reached through that email (merged), in_usd_d held first.
    expect(by('eur')).toEqual([
      {
        kind: 'first_notice',
        step: 1,
        reached: 2,
        recoveredAfter: 0,
        rate: 0,
        merged: expect.any(Number),
        deferred: 0,
      },
      { kind: 'last_chance', step: 2, reached: 1, recoveredAfter: 0, rate: 0, merged: 0, deferred: 0 },
    ]);
    expect(by('usd')).toEqual([
      {
        kind: 'first_notice',
        step: 1,
        reached: 2,
        recoveredAfter: 0,
        rate: 0,
        merged: expect.any(Number),
        deferred: 1,
      },
    ]);
    // Which invoice hosted the first email is up to the race between mailers; two were merged.
    expect(by('eur')![0]!.merged + by('usd')![0]!.merged).toBe(2);
  });
});

describe('two mailers deciding for the same customer at once', () => {
  it('send one merged email, never two: the customer lock orders them and the second finds its row merged', async () => {
    clock.set('2026-03-16T15:00:00Z');
    const email = 'race@customer.test';
    const caseIds: number[] = [];
    for (const invoiceId of ['in_race_1', 'in_race_2'])
      caseIds.push(
        await insertCase(db.sql, { customerId: 'cus_race', invoiceId, email, locales: ['en'], openedAt: clock.now() }),
      );
    // Planned in one transaction, so the running mailer cannot take the first before the second exists.
    await db.sql.begin(async (tx) => {
      for (const [i, caseId] of caseIds.entries())
        await hooks.paymentFailed(tx, { caseId, invoiceId: `in_race_${i + 1}`, opened: true, at: clock.now() });
    });
    const ids = (
      await db.sql<{ id: number }[]>`
      select id::float8 as id from reminder_outbox where customer_id = 'cus_race' order by id`
    ).map((r) => r.id);
    // Two more deciders besides the running mailer's own jobs, all at once.
    await Promise.all(ids.map((id) => sendOne(mailerDeps, id)));
    const settled = await waitFor('both decided', async () => {
      const r = await db.sql<
        { status: string }[]
      >`select status from reminder_outbox where customer_id = 'cus_race' order by status`;
      return r.every((x) => x.status === 'sent' || x.status === 'merged') ? r.map((x) => x.status) : undefined;
    });
    expect(settled).toEqual(['merged', 'sent']);
    expect(catcher.messages.filter((m) => m.to.includes(email))).toHaveLength(1);
  });
});

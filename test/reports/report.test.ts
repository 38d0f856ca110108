import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadReport, type CurrencyReport, type Report } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { insertCases, insertSubscriptions, NOVEMBER, NOVEMBER_SUBSCRIPTIONS } from './fixtures.ts';

const ZONE = 'Europe/Berlin';
const NOW = new Date('2026-12-10T12:00:00Z');
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await insertCases(db.sql, NOVEMBER);
  await insertSubscriptions(db.sql, NOVEMBER_SUBSCRIPTIONS);
});
afterAll(async () => db?.drop());

function report(from: string, to: string, currency: string | null = null): Promise<Report> {
  return loadReport(db.sql, { period: resolvePeriod({ from, to, timeZone: ZONE, now: NOW }), currency, asOf: NOW });
}

function cur(r: Report, currency: string): CurrencyReport {
  const c = r.currencies.find((x) => x.currency === currency);
  if (!c) throw new Error(`no ${currency} in report`);
  return c;
}

describe('monthly report over a hand-built November', () => {
  it('counts what opened, was recovered, lost and is at risk, per currency', async () => {
    const r = await report('2026-11-01', '2026-11-30');
    expect(r.currencies.map((c) => c.currency)).toEqual(['eur', 'jpy', 'usd']);
    const usd = cur(r, 'usd');
    // b, c, d, e, f (opened 23:30 UTC on 31 Oct = 1 Nov in Berlin), g.
    expect(usd.opened).toEqual({ count: 6, amount: { minor: 20700, formatted: '$207.00' } });
    expect(usd.voided.count).toBe(1);
    // a (opened in October), b, c (paid outside the worker); g is paid in December.
    expect(usd.recovered).toEqual({ count: 3, amount: { minor: 6000, formatted: '$60.00' }, partial: 0 });
    expect(usd.lost).toEqual({ count: 1, amount: { minor: 4000, formatted: '$40.00' } });
    // e (open), g (closed in December), h (opened in September, still open).
    expect(usd.atRisk).toEqual({ count: 3, amount: { minor: 11800, formatted: '$118.00' } });
  });

  it("computes the rates over November's cases without voided ones, and the time to recover", async () => {
    const usd = cur(await report('2026-11-01', '2026-11-30'), 'usd');
    expect(usd.cohort.eligible).toBe(5);
    expect(usd.cohort.recovered).toBe(3);
    expect(usd.cohort.rateByCount).toBeCloseTo(0.6, 10);
    // 2000 + 3000 + 5000 (g paid 5000 of 6000) over 20000.
    expect(usd.cohort.rateByRevenue).toBeCloseTo(0.5, 10);
    expect(usd.cohort.open).toBe(1);
    // Recovered in November after 14 d (a), 2 d (b), 1 d (c).
    expect(usd.timeToRecover.medianSeconds).toBe(2 * 86_400);
    expect(usd.timeToRecover.p90Seconds).toBeCloseTo(11.6 * 86_400, 3);
  });

  it('breaks down by decline category, attempt, path, cohort month and policy arm', async () => {
    const usd = cur(await report('2026-11-01', '2026-11-30'), 'usd');
    const ca = usd.byCategory.find((b) => b.key === 'customer_action');
    expect(ca).toMatchObject({ cases: 2, recovered: 1, rate: 0.5 });
    expect(usd.byCategory.find((b) => b.key === 'generic')).toMatchObject({ cases: 1, recovered: 1 });
    expect(usd.byCode.find((b) => b.key === 'expired_card')).toMatchObject({ cases: 2, recovered: 1 });
    // Charges, not ledger rows: b is [declined, cancelled, succeeded], recovered by its 2nd charge;
    // d is [declined, skipped, declined, not_sent, declined], three charges.
    expect(usd.byAttempt.map((a) => [a.attemptNo, a.attempted, a.succeeded])).toEqual([
      [1, 5, 0],
      [2, 3, 2],
      [3, 1, 0],
    ]);
    expect(usd.byAttempt[1]!.shareOfRecoveries).toBeCloseTo(2 / 3, 10);
    expect(usd.byAttempt[1]!.amount.minor).toBe(7000);
    expect(usd.byPath.map((p) => [p.path, p.count, p.amount.minor])).toEqual([
      ['scheduled_retry', 1, 2000],
      ['card_update_retry', 1, 5000],
      ['paid_outside', 1, 3000],
    ]);
    expect(usd.byMonth.map((m) => [m.month, m.opened, m.recovered, m.open])).toEqual([
      ['2026-09', 1, 0, 1],
      ['2026-10', 1, 1, 0],
      ['2026-11', 6, 3, 1],
    ]);
    expect(usd.policy.smart).toMatchObject({ cases: 3, recovered: 2 });
    expect(usd.policy.holdout).toMatchObject({ cases: 2, recovered: 1 });
    expect(usd.policy.lift?.difference).toBeCloseTo(1 / 6, 10);
    expect(usd.timeline.map((t) => [t.bucket, t.amount.minor])).toEqual([
      ['2026-11-03', 1000],
      ['2026-11-04', 2000],
      ['2026-11-06', 3000],
    ]);
  });

  it('keeps a case lost just after midnight Berlin time out of November, and formats yen without decimals', async () => {
    const jpy = cur(await report('2026-11-01', '2026-11-30'), 'jpy');
    expect(jpy.lost.count).toBe(0);
    expect(jpy.atRisk).toEqual({ count: 1, amount: { minor: 1500, formatted: '¥1,500' } });
    const dec = cur(await report('2026-12-01', '2026-12-31'), 'jpy');
    expect(dec.lost).toEqual({ count: 1, amount: { minor: 1500, formatted: '¥1,500' } });
  });

  it('counts a partial payment with what was paid, in the month it was paid', async () => {
    const usd = cur(await report('2026-12-01', '2026-12-31'), 'usd');
    expect(usd.recovered).toEqual({ count: 1, amount: { minor: 5000, formatted: '$50.00' }, partial: 1 });
  });

  it('measures involuntary churn over customers active at the start', async () => {
    const r = await report('2026-11-01', '2026-11-30');
    expect(r.churn).toMatchObject({ activeAtStart: 3, churned: 1, rate: 1 / 3 });
  });

  it('measures involuntary churn by revenue too, per currency: one large customer lost is most of it', async () => {
    // Each customer's recurring amount is their latest invoice before the period.
    const invoices = [
      ['in_r1', 'cu1', 90_000, '2026-10-20T00:00:00Z'],
      ['in_r2_old', 'cu2', 500, '2026-09-20T00:00:00Z'],
      ['in_r2', 'cu2', 1_000, '2026-10-20T00:00:00Z'],
      ['in_r3', 'cu3', 1_000, '2026-10-20T00:00:00Z'],
      // After the start: not the amount the customer had when the period began.
      ['in_r3_new', 'cu3', 7_000, '2026-11-02T00:00:00Z'],
    ] as const;
    for (const [id, customer, amount, created] of invoices) {
      await db.sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
        values (${id}, ${customer}, 'paid', 'usd', ${amount}, 0, ${created}, ${created})`;
    }
    try {
      const r = await report('2026-11-01', '2026-11-30');
      expect(r.churn.rate).toBe(1 / 3);
      expect(r.churn.byRevenue).toEqual([
        {
          currency: 'usd',
          base: { minor: 92_000, formatted: '$920.00' },
          churned: { minor: 90_000, formatted: '$900.00' },
          rate: 90_000 / 92_000,
        },
      ]);
    } finally {
      await db.sql`delete from invoices where id like 'in_r%'`;
    }
  });

  it('counts a subscription this worker canceled as its final action as involuntary churn', async () => {
    // Stripe records an API cancellation as cancellation_requested, not payment_failed.
    await insertSubscriptions(db.sql, [
      {
        id: 'sub_6',
        customer: 'cu6',
        startedAt: '2026-01-01T00:00:00Z',
        endedAt: '2026-11-25T10:00:00Z',
        reason: 'cancellation_requested',
      },
    ]);
    await db.sql`update invoices set subscription_id = 'sub_6' where id = 'in_d'`;
    try {
      await db.sql`update dunning_cases set final_action = 'cancel_subscription' where invoice_id = 'in_d'`;
      expect((await report('2026-11-01', '2026-11-30')).churn).toMatchObject({
        activeAtStart: 4,
        churned: 2,
        rate: 2 / 4,
      });
      // The same cancellation without a lost case behind it was the customer's choice.
      await db.sql`update dunning_cases set final_action = null where invoice_id = 'in_d'`;
      expect((await report('2026-11-01', '2026-11-30')).churn).toMatchObject({
        activeAtStart: 4,
        churned: 1,
        rate: 1 / 4,
      });
    } finally {
      await db.sql`update invoices set subscription_id = null where id = 'in_d'`;
      await db.sql`delete from subscriptions where id = 'sub_6'`;
    }
  });

  it('does not count as churned a customer who keeps another subscription to the end of the period', async () => {
    // cu1 lost sub_1 to a failed payment on 26 November.
    await insertSubscriptions(db.sql, [
      // Ended before the period end too: cu1 is still churned.
      {
        id: 'sub_7',
        customer: 'cu1',
        startedAt: '2026-05-01T00:00:00Z',
        endedAt: '2026-11-28T00:00:00Z',
        reason: 'cancellation_requested',
      },
    ]);
    try {
      expect((await report('2026-11-01', '2026-11-30')).churn).toMatchObject({
        activeAtStart: 3,
        churned: 1,
        rate: 1 / 3,
      });
      // Still active after 30 November in Berlin: cu1 stayed a customer.
      await insertSubscriptions(db.sql, [{ id: 'sub_8', customer: 'cu1', startedAt: '2026-11-27T00:00:00Z' }]);
      expect((await report('2026-11-01', '2026-11-30')).churn).toMatchObject({ activeAtStart: 3, churned: 0, rate: 0 });
      // One that ended an hour before the period end (midnight Berlin) was not active at the end.
      await db.sql`update subscriptions set ended_at = '2026-11-30T22:00:00Z', status = 'canceled' where id = 'sub_8'`;
      expect((await report('2026-11-01', '2026-11-30')).churn).toMatchObject({
        activeAtStart: 3,
        churned: 1,
        rate: 1 / 3,
      });
    } finally {
      await db.sql`delete from subscriptions where id in ('sub_7', 'sub_8')`;
    }
  });

  it('filters by currency', async () => {
    const r = await report('2026-11-01', '2026-11-30', 'eur');
    expect(r.currencies.map((c) => c.currency)).toEqual(['eur']);
    expect(cur(r, 'eur')).toMatchObject({
      recovered: { count: 1, amount: { minor: 900, formatted: '€9.00' } },
      cohort: { rateByCount: 1 },
    });
  });

  it('returns an empty report, not zeros pretending to be rates, for a quiet period', async () => {
    const r = await report('2025-01-01', '2025-01-31');
    expect(r.currencies).toEqual([]);
    expect(r.churn).toEqual({ activeAtStart: 0, churned: 0, rate: null, byRevenue: [] });
  });
});

describe('reminder breakdown', () => {
  it('counts cases sent each reminder and those recovered after it', async () => {
    const ids = new Map(
      (
        await db.sql<{ id: number; invoiceId: string }[]>`select id::int, invoice_id as "invoiceId" from dunning_cases`
      ).map((r) => [r.invoiceId, r.id]),
    );
    // The outbox `step` is each kind's own dedupe counter as src/reminders/planner.ts writes it: 1
    // for every kind but action_required, which counts declines. The report numbers the emails in
    // the order the customer received them instead.
    const rows = [
      ['in_b', 'first_notice', 1, 'sent', '2026-11-03T10:00:00Z'],
      ['in_d', 'first_notice', 1, 'sent', '2026-11-11T10:00:00Z'],
      ['in_d', 'action_required', 2, 'sent', '2026-11-15T10:00:00Z'],
      ['in_d', 'last_chance', 1, 'sent', '2026-11-20T10:00:00Z'],
      ['in_g', 'last_chance', 1, 'cancelled', null],
      ['in_g', 'first_notice', 1, 'sent', '2026-11-29T10:00:00Z'],
      ['in_e', 'first_notice', 1, 'pending', null],
      // Sent after the payment: not "recovered after".
      ['in_c', 'first_notice', 1, 'sent', '2026-11-07T10:00:00Z'],
      ['in_b', 'recovered', 9, 'sent', '2026-11-04T10:00:05Z'],
      // The voided case is out of every breakdown, reminders included.
      ['in_f', 'first_notice', 1, 'sent', '2026-11-01T08:00:00Z'],
    ] as const;
    // Rows of the real reminder_outbox (sql/002_reminders.sql), as the mailer leaves them.
    for (const [inv, kind, step, status, sentAt] of rows) {
      await db.sql`
        insert into reminder_outbox (case_id, customer_id, invoice_id, kind, step, dedupe_key, status, due_at, send_at, sent_at, locale, time_zone)
        values (${ids.get(inv)!}, ${'cus_' + inv}, ${inv}, ${kind}, ${step}, ${`${inv}:${kind}:${step}`}, ${status},
                '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z', ${sentAt}, 'en', 'Europe/Berlin')`;
    }
    try {
      expect(cur(await report('2026-11-01', '2026-11-30', 'usd'), 'usd').byReminder).toEqual([
        { kind: 'first_notice', step: 1, reached: 4, recoveredAfter: 2, rate: 0.5, merged: 0, deferred: 0 },
        { kind: 'action_required', step: 2, reached: 1, recoveredAfter: 0, rate: 0, merged: 0, deferred: 0 },
        { kind: 'last_chance', step: 3, reached: 1, recoveredAfter: 0, rate: 0, merged: 0, deferred: 0 },
      ]);
    } finally {
      await db.sql`delete from reminder_outbox`;
    }
  });
});

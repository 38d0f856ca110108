import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { closeCase, openCase } from '../../src/ledger.ts';
import { loadReport } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { event, invoice, subscription, T0 } from '../fixtures/events/stripe-objects.ts';
import { apply, caseOf, recordingHooks, testDeps } from '../events/helpers.ts';

/**
 * How cases close, as the reports read them: the open span [opened_at, closed_at) backs the at-risk
 * figure through a GiST index on tstzrange(opened_at, closed_at), which refuses an upper bound
 * below the lower one.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db?.drop());

let n = 0;
function ids() {
  n += 1;
  return { inv: `in_cc${n}`, cus: `cus_cc${n}` };
}

function failed(
  id: { inv: string; cus: string },
  o: Omit<Partial<Stripe.Invoice>, 'id' | 'customer'> = {},
  created = T0,
) {
  return event('invoice.payment_failed', invoice({ id: id.inv, customer: id.cus, ...o }), { created });
}

async function openAt(id: { inv: string; cus: string }, at: Date): Promise<number> {
  await db.sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
               values (${id.inv}, ${id.cus}, 'open', 'usd', 5000, 5000, ${at}, ${at})`;
  const c = await openCase(db.sql, {
    invoiceId: id.inv,
    customerId: id.cus,
    currency: 'usd',
    amount: 5000,
    policyVersion: 'test-policy',
    policyBody: {},
    cohort: 'smart',
    at,
  });
  return c.caseId;
}

describe('a close time before the open time', () => {
  // The runner closes with its own clock, the processor with Stripe's event time: a worker whose
  // clock lags Stripe can close a case "before" it opened.
  test.each(['recovered', 'lost', 'closed'] as const)(
    'the runner closing a case as %s clamps closed_at to opened_at',
    async (status) => {
      const id = ids();
      const openedAt = new Date('2026-11-10T10:00:00Z');
      const caseId = await openAt(id, openedAt);
      const at = new Date(openedAt.getTime() - 90_000);
      expect(await closeCase(db.sql, caseId, { status, reason: 'test', at })).toBe(true);
      const c = await caseOf(db.sql, id.inv);
      expect(c).toMatchObject({ status, closed_at: openedAt });
      // The span is empty, so the case was never at risk, and the time to recover is zero, not negative.
      const [risk] =
        await db.sql`select count(*)::int as n from dunning_cases where id = ${caseId} and tstzrange(opened_at, closed_at) @> ${openedAt}::timestamptz`;
      expect(risk!.n).toBe(0);
    },
  );

  test('a subscription deletion stamped before the failure that opened the case closes it at the open time', async () => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(
      db.sql,
      deps,
      failed(id, {}, T0 + 100),
      event(
        'customer.subscription.deleted',
        subscription({ id: `sub_${id.inv.slice(3)}`, customer: id.cus, status: 'canceled', endedAt: T0 + 40 }),
        { created: T0 + 40 },
      ),
    );
    expect(await caseOf(db.sql, id.inv)).toMatchObject({
      status: 'lost',
      opened_at: new Date((T0 + 100) * 1000),
      closed_at: new Date((T0 + 100) * 1000),
    });
  });

  test('a close time after the open time is kept as it is', async () => {
    const id = ids();
    const openedAt = new Date('2026-11-10T10:00:00Z');
    const caseId = await openAt(id, openedAt);
    const at = new Date(openedAt.getTime() + 1_000);
    await closeCase(db.sql, caseId, { status: 'lost', reason: 'test', at });
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ closed_at: at });
  });
});

describe('what a closed case records as paid', () => {
  /** An invoice of 10,000 with `paidBefore` already paid when it failed: the case is for the rest. */
  async function partlyPaid(
    id: { inv: string; cus: string },
    paidBefore: number,
    currency = 'usd',
    at = new Date('2026-11-10T10:00:00Z'),
  ): Promise<number> {
    await db.sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_paid, amount_remaining, stripe_created, stripe_updated_at)
                 values (${id.inv}, ${id.cus}, 'open', ${currency}, 10000, ${paidBefore}, ${10000 - paidBefore}, ${at}, ${at})`;
    const c = await openCase(db.sql, {
      invoiceId: id.inv,
      customerId: id.cus,
      currency,
      amount: 10000 - paidBefore,
      policyVersion: 'test-policy',
      policyBody: {},
      cohort: 'smart',
      at,
    });
    return c.caseId;
  }
  const at = new Date('2026-11-12T10:00:00Z');

  test('an invoice paid in part before it failed recovers only the case amount (processor)', async () => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(
      db.sql,
      deps,
      failed(id, { amount_due: 10000, amount_paid: 3000, amount_remaining: 7000 }, T0),
      event(
        'invoice.paid',
        invoice({
          id: id.inv,
          customer: id.cus,
          status: 'paid',
          amount_due: 10000,
          amount_paid: 10000,
          amount_remaining: 0,
        }),
        { created: T0 + 60 },
      ),
    );
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ status: 'recovered', amount: 7000, recovered_amount: 7000 });
  });

  test.each([
    ['paid in full, nothing paid before', 0, 10000, 10000],
    ['paid in full, 3,000 paid before the failure', 3000, 10000, 7000],
    ['marked paid after 4,000 of 10,000, nothing paid before', 0, 4000, 4000],
    ['marked paid after 5,000, of which 3,000 before the failure', 3000, 5000, 2000],
  ])('the runner recording a payment: %s', async (_what, paidBefore, invoicePaid, recorded) => {
    const id = ids();
    const caseId = await partlyPaid(id, paidBefore);
    await closeCase(db.sql, caseId, {
      status: 'recovered',
      reason: 'test',
      at,
      recoveryPath: 'scheduled_retry',
      invoicePaid,
    });
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ recovered_amount: recorded });
  });

  test.each([
    ['nothing paid in dunning', 3000, 3000, null],
    ['2,000 paid in dunning', 3000, 5000, 2000],
  ])('a lost case records what was paid while it was open: %s', async (_what, paidBefore, paidNow, recorded) => {
    const id = ids();
    const caseId = await partlyPaid(id, paidBefore);
    await db.sql`update invoices set amount_paid = ${paidNow}, amount_remaining = ${10000 - paidNow} where id = ${id.inv}`;
    await closeCase(db.sql, caseId, { status: 'lost', reason: 'test', at });
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ status: 'lost', recovered_amount: recorded });
  });

  test('a voided case records no payment', async () => {
    const id = ids();
    const caseId = await partlyPaid(id, 3000);
    await closeCase(db.sql, caseId, { status: 'closed', reason: 'test', at });
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ status: 'closed', recovered_amount: null });
  });

  test('the report counts as lost the case amount minus what was paid in dunning, and as recovered no more than the case amount', async () => {
    const lost = ids();
    const won = ids();
    const lostId = await partlyPaid(lost, 3000, 'chf');
    await db.sql`update invoices set amount_paid = 5000, amount_remaining = 5000 where id = ${lost.inv}`;
    await closeCase(db.sql, lostId, { status: 'lost', reason: 'test', at });
    await closeCase(db.sql, await partlyPaid(won, 3000, 'chf'), {
      status: 'recovered',
      reason: 'test',
      at,
      recoveryPath: 'customer_paid',
      invoicePaid: 10000,
    });
    const period = resolvePeriod({
      from: '2026-11-01',
      to: '2026-11-30',
      timeZone: 'UTC',
      now: new Date('2026-12-10T00:00:00Z'),
    });
    const r = await loadReport(db.sql, { period, currency: 'chf', asOf: new Date('2026-12-10T00:00:00Z') });
    const chf = r.currencies[0]!;
    expect(chf.lost).toMatchObject({ count: 1, amount: { minor: 5000 } });
    expect(chf.recovered).toMatchObject({ count: 1, amount: { minor: 7000 }, partial: 0 });
    expect(chf.cohort.rateByRevenue).toBeCloseTo(7000 / 14000, 10);
  });
});

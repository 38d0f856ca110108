import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as store from '../../src/dunning/store.ts';
import { openCase } from '../../src/events/ledger.ts';
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

function failed(id: { inv: string; cus: string }, o: Omit<Partial<Stripe.Invoice>, 'id' | 'customer'> = {}, created = T0) {
  return event('invoice.payment_failed', invoice({ id: id.inv, customer: id.cus, ...o }), { created });
}

async function openAt(id: { inv: string; cus: string }, at: Date): Promise<number> {
  await db.sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
               values (${id.inv}, ${id.cus}, 'open', 'usd', 5000, 5000, ${at}, ${at})`;
  const c = await openCase(db.sql, {
    invoiceId: id.inv, customerId: id.cus, currency: 'usd', amount: 5000, policyVersion: 'test-policy', policyBody: {}, cohort: 'smart', at,
  });
  return c.caseId;
}

describe('a close time before the open time', () => {
  // The runner closes with its own clock, the processor with Stripe's event time: a worker whose
  // clock lags Stripe can close a case "before" it opened.
  test.each(['recovered', 'lost', 'closed'] as const)('the runner closing a case as %s clamps closed_at to opened_at', async (status) => {
    const id = ids();
    const openedAt = new Date('2026-11-10T10:00:00Z');
    const caseId = await openAt(id, openedAt);
    const at = new Date(openedAt.getTime() - 90_000);
    expect(await store.closeCase(db.sql, caseId, { status, reason: 'test', at })).toBe(true);
    const c = await caseOf(db.sql, id.inv);
    expect(c).toMatchObject({ status, closed_at: openedAt });
    // The span is empty, so the case was never at risk, and the time to recover is zero, not negative.
    const [risk] = await db.sql`select count(*)::int as n from dunning_cases where id = ${caseId} and tstzrange(opened_at, closed_at) @> ${openedAt}::timestamptz`;
    expect(risk!.n).toBe(0);
  });

  test('a subscription deletion stamped before the failure that opened the case closes it at the open time', async () => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(db.sql, deps,
      failed(id, {}, T0 + 100),
      event('customer.subscription.deleted', subscription({ id: `sub_${id.inv.slice(3)}`, customer: id.cus, status: 'canceled', endedAt: T0 + 40 }), { created: T0 + 40 }));
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ status: 'lost', opened_at: new Date((T0 + 100) * 1000), closed_at: new Date((T0 + 100) * 1000) });
  });

  test('a close time after the open time is kept as it is', async () => {
    const id = ids();
    const openedAt = new Date('2026-11-10T10:00:00Z');
    const caseId = await openAt(id, openedAt);
    const at = new Date(openedAt.getTime() + 1_000);
    await store.closeCase(db.sql, caseId, { status: 'lost', reason: 'test', at });
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ closed_at: at });
  });
});

import { randomUUID } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, beforeAll, expect, test } from 'vitest';
import * as store from '../../src/dunning/store.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { charge, event, invoice, T0 } from '../fixtures/events/stripe-objects.ts';
import { apply, attemptsOf, caseOf, recordingHooks, testDeps } from './helpers.ts';

/**
 * Which ledger row a failed charge's details belong to, when Stripe's own retries and ours share
 * the invoice's PaymentIntent and their events arrive late and out of order. Our attempts are
 * claimed and finished through the runner's own store functions: an unresolved attempt of ours
 * does not know its charge or PaymentIntent until it finishes.
 */

let db: TestDatabase;
const deps = testDeps(recordingHooks().hooks);
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

let n = 0;
function ids() {
  n += 1;
  return { inv: `in_cm${n}`, inv2: `in_cm${n}b`, cus: `cus_cm${n}`, pi: `pi_cm${n}`, pi2: `pi_cm${n}b` };
}

const at = (seconds: number) => new Date(seconds * 1000);

/** The invoice as Stripe's webhook has it, naming its PaymentIntent when `pi` is given. */
function failed(
  id: string,
  customer: string,
  created: number,
  o: { attemptCount?: number; pi?: string } = {},
): Stripe.Event {
  const payments = o.pi
    ? ({
        object: 'list',
        has_more: false,
        url: `/v1/invoice_payments?invoice=${id}`,
        data: [
          {
            id: `inpay_${o.pi}`,
            object: 'invoice_payment',
            amount_paid: null,
            amount_requested: 4_900,
            created: T0,
            currency: 'usd',
            invoice: id,
            is_default: true,
            livemode: false,
            payment: { type: 'payment_intent', payment_intent: o.pi },
            status: 'open',
            status_transitions: { canceled_at: null, paid_at: null },
          },
        ],
      } as Stripe.ApiList<Stripe.InvoicePayment>)
    : undefined;
  return event(
    'invoice.payment_failed',
    invoice({ id, customer, attempt_count: o.attemptCount ?? 1, ...(payments ? { payments } : {}) }),
    { created },
  );
}

function chargeFailed(
  chargeId: string,
  customer: string,
  pi: string,
  created: number,
  declineCode: string,
): Stripe.Event {
  return event('charge.failed', charge({ id: chargeId, customer, paymentIntent: pi, declineCode, created }), {
    created,
  });
}

/** Our retry of the case, planned and claimed by the runner's store functions: in flight, its charge unknown. */
async function ourRetryInFlight(invoiceId: string, startedAt: Date): Promise<number> {
  const c = await caseOf(db.sql, invoiceId);
  return db.sql.begin(async (tx) => {
    const planned = await store.insertPlannedAttempt(tx, {
      caseId: Number(c!.id),
      invoiceId,
      source: 'scheduled',
      plannedAt: startedAt,
      reason: 'test',
      paymentMethod: null,
      jobId: randomUUID(),
    });
    const claimed = await store.claimAttempt(tx, planned!.id, startedAt, 120_000);
    return claimed!.attempt.id;
  });
}

async function finishDeclined(attemptId: number, chargeId: string, pi: string, finishedAt: Date): Promise<void> {
  await db.sql.begin((tx) =>
    store.finishAttempt(
      tx,
      attemptId,
      {
        status: 'declined',
        finishedAt,
        chargeId,
        paymentIntentId: pi,
        declineCode: 'do_not_honor',
      },
      { status: 'in_flight' },
    ),
  );
}

const ledger = async (invoiceId: string) =>
  (await attemptsOf(db.sql, invoiceId)).map((a) => [a.attempt_no, a.source, a.status, a.charge_id, a.decline_code]);

test('a late Stripe failure on the same PaymentIntent never takes the charge of our retry still in flight', async () => {
  const id = ids();
  const ours = `ch_${id.inv}_ours`;
  await apply(
    db.sql,
    deps,
    chargeFailed(`ch_${id.inv}_1`, id.cus, id.pi, T0, 'insufficient_funds'),
    failed(id.inv, id.cus, T0, { pi: id.pi }),
  );
  const retry = await ourRetryInFlight(id.inv, at(T0 + 2 * 86_400));
  // Our retry's decline arrives while the runner still waits for Stripe's answer: parked.
  await apply(db.sql, deps, chargeFailed(ours, id.cus, id.pi, T0 + 2 * 86_400 + 2, 'do_not_honor'));
  // Stripe's own retry of a day earlier, whose charge.failed never came, reports late.
  await apply(db.sql, deps, failed(id.inv, id.cus, T0 + 86_400, { attemptCount: 2, pi: id.pi }));
  await finishDeclined(retry, ours, id.pi, at(T0 + 2 * 86_400 + 3));
  expect(await ledger(id.inv)).toEqual([
    [1, 'stripe', 'declined', `ch_${id.inv}_1`, 'insufficient_funds'],
    [2, 'scheduled', 'declined', ours, 'do_not_honor'],
    [3, 'stripe', 'declined', null, null],
  ]);
});

test("a late Stripe failure on one invoice never takes the charge of our retry in flight on the customer's other invoice", async () => {
  const id = ids();
  const ours = `ch_${id.inv2}_ours`;
  await apply(
    db.sql,
    deps,
    chargeFailed(`ch_${id.inv2}_1`, id.cus, id.pi2, T0, 'generic_decline'),
    failed(id.inv2, id.cus, T0),
  );
  const retry = await ourRetryInFlight(id.inv2, at(T0 + 86_400));
  await apply(db.sql, deps, chargeFailed(ours, id.cus, id.pi2, T0 + 86_400 + 2, 'do_not_honor'));
  // Invoice A fails at Stripe minutes later; its payload names no PaymentIntent, its charge.failed is still on the way.
  await apply(db.sql, deps, failed(id.inv, id.cus, T0 + 86_400 + 300));
  expect((await ledger(id.inv))[0]).toEqual([1, 'stripe', 'declined', null, null]);
  await finishDeclined(retry, ours, id.pi2, at(T0 + 86_400 + 3));
  expect(await ledger(id.inv2)).toEqual([
    [1, 'stripe', 'declined', `ch_${id.inv2}_1`, 'generic_decline'],
    [2, 'scheduled', 'declined', ours, 'do_not_honor'],
  ]);
  // A's own charge, when it lands, explains A.
  await apply(db.sql, deps, chargeFailed(`ch_${id.inv}_1`, id.cus, id.pi, T0 + 86_400 + 300, 'expired_card'));
  expect(await ledger(id.inv)).toEqual([[1, 'stripe', 'declined', `ch_${id.inv}_1`, 'expired_card']]);
});

test("each of Stripe's retries gets its own charge's decline when both charges were parked first", async () => {
  const id = ids();
  await apply(
    db.sql,
    deps,
    chargeFailed(`ch_${id.inv}_1`, id.cus, id.pi, T0, 'insufficient_funds'),
    failed(id.inv, id.cus, T0, { pi: id.pi }),
  );
  await apply(
    db.sql,
    deps,
    chargeFailed(`ch_${id.inv}_2`, id.cus, id.pi, T0 + 86_400, 'do_not_honor'),
    chargeFailed(`ch_${id.inv}_3`, id.cus, id.pi, T0 + 2 * 86_400, 'lost_card'),
    failed(id.inv, id.cus, T0 + 86_400, { attemptCount: 2, pi: id.pi }),
    failed(id.inv, id.cus, T0 + 2 * 86_400, { attemptCount: 3, pi: id.pi }),
  );
  expect(await ledger(id.inv)).toEqual([
    [1, 'stripe', 'declined', `ch_${id.inv}_1`, 'insufficient_funds'],
    [2, 'stripe', 'declined', `ch_${id.inv}_2`, 'do_not_honor'],
    [3, 'stripe', 'declined', `ch_${id.inv}_3`, 'lost_card'],
  ]);
});

test('a charge pinned on a Stripe attempt by mistake moves to our attempt when the runner records it, instead of blocking it', async () => {
  const id = ids();
  const ours = `ch_${id.inv}_ours`;
  await apply(db.sql, deps, failed(id.inv, id.cus, T0));
  const retry = await ourRetryInFlight(id.inv, at(T0 + 86_400));
  // Whatever got it there (an older version, a clock far off), the Stripe row holds our charge.
  await db.sql`update payment_attempts set charge_id = ${ours} where invoice_id = ${id.inv} and source = 'stripe'`;
  await finishDeclined(retry, ours, id.pi, at(T0 + 86_400 + 3));
  expect((await ledger(id.inv)).map((r) => r.slice(0, 4))).toEqual([
    [1, 'stripe', 'declined', null],
    [2, 'scheduled', 'declined', ours],
  ]);
});

test('an attempt handed back as not sent starts again when it is sent: a Stripe failure in between is not taken for it', async () => {
  const id = ids();
  await apply(
    db.sql,
    deps,
    chargeFailed(`ch_${id.inv}_1`, id.cus, id.pi, T0, 'insufficient_funds'),
    failed(id.inv, id.cus, T0),
  );
  // Our retry is claimed, answered 429 (not sent) and handed back; sent for real two days later.
  const retry = await ourRetryInFlight(id.inv, at(T0 + 3_600));
  await db.sql.begin((tx) =>
    store.releaseAttempt(tx, retry, 'planned', at(T0 + 2 * 86_400), 'not sent: 429', { status: 'in_flight' }),
  );
  expect((await attemptsOf(db.sql, id.inv))[1]).toMatchObject({ status: 'planned', started_at: null });
  await db.sql.begin((tx) => store.claimAttempt(tx, retry, at(T0 + 2 * 86_400), 120_000));
  await finishDeclined(retry, `ch_${id.inv}_ours`, id.pi, at(T0 + 2 * 86_400 + 3));
  // Meanwhile, a day after the first failure, Stripe had retried by itself (Smart Retries left on);
  // its events arrive only now. They are Stripe's second charge, not a copy of ours.
  await apply(
    db.sql,
    deps,
    chargeFailed(`ch_${id.inv}_2`, id.cus, id.pi, T0 + 86_400, 'do_not_honor'),
    failed(id.inv, id.cus, T0 + 86_400, { attemptCount: 2 }),
  );
  expect(await ledger(id.inv)).toEqual([
    [1, 'stripe', 'declined', `ch_${id.inv}_1`, 'insufficient_funds'],
    [2, 'scheduled', 'declined', `ch_${id.inv}_ours`, 'do_not_honor'],
    [3, 'stripe', 'declined', `ch_${id.inv}_2`, 'do_not_honor'],
  ]);
});

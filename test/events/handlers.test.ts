import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type Stripe from 'stripe';
import { classifyDecline } from '../../src/dunning/declines.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  charge,
  customer,
  event,
  expiringCard,
  invoice,
  paidInvoice,
  paymentIntent,
  paymentMethod,
  subscription,
  T0,
} from '../fixtures/events/stripe-objects.ts';
import { apply, attemptsOf, caseOf, recordingHooks, testDeps } from './helpers.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

let n = 0;
/** Fresh ids per test: one database serves the whole file. */
function ids() {
  n += 1;
  return { inv: `in_t${n}`, cus: `cus_t${n}`, ch: `ch_t${n}`, pi: `pi_t${n}`, sub: `sub_t${n}` };
}

function failed(
  id: { inv: string; cus: string },
  o: Omit<Partial<Stripe.Invoice>, 'id' | 'customer'> = {},
  created = T0,
) {
  return event('invoice.payment_failed', invoice({ id: id.inv, customer: id.cus, ...o }), { created });
}

function subscriptionParent(subscription: string): Stripe.Invoice.Parent {
  return { type: 'subscription_details', quote_details: null, subscription_details: { metadata: {}, subscription } };
}

describe('failed payments', () => {
  test('a failed invoice opens one case and records Stripe attempt with the details of its charge', async () => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    const deps = testDeps(hooks);
    const decline = {
      declineCode: 'insufficient_funds',
      adviceCode: 'try_again_later' as const,
      networkAdviceCode: '24',
      networkDeclineCode: '51',
    };
    await apply(
      db.sql,
      deps,
      event(
        'charge.failed',
        charge({ id: id.ch, customer: id.cus, paymentIntent: id.pi, brand: 'mastercard', ...decline }),
        { created: T0 },
      ),
      failed(id),
    );
    const c = await caseOf(db.sql, id.inv);
    expect(c).toMatchObject({
      status: 'open',
      customer_id: id.cus,
      amount: 4900,
      currency: 'usd',
      policy_version: 'test-policy',
      cohort: 'smart',
      first_decline_code: 'insufficient_funds',
      first_decline_category: 'funds',
    });
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({
      source: 'stripe',
      status: 'declined',
      attempt_no: 1,
      charge_id: id.ch,
      payment_intent_id: id.pi,
      decline_code: 'insufficient_funds',
      failure_code: 'card_declined',
      advice_code: 'try_again_later',
      network_advice_code: '24',
      network_decline_code: '51',
      card_brand: 'mastercard',
      payment_method: 'pm_card_1',
      decline_category: 'funds',
    });
    expect(calls).toEqual([
      {
        hook: 'paymentFailed',
        e: {
          caseId: Number(c!.id),
          invoiceId: id.inv,
          attemptId: Number(attempts[0]!.id),
          opened: true,
          at: new Date(T0 * 1000),
        },
      },
    ]);
    const [policy] = await db.sql`select body from policies where version = 'test-policy'`;
    expect(policy!.body).toEqual({ test: true });
  });

  test('a decline code nobody knows yet is classified generic and reported, so the worker can log it once', async () => {
    const id = ids();
    const reported: string[][] = [];
    const deps = {
      ...testDeps(recordingHooks().hooks),
      reportUnknownCodes: (c: { unknownCodes: string[] }) => void reported.push(c.unknownCodes),
    };
    await apply(
      db.sql,
      deps,
      event(
        'charge.failed',
        charge({ id: id.ch, customer: id.cus, paymentIntent: id.pi, declineCode: 'brand_new_code_2027' }),
        { created: T0 },
      ),
      failed(id),
    );
    expect(reported).toEqual([['brand_new_code_2027']]);
    expect((await attemptsOf(db.sql, id.inv))[0]).toMatchObject({
      decline_code: 'brand_new_code_2027',
      decline_category: 'generic',
    });
  });

  test('a charge Radar blocked keeps its reason: highest_risk_level is a hard decline, never retried on that card', async () => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(
      db.sql,
      deps,
      event(
        'charge.failed',
        charge({
          id: id.ch,
          customer: id.cus,
          paymentIntent: id.pi,
          outcomeType: 'blocked',
          declineCode: 'highest_risk_level',
        }),
        { created: T0 },
      ),
      failed(id),
    );
    const [attempt] = await attemptsOf(db.sql, id.inv);
    expect(attempt).toMatchObject({
      decline_code: 'highest_risk_level',
      failure_code: 'card_declined',
      decline_category: 'hard',
    });
    expect(
      classifyDecline({ declineCode: attempt!.decline_code, failureCode: attempt!.failure_code }).neverRetrySameCard,
    ).toBe(true);
    expect(await caseOf(db.sql, id.inv)).toMatchObject({
      first_decline_code: 'highest_risk_level',
      first_decline_category: 'hard',
    });
  });

  test.each([
    [
      'charge.failed',
      (id: ReturnType<typeof ids>) =>
        charge({
          id: id.ch,
          customer: id.cus,
          paymentIntent: id.pi,
          declineCode: 'expired_card',
          failureCode: 'expired_card',
        }),
    ],
    [
      'payment_intent.payment_failed',
      (id: ReturnType<typeof ids>) =>
        paymentIntent({
          id: id.pi,
          customer: id.cus,
          chargeId: id.ch,
          declineCode: 'expired_card',
          failureCode: 'expired_card',
        }),
    ],
  ])('%s arriving after the invoice event enriches the same attempt instead of adding one', async (type, make) => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(db.sql, deps, failed(id), event(type, make(id), { created: T0 + 1 }));
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({
      source: 'stripe',
      charge_id: id.ch,
      decline_code: 'expired_card',
      decline_category: 'customer_action',
    });
    expect(await caseOf(db.sql, id.inv)).toMatchObject({
      last_decline_code: 'expired_card',
      last_decline_category: 'customer_action',
    });
  });

  test('our own declined retry is recognised by its charge id: enriched, never counted twice', async () => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    const deps = testDeps(hooks);
    await apply(db.sql, deps, failed(id));
    const c = await caseOf(db.sql, id.inv);
    // What the runner writes for its own attempt #2.
    await db.sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, charge_id, payment_intent_id, decline_code, finished_at)
                 values (${c!.id}, ${id.inv}, 2, 'scheduled', 'declined', 'ch_ours', ${id.pi}, 'do_not_honor', ${new Date((T0 + 86_400) * 1000)})`;
    await apply(
      db.sql,
      deps,
      event(
        'charge.failed',
        charge({
          id: 'ch_ours',
          customer: id.cus,
          paymentIntent: id.pi,
          declineCode: 'do_not_honor',
          networkDeclineCode: '05',
        }),
        { created: T0 + 86_400 },
      ),
      event(
        'payment_intent.payment_failed',
        paymentIntent({ id: id.pi, customer: id.cus, chargeId: 'ch_ours', declineCode: 'do_not_honor' }),
        { created: T0 + 86_400 },
      ),
      failed(id, { attempt_count: 2 }, T0 + 86_400),
    );
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(attempts.map((a) => [a.attempt_no, a.source, a.charge_id])).toEqual([
      [1, 'stripe', null],
      [2, 'scheduled', 'ch_ours'],
    ]);
    expect(attempts[1]).toMatchObject({ network_decline_code: '05', decline_code: 'do_not_honor' });
    expect(calls.filter((x) => x.hook === 'paymentFailed').map((x) => [x.e.opened, x.e.attemptId])).toEqual([
      [true, Number(attempts[0]!.id)],
      [false, Number(attempts[1]!.id)],
    ]);
  });

  test('every failed try is recorded, whoever made it: a hosted-page failure after our retry is not mistaken for it', async () => {
    // Stripe, Invoice.attempt_count: "Any payment attempt counts as the first attempt, and
    // subsequently only automatic retries increment the attempt count. In other words, manual payment
    // attempts after the first attempt do not affect the retry schedule." Our retries and the
    // customer's own tries leave it at 1, yet each is announced: invoice.payment_failed "Occurs
    // whenever an invoice payment attempt fails".
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(db.sql, deps, failed(id));
    const c = await caseOf(db.sql, id.inv);
    const ourAt = new Date((T0 + 86_400) * 1000);
    await db.sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, charge_id, payment_intent_id, started_at, finished_at)
                 values (${Number(c!.id)}, ${id.inv}, 2, 'scheduled', 'declined', ${`${id.ch}_ours`}, ${id.pi}, ${ourAt}, ${ourAt})`;
    // Our retry's own failure event, then the customer's failed try on the hosted page a day later,
    // then a Dashboard user's: all with attempt_count 1.
    await apply(db.sql, deps, failed(id, {}, T0 + 86_400), failed(id, {}, T0 + 2 * 86_400));
    await apply(db.sql, deps, failed(id, {}, T0 + 3 * 86_400));
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(
      attempts.map((a) => [Number(a.attempt_no), String(a.source), (a.started_at as Date).getTime() / 1000]),
    ).toEqual([
      [1, 'stripe', T0],
      [2, 'scheduled', T0 + 86_400],
      [3, 'stripe', T0 + 2 * 86_400],
      [4, 'stripe', T0 + 3 * 86_400],
    ]);
  });

  test('a failure event that arrives after a later one still finds its own place; none is counted twice', async () => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(db.sql, deps, failed(id));
    const c = await caseOf(db.sql, id.inv);
    const ourAt = new Date((T0 + 86_400) * 1000);
    await db.sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, charge_id, payment_intent_id, started_at, finished_at)
                 values (${Number(c!.id)}, ${id.inv}, 2, 'scheduled', 'declined', ${`${id.ch}_ours`}, ${id.pi}, ${ourAt}, ${ourAt})`;
    // The customer's try (a day after ours) is delivered before our retry's own event.
    const hosted = failed(id, {}, T0 + 2 * 86_400);
    const ours = failed(id, {}, T0 + 86_400);
    await apply(db.sql, deps, hosted, ours, hosted);
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(attempts.map((a) => [String(a.source), (a.started_at as Date).getTime() / 1000])).toEqual([
      ['stripe', T0],
      ['scheduled', T0 + 86_400],
      ['stripe', T0 + 2 * 86_400],
    ]);
  });

  test('a charge.failed delayed behind our next retry still explains the Stripe failure; a charge made after that retry started waits for it', async () => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(db.sql, deps, failed(id));
    const c = await caseOf(db.sql, id.inv);
    // Our retry #2 on the same PaymentIntent is still waiting for Stripe's answer.
    const retryAt = new Date((T0 + 86_400) * 1000);
    await db.sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, payment_intent_id, started_at)
                 values (${c!.id}, ${id.inv}, 2, 'scheduled', 'in_flight', ${id.pi}, ${retryAt})`;
    // A charge made after our retry started may be our retry's: it waits, parked, for the runner.
    await apply(
      db.sql,
      deps,
      event(
        'charge.failed',
        charge({
          id: 'ch_maybe_ours',
          customer: id.cus,
          paymentIntent: id.pi,
          declineCode: 'do_not_honor',
          created: T0 + 86_401,
        }),
        { created: T0 + 86_401 },
      ),
    );
    expect(
      await db.sql`select 1 from charge_failures where charge_id = 'ch_maybe_ours' and claimed_by is null`,
    ).toHaveLength(1);
    expect((await attemptsOf(db.sql, id.inv))[0]).toMatchObject({ charge_id: null, decline_code: null });
    // The first failure's charge, a day older than our retry, cannot be it: it explains attempt #1.
    await apply(
      db.sql,
      deps,
      event(
        'charge.failed',
        charge({ id: id.ch, customer: id.cus, paymentIntent: id.pi, declineCode: 'insufficient_funds' }),
        { created: T0 },
      ),
    );
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(attempts.map((a) => [a.attempt_no, a.status, a.charge_id, a.decline_code])).toEqual([
      [1, 'declined', id.ch, 'insufficient_funds'],
      [2, 'in_flight', null, null],
    ]);
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ first_decline_code: 'insufficient_funds' });
    expect(await db.sql`select 1 from charge_failures where charge_id = ${id.ch}`).toHaveLength(0);
  });

  test('a failure on an invoice sent for manual payment opens no case', async () => {
    const id = ids();
    await apply(db.sql, testDeps(recordingHooks().hooks), failed(id, { collection_method: 'send_invoice' }));
    expect(await caseOf(db.sql, id.inv)).toBeNull();
    expect((await db.sql`select status from invoices where id = ${id.inv}`)[0]).toMatchObject({ status: 'open' });
  });

  test('payment_action_required opens the case and tells the hooks', async () => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    await apply(
      db.sql,
      testDeps(hooks),
      event('invoice.payment_action_required', invoice({ id: id.inv, customer: id.cus })),
    );
    const c = await caseOf(db.sql, id.inv);
    expect(c).toMatchObject({ status: 'open' });
    expect(calls).toEqual([
      {
        hook: 'actionRequired',
        e: { caseId: Number(c!.id), invoiceId: id.inv, opened: true, at: new Date(T0 * 1000) },
      },
    ]);
  });
});

describe('closing cases', () => {
  type Ours = { source: string; status: string } | null;
  test.each<[string, Ours, Omit<Partial<Stripe.Invoice>, 'id' | 'customer'>, string]>([
    ['our scheduled retry succeeded', { source: 'scheduled', status: 'succeeded' }, {}, 'scheduled_retry'],
    [
      'our card-update retry is still settling',
      { source: 'card_update', status: 'in_flight' },
      {},
      'card_update_retry',
    ],
    ['our manual retry succeeded', { source: 'manual', status: 'succeeded' }, {}, 'manual_retry'],
    [
      'the customer paid on the hosted page after our decline',
      { source: 'scheduled', status: 'declined' },
      {},
      'customer_paid',
    ],
    ['nothing of ours ran', null, {}, 'customer_paid'],
    ['paid out of band', null, { amount_paid_off_stripe: 4_900 }, 'paid_outside'],
  ])('invoice.paid when %s -> recovered via %s', async (_what, ours, extra, path) => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    const deps = testDeps(hooks);
    await apply(db.sql, deps, failed(id));
    const c = await caseOf(db.sql, id.inv);
    if (ours) {
      await db.sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, charge_id)
                   values (${c!.id}, ${id.inv}, 2, ${ours.source}, ${ours.status}, ${`ch_${id.inv}_2`})`;
    }
    await apply(
      db.sql,
      deps,
      event('invoice.paid', paidInvoice({ id: id.inv, customer: id.cus, ...extra }, T0 + 100), { created: T0 + 100 }),
    );
    expect(await caseOf(db.sql, id.inv)).toMatchObject({
      status: 'recovered',
      recovery_path: path,
      recovered_amount: 4900,
      close_reason: 'invoice paid',
    });
    expect(calls.at(-1)).toEqual({
      hook: 'caseClosed',
      e: {
        caseId: Number(c!.id),
        invoiceId: id.inv,
        status: 'recovered',
        reason: 'invoice paid',
        at: new Date((T0 + 100) * 1000),
      },
    });
  });

  test.each([
    [
      'invoice.voided',
      (id: ReturnType<typeof ids>) =>
        event('invoice.voided', invoice({ id: id.inv, customer: id.cus, status: 'void' }), { created: T0 + 50 }),
      'closed',
      'invoice voided',
    ],
    [
      'customer.subscription.deleted',
      (id: ReturnType<typeof ids>) =>
        event(
          'customer.subscription.deleted',
          subscription({ id: `sub_${id.inv.slice(3)}`, customer: id.cus, status: 'canceled', endedAt: T0 + 50 }),
          { created: T0 + 50 },
        ),
      'lost',
      'subscription deleted',
    ],
  ])('%s closes the open case', async (_type, make, status, reason) => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    const deps = testDeps(hooks);
    await apply(db.sql, deps, failed(id), make(id));
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ status, close_reason: reason, recovery_path: null });
    expect(calls.at(-1)).toMatchObject({ hook: 'caseClosed', e: { status, reason } });
  });

  test('invoice.paid before an older invoice.payment_failed: no case, invoice stays paid', async () => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    const deps = testDeps(hooks);
    await apply(
      db.sql,
      deps,
      event('invoice.paid', paidInvoice({ id: id.inv, customer: id.cus, attempt_count: 2 }), { created: T0 + 60 }),
      failed(id, {}, T0),
    );
    expect(await caseOf(db.sql, id.inv)).toBeNull();
    expect(await attemptsOf(db.sql, id.inv)).toHaveLength(0);
    expect((await db.sql`select status, amount_remaining from invoices where id = ${id.inv}`)[0]).toMatchObject({
      status: 'paid',
      amount_remaining: 0,
    });
    expect(calls).toEqual([]);
  });

  test.each(['invoice.payment_failed', 'invoice.payment_action_required'])(
    'customer.subscription.deleted before an older %s: the failure is recorded and its case lost at once, as in order',
    async (type) => {
      const id = ids();
      const { hooks, calls } = recordingHooks();
      const deps = testDeps(hooks);
      await apply(
        db.sql,
        deps,
        event(
          'customer.subscription.deleted',
          subscription({ id: id.sub, customer: id.cus, status: 'canceled', endedAt: T0 + 50 }),
          { created: T0 + 50 },
        ),
        event(type, invoice({ id: id.inv, customer: id.cus, parent: subscriptionParent(id.sub) }), { created: T0 }),
      );
      const c = await caseOf(db.sql, id.inv);
      expect(c).toMatchObject({ status: 'lost', close_reason: 'subscription deleted', next_attempt_at: null });
      expect(await attemptsOf(db.sql, id.inv)).toHaveLength(type === 'invoice.payment_failed' ? 1 : 0);
      // Nothing is planned: the hooks only hear that the case closed.
      expect(calls).toEqual([
        {
          hook: 'caseClosed',
          e: {
            caseId: Number(c!.id),
            invoiceId: id.inv,
            status: 'lost',
            reason: 'subscription deleted',
            at: new Date(T0 * 1000),
          },
        },
      ]);
    },
  );

  test('a failure on an invoice whose subscription is only past_due opens the case as usual', async () => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    await apply(
      db.sql,
      testDeps(hooks),
      event('customer.subscription.updated', subscription({ id: id.sub, customer: id.cus, status: 'past_due' }), {
        created: T0 + 50,
      }),
      event('invoice.payment_failed', invoice({ id: id.inv, customer: id.cus, parent: subscriptionParent(id.sub) }), {
        created: T0,
      }),
    );
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ status: 'open' });
    expect(calls.map((c) => c.hook)).toEqual(['paymentFailed']);
  });

  test('a closed case stays closed when an older failure arrives late; the failure joins its history, nothing is planned', async () => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    const deps = testDeps(hooks);
    await apply(
      db.sql,
      deps,
      failed(id, {}, T0),
      event('invoice.paid', paidInvoice({ id: id.inv, customer: id.cus }), { created: T0 + 60 }),
      failed(id, { attempt_count: 2 }, T0 + 30),
    );
    expect(await caseOf(db.sql, id.inv)).toMatchObject({ status: 'recovered' });
    expect((await attemptsOf(db.sql, id.inv)).map((a) => [a.attempt_no, a.source, a.status])).toEqual([
      [1, 'stripe', 'declined'],
      [2, 'stripe', 'declined'],
    ]);
    expect(calls.map((c) => c.hook)).toEqual(['paymentFailed', 'caseClosed']);
  });

  test('a failure dated after its case closed is not written into that case', async () => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(
      db.sql,
      deps,
      failed(id, {}, T0),
      event('invoice.paid', paidInvoice({ id: id.inv, customer: id.cus }), { created: T0 + 60 }),
      failed(id, { attempt_count: 2 }, T0 + 90),
    );
    expect(await attemptsOf(db.sql, id.inv)).toHaveLength(1);
  });

  test('the failure that opened a case arrives after our card-update retry paid it: recorded with its details, first decline right', async () => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    const deps = testDeps(hooks);
    // payment_action_required opened the case; the customer's new card was charged an hour later.
    await apply(
      db.sql,
      deps,
      event('invoice.payment_action_required', invoice({ id: id.inv, customer: id.cus }), { created: T0 }),
    );
    const c = await caseOf(db.sql, id.inv);
    const retriedAt = new Date((T0 + 3_600) * 1000);
    await db.sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, charge_id, payment_intent_id, started_at, finished_at)
                 values (${c!.id}, ${id.inv}, 1, 'card_update', 'succeeded', ${`${id.ch}_ours`}, ${id.pi}, ${retriedAt}, ${retriedAt})`;
    await apply(
      db.sql,
      deps,
      event('invoice.paid', paidInvoice({ id: id.inv, customer: id.cus, attempt_count: 2 }, T0 + 3_600), {
        created: T0 + 3_600,
      }),
    );
    expect(await caseOf(db.sql, id.inv)).toMatchObject({
      status: 'recovered',
      recovery_path: 'card_update_retry',
      first_decline_code: null,
    });
    // Now the first failure's events, late.
    await apply(
      db.sql,
      deps,
      event(
        'charge.failed',
        charge({
          id: id.ch,
          customer: id.cus,
          paymentIntent: id.pi,
          declineCode: 'authentication_required',
          failureCode: 'authentication_required',
        }),
        { created: T0 },
      ),
      failed(id, {}, T0),
    );
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(attempts.map((a) => [a.attempt_no, a.source, a.status, a.charge_id, a.decline_code])).toEqual([
      [1, 'card_update', 'succeeded', `${id.ch}_ours`, null],
      [2, 'stripe', 'declined', id.ch, 'authentication_required'],
    ]);
    expect(await caseOf(db.sql, id.inv)).toMatchObject({
      status: 'recovered',
      recovery_path: 'card_update_retry',
      first_decline_code: 'authentication_required',
      first_decline_category: 'authentication',
    });
    expect(await db.sql`select 1 from charge_failures where charge_id = ${id.ch} and claimed_by is null`).toHaveLength(
      0,
    );
    expect(calls.map((x) => x.hook)).toEqual(['actionRequired', 'caseClosed']);
  });
});

describe('ordering of invoice state', () => {
  test.each([
    ['failed then paid', ['failed', 'paid']],
    ['paid then failed', ['paid', 'failed']],
  ])('events of the same second both apply, by the invoice own progress (%s)', async (_name, order) => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    const evs = {
      failed: failed(id, {}, T0),
      paid: event('invoice.paid', paidInvoice({ id: id.inv, customer: id.cus }), { created: T0 }),
    } as Record<string, Stripe.Event>;
    await apply(db.sql, deps, ...order.map((k) => evs[k]!));
    expect((await db.sql`select status from invoices where id = ${id.inv}`)[0]).toMatchObject({ status: 'paid' });
    const c = await caseOf(db.sql, id.inv);
    if (order[0] === 'failed') expect(c).toMatchObject({ status: 'recovered' });
    else expect(c).toBeNull();
  });

  test('an older invoice.updated never overwrites newer state; uncollectible can still become paid; void is final', async () => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    const status = async () => (await db.sql`select status, amount_due from invoices where id = ${id.inv}`)[0];
    await apply(
      db.sql,
      deps,
      event('invoice.updated', invoice({ id: id.inv, customer: id.cus, amount_due: 5000 }), { created: T0 + 10 }),
    );
    await apply(
      db.sql,
      deps,
      event('invoice.updated', invoice({ id: id.inv, customer: id.cus, amount_due: 4000 }), { created: T0 + 5 }),
    );
    expect(await status()).toMatchObject({ status: 'open', amount_due: 5000 });
    await apply(
      db.sql,
      deps,
      event('invoice.marked_uncollectible', invoice({ id: id.inv, customer: id.cus, status: 'uncollectible' }), {
        created: T0 + 20,
      }),
    );
    expect(await status()).toMatchObject({ status: 'uncollectible' });
    await apply(
      db.sql,
      deps,
      event('invoice.paid', paidInvoice({ id: id.inv, customer: id.cus }), { created: T0 + 30 }),
    );
    expect(await status()).toMatchObject({ status: 'paid' });
    await apply(
      db.sql,
      deps,
      event('invoice.voided', invoice({ id: id.inv, customer: id.cus, status: 'void' }), { created: T0 + 40 }),
    );
    expect(await status()).toMatchObject({ status: 'paid' });
  });
});

describe('customers and cards', () => {
  test('customer.updated keeps the newest copy and announces a changed default card once', async () => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    const deps = testDeps(hooks);
    const newer = customer({
      id: id.cus,
      email: 'new@example.com',
      invoice_settings: {
        custom_fields: null,
        default_payment_method: 'pm_new',
        footer: null,
        rendering_options: null,
      },
    });
    const older = customer({ id: id.cus, email: 'old@example.com' });
    await apply(
      db.sql,
      deps,
      event('customer.updated', newer, {
        created: T0 + 10,
        previous: { invoice_settings: { default_payment_method: 'pm_card_1' } },
      }),
      event('customer.updated', older, {
        created: T0,
        previous: { invoice_settings: { default_payment_method: 'pm_x' } },
      }),
    );
    expect(
      (
        await db.sql`select email, default_payment_method, time_zone, country, preferred_locales from customers where id = ${id.cus}`
      )[0],
    ).toMatchObject({
      email: 'new@example.com',
      default_payment_method: 'pm_new',
      time_zone: 'Europe/Berlin',
      country: 'DE',
      preferred_locales: ['de'],
    });
    expect(calls).toEqual([
      {
        hook: 'paymentMethodChanged',
        e: { customerId: id.cus, paymentMethod: 'pm_new', at: new Date((T0 + 10) * 1000) },
      },
    ]);
  });

  test.each(['payment_method.attached', 'payment_method.automatically_updated'])(
    '%s tells the hooks about the card',
    async (type) => {
      const id = ids();
      const { hooks, calls } = recordingHooks();
      await apply(db.sql, testDeps(hooks), event(type, paymentMethod({ id: `pm_${id.cus}`, customer: id.cus })));
      const updated = type === 'payment_method.automatically_updated';
      expect(calls).toEqual([
        {
          hook: 'paymentMethodChanged',
          e: {
            customerId: id.cus,
            paymentMethod: `pm_${id.cus}`,
            at: new Date(T0 * 1000),
            ...(updated ? { updated } : {}),
          },
        },
      ]);
      // The card updater's change is remembered: declines before it were about the old card details.
      const rows = await db.sql`select updated_at from payment_method_updates where payment_method = ${`pm_${id.cus}`}`;
      expect(rows.map((r) => r.updated_at)).toEqual(updated ? [new Date(T0 * 1000)] : []);
    },
  );

  test('customer.source.expiring tells the hooks the expiry', async () => {
    const id = ids();
    const { hooks, calls } = recordingHooks();
    await apply(
      db.sql,
      testDeps(hooks),
      event('customer.source.expiring', expiringCard({ id: 'card_1', customer: id.cus, expMonth: 7, expYear: 2026 })),
    );
    expect(calls).toEqual([
      {
        hook: 'cardExpiring',
        e: { customerId: id.cus, paymentMethod: 'card_1', expMonth: 7, expYear: 2026, at: new Date(T0 * 1000) },
      },
    ]);
  });

  test('customer.subscription.updated keeps the subscription current, canceled stays canceled', async () => {
    const id = ids();
    const deps = testDeps(recordingHooks().hooks);
    await apply(
      db.sql,
      deps,
      event('customer.subscription.updated', subscription({ id: id.sub, customer: id.cus, status: 'past_due' }), {
        created: T0,
      }),
      event(
        'customer.subscription.deleted',
        subscription({ id: id.sub, customer: id.cus, status: 'canceled', endedAt: T0 + 9 }),
        { created: T0 + 9 },
      ),
      event('customer.subscription.updated', subscription({ id: id.sub, customer: id.cus, status: 'active' }), {
        created: T0 + 20,
      }),
    );
    expect(
      (await db.sql`select status, ended_at, cancellation_reason from subscriptions where id = ${id.sub}`)[0],
    ).toMatchObject({ status: 'canceled', ended_at: new Date((T0 + 9) * 1000), cancellation_reason: 'payment_failed' });
  });
});

test('an event type we do not handle is stored and marked ignored', async () => {
  const deps = testDeps(recordingHooks().hooks);
  const ev = event('invoice.finalized', invoice({ id: 'in_ignored', customer: 'cus_ignored' }));
  expect(await apply(db.sql, deps, ev)).toEqual(['ignored']);
  expect((await db.sql`select status, tries from stripe_events where id = ${ev.id}`)[0]).toMatchObject({
    status: 'ignored',
    tries: 1,
  });
  expect(await apply(db.sql, deps, ev)).toEqual(['done']);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import { waitFor } from '../helpers/db.ts';
import {
  apiCharges,
  attemptRow,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
  startWorldWorkers,
} from './runner-helpers.ts';

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

async function jobsFor(
  queue: string,
  key: string,
): Promise<Array<{ data: Record<string, unknown>; start_after: Date }>> {
  return await w.db.sql`select data, start_after from pgboss.job where name = ${queue} and singleton_key = ${key}`;
}

/**
 * Stripe's own first decline reached the ledger without its code (its charge.failed never came),
 * so a retry was planned and our charge is the first to hear the issuer's answer. With the code on
 * record the runner would refuse to charge (test/dunning/runner-guard.test.ts).
 */
async function withoutFirstDeclineCode(invoiceId: string): Promise<void> {
  await w.db
    .sql`update payment_attempts set decline_code = null, failure_code = 'card_declined' where invoice_id = ${invoiceId} and attempt_no = 1`;
}

describe('retry runner against the sandbox', () => {
  it('approved: the attempt succeeds and the case is recovered through a scheduled retry', async () => {
    const s = await seedFailedInvoice(w, 'processing_error');
    // The issuer's outage heals with time on the sandbox's clock.
    w.sandboxClock.advance(72 * 3_600_000);
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('succeeded');
    w.sandboxClock.set(w.clock.now());
    // invoices.pay answers with the invoice; its expanded payments carry the PaymentIntent, whose
    // latest charge is the one that paid.
    const a = await attemptRow(w.db.sql, id);
    expect(a).toMatchObject({
      status: 'succeeded',
      payment_intent_id: expect.stringMatching(/^pi_/),
      charge_id: expect.stringMatching(/^ch_/),
    });
    expect(a.charge_id).toBe(apiCharges(w.sandbox, s.invoiceId)[0]!.id);
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c).toMatchObject({ status: 'recovered', recovery_path: 'scheduled_retry', recovered_amount: 4_900 });
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
  });

  it('soft decline: the decline is recorded and the next attempt is planned with a reason and a job', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('declined');
    const a = await attemptRow(w.db.sql, id);
    // The sandbox sends advice_code try_again_later with it, which says no more than the vague
    // decline code: the decline stays generic, under its own code.
    expect(a).toMatchObject({
      status: 'declined',
      decline_code: 'generic_decline',
      advice_code: 'try_again_later',
      network_decline_code: '05',
    });
    expect(a.decline_category).toBe('generic');
    expect(a.charge_id).toMatch(/^ch_/);
    const [next] = await w.db
      .sql`select * from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(next).toMatchObject({ attempt_no: 3, source: 'scheduled', idempotency_key: `dunning:${s.invoiceId}:3` });
    expect(next!.plan_reason).toMatch(/retry .* after the decline/);
    expect((next!.planned_at as Date).getTime()).toBeGreaterThanOrEqual(w.clock.now().getTime() + 3_600_000);
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c.next_attempt_reason).toBe(next!.plan_reason);
    expect(c.last_decline_category).toBe(a.decline_category);
    const jobs = await jobsFor('dunning-attempts', s.invoiceId);
    expect(jobs.map((j) => j.data.attemptId)).toContain(Number(next!.id));
  });

  it('hard decline: no retry of that card; the case waits for the customer with a deadline', async () => {
    const s = await seedFailedInvoice(w, 'lost_card');
    await withoutFirstDeclineCode(s.invoiceId);
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('declined');
    expect((await attemptRow(w.db.sql, id)).decline_category).toBe('hard');
    const planned = await w.db
      .sql`select 1 from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(planned).toHaveLength(0);
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c.status).toBe('open');
    // Whichever of the answer's codes the classifier names first: the decline code, Mastercard's
    // advice 03, or Visa's category 1 response code 41 (the sandbox's advice codes follow the brand).
    expect(c.next_attempt_reason).toMatch(
      /^awaiting customer: (lost_card|network_advice_03|visa_category_1_41): this card must never be retried/,
    );
    expect(await jobsFor('dunning-deadlines', String(s.caseId))).toHaveLength(1);
  });

  it('authentication required: Stripe answers requires_action, and the case waits for the customer instead of retrying', async () => {
    const s = await seedFailedInvoice(w, 'authentication_required');
    await withoutFirstDeclineCode(s.invoiceId);
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('declined');
    // What Stripe's invoices.pay answers for a card that needs 3-D Secure: a card error without a
    // decline code, no charge, the PaymentIntent waiting in requires_action.
    const a = await attemptRow(w.db.sql, id);
    expect(a).toMatchObject({
      status: 'declined',
      decline_code: null,
      failure_code: 'invoice_payment_intent_requires_action',
      decline_category: 'authentication',
      charge_id: null,
      payment_intent_id: expect.stringMatching(/^pi_/),
    });
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
    const planned = async () =>
      w.db.sql`select 1 from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(await planned()).toHaveLength(0);
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c).toMatchObject({
      status: 'open',
      last_decline_code: 'invoice_payment_intent_requires_action',
      last_decline_category: 'authentication',
    });
    expect(c.next_attempt_reason).toMatch(
      /^awaiting customer: invoice_payment_intent_requires_action: .*not retried off-session; waiting for the customer to complete authentication/,
    );
    // The deadline is the only job: the final action, unless the customer acts first.
    expect(await jobsFor('dunning-deadlines', String(s.caseId))).toHaveLength(1);
    // Stripe tells the merchant the customer must act: that event sends the action-required email.
    const told = w.sandbox
      .events()
      .filter(
        (e) => e.type === 'invoice.payment_action_required' && (e.data.object as { id: string }).id === s.invoiceId,
      );
    expect(told.length).toBeGreaterThanOrEqual(2); // Stripe's own try, then ours
    // Not even the holdout's fixed schedule retries it blindly.
    await w.db.sql`update dunning_cases set cohort = 'holdout' where id = ${s.caseId}`;
    await w.db.sql.begin((tx) =>
      createDunningHooks(w.deps).paymentFailed(tx, {
        caseId: s.caseId,
        invoiceId: s.invoiceId,
        opened: false,
        at: w.clock.now(),
      }),
    );
    expect(await planned()).toHaveLength(0);
  });

  /** Stripe's own decline is in the ledger without anything the bank said: its charge.failed is still queued. */
  async function withoutFirstDeclineDetails(invoiceId: string): Promise<void> {
    await w.db
      .sql`update payment_attempts set decline_code = null, failure_code = null, advice_code = null, network_advice_code = null,
                     network_decline_code = null, decline_category = null where invoice_id = ${invoiceId} and attempt_no = 1`;
  }

  it("a retry planned before Stripe's decline details arrived is not charged when Stripe already says the card is stolen", async () => {
    const s = await seedFailedInvoice(w, 'stolen_card');
    await withoutFirstDeclineDetails(s.invoiceId);
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('skipped');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
    expect((await attemptRow(w.db.sql, id)).failure_message).toMatch(
      /^not charged: .*(stolen_card|network_advice_03|visa_category_1).*read from Stripe before its event arrived/,
    );
    // Planning again from the ledger would plan the same blind charge: the case waits for the late
    // event (or its deadline) instead.
    expect(
      await w.db.sql`select 1 from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`,
    ).toHaveLength(0);
    expect(await jobsFor('dunning-deadlines', String(s.caseId))).toHaveLength(1);
    // The ledger is left for the event to fill, which also tells the reminders.
    expect(
      (
        await w.db.sql`select decline_code from payment_attempts where invoice_id = ${s.invoiceId} and attempt_no = 1`
      )[0]!.decline_code,
    ).toBeNull();
    // When the event lands, the case is planned with what it says: it waits for a new card.
    const [first] = await w.db
      .sql`select id from payment_attempts where invoice_id = ${s.invoiceId} and attempt_no = 1`;
    await w.db
      .sql`update payment_attempts set decline_code = 'stolen_card', decline_category = 'hard' where id = ${first!.id}`;
    await w.db.sql.begin((tx) =>
      createDunningHooks(w.deps).declineLearned(tx, {
        caseId: s.caseId,
        invoiceId: s.invoiceId,
        attemptId: Number(first!.id),
        at: w.clock.now(),
      }),
    );
    expect((await caseRow(w.db.sql, s.caseId)).next_attempt_reason).toMatch(/^awaiting customer: stolen_card: /);
  });

  it('late details that do not bar the card let the planned retry go ahead', async () => {
    const s = await seedFailedInvoice(w, 'insufficient_funds');
    await withoutFirstDeclineDetails(s.invoiceId);
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(['succeeded', 'declined']).toContain(await executeAttempt(w.deps, id));
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
  });

  it('an invoice paid elsewhere is never charged: the attempt is skipped after reading Stripe', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    await w.sandbox.payInvoiceOutOfBand(s.invoiceId); // our copy still says open
    expect(await executeAttempt(w.deps, id)).toBe('skipped');
    expect((await attemptRow(w.db.sql, id)).failure_message).toBe('invoice is paid at Stripe');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
  });

  it('a paused case is skipped without asking Stripe to charge', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    await w.db.sql`update dunning_cases set paused = true where id = ${s.caseId}`;
    expect(await executeAttempt(w.deps, id)).toBe('skipped');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
  });

  it('paymentFailed plans the first retry once, however often the failure is delivered', async () => {
    const s = await seedFailedInvoice(w, 'insufficient_funds');
    const hooks = createDunningHooks(w.deps);
    for (let i = 0; i < 2; i += 1) {
      await w.db.sql.begin((tx) =>
        hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: i === 0, at: w.clock.now() }),
      );
    }
    const planned = await w.db
      .sql`select * from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(planned).toHaveLength(1);
    expect(planned[0]!.plan_reason).toContain('insufficient_funds');
    expect(await jobsFor('dunning-attempts', s.invoiceId)).toHaveLength(1);
  });

  it('a card update after a hard decline triggers a retry within a minute, run by the worker', async () => {
    const s = await seedFailedInvoice(w, 'stolen_card');
    const hooks = createDunningHooks(w.deps);
    await w.db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: true, at: w.clock.now() }),
    );
    expect((await caseRow(w.db.sql, s.caseId)).next_attempt_reason).toMatch(/^awaiting customer/);

    const { paymentMethodId } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 1,
      expYear: 2031,
    });
    await w.db.sql.begin((tx) =>
      hooks.paymentMethodChanged(tx, { customerId: s.customerId, paymentMethod: paymentMethodId, at: w.clock.now() }),
    );
    const [planned] = await w.db
      .sql`select * from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(planned).toMatchObject({ source: 'card_update', payment_method: paymentMethodId });
    expect((planned!.planned_at as Date).getTime() - w.clock.now().getTime()).toBeLessThanOrEqual(60_000);

    const stop = await startWorldWorkers(w);
    try {
      const c = await waitFor('case recovered by the card-update retry', async () => {
        const row = await caseRow(w.db.sql, s.caseId);
        return row.status === 'recovered' ? row : null;
      });
      expect(c.recovery_path).toBe('card_update_retry');
      expect(apiCharges(w.sandbox, s.invoiceId).map((ch) => ch.paymentMethod)).toEqual([paymentMethodId]);
    } finally {
      await stop();
    }
  });
});

import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleDeadline } from '../../src/dunning/final-action.ts';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import { OpsError, pause, resume, retryNow } from '../../src/dunning/ops-actions.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import type { DeadlineJob } from '../../src/dunning/scheduler.ts';
import type { ProcessorDeps } from '../../src/events/context.ts';
import { waitForLockWait } from '../helpers/db.ts';
import { apply, testDeps } from '../events/helpers.ts';
import {
  apiCharges,
  attemptRow,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
  type SeededCase,
} from './runner-helpers.ts';

let w: RunnerWorld;
let processor: ProcessorDeps;
beforeAll(async () => {
  w = await startWorld();
  processor = testDeps(createDunningHooks(w.deps));
});
afterAll(async () => {
  await w?.close();
});

/** Pauses (or with null resumes) collection at Stripe; returns the subscription event Stripe sent. */
async function setPause(
  s: SeededCase,
  pauseCollection: Stripe.SubscriptionUpdateParams['pause_collection'],
): Promise<Stripe.Event> {
  await w.deps.gateway.stripe.subscriptions.update(s.subscriptionId!, { pause_collection: pauseCollection });
  const ev = w.sandbox
    .events()
    .filter(
      (e) => e.type === 'customer.subscription.updated' && (e.data.object as { id: string }).id === s.subscriptionId,
    )
    .at(-1);
  return ev as unknown as Stripe.Event;
}

async function failedCase(): Promise<SeededCase> {
  const s = await seedFailedInvoice(w, 'generic_decline');
  await w.db.sql.begin((tx) =>
    createDunningHooks(w.deps).paymentFailed(tx, {
      caseId: s.caseId,
      invoiceId: s.invoiceId,
      opened: true,
      at: w.clock.now(),
    }),
  );
  return s;
}

async function attempts(s: SeededCase) {
  return w.db
    .sql`select id, attempt_no, status, source, job_id, failure_message from payment_attempts where invoice_id = ${s.invoiceId} order by attempt_no`;
}

async function waitingJobs(s: SeededCase) {
  return w.db
    .sql`select id from pgboss.job where name = 'dunning-attempts' and singleton_key = ${s.invoiceId} and state in ('created', 'retry')`;
}

describe("Stripe's pause_collection on the subscription", () => {
  it('an invoice of a subscription with paused collection is never charged, and resuming plans it again', async () => {
    const s = await failedCase();
    const [, planned] = await attempts(s);
    expect(planned).toMatchObject({ status: 'planned' });

    // The subscription event stores the pause and withdraws the planned attempt with its job.
    await apply(w.db.sql, processor, await setPause(s, { behavior: 'keep_as_draft' }));
    const [sub] = await w.db.sql`select pause_collection_behavior from subscriptions where id = ${s.subscriptionId}`;
    expect(sub!.pause_collection_behavior).toBe('keep_as_draft');
    expect(await attemptRow(w.db.sql, Number(planned!.id))).toMatchObject({
      status: 'cancelled',
      failure_message: expect.stringContaining('collection is paused at Stripe'),
    });
    expect(await waitingJobs(s)).toHaveLength(0);
    const held = await caseRow(w.db.sql, s.caseId);
    expect(held).toMatchObject({
      status: 'open',
      next_attempt_at: null,
      next_attempt_reason: 'held: collection is paused at Stripe (pause_collection keep_as_draft)',
    });

    // Nothing plans a charge meanwhile: a new card, ops' retry-now, or a re-plan.
    const { paymentMethodId } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 1,
      expYear: 2031,
    });
    await w.db.sql.begin((tx) =>
      createDunningHooks(w.deps).paymentMethodChanged(tx, {
        customerId: s.customerId,
        paymentMethod: paymentMethodId,
        at: w.clock.now(),
      }),
    );
    await expect(w.db.sql.begin((tx) => retryNow(tx, w.deps, s.invoiceId))).rejects.toThrow(OpsError);
    const [r] = await w.db.sql.begin((tx) => resume(tx, w.deps, s.invoiceId));
    expect(r!.result).toMatchObject({
      kind: 'unchanged',
      why: expect.stringContaining('collection is paused at Stripe'),
    });
    expect((await attempts(s)).filter((a) => a.status === 'planned')).toHaveLength(0);
    // Lifted at Stripe, but that event has not reached us: our copy still holds. An attempt that
    // was planned anyway (before the pause event arrived, say) is skipped, not charged.
    const lifted = await setPause(s, '');
    const [stale] = await w.db.sql`
      insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, idempotency_key)
      values (${s.caseId}, ${s.invoiceId}, 3, 'scheduled', 'planned', ${w.clock.now()}, 'test', ${`dunning:${s.invoiceId}:3`}) returning id`;
    expect(await executeAttempt(w.deps, Number(stale!.id))).toBe('skipped');
    expect((await attemptRow(w.db.sql, Number(stale!.id))).failure_message).toBe(
      'collection is paused at Stripe (pause_collection keep_as_draft)',
    );
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
    // Nor does the final action run while collection is paused.
    const deadline: DeadlineJob = {
      caseId: s.caseId,
      kind: 'await',
      reason: 'test',
      attemptsSeen: (await attempts(s)).length,
    };
    expect(await handleDeadline(w.deps, deadline)).toBe('stood_down');
    expect((await w.deps.gateway.stripe.subscriptions.retrieve(s.subscriptionId!)).status).not.toBe('canceled');

    // An older event cannot undo a newer pause.
    await apply(w.db.sql, processor, { ...lifted, id: `${lifted.id}_old`, created: lifted.created - 60 });
    const [still] = await w.db.sql`select pause_collection_behavior from subscriptions where id = ${s.subscriptionId}`;
    expect(still!.pause_collection_behavior).toBe('keep_as_draft');
    expect((await attempts(s)).filter((a) => a.status === 'planned')).toHaveLength(0);

    // Resumed at Stripe: the case is planned again, on the new default card, and that retry pays.
    await w.db.sql`update customers set default_payment_method = ${paymentMethodId} where id = ${s.customerId}`;
    await apply(w.db.sql, processor, await setPause(s, ''));
    const again = (await attempts(s)).filter((a) => a.status === 'planned');
    expect(again).toHaveLength(1);
    expect(await waitingJobs(s)).toEqual([{ id: again[0]!.job_id }]);
    expect(await executeAttempt(w.deps, Number(again[0]!.id))).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
  });

  it("Stripe's own read wins when our copy does not know of the pause yet, even for an attempt whose outcome was unknown", async () => {
    for (const status of ['planned', 'unknown'] as const) {
      const s = await seedFailedInvoice(w, 'generic_decline');
      await setPause(s, { behavior: 'void', resumes_at: Math.floor(w.clock.now().getTime() / 1000) + 86_400 });
      const id = await planDueAttempt(w.db.sql, s, w.clock.now());
      await w.db.sql`update payment_attempts set status = ${status} where id = ${id}`;
      expect(await executeAttempt(w.deps, id)).toBe('skipped');
      const a = await attemptRow(w.db.sql, id);
      expect(a.failure_message).toMatch(
        /^collection is paused at Stripe \(pause_collection void, resumes 2026-03-04T08:00:00.000Z\)$/,
      );
      expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
    }
  });

  it('a pause that ends by itself at resumes_at plans the case again then, with no event telling us', async () => {
    const s = await failedCase();
    const resumesAt = Math.floor(w.clock.now().getTime() / 1000) + 3_600;
    await apply(w.db.sql, processor, await setPause(s, { behavior: 'void', resumes_at: resumesAt }));
    expect((await caseRow(w.db.sql, s.caseId)).next_attempt_reason).toContain('held: collection is paused');
    const [job] = await w.db
      .sql`select data from pgboss.job where name = 'dunning-deadlines' and singleton_key = ${String(s.caseId)} and data->>'kind' = 'resume'`;
    expect(job).toBeDefined();
    // Run early, while the pause still holds: nothing happens.
    expect(await handleDeadline(w.deps, job!.data as DeadlineJob)).toBe('stood_down');
    w.clock.advance(2 * 3_600_000);
    try {
      expect(await handleDeadline(w.deps, job!.data as DeadlineJob)).toBe('done');
      expect((await attempts(s)).filter((a) => a.status === 'planned')).toHaveLength(1);
      // It never applies a final action, whatever the ledger says.
      expect(await caseRow(w.db.sql, s.caseId)).toMatchObject({ status: 'open', final_action: null });
    } finally {
      w.clock.advance(-2 * 3_600_000);
    }
  });

  it('a case that closes while the pause event waits for its lock is left alone', async () => {
    const s = await failedCase();
    await w.db.sql`
      insert into subscriptions (id, customer_id, status, pause_collection_behavior, stripe_updated_at)
      values (${s.subscriptionId}, ${s.customerId}, 'past_due', 'void', ${w.clock.now()})
      on conflict (id) do update set pause_collection_behavior = 'void'`;
    await w.db.sql`update invoices set subscription_id = ${s.subscriptionId} where id = ${s.invoiceId}`;
    const held: number[] = [];
    const hooks = createDunningHooks({
      ...w.deps,
      onCaseHeld: async (_tx, e) => {
        held.push(e.caseId);
      },
    });
    let closeNow!: () => void;
    let locked!: () => void;
    const holding = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const closing = w.db.sql.begin(async (tx) => {
      await tx`select id from dunning_cases where id = ${s.caseId} for update`;
      await tx`update dunning_cases set status = 'recovered', closed_at = now() where id = ${s.caseId}`;
      locked();
      await new Promise<void>((resolve) => {
        closeNow = resolve;
      });
    });
    await holding;
    // The pause event lists the case as open (the close is not committed yet), then waits for its lock.
    const following = w.db.sql.begin((tx) =>
      hooks.collectionPauseChanged(tx, { subscriptionId: s.subscriptionId!, at: w.clock.now() }),
    );
    await waitForLockWait(w.db.sql);
    closeNow();
    await closing;
    await following;
    expect(held).toEqual([]);
    expect((await caseRow(w.db.sql, s.caseId)).next_attempt_reason).not.toMatch(/^held:/);
  });

  it("ops' own pause still holds and cancels the planned attempt's job; resume brings one back", async () => {
    const s = await failedCase();
    expect(await waitingJobs(s)).toHaveLength(1);
    await w.db.sql.begin((tx) => pause(tx, w.deps, s.invoiceId));
    expect(await waitingJobs(s)).toHaveLength(0);
    expect((await caseRow(w.db.sql, s.caseId)).next_attempt_reason).toBe('paused by ops');
    const [r] = await w.db.sql.begin((tx) => resume(tx, w.deps, s.invoiceId));
    expect(r!.result.kind).toBe('planned');
    expect(await waitingJobs(s)).toHaveLength(1);
  });
});

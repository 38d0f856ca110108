import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleDeadline } from '../../src/dunning/final-action.ts';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import * as store from '../../src/dunning/store.ts';
import { parsePolicy, type FinalAction } from '../../src/dunning/policy.ts';
import { savePolicy, type DeadlineJob } from '../../src/dunning/scheduler.ts';
import {
  apiCharges,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
  type SeededCase,
} from './runner-helpers.ts';

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

async function failAndGetDeadline(s: SeededCase): Promise<DeadlineJob> {
  const hooks = createDunningHooks(w.deps);
  await w.db.sql.begin((tx) =>
    hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: true, at: w.clock.now() }),
  );
  const [job] = await w.db
    .sql`select data from pgboss.job where name = 'dunning-deadlines' and singleton_key = ${String(s.caseId)}`;
  return job!.data as DeadlineJob;
}

describe('deadlines and final actions', () => {
  it('no new card by the deadline: the subscription is cancelled at Stripe and the case is lost', async () => {
    const s = await seedFailedInvoice(w, 'expired_card');
    const job = await failAndGetDeadline(s);
    expect(job).toMatchObject({ caseId: s.caseId, kind: 'await', attemptsSeen: 1 });
    expect(await handleDeadline(w.deps, job)).toBe('done');
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c).toMatchObject({ status: 'lost', final_action: 'cancel_subscription' });
    expect(c.close_reason).toContain('no customer action in time');
    const sub = await w.deps.gateway.stripe.subscriptions.retrieve(s.subscriptionId!);
    expect(sub.status).toBe('canceled');
    // A redelivered deadline job changes nothing and calls Stripe for nothing.
    expect(await handleDeadline(w.deps, job)).toBe('stood_down');
  });

  it.each<[FinalAction, string, string, Record<string, unknown>]>([
    // Only the invoice is written off: the subscription goes on, and the invoice can still be paid.
    ['mark_uncollectible', 'uncollectible', 'past_due', { pause_collection: null }],
    // The subscription stays, but Stripe stops collecting for it (new invoices are voided).
    ['pause_collection', 'open', 'past_due', { pause_collection: { behavior: 'void', resumes_at: null } }],
    // Nothing at Stripe: the invoice stays open and the subscription past due, for the merchant to decide.
    ['leave_past_due', 'open', 'past_due', { pause_collection: null }],
  ])(
    'final action %s: applied at Stripe, recorded on the case, and done once',
    async (action, invoiceStatus, subscriptionStatus, subscription) => {
      const policy = parsePolicy({ finalAction: action });
      await savePolicy(w.db.sql, policy);
      const s = await seedFailedInvoice(w, 'expired_card');
      await w.db.sql`update dunning_cases set policy_version = ${policy.version} where id = ${s.caseId}`;
      const job = await failAndGetDeadline(s);
      expect(await handleDeadline(w.deps, job)).toBe('done');
      const c = await caseRow(w.db.sql, s.caseId);
      expect(c).toMatchObject({ status: 'lost', final_action: action, final_action_at: w.clock.now() });
      const stripe = w.deps.gateway.stripe;
      expect((await stripe.invoices.retrieve(s.invoiceId)).status).toBe(invoiceStatus);
      expect(await stripe.subscriptions.retrieve(s.subscriptionId!)).toMatchObject({
        status: subscriptionStatus,
        ...subscription,
      });
      const changes = () =>
        w.sandbox
          .events()
          .filter(
            (e) =>
              (e.request?.id ?? null) !== null &&
              [s.invoiceId, s.subscriptionId].includes((e.data.object as { id: string }).id),
          ).length;
      const before = changes();
      expect(await handleDeadline(w.deps, job)).toBe('stood_down');
      expect(changes()).toBe(before);
    },
  );

  it('a new card before the deadline: the deadline stands down and the case stays open', async () => {
    const s = await seedFailedInvoice(w, 'expired_card');
    const job = await failAndGetDeadline(s);
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
    expect(await handleDeadline(w.deps, job)).toBe('stood_down');
    expect((await caseRow(w.db.sql, s.caseId)).status).toBe('open');
    const sub = await w.deps.gateway.stripe.subscriptions.retrieve(s.subscriptionId!);
    expect(sub.status).not.toBe('canceled');
  });

  it('a card update that lands while Stripe applies the final action keeps its retry, and the case stays open for it', async () => {
    const s = await seedFailedInvoice(w, 'expired_card');
    const job = await failAndGetDeadline(s);
    const { paymentMethodId } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 1,
      expYear: 2031,
    });
    let calls = 0;
    // Every Stripe call passes the throttle first: the second one is the cancellation itself.
    const throttle = {
      waiting: () => 0,
      take: async () => {
        calls += 1;
        if (calls === 2) {
          await w.db.sql.begin((tx) =>
            createDunningHooks(w.deps).paymentMethodChanged(tx, {
              customerId: s.customerId,
              paymentMethod: paymentMethodId,
              at: w.clock.now(),
            }),
          );
        }
      },
    };
    expect(await handleDeadline({ ...w.deps, gateway: { ...w.deps.gateway, throttle } }, job)).toBe('stood_down');
    expect(calls).toBe(2);
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c).toMatchObject({ status: 'open', final_action: 'cancel_subscription' });
    const [retry] = await w.db
      .sql`select id, status, source from payment_attempts where invoice_id = ${s.invoiceId} and attempt_no = 2`;
    expect(retry).toMatchObject({ status: 'planned', source: 'card_update' });
    // Cancelling the subscription leaves its invoice open: the new card can still pay it.
    expect(await executeAttempt(w.deps, Number(retry!.id))).toBe('succeeded');
    expect((await caseRow(w.db.sql, s.caseId)).status).toBe('recovered');
  });

  it('a case that waits for the customer announces its deadline as the last chance', async () => {
    const s = await seedFailedInvoice(w, 'expired_card');
    const told: Array<{ at: Date; isLast: boolean; deadline?: boolean }> = [];
    const hooks = createDunningHooks({ ...w.deps, onAttemptPlanned: async (_tx, e) => void told.push(e) });
    await w.db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: true, at: w.clock.now() }),
    );
    const [job] = await w.db
      .sql`select start_after from pgboss.job where name = 'dunning-deadlines' and singleton_key = ${String(s.caseId)}`;
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ isLast: true, deadline: true });
    // The deadline job runs at the same instant, translated to wall time.
    expect(Math.abs(w.clock.wallTimeOf(told[0]!.at).getTime() - (job!.start_after as Date).getTime())).toBeLessThan(
      2_000,
    );
  });

  it('a closed case cancels its planned attempt', async () => {
    const s = await seedFailedInvoice(w, 'insufficient_funds');
    const hooks = createDunningHooks(w.deps);
    await w.db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: true, at: w.clock.now() }),
    );
    await w.db.sql.begin((tx) =>
      hooks.caseClosed(tx, {
        caseId: s.caseId,
        invoiceId: s.invoiceId,
        status: 'closed',
        reason: 'invoice voided',
        at: w.clock.now(),
      }),
    );
    const rows = await w.db
      .sql`select status, failure_message from payment_attempts where invoice_id = ${s.invoiceId} and attempt_no = 2`;
    expect(rows[0]).toMatchObject({ status: 'cancelled', failure_message: 'case closed: invoice voided' });
  });

  /** The deadline a skipped attempt left behind, due when the 28-day dunning window closes. */
  async function deadlineAfterSkip(s: SeededCase): Promise<DeadlineJob> {
    const jobs = await w.db
      .sql`select data, start_after from pgboss.job where name = 'dunning-deadlines' and singleton_key = ${String(s.caseId)}`;
    expect(jobs).toHaveLength(1);
    const dueInMs = (jobs[0]!.start_after as Date).getTime() - Date.now();
    expect(dueInMs).toBeGreaterThan(27 * 86_400_000);
    expect(dueInMs).toBeLessThanOrEqual(28 * 86_400_000);
    return jobs[0]!.data as DeadlineJob;
  }

  it.each([
    [
      'our copy says the invoice is uncollectible',
      (s: SeededCase) =>
        w.db.sql`update invoices set status = 'uncollectible' where id = ${s.invoiceId}`.then(() => undefined),
    ],
    [
      'Stripe says the invoice is uncollectible',
      (s: SeededCase) => w.deps.gateway.stripe.invoices.markUncollectible(s.invoiceId).then(() => undefined),
    ],
  ])(
    'a skipped attempt (%s) leaves a deadline at the end of the window, so the final action still runs',
    async (_why, block) => {
      const s = await seedFailedInvoice(w, 'generic_decline');
      const id = await planDueAttempt(w.db.sql, s, w.clock.now());
      await block(s);
      expect(await executeAttempt(w.deps, id)).toBe('skipped');
      expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
      const job = await deadlineAfterSkip(s);
      expect(job).toMatchObject({ caseId: s.caseId, kind: 'await', attemptsSeen: 2 });
      expect(job.reason).toContain('attempt #2 skipped');

      w.clock.advance(28 * 86_400_000);
      try {
        expect(await handleDeadline(w.deps, job)).toBe('done');
      } finally {
        w.clock.advance(-28 * 86_400_000);
      }
      const c = await caseRow(w.db.sql, s.caseId);
      expect(c).toMatchObject({ status: 'lost', final_action: 'cancel_subscription' });
      expect(c.close_reason).toContain('attempt #2 skipped');
    },
  );

  /** A case whose invoice Stripe does not know (a deleted draft, an invoice of another account). */
  async function caseOfMissingInvoice(): Promise<SeededCase> {
    const s = await seedFailedInvoice(w, 'generic_decline');
    const invoiceId = `in_missing_${s.caseId}`;
    const now = w.clock.now();
    await w.db
      .sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_attempt_count, stripe_created, stripe_updated_at)
                   values (${invoiceId}, ${s.customerId}, 'open', 'eur', 4900, 4900, 1, ${now}, ${now})`;
    const [c] = await w.db
      .sql`insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at)
                               values (${invoiceId}, ${s.customerId}, 'eur', 4900, ${w.policy.version}, 'smart', ${now}) returning id`;
    return { ...s, invoiceId, caseId: Number(c!.id) };
  }

  it('an invoice Stripe answers 404 for: the attempt is skipped and the case closed, never asked again', async () => {
    const s = await caseOfMissingInvoice();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('skipped');
    const [a] = await w.db.sql`select status, failure_message from payment_attempts where id = ${id}`;
    expect(a).toMatchObject({ status: 'skipped', failure_message: expect.stringContaining('not found at Stripe') });
    expect(await caseRow(w.db.sql, s.caseId)).toMatchObject({
      status: 'closed',
      close_reason: expect.stringContaining('not found at Stripe'),
    });
    const jobs = await w.db
      .sql`select 1 from pgboss.job where name = 'dunning-attempts' and (data->>'attemptId')::int = ${id}`;
    expect(jobs).toHaveLength(0);
  });

  it('a deadline on an invoice Stripe answers 404 for closes the case instead of failing forever', async () => {
    const s = await caseOfMissingInvoice();
    const job: DeadlineJob = { caseId: s.caseId, kind: 'stop', reason: 'policy exhausted', attemptsSeen: 0 };
    expect(await handleDeadline(w.deps, job)).toBe('stood_down');
    expect(await caseRow(w.db.sql, s.caseId)).toMatchObject({ status: 'closed', final_action: null });
  });

  it('a stale read saying open never moves our uncollectible copy back; paid still moves it on', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    const status = async () =>
      (await w.db.sql`select status from invoices where id = ${s.invoiceId}`)[0]!.status as string;
    await w.db.sql`update invoices set status = 'uncollectible' where id = ${s.invoiceId}`;
    await store.syncInvoiceStatus(w.db.sql, s.invoiceId, 'open', 0, 4_900, w.clock.now());
    expect(await status()).toBe('uncollectible');
    await store.syncInvoiceStatus(w.db.sql, s.invoiceId, 'paid', 4_900, 0, w.clock.now());
    expect(await status()).toBe('paid');
  });
});

describe('a pause_collection final action and a card update landing while Stripe applies it', () => {
  it('does not hold the case for our own pause: the new card is charged and the next deadline closes the case', async () => {
    const policy = parsePolicy({ finalAction: 'pause_collection' });
    await savePolicy(w.db.sql, policy);
    const s = await seedFailedInvoice(w, 'expired_card');
    await w.db.sql`update dunning_cases set policy_version = ${policy.version} where id = ${s.caseId}`;
    // A deadline run while the card update can still plan a retry (as when the planner stopped the
    // case before its window ended).
    const job = await failAndGetDeadline(s);
    const start = w.clock.now();
    // The new card declines too, so the case has to end through its deadline.
    const { paymentMethodId } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: 'generic_decline',
      expMonth: 1,
      expYear: 2031,
    });
    // The card update is applied between the deadline's checks and its close (on its second Stripe call).
    let calls = 0;
    const throttle = {
      ...w.deps.gateway.throttle,
      take: async () => {
        calls += 1;
        if (calls === 2) {
          await w.db.sql.begin((tx) =>
            createDunningHooks(w.deps).paymentMethodChanged(tx, {
              customerId: s.customerId,
              paymentMethod: paymentMethodId,
              at: w.clock.now(),
            }),
          );
        }
      },
    };
    expect(await handleDeadline({ ...w.deps, gateway: { ...w.deps.gateway, throttle } }, job)).toBe('stood_down');
    expect(await caseRow(w.db.sql, s.caseId)).toMatchObject({ status: 'open', final_action: 'pause_collection' });
    // Stripe's event for the pause we applied reaches us: it must not withdraw the customer's retry.
    await w.db.sql`update subscriptions set pause_collection_behavior = 'void' where id = ${s.subscriptionId}`;
    await w.db.sql.begin((tx) =>
      createDunningHooks(w.deps).collectionPauseChanged(tx, { subscriptionId: s.subscriptionId!, at: w.clock.now() }),
    );
    const [retry] = await w.db
      .sql`select id from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(retry).toBeDefined();
    const charged = apiCharges(w.sandbox, s.invoiceId).length;
    expect(await executeAttempt(w.deps, Number(retry!.id))).toBe('declined');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(charged + 1);
    // The case moves on with the new card's decline (another retry while its window lasts), held by
    // nothing; once the window is over, the next attempt stops it and the deadline closes it.
    w.clock.set(new Date(start.getTime() + 22 * 86_400_000));
    w.sandboxClock.set(w.clock.now());
    const [next] = await w.db
      .sql`select id from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(next).toBeDefined();
    const outcome = await executeAttempt(w.deps, Number(next!.id));
    expect(['succeeded', 'declined']).toContain(outcome);
    const deadlines = await w.db
      .sql`select data from pgboss.job where name = 'dunning-deadlines' and singleton_key = ${String(s.caseId)} and state = 'created'`;
    for (const d of deadlines) await handleDeadline(w.deps, d.data as DeadlineJob);
    // Paid by the new card, or lost at its deadline: either way closed, never open for ever.
    expect((await caseRow(w.db.sql, s.caseId)).status).toBe(outcome === 'succeeded' ? 'recovered' : 'lost');
    w.clock.set(start);
    w.sandboxClock.set(start);
  });
});

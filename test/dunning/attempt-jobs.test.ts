import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDunningHooks, replanWithLateDetails } from '../../src/dunning/hooks.ts';
import { retryNow } from '../../src/dunning/ops-actions.ts';
import { waitFor } from '../helpers/db.ts';
import {
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
  type SeededCase,
  startWorldWorkers,
} from './runner-helpers.ts';

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

/**
 * The invoice's waiting attempt jobs (queued, or queued again by pg-boss after a failure), each with
 * the attempt it runs. One at most, and it belongs to the invoice's active attempt.
 */
async function waiting(s: SeededCase) {
  return w.db.sql`
    select j.id, (j.data->>'attemptId')::int as attempt_id, a.status, a.job_id
      from pgboss.job j join payment_attempts a on a.id = (j.data->>'attemptId')::bigint
     where j.name = 'dunning-attempts' and j.singleton_key = ${s.invoiceId} and j.state in ('created', 'retry')`;
}

async function expectOneJobForActiveAttempt(s: SeededCase): Promise<number> {
  const jobs = await waiting(s);
  expect(jobs).toHaveLength(1);
  expect(jobs[0]).toMatchObject({ status: 'planned' });
  expect(jobs[0]!.job_id).toBe(jobs[0]!.id);
  return Number(jobs[0]!.attempt_id);
}

describe('one attempt job per invoice', () => {
  it('replacing a planned attempt (new card, late decline details, manual retry) cancels its job in the same transaction', async () => {
    const s = await seedFailedInvoice(w, 'insufficient_funds');
    const hooks = createDunningHooks(w.deps);
    await w.db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: true, at: w.clock.now() }),
    );
    const first = await expectOneJobForActiveAttempt(s);

    const { paymentMethodId } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 1,
      expYear: 2031,
    });
    await w.db.sql.begin((tx) =>
      hooks.paymentMethodChanged(tx, { customerId: s.customerId, paymentMethod: paymentMethodId, at: w.clock.now() }),
    );
    const second = await expectOneJobForActiveAttempt(s);
    expect(second).not.toBe(first);

    // Late details bar the new card: its planned attempt is replaced by a wait, and its job goes.
    await w.db
      .sql`update payment_attempts set payment_method = ${paymentMethodId}, decline_code = 'stolen_card' where invoice_id = ${s.invoiceId} and attempt_no = 1`;
    await w.db.sql.begin((tx) => replanWithLateDetails(tx, w.deps, s.caseId));
    expect(await waiting(s)).toHaveLength(0);

    const manual = await w.db.sql.begin((tx) => retryNow(tx, w.deps, s.invoiceId));
    expect(await expectOneJobForActiveAttempt(s)).toBe(manual.id);
    const again = await w.db.sql.begin((tx) => retryNow(tx, w.deps, s.invoiceId));
    expect(await expectOneJobForActiveAttempt(s)).toBe(again.id);

    await w.db.sql.begin((tx) =>
      hooks.caseClosed(tx, {
        caseId: s.caseId,
        invoiceId: s.invoiceId,
        status: 'closed',
        reason: 'invoice voided',
        at: w.clock.now(),
      }),
    );
    expect(await waiting(s)).toHaveLength(0);
    const cancelled = await w.db
      .sql`select state from pgboss.job where name = 'dunning-attempts' and singleton_key = ${s.invoiceId}`;
    expect(cancelled.map((j) => j.state).sort()).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
  });

  it('a request repeated after a 429, then the next attempt after the decline: the worker leaves one waiting job', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    const manual = await w.db.sql.begin((tx) => retryNow(tx, w.deps, s.invoiceId));
    w.sandbox.inject({ kind: 'http_429', route: 'POST /v1/invoices/:id/pay', objectId: s.invoiceId });
    const stop = await startWorldWorkers(w);
    try {
      await waitFor('the manual attempt declined after its repeated request', async () => {
        const [a] = await w.db.sql`select status, request_tries from payment_attempts where id = ${manual.id}`;
        return a?.status === 'declined' ? a : null;
      });
    } finally {
      await stop();
    }
    const [a] = await w.db.sql`select request_tries from payment_attempts where id = ${manual.id}`;
    expect(a!.request_tries).toBe(1);
    const next = await expectOneJobForActiveAttempt(s);
    expect(next).not.toBe(manual.id);
    const states = await w.db
      .sql`select state, count(*)::int as n from pgboss.job where name = 'dunning-attempts' and singleton_key = ${s.invoiceId} group by state order by state::text`;
    expect(states).toEqual([
      { state: 'completed', n: 2 },
      { state: 'created', n: 1 },
    ]);
  });
});

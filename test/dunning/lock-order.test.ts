import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processEvent } from '../../src/events/processor.ts';
import { insertEvent } from '../../src/events/store.ts';
import { executeAttempt, type RunnerDeps } from '../../src/dunning/runner.ts';
import { retrieveInvoiceCharges } from '../../src/stripe/charge.ts';
import { waitFor } from '../helpers/db.ts';
import { recordingHooks, testDeps } from '../events/helpers.ts';
import { attemptRow, planDueAttempt, seedFailedInvoice, startWorld, type RunnerWorld } from './runner-helpers.ts';

/**
 * The runner and the event processor write the same rows of one invoice: the runner records its
 * charge's decline (the attempt row, then the case's decline codes), and the processor applies the
 * `invoice.payment_failed` that very charge raised (the case, then the invoice's attempt rows).
 * invoice.payment_failed: "Occurs whenever an invoice payment attempt fails, due to either a
 * declined payment, including soft decline, or to the lack of a stored payment method." So the
 * event of our own charge can apply while the runner is still writing that charge's outcome; the
 * demo logged `deadlock detected` (40P01) for exactly that pair. Both transactions now take the
 * customer's lock first, so whichever comes second waits for the other to commit.
 *
 * The two are driven step by step: a third transaction holds the attempt row so that the runner
 * queues for it first, the processor behind it; each step waits for the blocked backend in
 * pg_stat_activity, never for time.
 */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

/** Backends of this database waiting for a lock, other than the one asking. */
async function lockWaiters(): Promise<number> {
  const [row] = await w.db.sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
     where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`;
  return row!.n;
}

async function waitForLockWaiters(n: number): Promise<void> {
  await waitFor(`${n} backend(s) waiting for a lock`, async () => (await lockWaiters()) >= n);
}

describe('runner and event processor on one invoice', () => {
  it("the runner recording a decline and the processor applying that charge's invoice.payment_failed: both commit, no deadlock", async () => {
    const s = await seedFailedInvoice(w, 'insufficient_funds');
    // A new card that declines its first charge (the seeded one may heal by the retry).
    await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: 'insufficient_funds',
      expMonth: 1,
      expYear: 2031,
    });
    const attemptId = await planDueAttempt(w.db.sql, s, w.clock.now());
    const eventsBefore = w.sandbox.events().length;

    // The runner charges (the card declines) and stops before it writes the outcome.
    let charged!: () => void;
    const reached = new Promise<void>((resolve) => (charged = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const runner: RunnerDeps = {
      ...w.deps,
      afterCharge: () => {
        charged();
        return gate;
      },
    };
    const ran = executeAttempt(runner, attemptId);
    await reached;
    const failure = w.sandbox
      .events()
      .slice(eventsBefore)
      .find((e) => e.type === 'invoice.payment_failed' && (e.data.object as { id?: string }).id === s.invoiceId);
    expect(failure, 'the sandbox raised invoice.payment_failed for our charge').toBeDefined();
    await insertEvent(w.db.sql, failure!);

    // A third transaction holds the attempt row: the runner queues for it first.
    const holder = await w.db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select id from payment_attempts where id = ${attemptId} for update`;
      release();
      await waitForLockWaiters(1);

      // The processor applies the event with the invoice's charges read from Stripe, as the worker does.
      const processorDeps = {
        ...testDeps(recordingHooks().hooks),
        fetchInvoiceCharges: (id: string) => retrieveInvoiceCharges(w.deps.gateway, id),
      };
      const applied = processEvent(w.db.sql, processorDeps, failure!.id);
      // Swallowed here, asserted below: an early rejection must not go unhandled meanwhile.
      applied.catch(() => undefined);
      await waitForLockWaiters(2);

      await holder`commit`;
      // Before the fix: the runner got the attempt row and waited for the case the processor had
      // locked, which waited for the attempt row: 40P01, and the runner handed its attempt back.
      await expect(applied).resolves.toBe('processed');
      expect(await ran).toBe('declined');
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
    }

    const attempt = await attemptRow(w.db.sql, attemptId);
    expect(attempt).toMatchObject({ status: 'declined', failure_event_id: failure!.id });
    expect(attempt.charge_id).not.toBeNull();
    // One row per charge: the event's charge is the runner's row, not a second one.
    const rows = await w.db
      .sql`select charge_id from payment_attempts where invoice_id = ${s.invoiceId} and charge_id is not null`;
    expect(new Set(rows.map((r) => r.charge_id)).size).toBe(rows.length);
    const [ev] = await w.db.sql`select status from stripe_events where id = ${failure!.id}`;
    expect(ev!.status).toBe('processed');
  });
});

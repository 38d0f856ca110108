import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processEvent } from '../../src/events/processor.ts';
import { insertEvent } from '../../src/events/store.ts';
import { executeAttempt, type RunnerDeps, type RunResult } from '../../src/dunning/runner.ts';
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

/** Stops the runner at a seam until the test opens it; `reached` resolves when it got there. */
function gate() {
  let arrive!: () => void;
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return {
    reached,
    open,
    pass: () => {
      arrive();
      return opened;
    },
  };
}

function failureEventOf(invoiceId: string, since: number) {
  const failure = w.sandbox
    .events()
    .slice(since)
    .find((e) => e.type === 'invoice.payment_failed' && (e.data.object as { id?: string }).id === invoiceId);
  expect(failure, 'the sandbox raised invoice.payment_failed').toBeDefined();
  return failure!;
}

/**
 * The interleaving of the demo's deadlock. The runner is stopped at a seam after its claim; a
 * third transaction holds the attempt row; the runner goes on into its outcome transaction and
 * queues for that row first; the processor applies `eventId` and queues behind it (before the fix
 * it locked the case first). When the third transaction commits, the runner gets the attempt row
 * and goes for the case: before the fix the processor held the case and waited for the attempt
 * row, and Postgres broke the cycle with 40P01.
 */
async function interleave(attemptId: number, seam: ReturnType<typeof gate>, eventId: string): Promise<void> {
  await seam.reached;
  const holder = await w.db.sql.reserve();
  try {
    await holder`begin`;
    await holder`select id from payment_attempts where id = ${attemptId} for update`;
    seam.open();
    await waitForLockWaiters(1);
    // The processor applies the event with the invoice's charges read from Stripe, as the worker does.
    const processorDeps = {
      ...testDeps(recordingHooks().hooks),
      fetchInvoiceCharges: (id: string) => retrieveInvoiceCharges(w.deps.gateway, id),
    };
    const applied = processEvent(w.db.sql, processorDeps, eventId);
    // Swallowed here, asserted below: an early rejection must not go unhandled meanwhile.
    applied.catch(() => undefined);
    await waitForLockWaiters(2);
    await holder`commit`;
    await expect(applied).resolves.toBe('processed');
  } finally {
    await holder`rollback`.catch(() => undefined);
    holder.release();
  }
  const [ev] = await w.db.sql`select status from stripe_events where id = ${eventId}`;
  expect(ev!.status).toBe('processed');
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
    const seam = gate();
    const runner: RunnerDeps = { ...w.deps, afterCharge: () => seam.pass() };
    const ran = executeAttempt(runner, attemptId);
    ran.catch(() => undefined);
    await seam.reached;
    const failure = failureEventOf(s.invoiceId, eventsBefore);
    await insertEvent(w.db.sql, failure);

    // Before the fix the runner's side ended in 40P01 too when it was the one chosen: handed back.
    await interleave(attemptId, seam, failure.id);
    expect(await ran).toBe<RunResult>('declined');

    const attempt = await attemptRow(w.db.sql, attemptId);
    expect(attempt).toMatchObject({ status: 'declined', failure_event_id: failure.id });
    expect(attempt.charge_id).not.toBeNull();
    // One row per charge: the event's charge is the runner's row, not a second one.
    const rows = await w.db
      .sql`select charge_id from payment_attempts where invoice_id = ${s.invoiceId} and charge_id is not null`;
    expect(new Set(rows.map((r) => r.charge_id)).size).toBe(rows.length);
  });

  it("the runner skipping an attempt (attempt row, then the case's next attempt) while the processor applies a failure of the customer's own try: both commit", async () => {
    const s = await seedFailedInvoice(w, 'insufficient_funds');
    // The customer tries on the hosted invoice page and fails: Stripe sends invoice.payment_failed.
    const eventsBefore = w.sandbox.events().length;
    await w.sandbox.failedTry(s.invoiceId, 'hosted');
    const failure = failureEventOf(s.invoiceId, eventsBefore);
    await insertEvent(w.db.sql, failure);
    // An attempt whose earlier request has an unknown outcome, on a case ops paused since: the
    // runner reads the invoice (open: that request did not take the money), then skips it.
    const attemptId = await planDueAttempt(w.db.sql, s, w.clock.now());
    await w.db.sql`update payment_attempts set status = 'unknown' where id = ${attemptId}`;
    await w.db.sql`update dunning_cases set paused = true where id = ${s.caseId}`;

    // The runner stops at its one Stripe request, the invoice read, after its claim.
    const seam = gate();
    const runner: RunnerDeps = {
      ...w.deps,
      gateway: { ...w.deps.gateway, throttle: { take: () => seam.pass(), waiting: () => 0 } },
    };
    const ran = executeAttempt(runner, attemptId);
    ran.catch(() => undefined);

    await interleave(attemptId, seam, failure.id);
    expect(await ran).toBe<RunResult>('skipped');
    expect(await attemptRow(w.db.sql, attemptId)).toMatchObject({ status: 'skipped' });
    // The customer's charge is on the ledger as Stripe's, once.
    const [tried] = await w.db
      .sql`select count(*)::int as n from payment_attempts where invoice_id = ${s.invoiceId} and source = 'stripe' and failure_event_id = ${failure.id}`;
    expect(tried!.n).toBe(1);
  });
});

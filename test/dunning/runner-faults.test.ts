import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryNow } from '../../src/dunning/ops-actions.ts';
import { executeAttempt, type RunnerDeps } from '../../src/dunning/runner.ts';
import { createLogger } from '../../src/log.ts';
import {
  apiCharges,
  attemptRow,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
} from './runner-helpers.ts';

const PAY = 'POST /v1/invoices/:id/pay';
let w: RunnerWorld;
beforeAll(async () => {
  // A short SDK timeout so a hanging Stripe is an unknown outcome within the test.
  w = await startWorld({ stripeTimeoutMs: 300 });
});
afterAll(async () => {
  await w?.close();
});

/** A card the sandbox approves on the retry: the customer's default becomes a working card. */
async function payableCase() {
  const s = await seedFailedInvoice(w, 'generic_decline');
  const { paymentMethodId } = await w.sandbox.updateCard(s.customerId, {
    brand: 'visa',
    failure: null,
    expMonth: 1,
    expYear: 2031,
  });
  return { ...s, workingCard: paymentMethodId };
}

function captureLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('info', {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { lines, log };
}

async function pendingJobs(attemptId: number): Promise<number> {
  const rows = await w.db
    .sql`select 1 from pgboss.job where name = 'dunning-attempts' and state = 'created' and (data->>'attemptId')::int = ${attemptId}`;
  return rows.length;
}

describe('runner under Stripe faults', () => {
  it('429: not sent, no dunning attempt used; repeated with the same key, charged once', async () => {
    const s = await payableCase();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    w.sandbox.inject({ kind: 'http_429', route: PAY, objectId: s.invoiceId });
    expect(await executeAttempt(w.deps, id)).toBe('not_sent');
    const a = await attemptRow(w.db.sql, id);
    expect(a).toMatchObject({ status: 'planned', request_tries: 1, attempt_no: 2 });
    expect(await pendingJobs(id)).toBe(1);
    expect(await executeAttempt(w.deps, id)).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
  });

  it('500 before execution: unknown, reconciled by reading the invoice, then charged once', async () => {
    const s = await payableCase();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    w.sandbox.inject({ kind: 'http_500', route: PAY, objectId: s.invoiceId });
    expect(await executeAttempt(w.deps, id)).toBe('unknown');
    expect((await attemptRow(w.db.sql, id)).status).toBe('unknown');
    expect(await executeAttempt(w.deps, id)).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
  });

  it('timeout (Stripe hangs): unknown; a new charge is never planned while it is unknown', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    w.sandbox.inject({ kind: 'hang', route: PAY, objectId: s.invoiceId });
    expect(await executeAttempt(w.deps, id)).toBe('unknown');
    const others = await w.db
      .sql`select 1 from payment_attempts where invoice_id = ${s.invoiceId} and id <> ${id} and status = 'planned'`;
    expect(others).toHaveLength(0);
    // Repeated with the same key, the decline is recorded and only then the next attempt planned.
    expect(await executeAttempt(w.deps, id)).toBe('declined');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    const planned = await w.db
      .sql`select attempt_no from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(planned.map((r) => r.attempt_no)).toEqual([3]);
  });

  it('Stripe charged but the answer was lost (execute then 500): exactly one charge after the rerun', async () => {
    const s = await payableCase();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    w.sandbox.inject({ kind: 'execute_then_500', route: PAY, objectId: s.invoiceId });
    expect(await executeAttempt(w.deps, id)).toBe('unknown');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    // Stripe already says paid: the same key replays our success instead of refusing.
    expect(await executeAttempt(w.deps, id)).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    expect((await caseRow(w.db.sql, s.caseId)).recovery_path).toBe('scheduled_retry');
  });

  it('a worker killed between the charge and the write: the next claim waits for the lease, then reconciles; one charge', async () => {
    const s = await payableCase();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    // The default lease (a minute): the test ends it by hand below. A 200 ms lease ran out on a
    // busy machine before the second worker tried, which then charged-and-reconciled too early.
    // A killed worker runs nothing more, not even a catch: this one stops for good after the charge.
    let charged!: () => void;
    const reached = new Promise<void>((resolve) => (charged = resolve));
    const killed: RunnerDeps = {
      ...w.deps,
      afterCharge: () => {
        charged();
        return new Promise<void>(() => {});
      },
    };
    void executeAttempt(killed, id);
    await reached;
    expect((await attemptRow(w.db.sql, id)).status).toBe('in_flight');
    // Lease still held: another worker must not touch it, but leaves a follow-up job.
    expect(await executeAttempt(w.deps, id)).toBe('not_claimed');
    expect(await pendingJobs(id)).toBeGreaterThanOrEqual(1);
    await w.db.sql`update payment_attempts set lease_until = now() - interval '1 second' where id = ${id}`;
    expect(await executeAttempt(w.deps, id)).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
  });

  it('an error of ours before the charge (a statement, a hook) hands the attempt back as planned with a job; charged once later', async () => {
    const s = await payableCase();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    const { lines, log } = captureLog();
    // The check before the charge reads the case's policy: here that read fails, as a statement
    // under load or a hook's bug would. Left in flight, the attempt would block its invoice until
    // its lease ran out, and the job's own retry would find the lease still held.
    const failing: RunnerDeps = {
      ...w.deps,
      log,
      policies: {
        get: () => Promise.reject(new Error('simulated statement failure')),
      },
    };
    expect(await executeAttempt(failing, id)).toBe('not_sent');
    const a = await attemptRow(w.db.sql, id);
    expect(a).toMatchObject({ status: 'planned', request_tries: 1, lease_until: null, lease_token: null });
    expect(a.failure_message).toContain('simulated statement failure');
    expect(await pendingJobs(id)).toBe(1);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([
      'attempt failed inside the runner: handed back to run again soon',
    ]);
    expect(await executeAttempt(w.deps, id)).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
  });

  it('an error of ours after the charge was sent hands the attempt back as unknown; the rerun reconciles with the same key; one charge', async () => {
    const s = await payableCase();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    const failing: RunnerDeps = {
      ...w.deps,
      afterCharge: () => Promise.reject(new Error('simulated failure while recording')),
    };
    expect(await executeAttempt(failing, id)).toBe('unknown');
    expect(await attemptRow(w.db.sql, id)).toMatchObject({ status: 'unknown', request_tries: 1, lease_until: null });
    expect(await pendingJobs(id)).toBe(1);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    // Stripe says paid: the same key replays our success, recorded as ours.
    expect(await executeAttempt(w.deps, id)).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    expect((await caseRow(w.db.sql, s.caseId)).recovery_path).toBe('scheduled_retry');
  });

  it('two workers racing on the same attempt: one claim, one charge', async () => {
    const s = await payableCase();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    const results = await Promise.all([
      executeAttempt(w.deps, id),
      executeAttempt(w.deps, id),
      executeAttempt(w.deps, id),
    ]);
    expect(results.filter((r) => r === 'succeeded')).toHaveLength(1);
    expect(results.filter((r) => r === 'not_claimed')).toHaveLength(2);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
  });

  it('paid elsewhere while the outcome was unknown: the same key is refused, the attempt is skipped, no charge of ours', async () => {
    const s = await payableCase();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    w.sandbox.inject({ kind: 'http_500', route: PAY, objectId: s.invoiceId });
    expect(await executeAttempt(w.deps, id)).toBe('unknown');
    await w.sandbox.payInvoiceOutOfBand(s.invoiceId);
    expect(await executeAttempt(w.deps, id)).toBe('skipped');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
  });

  it('same key, other parameters (400 idempotency_error): not repeated, left unresolved for ops with an error log', async () => {
    const s = await payableCase();
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    const key = `dunning:${s.invoiceId}:2`;
    // Something else used the attempt's key first, with other parameters, in a request that ran. (One
    // refused in validation would not count: "Results are only saved if an API endpoint started
    // executing. If incoming parameters failed validation, ... no idempotent result is saved".)
    await w.deps.gateway.stripe.invoices.update(s.invoiceId, { metadata: { other: 'tool' } }, { idempotencyKey: key });
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('info', {
      write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    });
    expect(await executeAttempt({ ...w.deps, log }, id)).toBe('needs_ops');
    const a = await attemptRow(w.db.sql, id);
    expect(a).toMatchObject({ status: 'unknown', request_tries: 1, lease_until: null });
    expect(a.failure_message).toMatch(/^needs ops: idempotency key .* used before with other parameters/);
    expect(await pendingJobs(id)).toBe(0);
    expect((await caseRow(w.db.sql, s.caseId)).next_attempt_reason).toContain('needs ops');
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([
      'idempotency key reused with other parameters: attempt left unresolved for ops',
    ]);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);

    // Ops: a plain manual retry is refused and says how to go on; once they resolve it, one charge
    // (on the working card, as the customer.updated event would have recorded it).
    await w.db.sql`update customers set default_payment_method = ${s.workingCard} where id = ${s.customerId}`;
    await expect(w.db.sql.begin((tx) => retryNow(tx, w.deps, s.invoiceId))).rejects.toThrow(
      /attempt #2 is unknown.*--resolve-unknown/,
    );
    const manual = await w.db.sql.begin((tx) => retryNow(tx, w.deps, s.invoiceId, { resolveUnknown: true }));
    expect(await attemptRow(w.db.sql, id)).toMatchObject({
      status: 'skipped',
      failure_message: expect.stringMatching(/^resolved by ops as not charged; was: needs ops/),
    });
    expect(await executeAttempt(w.deps, manual.id)).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    expect((await caseRow(w.db.sql, s.caseId)).status).toBe('recovered');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resendOrphanedAttempts } from '../../src/dunning/orphans.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import { scheduleAttempt } from '../../src/dunning/scheduler.ts';
import * as store from '../../src/dunning/store.ts';
import { attemptRow, seedFailedInvoice, startWorld, type RunnerWorld } from './runner-helpers.ts';

/** An attempt whose pg-boss job is gone would block its invoice for ever: the sweep gives it a new job. */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

async function liveJobs(attemptId: number): Promise<string[]> {
  const rows = await w.db.sql`
    select id from pgboss.job where name = 'dunning-attempts' and state < 'completed' and data->>'attemptId' = ${String(attemptId)}`;
  return rows.map((r) => String(r.id));
}

describe('attempts whose job is gone', () => {
  it('get a new job, and only they: a live job or an attempt parked for ops is left alone', async () => {
    const s = await seedFailedInvoice(w, 'insufficient_funds');
    const caseRow = (await store.caseById(w.db.sql, s.caseId))!;
    const attempt = await w.db.sql.begin((tx) =>
      scheduleAttempt(tx, w.deps, caseRow, {
        at: w.clock.now(),
        reason: 'test',
        source: 'scheduled',
        paymentMethod: s.paymentMethod,
        isLast: false,
      }),
    );
    expect(await liveJobs(attempt!.id)).toHaveLength(1);
    // With its job live, nothing to do.
    expect(await resendOrphanedAttempts(w.db.sql, w.deps, 0)).toEqual([]);

    // The job is removed by hand: the attempt stays planned, and nothing would ever run it.
    await w.db
      .sql`delete from pgboss.job where name = 'dunning-attempts' and data->>'attemptId' = ${String(attempt!.id)}`;
    // A parked attempt of another invoice (needs ops, no job on purpose) stays as it is.
    const other = await seedFailedInvoice(w, 'insufficient_funds');
    await w.db.sql`
      insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, failure_message, idempotency_key)
      values (${other.caseId}, ${other.invoiceId}, 2, 'scheduled', 'unknown', 'needs ops: idempotency key reused', ${`dunning:${other.invoiceId}:2`})`;

    expect(await resendOrphanedAttempts(w.db.sql, w.deps, 0)).toEqual([
      { attemptId: attempt!.id, invoiceId: s.invoiceId },
    ]);
    expect(await liveJobs(attempt!.id)).toHaveLength(1);
    // The new job runs the attempt as the old one would have.
    expect(await executeAttempt(w.deps, attempt!.id)).not.toBe('not_claimed');
    expect((await attemptRow(w.db.sql, attempt!.id)).status).not.toBe('planned');
  });
});

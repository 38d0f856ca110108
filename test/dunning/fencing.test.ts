import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as store from '../../src/dunning/store.ts';
import { attemptRow, planDueAttempt, seedFailedInvoice, startWorld, type RunnerWorld } from './runner-helpers.ts';

/**
 * Fencing after a lease takeover: a worker that stalled past its lease (GC pause, a slow Stripe
 * answer) must not overwrite the result written by the worker that took the attempt over.
 */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

describe('a stalled worker after a lease takeover', () => {
  it('cannot finish, release or park the attempt the next worker took over and settled', async () => {
    const s = await seedFailedInvoice(w, 'insufficient_funds');
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    const first = await store.claimAttempt(w.db.sql, id, w.clock.now(), 60_000);
    expect(first).not.toBeNull();
    // Its lease runs out (it stalled): another worker takes the attempt over and records success.
    await w.db.sql`update payment_attempts set lease_until = clock_timestamp() - interval '1 second' where id = ${id}`;
    const second = await store.claimAttempt(w.db.sql, id, w.clock.now(), 60_000);
    expect(second?.previous).toBe('in_flight');
    expect(second!.attempt.leaseToken).not.toBe(first!.attempt.leaseToken);
    expect(
      await store.finishAttempt(
        w.db.sql,
        id,
        { status: 'succeeded', finishedAt: w.clock.now() },
        { leaseToken: second!.attempt.leaseToken },
      ),
    ).toBe(true);

    // The stalled worker wakes up with its old claim: every write it tries is refused.
    const stale = { leaseToken: first!.attempt.leaseToken };
    expect(await store.finishAttempt(w.db.sql, id, { status: 'skipped', finishedAt: w.clock.now() }, stale)).toBe(
      false,
    );
    expect(await store.releaseAttempt(w.db.sql, id, 'unknown', w.clock.now(), 'timeout', stale)).toBe(false);
    expect(await store.parkAttempt(w.db.sql, id, 'needs ops', stale)).toBe(false);
    expect(await attemptRow(w.db.sql, id)).toMatchObject({ status: 'succeeded', request_tries: 0 });
  });
});

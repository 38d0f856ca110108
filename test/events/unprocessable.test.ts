import { afterAll, beforeAll, expect, test } from 'vitest';
import { EventRetryDue, processWithTries } from '../../src/events/processor.ts';
import { createLogger } from '../../src/log.ts';
import { insertEvent, listEvents } from '../../src/events/store.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { event, invoice } from '../fixtures/events/stripe-objects.ts';
import { caseOf, recordingHooks, testDeps } from './helpers.ts';

/**
 * A failed invoice that is no debt to collect (a negative amount due) or is in a currency that does
 * not exist opens no case and plans no retry: the event is parked as failed at once, with the
 * reason, and `dunning events --failed` lists it. Stripe: amount_due is "Final amount due at this
 * time for this invoice", and currency is a "Three-letter ISO currency code, in lowercase"
 * (https://docs.stripe.com/api/invoices/object).
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

test.each([
  [
    'a negative amount_due',
    { amount_due: -500, amount_remaining: -500 },
    /amount_due -500 is not an amount to collect/,
  ],
  ['an unknown currency', { currency: 'zzq' }, /currency "zzq" is not an ISO 4217 currency/],
])('%s: parked with the reason on the first try, no case opened', async (_, patch, reason) => {
  const id = `in_unproc_${String(Object.keys(patch)[0])}`;
  const ev = event('invoice.payment_failed', invoice({ id, customer: 'cus_unproc', ...patch }));
  await insertEvent(db.sql, ev);
  const { hooks, calls } = recordingHooks();
  expect(await processWithTries(db.sql, testDeps(hooks), ev.id, 8)).toBe('done');
  expect(await caseOf(db.sql, id)).toBeNull();
  expect(calls).toEqual([]);
  const failed = await listEvents(db.sql, { status: 'failed', limit: 10 });
  const parked = failed.find((e) => e.id === ev.id);
  expect(parked?.tries).toBe(1);
  expect(parked?.lastError).toMatch(reason);
});

test('a deadlock the retry will repeat is a warning; on the last try it is an error', async () => {
  const ev = event('invoice.payment_failed', invoice({ id: 'in_deadlock', customer: 'cus_deadlock' }));
  await insertEvent(db.sql, ev);
  const lines: Array<{ level: number; msg: string }> = [];
  const deps = {
    ...testDeps(recordingHooks().hooks),
    log: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) }),
  };
  // What Postgres raises when it breaks a lock cycle: SQLSTATE 40P01, deadlock_detected.
  const deadlock = () => Promise.reject(Object.assign(new Error('deadlock detected'), { code: '40P01' }));
  const handlers = { 'invoice.payment_failed': deadlock };
  await expect(processWithTries(db.sql, deps, ev.id, 2, handlers)).rejects.toBeInstanceOf(EventRetryDue);
  expect(await processWithTries(db.sql, deps, ev.id, 2, handlers)).toBe('done');
  expect(lines.map((l) => [l.level, l.msg])).toEqual([
    [40, 'event failed; will retry'],
    [50, 'event parked as failed'],
  ]);
});

import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { replayEvent } from '../../src/commands/events.ts';
import type { EventHandler } from '../../src/events/context.ts';
import { HANDLERS, startEventWorker } from '../../src/events/processor.ts';
import { storeEvent } from '../../src/http/webhook.ts';
import { storeEvents } from '../../src/http/event-writer.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { createTestDatabase, jobsNaming, waitFor, type TestDatabase } from '../helpers/db.ts';
import { event, invoice } from '../fixtures/events/stripe-objects.ts';
import { attemptsOf, caseOf, recordingHooks, testDeps } from './helpers.ts';

/** Not the queue's own retry limit: an event's tries are the processor's to count. */
const MAX_TRIES = 4;
let db: TestDatabase;
let boss: PgBoss;
/** How the test handler behaves for each invoice id: throw this many more times, then apply. */
const failuresLeft = new Map<string, number>();

const flaky: EventHandler = async (ctx) => {
  const id = (ctx.event.data.object as { id: string }).id;
  const left = failuresLeft.get(id) ?? 0;
  if (left > 0) {
    failuresLeft.set(id, left - 1);
    throw new Error(`handler exploded for ${id}`);
  }
  return HANDLERS['invoice.payment_failed']!(ctx);
};

beforeAll(async () => {
  db = await createTestDatabase();
  const log = createLogger('silent');
  boss = await startQueue(db.url, log);
  // Production backs off for minutes; here each retry may run at once.
  await startEventWorker(boss, db.sql, testDeps(recordingHooks().hooks), {
    maxTries: MAX_TRIES,
    concurrency: 2,
    retryDelaySeconds: 0,
    handlers: { ...HANDLERS, 'invoice.payment_failed': flaky },
  });
});
afterAll(async () => {
  await boss?.stop({ graceful: false, close: true });
  await db?.drop();
});

const row = async (id: string) =>
  (await db.sql`select status, tries, last_error from stripe_events where id = ${id}`)[0];

test('events of one batch keep their own tries: one failing for good does not take its neighbours with it', async () => {
  // Stored together, so one job names all three.
  const evs = ['in_wb1', 'in_wb2', 'in_wb3'].map((id, i) =>
    event('invoice.payment_failed', invoice({ id, customer: `cus_wb${i}` })),
  );
  failuresLeft.set('in_wb1', 99); // a handler bug: fails every time
  failuresLeft.set('in_wb2', 2); // fails twice, then applies
  const items = evs.map((ev) => ({ event: ev, raw: JSON.stringify(ev) }));
  expect((await storeEvents(db.sql, boss, items)).size).toBe(3);
  await waitFor(
    'all three settled',
    async () => {
      const rows = await Promise.all(evs.map((ev) => row(ev.id)));
      return rows.every((r) => r?.status === 'processed' || r?.status === 'failed');
    },
    15_000,
  );
  expect(await row(evs[0]!.id)).toMatchObject({ status: 'failed', tries: MAX_TRIES });
  expect(await row(evs[1]!.id)).toMatchObject({ status: 'processed', tries: 3 });
  expect(await row(evs[2]!.id)).toMatchObject({ status: 'processed', tries: 1 });
  // The retries went into jobs of their own, naming only the events that failed.
  const retryJobs = await db.sql<{ ids: string[] }[]>`select data->'eventIds' as ids from pgboss.job
                                                       where name = 'stripe-events' and data->'eventIds' ? ${evs[0]!.id}`;
  expect(retryJobs.length).toBe(MAX_TRIES);
  expect(retryJobs.slice(1).every((j) => !j.ids.includes(evs[2]!.id))).toBe(true);
});

test('a handler that throws once is retried by the queue and the event applies once', async () => {
  failuresLeft.set('in_w1', 1);
  const ev = event('invoice.payment_failed', invoice({ id: 'in_w1', customer: 'cus_w1' }));
  expect(await storeEvent(db.sql, boss, ev)).toBe(true);
  await waitFor('event processed', async () => (await row(ev.id))?.status === 'processed', 15_000);
  expect(await row(ev.id)).toMatchObject({ status: 'processed', tries: 2, last_error: null });
  expect(await attemptsOf(db.sql, 'in_w1')).toHaveLength(1);
});

test('a handler that keeps throwing is parked as failed with its error, and a replay applies it', async () => {
  failuresLeft.set('in_w2', 99);
  const ev = event('invoice.payment_failed', invoice({ id: 'in_w2', customer: 'cus_w2' }));
  await storeEvent(db.sql, boss, ev);
  await waitFor('event parked', async () => (await row(ev.id))?.status === 'failed', 15_000);
  expect(await row(ev.id)).toMatchObject({
    status: 'failed',
    tries: MAX_TRIES,
    last_error: 'handler exploded for in_w2',
  });
  expect(await caseOf(db.sql, 'in_w2')).toBeNull();
  // Parked means parked: no further job is pending for it.
  expect(await jobsNaming(db.sql, ev.id, ['created', 'retry', 'active'])).toBe(0);

  failuresLeft.set('in_w2', 0);
  expect(await replayEvent(db.sql, boss, ev.id)).toBe('reset');
  await waitFor('replayed event processed', async () => (await row(ev.id))?.status === 'processed', 15_000);
  expect(await row(ev.id)).toMatchObject({ status: 'processed', tries: 1 });
  expect(await caseOf(db.sql, 'in_w2')).toMatchObject({ status: 'open' });
  expect(await replayEvent(db.sql, boss, 'evt_missing')).toBe('missing');
});

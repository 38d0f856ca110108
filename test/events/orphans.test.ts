import { Writable } from 'node:stream';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startOrphanSweep } from '../../src/events/processor.ts';
import { insertEvent, parkOrphans } from '../../src/events/store.ts';
import { storeEvent } from '../../src/http/webhook.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { event, invoice } from '../fixtures/events/stripe-objects.ts';

let db: TestDatabase;
let boss: PgBoss;
beforeAll(async () => {
  db = await createTestDatabase();
  boss = await startQueue(db.url, createLogger('silent'));
});
afterAll(async () => {
  await boss?.stop({ graceful: false, close: true });
  await db?.drop();
});

const make = (id: string) => event('invoice.payment_failed', invoice({ id: `in_${id}`, customer: `cus_${id}` }));
const age = (id: string, minutes: number) =>
  db.sql`update stripe_events set received_at = now() - make_interval(mins => ${minutes}) where id = ${id}`;
const status = async (id: string) => (await db.sql`select status, last_error from stripe_events where id = ${id}`)[0];

test('a pending event whose job is gone is parked as failed; one with a live job, a fresh one, or a finished one is left alone', async () => {
  const orphan = make('o1'); // stored without a job: as if its job ended without applying it
  const queued = make('o2'); // stored with its job, still waiting in the queue
  const fresh = make('o3');
  const done = make('o4');
  await insertEvent(db.sql, orphan);
  expect(await storeEvent(db.sql, boss, queued)).toBe(true);
  await insertEvent(db.sql, fresh);
  await insertEvent(db.sql, done);
  await db.sql`update stripe_events set status = 'processed' where id = ${done.id}`;
  for (const id of [orphan.id, queued.id, done.id]) await age(id, 60);

  expect(await parkOrphans(db.sql, 15 * 60)).toEqual([orphan.id]);
  expect(await status(orphan.id)).toMatchObject({
    status: 'failed',
    last_error: expect.stringMatching(/job ended without applying it/),
  });
  expect((await status(queued.id))!.status).toBe('pending');
  expect((await status(fresh.id))!.status).toBe('pending');
  expect((await status(done.id))!.status).toBe('processed');

  // The job of the queued one fails for good (pg-boss out of tries): now it is an orphan too.
  await db.sql`update pgboss.job set state = 'failed' where name = 'stripe-events' and data->'eventIds' ? ${queued.id}`;
  expect(await parkOrphans(db.sql, 15 * 60)).toEqual([queued.id]);
});

test('the sweep runs on its own and tells ops which event it parked', async () => {
  const lost = make('o5');
  await insertEvent(db.sql, lost);
  await age(lost.id, 60);
  const lines: string[] = [];
  const log = createLogger(
    'info',
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  const stop = startOrphanSweep(db.sql, log, { everyMs: 20, graceSeconds: 15 * 60 });
  try {
    await waitFor('the orphan parked', async () => (await status(lost.id))?.status === 'failed');
    await waitFor('the error logged', async () => lines.some((l) => l.includes(lost.id) && l.includes('"level":50')));
  } finally {
    await stop();
  }
});

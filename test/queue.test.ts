import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createLogger } from '../src/log.ts';
import { QUEUES, startQueue } from '../src/queue.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';

const log = createLogger('silent');
let db: TestDatabase;
const started: PgBoss[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await Promise.all(started.map((b) => b.stop({ graceful: false, close: true })));
  await db?.drop();
});

/** Starts the queue as a process would, stops it again, and returns the stored settings. */
async function restartWith(eventMaxTries: number) {
  const boss = await startQueue(db.url, log, { eventMaxTries });
  started.push(boss);
  const q = await boss.getQueue(QUEUES.stripeEvents);
  const job = await boss.send(QUEUES.stripeEvents, { eventId: `evt_q_${eventMaxTries}` });
  await boss.stop({ graceful: false, close: true });
  started.pop();
  const [row] = await db.sql`select retry_limit from pgboss.job where id = ${job!}`;
  return { queue: q!, jobRetryLimit: Number(row!.retry_limit), updatedOn: q!.updatedOn };
}

test('a changed EVENT_MAX_TRIES reaches the existing queue at the next start, so new jobs get the new retry limit', async () => {
  const first = await restartWith(3);
  expect(first.queue.retryLimit).toBe(2);
  expect(first.jobRetryLimit).toBe(2);

  const raised = await restartWith(20);
  expect(raised.queue).toMatchObject({ retryLimit: 19, retryDelay: 2, retryBackoff: true, retryDelayMax: 300 });
  expect(raised.jobRetryLimit).toBe(19);

  // The same settings again leave the queue alone; the other queues keep their own limits.
  const again = await restartWith(20);
  expect(again.updatedOn).toEqual(raised.updatedOn);
  const [attempts] = await db.sql`select retry_limit from pgboss.queue where name = ${QUEUES.attempts}`;
  expect(attempts!.retry_limit).toBe(10);

  const lowered = await restartWith(5);
  expect(lowered.queue.retryLimit).toBe(4);
});

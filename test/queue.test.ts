import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createLogger } from '../src/log.ts';
import { OPS_ALERT_TRIES, QUEUES, startQueue } from '../src/queue.ts';
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

test('queues are created with their settings, and an existing queue with other settings is brought to them at the next start', async () => {
  const first = await startQueue(db.url, log);
  started.push(first);
  const created = await first.getQueue(QUEUES.stripeEvents);
  expect(created).toMatchObject({ retryLimit: 10, retryDelay: 2, retryBackoff: true, retryDelayMax: 300 });
  // As an older version would have left it (its limit followed EVENT_MAX_TRIES).
  await first.updateQueue(QUEUES.stripeEvents, { retryLimit: 2, retryDelay: 0, retryBackoff: false });
  await first.stop({ graceful: false, close: true });
  started.pop();

  const second = await startQueue(db.url, log);
  started.push(second);
  expect(await second.getQueue(QUEUES.stripeEvents)).toMatchObject({
    retryLimit: 10,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
  });
  const job = await second.send(QUEUES.stripeEvents, { eventIds: ['evt_q'] });
  const [row] = await db.sql`select retry_limit from pgboss.job where id = ${job}`;
  expect(Number(row!.retry_limit)).toBe(10);
  // The other queues keep their own limits.
  const [attempts] = await db.sql`select retry_limit from pgboss.queue where name = ${QUEUES.attempts}`;
  expect(attempts!.retry_limit).toBe(10);
  const [alerts] = await db.sql`select retry_limit from pgboss.queue where name = ${QUEUES.opsAlerts}`;
  expect(alerts!.retry_limit).toBe(OPS_ALERT_TRIES - 1);
});

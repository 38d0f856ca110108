import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEventWriter } from '../../src/http/event-writer.ts';
import { createLogger } from '../../src/log.ts';
import { QUEUES, startQueue } from '../../src/queue.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { event, invoice } from '../fixtures/events/stripe-objects.ts';

let db: TestDatabase;
let boss: PgBoss;
beforeAll(async () => {
  db = await createTestDatabase();
  boss = await startQueue(db.url, createLogger('silent'), { eventMaxTries: 3 });
});
afterAll(async () => {
  await boss?.stop({ graceful: false, close: true });
  await db?.drop();
});

const make = (i: number, note = 'ok') => {
  const ev = event('invoice.payment_failed', invoice({ id: `in_g${i}`, customer: 'cus_g', description: note }));
  return { ev, raw: JSON.stringify(ev) };
};

test('concurrent writes share transactions; duplicates inside one batch count once; each event gets one job', async () => {
  const writer = createEventWriter(db.sql, boss, { maxInFlight: 1, maxBatch: 8 });
  const items = Array.from({ length: 20 }, (_, i) => make(i));
  const writes = [...items, items[3]!, items[3]!, items[17]!].map((x) => writer.write(x.ev, x.raw));
  const results = await Promise.all(writes);
  expect(results.slice(0, 20)).toEqual(Array(20).fill(true));
  expect(results.slice(20)).toEqual([false, false, false]);
  const [jobs] = await db.sql`select count(*)::int as n, count(distinct data->>'eventId')::int as d from pgboss.job where name = ${QUEUES.stripeEvents}`;
  expect(jobs).toEqual({ n: 20, d: 20 });
  const [stored] = await db.sql`select count(*)::int as n from stripe_events where payload->'data'->'object'->>'customer' = 'cus_g'`;
  expect(stored!.n).toBe(20);
});

test('an event Postgres refuses fails alone: its batch neighbours are still stored', async () => {
  const writer = createEventWriter(db.sql, boss, { maxInFlight: 1, maxBatch: 8 });
  const good = [make(100), make(101), make(102)];
  // jsonb has no NUL character: valid JSON, valid signature, refused by the database.
  const bad = make(103, 'nul \u0000 here');
  const results = await Promise.allSettled([...good, bad].map((x) => writer.write(x.ev, x.raw)));
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
  const ids = [...good, bad].map((x) => x.ev.id);
  const rows = await db.sql`select id from stripe_events where id in ${db.sql(ids)}`;
  expect(rows.map((r) => r.id).sort()).toEqual(good.map((x) => x.ev.id).sort());
});

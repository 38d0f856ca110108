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

test('a batch mixing stored and new ids stores and enqueues only the new ones', async () => {
  const writer = createEventWriter(db.sql, boss, { maxInFlight: 1, maxBatch: 8 });
  const [a, b, c, d] = [make(200), make(201), make(202), make(203)];
  expect(await Promise.all([a!, b!].map((x) => writer.write(x.ev, x.raw)))).toEqual([true, true]);
  expect(await Promise.all([a!, c!, b!, d!].map((x) => writer.write(x.ev, x.raw)))).toEqual([false, true, false, true]);
  const ids = [a!, b!, c!, d!].map((x) => x.ev.id);
  const jobs = await db.sql`select data->>'eventId' as id, count(*)::int as n from pgboss.job
                             where name = ${QUEUES.stripeEvents} and data->>'eventId' in ${db.sql(ids)} group by 1 order by 1`;
  expect(jobs).toEqual(ids.sort().map((id) => ({ id, n: 1 })));
});

test('an event whose job cannot be inserted is not stored either: one statement, one transaction', async () => {
  // pg-boss refuses a job whose priority is not an integer; the event insert in the same statement must roll back.
  const broken: Pick<PgBoss, 'insert'> = {
    insert: (name, jobs, options) => boss.insert(name, jobs.map((j) => ({ ...j, priority: 'high' as unknown as number })), options),
  };
  const writer = createEventWriter(db.sql, broken, { maxInFlight: 1, maxBatch: 8 });
  const x = make(300);
  await expect(writer.write(x.ev, x.raw)).rejects.toThrow(/integer/);
  expect(await db.sql`select id from stripe_events where id = ${x.ev.id}`).toHaveLength(0);
  expect(await db.sql`select id from pgboss.job where data->>'eventId' = ${x.ev.id}`).toHaveLength(0);
});

test('while a transaction is in flight, a few stragglers wait for it instead of starting a second one', async () => {
  const sizes: number[] = [];
  const counting: Pick<PgBoss, 'insert'> = {
    insert: (name, jobs, options) => {
      sizes.push(jobs.length);
      return boss.insert(name, jobs, options);
    },
  };
  const writer = createEventWriter(db.sql, counting, { maxInFlight: 2, minBatchWhileBusy: 4 });
  const first = make(400);
  const stragglers = [make(401), make(402)];
  const lone = writer.write(first.ev, first.raw);
  const rest = stragglers.map((x) => writer.write(x.ev, x.raw));
  expect(await Promise.all([lone, ...rest])).toEqual([true, true, true]);
  expect(sizes).toEqual([1, 2]);
});

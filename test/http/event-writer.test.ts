import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEventWriter } from '../../src/http/event-writer.ts';
import { createLogger } from '../../src/log.ts';
import { QUEUES, startQueue } from '../../src/queue.ts';
import { createTestDatabase, jobsNaming, waitFor, type TestDatabase } from '../helpers/db.ts';
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

const make = (i: number, note = 'ok') => {
  const ev = event('invoice.payment_failed', invoice({ id: `in_g${i}`, customer: 'cus_g', description: note }));
  return { ev, raw: JSON.stringify(ev) };
};

test('concurrent writes share transactions; duplicates inside one batch count once; each event is named by one job', async () => {
  const writer = createEventWriter(db.sql, boss, { maxInFlight: 1, maxBatch: 8 });
  const items = Array.from({ length: 20 }, (_, i) => make(i));
  const writes = [...items, items[3]!, items[3]!, items[17]!].map((x) => writer.write(x.ev, x.raw));
  const results = await Promise.all(writes);
  expect(results.slice(0, 20)).toEqual(Array(20).fill(true));
  expect(results.slice(20)).toEqual([false, false, false]);
  // One job per transaction (at most 8 events each), naming exactly the new events.
  const jobs = await db.sql<
    { ids: string[] }[]
  >`select data->'eventIds' as ids from pgboss.job where name = ${QUEUES.stripeEvents}`;
  expect(jobs.length).toBeGreaterThanOrEqual(3);
  expect(jobs.length).toBeLessThan(20);
  expect(jobs.every((j) => j.ids.length >= 1 && j.ids.length <= 8)).toBe(true);
  expect(jobs.flatMap((j) => j.ids).sort()).toEqual(items.map((x) => x.ev.id).sort());
  const [stored] =
    await db.sql`select count(*)::int as n from stripe_events where payload->'data'->'object'->>'customer' = 'cus_g'`;
  expect(stored!.n).toBe(20);
});

test('an event Postgres refuses fails alone: its batch neighbours are still stored', async () => {
  const writer = createEventWriter(db.sql, boss, { maxInFlight: 1, maxBatch: 8 });
  const good = [make(100), make(101), make(102)];
  // Valid JSON, a valid signature, and a `created` no timestamp can hold: refused by the database.
  const bad = make(103);
  bad.raw = bad.raw.replace(/"created":\d+/, '"created":1e300');
  const results = await Promise.allSettled([...good, bad].map((x) => writer.write(x.ev, x.raw)));
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
  const ids = [...good, bad].map((x) => x.ev.id);
  const rows = await db.sql`select id from stripe_events where id in ${db.sql(ids)}`;
  expect(rows.map((r) => r.id).sort()).toEqual(good.map((x) => x.ev.id).sort());
});

test('an escaped NUL, which jsonb cannot hold, is stored as U+FFFD instead of refusing the event forever', async () => {
  const writer = createEventWriter(db.sql, boss, { maxInFlight: 1, maxBatch: 8 });
  const nul = make(110, 'nul \u0000 here');
  // An escaped backslash followed by "u0000" is plain text, not a NUL: it must come back unchanged.
  const text = make(111, 'path C:\\u0000dir');
  expect(nul.raw).toContain('nul \\u0000 here');
  expect(await Promise.all([nul, text].map((x) => writer.write(x.ev, x.raw)))).toEqual([true, true]);
  const rows =
    await db.sql`select id, payload->'data'->'object'->>'description' as d from stripe_events where id in ${db.sql([nul.ev.id, text.ev.id])}`;
  const byId = new Map(rows.map((r) => [r.id as string, r.d as string]));
  expect(byId.get(nul.ev.id)).toBe('nul \ufffd here');
  expect(byId.get(text.ev.id)).toBe('path C:\\u0000dir');
});

test('columns are read from the body itself: id, type, created, livemode, account, api_version', async () => {
  const writer = createEventWriter(db.sql, boss, { maxInFlight: 1, maxBatch: 8 });
  const x = make(120);
  const ev = { ...x.ev, account: 'acct_123', livemode: true, created: 1_764_547_200 };
  expect(await writer.write(ev, JSON.stringify(ev))).toBe(true);
  const [row] =
    await db.sql`select id, type, created, livemode, account, api_version from stripe_events where id = ${ev.id}`;
  expect(row).toEqual({
    id: ev.id,
    type: 'invoice.payment_failed',
    created: new Date('2025-12-01T00:00:00Z'),
    livemode: true,
    account: 'acct_123',
    api_version: ev.api_version,
  });
});

test('a batch mixing stored and new ids stores and enqueues only the new ones', async () => {
  const writer = createEventWriter(db.sql, boss, { maxInFlight: 1, maxBatch: 8 });
  const [a, b, c, d] = [make(200), make(201), make(202), make(203)];
  expect(await Promise.all([a, b].map((x) => writer.write(x.ev, x.raw)))).toEqual([true, true]);
  expect(await Promise.all([a, c, b, d].map((x) => writer.write(x.ev, x.raw)))).toEqual([false, true, false, true]);
  const ids = [a, b, c, d].map((x) => x.ev.id);
  for (const id of ids) expect(await jobsNaming(db.sql, id)).toBe(1);
  // The second batch's job names its new events only.
  const [second] = await db.sql<{ ids: string[] }[]>`select data->'eventIds' as ids from pgboss.job
                                                      where name = ${QUEUES.stripeEvents} and data->'eventIds' ? ${c.ev.id}`;
  expect(second!.ids.sort()).toEqual([c.ev.id, d.ev.id].sort());
});

test('an event whose job cannot be inserted is not stored either: one statement, one transaction', async () => {
  // pg-boss refuses a job whose priority is not an integer; the event insert in the same statement must roll back.
  const broken: Pick<PgBoss, 'insert'> = {
    insert: (name, jobs, options) =>
      boss.insert(
        name,
        jobs.map((j) => ({ ...j, priority: 'high' as unknown as number })),
        options,
      ),
  };
  const writer = createEventWriter(db.sql, broken, { maxInFlight: 1, maxBatch: 8 });
  const x = make(300);
  await expect(writer.write(x.ev, x.raw)).rejects.toThrow(/integer/);
  expect(await db.sql`select id from stripe_events where id = ${x.ev.id}`).toHaveLength(0);
  expect(await jobsNaming(db.sql, x.ev.id)).toBe(0);
});

test('while a transaction is in flight, a few stragglers wait for it instead of starting a second one', async () => {
  let transactions = 0;
  const counting: Pick<PgBoss, 'insert'> = {
    insert: (name, jobs, options) => {
      transactions += 1;
      return boss.insert(name, jobs, options);
    },
  };
  const writer = createEventWriter(db.sql, counting, { maxInFlight: 2, minBatchWhileBusy: 4 });
  const first = make(400);
  const stragglers = [make(401), make(402)];
  const lone = writer.write(first.ev, first.raw);
  const rest = stragglers.map((x) => writer.write(x.ev, x.raw));
  expect(await Promise.all([lone, ...rest])).toEqual([true, true, true]);
  // The first alone, then both stragglers together (a free slot alone would have made it three).
  expect(transactions).toBe(2);
  const [together] = await db.sql<{ ids: string[] }[]>`select data->'eventIds' as ids from pgboss.job
                                                        where name = ${QUEUES.stripeEvents} and data->'eventIds' ? ${stragglers[0]!.ev.id}`;
  expect(together!.ids.sort()).toEqual(stragglers.map((x) => x.ev.id).sort());
});

test('a database that does not answer: callers hear "not stored" in time, the slot frees, the queue stays bounded', async () => {
  // A statement that never answers stands in for a connection hung on a dead server.
  let hung = true;
  let hungCalls = 0;
  const stuck: Pick<PgBoss, 'insert'> = {
    insert: (name, jobs, options) => {
      if (!hung) return boss.insert(name, jobs, options);
      hungCalls += 1;
      return new Promise<never>(() => {});
    },
  };
  const writer = createEventWriter(db.sql, stuck, {
    maxInFlight: 1,
    maxBatch: 1,
    timeoutMs: 200,
    maxQueued: 3,
    maxAbandoned: 4,
  });
  const first = make(500);
  const waiting = [make(501), make(502), make(503)];
  const started = Date.now();
  const a = writer.write(first.ev, first.raw);
  const queued = waiting.map((x) => writer.write(x.ev, x.raw));
  // A fourth waiting delivery is over the cap: refused at once, not after the timeout.
  const over = make(504);
  await expect(writer.write(over.ev, over.raw)).rejects.toThrow(/already wait for the database/);
  expect(Date.now() - started).toBeLessThan(150);
  for (const p of [a, ...queued]) await expect(p).rejects.toThrow(/took over 200 ms/);
  // The first slot was given up when its caller gave up, and the next delivery took it (and hung);
  // the two behind it expired in the queue.
  expect(hungCalls).toBe(2);
  // Both hung statements still hold their connections, yet deliveries go through again.
  hung = false;
  let n = 510;
  await waitFor('a delivery to be stored after the hang', async () => {
    const x = make(n++);
    return writer.write(x.ev, x.raw).catch(() => false);
  });
  // The ones that expired in the queue were dropped, never written behind their callers' backs.
  expect(
    await db.sql`select id from stripe_events where id in ${db.sql([waiting[1]!.ev.id, waiting[2]!.ev.id])}`,
  ).toHaveLength(0);
});

test('transactions given up on but still hung are bounded: past the bound, deliveries are refused at once', async () => {
  const hang: Pick<PgBoss, 'insert'> = { insert: () => new Promise<never>(() => {}) };
  const writer = createEventWriter(db.sql, hang, { maxInFlight: 1, maxBatch: 1, timeoutMs: 100, maxAbandoned: 2 });
  const [a, b] = [make(600), make(601)];
  // Each times out and gives up its slot, leaving its statement hung.
  await expect(writer.write(a.ev, a.raw)).rejects.toThrow(/took over 100 ms/);
  await expect(writer.write(b.ev, b.raw)).rejects.toThrow(/took over 100 ms/);
  // The slot is given up a moment after its caller hears, on its own timer.
  await waitFor('both hung transactions to be given up', () => writer.load().abandoned === 2);
  expect(writer.load()).toEqual({ queued: 0, inFlight: 0, abandoned: 2 });
  const c = make(602);
  const started = Date.now();
  await expect(writer.write(c.ev, c.raw)).rejects.toThrow(/2 transactions are still waiting for the database/);
  expect(Date.now() - started).toBeLessThan(50);
});

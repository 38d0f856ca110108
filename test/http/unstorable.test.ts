import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { customer, event } from '../fixtures/events/stripe-objects.ts';
import { deliver, sign, startIntake, type Intake } from './harness.ts';

/**
 * Correctly signed bodies that JSON.parse accepts but Postgres cannot store (jsonb refuses lone
 * surrogates and very deep nesting; timestamptz refuses far-off `created` values). Answered 503
 * they would be redelivered for three days and never stored; they are answered 400 with the reason.
 */

let db: TestDatabase;
let boss: PgBoss;
let intake: Intake;
beforeAll(async () => {
  db = await createTestDatabase();
  boss = await startQueue(db.url, createLogger('silent'));
  intake = await startIntake({ sql: db.sql, boss, log: createLogger('silent') });
});
afterAll(async () => {
  await intake?.close();
  await boss?.stop({ graceful: false, close: true });
  await db?.drop();
});

const base = (id: string) =>
  JSON.stringify(event('customer.updated', customer({ id: `cus_${id}` }), { id: `evt_${id}`, created: 1_760_000_000 }));

/** The body as raw text, so escapes JSON.stringify would never write can be sent. */
const cases: Array<[string, string, RegExp]> = [
  ['a lone high surrogate', base('hi').replace('"name":', '"name":"\\ud800","x":'), /not valid Unicode/],
  ['a lone low surrogate', base('lo').replace('"name":', '"name":"\\udc00","x":'), /not valid Unicode/],
  ['a lone surrogate in a key', base('key').replace('"name":', '"\\ud800":1,"name":'), /not valid Unicode/],
  ['created 1e20', base('c20').replace('"created":1760000000', '"created":1e20'), /created/],
  ['created 1e400', base('c400').replace('"created":1760000000', '"created":1e400'), /created/],
  ['created -1e12', base('cneg').replace('"created":1760000000', '"created":-1e12'), /created/],
  [
    'nesting 20,000 levels deep',
    base('deep').replace('"name":', `"deep":${'['.repeat(20_000)}${']'.repeat(20_000)},"name":`),
    /nested/,
  ],
];

test.each(cases)('%s: answered 400 with the reason, not 503', async (_, text, reason) => {
  const answer = await deliver(intake.url, text, sign(text));
  expect(answer.status).toBe(400);
  expect(String(answer.body.error)).toMatch(reason);
});

test('an escaped backslash before u-d800 is text, not a surrogate: stored', async () => {
  const text = base('esc').replace('"name":', '"note":"\\\\ud800","name":');
  expect((await deliver(intake.url, text, sign(text))).status).toBe(200);
  const [row] = await db.sql`select payload->'data'->'object'->>'note' as note from stripe_events where id = 'evt_esc'`;
  expect(row!.note).toBe('\\ud800');
});

test('a well-formed surrogate pair (an emoji) and ordinary nesting are stored', async () => {
  const text = base('pair').replace('"name":', '"note":"\\ud83d\\ude00","n":[[[[{"a":[1]}]]]],"name":');
  expect((await deliver(intake.url, text, sign(text))).status).toBe(200);
});

import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Sql } from '../src/db.ts';
import { processWithTries } from '../src/events/processor.ts';
import { insertEvent, listEvents } from '../src/events/store.ts';
import { createLogger } from '../src/log.ts';
import { recordingHooks, testDeps } from './events/helpers.ts';
import { event, invoice } from './fixtures/events/stripe-objects.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';

/** Postgres's constraint details carry the row's values; logs and stored errors must not. */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql`create table people (id text primary key, name text not null check (length(name) < 5), email text unique)`;
  await db.sql`insert into people values ('p1', 'Jo', 'jo@example.com')`;
});
afterAll(async () => {
  await db?.drop();
});

async function failure(run: () => Promise<unknown>): Promise<Error> {
  try {
    await run();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

test.each([
  [
    'a check constraint ("Failing row contains")',
    () => db.sql`insert into people values ('p2', 'Jane Doe-Smith', null)`,
  ],
  ['a unique key ("Key (...)=(...)")', () => db.sql`insert into people values ('p3', 'Al', 'jo@example.com')`],
])('%s: the log line keeps the columns and withholds the values', async (_, run) => {
  const err = await failure(run);
  // The driver's own error does carry them: this is what must not reach a log or a row.
  expect(String((err as { detail?: string }).detail)).toMatch(/Jane Doe-Smith|jo@example\.com/);
  const lines: string[] = [];
  createLogger('info', { write: (s: string) => void lines.push(s) }).error({ err }, 'failed');
  expect(lines.join('')).not.toMatch(/Jane Doe|jo@example|\*\*\*@example/);
  expect(lines.join('')).toContain('values withheld');
});

test('an event parked on such an error stores the columns, not the customer values', async () => {
  // A hook that writes a row Postgres refuses, as a domain write with a customer's name would.
  const { hooks } = recordingHooks();
  hooks.paymentFailed = async (tx) => {
    await (tx as Sql)`insert into people values ('p4', 'Jane Doe-Smith', 'jane@example.org')`;
  };
  const ev = event('invoice.payment_failed', invoice({ id: 'in_redact_rows', customer: 'cus_redact_rows' }));
  await insertEvent(db.sql, ev);
  expect(await processWithTries(db.sql, testDeps(hooks), ev.id, 1)).toBe('done');
  const parked = (await listEvents(db.sql, { status: 'failed', limit: 10 })).find((e) => e.id === ev.id);
  expect(parked?.lastError).toMatch(/violates check constraint .*Failing row contains \(values withheld\)/);
  const [row] = await db.sql`select last_error, payload::text from stripe_events where id = ${ev.id}`;
  expect(String(row!.last_error)).not.toMatch(/Jane|jane@example/);
});

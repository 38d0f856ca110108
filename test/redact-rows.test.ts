import { afterAll, beforeAll, expect, test } from 'vitest';
import { createLogger } from '../src/log.ts';
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

import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { insertEvent, recordFailure } from '../../src/events/store.ts';
import { createTestDatabase, jobsNaming, type TestDatabase } from '../helpers/db.ts';
import { event, invoice } from '../fixtures/events/stripe-objects.ts';

const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function dunning(...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH, DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

test('dunning events lists failed events, shows one, and replays it into the queue', async () => {
  const failed = event('invoice.payment_failed', invoice({ id: 'in_cmd1', customer: 'cus_cmd1' }));
  const fine = event('invoice.paid', invoice({ id: 'in_cmd2', customer: 'cus_cmd2' }));
  await insertEvent(db.sql, failed);
  await insertEvent(db.sql, fine);
  await recordFailure(db.sql, failed.id, 'handler exploded: boom', true);

  const list = await dunning('events', '--failed');
  expect(list.code).toBe(0);
  expect(list.out).toContain(failed.id);
  expect(list.out).toContain('handler exploded: boom');
  expect(list.out).not.toContain(fine.id);

  const show = await dunning('events', 'show', failed.id);
  expect(show.code).toBe(0);
  expect(show.out).toMatch(/status:\s+failed/);
  expect(show.out).toContain('"in_cmd1"');

  const replay = await dunning('events', 'replay', failed.id);
  expect(replay.code).toBe(0);
  expect((await db.sql`select status, tries, last_error from stripe_events where id = ${failed.id}`)[0]).toEqual({
    status: 'pending',
    tries: 0,
    last_error: null,
  });
  expect(await jobsNaming(db.sql, failed.id)).toBe(1);

  // An applied event is replayed only on purpose: its effects would run again.
  const refused = await dunning('events', 'replay', fine.id);
  expect(refused.code).toBe(1);
  expect(refused.out).toContain('is pending, not failed');
  expect(await jobsNaming(db.sql, fine.id)).toBe(0);
  await db.sql`update stripe_events set status = 'processed' where id = ${fine.id}`;
  expect((await dunning('events', 'replay', fine.id)).out).toContain('is processed, not failed');
  const forced = await dunning('events', 'replay', fine.id, '--force');
  expect(forced.code).toBe(0);
  expect((await db.sql`select status from stripe_events where id = ${fine.id}`)[0]!.status).toBe('pending');
  expect(await jobsNaming(db.sql, fine.id)).toBe(1);

  expect((await dunning('events', 'replay', 'evt_nope')).code).toBe(1);
  expect((await dunning('events', '--force')).code).toBe(2);
  expect((await dunning('events', 'replay')).code).toBe(2);
  // Six CLI processes, each starting Node and pg-boss: on a machine whose cores are busy that alone
  // took over the default 30 s.
}, 120_000);

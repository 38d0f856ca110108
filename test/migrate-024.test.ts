import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { connect, withDatabase, type Sql } from '../src/db.ts';
import { createLogger } from '../src/log.ts';
import { migrate, readMigrations } from '../src/migrate.ts';

/**
 * Migration 024 gives attempts left unresolved when it runs a first send time in real time, no later
 * than their request, and a latest send time no earlier than it. `started_at` cannot be the first:
 * it is on the worker's clock, which the demo scales (a simulated day in real seconds), so it can
 * lie days in the real future.
 */

const log = createLogger('silent');
const name = `dunning_t_mig024_${process.pid}_${Date.now().toString(36)}`;
let sql: Sql;

beforeAll(async () => {
  const admin = connect(inject('adminUrl'), { max: 1 });
  await admin.unsafe(`create database "${name}"`);
  await admin.end();
  sql = connect(withDatabase(inject('adminUrl'), name), { max: 1 });
});

afterAll(async () => {
  await sql?.end();
  const admin = connect(inject('adminUrl'), { max: 1 });
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
});

describe('migration 024 (attempts unresolved when it runs)', () => {
  it("takes the row's creation as the first send (real time, before any request), never the worker's clock, and the migration's time as the latest", async () => {
    const all = readMigrations();
    const at024 = all.findIndex((m) => m.name === '024_attempt_first_sent.sql');
    expect(at024).toBe(23);
    await migrate(sql, log, all.slice(0, at024));

    const [t] = await sql<{ now: Date }[]>`select now() as now`;
    const now = t!.now.getTime();
    const hour = 3_600_000;
    const at = (ms: number) => new Date(now + ms);
    const rows: Array<[string, string, Date, Date | null]> = [
      // Claimed under the demo's scaled clock: `started_at` 40 simulated days ahead of real time.
      ['in_unknown_scaled', 'unknown', at(-3 * 24 * hour), at(40 * 24 * hour)],
      ['in_flight', 'in_flight', at(-hour), at(-30 * 60_000)],
      ['declined', 'declined', at(-hour), at(-30 * 60_000)],
      ['planned', 'planned', at(-hour), null],
    ];
    for (const [invoice, status, created, started] of rows) {
      await sql`insert into payment_attempts (invoice_id, attempt_no, source, status, created_at, started_at, idempotency_key)
                values (${invoice}, 2, 'scheduled', ${status}, ${created}, ${started}, ${`dunning:${invoice}:2`})`;
    }

    const before = Date.now();
    await migrate(sql, log, all);
    const after = await sql<{ now: Date }[]>`select now() as now`;

    const got = await sql`select invoice_id, created_at, first_sent_at, last_sent_at from payment_attempts order by id`;
    const of = (invoice: string) => got.find((r) => r.invoice_id === invoice)!;
    for (const invoice of ['in_unknown_scaled', 'in_flight']) {
      const r = of(invoice);
      expect(r.first_sent_at).toEqual(r.created_at);
      // No earlier than any request made before the migration, and not in the future.
      expect((r.last_sent_at as Date).getTime()).toBeGreaterThanOrEqual(before - 1_000);
      expect((r.last_sent_at as Date).getTime()).toBeLessThanOrEqual(after[0]!.now.getTime());
    }
    for (const invoice of ['declined', 'planned']) {
      expect(of(invoice)).toMatchObject({ first_sent_at: null, last_sent_at: null });
    }
  });
});

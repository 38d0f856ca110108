import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { connect } from '../../src/db.ts';
import { runDemo, type DemoOptions, type DemoRun } from '../../src/demo/run.ts';
import { MISSING_INVOICE } from '../../src/dunning/final-action.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';

/**
 * `--keep`: a tiny demo stops with cases still inside their dunning window; a second run on the
 * same database goes on with them against the sandbox's saved state, on a clock that resumes
 * where the first stopped.
 */
const adminUrl = inject('adminUrl');
const database = `dunning_demo_k_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const files = mkdtempSync(join(tmpdir(), 'demo-keep-'));
const options: DemoOptions = {
  // Every customer's renewal fails and a third to three quarters recover within eight days: 20
  // left 6 to 13 cases open in 11 runs (12 left 2 to 4, and 2 fails the guard below).
  customers: 20,
  days: 8,
  seconds: 6,
  seed: 5,
  keep: false,
  database,
  port: 0,
  workers: 1,
  mailDir: join(files, 'mail'),
  stateFile: join(files, 'sandbox.json'),
  policy: defaultPolicy(),
};
const env = { ...process.env, DATABASE_URL: adminUrl, LOG_LEVEL: 'error' };
const runs: DemoRun[] = [];

afterAll(async () => {
  for (const r of runs) await r.stop();
  const admin = connect(adminUrl, { max: 1 });
  try {
    await admin.unsafe(`drop database if exists "${database}" with (force)`);
  } finally {
    await admin.end();
  }
});

describe('dunning demo --keep', () => {
  it('goes on with the open cases of the run before: none is closed as not found at Stripe', async () => {
    const first = await runDemo(env, options, () => {});
    runs.push(first);
    const firstEnd = first.clock.now();
    await first.stop();
    const db = connect(first.databaseUrl, { max: 2 });
    try {
      const openBefore = await db`select invoice_id from dunning_cases where status = 'open'`;
      // Eight days of a 21-day window: most cases are still open, or this proves nothing.
      expect(openBefore.length).toBeGreaterThanOrEqual(3);

      const second = await runDemo(env, { ...options, customers: 4, keep: true }, () => {});
      runs.push(second);
      expect(second.start).toEqual(firstEnd);

      const [counts] =
        await db`select count(*)::int as cases, count(*) filter (where close_reason = ${MISSING_INVOICE})::int as not_found from dunning_cases`;
      expect(counts).toEqual({ cases: options.customers + 4, not_found: 0 });
      // The old cases went on: charged again after the first run ended, at or after their planned
      // times (pg-boss jobs moved with the resumed clock), with the sandbox knowing their invoices.
      const later = await db`
        select a.invoice_id, a.attempt_no, a.planned_at, a.started_at, a.status from payment_attempts a
         where a.invoice_id in ${db(openBefore.map((r) => r.invoice_id as string))}
           and a.source <> 'stripe' and a.started_at > ${firstEnd}`;
      expect(later.length).toBeGreaterThan(0);
      expect(later.filter((a) => a.status === 'skipped')).toEqual([]);
      const scale = (options.days * 86_400_000) / (options.seconds * 1000);
      for (const a of later) {
        // 100 real ms of slack between pg-boss and Node, in simulated time.
        expect((a.started_at as Date).getTime(), `attempt #${a.attempt_no} of ${a.invoice_id}`).toBeGreaterThanOrEqual(
          (a.planned_at as Date).getTime() - 100 * scale,
        );
      }
      const invoices = new Set(later.map((a) => a.invoice_id as string));
      expect(second.charges.filter((c) => invoices.has(c.invoice) && c.source === 'api').length).toBeGreaterThanOrEqual(
        later.length,
      );
    } finally {
      await db.end({ timeout: 5 });
    }
  }, 60_000);

  it('refuses to go on without the sandbox state, instead of closing every open case', async () => {
    rmSync(options.stateFile);
    const db = connect(runs[0]!.databaseUrl, { max: 1 });
    try {
      const [before] = await db`select count(*)::int as open from dunning_cases where status = 'open'`;
      expect(before?.open).toBeGreaterThan(0);
      await expect(runDemo(env, { ...options, keep: true }, () => {})).rejects.toThrow(
        `--keep: the kept database has ${before?.open} open cases, but there is no saved sandbox state at ${options.stateFile}`,
      );
      const [after] = await db`select count(*)::int as open from dunning_cases where status = 'open'`;
      expect(after?.open).toBe(before?.open);
    } finally {
      await db.end({ timeout: 5 });
    }
  });
});

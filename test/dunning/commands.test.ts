import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import {
  apiCharges,
  caseRow,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
  type SeededCase,
} from './runner-helpers.ts';

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
let w: RunnerWorld;
let s: SeededCase;

async function dunning(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH,
    DATABASE_URL: w.db.url,
    STRIPE_SECRET_KEY: w.sandbox.apiKey,
    STRIPE_API_BASE: w.sandbox.url,
    LOG_LEVEL: 'silent',
  };
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function plannedCount(): Promise<number> {
  const rows = await w.db.sql`select 1 from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
  return rows.length;
}

beforeAll(async () => {
  // The CLI runs on the system clock, so the case opens now.
  w = await startWorld({ start: new Date() });
  s = await seedFailedInvoice(w, 'generic_decline', 12_345);
  await w.db.sql.begin((tx) =>
    createDunningHooks(w.deps).paymentFailed(tx, {
      caseId: s.caseId,
      invoiceId: s.invoiceId,
      opened: true,
      at: w.clock.now(),
    }),
  );
});
afterAll(async () => {
  await w?.close();
});

describe('ops commands', () => {
  it('cases --open lists the case with its amount, attempts and the reason for the next attempt', async () => {
    const r = await dunning('cases', '--open');
    expect(r.code).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith(s.invoiceId));
    expect(line).toContain('123.45 EUR');
    expect(line).toContain((await caseRow(w.db.sql, s.caseId)).next_attempt_reason);
  });

  it('pause cancels the planned attempt; resume plans a new one', async () => {
    expect(await plannedCount()).toBe(1);
    const p = await dunning('pause', s.customerId);
    expect(p.code).toBe(0);
    expect(await plannedCount()).toBe(0);
    expect((await caseRow(w.db.sql, s.caseId)).paused).toBe(true);
    const r = await dunning('resume', s.invoiceId);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('next attempt');
    expect(await plannedCount()).toBe(1);
    expect((await caseRow(w.db.sql, s.caseId)).paused).toBe(false);
  });

  it('retry-now charges at once as a manual attempt; case shows the full ledger', async () => {
    const { paymentMethodId } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 1,
      expYear: 2031,
    });
    // As the customer.updated event leaves it: the manual attempt charges the default we know of.
    await w.db.sql`update customers set default_payment_method = ${paymentMethodId} where id = ${s.customerId}`;
    const r = await dunning('retry-now', s.invoiceId);
    expect(r.stdout).toContain('succeeded');
    expect(r.code).toBe(0);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    expect((await caseRow(w.db.sql, s.caseId)).recovery_path).toBe('manual_retry');
    const c = await dunning('case', s.invoiceId);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/Status recovered/);
    expect(c.stdout).toMatch(/\n1 +stripe +declined .*generic_decline/);
    expect(c.stdout).toMatch(/manual +succeeded/);
    expect(c.stdout).toMatch(/scheduled +cancelled/);
  });

  it('case lists the emails of the case and the email problem ops must act on', async () => {
    await w.db.sql`
      insert into reminder_outbox (case_id, customer_id, invoice_id, kind, step, dedupe_key, due_at, send_at, locale, time_zone, status, tries, last_error)
      values (${s.caseId}, ${s.customerId}, ${s.invoiceId}, 'first_notice', 1, ${`cmd-${s.caseId}`}, now(), '2026-03-02T15:00:00Z', 'en', 'UTC',
              'failed', 1, 'SMTP 550: No such mailbox')`;
    await w.db
      .sql`update dunning_cases set reminder_problem = 'first_notice email failed: SMTP 550: No such mailbox' where id = ${s.caseId}`;
    const c = await dunning('case', s.invoiceId);
    expect(c.code).toBe(0);
    expect(c.stdout).toContain('Email problem: first_notice email failed: SMTP 550');
    expect(c.stdout).toMatch(/\nEmails\nKIND +STEP +STATUS/);
    expect(c.stdout).toMatch(/first_notice +1 +failed +2026-03-02 15:00Z +- +1 +SMTP 550: No such mailbox/);
  });

  it('bad input is a usage error (exit 2); an unknown invoice is a plain failure', async () => {
    expect((await dunning('case')).code).toBe(2);
    expect((await dunning('cases', '--limit', 'many')).code).toBe(2);
    const r = await dunning('retry-now', 'in_missing');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no dunning case for invoice in_missing');
  });
});

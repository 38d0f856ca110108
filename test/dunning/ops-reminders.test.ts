/**
 * The ops commands react to cases like the workers do: they are run here as the CLI runs them (a
 * separate process on the system clock, the sandbox as Stripe), and what the reminders did is read
 * back from the outbox and the ops alerts. No mailer runs here: the rows stay for `dunning start`.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { loadPolicyFile } from '../../src/dunning/policy.ts';
import { savePolicy } from '../../src/dunning/scheduler.ts';
import { createLogger } from '../../src/log.ts';
import { QUEUES } from '../../src/queue.ts';
import { wireHooks } from '../../src/worker.ts';
import { caseRow, seedFailedInvoice, startWorld, type RunnerWorld } from './runner-helpers.ts';

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-reminders-'));
// Two attempts in all: the retry after Stripe's own first charge is the final one, so planning it
// must bring a last-chance email. No holdout, so every case follows this policy.
const policyFile = path.join(tmp, 'policy.json');
fs.writeFileSync(policyFile, JSON.stringify({ retry: { maxAttempts: 2 }, holdoutShare: 0 }));
const policy = loadPolicyFile(policyFile);
let w: RunnerWorld;

async function dunning(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH,
    DATABASE_URL: w.db.url,
    STRIPE_SECRET_KEY: w.sandbox.apiKey,
    STRIPE_API_BASE: w.sandbox.url,
    LOG_LEVEL: 'silent',
    DUNNING_POLICY_FILE: policyFile,
    OPS_ALERT_MIN_AMOUNT: '50000',
  };
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const remindersOf = (caseId: number) =>
  w.db.sql<{ id: number; kind: string; status: string; cancel_reason: string | null }[]>`
    select id::float8 as id, kind, status, cancel_reason from reminder_outbox where case_id = ${caseId} order by id`;
/** kind:status (cancel reason) of each reminder, sorted: the order hooks run in is not the point. */
const summary = async (caseId: number) =>
  (await remindersOf(caseId))
    .map((x) => `${x.kind}:${x.status}${x.cancel_reason ? ` (${x.cancel_reason})` : ''}`)
    .sort();
const sendJobs = (outboxId: number) =>
  w.db.sql`select 1 from pgboss.job where name = ${QUEUES.reminders} and (data ->> 'outboxId')::bigint = ${outboxId}`;

beforeAll(async () => {
  // The CLI runs on the system clock, so the world starts now.
  w = await startWorld({ start: new Date() });
  await savePolicy(w.db.sql, policy);
  w.policy = policy;
});
afterAll(async () => {
  await w?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('ops commands and reminders', () => {
  it('retry-now that recovers the invoice plans the thank-you email', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline', 12_345);
    await w.db.sql`
      insert into reminder_outbox (case_id, customer_id, invoice_id, kind, step, dedupe_key, due_at, send_at, locale, time_zone, status, sent_at)
      values (${s.caseId}, ${s.customerId}, ${s.invoiceId}, 'first_notice', 1, ${`case:${s.caseId}:first_notice:1`}, now(), now(), 'en', 'UTC', 'sent', now())`;
    const { paymentMethodId } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 1,
      expYear: 2031,
    });
    await w.db.sql`update customers set default_payment_method = ${paymentMethodId} where id = ${s.customerId}`;

    const r = await dunning('retry-now', s.invoiceId);
    expect(r.stdout).toContain('succeeded');
    expect((await caseRow(w.db.sql, s.caseId)).status).toBe('recovered');
    const rows = await remindersOf(s.caseId);
    expect(rows.map((x) => [x.kind, x.status])).toEqual([
      ['first_notice', 'sent'],
      ['recovered', 'pending'],
    ]);
    expect(await sendJobs(rows[1]!.id)).toHaveLength(1);
  });

  it('pause cancels pending reminders; resume plans the first notice again and the last chance before the final attempt', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline', 4_900);
    // As the worker reacts to the failure: the final attempt planned, the first notice and the last chance with it.
    const log = createLogger('silent');
    const wiring = wireHooks({ boss: w.boss, clock: w.clock, log, config: loadConfig({}), policy });
    await w.db.sql.begin((tx) =>
      wiring.hooks.paymentFailed!(tx, {
        caseId: s.caseId,
        invoiceId: s.invoiceId,
        attemptId: 0,
        opened: true,
        at: w.clock.now(),
      }),
    );
    expect(await summary(s.caseId)).toEqual(['first_notice:pending', 'last_chance:pending']);

    expect((await dunning('pause', s.invoiceId)).code).toBe(0);
    expect(await summary(s.caseId)).toEqual([
      'first_notice:cancelled (case paused)',
      'last_chance:cancelled (case paused)',
    ]);

    const r = await dunning('resume', s.invoiceId);
    expect(r.stdout).toContain('next attempt');
    expect(await summary(s.caseId)).toEqual([
      'first_notice:cancelled (case paused)',
      'first_notice:pending',
      'last_chance:cancelled (case paused)',
      'last_chance:pending',
    ]);
    for (const row of (await remindersOf(s.caseId)).filter((x) => x.status === 'pending'))
      expect(await sendJobs(row.id)).toHaveLength(1);
  });

  it('backfill alerts ops about a large case it takes over, and plans its first notice and last chance', async () => {
    const c = await w.sandbox.createCustomer({
      email: 'big@example.com',
      name: 'Big',
      country: 'DE',
      timeZone: 'Europe/Berlin',
      card: { brand: 'visa', failure: 'generic_decline', expMonth: 1, expYear: 2030 },
    });
    const inv = await w.sandbox.createFailingInvoice(c.id, { amount: 75_000, currency: 'eur', subscription: true });
    const r = await dunning('backfill');
    expect(r.code).toBe(0);
    const [c2] = await w.db.sql`select id, last_decline_category from dunning_cases where invoice_id = ${inv.id}`;
    expect(c2!.last_decline_category).toBe('generic');
    const caseId = Number(c2!.id);
    const alerts = await w.db.sql`select kind, payload from ops_alerts where case_id = ${caseId}`;
    expect(alerts.map((a) => a.kind)).toEqual(['case_opened_large']);
    expect((alerts[0]!.payload as { text: string }).text).toContain('750.00 EUR');
    expect(await summary(caseId)).toEqual(['first_notice:pending', 'last_chance:pending']);

    // A second run takes nothing over again, and alerts nobody again.
    expect((await dunning('backfill')).code).toBe(0);
    expect(await w.db.sql`select 1 from ops_alerts where case_id = ${caseId}`).toHaveLength(1);
    expect(await remindersOf(caseId)).toHaveLength(2);
  });
});

import type { PgBoss } from 'pg-boss';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import type { Sql } from '../../src/db.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { savePolicy } from '../../src/dunning/scheduler.ts';
import { createLogger } from '../../src/log.ts';
import { opsRoutes } from '../../src/ops/routes.ts';
import { startQueue } from '../../src/queue.ts';
import { loadTemplates } from '../../src/reminders/templates.ts';
import { wireHooks } from '../../src/worker.ts';
import { serveRoutes } from '../reports/serve.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

export const READ_TOKEN = 'read-only-token-0123456789';
export const ALICE_TOKEN = 'alice-ops-token-0123456789';
// A Tuesday 08:00 UTC.
export const NOW = '2026-03-03T08:00:00Z';

export interface OpsCase {
  invoice: string;
  amount: number;
  currency?: string;
  email?: string;
  category?: string;
  cohort?: 'smart' | 'holdout';
  status?: 'open' | 'recovered' | 'lost';
  paused?: boolean;
  nextAttemptAt?: string | null;
  /** Ledger rows after Stripe's declined first charge. */
  attempts?: Array<'planned' | 'unknown' | 'declined'>;
}

/** Customers, invoices and cases as the worker leaves them, under the stored default policy. */
export async function insertOpsCases(sql: Sql, cases: OpsCase[]): Promise<void> {
  const policy = defaultPolicy();
  await savePolicy(sql, policy);
  for (const c of cases) {
    const customer = `cus_${c.invoice.slice(3)}`;
    const currency = c.currency ?? 'usd';
    const status = c.status ?? 'open';
    await sql`insert into customers (id, email, name, time_zone, default_payment_method, stripe_updated_at)
      values (${customer}, ${c.email ?? `${c.invoice.slice(3)}@example.com`}, 'Some One', 'Europe/Berlin', 'pm_card_visa', ${NOW})`;
    await sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
      values (${c.invoice}, ${customer}, 'open', ${currency}, ${c.amount}, ${c.amount}, ${NOW}, ${NOW})`;
    const [row] = await sql<{ id: number }[]>`
      insert into dunning_cases (invoice_id, customer_id, currency, amount, status, policy_version, cohort, opened_at, closed_at,
        paused, last_decline_code, last_decline_category, next_attempt_at, next_attempt_reason)
      values (${c.invoice}, ${customer}, ${currency}, ${c.amount}, ${status}, ${policy.version}, ${c.cohort ?? 'smart'},
        '2026-03-01T08:00:00Z', ${status === 'open' ? null : NOW}, ${c.paused ?? false},
        ${c.category === 'funds' ? 'insufficient_funds' : 'generic_decline'}, ${c.category ?? 'generic'},
        ${c.nextAttemptAt === undefined ? '2026-03-04T08:00:00Z' : c.nextAttemptAt}, 'funds usually arrive on payday')
      returning id::int as id`;
    await sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, card_brand, payment_method, decline_code, decline_category)
      values (${row!.id}, ${c.invoice}, 1, 'stripe', 'declined', '2026-03-01T08:00:00Z', '2026-03-01T08:00:00Z', 'visa', 'pm_card_visa', 'generic_decline', 'generic')`;
    for (const [i, s] of (c.attempts ?? []).entries()) {
      await sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, idempotency_key)
        values (${row!.id}, ${c.invoice}, ${i + 2}, 'scheduled', ${s}, '2026-03-04T08:00:00Z', 'planner: payday', ${`dunning:${c.invoice}:${i + 2}`})`;
    }
  }
}

export interface OpsWorld {
  db: TestDatabase;
  boss: PgBoss;
  base: string;
  close(): Promise<void>;
}

/** A database, a queue and the /ops routes on an ephemeral port, acting as `dunning start` wires them. */
export async function startOpsWorld(): Promise<OpsWorld> {
  const db = await createTestDatabase();
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const boss = await startQueue(db.url, log);
  const clock = new FixedClock(NOW);
  const config = loadConfig({ REPORTS_TOKEN: READ_TOKEN, OPS_TOKENS: `alice:${ALICE_TOKEN}` });
  const wiring = wireHooks({ boss, clock, log, config, policy: defaultPolicy() });
  const server = await serveRoutes(
    opsRoutes({
      sql: db.sql,
      clock,
      log,
      config,
      templates: loadTemplates(null),
      actions: { scheduler: wiring.scheduler, hooks: wiring.reminders },
    }),
  );
  return {
    db,
    boss,
    base: server.base,
    async close() {
      await server.close();
      await boss.stop({ graceful: false });
      await db.drop();
    },
  };
}

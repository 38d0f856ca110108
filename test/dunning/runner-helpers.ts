import type { PgBoss } from 'pg-boss';
import { FixedClock, type Clock } from '../../src/clock.ts';
import type { Sql } from '../../src/db.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { defaultPolicy, type Policy } from '../../src/dunning/policy.ts';
import { runnerDeps, startRetryWorkers, type RunnerDeps } from '../../src/dunning/runner.ts';
import { savePolicy } from '../../src/dunning/scheduler.ts';
import { startSandbox, type FailureReason, type Sandbox } from '../../src/sandbox/index.ts';
import { createStripeClient } from '../../src/stripe/client.ts';
import { createThrottle } from '../../src/stripe/throttle.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/** One database, one sandbox and one queue for a runner test file. */
export interface RunnerWorld {
  db: TestDatabase;
  sandbox: Sandbox;
  boss: PgBoss;
  clock: FixedClock;
  sandboxClock: FixedClock;
  policy: Policy;
  deps: RunnerDeps;
  close(): Promise<void>;
}

// A Tuesday 08:00 UTC: inside the default local charging window.
export const START = '2026-03-03T08:00:00Z';

export async function startWorld(
  options: { stripeTimeoutMs?: number; leaseMs?: number; start?: Date | string; recordRequests?: boolean } = {},
): Promise<RunnerWorld> {
  const db = await createTestDatabase();
  const clock = new FixedClock(options.start ?? START);
  // The sandbox's card model runs on its own clock so a test can let "time heal" a card.
  const sandboxClock = new FixedClock(options.start ?? START);
  const sandbox = await startSandbox({ clock: sandboxClock, seed: 7, recordRequests: options.recordRequests ?? false });
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const boss = await startQueue(db.url, log);
  const policy = defaultPolicy();
  await savePolicy(db.sql, policy);
  const stripe = createStripeClient(
    { stripeSecretKey: sandbox.apiKey, stripeApiBase: { protocol: 'http', host: sandbox.host, port: sandbox.port } },
    { timeoutMs: options.stripeTimeoutMs ?? 2_000 },
  );
  const deps = runnerDeps({
    sql: db.sql,
    boss,
    stripe,
    clock,
    log,
    policy,
    config: { stripeRequestsPerSecond: 100, defaultTimeZone: 'UTC', workerConcurrency: 2 },
    throttle: createThrottle(100),
    leaseMs: options.leaseMs ?? 60_000,
    requestRetryBaseMs: 20,
  });
  return {
    db,
    sandbox,
    boss,
    clock,
    sandboxClock,
    policy,
    deps,
    async close() {
      await boss.stop({ graceful: false });
      await sandbox.stop();
      await db.drop();
    },
  };
}

export interface SeededCase {
  customerId: string;
  invoiceId: string;
  caseId: number;
  paymentMethod: string;
  subscriptionId: string | null;
}

/**
 * A failed invoice as the event processor leaves it: customer, invoice, open case and Stripe's own
 * declined first attempt in the ledger. Seeded with SQL so these tests do not depend on webhooks.
 */
export async function seedFailedInvoice(
  w: Pick<RunnerWorld, 'sandbox' | 'policy'> & { clock: Clock; db: { sql: Sql } },
  failure: FailureReason,
  amount = 4_900,
): Promise<SeededCase> {
  const customer = await w.sandbox.createCustomer({
    email: 'someone@example.com',
    name: 'Some One',
    country: 'DE',
    timeZone: 'Europe/Berlin',
    card: { brand: 'visa', failure, expMonth: 12, expYear: 2030 },
  });
  const inv = await w.sandbox.createFailingInvoice(customer.id, { amount, currency: 'eur', subscription: true });
  const first = w.sandbox.charges(inv.id)[0];
  const now = w.clock.now();
  const sql = w.db.sql;
  await sql`insert into customers (id, country, time_zone, default_payment_method, stripe_updated_at)
            values (${customer.id}, 'DE', 'Europe/Berlin', ${customer.paymentMethodId}, ${now})`;
  await sql`insert into invoices (id, customer_id, subscription_id, status, currency, amount_due, amount_remaining, stripe_attempt_count, stripe_created, stripe_updated_at)
            values (${inv.id}, ${customer.id}, ${inv.subscriptionId}, 'open', 'eur', ${amount}, ${amount}, 1, ${now}, ${now})`;
  const [c] =
    await sql`insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at)
            values (${inv.id}, ${customer.id}, 'eur', ${amount}, ${w.policy.version}, 'smart', ${now}) returning id`;
  const decline = first?.declineCode ?? failure;
  await sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, payment_method, card_brand, charge_id, decline_code, failure_code)
            values (${c!.id}, ${inv.id}, 1, 'stripe', 'declined', ${now}, ${now}, ${customer.paymentMethodId}, 'visa', ${inv.chargeId}, ${decline},
                    ${decline === 'expired_card' || decline === 'authentication_required' || decline === 'processing_error' ? decline : 'card_declined'})`;
  return {
    customerId: customer.id,
    invoiceId: inv.id,
    caseId: Number(c!.id),
    paymentMethod: customer.paymentMethodId,
    subscriptionId: inv.subscriptionId,
  };
}

/** Inserts a planned attempt due now, as the scheduler would, and returns its id. */
export async function planDueAttempt(sql: Sql, s: SeededCase, at: Date, source = 'scheduled'): Promise<number> {
  const [row] = await sql`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, idempotency_key)
    values (${s.caseId}, ${s.invoiceId}, 2, ${source}, 'planned', ${at}, 'test', ${`dunning:${s.invoiceId}:2`}) returning id`;
  return Number(row!.id);
}

/** Charges our runner made (Stripe's own first attempt and hosted payments excluded). */
export function apiCharges(sandbox: Sandbox, invoiceId: string) {
  return sandbox.charges(invoiceId).filter((c) => c.source === 'api');
}

export async function attemptRow(sql: Sql, id: number) {
  const [row] = await sql`select * from payment_attempts where id = ${id}`;
  return row!;
}

export async function caseRow(sql: Sql, id: number) {
  const [row] = await sql`select * from dunning_cases where id = ${id}`;
  return row!;
}

/** The retry workers on this world's queue, polling fast and repeating requests soon; resolves to their stop function. */
export function startWorldWorkers(w: RunnerWorld): Promise<() => Promise<void>> {
  return startRetryWorkers({
    sql: w.db.sql,
    boss: w.boss,
    stripe: w.deps.gateway.stripe,
    clock: w.clock,
    log: w.deps.log,
    policy: w.policy,
    config: { stripeRequestsPerSecond: 100, defaultTimeZone: 'UTC', workerConcurrency: 1 },
    pollingIntervalSeconds: 0.5,
    requestRetryBaseMs: 20,
  });
}

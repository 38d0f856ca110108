/**
 * Policies per segment as Stripe events drive them: a subscription's items and an invoice's lines
 * arrive as events, applied by the real processor with the hooks wired as `dunning start` wires them
 * (src/worker.ts); the case opens under the policy the segment rules pick, and the plan says so.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PgBoss } from 'pg-boss';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { parsePolicy } from '../../src/dunning/policy.ts';
import { savePolicy } from '../../src/dunning/scheduler.ts';
import type { ProcessorDeps } from '../../src/events/context.ts';
import { processEvent } from '../../src/events/processor.ts';
import { insertEvent } from '../../src/events/store.ts';
import { createLogger } from '../../src/log.ts';
import { QUEUES, startQueue } from '../../src/queue.ts';
import { loadReport } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import { renderTable } from '../../src/reports/render-table.ts';
import { processorDeps, wireHooks } from '../../src/worker.ts';
import { charge, event, invoice, subscription, T0 } from '../fixtures/events/stripe-objects.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const DAY_MS = 86_400_000;
const clock = new FixedClock(new Date((T0 + 60) * 1000));
// The file's top level is the default policy (28 days); `annual` overrides only its window.
const policy = parsePolicy({
  holdoutShare: 0,
  policies: { annual: { retry: { windowDays: 60 } }, 'high-value': { opsAlertOnOpen: true } },
  segments: [
    { policy: 'high-value', match: { currencies: ['usd'], amount: { min: 200_000 } } },
    { policy: 'annual', match: { intervals: ['year'] } },
  ],
});

let db: TestDatabase;
let boss: PgBoss;
let deps: ProcessorDeps;

beforeAll(async () => {
  db = await createTestDatabase();
  boss = await startQueue(db.url, log);
  await savePolicy(db.sql, policy);
  const wiring = wireHooks({ boss, clock, log, config: loadConfig({}), policy });
  deps = processorDeps({ clock, log, policy }, wiring.hooks);
});
afterAll(async () => {
  await boss?.stop({ graceful: false });
  await db?.drop();
});

async function apply(...events: Stripe.Event[]): Promise<void> {
  for (const ev of events) {
    await insertEvent(db.sql, ev);
    await processEvent(db.sql, deps, ev.id);
  }
}

/**
 * A subscription on one price billed every `interval`, and a failed renewal invoice of it whose card
 * was lost: a hard decline, so the case waits for a new card until its window ends.
 */
async function failedRenewal(n: number, interval: 'month' | 'year', amount = 4_900) {
  const id = { cus: `cus_seg${n}`, sub: `sub_seg${n}`, inv: `in_seg${n}`, price: `price_pro_${interval}` };
  const sub = subscription({ id: id.sub, customer: id.cus, status: 'past_due' });
  // Stripe docs (Subscription object): `items` is the "List of subscription items, each with an
  // attached price"; Price `recurring.interval`: "The frequency at which a subscription is billed.
  // One of `day`, `week`, `month` or `year`." `customer.subscription.*` events carry the subscription.
  sub.items.data = [
    { id: `si_seg${n}`, price: { id: id.price, product: 'prod_pro', recurring: { interval, interval_count: 1 } } },
  ] as unknown as Stripe.SubscriptionItem[];
  const inv = invoice({
    id: id.inv,
    customer: id.cus,
    amount_due: amount,
    parent: {
      type: 'subscription_details',
      quote_details: null,
      subscription_details: { metadata: {}, subscription: id.sub },
    },
  });
  // Stripe docs (Invoice line item `pricing.price_details`): `price`: "The ID of the price this item
  // is associated with."; `product`: "The ID of the product this item is associated with."
  inv.lines.data = [
    { pricing: { type: 'price_details', price_details: { price: id.price, product: 'prod_pro' } } },
  ] as unknown as Stripe.InvoiceLineItem[];
  const failed = charge({
    id: `ch_seg${n}`,
    customer: id.cus,
    paymentIntent: `pi_seg${n}`,
    declineCode: 'lost_card',
    failureCode: 'card_declined',
    created: T0 - 1,
  });
  await apply(
    event('customer.subscription.updated', sub, { created: T0 - 10 }),
    event('charge.failed', failed, { created: T0 - 1 }),
    event('invoice.payment_failed', inv, { created: T0 }),
  );
  const [c] = await db.sql`
    select id, policy_name, policy_version, opened_at, next_attempt_reason from dunning_cases where invoice_id = ${id.inv}`;
  const [deadline] = await db.sql`
    select start_after from pgboss.job where name = ${QUEUES.deadlines} and singleton_key = ${String(c!.id)}`;
  // Jobs run on wall time: the deadline is the window's end as the test clock maps it.
  const windowEnd = (deadline!.start_after as Date).getTime() - clock.wallTimeOf(c!.opened_at as Date).getTime();
  return { c: c!, windowDays: windowEnd / DAY_MS };
}

describe('policies per segment', () => {
  it('an annual-plan invoice opens under the annual policy: a 60-day window, and the reason names it', async () => {
    const { c, windowDays } = await failedRenewal(1, 'year');
    expect(c.policy_name).toBe('annual');
    expect(c.policy_version).toBe(policy.segments!.policies.annual!.version);
    expect(c.next_attempt_reason).toMatch(/^awaiting customer: .*\(policy annual\)$/);
    expect(windowDays).toBeCloseTo(60, 1);
  });

  it('dunning case names the policy the case opened with', async () => {
    const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
    const { stdout } = await promisify(execFile)(process.execPath, [cli, 'case', 'in_seg1'], {
      env: { PATH: process.env.PATH, DATABASE_URL: db.url, LOG_LEVEL: 'silent' },
      timeout: 30_000,
    });
    expect(stdout).toContain(`Policy annual ${policy.segments!.policies.annual!.version} (smart)`);
    expect(stdout).toMatch(/Next attempt .*: awaiting customer: .*\(policy annual\)/);
  });

  it('a monthly invoice matches no rule and keeps the default: 28 days, reason unchanged', async () => {
    const { c, windowDays } = await failedRenewal(2, 'month');
    expect(c.policy_name).toBe('default');
    expect(c.policy_version).toBe(policy.version);
    expect(c.next_attempt_reason).not.toContain('(policy');
    expect(windowDays).toBeCloseTo(28, 1);
  });

  it('the report breaks the cases down by the policy they opened with', async () => {
    const report = await loadReport(db.sql, {
      period: resolvePeriod({ from: '2026-05-01', to: '2026-05-31', timeZone: 'UTC', now: clock.now() }),
      currency: null,
      asOf: clock.now(),
    });
    const usd = report.currencies.find((c) => c.currency === 'usd')!;
    expect(usd.byPolicy.map((r) => [r.key, r.cases])).toEqual([
      ['annual', 1],
      ['default', 1],
    ]);
    expect(renderTable(report)).toContain('By policy (segment rules)');
  });

  it('a high-value invoice opens under its policy, which alerts ops at once whatever OPS_ALERT_MIN_AMOUNT says', async () => {
    const { c } = await failedRenewal(3, 'year', 250_000);
    // The high-value rule comes first, so this annual invoice is high-value.
    expect(c.policy_name).toBe('high-value');
    const alerts = await db.sql`select kind, payload from ops_alerts where case_id = ${c.id}`;
    expect(alerts.map((a) => [a.kind, (a.payload as { detail: string }).detail])).toEqual([
      ['case_opened_large', expect.stringMatching(/^policy high-value/)],
    ]);
    // The default policy does not ask for it: the small monthly case above got no alert.
    const [other] = await db.sql`select count(*)::int as n from ops_alerts a join dunning_cases d on d.id = a.case_id
                                 where d.invoice_id = 'in_seg2'`;
    expect(other!.n).toBe(0);
  });
});

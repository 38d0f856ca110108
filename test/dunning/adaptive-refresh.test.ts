import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { ADAPTIVE_DEFAULTS, explorationUnit } from '../../src/dunning/adaptive.ts';
import {
  createLearnedSource,
  latestSnapshot,
  refreshAdaptive,
  startAdaptiveRefresh,
} from '../../src/dunning/adaptive-refresh.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { createPolicySource, planNext, savePolicy, type SchedulerDeps } from '../../src/dunning/scheduler.ts';
import { createLogger } from '../../src/log.ts';
import { QUEUES, startQueue } from '../../src/queue.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';

const log = createLogger('silent');
// Monday 7 December 2026, 05:00 UTC.
const clock = new FixedClock('2026-12-07T05:00:00Z');
const policy = defaultPolicy();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let db: TestDatabase;
let boss: PgBoss;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  boss = await startQueue(db.url, log);
  await savePolicy(db.sql, policy);
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await boss?.stop({ graceful: false });
  await db?.drop();
});

/**
 * `n` past cases of one customer each (Berlin): Stripe's renewal declined with do_not_honor
 * (a generic decline), then one scheduled retry `delayHours` later on the same card, `wins` of
 * them paid. Written straight into the ledger tables, as the runner leaves them.
 */
async function seedRetries(prefix: string, n: number, wins: number, delayHours: number, daysAgo: number) {
  const opened = new Date(clock.now().getTime() - daysAgo * DAY);
  const retried = new Date(opened.getTime() + delayHours * HOUR);
  await db.sql`
    insert into customers (id, email, time_zone, stripe_updated_at)
    select ${prefix} || i, null, 'Europe/Berlin', ${opened}::timestamptz from generate_series(1, ${n}::int) i`;
  await db.sql`
    insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
    select 'in_' || ${prefix} || i, ${prefix} || i, 'open', 'eur', 1000, 1000, ${opened}::timestamptz, ${opened}::timestamptz
      from generate_series(1, ${n}::int) i`;
  await db.sql`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at)
    select 'in_' || ${prefix} || i, ${prefix} || i, 'eur', 1000, ${policy.version}, 'smart', ${opened}::timestamptz
      from generate_series(1, ${n}::int) i`;
  await db.sql`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at,
                                  payment_method, card_brand, decline_code)
    select c.id, c.invoice_id, 1, 'stripe', 'declined', ${opened}::timestamptz, ${opened}::timestamptz,
           'pm_' || c.customer_id, 'visa', 'do_not_honor'
      from dunning_cases c where c.customer_id like ${prefix + '%'}`;
  await db.sql`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at,
                                  payment_method, card_brand, decline_code)
    select c.id, c.invoice_id, 2, 'scheduled', case when row_number() over (order by c.id) <= ${wins} then 'succeeded' else 'declined' end,
           ${retried}::timestamptz, ${retried}::timestamptz, 'pm_' || c.customer_id, 'visa',
           case when row_number() over (order by c.id) <= ${wins} then null else 'do_not_honor' end
      from dunning_cases c where c.customer_id like ${prefix + '%'}`;
}

/**
 * `n` customers (Berlin) each with an earlier invoice recovered after a funds decline and paid at
 * `paidAt` (their observed payday), and a case opened at `opened` whose renewal was declined for
 * insufficient funds and retried once at `retried`, `wins` of them paid.
 */
async function seedFundsRetries(
  prefix: string,
  n: number,
  wins: number,
  paidAt: string,
  opened: string,
  retried: string,
) {
  await db.sql`
    insert into customers (id, time_zone, stripe_updated_at)
    select ${prefix} || i, 'Europe/Berlin', ${paidAt}::timestamptz from generate_series(1, ${n}::int) i`;
  await db.sql`
    insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, paid_at, stripe_updated_at)
    select 'in_' || ${prefix} || i || v, ${prefix} || i, 'open', 'eur', 1000, 1000, ${paidAt}::timestamptz,
           case when v = '_before' then ${paidAt}::timestamptz end, ${paidAt}::timestamptz
      from generate_series(1, ${n}::int) i, unnest(array['_before', '_now']) v`;
  await db.sql`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at,
                               status, closed_at, recovery_path, last_decline_category)
    select 'in_' || ${prefix} || i || '_before', ${prefix} || i, 'eur', 1000, ${policy.version}, 'smart',
           ${paidAt}::timestamptz - interval '3 days', 'recovered', ${paidAt}::timestamptz, 'scheduled_retry', 'funds'
      from generate_series(1, ${n}::int) i`;
  await db.sql`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at, last_decline_category)
    select 'in_' || ${prefix} || i || '_now', ${prefix} || i, 'eur', 1000, ${policy.version}, 'smart', ${opened}::timestamptz, 'funds'
      from generate_series(1, ${n}::int) i`;
  await db.sql`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at,
                                  payment_method, card_brand, decline_code, decline_category)
    select c.id, c.invoice_id, 1, 'stripe', 'declined', ${opened}::timestamptz, ${opened}::timestamptz,
           'pm_' || c.customer_id, 'visa', 'insufficient_funds', 'funds'
      from dunning_cases c where c.customer_id like ${prefix + '%'} and c.status = 'open'`;
  await db.sql`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at,
                                  payment_method, card_brand, decline_code, decline_category)
    select c.id, c.invoice_id, 2, 'scheduled', case when row_number() over (order by c.id) <= ${wins} then 'succeeded' else 'declined' end,
           ${retried}::timestamptz, ${retried}::timestamptz, 'pm_' || c.customer_id, 'visa',
           case when row_number() over (order by c.id) <= ${wins} then null else 'insufficient_funds' end,
           case when row_number() over (order by c.id) <= ${wins} then null else 'funds' end
      from dunning_cases c where c.customer_id like ${prefix + '%'} and c.status = 'open'`;
}

/** A case whose renewal Stripe declined an hour ago with do_not_honor: its first generic wait is 24 h by the policy. */
async function openCase(invoiceId: string): Promise<number> {
  const customerId = `cus_${invoiceId}`;
  const opened = new Date(clock.now().getTime() - HOUR);
  await db.sql`insert into customers (id, time_zone, stripe_updated_at) values (${customerId}, 'Europe/Berlin', ${opened})`;
  await db.sql`
    insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
    values (${invoiceId}, ${customerId}, 'open', 'eur', 1000, 1000, ${opened}, ${opened})`;
  const [row] = await db.sql<{ id: number }[]>`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at)
    values (${invoiceId}, ${customerId}, 'eur', 1000, ${policy.version}, 'smart', ${opened})
    returning id::float8 as id`;
  const caseId = row!.id;
  await db.sql`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at,
                                  payment_method, card_brand, decline_code)
    values (${caseId}, ${invoiceId}, 1, 'stripe', 'declined', ${opened}, ${opened}, ${`pm_${customerId}`}, 'visa', 'do_not_honor')`;
  return caseId;
}

function schedulerDeps(learned: SchedulerDeps['learned']): SchedulerDeps {
  return {
    boss,
    clock,
    log,
    merchantTimeZone: 'Europe/Berlin',
    policies: createPolicySource(policy),
    ...(learned ? { learned } : {}),
  };
}

/** The refresh job's work, once, in the merchant's zone (Berlin), telling `source` of the new snapshot. */
const refresh = (source?: ReturnType<typeof createLearnedSource>) =>
  refreshAdaptive({
    sql: db.sql,
    clock,
    log,
    mode: 'auto',
    merchantTimeZone: 'Europe/Berlin',
    ...(source ? { source } : {}),
  });

/** An invoice id whose stable exploration draw keeps it on learned timing. */
function learningInvoice(prefix: string): string {
  for (let i = 0; ; i += 1)
    if (explorationUnit(`${prefix}${i}`) >= ADAPTIVE_DEFAULTS.explorationShare) return `${prefix}${i}`;
}

describe('the learned-timing refresh job', () => {
  it('counts too few retries honestly, and the plan says why it keeps the policy timing', async () => {
    await seedRetries('few', 50, 10, 24, 40);
    const snap = await refresh();
    expect(snap.retries).toEqual({ generic: 50, funds: 0, temporary: 0 });
    expect(snap.inUse).toEqual({ generic: false, funds: false, temporary: false });

    const invoiceId = learningInvoice('in_few_plan');
    const caseId = await openCase(invoiceId);
    const result = await db.sql.begin((tx) => planNext(tx, schedulerDeps(createLearnedSource()), caseId));
    expect(result.kind).toBe('planned');
    const { reason } = (result as { plan: { reason: string } }).plan;
    expect(reason).toContain(
      'do_not_honor: retry 1 d after the decline: policy timing: learned timing needs 200 of your generic retries, 50 so far',
    );
  });

  it('stores a snapshot from the ledger, and a planned retry cites it', async () => {
    // After one decline: 24 h (the policy's first generic wait) 20 % of 200; 48 h: 50 % of 200.
    await seedRetries('slow', 200, 100, 48, 30);
    await seedRetries('mid', 150, 30, 24, 20);
    // Older than the 180 days learned from: not counted.
    await seedRetries('old', 40, 40, 96, 200);
    // A retry after a card change is not timing evidence.
    await db.sql`
      update payment_attempts set payment_method = 'pm_changed' where attempt_no = 2 and invoice_id = 'in_mid1'`;

    const source = createLearnedSource();
    const snap = await refresh(source);
    expect(snap.retries).toEqual({ generic: 50 + 200 + 149, funds: 0, temporary: 0 });
    expect(snap.inUse).toEqual({ generic: true, funds: false, temporary: false });

    const stored = await latestSnapshot(db.sql);
    expect(stored).toMatchObject({
      id: snap.id,
      computedAt: clock.now(),
      since: new Date(clock.now().getTime() - 180 * DAY),
      mode: 'auto',
      retries: snap.retries,
      inUse: snap.inUse,
    });
    // Delay buckets 24 h and 48 h (indexes 2 and 3 of 1, 4, 24, 48, ...): [successes, trials], all after one decline.
    expect(stored!.counts.byDelay.generic[2]).toEqual([10 + 29, 50 + 149]);
    expect(stored!.counts.byDelay.generic[3]).toEqual([100, 200]);
    expect(stored!.counts.byRowDelay.generic[0]![3]).toEqual([100, 200]);
    expect(stored!.counts.byRowDelay.generic[1]![3]).toEqual([0, 0]);
    // The local hour is the customer's (Berlin, UTC+1 in winter): 05:00 UTC is 06:00.
    expect(stored!.counts.byLocalHour.generic[6]![1]).toBe(399);

    const invoiceId = learningInvoice('in_learn');
    const caseId = await openCase(invoiceId);
    const result = await db.sql.begin((tx) => planNext(tx, schedulerDeps(source), caseId));
    expect(result.kind).toBe('planned');
    const { reason, at } = (result as { plan: { reason: string; at: Date } }).plan;
    // 2 d after the decline (an hour ago), at 06:00 Berlin, the local window's start, plus jitter.
    expect(reason).toMatch(
      /^do_not_honor: retry 2 d after the decline: 49 % success at this delay over your last 200 retries at it after 1 decline \(policy wait 24 h: 21 % over 199\)/,
    );
    expect(at.getTime()).toBeGreaterThanOrEqual(new Date('2026-12-09T05:00:00Z').getTime());
    expect(at.getTime()).toBeLessThanOrEqual(new Date('2026-12-09T05:20:00Z').getTime());
    const [row] =
      await db.sql`select plan_reason from payment_attempts where case_id = ${caseId} and status = 'planned'`;
    expect(row!.plan_reason).toBe(reason);
  });

  it("learns funds retries by days since the customer's own payday as known when the case opened, and a plan uses it", async () => {
    // Paid on 15 October (Berlin); the November renewals retried on the 16th (day 1) or the 27th (day 12).
    await seedFundsRetries('pd1_', 200, 120, '2026-10-15T06:00:00Z', '2026-11-13T05:00:00Z', '2026-11-16T05:00:00Z');
    await seedFundsRetries('pd12_', 200, 30, '2026-10-15T06:00:00Z', '2026-11-13T05:00:00Z', '2026-11-27T05:00:00Z');
    // The earlier invoice was paid after this case opened: no payday was known when it was planned.
    await seedFundsRetries('late_', 50, 5, '2026-11-14T06:00:00Z', '2026-11-13T05:00:00Z', '2026-11-16T05:00:00Z');
    const source = createLearnedSource();
    const snap = await refresh(source);
    expect(snap.retries.funds).toBe(450);
    const stored = await latestSnapshot(db.sql);
    expect(stored!.counts.byPaydayDistance).toEqual([
      [0, 0],
      [120, 200],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
      [30, 200],
    ]);

    // A customer paid on the 7th last month, declined for funds now (Monday 7 December): the
    // calendar's next payday is Friday the 11th; the merchant's data favour the day after a payday, the 8th.
    let customerId = '';
    for (let i = 0; !customerId; i += 1)
      if (explorationUnit(`in_cus_pp${i}_1_now`) >= ADAPTIVE_DEFAULTS.explorationShare) customerId = `cus_pp${i}_`;
    const invoiceId = `in_${customerId}1_now`;
    await seedFundsRetries(customerId, 1, 0, '2026-11-07T07:00:00Z', '2026-12-07T04:00:00Z', '2026-12-07T04:00:00Z');
    await db.sql`delete from payment_attempts where invoice_id = ${invoiceId} and attempt_no = 2`;
    const [c] = await db.sql<
      { id: number }[]
    >`select id::float8 as id from dunning_cases where invoice_id = ${invoiceId}`;
    const result = await db.sql.begin((tx) => planNext(tx, schedulerDeps(source), c!.id));
    const { reason, at } = (result as { plan: { reason: string; at: Date } }).plan;
    expect(reason).toContain(
      `insufficient_funds: learned payday timing: 58 % success 1 day after the payday over your last 200 funds retries at it after 1 decline (this customer's payday: the 7th, seen when in_${customerId}1_before was paid;`,
    );
    expect(at.getTime()).toBeGreaterThanOrEqual(new Date('2026-12-08T05:00:00Z').getTime());
    expect(at.getTime()).toBeLessThanOrEqual(new Date('2026-12-08T05:20:00Z').getTime());

    // Without any learned table the customer's payday is still on the calendar: paid on the 9th.
    await seedFundsRetries('cus_ninth_', 1, 0, '2026-11-09T07:00:00Z', '2026-12-07T04:00:00Z', '2026-12-07T04:00:00Z');
    await db.sql`delete from payment_attempts where invoice_id = 'in_cus_ninth_1_now' and attempt_no = 2`;
    const [ninth] = await db.sql<{ id: number }[]>`
      select id::float8 as id from dunning_cases where invoice_id = 'in_cus_ninth_1_now'`;
    const plain = await db.sql.begin((tx) => planNext(tx, schedulerDeps(undefined), ninth!.id));
    expect((plain as { plan: { reason: string } }).plan.reason).toMatch(
      /^insufficient_funds: next payday of this customer's \(the 9th, seen when in_cus_ninth_1_before was paid\), .*Wed 9 Dec/,
    );
  });

  it('runs as a daily pg-boss schedule in the merchant zone, and refreshes at start when no snapshot exists', async () => {
    await db.sql`delete from adaptive_snapshots`;
    stops.push(
      await startAdaptiveRefresh({ sql: db.sql, boss, clock, log, mode: 'auto', merchantTimeZone: 'Europe/Berlin' }),
    );
    const schedules = await boss.getSchedules(QUEUES.adaptiveRefresh);
    expect(schedules).toEqual([
      expect.objectContaining({ name: QUEUES.adaptiveRefresh, cron: '30 4 * * *', timezone: 'Europe/Berlin' }),
    ]);
    const snap = await waitFor('the first refresh at start', () => latestSnapshot(db.sql), 20_000);
    expect(snap.retries.generic).toBe(399);
  });
});

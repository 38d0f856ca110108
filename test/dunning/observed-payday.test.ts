import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daysSincePayday } from '../../src/dunning/observed-payday.ts';
import { observedPaydayOf } from '../../src/dunning/observed-payday-query.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { savePolicy } from '../../src/dunning/scheduler.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
const policy = defaultPolicy();

beforeAll(async () => {
  db = await createTestDatabase();
  await savePolicy(db.sql, policy);
});

afterAll(async () => {
  await db?.drop();
});

describe('days since the payday', () => {
  it('counts the same in SQL (the refresh) as in TypeScript (the planner), day by day over three years', async () => {
    // Leap February, short months and the 29th-31st falling on a month's last day.
    const rows = await db.sql<{ d: string; payday: number; days: number }[]>`
      select d::date::text as d, p as payday, days_since_payday(d::date, p) as days
        from generate_series('2027-01-01'::date, '2029-12-31'::date, interval '1 day') d, generate_series(1, 31) p`;
    expect(rows.length).toBe(1095 * 31 + 31);
    const wrong = rows.filter((r) => daysSincePayday(new Date(`${r.d}T12:00:00Z`), 'UTC', r.payday) !== r.days);
    expect(wrong.slice(0, 5)).toEqual([]);
    // Spot checks: the 31st falls on 28 February, so 1 March is a day after it; the 15th on the 14th is 30 days after (January has 31).
    expect(daysSincePayday(new Date('2027-03-01T12:00:00Z'), 'UTC', 31)).toBe(1);
    expect(daysSincePayday(new Date('2027-02-14T12:00:00Z'), 'UTC', 15)).toBe(30);
    expect(daysSincePayday(new Date('2027-02-15T12:00:00Z'), 'UTC', 15)).toBe(0);
  });
});

async function addCase(
  customerId: string,
  invoiceId: string,
  c: { status: string; paidAt?: string; closedAt?: string; path?: string; category: string },
) {
  const created = '2026-09-01T00:00:00Z';
  await db.sql`
    insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, paid_at, stripe_updated_at)
    values (${invoiceId}, ${customerId}, ${c.paidAt ? 'paid' : 'open'}, 'eur', 1000, 0, ${created}, ${c.paidAt ?? null}, ${created})`;
  await db.sql`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at,
                               status, closed_at, recovery_path, last_decline_category)
    values (${invoiceId}, ${customerId}, 'eur', 1000, ${policy.version}, 'smart', ${created}, ${c.status},
            ${c.status === 'open' ? null : (c.closedAt ?? c.paidAt ?? created)}, ${c.path ?? null}, ${c.category})`;
}

describe("the customer's observed payday", () => {
  it('is the newest funds recovery paid before the given time, by any path but a new card, in the customer zone', async () => {
    const cus = 'cus_payday';
    await db.sql`insert into customers (id, time_zone, stripe_updated_at) values (${cus}, 'Pacific/Auckland', now())`;
    // 14 September 23:00 UTC is the 15th in Auckland.
    await addCase(cus, 'in_sep', {
      status: 'recovered',
      paidAt: '2026-09-14T23:00:00Z',
      path: 'scheduled_retry',
      category: 'funds',
    });
    // Newer, but not evidence of a payday: a new card, a generic decline, a lost case.
    await addCase(cus, 'in_card', {
      status: 'recovered',
      paidAt: '2026-10-03T01:00:00Z',
      path: 'card_update_retry',
      category: 'funds',
    });
    await addCase(cus, 'in_generic', {
      status: 'recovered',
      paidAt: '2026-10-05T01:00:00Z',
      path: 'scheduled_retry',
      category: 'generic',
    });
    await addCase(cus, 'in_lost', { status: 'lost', closedAt: '2026-10-07T01:00:00Z', category: 'funds' });
    // Paid by the customer on the hosted page; the paid time is the invoice's, not when we closed the case.
    await addCase(cus, 'in_nov', {
      status: 'recovered',
      paidAt: '2026-11-20T02:00:00Z',
      closedAt: '2026-11-22T02:00:00Z',
      path: 'customer_paid',
      category: 'funds',
    });

    expect(await observedPaydayOf(db.sql, cus, new Date('2026-11-01T00:00:00Z'), 'Europe/Berlin')).toEqual({
      dayOfMonth: 15,
      invoiceId: 'in_sep',
      paidAt: new Date('2026-09-14T23:00:00Z'),
    });
    expect(await observedPaydayOf(db.sql, cus, new Date('2026-12-01T00:00:00Z'), 'Europe/Berlin')).toMatchObject({
      dayOfMonth: 20,
      invoiceId: 'in_nov',
    });
    expect(await observedPaydayOf(db.sql, cus, new Date('2026-09-01T00:00:00Z'), 'Europe/Berlin')).toBeNull();
    expect(await observedPaydayOf(db.sql, 'cus_nobody', new Date('2026-12-01T00:00:00Z'), 'Europe/Berlin')).toBeNull();
  });

  it("takes the merchant's zone for a customer without one", async () => {
    await db.sql`insert into customers (id, time_zone, stripe_updated_at) values ('cus_nozone', null, now())`;
    await addCase('cus_nozone', 'in_nozone', {
      status: 'recovered',
      paidAt: '2026-09-30T23:30:00Z',
      path: 'scheduled_retry',
      category: 'funds',
    });
    const p = await observedPaydayOf(db.sql, 'cus_nozone', new Date('2026-11-01T00:00:00Z'), 'Europe/Berlin');
    expect(p?.dayOfMonth).toBe(1);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpsError, retryNow } from '../../src/dunning/ops-actions.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import { planNext } from '../../src/dunning/scheduler.ts';
import { apiCharges, startWorld, type RunnerWorld } from './runner-helpers.ts';

/**
 * Card-network rules are per card, across all of a customer's invoices: networks fine a merchant
 * per card, and "never retry" is about the card, not the invoice it was charged for.
 */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

const DAY = 86_400_000;

interface Customer {
  customerId: string;
  paymentMethod: string;
  invoices: Array<{ invoiceId: string; caseId: number }>;
}

/** A customer with one card and `n` failed invoices (each its own subscription), seeded as the processor leaves them. */
async function customerWithInvoices(n: number, brand: string, openedAt: Date[]): Promise<Customer> {
  const sql = w.db.sql;
  const customer = await w.sandbox.createCustomer({
    email: 'two-subs@example.com',
    name: 'Two Subs',
    country: 'DE',
    timeZone: 'Europe/Berlin',
    card: { brand, failure: 'do_not_honor', expMonth: 12, expYear: 2030 },
  });
  const now = w.clock.now();
  await sql`insert into customers (id, country, time_zone, default_payment_method, stripe_updated_at)
            values (${customer.id}, 'DE', 'Europe/Berlin', ${customer.paymentMethodId}, ${now})`;
  const invoices: Customer['invoices'] = [];
  for (let i = 0; i < n; i += 1) {
    const inv = await w.sandbox.createFailingInvoice(customer.id, {
      amount: 4_900,
      currency: 'eur',
      subscription: true,
    });
    await sql`insert into invoices (id, customer_id, subscription_id, status, currency, amount_due, amount_remaining, stripe_attempt_count, stripe_created, stripe_updated_at)
              values (${inv.id}, ${customer.id}, ${inv.subscriptionId}, 'open', 'eur', 4900, 4900, 1, ${now}, ${now})`;
    const [c] = await sql`
      insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at)
      values (${inv.id}, ${customer.id}, 'eur', 4900, ${w.policy.version}, 'smart', ${openedAt[i] ?? now}) returning id`;
    invoices.push({ invoiceId: inv.id, caseId: Number(c!.id) });
  }
  return { customerId: customer.id, paymentMethod: customer.paymentMethodId, invoices };
}

async function declined(
  c: Customer,
  invoice: number,
  attemptNo: number,
  at: Date,
  codes: { declineCode?: string; networkAdviceCode?: string; brand: string },
): Promise<void> {
  const inv = c.invoices[invoice]!;
  await w.db.sql`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, payment_method,
                                  card_brand, decline_code, failure_code, network_advice_code)
    values (${inv.caseId}, ${inv.invoiceId}, ${attemptNo}, ${attemptNo === 1 ? 'stripe' : 'scheduled'}, 'declined', ${at}, ${at},
            ${c.paymentMethod}, ${codes.brand}, ${codes.declineCode ?? 'do_not_honor'}, 'card_declined', ${codes.networkAdviceCode ?? null})`;
}

describe('one card, one budget, across the customer’s invoices', () => {
  it('Mastercard advice 03 on invoice A stops the runner charging the same card for invoice B', async () => {
    const now = w.clock.now();
    const c = await customerWithInvoices(2, 'mastercard', [now, now]);
    // Invoice A: the network said "do not try again" (Mastercard merchant advice code 03).
    await declined(c, 0, 1, new Date(now.getTime() - 2 * DAY), { networkAdviceCode: '03', brand: 'mastercard' });
    // Invoice B: an ordinary soft decline on the same card, and a retry due now.
    await declined(c, 1, 1, new Date(now.getTime() - 3 * DAY), { brand: 'mastercard' });
    const b = c.invoices[1]!;
    const [row] = await w.db.sql`
      insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, payment_method, idempotency_key)
      values (${b.caseId}, ${b.invoiceId}, 2, 'scheduled', 'planned', ${now}, 'test', ${c.paymentMethod}, ${`dunning:${b.invoiceId}:2`})
      returning id`;

    expect(await executeAttempt(w.deps, Number(row!.id))).toBe('skipped');
    expect(apiCharges(w.sandbox, b.invoiceId)).toHaveLength(0);
    const [after] = await w.db.sql`select failure_message from payment_attempts where id = ${Number(row!.id)}`;
    expect(after!.failure_message).toContain('mastercard_advice_03');

    // And the planner does not plan another charge of that card for B either.
    const plan = await w.db.sql.begin((tx) => planNext(tx, w.deps, b.caseId));
    expect(plan.kind).not.toBe('planned');
  });

  it('two subscriptions cannot get a 16th attempt on one card within 30 days', async () => {
    const start = w.clock.now();
    const day = (d: number) => new Date(start.getTime() + d * DAY);
    const c = await customerWithInvoices(2, 'visa', [day(0), day(12)]);
    // Invoice A: 12 attempts on the card, one a day from day 0.
    for (let i = 0; i < 12; i += 1) await declined(c, 0, i + 1, day(i), { brand: 'visa' });
    await w.db
      .sql`update dunning_cases set status = 'lost', closed_at = ${day(12)} where id = ${c.invoices[0]!.caseId}`;
    // Invoice B (another subscription): 3 attempts on the same card, each answered differently.
    const codes = ['do_not_honor', 'generic_decline', 'call_issuer'];
    for (let i = 0; i < 3; i += 1) await declined(c, 1, i + 1, day(12 + i), { declineCode: codes[i]!, brand: 'visa' });

    w.clock.set(day(14.5));
    try {
      const result = await w.db.sql.begin((tx) => planNext(tx, w.deps, c.invoices[1]!.caseId));
      // 15 attempts on the card in the last 30 days: the 16th may come only once day 0's is 30 days old.
      if (result.kind === 'planned') {
        expect(result.attempt.plannedAt!.getTime()).toBeGreaterThan(day(30).getTime());
        expect(result.plan.kind === 'retry' && result.plan.reason).toContain(
          'limit of 15 attempts per card in 30 days',
        );
      } else {
        expect(result.kind).toBe('stopping');
      }
    } finally {
      w.clock.set(start);
    }
  });
});

describe('an operator cannot override card-network rules', () => {
  it('retry-now one hour after Mastercard advice 30 is refused until the 10 days are over', async () => {
    const now = w.clock.now();
    const c = await customerWithInvoices(1, 'mastercard', [now]);
    const declinedAt = new Date(now.getTime() - 3_600_000);
    // Mastercard merchant advice code 30: "retry after 10 days".
    await declined(c, 0, 1, declinedAt, { networkAdviceCode: '30', brand: 'mastercard' });
    const inv = c.invoices[0]!;
    const refused = w.db.sql.begin((tx) => retryNow(tx, w.deps, inv.invoiceId));
    await expect(refused).rejects.toThrow(OpsError);
    await expect(refused).rejects.toThrow(
      `card-network retry-after advice (held back by the network advice to wait 10 d after mastercard_advice_30 until ${new Date(declinedAt.getTime() + 10 * DAY).toISOString()}); earliest allowed ${new Date(declinedAt.getTime() + 10 * DAY).toISOString()}`,
    );
    // Nothing was planned, and a manual attempt that got into the ledger anyway is not charged.
    const [planned] = await w.db
      .sql`select 1 from payment_attempts where invoice_id = ${inv.invoiceId} and status = 'planned'`;
    expect(planned).toBeUndefined();
    const [row] = await w.db.sql`
      insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, payment_method, idempotency_key)
      values (${inv.caseId}, ${inv.invoiceId}, 2, 'manual', 'planned', ${now}, 'test', ${c.paymentMethod}, ${`dunning:${inv.invoiceId}:2`})
      returning id`;
    expect(await executeAttempt(w.deps, Number(row!.id))).toBe('skipped');
    expect(apiCharges(w.sandbox, inv.invoiceId)).toHaveLength(0);
  });

  it('retry-now on a card barred by a never-retry answer on another invoice says no time allows it', async () => {
    const now = w.clock.now();
    const c = await customerWithInvoices(2, 'mastercard', [now, now]);
    await declined(c, 0, 1, new Date(now.getTime() - DAY), { networkAdviceCode: '21', brand: 'mastercard' });
    await declined(c, 1, 1, new Date(now.getTime() - DAY), { brand: 'mastercard' });
    await expect(w.db.sql.begin((tx) => retryNow(tx, w.deps, c.invoices[1]!.invoiceId))).rejects.toThrow(
      /never-retry answer on this card \(mastercard_advice_21: .*\); no time allows another charge of this card/,
    );
  });

  it('retry-now over the 15-in-30-days limit names the limit and the earliest time', async () => {
    const start = w.clock.now();
    const day = (d: number) => new Date(start.getTime() + d * DAY);
    const c = await customerWithInvoices(2, 'visa', [day(0), day(10)]);
    for (let i = 0; i < 10; i += 1) await declined(c, 0, i + 1, day(i), { brand: 'visa' });
    for (let i = 0; i < 5; i += 1) await declined(c, 1, i + 1, day(10 + i * 0.5), { brand: 'visa' });
    w.clock.set(day(13));
    try {
      await expect(w.db.sql.begin((tx) => retryNow(tx, w.deps, c.invoices[1]!.invoiceId))).rejects.toThrow(
        `card-network attempt limit (held back by the Visa limit of 15 attempts per card in 30 days until ${new Date(day(30).getTime() + 1000).toISOString()}); earliest allowed ${new Date(day(30).getTime() + 1000).toISOString()}`,
      );
    } finally {
      w.clock.set(start);
    }
  });
});

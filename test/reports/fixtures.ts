import type { Sql } from '../../src/db.ts';

/** Hand-built dunning histories for the report tests and the browser test. */
export interface CaseSpec {
  id: string;
  currency?: string;
  amount: number;
  status: 'open' | 'recovered' | 'lost' | 'closed';
  openedAt: string;
  closedAt?: string;
  path?: string;
  recoveredAmount?: number;
  cohort?: 'smart' | 'holdout';
  code?: string;
  category?: string;
  /**
   * Ledger rows in attempt_no order: row 1 is Stripe's own first charge. Cancelled, skipped and
   * not-sent rows take an attempt_no in the ledger but are not charges.
   */
  attempts?: Array<'declined' | 'succeeded' | 'cancelled' | 'skipped' | 'not_sent'>;
  /** The named policy the case opened with (default `default`), and its stored version (default `test-policy`, an empty body). */
  policyName?: string;
  policyVersion?: string;
}

export async function insertCases(sql: Sql, specs: CaseSpec[]): Promise<Map<string, number>> {
  await sql`insert into policies (version, body) values ('test-policy', '{}') on conflict do nothing`;
  const ids = new Map<string, number>();
  for (const s of specs) {
    const currency = s.currency ?? 'usd';
    await sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_created, stripe_updated_at)
      values (${s.id}, ${'cus_' + s.id}, ${s.status === 'recovered' ? 'paid' : 'open'}, ${currency}, ${s.amount}, ${s.amount}, ${s.openedAt}, ${s.openedAt})`;
    const [row] = await sql<{ id: number }[]>`
      insert into dunning_cases (invoice_id, customer_id, currency, amount, status, policy_version, policy_name, cohort, opened_at, closed_at,
        recovery_path, recovered_amount, first_decline_code, first_decline_category, last_decline_code, last_decline_category)
      values (${s.id}, ${'cus_' + s.id}, ${currency}, ${s.amount}, ${s.status}, ${s.policyVersion ?? 'test-policy'},
        ${s.policyName ?? 'default'}, ${s.cohort ?? 'smart'}, ${s.openedAt},
        ${s.closedAt ?? null}, ${s.path ?? null}, ${s.status === 'recovered' ? (s.recoveredAmount ?? s.amount) : null},
        ${s.code ?? null}, ${s.category ?? null}, ${s.code ?? null}, ${s.category ?? null})
      returning id::int as id`;
    const caseId = row!.id;
    ids.set(s.id, caseId);
    for (const [i, outcome] of (s.attempts ?? []).entries()) {
      await sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, finished_at, decline_code, decline_category)
        values (${caseId}, ${s.id}, ${i + 1}, ${i === 0 ? 'stripe' : 'scheduled'}, ${outcome}, ${s.openedAt},
          ${outcome === 'declined' ? (s.code ?? null) : null}, ${outcome === 'declined' ? (s.category ?? null) : null})`;
    }
  }
  return ids;
}

export interface SubscriptionSpec {
  id: string;
  customer: string;
  startedAt: string;
  endedAt?: string;
  reason?: string;
}

export async function insertSubscriptions(sql: Sql, specs: SubscriptionSpec[]): Promise<void> {
  for (const s of specs) {
    await sql`insert into subscriptions (id, customer_id, status, started_at, ended_at, cancellation_reason, stripe_updated_at)
      values (${s.id}, ${s.customer}, ${s.endedAt ? 'canceled' : 'active'}, ${s.startedAt}, ${s.endedAt ?? null}, ${s.reason ?? null}, ${s.startedAt})`;
  }
}

/**
 * November 2026 in Europe/Berlin, with cases crossing both period boundaries, three currencies, an
 * invoice paid outside the worker, a lost case, a voided one and a partial payment.
 */
export const NOVEMBER: CaseSpec[] = [
  // Opened in October, recovered in November: counts as recovered in November, not in November's rate.
  {
    id: 'in_a',
    amount: 1000,
    status: 'recovered',
    openedAt: '2026-10-20T10:00:00Z',
    closedAt: '2026-11-03T10:00:00Z',
    path: 'scheduled_retry',
    code: 'insufficient_funds',
    category: 'funds',
    attempts: ['declined', 'succeeded'],
  },
  // A retry planned and cancelled (the customer updated the card) between the two charges: paid at the second charge.
  {
    id: 'in_b',
    amount: 2000,
    status: 'recovered',
    openedAt: '2026-11-02T10:00:00Z',
    closedAt: '2026-11-04T10:00:00Z',
    path: 'scheduled_retry',
    code: 'insufficient_funds',
    category: 'funds',
    attempts: ['declined', 'cancelled', 'succeeded'],
  },
  {
    id: 'in_c',
    amount: 3000,
    status: 'recovered',
    openedAt: '2026-11-05T10:00:00Z',
    closedAt: '2026-11-06T10:00:00Z',
    path: 'paid_outside',
    cohort: 'holdout',
    code: 'do_not_honor',
    category: 'generic',
    attempts: ['declined'],
  },
  // Three charges among five ledger rows: one retry skipped, one never sent.
  {
    id: 'in_d',
    amount: 4000,
    status: 'lost',
    openedAt: '2026-11-10T10:00:00Z',
    closedAt: '2026-11-25T10:00:00Z',
    code: 'expired_card',
    category: 'customer_action',
    attempts: ['declined', 'skipped', 'declined', 'not_sent', 'declined'],
  },
  {
    id: 'in_e',
    amount: 5000,
    status: 'open',
    openedAt: '2026-11-20T10:00:00Z',
    cohort: 'holdout',
    code: 'try_again_later',
    category: 'temporary',
    attempts: ['declined'],
  },
  // 23:30 UTC on 31 October is already 1 November in Berlin.
  {
    id: 'in_f',
    amount: 700,
    status: 'closed',
    openedAt: '2026-10-31T23:30:00Z',
    closedAt: '2026-11-01T09:00:00Z',
    code: 'do_not_honor',
    category: 'generic',
    attempts: ['declined'],
  },
  // Opened in November, paid in part in December: in November's rate, at risk at November's end.
  {
    id: 'in_g',
    amount: 6000,
    status: 'recovered',
    recoveredAmount: 5000,
    openedAt: '2026-11-28T10:00:00Z',
    closedAt: '2026-12-02T10:00:00Z',
    path: 'card_update_retry',
    code: 'expired_card',
    category: 'customer_action',
    attempts: ['declined', 'succeeded'],
  },
  {
    id: 'in_h',
    amount: 800,
    status: 'open',
    openedAt: '2026-09-15T10:00:00Z',
    code: 'do_not_honor',
    category: 'generic',
    attempts: ['declined'],
  },
  {
    id: 'in_i',
    currency: 'eur',
    amount: 900,
    status: 'recovered',
    openedAt: '2026-11-12T10:00:00Z',
    closedAt: '2026-11-15T10:00:00Z',
    path: 'customer_paid',
    code: 'authentication_required',
    category: 'authentication',
    attempts: ['declined'],
  },
  // 23:30 UTC on 30 November is 00:30 on 1 December in Berlin: lost in December, at risk at November's end.
  {
    id: 'in_j',
    currency: 'jpy',
    amount: 1500,
    status: 'lost',
    openedAt: '2026-11-12T10:00:00Z',
    closedAt: '2026-11-30T23:30:00Z',
    code: 'insufficient_funds',
    category: 'funds',
    attempts: ['declined', 'declined'],
  },
];

export const NOVEMBER_SUBSCRIPTIONS: SubscriptionSpec[] = [
  {
    id: 'sub_1',
    customer: 'cu1',
    startedAt: '2026-01-01T00:00:00Z',
    endedAt: '2026-11-26T00:00:00Z',
    reason: 'payment_failed',
  },
  { id: 'sub_2', customer: 'cu2', startedAt: '2026-02-01T00:00:00Z' },
  {
    id: 'sub_3',
    customer: 'cu3',
    startedAt: '2026-03-01T00:00:00Z',
    endedAt: '2026-11-10T00:00:00Z',
    reason: 'cancellation_requested',
  },
  // Started inside the period: not in the churn denominator, so not in the numerator either.
  {
    id: 'sub_4',
    customer: 'cu4',
    startedAt: '2026-11-05T00:00:00Z',
    endedAt: '2026-11-20T00:00:00Z',
    reason: 'payment_failed',
  },
  {
    id: 'sub_5',
    customer: 'cu5',
    startedAt: '2026-01-01T00:00:00Z',
    endedAt: '2026-10-15T00:00:00Z',
    reason: 'payment_failed',
  },
];

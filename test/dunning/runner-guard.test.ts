import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCharge, type CaseHistory, type LedgerAttempt } from '../../src/dunning/planner.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import {
  apiCharges,
  attemptRow,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
} from './runner-helpers.ts';

/**
 * The runner's last check before charging: a card that answered "never retry", or that reached a
 * network limit, is not charged even if a plan made without that knowledge says so.
 */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

describe('runner guard', () => {
  it('a planned attempt on a card that answered lost_card is skipped, not charged, and the case waits for the customer', async () => {
    const s = await seedFailedInvoice(w, 'lost_card');
    // As if planned before the decline code reached the ledger.
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('skipped');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
    const a = await attemptRow(w.db.sql, id);
    expect(a.status).toBe('skipped');
    expect(a.failure_message).toBe('not charged: lost_card: this card must never be retried');
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c.status).toBe('open');
    expect(c.next_attempt_reason).toMatch(/^awaiting customer: lost_card/);
    const planned = await w.db
      .sql`select 1 from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(planned).toHaveLength(0);
  });

  it('a soft decline on record does not stop the charge', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('declined');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
  });
});

describe('checkCharge (pure)', () => {
  const now = new Date('2026-03-20T08:00:00Z');
  const declined = (attemptNo: number, at: Date, declineCode: string, paymentMethod = 'pm_1'): LedgerAttempt => ({
    attemptNo,
    at,
    source: attemptNo === 1 ? 'stripe' : 'scheduled',
    outcome: 'declined',
    paymentMethod,
    decline: { declineCode, failureCode: 'card_declined', cardBrand: 'visa' },
  });
  const history = (attempts: LedgerAttempt[], currentPaymentMethod: string | null = null): CaseHistory => ({
    invoiceId: 'in_1',
    openedAt: new Date('2026-03-01T08:00:00Z'),
    cohort: 'smart',
    attempts,
    currentPaymentMethod,
  });
  const customer = { timeZone: null, country: null, cardBrand: 'visa' };

  it('bars a card after a never-retry answer on it, but not a new card', () => {
    const h = [
      declined(1, new Date('2026-03-01T08:00:00Z'), 'insufficient_funds'),
      declined(2, new Date('2026-03-05T08:00:00Z'), 'stolen_card'),
    ];
    expect(checkCharge(history(h), customer, now)).toEqual({
      allowed: false,
      rule: 'never_retry',
      reason: 'stolen_card: this card must never be retried',
      until: null,
    });
    expect(checkCharge(history(h, 'pm_new'), customer, now)).toEqual({ allowed: true });
  });

  it('bars a 16th attempt on one card within 30 days (Stripe and Visa limit of 15)', () => {
    const h = Array.from({ length: 15 }, (_, i) =>
      declined(i + 1, new Date(now.getTime() - (15 - i) * 3_600_000), 'do_not_honor'),
    );
    const check = checkCharge(history(h), customer, now);
    expect(check.allowed).toBe(false);
    expect(check.allowed ? '' : check.reason).toMatch(
      /^held back by the Visa limit of 15 attempts per card in 30 days until /,
    );
    expect(checkCharge(history(h.slice(1)), customer, now)).toEqual({ allowed: true });
  });
});

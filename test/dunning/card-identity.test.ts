import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryWithNewCard } from '../../src/dunning/hooks.ts';
import { parsePolicy } from '../../src/dunning/policy.ts';
import { planNext, savePolicy } from '../../src/dunning/scheduler.ts';
import { recordCardUpdate } from '../../src/ledger.ts';
import { seedFailedInvoice, startWorld, type RunnerWorld, type SeededCase } from './runner-helpers.ts';

/**
 * Suspected defects of card identity, each proven (and fixed) or disproven by a test that stays.
 * Stripe: `card.fingerprint` "Uniquely identifies this particular card number. You can use this
 * attribute to check whether two customers who've signed up with you are using the same card
 * number, for example." (PaymentMethod.card.fingerprint, API reference)
 */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function cardOf(pm: string, customerId: string, fingerprint: string, brand: string): Promise<void> {
  await w.db.sql`insert into payment_method_cards (payment_method, customer_id, fingerprint, brand, updated_at)
                 values (${pm}, ${customerId}, ${fingerprint}, ${brand}, ${w.clock.now()})
                 on conflict (payment_method) do update set fingerprint = excluded.fingerprint, brand = excluded.brand`;
}

async function decline(
  s: SeededCase,
  attemptNo: number,
  at: Date,
  o: { pm?: string; brand?: string; declineCode?: string | null; networkDeclineCode?: string; fingerprint?: string },
): Promise<void> {
  await w.db.sql`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, payment_method,
                                  card_fingerprint, card_brand, decline_code, failure_code, network_decline_code)
    values (${s.caseId}, ${s.invoiceId}, ${attemptNo}, 'scheduled', 'declined', ${at}, ${at}, ${o.pm ?? s.paymentMethod},
            ${o.fingerprint ?? null}, ${o.brand ?? 'visa'}, ${o.declineCode === undefined ? 'processing_error' : o.declineCode},
            ${o.declineCode === null ? null : 'card_declined'}, ${o.networkDeclineCode ?? null})`;
}

describe('card identity', () => {
  it('the same card re-added under a new pm_ id is still barred by its never-retry answer', async () => {
    // Stripe's first charge answered stolen_card on card A (fingerprint fp_same).
    const s = await seedFailedInvoice(w, 'stolen_card');
    await cardOf(s.paymentMethod, s.customerId, 'fp_same', 'visa');
    // The customer adds the very same card number again: a new pm_ id, the same fingerprint.
    const readded = `${s.paymentMethod}_again`;
    await cardOf(readded, s.customerId, 'fp_same', 'visa');
    const result = await w.db.sql.begin((tx) => retryWithNewCard(tx, w.deps, s.caseId, readded));
    expect(result.kind).not.toBe('planned');
    const [planned] = await w.db
      .sql`select 1 from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(planned).toBeUndefined();
  });

  it("the card updater's change of expiry (same number, same fingerprint) does not reset the 30-day count", async () => {
    const s = await seedFailedInvoice(w, 'processing_error');
    await cardOf(s.paymentMethod, s.customerId, 'fp_kept', 'visa');
    const lenient = parsePolicy({ retry: { maxAttempts: 20 } });
    await savePolicy(w.db.sql, lenient);
    await w.db.sql`update dunning_cases set policy_version = ${lenient.version} where id = ${s.caseId}`;
    const start = w.clock.now();
    // 15 attempts on the card within 14 days (attempt 1 is Stripe's, seeded at `start`).
    for (let i = 2; i <= 15; i += 1)
      await decline(s, i, new Date(start.getTime() + (i - 1) * DAY), { fingerprint: 'fp_kept' });
    w.clock.set(new Date(start.getTime() + 15 * DAY));
    try {
      // The updater renews the expiry: the same id, and the fingerprint stays (same card number).
      await recordCardUpdate(w.db.sql, s.paymentMethod, s.customerId, w.clock.now());
      const result = await w.db.sql.begin((tx) =>
        retryWithNewCard(tx, w.deps, s.caseId, s.paymentMethod, { updated: true }),
      );
      if (result.kind === 'planned') {
        expect(result.attempt.plannedAt!.getTime()).toBeGreaterThan(start.getTime() + 30 * DAY);
      } else {
        expect(result.kind).toBe('unchanged');
      }
    } finally {
      w.clock.set(start);
    }
  });

  it('limits use the brand of the card about to be charged, not the last brand seen on the invoice', async () => {
    const s = await seedFailedInvoice(w, 'processing_error');
    const start = w.clock.now();
    // A policy that allows many attempts: only the network limit may hold the retry back.
    const lenient = parsePolicy({ retry: { maxAttempts: 20 } });
    await savePolicy(w.db.sql, lenient);
    await w.db.sql`update dunning_cases set policy_version = ${lenient.version} where id = ${s.caseId}`;
    // Card A is a Mastercard: 10 declines within the last 24 hours.
    const cardA = s.paymentMethod;
    await w.db.sql`update payment_attempts set card_brand = 'mastercard' where invoice_id = ${s.invoiceId}`;
    for (let i = 2; i <= 10; i += 1)
      await decline(s, i, new Date(start.getTime() + (i - 1) * HOUR), { brand: 'mastercard' });
    // Then card B, a Visa, declined once: the last brand on the invoice is now visa.
    await decline(s, 11, new Date(start.getTime() + 10 * HOUR), { pm: 'pm_visa_b', brand: 'visa' });
    w.clock.set(new Date(start.getTime() + 11 * HOUR));
    try {
      // The customer makes card A the default again: a retry on A must wait for Mastercard's 24 hours.
      const result = await w.db.sql.begin((tx) => retryWithNewCard(tx, w.deps, s.caseId, cardA));
      expect(result.kind).toBe('planned');
      if (result.kind !== 'planned') return;
      expect(result.attempt.plannedAt!.getTime()).toBeGreaterThan(start.getTime() + 24 * HOUR);
      expect(result.plan.kind === 'retry' && result.plan.reason).toContain('Mastercard limit of 10 declines');
    } finally {
      w.clock.set(start);
    }
  });

  it('a decline that carries only a network_decline_code is a decline: Visa category 1 (43, stolen) bars the card', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    // Stripe's first charge: no decline_code, no failure code, only Visa's network response 43.
    await w.db.sql`update payment_attempts set decline_code = null, failure_code = null, network_decline_code = '43',
                          card_brand = 'visa' where invoice_id = ${s.invoiceId}`;
    const result = await w.db.sql.begin((tx) => planNext(tx, w.deps, s.caseId));
    expect(result.kind).toBe('awaiting');
    expect('plan' in result && 'reason' in result.plan && result.plan.reason).toContain('visa_category_1_43');
  });
});

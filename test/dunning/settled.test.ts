import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleDeadline } from '../../src/dunning/final-action.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import {
  apiCharges,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
} from './runner-helpers.ts';

/**
 * "Paid at Stripe" closes the case whoever sees it first: the runner's read before charging, or
 * the deadline's read before the final action. invoice.paid may be parked (a handler failed) or
 * late, and a case left open would be dunned, or counted lost, for money already in.
 */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

describe('an invoice paid at Stripe whose invoice.paid event we never processed', () => {
  it('the runner skips the charge and closes the case as recovered', async () => {
    const s = await seedFailedInvoice(w, 'insufficient_funds');
    await w.sandbox.payInvoiceOutOfBand(s.invoiceId);
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('skipped');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
    expect(await caseRow(w.db.sql, s.caseId)).toMatchObject({ status: 'recovered', next_attempt_at: null });
  });

  it('the deadline applies no final action and closes the case as recovered', async () => {
    const s = await seedFailedInvoice(w, 'expired_card');
    await w.sandbox.payInvoiceOutOfBand(s.invoiceId);
    expect(await handleDeadline(w.deps, { caseId: s.caseId, kind: 'await', reason: 'test', attemptsSeen: 1 })).toBe(
      'stood_down',
    );
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c).toMatchObject({ status: 'recovered', final_action: null });
    const sub = await w.deps.gateway.stripe.subscriptions.retrieve(s.subscriptionId!);
    expect(sub.status).not.toBe('canceled');
  });
});

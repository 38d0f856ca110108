import type Stripe from 'stripe';
import { lockCustomer } from '../customer-lock.ts';
import { call } from '../stripe/charge.ts';
import { listSavedCards } from '../stripe/saved-cards.ts';
import type { FinalActionDeps } from './final-action.ts';
import { replanWithSavedCards } from './hooks.ts';
import type { DeadlineJob } from './scheduler.ts';
import * as store from './store.ts';

/**
 * The I/O around backup retries on other cards on file: listing the customer's saved cards from
 * Stripe (outside any transaction), and making the card that paid the default when the policy says
 * so. What to charge is the planner's decision (see backup-cards.ts).
 */

/** A `cards` job: list the customer's saved cards, store them, and plan the case again with them. */
export async function listCardsAndPlan(deps: FinalActionDeps, job: DeadlineJob): Promise<'done' | 'stood_down'> {
  const log = deps.log.child({ caseId: job.caseId });
  const caseRow = await store.caseById(deps.sql, job.caseId);
  if (!caseRow || caseRow.status !== 'open') {
    log.info('saved cards not listed: the case is closed');
    return 'stood_down';
  }
  const listedAt = deps.clock.now();
  // A failed listing throws: the job is repeated with backoff, and the case waits as planned.
  const cards = await listSavedCards(deps.gateway, caseRow.customerId);
  const result = await deps.sql.begin(async (tx) => {
    // The customer's lock first, as every transaction that plans their case (and its reminders).
    await lockCustomer(tx, caseRow.customerId);
    await store.replaceSavedCards(tx, caseRow.customerId, cards, listedAt);
    return replanWithSavedCards(tx, deps, job.caseId);
  });
  log.info({ cards: cards.length, result: result.kind }, 'saved cards listed: case planned again');
  return 'done';
}

/**
 * Makes the backup card that just paid the customer's default for future invoices
 * (`invoice_settings.default_payment_method`), when the case's policy asks for it. The payment
 * stands either way, so a failure here is logged, not retried.
 */
export async function promoteBackupCard(
  deps: FinalActionDeps,
  caseId: number,
  invoiceId: string,
  paymentMethod: string | null,
): Promise<boolean> {
  const caseRow = await store.caseById(deps.sql, caseId);
  if (!caseRow || !paymentMethod) return false;
  const policy = await deps.policies.get(deps.sql, caseRow.policyVersion);
  if (!policy.retry.backupCards.promote) return false;
  const params: Stripe.CustomerUpdateParams = { invoice_settings: { default_payment_method: paymentMethod } };
  // Stripe charges the subscription's own card before the customer's default: where the
  // subscription has one, it must change too, or the next renewal charges the failing card again.
  const [own] = await deps.sql<{ id: string }[]>`
    select s.id from invoices i join subscriptions s on s.id = i.subscription_id
     where i.id = ${invoiceId} and s.default_payment_method is not null`;
  try {
    await call(deps.gateway, (s) => s.customers.update(caseRow.customerId, params));
    if (own) await call(deps.gateway, (s) => s.subscriptions.update(own.id, { default_payment_method: paymentMethod }));
  } catch (err) {
    deps.log.warn(
      { err, caseId, invoiceId, paymentMethod },
      'backup card paid but could not be made the default; the customer keeps the old default',
    );
    return false;
  }
  deps.log.info({ caseId, invoiceId, paymentMethod }, 'backup card that paid made the default payment method');
  return true;
}

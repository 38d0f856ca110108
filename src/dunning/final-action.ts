import type Stripe from 'stripe';
import { lockCustomerOfCase, lockCustomerOfInvoice } from '../customer-lock.ts';
import type { Sql, Tx } from '../db.ts';
import { call, classifyChargeError, paidBy, retrieveInvoice, type StripeGateway } from '../stripe/charge.ts';
import { activeAttempt, closeCase, ledgerOf, recoveryPath } from '../ledger.ts';
import { subscriptionOfInvoice } from '../stripe/read.ts';
import type { FinalAction } from './policy.ts';
import { pauseOfInvoice } from './collection-pause.ts';
import {
  cancelPlanned,
  holdOf,
  planNext,
  scheduleWindowDeadline,
  stripeHold,
  type DeadlineJob,
  type SchedulerDeps,
} from './scheduler.ts';
import * as store from './store.ts';
import { listCardsAndPlan } from './backup-card-shell.ts';

/**
 * What happens when dunning gives up: the policy's final action, applied through the Stripe API
 * with an idempotency key per (invoice, action), then the case is closed as lost.
 */

export interface CaseClosedEvent {
  caseId: number;
  invoiceId: string;
  status: 'recovered' | 'lost' | 'closed';
  reason: string;
  at: Date;
}

export interface FinalActionDeps extends SchedulerDeps {
  sql: Sql;
  gateway: StripeGateway;
  /** E.g. the reminders' caseClosed (thank-you or final notice). */
  onCaseClosed?: (tx: Tx, e: CaseClosedEvent) => Promise<void>;
}

/** Applies one final action; returns what was done, for the case record. */
export async function applyFinalAction(
  gateway: StripeGateway,
  action: FinalAction,
  invoiceId: string,
  subscriptionId: string | null,
): Promise<string> {
  const idempotencyKey = `dunning-final:${invoiceId}:${action}`;
  const refusedIsDone = async (fn: () => Promise<unknown>, done: string): Promise<string> => {
    try {
      await fn();
      return done;
    } catch (err) {
      // Already cancelled / already uncollectible: the goal is reached; anything else is retried.
      const outcome = classifyChargeError(err);
      if (outcome.kind === 'refused') return `${done} (Stripe: ${outcome.message})`;
      throw new Error(`final action ${action} on invoice ${invoiceId} failed`, { cause: err });
    }
  };
  switch (action) {
    case 'leave_past_due':
      return action;
    case 'mark_uncollectible':
      return refusedIsDone(
        () => call(gateway, (s) => s.invoices.markUncollectible(invoiceId, {}, { idempotencyKey })),
        action,
      );
    case 'cancel_subscription':
      if (!subscriptionId) return `${action}: invoice has no subscription, nothing cancelled`;
      return refusedIsDone(
        () => call(gateway, (s) => s.subscriptions.cancel(subscriptionId, {}, { idempotencyKey })),
        action,
      );
    case 'pause_collection':
      if (!subscriptionId) return `${action}: invoice has no subscription, nothing paused`;
      return refusedIsDone(
        () =>
          call(gateway, (s) =>
            s.subscriptions.update(subscriptionId, { pause_collection: { behavior: 'void' } }, { idempotencyKey }),
          ),
        action,
      );
  }
}

/**
 * The deadline job: the customer had until now (`await`), or the planner stopped (`stop`). If the
 * ledger moved since the job was planned (a new card, a manual retry), it stands down.
 */
export async function handleDeadline(deps: FinalActionDeps, job: DeadlineJob): Promise<'done' | 'stood_down'> {
  const log = deps.log.child({ caseId: job.caseId });
  if (job.kind === 'cards') return listCardsAndPlan(deps, job);
  if (job.kind === 'resume') {
    // A Stripe pause ran out by itself: plan the case again (the planner stops it if its time is
    // up), unless something holds it still or it closed meanwhile.
    const planned = await deps.sql.begin(async (tx) => {
      await lockCustomerOfCase(tx, job.caseId);
      const c = await store.caseById(tx, job.caseId, true);
      if (!c || c.status !== 'open' || (await holdOf(tx, c, deps.clock.now())) !== null) return false;
      await planNext(tx, deps, c.id);
      return true;
    });
    log.info({ planned }, planned ? 'Stripe pause over: case planned again' : 'Stripe pause over: nothing to plan');
    return planned ? 'done' : 'stood_down';
  }
  // Every transaction of the deadline takes the customer's lock first, as the runner, the event
  // processor and the mailer do: closing a case (and cancelling or planning its reminders) then
  // never happens while the mailer decides an email that lists the case's invoice.
  const check = await deps.sql.begin(async (tx) => {
    await lockCustomerOfCase(tx, job.caseId);
    const c = await store.caseById(tx, job.caseId, true);
    // Held by ops or by Stripe's pause_collection: no final action while collection is stopped;
    // lifting the hold plans the case again, and the planner stops it then if its time is up.
    if (!c || c.status !== 'open') return null;
    const hold = await holdOf(tx, c, deps.clock.now());
    if (hold !== null) {
      if (!c.paused) await endOrAwaitStripePause(tx, deps, c, hold);
      return null;
    }
    const attempts = await store.attemptsOf(tx, c.invoiceId);
    if (attempts.length !== job.attemptsSeen) return null;
    if (activeAttempt(attempts)) return null;
    const invoice = await store.invoiceById(tx, c.invoiceId);
    const policy = await deps.policies.get(tx, c.policyVersion);
    return { c, subscriptionId: invoice?.subscriptionId ?? null, action: policy.finalAction };
  });
  if (!check) {
    log.info({ kind: job.kind }, 'deadline stands down: the case moved on');
    return 'stood_down';
  }
  const { c, action } = check;
  let subscriptionId = check.subscriptionId;
  const remote = await retrieveInvoice(deps.gateway, c.invoiceId);
  if (remote === null) {
    await closeForMissingInvoice(deps, c.id, c.invoiceId);
    return 'stood_down';
  }
  const remoteHold = remote.status === 'open' ? stripeHold(c, pauseOfInvoice(remote), deps.clock.now()) : null;
  if (remoteHold) {
    await deps.sql.begin(async (tx) => {
      await lockCustomerOfCase(tx, c.id);
      const fresh = await store.caseById(tx, c.id, true);
      if (fresh?.status === 'open') await endOrAwaitStripePause(tx, deps, fresh, remoteHold);
    });
    log.info({}, 'deadline stands down: collection is paused at Stripe');
    return 'stood_down';
  }
  if (remote.status === 'paid' || remote.status === 'void') {
    // No final action against a settled invoice; and the case closes now, whether or not its
    // invoice.paid event ever gets processed (it may be parked).
    await deps.sql.begin(async (tx) => {
      await lockCustomerOfCase(tx, c.id);
      await store.syncInvoiceStatus(
        tx,
        c.invoiceId,
        remote.status ?? 'open',
        remote.amount_paid,
        remote.amount_remaining,
        deps.clock.now(),
      );
      await closeSettledAtStripe(tx, deps, c.id, remote, deps.clock.now());
    });
    log.info({ status: remote.status }, 'deadline stands down: invoice settled at Stripe, case closed');
    return 'stood_down';
  }
  subscriptionId ??= subscriptionOfInvoice(remote);
  const done = await applyFinalAction(deps.gateway, action, c.invoiceId, subscriptionId);
  const at = deps.clock.now();
  const reason = job.kind === 'await' ? `no customer action in time: ${job.reason}` : job.reason;
  const closed = await deps.sql.begin(async (tx) => {
    await lockCustomerOfCase(tx, c.id);
    await store.recordFinalAction(tx, c.id, done, at);
    // The case lock orders this against a card update planning its retry. One that got in while
    // Stripe applied the action still runs: the customer acted, and a paid invoice beats a lost
    // case. If it fails, the planner stops again and the next deadline closes the case.
    await store.caseById(tx, c.id, true);
    if ((await store.attemptsOf(tx, c.invoiceId)).length !== job.attemptsSeen) return false;
    await cancelPlanned(tx, deps, c.invoiceId, 'case lost');
    if (await closeCase(tx, c.id, { status: 'lost', reason, at })) {
      await deps.onCaseClosed?.(tx, { caseId: c.id, invoiceId: c.invoiceId, status: 'lost', reason, at });
    }
    return true;
  });
  if (!closed) {
    log.warn(
      { invoiceId: c.invoiceId, finalAction: done },
      'final action applied, but a new attempt arrived meanwhile: the case stays open for it',
    );
    return 'stood_down';
  }
  log.info({ invoiceId: c.invoiceId, finalAction: done }, 'case lost: final action applied');
  return 'done';
}

/**
 * Closes the open case of an invoice that Stripe says is paid (recovered) or void (closed), as the
 * invoice.paid / invoice.voided events would: the runner and the deadline read it from Stripe, and
 * the event may be parked or late. False when the invoice is not settled or the case was closed.
 */
export async function closeSettledAtStripe(
  tx: Tx,
  deps: Pick<FinalActionDeps, 'onCaseClosed'>,
  caseId: number,
  remote: Stripe.Invoice,
  at: Date,
): Promise<boolean> {
  const invoiceId = remote.id;
  if (remote.status === 'paid') {
    const offStripe = (remote.amount_paid_off_stripe ?? 0) > 0;
    const path = recoveryPath(await ledgerOf(tx, invoiceId), paidBy(remote).chargeId, offStripe);
    const reason = 'invoice paid (read from Stripe)';
    const closed = await closeCase(tx, caseId, {
      status: 'recovered',
      reason,
      at,
      recoveryPath: path,
      invoicePaid: remote.amount_paid,
    });
    if (closed) await deps.onCaseClosed?.(tx, { caseId, invoiceId, status: 'recovered', reason, at });
    return closed;
  }
  if (remote.status === 'void') {
    const reason = 'invoice voided (read from Stripe)';
    const closed = await closeCase(tx, caseId, { status: 'closed', reason, at });
    if (closed) await deps.onCaseClosed?.(tx, { caseId, invoiceId, status: 'closed', reason, at });
    return closed;
  }
  return false;
}

/**
 * A Stripe pause_collection that still holds a case. Before the dunning window ends, the case
 * waits: lifting the pause plans it again, and a deadline at the window's end makes sure it is
 * looked at again. Once the window is over it is closed (status `closed`, no final action): the
 * merchant stopped collection at Stripe, so cancelling the subscription or marking the invoice
 * against that choice is not ours to do, and a case must not stay open for ever. The invoice stays
 * open at Stripe, which collects it itself when the pause is lifted.
 */
async function endOrAwaitStripePause(tx: Tx, deps: FinalActionDeps, c: store.CaseRow, hold: string): Promise<void> {
  const policy = await deps.policies.get(tx, c.policyVersion);
  const windowEnd = new Date(c.windowStartsAt.getTime() + policy.retry.windowDays * 86_400_000);
  const at = deps.clock.now();
  if (at < windowEnd) {
    await scheduleWindowDeadline(tx, deps, c.id, `held: ${hold}`);
    return;
  }
  const reason = `dunning window ended while ${hold}: closed without a final action`;
  await cancelPlanned(tx, deps, c.invoiceId, reason);
  if (await closeCase(tx, c.id, { status: 'closed', reason, at })) {
    await deps.onCaseClosed?.(tx, { caseId: c.id, invoiceId: c.invoiceId, status: 'closed', reason, at });
  }
}

/** The reason a case is closed when Stripe no longer knows its invoice. */
export const MISSING_INVOICE =
  'invoice not found at Stripe (deleted, or it belongs to another account or mode than STRIPE_SECRET_KEY)';

/**
 * Stripe answered 404 for the case's invoice: nothing can be charged or acted on, now or later.
 * The case is closed (not lost: no money was owed on an invoice that does not exist) and what was
 * planned is cancelled, so no job asks Stripe again.
 */
export async function closeForMissingInvoice(deps: FinalActionDeps, caseId: number, invoiceId: string): Promise<void> {
  const at = deps.clock.now();
  await deps.sql.begin(async (tx) => {
    // The customer's lock first: cancelling locks attempt rows before the case (see lockCustomerOfInvoice).
    await lockCustomerOfInvoice(tx, invoiceId);
    await cancelPlanned(tx, deps, invoiceId, MISSING_INVOICE);
    if (await closeCase(tx, caseId, { status: 'closed', reason: MISSING_INVOICE, at })) {
      await deps.onCaseClosed?.(tx, { caseId, invoiceId, status: 'closed', reason: MISSING_INVOICE, at });
    }
  });
  deps.log.warn({ caseId, invoiceId }, 'invoice not found at Stripe: case closed');
}

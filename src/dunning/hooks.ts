import type { Tx } from '../db.ts';
import type { DomainHooks } from '../events/hooks.ts';
import { planNextAttempt, type Plan } from './planner.ts';
import { pausedAt, pauseReason } from './collection-pause.ts';
import {
  cancelPlanned,
  holdOf,
  loadPlanContext,
  planNext,
  recordPlan,
  scheduleResume,
  stripePauseHolds,
  type PlanContext,
  type PlanResult,
  type SchedulerDeps,
} from './scheduler.ts';
import { activeAttempt } from '../ledger.ts';
import * as store from './store.ts';
import type { AttemptSource } from './store.ts';

/**
 * The retry engine's reaction to domain events. Every hook runs inside the event processor's
 * transaction, so a plan and the event that caused it commit together. The structural type
 * matches `DomainHooks` from src/events/hooks.ts.
 */
export interface DunningHooks {
  paymentFailed(
    tx: Tx,
    e: { caseId: number; invoiceId: string; attemptId?: number | null; opened?: boolean; at: Date },
  ): Promise<void>;
  caseClosed(
    tx: Tx,
    e: { caseId: number; invoiceId: string; status: string; reason?: string | null; at: Date },
  ): Promise<void>;
  paymentMethodChanged(
    tx: Tx,
    e: { customerId: string; paymentMethod?: string | null; at: Date; updated?: boolean },
  ): Promise<void>;
  declineLearned(tx: Tx, e: { caseId: number; invoiceId: string; attemptId: number; at: Date }): Promise<void>;
  collectionPauseChanged(tx: Tx, e: { subscriptionId: string; at: Date }): Promise<void>;
}

export function createDunningHooks(deps: SchedulerDeps): DunningHooks & DomainHooks {
  return {
    async paymentFailed(tx, e) {
      // Idempotent: a redelivered failure, or the webhook of our own declined attempt, finds the
      // attempt the runner already planned and changes nothing.
      await planNext(tx, deps, e.caseId);
    },
    async caseClosed(tx, e) {
      const n = await cancelPlanned(tx, deps, e.invoiceId, `case closed: ${e.reason ?? e.status}`);
      if (n > 0)
        deps.log.info({ caseId: e.caseId, invoiceId: e.invoiceId, cancelled: n }, 'planned attempts cancelled');
    },
    async declineLearned(tx, e) {
      await replanWithLateDetails(tx, deps, e.caseId);
    },
    async paymentMethodChanged(tx, e) {
      if (!e.paymentMethod) return;
      for (const c of await store.openCasesOfCustomer(tx, e.customerId)) {
        await retryWithNewCard(tx, deps, c.id, e.paymentMethod, { updated: e.updated === true });
      }
    },
    async collectionPauseChanged(tx, e) {
      await followCollectionPause(tx, deps, e.subscriptionId);
    },
  };
}

/**
 * Stripe paused or resumed collection on a subscription. Paused: its invoices' planned attempts
 * (and their jobs) are withdrawn, as `dunning pause` does; the runner would skip them anyway.
 * Resumed: each open case is planned again (a case ops paused stays paused).
 */
export async function followCollectionPause(tx: Tx, deps: SchedulerDeps, subscriptionId: string): Promise<void> {
  const now = deps.clock.now();
  const pause = await store.collectionPauseOf(tx, subscriptionId);
  for (const listed of await store.openCasesOfSubscription(tx, subscriptionId)) {
    // Decide on the locked row: the case may have closed while we waited for its lock.
    const c = await store.caseById(tx, listed.id, true);
    if (!c || c.status !== 'open' || !stripePauseHolds(c)) continue;
    if (pause && pausedAt(pause, now)) {
      const reason = pauseReason(pause);
      const n = await cancelPlanned(tx, deps, c.invoiceId, reason);
      await store.setNextAttempt(tx, c.id, null, `held: ${reason}`, now);
      if (pause.resumesAt) await scheduleResume(tx, deps, c.id, pause.resumesAt, reason);
      await deps.onCaseHeld?.(tx, { caseId: c.id, at: now });
      deps.log.info({ caseId: c.id, invoiceId: c.invoiceId, cancelled: n }, 'collection paused at Stripe: case held');
    } else {
      if (!c.paused) await deps.onCaseReleased?.(tx, { caseId: c.id, at: now });
      const result = await planNext(tx, deps, c.id);
      deps.log.info(
        { caseId: c.id, invoiceId: c.invoiceId, result: result.kind },
        'collection resumed at Stripe: case planned again',
      );
    }
  }
}

/**
 * A new card deserves a prompt retry, also after a hard decline on the old one (the planner bars
 * only the card that was declined). A planned attempt on the old card is replaced; one that is
 * running or unresolved is left alone (the unique index would refuse a second one anyway).
 * `updated`: the card updater gave this same id new details, so it counts as a new card even
 * where the id was tried or is already planned (the planner sees its earlier declines as another card's).
 */
export async function retryWithNewCard(
  tx: Tx,
  deps: SchedulerDeps,
  caseId: number,
  paymentMethod: string,
  o: { updated?: boolean } = {},
): Promise<PlanResult> {
  const caseRow = await store.caseById(tx, caseId, true);
  if (!caseRow || caseRow.status !== 'open') return { kind: 'unchanged', why: 'case is not open' };
  const held = await holdOf(tx, caseRow, deps.clock.now());
  if (held) return { kind: 'unchanged', why: held };
  const ctx = await loadPlanContext(tx, deps, caseRow, paymentMethod);
  const active = activeAttempt(ctx.attempts);
  if (active && active.status !== 'planned')
    return { kind: 'unchanged', why: `attempt #${active.attemptNo} is ${active.status}` };
  if (active && active.paymentMethod === paymentMethod && !o.updated)
    return { kind: 'unchanged', why: 'already planned with this card' };
  // The planner's view of the ledger, where attempts before a card update name the card they were on.
  const tried = ctx.history.attempts.filter((a) => a.outcome !== 'planned');
  const lastPm = tried[tried.length - 1]?.paymentMethod ?? null;
  if (lastPm === paymentMethod) return { kind: 'unchanged', why: 'the last attempt already used this card' };

  // Only replace the old planned attempt if the new card gets a retry.
  const plan = planWithoutPlanned(deps, ctx);
  if (plan.kind !== 'retry') return { kind: 'unchanged', why: 'reason' in plan ? plan.reason : 'no retry' };
  const result = await replacePlanned(tx, deps, ctx, plan, {
    source: 'card_update',
    why: 'replaced: payment method changed',
  });
  if (result.kind === 'planned') {
    deps.log.info(
      { caseId, invoiceId: caseRow.invoiceId, attemptNo: result.attempt.attemptNo, at: plan.at },
      'card update retry scheduled',
    );
  }
  return result;
}

/**
 * Decline details that reached the ledger after the case was planned (Stripe's events arrive in
 * any order) can bar the card or change the category. The still-planned attempt is planned again
 * with them, through the same replacement as a card change; if nothing changed it stays. An
 * attempt already running or unresolved is left to the runner, which checks the card again right
 * before charging. A manual attempt stays: ops asked for it (the runner's check still applies).
 */
export async function replanWithLateDetails(tx: Tx, deps: SchedulerDeps, caseId: number): Promise<PlanResult> {
  const caseRow = await store.caseById(tx, caseId, true);
  if (!caseRow || caseRow.status !== 'open') return { kind: 'unchanged', why: 'case is not open' };
  const held = await holdOf(tx, caseRow, deps.clock.now());
  if (held) return { kind: 'unchanged', why: held };
  const attempts = await store.attemptsOf(tx, caseRow.invoiceId);
  const planned = activeAttempt(attempts);
  if (!planned && attempts[attempts.length - 1]?.status === 'skipped') {
    // The runner skipped the last attempt because these very details (read from Stripe ahead of
    // this event) bar the card: nothing is planned, so plan now, with the details on record.
    return planNext(tx, deps, caseId);
  }
  if (!planned || planned.status !== 'planned') return { kind: 'unchanged', why: 'no planned attempt' };
  if (planned.source === 'manual') return { kind: 'unchanged', why: 'a manual attempt is planned' };
  const paymentMethod = planned.source === 'card_update' ? planned.paymentMethod : null;
  const ctx = await loadPlanContext(tx, deps, caseRow, paymentMethod);
  const plan = planWithoutPlanned(deps, ctx);
  if (
    plan.kind === 'retry' &&
    plan.reason === planned.planReason &&
    plan.at.getTime() === planned.plannedAt?.getTime() &&
    plan.paymentMethod === planned.paymentMethod
  ) {
    return { kind: 'unchanged', why: 'the plan stands' };
  }
  deps.log.info(
    { caseId, invoiceId: caseRow.invoiceId, attemptNo: planned.attemptNo, plan: plan.kind },
    'planned attempt replaced: decline details arrived',
  );
  return replacePlanned(tx, deps, ctx, plan, { source: planned.source, why: 'replaced: decline details arrived' });
}

/**
 * Plans a case again once the customer's saved cards were listed: with nothing active, as usual;
 * a scheduled retry on the default card gives way to a backup retry allowed now. Anything else
 * active (a card-update, manual or backup attempt, or one in flight) stands.
 */
export async function replanWithSavedCards(tx: Tx, deps: SchedulerDeps, caseId: number): Promise<PlanResult> {
  const caseRow = await store.caseById(tx, caseId, true);
  if (!caseRow || caseRow.status !== 'open') return { kind: 'unchanged', why: 'case is not open' };
  const held = await holdOf(tx, caseRow, deps.clock.now());
  if (held) return { kind: 'unchanged', why: held };
  const planned = activeAttempt(await store.attemptsOf(tx, caseRow.invoiceId));
  if (!planned) return planNext(tx, deps, caseId);
  if (planned.status !== 'planned' || planned.source !== 'scheduled')
    return { kind: 'unchanged', why: `attempt #${planned.attemptNo} (${planned.source}) is ${planned.status}` };
  const ctx = await loadPlanContext(tx, deps, caseRow, null);
  const plan = planWithoutPlanned(deps, ctx);
  if (plan.kind !== 'retry' || !plan.backupCard) return { kind: 'unchanged', why: 'the plan stands' };
  return replacePlanned(tx, deps, ctx, plan, { source: 'backup_card', why: 'replaced: a backup card may be charged' });
}

/** The plan as if the planned attempt were gone, so it can be compared with or replace it. */
function planWithoutPlanned(deps: SchedulerDeps, ctx: PlanContext): Plan {
  const history = { ...ctx.history, attempts: ctx.history.attempts.filter((a) => a.outcome !== 'planned') };
  return planNextAttempt(history, ctx.customer, ctx.policy, deps.clock.now(), deps.merchantTimeZone, ctx.learned);
}

/**
 * Cancels the planned attempt, and its pg-boss job, and records the new plan in its place (the plan
 * names its card).
 */
async function replacePlanned(
  tx: Tx,
  deps: SchedulerDeps,
  ctx: PlanContext,
  plan: Plan,
  o: { source: AttemptSource; why: string },
): Promise<PlanResult> {
  await cancelPlanned(tx, deps, ctx.caseRow.invoiceId, o.why);
  return recordPlan(tx, deps, ctx, plan, o.source);
}

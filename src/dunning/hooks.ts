import type { Tx } from '../db.ts';
import type { DomainHooks } from '../events/hooks.ts';
import { planNextAttempt } from './planner.ts';
import { loadPlanContext, planNext, scheduleAttempt, type PlanResult, type SchedulerDeps } from './scheduler.ts';
import * as store from './store.ts';

/**
 * The retry engine's reaction to domain events. Every hook runs inside the event processor's
 * transaction, so a plan and the event that caused it commit together. The structural type
 * matches `DomainHooks` from src/events/hooks.ts.
 */
export interface DunningHooks {
  paymentFailed(tx: Tx, e: { caseId: number; invoiceId: string; attemptId?: number | null; opened?: boolean; at: Date }): Promise<void>;
  caseClosed(tx: Tx, e: { caseId: number; invoiceId: string; status: string; reason?: string | null; at: Date }): Promise<void>;
  paymentMethodChanged(tx: Tx, e: { customerId: string; paymentMethod?: string | null; at: Date }): Promise<void>;
}

export function createDunningHooks(deps: SchedulerDeps): DunningHooks & DomainHooks {
  return {
    async paymentFailed(tx, e) {
      // Idempotent: a redelivered failure, or the webhook of our own declined attempt, finds the
      // attempt the runner already planned and changes nothing.
      await planNext(tx, deps, e.caseId);
    },
    async caseClosed(tx, e) {
      const n = await store.cancelPlannedAttempts(tx, e.invoiceId, `case closed: ${e.reason ?? e.status}`, deps.clock.now());
      if (n > 0) deps.log.info({ caseId: e.caseId, invoiceId: e.invoiceId, cancelled: n }, 'planned attempts cancelled');
    },
    async paymentMethodChanged(tx, e) {
      if (!e.paymentMethod) return;
      for (const c of await store.openCasesOfCustomer(tx, e.customerId)) {
        await retryWithNewCard(tx, deps, c.id, e.paymentMethod);
      }
    },
  };
}

/**
 * A new card deserves a prompt retry, also after a hard decline on the old one (the planner bars
 * only the card that was declined). A planned attempt on the old card is replaced; one that is
 * running or unresolved is left alone (the unique index would refuse a second one anyway).
 */
export async function retryWithNewCard(tx: Tx, deps: SchedulerDeps, caseId: number, paymentMethod: string): Promise<PlanResult> {
  const caseRow = await store.caseById(tx, caseId, true);
  if (!caseRow || caseRow.status !== 'open') return { kind: 'unchanged', why: 'case is not open' };
  if (caseRow.paused) return { kind: 'unchanged', why: 'case is paused' };
  const ctx = await loadPlanContext(tx, deps, caseRow, paymentMethod);
  const active = ctx.attempts.find((a) => a.status === 'planned' || a.status === 'in_flight' || a.status === 'unknown');
  if (active && active.status !== 'planned') return { kind: 'unchanged', why: `attempt #${active.attemptNo} is ${active.status}` };
  if (active && active.paymentMethod === paymentMethod) return { kind: 'unchanged', why: 'already planned with this card' };
  const tried = ctx.attempts.filter((a) => a.status !== 'planned' && a.status !== 'cancelled' && a.status !== 'skipped');
  const lastPm = tried[tried.length - 1]?.paymentMethod ?? null;
  if (lastPm === paymentMethod) return { kind: 'unchanged', why: 'the last attempt already used this card' };

  // Plan as if the old planned attempt were gone; only replace it if the new card gets a retry.
  const history = { ...ctx.history, attempts: ctx.history.attempts.filter((a) => a.outcome !== 'planned') };
  const now = deps.clock.now();
  const plan = planNextAttempt(history, ctx.customer, ctx.policy, now, deps.merchantTimeZone);
  if (plan.kind !== 'retry') return { kind: 'unchanged', why: 'reason' in plan ? plan.reason : 'no retry' };
  if (active) await store.cancelPlannedAttempts(tx, caseRow.invoiceId, 'replaced: payment method changed', now);
  const attempt = await scheduleAttempt(tx, deps, caseRow, {
    at: plan.at, reason: plan.reason, source: 'card_update', paymentMethod, isLast: plan.isLast,
  });
  if (!attempt) return { kind: 'unchanged', why: 'an attempt is already active' };
  deps.log.info({ caseId, invoiceId: caseRow.invoiceId, attemptNo: attempt.attemptNo, at: plan.at }, 'card update retry scheduled');
  return { kind: 'planned', attempt, plan };
}

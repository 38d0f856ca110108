import { lockCustomer, lockCustomerOfInvoice } from '../customer-lock.ts';
import type { Sql, Tx } from '../db.ts';
import { remindersOfCase, type ReminderLine } from '../reminders/outbox.ts';
import { pausedAt, pauseReason } from './collection-pause.ts';
import { checkCharge, type ChargeCheck } from './planner.ts';
import {
  cancelPlanned,
  loadPlanContext,
  planNext,
  scheduleAttempt,
  type PlanResult,
  type SchedulerDeps,
} from './scheduler.ts';
import * as store from './store.ts';
import type { AttemptRow, CaseRow } from './store.ts';

/** What ops can do to cases from the CLI: list, inspect, retry now, pause and resume. */

export interface CaseListRow {
  invoiceId: string;
  customerId: string;
  amount: number;
  currency: string;
  status: string;
  paused: boolean;
  attempts: number;
  nextAttemptAt: Date | null;
  nextAttemptReason: string | null;
}

export async function listCases(sql: Sql, options: { openOnly: boolean; limit: number }): Promise<CaseListRow[]> {
  const rows = await sql`
    select c.invoice_id, c.customer_id, c.amount, c.currency, c.status, c.paused, c.next_attempt_at, c.next_attempt_reason,
           (select count(*) from payment_attempts a
             where a.invoice_id = c.invoice_id and a.status in ('succeeded', 'declined', 'unknown', 'in_flight'))::int as attempts
      from dunning_cases c
     where (not ${options.openOnly} or c.status = 'open')
     order by (c.status = 'open') desc, c.next_attempt_at nulls last, c.id desc
     limit ${options.limit}`;
  return rows.map((r) => ({
    invoiceId: r.invoice_id as string,
    customerId: r.customer_id as string,
    amount: Number(r.amount),
    currency: r.currency as string,
    status: r.status as string,
    paused: r.paused as boolean,
    attempts: Number(r.attempts),
    nextAttemptAt: (r.next_attempt_at as Date | null) ?? null,
    nextAttemptReason: (r.next_attempt_reason as string | null) ?? null,
  }));
}

export interface CaseDetail {
  caseRow: CaseRow & {
    closeReason: string | null;
    recoveryPath: string | null;
    finalActionAt: Date | null;
    reminderProblem: string | null;
  };
  attempts: AttemptRow[];
  reminders: ReminderLine[];
}

export async function caseDetail(sql: Sql, invoiceId: string): Promise<CaseDetail | null> {
  const c = await store.caseByInvoice(sql, invoiceId);
  if (!c) return null;
  const [extra] = await sql`
    select close_reason, recovery_path, final_action_at, reminder_problem from dunning_cases where id = ${c.id}`;
  return {
    caseRow: {
      ...c,
      closeReason: (extra?.close_reason as string | null) ?? null,
      recoveryPath: (extra?.recovery_path as string | null) ?? null,
      finalActionAt: (extra?.final_action_at as Date | null) ?? null,
      reminderProblem: (extra?.reminder_problem as string | null) ?? null,
    },
    attempts: await store.attemptsOf(sql, invoiceId),
    reminders: await remindersOfCase(sql, c.id),
  };
}

export class OpsError extends Error {}

async function openCase(tx: Tx, invoiceId: string): Promise<CaseRow> {
  const c = await store.caseByInvoice(tx, invoiceId, true);
  if (!c) throw new OpsError(`no dunning case for invoice ${invoiceId}`);
  if (c.status !== 'open') throw new OpsError(`the case for ${invoiceId} is ${c.status}`);
  return c;
}

/**
 * A manual attempt due now. A planned attempt is replaced; one that is running or unresolved is not
 * (a second charge while one is unknown could charge twice), unless ops checked Stripe and say the
 * unresolved one did not charge (`resolveUnknown`). Pausing is lifted: ops asked for it.
 */
export async function retryNow(
  tx: Tx,
  deps: SchedulerDeps,
  invoiceId: string,
  o: { resolveUnknown?: boolean; hooks?: PauseHooks } = {},
): Promise<AttemptRow> {
  await lockCustomerOf(tx, invoiceId);
  const c = await openCase(tx, invoiceId);
  const attempts = await store.attemptsOf(tx, invoiceId);
  const now = deps.clock.now();
  const busy = attempts.find((a) => a.status === 'in_flight' || a.status === 'unknown');
  if (busy?.status === 'unknown' && o.resolveUnknown) {
    // The new attempt re-reads the invoice at Stripe before charging: if the unresolved request
    // did pay it after all, the manual one is skipped, not charged.
    await store.finishAttempt(
      tx,
      busy.id,
      {
        status: 'skipped',
        finishedAt: now,
        failureMessage: `resolved by ops as not charged; was: ${busy.failureMessage ?? 'unknown'}`,
      },
      { status: 'unknown' },
    );
  } else if (busy) {
    throw new OpsError(
      `attempt #${busy.attemptNo} is ${busy.status}; it must be resolved before another charge${
        busy.status === 'unknown'
          ? ' (check the invoice in the Stripe Dashboard, then use --resolve-unknown if it was not charged)'
          : ' (a worker holds it; try again after its lease)'
      }`,
    );
  }
  // Stripe's pause is the merchant's own setting at Stripe: ops lift it there, not here.
  const stripePause = (await store.invoiceById(tx, invoiceId))?.collectionPause ?? null;
  if (stripePause && pausedAt(stripePause, now)) {
    throw new OpsError(`${pauseReason(stripePause)}: lift pause_collection on the subscription in Stripe first`);
  }
  // Card-network rules are not the operator's to override: the refusal names the rule and when it allows a charge.
  const ctx = await loadPlanContext(tx, deps, c, null);
  const check = checkCharge(ctx.history, ctx.customer, now);
  if (!check.allowed) throw new OpsError(refusal(invoiceId, check));
  await cancelPlanned(tx, deps, invoiceId, 'replaced by a manual retry');
  if (c.paused) {
    await store.setPaused(tx, c.id, false, now);
    await o.hooks?.caseResumed?.(tx, { caseId: c.id, at: now });
  }
  const attempt = await scheduleAttempt(tx, deps, c, {
    at: now,
    reason: 'manual retry requested by ops',
    source: 'manual',
    paymentMethod: null,
    isLast: false,
  });
  if (!attempt) throw new OpsError(`another attempt became active for ${invoiceId}`);
  return attempt;
}

const RULE_NAMES = {
  never_retry: 'never-retry answer on this card',
  network_advice: 'card-network retry-after advice',
  network_limit: 'card-network attempt limit',
} as const;

function refusal(invoiceId: string, check: Exclude<ChargeCheck, { allowed: true }>): string {
  const when =
    check.until === null
      ? 'no time allows another charge of this card: the customer must give a new card'
      : `earliest allowed ${check.until.toISOString()}`;
  return `retry-now refused for ${invoiceId} by the ${RULE_NAMES[check.rule]} (${check.reason}); ${when}`;
}

/**
 * The customer's lock, before any row, as the runner, the event processor and the mailer take it:
 * ops lock the case, then its attempt rows (the runner's order is the other way round), and a
 * pause takes the case's invoice off the merged email the mailer may be deciding.
 */
async function lockCustomerOf(tx: Tx, target: string): Promise<void> {
  if (target.startsWith('cus_')) await lockCustomer(tx, target);
  else await lockCustomerOfInvoice(tx, target);
}

/** Cases named by a customer id (`cus_...`, all its open cases) or an invoice id. */
async function casesOf(tx: Tx, target: string): Promise<CaseRow[]> {
  if (target.startsWith('cus_')) return store.openCasesOfCustomer(tx, target);
  const c = await store.caseByInvoice(tx, target);
  return c && c.status === 'open' ? [c] : [];
}

/** The reminders' side of a pause (src/reminders/hooks.ts): pending emails held, then planned again. */
export interface PauseHooks {
  casePaused?(tx: Tx, e: { caseId: number; at: Date }): Promise<void>;
  caseResumed?(tx: Tx, e: { caseId: number; at: Date }): Promise<void>;
}

export async function pause(tx: Tx, deps: SchedulerDeps, target: string, hooks: PauseHooks = {}): Promise<CaseRow[]> {
  await lockCustomerOf(tx, target);
  const cases = await casesOf(tx, target);
  if (cases.length === 0) throw new OpsError(`no open dunning case for ${target}`);
  const now = deps.clock.now();
  for (const c of cases) {
    await store.caseById(tx, c.id, true);
    await store.setPaused(tx, c.id, true, now);
    await cancelPlanned(tx, deps, c.invoiceId, 'paused by ops');
    await store.setNextAttempt(tx, c.id, null, 'paused by ops', now);
    await hooks.casePaused?.(tx, { caseId: c.id, at: now });
  }
  return cases;
}

export async function resume(
  tx: Tx,
  deps: SchedulerDeps,
  target: string,
  hooks: PauseHooks = {},
): Promise<Array<{ caseRow: CaseRow; result: PlanResult }>> {
  await lockCustomerOf(tx, target);
  const cases = await casesOf(tx, target);
  if (cases.length === 0) throw new OpsError(`no open dunning case for ${target}`);
  const out: Array<{ caseRow: CaseRow; result: PlanResult }> = [];
  for (const c of cases) {
    await store.setPaused(tx, c.id, false, deps.clock.now());
    // Before planning: a last chance cancelled by the pause must be plannable again.
    await hooks.caseResumed?.(tx, { caseId: c.id, at: deps.clock.now() });
    out.push({ caseRow: c, result: await planNext(tx, deps, c.id) });
  }
  return out;
}

import { randomUUID } from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import type { Clock } from '../clock.ts';
import type { Tx } from '../db.ts';
import type { Logger } from '../log.ts';
import { QUEUES, jobDb } from '../queue.ts';
import { pausedAt, pauseReason, type CollectionPause } from './collection-pause.ts';
import {
  BEFORE_UPDATE,
  currentCard,
  planNextAttempt,
  plannedCard,
  realCard,
  type CardInfo,
  type CaseHistory,
  type CustomerContext,
  type LedgerAttempt,
  type Plan,
} from './planner.ts';
import { allPolicies, parsePolicy, policyBody, type Policy } from './policy.ts';
import { DEFAULT_POLICY_NAME } from './segments.ts';
import { cardsOf, cardUpdatesOf } from '../ledger.ts';
import * as store from './store.ts';
import type { LearnedTable } from './adaptive.ts';
import type { LearnedSource } from './adaptive-refresh.ts';
import { observedPaydayOf } from './observed-payday-query.ts';
import type { AttemptRow, AttemptSource, CaseRow } from './store.ts';

/**
 * Turns a plan into rows and jobs, inside the caller's transaction: the planned attempt, the case's
 * "next attempt" columns and the pg-boss job commit together or not at all.
 */

/**
 * An attempt planned for `at`, or with `deadline`, no attempt: the case waits for the customer (a
 * new card, 3-D Secure) until `at`, when the final action follows. Either way `at` is the last
 * chance the customer has when `isLast`.
 */
export interface AttemptPlannedEvent {
  caseId: number;
  invoiceId: string;
  at: Date;
  isLast: boolean;
  deadline?: boolean;
}

export interface SchedulerDeps {
  boss: Pick<PgBoss, 'send' | 'cancel'>;
  clock: Clock;
  log: Logger;
  merchantTimeZone: string;
  policies: PolicySource;
  /** The merchant's learned retry timing (newest snapshot, cached briefly); absent: the policy's timing alone. */
  learned?: LearnedSource;
  /** Reminders want to know (e.g. to warn before the last attempt). */
  onAttemptPlanned?: (tx: Tx, e: AttemptPlannedEvent) => Promise<void>;
  /** Dunning stopped on the merchant's own error: ops are alerted (once per case). */
  onMerchantError?: (tx: Tx, e: { caseId: number; invoiceId: string; reason: string; at: Date }) => Promise<void>;
  /**
   * Stripe paused collection (the case is held) or lifted the pause. Resumed is told before the
   * case is planned again, so what the pause held back can be planned with it.
   */
  onCaseHeld?: (tx: Tx, e: { caseId: number; at: Date }) => Promise<void>;
  onCaseReleased?: (tx: Tx, e: { caseId: number; at: Date }) => Promise<void>;
}

/** Job payloads. */
export interface AttemptJob {
  attemptId: number;
}
export interface DeadlineJob {
  caseId: number;
  /**
   * `await`: the customer had until now; `stop`: the planner gave up, apply the final action;
   * `resume`: a Stripe pause with a `resumes_at` ends now: plan the case again (no final action);
   * `cards`: list the customer's saved cards from Stripe, then plan again (a backup retry may follow).
   */
  kind: 'await' | 'stop' | 'resume' | 'cards';
  reason: string;
  /** Ledger size when the job was planned: if it grew, something happened and the job stands down. */
  attemptsSeen: number;
}

/** Cases keep the policy they opened with; bodies are read from `policies` once per version. */
export interface PolicySource {
  get(tx: Tx, version: string): Promise<Policy>;
}

/** `current`: the policy in force, known without a read; null for readers that only look at stored cases. */
export function createPolicySource(current: Policy | null): PolicySource {
  const cache = new Map<string, Policy>(
    current ? allPolicies(current).map(({ policy }) => [policy.version, policy]) : [],
  );
  return {
    async get(tx, version) {
      const hit = cache.get(version);
      if (hit) return hit;
      const [row] = await tx`select body from policies where version = ${version}`;
      if (!row) throw new Error(`case refers to unknown policy version ${version}`);
      const policy = { ...parsePolicy(row.body), version };
      cache.set(version, policy);
      return policy;
    },
  };
}

/** Stores the current policy and its named policies so cases opened under them can find them again. */
export async function savePolicy(tx: Tx, policy: Policy): Promise<void> {
  for (const { policy: p } of allPolicies(policy)) {
    await tx`insert into policies (version, body) values (${p.version}, ${tx.json(policyBody(p) as never)}) on conflict (version) do nothing`;
  }
}

const LEDGER_OUTCOME: Partial<Record<store.AttemptStatus, LedgerAttempt['outcome']>> = {
  planned: 'planned',
  // A claimed attempt whose result is not written yet may have charged: never plan past it.
  in_flight: 'unknown',
  unknown: 'unknown',
  succeeded: 'succeeded',
  declined: 'declined',
  not_sent: 'not_sent',
};

export function toLedger(a: AttemptRow): LedgerAttempt | null {
  const outcome = LEDGER_OUTCOME[a.status];
  if (!outcome) return null; // skipped and cancelled attempts never reached Stripe
  // A network decline code alone is an answer too (a Visa category-1 code bars the card).
  const hasDecline =
    a.declineCode !== null ||
    a.failureCode !== null ||
    a.adviceCode !== null ||
    a.networkAdviceCode !== null ||
    a.networkDeclineCode !== null;
  return {
    attemptNo: a.attemptNo,
    at: a.startedAt ?? a.finishedAt ?? a.plannedAt ?? a.createdAt,
    source: a.source,
    outcome,
    paymentMethod: a.paymentMethod,
    card: a.cardFingerprint ?? a.paymentMethod,
    decline: hasDecline
      ? {
          declineCode: a.declineCode,
          failureCode: a.failureCode,
          adviceCode: a.adviceCode,
          networkAdviceCode: a.networkAdviceCode,
          networkDeclineCode: a.networkDeclineCode,
          cardBrand: a.cardBrand,
        }
      : null,
  };
}

export interface PlanContext {
  caseRow: CaseRow;
  attempts: AttemptRow[];
  history: CaseHistory;
  customer: CustomerContext;
  policy: Policy;
  /** The learned timing snapshot the planner gets (null: none yet, or no source). */
  learned: LearnedTable | null;
}

/**
 * Everything the planner needs for one case. `card` is a card the caller names as new (a card
 * update), or with `asPlanned` the exact card of an attempt already planned, for the runner's check
 * right before charging it.
 */
export async function loadPlanContext(
  tx: Tx,
  deps: Pick<SchedulerDeps, 'policies'> &
    ({ learned?: undefined; merchantTimeZone?: undefined } | Pick<SchedulerDeps, 'learned' | 'merchantTimeZone'>),
  caseRow: CaseRow,
  card: string | null,
  o: { asPlanned?: boolean } = {},
): Promise<PlanContext> {
  // Independent reads, sent together: pipelined on the connection, one round trip instead of five.
  // The customer's observed payday joins the funds calendar; only the ops page's card budget,
  // which plans nothing, reads without the merchant's zone and so without it.
  const [attempts, customer, updates, others, known, invoice, savedCards, learned, payday] = await Promise.all([
    store.attemptsOf(tx, caseRow.invoiceId),
    store.customerById(tx, caseRow.customerId),
    cardUpdatesOf(tx, caseRow.customerId),
    store.customerAttemptsBesides(tx, caseRow.customerId, caseRow.invoiceId),
    cardsOf(tx, caseRow.customerId),
    store.invoiceById(tx, caseRow.invoiceId),
    store.savedCardsOf(tx, caseRow.customerId),
    deps.learned ? deps.learned.get(tx) : null,
    deps.merchantTimeZone ? observedPaydayOf(tx, caseRow.customerId, caseRow.openedAt, deps.merchantTimeZone) : null,
  ]);
  // The card Stripe charges for this invoice: the invoice's own, else its subscription's, else the customer's default.
  const stripeDefault = invoice?.ownCard ?? customer?.defaultPaymentMethod ?? null;
  const cards = new Map<string, CardInfo>(
    known.map((k) => [k.paymentMethod, { card: k.fingerprint ?? k.paymentMethod, brand: k.brand }]),
  );
  const toHistory = (rows: AttemptRow[]) =>
    rows
      .map(toLedger)
      .filter((a): a is LedgerAttempt => a !== null)
      .map((a) => withCard(a, cards))
      .map((a) => asCardWas(a, updates));
  const ledger = toHistory(attempts);
  const currentPaymentMethod = o.asPlanned ? card : currentCard(ledger, card, stripeDefault);
  return {
    caseRow,
    attempts,
    history: {
      invoiceId: caseRow.invoiceId,
      openedAt: caseRow.openedAt,
      windowStartsAt: caseRow.windowStartsAt,
      cohort: caseRow.cohort,
      attempts: ledger,
      currentPaymentMethod,
      otherInvoices: toHistory(others),
      cards,
      savedCards,
    },
    customer: {
      timeZone: customer?.timeZone ?? null,
      country: customer?.country ?? null,
      cardBrand: null,
      observedPayday: payday,
    },
    policy: await deps.policies.get(tx, caseRow.policyVersion),
    learned,
  };
}

/** An attempt recorded without its fingerprint counts by what we now know of its payment method's card. */
function withCard(a: LedgerAttempt, cards: ReadonlyMap<string, CardInfo>): LedgerAttempt {
  if (a.paymentMethod === null || a.card !== a.paymentMethod) return a;
  return { ...a, card: cards.get(a.paymentMethod)?.card ?? a.paymentMethod };
}

/**
 * Stripe's card updater changes the card behind a payment method id: an attempt made before that
 * change gets the old card's name for never-retry answers (see `BEFORE_UPDATE`); its `card` (the
 * identity limits count by) stays, so an update that kept the card number keeps the 30-day count.
 */
function asCardWas(a: LedgerAttempt, updates: ReadonlyMap<string, Date>): LedgerAttempt {
  const updatedAt = a.paymentMethod === null ? undefined : updates.get(a.paymentMethod);
  // Event times are whole seconds: a decline within the update's second counts as before it.
  const before = updatedAt !== undefined && Math.floor(a.at.getTime() / 1000) * 1000 <= updatedAt.getTime();
  return before ? { ...a, paymentMethod: `${a.paymentMethod}${BEFORE_UPDATE}` } : a;
}

export type PlanResult =
  | { kind: 'planned'; attempt: AttemptRow; plan: Plan }
  | { kind: 'awaiting' | 'stopping'; plan: Plan }
  | { kind: 'unchanged'; why: string };

/**
 * Plans the next attempt of an open case (the planner decides) and records the decision. A case
 * that is closed, paused or already has an active attempt is left alone.
 */
export async function planNext(
  tx: Tx,
  deps: SchedulerDeps,
  caseId: number,
  options: { source?: AttemptSource; paymentMethod?: string | null } = {},
): Promise<PlanResult> {
  const caseRow = await store.caseById(tx, caseId, true);
  if (!caseRow) return { kind: 'unchanged', why: `no case ${caseId}` };
  if (caseRow.status !== 'open') return { kind: 'unchanged', why: `case is ${caseRow.status}` };
  const now = deps.clock.now();
  const held = await holdOf(tx, caseRow, now);
  if (held) {
    if (!caseRow.paused) await store.setNextAttempt(tx, caseRow.id, null, `held: ${held}`, now);
    return { kind: 'unchanged', why: held };
  }
  const ctx = await loadPlanContext(tx, deps, caseRow, options.paymentMethod ?? null);
  const plan = planNextAttempt(ctx.history, ctx.customer, ctx.policy, now, deps.merchantTimeZone, ctx.learned);
  return recordPlan(tx, deps, ctx, plan, options.source ?? sourceOf(ctx, plan));
}

/**
 * Why nothing may be planned or charged for an open case now: ops paused it (`dunning pause`), or
 * Stripe collection is paused on its subscription (our copy). Null when neither holds.
 */
export async function holdOf(tx: Tx, caseRow: CaseRow, now: Date): Promise<string | null> {
  if (caseRow.paused) return 'case is paused';
  if (!stripePauseHolds(caseRow)) return null;
  return stripeHold(caseRow, (await store.invoiceById(tx, caseRow.invoiceId))?.collectionPause ?? null, now);
}

/**
 * Whether Stripe's pause_collection holds this case. Not once its final action is recorded: that
 * pause may be our own (the `pause_collection` final action), and a case still open then is open
 * for a card update that landed meanwhile, which must be charged and closed, not held for ever.
 */
export function stripePauseHolds(caseRow: Pick<CaseRow, 'finalAction'>): boolean {
  return caseRow.finalAction === null;
}

/**
 * Why a Stripe pause_collection holds the case now, or null: none in effect, or one that does not
 * hold this case (`stripePauseHolds`). With no case (an attempt without one) any pause in effect holds.
 */
export function stripeHold(
  caseRow: Pick<CaseRow, 'finalAction'> | null,
  pause: CollectionPause | null,
  now: Date,
): string | null {
  return pause && pausedAt(pause, now) && (caseRow === null || stripePauseHolds(caseRow)) ? pauseReason(pause) : null;
}

/**
 * Cancels the invoice's planned attempt and its pg-boss job in the caller's transaction, so a
 * replaced or withdrawn attempt leaves no job behind: one waiting attempt job per invoice.
 */
export async function cancelPlanned(
  tx: Tx,
  deps: Pick<SchedulerDeps, 'boss' | 'clock'>,
  invoiceId: string,
  reason: string,
): Promise<number> {
  const cancelled = await store.cancelPlannedAttempts(tx, invoiceId, reason, deps.clock.now());
  const jobIds = cancelled.map((a) => a.jobId).filter((id): id is string => id !== null);
  if (jobIds.length > 0) await deps.boss.cancel(QUEUES.attempts, jobIds, { db: jobDb(tx) });
  return cancelled.length;
}

/**
 * A retry on a default card this case has not tried yet (see `currentCard`) is a card-update retry:
 * the card changed while an attempt was running, so its event could not plan it then.
 */
function sourceOf(ctx: PlanContext, plan: Plan): AttemptSource {
  if (plan.kind === 'retry' && plan.backupCard) return 'backup_card';
  const card = ctx.history.currentPaymentMethod;
  if (plan.kind !== 'retry' || card === null || plan.paymentMethod !== card) return 'scheduled';
  return ctx.attempts.some((a) => a.status === 'declined' && a.paymentMethod !== null && a.paymentMethod !== card)
    ? 'card_update'
    : 'scheduled';
}

/**
 * A case under a named policy (segment rules) says so in every reason it records, so ops reading
 * "retry in 60 days" see which policy allowed it. Reasons under the default policy stay as they were.
 */
export function withPolicyName<P extends { reason: string }>(plan: P, policyName: string): P {
  return policyName === DEFAULT_POLICY_NAME ? plan : { ...plan, reason: `${plan.reason} (policy ${policyName})` };
}

export async function recordPlan(
  tx: Tx,
  deps: SchedulerDeps,
  ctx: PlanContext,
  planned: Plan,
  source: AttemptSource,
): Promise<PlanResult> {
  const { caseRow } = ctx;
  const plan = withPolicyName(planned, caseRow.policyName);
  const now = deps.clock.now();
  const log = deps.log.child({ caseId: caseRow.id, invoiceId: caseRow.invoiceId });
  // A plan on another saved card is a backup-card attempt whoever asked for the plan, and only it is.
  if (plan.kind === 'retry' && plan.backupCard) source = 'backup_card';
  else if (source === 'backup_card') source = 'scheduled';
  if (plan.kind !== 'blocked' && plan.listCards) {
    // Listing calls Stripe, which never happens inside a transaction: a job does it, then plans again.
    await sendDeadline(
      tx,
      deps,
      { caseId: caseRow.id, kind: 'cards', reason: plan.reason, attemptsSeen: ctx.attempts.length },
      now,
    );
  }
  switch (plan.kind) {
    case 'blocked':
      return { kind: 'unchanged', why: plan.reason };
    case 'retry': {
      const attempt = await scheduleAttempt(tx, deps, caseRow, {
        at: plan.at,
        reason: plan.reason,
        source,
        paymentMethod: plan.paymentMethod,
        isLast: plan.isLast,
      });
      if (!attempt) return { kind: 'unchanged', why: 'an attempt is already active' };
      log.info({ attemptNo: attempt.attemptNo, at: plan.at, source }, 'retry scheduled');
      return { kind: 'planned', attempt, plan };
    }
    case 'await_customer':
      await store.setNextAttempt(tx, caseRow.id, null, `awaiting customer: ${plan.reason}`, now);
      await sendDeadline(
        tx,
        deps,
        { caseId: caseRow.id, kind: 'await', reason: plan.reason, attemptsSeen: ctx.attempts.length },
        plan.until,
      );
      await deps.onAttemptPlanned?.(tx, {
        caseId: caseRow.id,
        invoiceId: caseRow.invoiceId,
        at: plan.until,
        isLast: true,
        deadline: true,
      });
      log.info({ until: plan.until, category: plan.category }, 'waiting for the customer');
      return { kind: 'awaiting', plan };
    case 'stop':
      if (plan.category === 'merchant_error') {
        // The merchant's own error (e.g. invalid amount): retrying or a final action would punish
        // the customer for it. The case stays open, without a next attempt, for ops to fix.
        await store.setNextAttempt(tx, caseRow.id, null, `needs ops (merchant error): ${plan.reason}`, now);
        log.error({ reason: plan.reason }, 'merchant error on a dunning case: ops must act');
        await deps.onMerchantError?.(tx, {
          caseId: caseRow.id,
          invoiceId: caseRow.invoiceId,
          reason: plan.reason,
          at: now,
        });
        return { kind: 'unchanged', why: plan.reason };
      }
      if (plan.listCards) {
        // No final action before the other cards on file were looked at: the listing plans again.
        // Should the listing never succeed, the window's end still brings the final action.
        await store.setNextAttempt(tx, caseRow.id, null, `before stopping: ${plan.reason}`, now);
        await scheduleWindowDeadline(tx, deps, caseRow.id, `before stopping: ${plan.reason}`);
        return { kind: 'unchanged', why: plan.reason };
      }
      await store.setNextAttempt(tx, caseRow.id, null, `stopping: ${plan.reason}`, now);
      await sendDeadline(
        tx,
        deps,
        { caseId: caseRow.id, kind: 'stop', reason: plan.reason, attemptsSeen: ctx.attempts.length },
        now,
      );
      log.info({ reason: plan.reason }, 'dunning stops: final action queued');
      return { kind: 'stopping', plan };
  }
}

/**
 * Inserts the planned row, updates the case and enqueues the job; null when one is already active.
 * The row names the card it is for, and the runner charges exactly that card: without it Stripe
 * would charge whatever default it holds, which need not be the card the plan was checked against.
 * A null `paymentMethod` (a manual retry) takes the card a plan made now would use.
 */
export async function scheduleAttempt(
  tx: Tx,
  deps: SchedulerDeps,
  caseRow: CaseRow,
  p: { at: Date; reason: string; source: AttemptSource; paymentMethod: string | null; isLast: boolean },
): Promise<AttemptRow | null> {
  const paymentMethod = realCard(
    p.paymentMethod ?? plannedCard((await loadPlanContext(tx, deps, caseRow, null)).history),
  );
  const jobId = randomUUID();
  const attempt = await store.insertPlannedAttempt(tx, {
    caseId: caseRow.id,
    invoiceId: caseRow.invoiceId,
    source: p.source,
    plannedAt: p.at,
    reason: p.reason,
    paymentMethod,
    jobId,
  });
  if (!attempt) return null;
  await store.setNextAttempt(tx, caseRow.id, p.at, p.reason, deps.clock.now());
  await sendAttemptJob(tx, deps, attempt.id, caseRow.invoiceId, p.at, jobId);
  await deps.onAttemptPlanned?.(tx, { caseId: caseRow.id, invoiceId: caseRow.invoiceId, at: p.at, isLast: p.isLast });
  return attempt;
}

/**
 * Sends the job that runs the attempt at `at`, recorded on the attempt so that replacing the
 * attempt cancels it: `recordedId` when the attempt row was written with that job id already (a
 * new attempt: one statement fewer), else the job's id is written to it here. The singleton key
 * only names the invoice (the queue's standard policy does not enforce it): see docs/runner.md on
 * what "one job per invoice" means.
 */
export async function sendAttemptJob(
  tx: Tx,
  deps: Pick<SchedulerDeps, 'boss' | 'clock'>,
  attemptId: number,
  invoiceId: string,
  at: Date,
  recordedId?: string,
): Promise<void> {
  const data: AttemptJob = { attemptId };
  const jobId = await deps.boss.send(QUEUES.attempts, data, {
    ...(recordedId ? { id: recordedId } : {}),
    startAfter: deps.clock.wallTimeOf(at),
    singletonKey: invoiceId,
    db: jobDb(tx),
  });
  if (jobId && jobId !== recordedId) await store.setAttemptJob(tx, attemptId, jobId);
}

const DAY_MS = 24 * 3_600_000;

/**
 * For an open case left with nothing planned (its attempt was skipped: Stripe refused the charge,
 * the invoice is not open, collection is paused): without a deadline nothing would ever look at it
 * again. The final action runs when the dunning window closes, unless the ledger moves first (a new
 * card, a manual retry), exactly like a wait for the customer.
 */
export async function scheduleWindowDeadline(
  tx: Tx,
  deps: SchedulerDeps,
  caseId: number,
  reason: string,
): Promise<Date | null> {
  const caseRow = await store.caseById(tx, caseId, true);
  if (!caseRow || caseRow.status !== 'open') return null;
  const policy = await deps.policies.get(tx, caseRow.policyVersion);
  const attempts = await store.attemptsOf(tx, caseRow.invoiceId);
  const windowEnd = caseRow.windowStartsAt.getTime() + policy.retry.windowDays * DAY_MS;
  const at = new Date(Math.max(windowEnd, deps.clock.now().getTime()));
  await sendDeadline(tx, deps, { caseId, kind: 'await', reason, attemptsSeen: attempts.length }, at);
  return at;
}

/**
 * A case held for a Stripe pause that ends by itself at `resumesAt` is planned again then, whether
 * or not an event tells us the pause ended (and in whatever order its events arrive).
 */
export async function scheduleResume(
  tx: Tx,
  deps: SchedulerDeps,
  caseId: number,
  resumesAt: Date,
  reason: string,
): Promise<void> {
  await sendDeadline(
    tx,
    deps,
    { caseId, kind: 'resume', reason, attemptsSeen: 0 },
    new Date(resumesAt.getTime() + 1000),
  );
}

async function sendDeadline(tx: Tx, deps: SchedulerDeps, data: DeadlineJob, at: Date): Promise<void> {
  await deps.boss.send(QUEUES.deadlines, data, {
    startAfter: deps.clock.wallTimeOf(at),
    singletonKey: String(data.caseId),
    db: jobDb(tx),
  });
}

import type { LearnedSource } from './adaptive-refresh.ts';
import type { PgBoss } from 'pg-boss';
import type Stripe from 'stripe';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { lockCustomerOfInvoice } from '../customer-lock.ts';
import type { Sql, Tx } from '../db.ts';
import type { Logger } from '../log.ts';
import { QUEUES } from '../queue.ts';
import {
  failedChargesOf,
  payInvoice,
  retrieveInvoice,
  type ChargeOutcome,
  type DeclineDetails as ChargeDecline,
  type StripeGateway,
} from '../stripe/charge.ts';
import { STRIPE_REQUEST_TIMEOUT_MS } from '../stripe/client.ts';
import { createThrottle, type Throttle } from '../stripe/throttle.ts';
import { pauseOfInvoice } from './collection-pause.ts';
import { classifyDecline, type Classification, type DeclineInfo } from './declines.ts';
import { detailsOfCharge, intentsOf, lastIntentError, subscriptionOfInvoice } from '../stripe/read.ts';
import {
  closeForMissingInvoice,
  closeSettledAtStripe,
  handleDeadline,
  MISSING_INVOICE,
  type CaseClosedEvent,
  type FinalActionDeps,
} from './final-action.ts';
import type { Policy } from './policy.ts';
import { checkCharge } from './planner.ts';
import { promoteBackupCard } from './backup-card-shell.ts';
import {
  createPolicySource,
  loadPlanContext,
  planNext,
  savePolicy,
  scheduleResume,
  scheduleWindowDeadline,
  sendAttemptJob,
  stripeHold,
  type AttemptJob,
  type AttemptPlannedEvent,
  type DeadlineJob,
  type SchedulerDeps,
} from './scheduler.ts';
import { closeCase, PATH_OF_SOURCE, rememberCard, STRIPE_CLOCK_SKEW_MS } from '../ledger.ts';
import * as store from './store.ts';
import type { AttemptRow, CaseRow } from './store.ts';

/**
 * Executes one planned attempt: claim it, re-check that charging still makes sense (locally, then
 * at Stripe), charge with the attempt's idempotency key and record the outcome. The idempotency
 * key is the crash safety: whatever happened to an earlier run of this attempt, asking again with
 * the same key cannot charge twice.
 */

export interface RunnerDeps extends FinalActionDeps {
  sql: Sql;
  gateway: StripeGateway;
  /**
   * Real time, which Stripe's idempotency keys age by. Not `clock`: the demo scales that one (a
   * simulated day in real seconds) while Stripe's keys still last a real day.
   */
  wallNow: () => Date;
  /** How long a claim protects an attempt from other workers; must exceed the Stripe timeout. */
  leaseMs: number;
  /** First delay before repeating a request that was not sent or has an unknown outcome; doubles. */
  requestRetryBaseMs: number;
  requestRetryMaxMs: number;
  /** Told about every decline the runner gets, so unknown codes get logged (once per process). */
  reportUnknownCodes?: (classification: Classification) => void;
  /** Test seam: runs after the charge call and before the outcome is written (a crash there). */
  afterCharge?: (attempt: AttemptRow, outcome: ChargeOutcome) => Promise<void>;
}

/**
 * How long Stripe keeps an idempotency key and replays its first answer. Stripe
 * (https://docs.stripe.com/idempotency): "You can remove keys from the system automatically after
 * they're at least 24 hours old. We generate a new request if a key is reused after the original is
 * pruned." Asked again later, an attempt's request may run as a new charge.
 */
export const STRIPE_KEY_LIFE_MS = 24 * 3_600_000;
/**
 * Taken off the key life before trusting a replay: our clock against Stripe's, and the time the
 * first request took to arrive. An attempt unresolved that long is rare (the workers were away for
 * most of a day), and reconciling it an hour early costs nothing but Stripe's replayed details.
 */
export const KEY_LIFE_MARGIN_MS = 3_600_000;

/**
 * Whether the attempt's idempotency key may be gone at Stripe, so asking again with it could
 * charge a second time: its first request left (`firstSentAt`, real time) at least the key life,
 * less the margin, before `wallNow`. A request never sent has no key to lose.
 */
export function keyMayHaveExpired(firstSentAt: Date | null, wallNow: Date): boolean {
  if (firstSentAt === null) return false;
  return wallNow.getTime() - firstSentAt.getTime() >= STRIPE_KEY_LIFE_MS - KEY_LIFE_MARGIN_MS;
}

/**
 * When, in real time, the attempt's key began its life as far as we can tell: its first send, or,
 * for an attempt that may have been sent (`mayHaveRun`) without one recorded, its first claim.
 * `first_sent_at` is null on a request an older worker sent (one from before migration 024, still
 * running during a rolling deploy): taken for "never sent", its key would be asked again however
 * old. The claim (`started_at`, kept by every later claim of the attempt) comes just before the
 * request, so the key looks older, never younger, than it is. It is on the worker's clock, which
 * `wallTimeOf` turns into real time (the same instant on the system clock; the demo's scaled clock
 * maps it back), and it is never later than `wallNow`. A row never claimed (no `started_at`) falls
 * back to its creation, which the database stamps in real time before any request.
 */
export function keyLifeStart(
  a: Pick<AttemptRow, 'firstSentAt' | 'startedAt' | 'createdAt'>,
  mayHaveRun: boolean,
  wallTimeOf: (at: Date) => Date,
  wallNow: Date,
): Date | null {
  if (a.firstSentAt !== null) return a.firstSentAt;
  if (!mayHaveRun) return null;
  const claimed = a.startedAt === null ? a.createdAt : wallTimeOf(a.startedAt);
  return new Date(Math.min(claimed.getTime(), wallNow.getTime()));
}

/** Said of an attempt resolved from Stripe's state instead of its key's replay. */
const KEY_EXPIRED =
  'not asked again: its first request left over a day ago and Stripe may have pruned the idempotency key';

export type RunResult = 'not_claimed' | 'skipped' | 'succeeded' | 'declined' | 'not_sent' | 'unknown' | 'needs_ops';

export async function executeAttempt(deps: RunnerDeps, attemptId: number): Promise<RunResult> {
  // One guarded UPDATE: atomic on its own, no explicit transaction (two round trips fewer).
  const claimed = await store.claimAttempt(deps.sql, attemptId, deps.clock.now(), deps.leaseMs);
  if (!claimed) {
    await followUpHeldAttempt(deps, attemptId);
    return 'not_claimed';
  }
  const progress: Progress = { chargeSent: false };
  try {
    return await runClaimed(deps, claimed.attempt, claimed.previous, progress);
  } catch (err) {
    if (err instanceof LeaseLost) {
      // A worker that stalled past its lease: the one that took over owns the result.
      deps.log.warn({ attemptId, invoiceId: claimed.attempt.invoiceId }, err.message);
      return 'not_claimed';
    }
    return handBack(deps, claimed.attempt, claimed.previous, progress, err);
  }
}

/** How far a claimed run got: whether the charge request may have reached Stripe. */
interface Progress {
  chargeSent: boolean;
}

/**
 * `runClaimed` failed on something of ours, not on Stripe's answer: a statement (a deadlock, the
 * pool under load), a hook, a bug. Left `in_flight`, the attempt would block every other charge of
 * its invoice until its lease ran out (2 minutes by default), and the job's own retry, seconds
 * later, would find that lease still held. So the claim is handed back, fenced, with the same key
 * and a job soon, as for a request that was not sent: `planned` if no request of this attempt can
 * have charged, else `unknown`, so the next run reads the invoice first and a repeated charge is a
 * replay. Only when that write fails too (the database is away) is the error thrown, and the lease
 * and the job's retry take over as for a killed worker.
 */
async function handBack(
  deps: RunnerDeps,
  a: AttemptRow,
  previous: store.AttemptStatus,
  progress: Progress,
  err: unknown,
): Promise<RunResult> {
  const status = progress.chargeSent || previous !== 'planned' ? 'unknown' : 'planned';
  const log = deps.log.child({ attemptId: a.id, invoiceId: a.invoiceId, attemptNo: a.attemptNo });
  const message = err instanceof Error ? err.message : String(err);
  let result: RunResult;
  try {
    result = await requeue(deps, a, status, `runner error: ${message}`, null);
  } catch (releaseErr) {
    // LeaseLost here: the outcome was written before the error (or another worker took over).
    if (!(releaseErr instanceof LeaseLost))
      log.error(
        { err, releaseErr },
        'attempt failed inside the runner and could not be handed back: it waits for its lease',
      );
    throw err;
  }
  log.error({ err, status }, 'attempt failed inside the runner: handed back to run again soon');
  return result;
}

/** The attempt was taken over by another worker after this one's lease ran out: nothing is written. */
class LeaseLost extends Error {}

/** Throws `LeaseLost` (rolling back the caller's transaction) when a fenced write found the attempt no longer ours. */
async function owned(write: Promise<boolean>, a: AttemptRow): Promise<void> {
  if (!(await write)) throw new LeaseLost(`attempt ${a.id} was taken over by another worker: its result stands`);
}

function fenceOf(a: AttemptRow): store.Fence {
  return { leaseToken: a.leaseToken };
}

async function runClaimed(
  deps: RunnerDeps,
  attempt: AttemptRow,
  previous: store.AttemptStatus,
  progress: Progress,
): Promise<RunResult> {
  const attemptId = attempt.id;
  // A planned attempt never reached Stripe. Anything else (unknown, or a crashed worker's
  // in_flight) may have: only Stripe can say, so local state cannot skip it.
  const mayHaveRun = previous !== 'planned';
  const log = deps.log.child({ attemptId, invoiceId: attempt.invoiceId, attemptNo: attempt.attemptNo });

  const local = await localState(deps.sql, attempt);
  const localSkip =
    local.caseRow === null ? 'no dunning case' : skipReason(local.caseRow, local.invoice, deps.clock.now());
  if (localSkip && !mayHaveRun) return skip(deps, attempt, localSkip);

  let remote: Stripe.Invoice | null;
  try {
    remote = await retrieveInvoice(deps.gateway, attempt.invoiceId);
  } catch (err) {
    log.warn({ err }, 'cannot read the invoice before charging; retrying soon');
    return requeue(
      deps,
      attempt,
      mayHaveRun ? 'unknown' : 'planned',
      `invoice read failed: ${(err as Error).message}`,
      null,
    );
  }
  if (remote === null) {
    // No invoice, so no earlier request of ours can have charged it either.
    await attemptTx(deps, attempt, (tx) =>
      owned(
        store.finishAttempt(
          tx,
          attempt.id,
          { status: 'skipped', finishedAt: deps.clock.now(), failureMessage: MISSING_INVOICE },
          fenceOf(attempt),
        ),
        attempt,
      ),
    );
    if (attempt.caseId !== null) await closeForMissingInvoice(deps, attempt.caseId, attempt.invoiceId);
    return 'skipped';
  }
  // Under the customer's lock: `paid` here takes the invoice off what the mailer lists, and the
  // mailer decides a merged email under that lock. Written beside it, the invoice could turn paid
  // between that decision and its commit, and the email went out listing a paid invoice.
  await attemptTx(deps, attempt, (tx) =>
    store.syncInvoiceStatus(
      tx,
      attempt.invoiceId,
      remote.status ?? 'open',
      remote.amount_paid,
      remote.amount_remaining,
      deps.clock.now(),
    ),
  );
  // Past the key's life, the same key could charge again: the attempt is resolved from Stripe's
  // state, never asked again.
  const firstSent = keyLifeStart(attempt, mayHaveRun, (at) => deps.clock.wallTimeOf(at), deps.wallNow());
  const keyExpired = mayHaveRun && keyMayHaveExpired(firstSent, deps.wallNow());
  // Paid while our outcome was unknown: asking again with the same key tells whether it was us
  // (Stripe replays our success) or someone else (Stripe refuses: already paid). Once the key may be
  // gone that cannot be told: the case closes as paid, and the payment is not credited to this
  // attempt (the customer paying on the hosted page would look the same).
  if (remote.status !== 'open' && !(remote.status === 'paid' && mayHaveRun && !keyExpired)) {
    const why = keyExpired ? ` (${KEY_EXPIRED}; whether this attempt paid it cannot be told)` : '';
    return skip(deps, attempt, `invoice is ${remote.status} at Stripe${why}`, { settled: remote });
  }
  if (keyExpired) {
    // Open: the earlier request did not take the money. If it reached the bank, its decline is
    // among the invoice's charges, and is recorded as this attempt's answer: counted once, as the
    // replay would have.
    let lost: ChargeDecline | null;
    try {
      lost = await chargeOfLostRequest(deps, attempt, firstSent, remote);
    } catch (err) {
      log.warn({ err }, "cannot read the invoice's charges to resolve an attempt past its key's life; retrying soon");
      return requeue(deps, attempt, 'unknown', `charges read failed: ${(err as Error).message}`, null);
    }
    if (lost) {
      log.warn(
        { chargeId: lost.chargeId },
        "attempt past its key's life resolved from the invoice's charges: declined",
      );
      return record(deps, attempt, { kind: 'declined', decline: lost }, mayHaveRun);
    }
  }
  // Our copy of the subscription may not know yet (its event is late, or predates the install).
  // An open invoice also means an earlier request of this attempt did not take the money.
  const stripePause = pauseOfInvoice(remote);
  const held = remote.status === 'open' ? stripeHold(local.caseRow, stripePause, deps.clock.now()) : null;
  if (held) {
    const subscriptionId = local.invoice?.subscriptionId ?? subscriptionOfInvoice(remote);
    // Under the customer's lock too: a paused subscription's invoices leave the mailer's list.
    if (subscriptionId && local.invoice) {
      const customerId = local.invoice.customerId;
      await attemptTx(deps, attempt, (tx) => store.learnCollectionPause(tx, subscriptionId, customerId, stripePause));
    }
    return skip(deps, attempt, held, { resumesAt: stripePause?.resumesAt ?? null });
  }
  if (
    localSkip &&
    remote.status === 'open' &&
    local.caseRow !== null &&
    (local.caseRow.status !== 'open' || local.caseRow.paused)
  ) {
    // Closed or paused while the earlier request was unresolved, which did not take the money.
    // Repeating it could charge a case ops stopped; a decline it may have drawn goes unrecorded.
    return skip(deps, attempt, localSkip);
  }
  if (keyExpired) {
    // No charge of it at Stripe: it never reached the bank, and nothing is counted. Charging now
    // would be a new request under an old plan; the planner plans a new attempt, with a new number
    // and key, under the caps and network limits of now.
    log.warn({ firstSentAt: firstSent }, "attempt past its key's life made no charge: not repeated, planned again");
    return skip(deps, attempt, `${KEY_EXPIRED}; no charge of it at Stripe, planned again with a new key`, {
      replan: true,
    });
  }

  if (remote.status === 'open' && local.caseRow !== null) {
    // Decline details can reach the ledger after this attempt was planned (events arrive in any
    // order): the card may be barred by now, or over a network limit.
    const barred = await chargeBarred(deps, local.caseRow, attempt, remote);
    // Barred by details the ledger does not hold yet: planning again from the ledger would plan
    // the same blind charge, so the case waits; the late event re-plans it when it lands.
    if (barred) return skip(deps, attempt, barred.reason, { replan: !barred.late });
  }

  const key = keyOf(attempt);
  // Before the request leaves, so a takeover after a crash knows the key's age (only the first
  // request starts it: a replay or a takeover does not renew the key) and the time of the latest
  // request, which a charge of the attempt cannot be later than.
  // An attempt an older worker sent starts its key's life at that worker's claim (`keyLifeStart`).
  const sentAt = deps.wallNow();
  await owned(store.markSent(deps.sql, attempt.id, firstSent ?? sentAt, sentAt, fenceOf(attempt)), attempt);
  progress.chargeSent = true;
  const outcome = await payInvoice(deps.gateway, attempt.invoiceId, key, attempt.paymentMethod);
  await deps.afterCharge?.(attempt, outcome);
  return record(deps, attempt, outcome, mayHaveRun);
}

/**
 * When a charge made by an attempt's requests can have been created, in real time, as epoch
 * milliseconds: from its first request (less the clocks' skew) to its latest request plus the time
 * the SDK waits for an answer (after that the request was given up; a repeat is a request of its
 * own and moves `lastSentAt`) plus the skew. Null when no request of it is known to have left.
 */
export function lostChargeWindow(
  firstSentAt: Date | null,
  lastSentAt: Date | null,
): { from: number; to: number } | null {
  if (firstSentAt === null) return null;
  const last = Math.max(firstSentAt.getTime(), lastSentAt?.getTime() ?? -Infinity);
  return {
    from: firstSentAt.getTime() - STRIPE_CLOCK_SKEW_MS,
    to: last + STRIPE_REQUEST_TIMEOUT_MS + STRIPE_CLOCK_SKEW_MS,
  };
}

/**
 * The failed charge an attempt's lost request made, if it made one: the earliest failed charge of
 * the invoice (every PaymentIntent of it) that no ledger row holds, made while a request of the
 * attempt can have charged (`lostChargeWindow`), on the attempt's card when the attempt names one. A
 * request makes at most one charge. Someone else's try on the invoice (the hosted page) is a charge
 * too, and its event waits while this attempt is unresolved (`OurAttemptUnresolved`): one made after
 * our requests (the customer trying hours later, the workers down) is left to that event, which
 * records it under its own source once this attempt is resolved. One made inside the window cannot
 * be told from ours: taking it may credit it to the wrong row, but every charge is still on the
 * ledger once.
 */
async function chargeOfLostRequest(
  deps: RunnerDeps,
  a: AttemptRow,
  firstSent: Date | null,
  remote: Stripe.Invoice,
): Promise<ChargeDecline | null> {
  const window = lostChargeWindow(firstSent, a.lastSentAt);
  if (window === null) return null;
  const charges: Stripe.Charge[] = [];
  for (const pi of intentsOf(remote)) charges.push(...(await failedChargesOf(deps.gateway, pi.id)));
  const inWindow = charges.filter(
    (ch) =>
      ch.created * 1000 >= window.from &&
      ch.created * 1000 <= window.to &&
      (a.paymentMethod === null || ch.payment_method === a.paymentMethod),
  );
  if (inWindow.length === 0) return null;
  const known =
    await deps.sql`select charge_id from payment_attempts where charge_id in ${deps.sql(inWindow.map((ch) => ch.id))}`;
  const onLedger = new Set(known.map((r) => r.charge_id as string));
  const ours = inWindow
    .filter((ch) => !onLedger.has(ch.id))
    .sort((x, y) => x.created - y.created || (x.id < y.id ? -1 : 1))[0];
  if (!ours) return null;
  const d = detailsOfCharge(ours);
  return {
    declineCode: d.declineCode,
    failureCode: d.failureCode,
    adviceCode: d.adviceCode,
    networkAdviceCode: d.networkAdviceCode,
    networkDeclineCode: d.networkDeclineCode,
    chargeId: d.chargeId,
    paymentIntentId: d.paymentIntentId,
    paymentMethod: d.paymentMethod,
    cardFingerprint: d.cardFingerprint,
    cardBrand: d.cardBrand,
    message: `${d.failureMessage ?? 'declined'} (read from the invoice's charges: ${KEY_EXPIRED})`,
  };
}

/**
 * A transaction of the runner that writes an attempt's outcome, the case or our copy of the
 * invoice: the customer's lock first (see `lockCustomerOfInvoice`), so it never holds the attempt
 * row while the event processor holds the case (or the other way round) and each waits for the
 * other, and it never changes what the mailer lists while the mailer decides an email.
 */
function attemptTx<T>(deps: RunnerDeps, a: AttemptRow, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return deps.sql.begin(async (tx) => {
    await lockCustomerOfInvoice(tx, a.invoiceId);
    return fn(tx);
  }) as Promise<T>;
}

function keyOf(a: AttemptRow): string {
  if (!a.idempotencyKey) throw new Error(`attempt ${a.id} has no idempotency key`);
  return a.idempotencyKey;
}

async function localState(
  sql: Sql,
  a: AttemptRow,
): Promise<{ caseRow: CaseRow | null; invoice: store.InvoiceRow | null }> {
  const [caseRow, invoice] = await Promise.all([
    a.caseId === null ? null : store.caseById(sql, a.caseId),
    store.invoiceById(sql, a.invoiceId),
  ]);
  return { caseRow, invoice };
}

export function skipReason(c: CaseRow, invoice: store.InvoiceRow | null, now: Date): string | null {
  if (c.status !== 'open') return `case is ${c.status}`;
  if (c.paused) return 'case is paused';
  if (invoice && invoice.status !== 'open') return `invoice is ${invoice.status}`;
  return stripeHold(c, invoice?.collectionPause ?? null, now);
}

/**
 * Why charging this attempt's card now would break a never-retry answer or a network limit, if it
 * would. `late`: only the details of Stripe's own charge read from `remote` (see
 * `lateStripeDecline`) bar it.
 */
async function chargeBarred(
  deps: RunnerDeps,
  caseRow: CaseRow,
  a: AttemptRow,
  remote: Stripe.Invoice,
): Promise<{ reason: string; late: boolean } | null> {
  // Checked against exactly the card this attempt charges (the one it was planned for).
  const ctx = await loadPlanContext(deps.sql, deps, caseRow, a.paymentMethod, { asPlanned: true });
  const history = { ...ctx.history, attempts: ctx.history.attempts.filter((x) => x.attemptNo !== a.attemptNo) };
  const check = checkCharge(history, ctx.customer, deps.clock.now());
  if (!check.allowed) return { reason: `not charged: ${check.reason}`, late: false };
  const late = lateStripeDecline(remote, ctx.attempts);
  if (!late) return null;
  const patched = history.attempts.map((x) =>
    x.attemptNo === late.attemptNo
      ? { ...x, decline: late.decline, paymentMethod: x.paymentMethod ?? late.paymentMethod }
      : x,
  );
  const recheck = checkCharge({ ...history, attempts: patched }, ctx.customer, deps.clock.now());
  if (recheck.allowed) return null;
  deps.log.info(
    { attemptId: a.id, invoiceId: a.invoiceId, stripeAttempt: late.attemptNo },
    'decline details read from Stripe ahead of their event bar this charge',
  );
  return { reason: `not charged: ${recheck.reason} (read from Stripe before its event arrived)`, late: true };
}

/**
 * What the bank said to Stripe's own latest charge, when the ledger holds that decline without
 * details: charge.failed and payment_intent.payment_failed can sit behind a backlog, so a retry
 * may come due planned blind, on a card that is lost or needs 3-D Secure. The invoice read before
 * every charge carries the PaymentIntents' last error. Used for this check only: the ledger gets
 * the details from the events, which also tell the reminders.
 */
export function lateStripeDecline(
  remote: Stripe.Invoice,
  attempts: readonly AttemptRow[],
): { attemptNo: number; paymentMethod: string | null; decline: DeclineInfo } | null {
  const last = attempts.filter((x) => x.status === 'declined').sort((x, y) => y.attemptNo - x.attemptNo)[0];
  if (!last || last.source !== 'stripe') return null;
  if (last.declineCode || last.failureCode || last.adviceCode || last.networkAdviceCode || last.networkDeclineCode)
    return null;
  const d = lastIntentError(remote);
  if (!d) return null;
  // An error the ledger already holds on another attempt is that attempt's, not Stripe's.
  if (d.chargeId && attempts.some((x) => x.chargeId === d.chargeId && x.id !== last.id)) return null;
  if (!d.declineCode && !d.failureCode && !d.adviceCode && !d.networkAdviceCode && !d.networkDeclineCode) return null;
  return {
    attemptNo: last.attemptNo,
    paymentMethod: d.paymentMethod,
    decline: d,
  };
}

async function skip(
  deps: RunnerDeps,
  a: AttemptRow,
  reason: string,
  o: { replan?: boolean; resumesAt?: Date | null; settled?: Stripe.Invoice } = {},
): Promise<RunResult> {
  await attemptTx(deps, a, async (tx) => {
    await owned(
      store.finishAttempt(
        tx,
        a.id,
        { status: 'skipped', finishedAt: deps.clock.now(), failureMessage: reason },
        fenceOf(a),
      ),
      a,
    );
    if (a.caseId !== null && o.settled && (await closeSettledAtStripe(tx, deps, a.caseId, o.settled, deps.clock.now())))
      return;
    if (a.caseId !== null) {
      await tx`update dunning_cases set next_attempt_at = null, next_attempt_reason = ${`attempt #${a.attemptNo} skipped: ${reason}`}
                where id = ${a.caseId} and status = 'open'`;
      if (o.replan) await planNext(tx, deps, a.caseId);
      else await scheduleWindowDeadline(tx, deps, a.caseId, `attempt #${a.attemptNo} skipped: ${reason}`);
      if (o.resumesAt) await scheduleResume(tx, deps, a.caseId, o.resumesAt, reason);
    }
  });
  deps.log.info({ attemptId: a.id, invoiceId: a.invoiceId, reason }, 'attempt skipped');
  return 'skipped';
}

async function record(
  deps: RunnerDeps,
  a: AttemptRow,
  outcome: ChargeOutcome,
  mayHaveRun: boolean,
): Promise<RunResult> {
  const now = deps.clock.now();
  const log = deps.log.child({ attemptId: a.id, invoiceId: a.invoiceId, attemptNo: a.attemptNo });
  switch (outcome.kind) {
    case 'succeeded': {
      const amount = outcome.invoice.amount_paid;
      await attemptTx(deps, a, async (tx) => {
        await owned(
          store.finishAttempt(tx, a.id, { status: 'succeeded', finishedAt: now, ...outcome.paidBy }, fenceOf(a)),
          a,
        );
        await store.syncInvoiceStatus(tx, a.invoiceId, 'paid', amount, 0, now);
        if (a.caseId === null) return;
        const reason = `paid by attempt #${a.attemptNo} (${a.source})`;
        const closed = await closeCase(tx, a.caseId, {
          status: 'recovered',
          reason,
          at: now,
          // The runner charges only attempts of ours; a `stripe` row never reaches here.
          recoveryPath: PATH_OF_SOURCE[a.source] ?? 'scheduled_retry',
          invoicePaid: amount,
        });
        if (closed)
          await deps.onCaseClosed?.(tx, {
            caseId: a.caseId,
            invoiceId: a.invoiceId,
            status: 'recovered',
            reason,
            at: now,
          });
      });
      log.info({ amount, source: a.source }, 'attempt succeeded: case recovered');
      if (a.source === 'backup_card' && a.caseId !== null)
        await promoteBackupCard(deps, a.caseId, a.invoiceId, a.paymentMethod);
      return 'succeeded';
    }
    case 'declined': {
      const d = outcome.decline;
      const c = classifyDecline({ ...d, cardBrand: d.cardBrand ?? a.cardBrand });
      deps.reportUnknownCodes?.(c);
      await attemptTx(deps, a, async (tx) => {
        const written = store.finishAttempt(
          tx,
          a.id,
          {
            status: 'declined',
            finishedAt: now,
            chargeId: d.chargeId,
            paymentIntentId: d.paymentIntentId,
            paymentMethod: d.paymentMethod,
            cardFingerprint: d.cardFingerprint,
            cardBrand: d.cardBrand,
            declineCode: d.declineCode,
            failureCode: d.failureCode,
            adviceCode: d.adviceCode,
            networkAdviceCode: d.networkAdviceCode,
            networkDeclineCode: d.networkDeclineCode,
            declineCategory: c.category,
            failureMessage: d.message,
          },
          fenceOf(a),
        );
        await owned(written, a);
        await rememberCard(tx, {
          paymentMethod: d.paymentMethod,
          customerId: (await store.invoiceById(tx, a.invoiceId))?.customerId ?? null,
          fingerprint: d.cardFingerprint,
          brand: d.cardBrand,
          at: now,
        });
        if (a.caseId === null) return;
        // The case's decline codes tell the default card's story (reminders speak of that card);
        // a backup card's decline is on the ledger, not there.
        if (a.source !== 'backup_card')
          await store.recordDecline(tx, a.caseId, d.declineCode ?? d.failureCode, c.category, now);
        await planNext(tx, deps, a.caseId);
      });
      log.info({ declineCode: d.declineCode, category: c.category }, 'attempt declined');
      return 'declined';
    }
    case 'refused':
      // The runner has just read the invoice open: a refused backup card is one Stripe no longer
      // lets us charge (the customer removed it since it was listed). Forget it and plan again,
      // or the case would sit idle until its window ends with the default card's retries unmade.
      if (a.source === 'backup_card' && a.paymentMethod && !mayHaveRun) {
        await store.forgetSavedCard(deps.sql, a.paymentMethod);
        return skip(deps, a, `Stripe refused the backup card: ${outcome.message}`, { replan: true });
      }
      // With an unknown earlier outcome, a refusal means that request never charged (Stripe would
      // have replayed it): someone else settled the invoice.
      return skip(
        deps,
        a,
        `Stripe refused the charge: ${outcome.message}${mayHaveRun ? ' (earlier request did not charge)' : ''}`,
      );
    case 'not_sent':
      log.warn({ message: outcome.message }, 'charge request not sent; repeating it with the same key');
      return requeue(deps, a, mayHaveRun ? 'unknown' : 'planned', `not sent: ${outcome.message}`, outcome.retryAfterMs);
    case 'unknown':
      log.warn({ message: outcome.message }, 'charge outcome unknown; reconciling before anything else');
      return requeue(deps, a, 'unknown', `outcome unknown: ${outcome.message}`, null);
    case 'key_conflict': {
      // Repeating it would get the same 400 forever, and a new key could charge twice if the first
      // request with this key went through: the attempt stays unresolved until ops look.
      const message = `needs ops: idempotency key ${keyOf(a)} was used before with other parameters`;
      await attemptTx(deps, a, async (tx) => {
        await owned(store.parkAttempt(tx, a.id, `${message}: ${outcome.message}`, fenceOf(a)), a);
        if (a.caseId !== null)
          await store.setNextAttempt(tx, a.caseId, null, `attempt #${a.attemptNo} ${message}`, now);
      });
      log.error(
        { idempotencyKey: keyOf(a), message: outcome.message },
        'idempotency key reused with other parameters: attempt left unresolved for ops',
      );
      return 'needs_ops';
    }
  }
}

/** Puts the attempt back with the same key and sends a job for soon; no dunning attempt is used. */
async function requeue(
  deps: RunnerDeps,
  a: AttemptRow,
  status: 'planned' | 'unknown',
  message: string,
  retryAfterMs: number | null,
): Promise<RunResult> {
  const backoff = Math.min(deps.requestRetryMaxMs, deps.requestRetryBaseMs * 2 ** Math.min(a.requestTries, 20));
  const delayMs = Math.max(backoff, retryAfterMs ?? 0);
  // Request retries are about Stripe's real-time health, so the job runs in real time.
  const wallAt = new Date(Date.now() + delayMs);
  await attemptTx(deps, a, async (tx) => {
    await owned(
      store.releaseAttempt(tx, a.id, status, new Date(deps.clock.now().getTime() + delayMs), message, fenceOf(a)),
      a,
    );
    await sendAttemptJob(
      tx,
      { boss: deps.boss, clock: { now: () => wallAt, wallTimeOf: (d) => d, realDurationMs: (ms) => ms } },
      a.id,
      a.invoiceId,
      wallAt,
    );
  });
  return status === 'planned' ? 'not_sent' : 'unknown';
}

/**
 * Claimed by another worker: if that worker dies, nobody would look again. A follow-up job after
 * its lease lets the next claim take over (it is a no-op when the holder finished).
 */
async function followUpHeldAttempt(deps: RunnerDeps, attemptId: number): Promise<void> {
  const [row] =
    await deps.sql`select invoice_id, lease_until from payment_attempts where id = ${attemptId} and status = 'in_flight'`;
  if (!row?.lease_until) return;
  const wallAt = new Date((row.lease_until as Date).getTime() + 1000);
  await sendAttemptJob(
    deps.sql,
    { boss: deps.boss, clock: { now: () => wallAt, wallTimeOf: (d) => d, realDurationMs: (ms) => ms } },
    attemptId,
    row.invoice_id as string,
    wallAt,
  );
}

export interface RetryWorkerOptions {
  sql: Sql;
  boss: PgBoss;
  stripe: Stripe;
  clock: Clock;
  log: Logger;
  config: Pick<Config, 'stripeRequestsPerSecond' | 'defaultTimeZone' | 'workerConcurrency'>;
  /** The current policy: new cases open with it; older cases keep theirs. */
  policy: Policy;
  onAttemptPlanned?: (tx: Tx, e: AttemptPlannedEvent) => Promise<void>;
  onCaseClosed?: (tx: Tx, e: CaseClosedEvent) => Promise<void>;
  onMerchantError?: SchedulerDeps['onMerchantError'];
  reportUnknownCodes?: (classification: Classification) => void;
  /** Share one throttle with every other Stripe caller of the process. */
  throttle?: Throttle;
  /** The process's learned-timing snapshot source (src/dunning/adaptive-refresh.ts); absent: the policy's timing alone. */
  learned?: LearnedSource;
  /** Independent fetch loops (default WORKER_CONCURRENCY), so one slow batch does not hold up the rest. */
  localConcurrency?: number;
  /** Attempts fetched per poll by each loop; they run concurrently (default 10). */
  batchSize?: number;
  pollingIntervalSeconds?: number;
  leaseMs?: number;
  requestRetryBaseMs?: number;
}

/** Builds the runner's dependencies; exported so commands and tests run attempts the same way. */
export function runnerDeps(
  o: Omit<RetryWorkerOptions, 'boss' | 'batchSize' | 'localConcurrency' | 'pollingIntervalSeconds'> & {
    boss: Pick<PgBoss, 'send' | 'cancel'>;
  },
): RunnerDeps {
  return {
    sql: o.sql,
    boss: o.boss,
    clock: o.clock,
    log: o.log.child({ component: 'retry-runner' }),
    merchantTimeZone: o.config.defaultTimeZone,
    policies: createPolicySource(o.policy),
    ...(o.learned ? { learned: o.learned } : {}),
    gateway: { stripe: o.stripe, throttle: o.throttle ?? createThrottle(o.config.stripeRequestsPerSecond) },
    wallNow: () => new Date(),
    leaseMs: o.leaseMs ?? 120_000,
    requestRetryBaseMs: o.requestRetryBaseMs ?? 2_000,
    requestRetryMaxMs: 300_000,
    ...(o.onAttemptPlanned ? { onAttemptPlanned: o.onAttemptPlanned } : {}),
    ...(o.onCaseClosed ? { onCaseClosed: o.onCaseClosed } : {}),
    ...(o.onMerchantError ? { onMerchantError: o.onMerchantError } : {}),
    ...(o.reportUnknownCodes ? { reportUnknownCodes: o.reportUnknownCodes } : {}),
  };
}

/** Starts the attempt and deadline workers; the returned function stops them (running jobs finish). */
export async function startRetryWorkers(o: RetryWorkerOptions): Promise<() => Promise<void>> {
  const deps = runnerDeps(o);
  await savePolicy(o.sql, o.policy);
  const batchSize = o.batchSize ?? 10;
  const localConcurrency = o.localConcurrency ?? o.config.workerConcurrency;
  const pollingIntervalSeconds = o.pollingIntervalSeconds ?? 1;
  await o.boss.work<AttemptJob>(
    QUEUES.attempts,
    { batchSize, localConcurrency, pollingIntervalSeconds, burstWhenBatchFull: true },
    async (jobs) => {
      // One batch runs concurrently; the throttle, not the batch, paces Stripe.
      await Promise.all(jobs.map((job) => executeAttempt(deps, job.data.attemptId)));
    },
  );
  await o.boss.work<DeadlineJob>(QUEUES.deadlines, { batchSize: 4, pollingIntervalSeconds }, async (jobs) => {
    for (const job of jobs) await handleDeadline(deps, job.data);
  });
  deps.log.info({ batchSize, localConcurrency }, 'retry workers started');
  return async () => {
    await o.boss.offWork(QUEUES.attempts, { wait: true });
    await o.boss.offWork(QUEUES.deadlines, { wait: true });
  };
}

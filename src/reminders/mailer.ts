/**
 * The pg-boss worker that sends reminder emails from the outbox. Each row is taken with a row lock
 * and a pending -> sending transition, so two workers (or a duplicated job) can never both send it;
 * the stop rules are checked at that moment, so nothing goes out after a payment.
 */
import { pausedAt } from '../dunning/collection-pause.ts';
import type { JobResult, PgBoss } from 'pg-boss';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { lockCustomer } from '../customer-lock.ts';
import type { Sql, Tx } from '../db.ts';
import type { Logger } from '../log.ts';
import { jobDb, QUEUES } from '../queue.ts';
import { buildValues } from './content.ts';
import { decideSend, MERGEABLE, type ListedInvoice } from './conversation.ts';
import type { Locale } from './localize.ts';
import { nextAllowedSend } from './localize.ts';
import * as outbox from './outbox.ts';
import { recordOpsAlert } from './ops-alerts.ts';
import { cancelReason } from './planner.ts';
import { defaultReminderPolicy, type QuietHours, type ReminderPolicy } from './policy.ts';
import type { TemplateSet } from './templates.ts';
import { classifySendError, SendError, type MailTransport, type SendProblem } from './transport.ts';

export interface Backoff {
  baseMs: number;
  /** The longest wait between two tries. */
  maxMs: number;
  /**
   * How long after its first temporary failure a reminder is still retried; past that it counts
   * as failed. Transport problems (our mail server) neither start nor end this horizon.
   */
  horizonMs: number;
}

/** 1 min doubling to 1 h, for two days: about 53 tries. */
export const DEFAULT_BACKOFF: Backoff = { baseMs: 60_000, maxMs: 3_600_000, horizonMs: 48 * 3_600_000 };

export function backoffOf(policy: Pick<ReminderPolicy, 'delivery'>): Backoff {
  return { ...DEFAULT_BACKOFF, horizonMs: policy.delivery.retryHours * 3_600_000 };
}

export interface MailerDeps {
  sql: Sql;
  boss: PgBoss;
  clock: Clock;
  log: Logger;
  config: Config;
  transport: MailTransport;
  templates: TemplateSet;
  /**
   * An update-card link when the invoice has no hosted page: a signed link to our /update-card
   * (PUBLIC_URL set), else a Billing Portal session (see links.ts); null when there is none to
   * give. May throw a SendError: a temporary one (Stripe busy) is retried like SMTP.
   */
  portalLink?: (customerId: string) => Promise<string | null>;
  backoff?: Backoff;
  /** The frequency cap and merging (the default policy's: the cap is per customer, across cases). */
  policy?: Pick<ReminderPolicy, 'frequencyCap' | 'merge'>;
  pollingIntervalSeconds?: number;
  concurrency?: number;
}

/** The wait after the `tries`-th failed try. */
export function retryDelayMs(tries: number, b: Pick<Backoff, 'baseMs' | 'maxMs'>): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, tries - 1));
}

/**
 * After the `tries`-th failed try: when to try again, or give up. Permanent problems give up at
 * once; temporary ones once the next try would fall past the horizon, counted from the first
 * temporary failure (`firstFailedAt`, or now for the first one); transport problems never do.
 */
export function nextRetry(
  o: { tries: number; problem: SendProblem; firstFailedAt: Date | null; now: Date },
  b: Backoff,
): { giveUp: true } | { giveUp: false; at: Date } {
  if (o.problem === 'permanent') return { giveUp: true };
  const at = new Date(o.now.getTime() + retryDelayMs(o.tries, b));
  if (o.problem === 'transport') return { giveUp: false, at };
  const since = (o.firstFailedAt ?? o.now).getTime();
  return at.getTime() - since > b.horizonMs ? { giveUp: true } : { giveUp: false, at };
}

export async function enqueueSend(
  tx: Tx,
  boss: Pick<PgBoss, 'send'>,
  clock: Clock,
  outboxId: number,
  sendAt: Date,
): Promise<void> {
  const job: SendJob = { outboxId, sendAt: sendAt.toISOString() };
  await boss.send(QUEUES.reminders, job, { startAfter: clock.wallTimeOf(sendAt), db: jobDb(tx) });
}

/** `sendAt` is the row's send time this job was scheduled for: a later send time means a newer job exists. */
export interface SendJob {
  outboxId: number;
  sendAt?: string;
}

type Claim = { ok: true; ctx: outbox.SendContext; listed: ListedInvoice[]; merged: number[] } | { ok: false };

const HOUR_MS = 3_600_000;
/** Steps whose email lists every invoice of the customer still being dunned, not only the merged ones. */
const LISTS_ALL_OPEN = ['first_notice', 'last_chance'];

/** Reminders fetched per poll by each slot; they are sent side by side. */
const MAIL_BATCH_SIZE = 10;

/**
 * How long a claimed send may take before it counts as stuck. The SMTP transport gives up well
 * before this (see transport.ts), so only a worker that died mid-send leaves a row past its lease.
 */
export const SEND_LEASE_SECONDS = 15 * 60;
/**
 * How late, in real time, a send job may run and still send into quiet hours. The queue's own
 * polling and a short backlog make a job seconds to minutes late; that is not a reason to hold a
 * reminder due in the customer's evening until the next morning. On the demo's fast clock one real
 * second is hours, so lateness is measured in real time, not in the clock's.
 */
export const LATE_SEND_TOLERANCE_MS = 10 * 60_000;

/**
 * Where a send job that runs late (the worker was down, a backlog) moves its reminder: the next
 * moment outside the customer's quiet hours, or null to send now. Only ever to a time later than
 * the row's own, so a clock that stands still (tests, the demo once its cycle ends) cannot defer a
 * reminder again when the queue runs that job.
 */
export function lateSendMovedTo(
  now: Date,
  sendAt: Date,
  zone: string,
  quiet: QuietHours,
  clock: Pick<Clock, 'realDurationMs'>,
): Date | null {
  if (clock.realDurationMs(now.getTime() - sendAt.getTime()) <= LATE_SEND_TOLERANCE_MS) return null;
  const allowed = nextAllowedSend(now, zone, quiet);
  return allowed.getTime() > now.getTime() && allowed.getTime() > sendAt.getTime() ? allowed : null;
}
const STUCK_SWEEP_MS = 60_000;
const STUCK_BATCH = 100;

/**
 * Starts the worker; the returned function stops it (in-flight sends finish first). Each job is
 * settled on its own, so one failing send is retried alone; while batches come back full the slot
 * fetches again at once, so a backlog (a Monday-morning wave of first notices) drains at SMTP speed
 * rather than one reminder per poll.
 */
export async function startMailer(deps: MailerDeps): Promise<() => Promise<void>> {
  const log = deps.log.child({ component: 'mailer' });
  await deps.boss.work<SendJob>(
    QUEUES.reminders,
    {
      batchSize: MAIL_BATCH_SIZE,
      localConcurrency: deps.concurrency ?? 2,
      pollingIntervalSeconds: deps.pollingIntervalSeconds ?? 2,
      burstWhenBatchFull: true,
      perJobResults: true,
    },
    async (jobs) =>
      Promise.all(
        jobs.map(async (job): Promise<JobResult> => {
          try {
            await sendOne({ ...deps, log }, job.data.outboxId, job.data.sendAt ? new Date(job.data.sendAt) : null);
            return { id: job.id, status: 'completed' };
          } catch (err) {
            return {
              id: job.id,
              status: 'failed',
              output: { message: err instanceof Error ? err.message : String(err) },
            };
          }
        }),
      ),
  );
  const sweep = () =>
    failStuckSends({ ...deps, log }).catch((err: unknown) => log.error({ err }, 'stuck-send sweep failed'));
  await sweep();
  const timer = setInterval(() => void sweep(), STUCK_SWEEP_MS).unref();
  return async () => {
    clearInterval(timer);
    await deps.boss.offWork(QUEUES.reminders);
  };
}

/**
 * Fails the rows a dead worker left in `sending`. Whether those emails left is unknown; sending
 * again could mean a duplicate, so each one is put on the case and reported to ops instead.
 * Safe to run from every worker at once: each row is locked and taken by one of them.
 */
export async function failStuckSends(
  deps: Pick<MailerDeps, 'sql' | 'boss' | 'clock' | 'log' | 'config'>,
): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await deps.sql.begin(async (tx) => {
      const stuck = await outbox.lockStuckSends(tx, STUCK_BATCH);
      const now = deps.clock.now();
      for (const row of stuck) {
        await fail(
          tx,
          deps,
          row,
          'delivery unknown: the worker stopped during the send; check the mail log before sending it by hand',
          now,
        );
      }
      return stuck.length;
    });
    total += n;
    if (n < STUCK_BATCH) return total;
  }
}

/**
 * One outbox row, start to finish. `scheduledFor` is the send time the job was enqueued for: the
 * queue runs it then, so it is not checked against the clock (a frozen or scaled clock would
 * otherwise defer it forever). Without it (a stray job, a manual call) the clock decides.
 */
export async function sendOne(deps: MailerDeps, outboxId: number, scheduledFor: Date | null = null): Promise<void> {
  const { sql, clock, config } = deps;
  const log = deps.log.child({ outboxId });
  const backoff = deps.backoff ?? DEFAULT_BACKOFF;

  const customerId = await outbox.customerOfReminder(sql, outboxId);
  const claim = await sql.begin(async (tx): Promise<Claim> => {
    // Customer first, as the event processor does, then the case, then the row: one lock order.
    if (customerId !== null) await lockCustomer(tx, customerId);
    await outbox.lockCaseOf(tx, outboxId);
    const ctx = await outbox.lockSendContext(tx, outboxId);
    // Locked by another worker (it decides) or no longer pending: nothing to do here.
    if (!ctx || ctx.status !== 'pending') return { ok: false };
    const now = clock.now();
    const reason = cancelReason({
      kind: ctx.kind,
      caseStatus: ctx.caseStatus,
      // Collection paused at Stripe holds the case like `dunning pause` does, also where the
      // event that paused it found this reminder already queued.
      casePaused:
        ctx.casePaused ||
        pausedAt(
          ctx.pauseBehavior === null ? null : { behavior: ctx.pauseBehavior, resumesAt: ctx.pauseResumesAt },
          now,
        ),
      invoiceStatus: ctx.invoiceStatus,
      customerDeleted: ctx.customerDeleted,
      reminderPaymentMethod: typeof ctx.data.paymentMethod === 'string' ? ctx.data.paymentMethod : null,
      currentPaymentMethod: ctx.defaultPaymentMethod,
      reminderCardRenews: ctx.reminderCardRenews,
    });
    if (reason) {
      await outbox.markCancelled(tx, outboxId, reason, now);
      log.info({ kind: ctx.kind, reason }, 'reminder cancelled');
      return { ok: false };
    }
    if (scheduledFor !== null && ctx.sendAt.getTime() > scheduledFor.getTime()) {
      // The row was moved later (a retry); the job enqueued with that move will send it.
      return { ok: false };
    }
    if (scheduledFor === null && ctx.sendAt.getTime() > now.getTime()) {
      await enqueueSend(tx, deps.boss, clock, outboxId, ctx.sendAt);
      return { ok: false };
    }
    const allowed = lateSendMovedTo(now, ctx.sendAt, ctx.timeZone, quietHoursOf(ctx), clock);
    if (allowed) {
      await outbox.reschedule(tx, outboxId, allowed, now);
      await enqueueSend(tx, deps.boss, clock, outboxId, allowed);
      log.info(
        { kind: ctx.kind, due: ctx.sendAt, sendAt: allowed },
        'reminder late into quiet hours; moved to the next allowed time',
      );
      return { ok: false };
    }
    if (!ctx.email) {
      await fail(tx, deps, ctx, 'customer has no email address', now);
      return { ok: false };
    }
    const conversation = await converse(tx, deps, ctx, now, scheduledFor);
    if (conversation === null) return { ok: false };
    if (!(await outbox.markSending(tx, outboxId, now, SEND_LEASE_SECONDS))) return { ok: false };
    return { ok: true, ...conversation };
  });
  if (!claim.ok) return;
  const { ctx, listed, merged } = claim;

  let messageId: string | null;
  try {
    // The invoice's own page first: it lets the customer pay as well as change card. An email
    // about several invoices has one update-card link instead: the new card pays them all (every
    // open case is retried on a card update), where one invoice's page would pay only that one.
    const link =
      listed.length > 1
        ? ((await deps.portalLink?.(ctx.customerId)) ?? ctx.hostedInvoiceUrl ?? null)
        : (ctx.hostedInvoiceUrl ?? (await deps.portalLink?.(ctx.customerId)) ?? null);
    if (!link)
      throw new SendError(
        'no update-card link: the invoice has no hosted URL and no Billing Portal link is available',
        'permanent',
      );
    const values = buildValues(ctx, config, link, clock.now(), listed);
    const email = deps.templates.render(ctx.kind, ctx.locale as Locale, values);
    const domain = config.mailFromAddress.split('@')[1] ?? 'dunning.local';
    const sent = await deps.transport.send({
      from: config.mailFrom,
      to: ctx.email ?? '',
      ...email,
      messageId: `<reminder-${ctx.id}-${ctx.kind}-${ctx.step}@${domain}>`,
      headers: { 'X-Dunning-Reminder': `${ctx.kind}:${ctx.step}` },
    });
    messageId = sent.messageId;
  } catch (err) {
    const problem = classifySendError(err);
    const now = clock.now();
    const tries = ctx.tries + 1;
    const next = nextRetry({ tries, problem: problem.problem, firstFailedAt: ctx.firstFailedAt, now }, backoff);
    await sql.begin(async (tx) => {
      if (next.giveUp) {
        const why = problem.permanent
          ? problem.message
          : `${problem.message} (still refused after ${Math.round(backoff.horizonMs / 3_600_000)} h of retries)`;
        await fail(tx, deps, ctx, why, now);
        return;
      }
      const sendAt = nextAllowedSend(next.at, ctx.timeZone, quietHoursOf(ctx));
      await outbox.markRetry(tx, ctx.id, problem.message, sendAt, now, problem.problem === 'temporary' ? now : null);
      await enqueueSend(tx, deps.boss, clock, ctx.id, sendAt);
      for (const id of await outbox.releaseMerged(tx, ctx.id, sendAt, now))
        await enqueueSend(tx, deps.boss, clock, id, sendAt);
      const fields = { kind: ctx.kind, caseId: ctx.caseId, tries, retryAt: sendAt, err: problem.message };
      // Our own mail setup is broken: every reminder is held up, and only ops can fix it.
      if (problem.problem === 'transport')
        log.error(
          fields,
          'reminder not sent: the mail transport fails (check SMTP_URL and the mail server); will retry',
        );
      else log.warn(fields, 'reminder send failed; will retry');
    });
    return;
  }
  await outbox.markSent(sql, ctx.id, clock.now(), messageId);
  log.info(
    {
      kind: ctx.kind,
      step: ctx.step,
      caseId: ctx.caseId,
      locale: ctx.locale,
      ...(merged.length > 0 ? { merged } : {}),
      ...(listed.length > 1 ? { invoices: listed.length } : {}),
    },
    'reminder sent',
  );
}

/**
 * Under the customer's lock: asks the pure decision whether the reminder goes now and what it takes
 * along, and writes the answer. Null when the cap held it back (moved and re-enqueued) or held it
 * past the moment it was about (cancelled). The cap is
 * judged at the job's own time when the queue ran it early against a scaled or frozen clock, as
 * the send time itself is, so a deferred reminder is not deferred again by the same emails.
 */
async function converse(
  tx: Tx,
  deps: MailerDeps,
  ctx: outbox.SendContext,
  now: Date,
  scheduledFor: Date | null,
): Promise<{ ctx: outbox.SendContext; listed: ListedInvoice[]; merged: number[] } | null> {
  const policy = deps.policy ?? defaultReminderPolicy();
  const at = scheduledFor !== null && scheduledFor.getTime() > now.getTime() ? scheduledFor : now;
  const cap = policy.frequencyCap;
  const lookbackMs = Math.max(cap.perDays * 24, cap.minHoursBetween) * HOUR_MS;
  const history = await outbox.emailsOfCustomer(tx, ctx.customerId, new Date(at.getTime() - lookbackMs));
  // A pending row the mailer would cancel at its own send time (paid, paused...) is not taken along.
  const pending = (await outbox.pendingOfCustomer(tx, ctx.customerId, at)).filter(
    (p) =>
      p.id !== ctx.id &&
      cancelReason({
        kind: p.kind,
        caseStatus: p.caseStatus,
        casePaused: p.casePaused,
        invoiceStatus: p.invoiceStatus,
        customerDeleted: ctx.customerDeleted,
        reminderPaymentMethod: null,
        currentPaymentMethod: null,
      }) === null,
  );
  const decision = decideSend({
    reminder: {
      id: ctx.id,
      kind: ctx.kind,
      caseId: ctx.caseId,
      invoiceId: ctx.invoiceId,
      sendAt: ctx.sendAt,
      // A last chance after its final attempt, a card-expiry warning after the card expired: no use.
      pointlessAfter:
        ctx.kind === 'last_chance'
          ? dateOf(ctx.data.attemptAt)
          : ctx.kind === 'card_expiring'
            ? dateOf(ctx.data.expiresAt)
            : null,
    },
    pending,
    history,
    policy,
    now: at,
  });
  if (decision.action === 'cancel') {
    await outbox.markCancelled(tx, ctx.id, decision.reason, now);
    deps.log.info(
      { outboxId: ctx.id, kind: ctx.kind, caseId: ctx.caseId, reason: decision.reason },
      'reminder cancelled',
    );
    return null;
  }
  if (decision.action === 'defer') {
    const sendAt = nextAllowedSend(decision.until, ctx.timeZone, quietHoursOf(ctx));
    await outbox.deferByCap(tx, ctx.id, sendAt, decision.reason, now);
    await enqueueSend(tx, deps.boss, deps.clock, ctx.id, sendAt);
    deps.log.info(
      { outboxId: ctx.id, kind: ctx.kind, caseId: ctx.caseId, due: ctx.sendAt, sendAt, reason: decision.reason },
      'reminder held back by the frequency cap',
    );
    return null;
  }
  const merged = await outbox.markMerged(tx, decision.merge, ctx.id, now);
  if (!MERGEABLE.includes(ctx.kind) || ctx.invoiceId === null || ctx.currency === null)
    return { ctx, listed: [], merged };
  const others = (
    await outbox.invoicesOfEmail(tx, ctx.id, ctx.customerId, LISTS_ALL_OPEN.includes(ctx.kind), now)
  ).filter((i) => i.invoiceId !== ctx.invoiceId);
  if (others.length === 0) return { ctx, listed: [], merged };
  const own: ListedInvoice = {
    invoiceId: ctx.invoiceId,
    currency: ctx.currency,
    amount: ctx.amountRemaining || (ctx.caseAmount ?? 0),
    created: ctx.invoiceCreated,
    forSubscription: ctx.invoiceForSubscription,
  };
  const listed = [
    own,
    ...others.map((i) => ({
      invoiceId: i.invoiceId,
      currency: i.currency,
      amount: i.amountRemaining || (i.caseAmount ?? 0),
      created: i.created,
      forSubscription: i.forSubscription,
    })),
  ];
  return { ctx: withEarliestFinalAttempt(ctx, others), listed, merged };
}

/**
 * A last chance that carries others names one date for the final attempt: the earliest of them,
 * so no invoice it lists is charged for the last time (and lost) before the day the email gives.
 */
function withEarliestFinalAttempt(ctx: outbox.SendContext, others: readonly outbox.InvoiceOfEmail[]) {
  const own = dateOf(ctx.data.attemptAt);
  if (ctx.kind !== 'last_chance' || own === null) return ctx;
  const earliest = others.reduce(
    (min, i) => (i.finalAttemptAt !== null && i.finalAttemptAt.getTime() < min.getTime() ? i.finalAttemptAt : min),
    own,
  );
  return earliest === own ? ctx : { ...ctx, data: { ...ctx.data, attemptAt: earliest.toISOString() } };
}

const dateOf = (v: unknown): Date | null => {
  if (typeof v !== 'string') return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
};

function quietHoursOf(ctx: outbox.SendContext) {
  const { quietStart, quietEnd } = ctx.data;
  return typeof quietStart === 'number' && typeof quietEnd === 'number'
    ? { start: quietStart, end: quietEnd }
    : defaultReminderPolicy().quietHours;
}

/** A permanent failure: on the row, on the case, in the log and to ops. */
async function fail(
  tx: Tx,
  deps: Pick<MailerDeps, 'boss' | 'log' | 'config'>,
  ctx: outbox.StuckSend,
  problem: string,
  now: Date,
): Promise<void> {
  await outbox.markFailed(tx, ctx.id, problem, now);
  await outbox.failMerged(tx, ctx.id, problem, now);
  deps.log.warn({ outboxId: ctx.id, kind: ctx.kind, caseId: ctx.caseId, err: problem }, 'reminder failed permanently');
  if (ctx.caseId === null) return;
  await outbox.recordCaseProblem(tx, ctx.caseId, `${ctx.kind} email failed: ${problem}`, now);
  await recordOpsAlert(
    tx,
    deps,
    'email_failed',
    {
      caseId: ctx.caseId,
      invoiceId: ctx.invoiceId ?? '',
      customerId: ctx.customerId,
      amount: ctx.caseAmount ?? 0,
      currency: ctx.currency ?? 'usd',
      detail: `${ctx.kind}: ${problem}`,
    },
    now,
  );
}

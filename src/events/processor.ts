import type { JobResult, PgBoss } from 'pg-boss';
import type Stripe from 'stripe';
import { lockCustomer } from '../customer-lock.ts';
import type { Sql } from '../db.ts';
import { QUEUES } from '../queue.ts';
import { chargeFailed, intentFailed } from './charges.ts';
import { EventUnprocessable, type EventHandler, type Outcome, type ProcessorDeps } from './context.ts';
import {
  customerUpdated,
  paymentMethodChanged,
  sourceExpiring,
  subscriptionDeleted,
  subscriptionUpdated,
} from './customers.ts';
import { actionRequired, invoiceChanged, paymentFailed } from './invoices.ts';
import { withoutRowValues } from '../redact.ts';
import type { Logger } from '../log.ts';
import { customerKnown, customerOfEvent, upsertCustomer } from './objects.ts';
import * as store from './store.ts';
import { needsReread, OUR_API_VERSION, versionOf, withObject } from './versions.ts';

export type { ProcessorDeps } from './context.ts';

/** Every event type we act on; anything else is stored and marked `ignored`. */
export const HANDLERS: Readonly<Record<string, EventHandler>> = {
  'invoice.payment_failed': paymentFailed,
  'invoice.payment_action_required': actionRequired,
  'invoice.paid': invoiceChanged,
  'invoice.payment_succeeded': invoiceChanged,
  'invoice.voided': invoiceChanged,
  'invoice.marked_uncollectible': invoiceChanged,
  'invoice.updated': invoiceChanged,
  'charge.failed': chargeFailed,
  'payment_intent.payment_failed': intentFailed,
  'customer.updated': customerUpdated,
  'customer.subscription.created': subscriptionUpdated,
  'customer.subscription.updated': subscriptionUpdated,
  'customer.subscription.deleted': subscriptionDeleted,
  'payment_method.attached': paymentMethodChanged,
  'payment_method.updated': paymentMethodChanged,
  'payment_method.automatically_updated': paymentMethodChanged,
  'customer.source.expiring': sourceExpiring,
};

/**
 * A job of the stripe-events queue: the events one webhook batch stored, in arrival order
 * (`eventId`: one event, as jobs queued by earlier versions carry it).
 */
export interface EventJob {
  eventIds?: string[];
  eventId?: string;
}

export function eventIdsOf(job: EventJob): string[] {
  return job.eventIds ?? (job.eventId ? [job.eventId] : []);
}

export type ProcessResult = Outcome | 'missing' | 'done';

/**
 * Applies one stored event in one transaction: domain updates, hooks and the event's own status
 * commit together. An event already finished is left alone (a job delivered twice).
 */
export async function processEvent(
  sql: Sql,
  deps: ProcessorDeps,
  eventId: string,
  handlers = HANDLERS,
): Promise<ProcessResult> {
  const log = deps.log.child({ eventId });
  if (deps.fetchCustomer) await learnCustomer(sql, deps, eventId, log);
  const current = await atOurVersion(sql, deps, eventId, log);
  if (current?.kind === 'park') {
    await store.recordFailure(sql, eventId, current.reason, true);
    log.error({ eventId }, `event parked: ${current.reason}`);
    return 'done';
  }
  return await sql.begin<ProcessResult>(async (tx) => {
    const ev = await store.eventById(tx, eventId, true);
    if (!ev) return 'missing';
    if (ev.status === 'processed' || ev.status === 'ignored') return 'done';
    const read = current?.kind === 'read' ? current.read : null;
    if (read?.object) ev.payload = withObject(ev.payload, read.object);
    // One customer's events apply one at a time: a charge.failed and the invoice.payment_failed
    // it explains, applied side by side, would each miss the other's uncommitted rows.
    const customerId = customerOfEvent(ev.payload);
    if (customerId) await lockCustomer(tx, customerId);
    const handler = handlers[ev.type];
    const outcome: Outcome = handler
      ? await handler({
          tx,
          event: ev.payload,
          at: ev.created,
          deps,
          log: log.child({ type: ev.type }),
          failedCharges: read?.failedCharges ?? null,
        })
      : 'ignored';
    await store.markDone(tx, eventId, outcome, deps.clock.now());
    log.debug({ type: ev.type, outcome }, 'event applied');
    return outcome;
  });
}

/**
 * Reads a customer we know nothing (or only an invoice's stub) about from Stripe, once, before
 * the event's transaction: no Stripe call holds a transaction open. Without it the customer's
 * locale and time zone stay unknown when their `customer.*` events predate the install. A failed
 * read only loses that; the event still applies.
 */
async function learnCustomer(sql: Sql, deps: ProcessorDeps, eventId: string, log: Logger): Promise<void> {
  const ev = await store.eventById(sql, eventId);
  if (!ev || ev.status === 'processed' || ev.status === 'ignored') return;
  if ((ev.payload.data.object as { object?: string }).object === 'customer') return;
  const customerId = customerOfEvent(ev.payload);
  if (!customerId || (await customerKnown(sql, customerId))) return;
  try {
    const customer = await deps.fetchCustomer!(customerId);
    // Stripe's copy is at least as new as the event: stamped with the event's time, a newer
    // customer.updated still wins over it and an older one does not.
    if (customer) await upsertCustomer(sql, customer, ev.created);
    log.debug({ customerId, found: customer !== null }, 'customer read from Stripe');
  } catch (err) {
    log.warn({ customerId, err }, 'cannot read customer from Stripe; continuing without');
  }
}

type ReadAhead = {
  /** The event's invoice read again at our version, to apply instead of the event's own. */
  object?: Stripe.Invoice;
  /** The invoice's failed charges (see `HandlerContext.failedCharges`); null when not read. */
  failedCharges: readonly Stripe.Charge[] | null;
};
type AtOurVersion = { kind: 'read'; read: ReadAhead } | { kind: 'park'; reason: string } | null;

/**
 * What an event needs from Stripe before it applies, read before the event's transaction (no Stripe
 * call holds one open), through the shared request budget:
 *
 * - An event rendered at another API version than ours, whose object lacks fields we read, is
 *   never read as if it were ours: its invoice is read again at our version. Without a Stripe key,
 *   or when Stripe no longer has the invoice, the event is parked with a reason naming the version,
 *   for `dunning events replay` once the endpoint's version is fixed. A transient Stripe error
 *   throws: the event is tried again later.
 * - An `invoice.payment_failed` lists the invoice's failed charges (one invoice read serves both),
 *   so each is recorded by id. When that read fails the event still applies, matched by time, and
 *   says so in the log: a failure is never held back by a Stripe outage.
 *
 * Null: the event applies as it is.
 */
async function atOurVersion(sql: Sql, deps: ProcessorDeps, eventId: string, log: Logger): Promise<AtOurVersion> {
  const ev = await store.eventById(sql, eventId);
  if (!ev || ev.status === 'processed' || ev.status === 'ignored') return null;
  const version = versionOf(ev.payload.api_version);
  if (version.kind === 'unknown') {
    log.error(
      { eventId, type: ev.type, apiVersion: version.version, ours: OUR_API_VERSION },
      'event at an unknown Stripe API version: its invoice is read again from Stripe; other objects apply as they are',
    );
  }
  const reread = needsReread(ev.payload);
  const wantsCharges = ev.type === 'invoice.payment_failed' && deps.fetchInvoiceCharges !== undefined;
  if (!reread && !wantsCharges) return null;
  const invoiceId = (ev.payload.data.object as { id?: string }).id;
  const rendered = `${ev.type} rendered at Stripe API version ${version.kind === 'ours' ? OUR_API_VERSION : version.version}, not ${OUR_API_VERSION}`;
  if (!invoiceId) return reread ? { kind: 'park', reason: `${rendered}, names no invoice` } : null;
  if (wantsCharges) {
    try {
      const found = await deps.fetchInvoiceCharges!(invoiceId);
      if (!found && reread)
        return { kind: 'park', reason: `${rendered}, and Stripe has no invoice ${invoiceId} any more` };
      if (!found) return { kind: 'read', read: { failedCharges: null } };
      log.debug({ eventId, invoiceId, failedCharges: found.failedCharges.length }, "invoice's failed charges read");
      return {
        kind: 'read',
        read: { failedCharges: found.failedCharges, ...(reread ? { object: found.invoice } : {}) },
      };
    } catch (err) {
      if (reread) throw err;
      log.warn(
        { eventId, invoiceId, err },
        "cannot read the invoice's charges from Stripe: this failure is matched by time; the invoice's next failure event puts its charge ids on the ledger",
      );
      return { kind: 'read', read: { failedCharges: null } };
    }
  }
  if (!deps.fetchInvoice) {
    return { kind: 'park', reason: `${rendered}, and no Stripe key to read invoice ${invoiceId} again at ours` };
  }
  const invoice = await deps.fetchInvoice(invoiceId);
  if (!invoice) return { kind: 'park', reason: `${rendered}, and Stripe has no invoice ${invoiceId} any more` };
  log.debug({ eventId, invoiceId, apiVersion: version }, 'invoice read again at our API version');
  return { kind: 'read', read: { object: invoice, failedCharges: null } };
}

/** An event's handler failed and it has tries left: it must run again, after `tries` failures. */
export class EventRetryDue extends Error {
  readonly eventId: string;
  readonly tries: number;
  constructor(eventId: string, tries: number, maxTries: number, cause: unknown) {
    super(`event ${eventId} failed (try ${tries} of ${maxTries})`, { cause });
    this.name = 'EventRetryDue';
    this.eventId = eventId;
    this.tries = tries;
  }
}

/**
 * Runs `processEvent`, counting a failed try on the event row (outside the rolled-back transaction).
 * On the last allowed try the event is parked as `failed`; earlier failures throw `EventRetryDue`.
 * Anything else thrown (the database away while counting) is the run's failure, not the event's.
 */
/** SQLSTATEs whose transaction succeeds when simply run again: deadlock_detected, serialization_failure. */
const TRANSIENT_SQLSTATES = new Set(['40P01', '40001']);

export async function processWithTries(
  sql: Sql,
  deps: ProcessorDeps,
  eventId: string,
  maxTries: number,
  handlers = HANDLERS,
): Promise<ProcessResult> {
  try {
    return await processEvent(sql, deps, eventId, handlers);
  } catch (err) {
    // Postgres's detail names the failing column; its row values (names, emails) are left out.
    const detail = (err as { detail?: unknown } | null)?.detail;
    const message =
      (err instanceof Error ? err.message : String(err)) +
      (typeof detail === 'string' && detail ? `: ${withoutRowValues(detail)}` : '');
    const current = await store.eventById(sql, eventId);
    const parked = err instanceof EventUnprocessable || (current?.tries ?? 0) + 1 >= maxTries;
    const tries = await store.recordFailure(sql, eventId, message, parked);
    // A deadlock or serialization failure is Postgres asking for the transaction again, which the
    // retry does: a warning, unless it is the last try. Everything else is an error to look at.
    const transient = !parked && TRANSIENT_SQLSTATES.has(String((err as { code?: unknown } | null)?.code));
    (transient ? deps.log.warn : deps.log.error).call(
      deps.log,
      { eventId, type: current?.type, tries, parked, err },
      parked ? 'event parked as failed' : 'event failed; will retry',
    );
    if (parked) return 'done';
    throw new EventRetryDue(eventId, tries, maxTries, err);
  }
}

export interface EventWorkerOptions {
  maxTries: number;
  concurrency: number;
  handlers?: Readonly<Record<string, EventHandler>>;
  batchSize?: number;
  /** Wait before an event's second try, doubled per try up to 5 minutes (default 2 s; 0 for tests). */
  retryDelaySeconds?: number;
}

/** Seconds before the next try of an event that failed `tries` times. */
export function eventRetryDelay(tries: number, firstSeconds: number): number {
  return Math.min(300, firstSeconds * 2 ** Math.max(0, tries - 1));
}

/** Jobs fetched per poll by each loop; a full batch fetches again at once (burst). */
export const EVENT_BATCH_SIZE = 20;

/** Events of the fetched jobs applied side by side by one loop. */
const EVENTS_AT_ONCE = 16;

/**
 * Subscribes the processor to the stripe-events queue; returns the worker id for `boss.offWork`.
 * Each loop applies the events of a batch of jobs side by side (one customer's events still apply
 * one at a time, under their lock). A job completes once each of its events is applied, parked, or
 * handed on: the events that failed with tries left go into a new job of their own, delayed by
 * their backoff, so every event gets its EVENT_MAX_TRIES whatever its batch neighbours do. A job
 * fails (and the queue runs it again, skipping what was applied) only when the run itself broke,
 * e.g. the database went away. While batches come back full the loop fetches without waiting: a
 * backlog drains at database speed rather than at one poll per half-second.
 */
export async function startEventWorker(
  boss: PgBoss,
  sql: Sql,
  deps: ProcessorDeps,
  opts: EventWorkerOptions,
): Promise<string> {
  const firstDelay = opts.retryDelaySeconds ?? 2;
  return boss.work<EventJob>(
    QUEUES.stripeEvents,
    {
      batchSize: opts.batchSize ?? EVENT_BATCH_SIZE,
      localConcurrency: opts.concurrency,
      pollingIntervalSeconds: 0.5,
      burstWhenBatchFull: true,
      perJobResults: true,
    },
    async (jobs) => {
      const work = jobs.flatMap((job) => eventIdsOf(job.data).map((eventId) => ({ job: job.id, eventId })));
      const retries = new Map<string, EventRetryDue[]>();
      const broken = new Map<string, string>();
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < work.length; i = next++) {
          const { job, eventId } = work[i]!;
          try {
            await processWithTries(sql, deps, eventId, opts.maxTries, opts.handlers);
          } catch (err) {
            if (err instanceof EventRetryDue) retries.set(job, [...(retries.get(job) ?? []), err]);
            else broken.set(job, err instanceof Error ? err.message : String(err));
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(EVENTS_AT_ONCE, work.length) }, lane));
      return Promise.all(
        jobs.map(async (job): Promise<JobResult> => {
          const failure = broken.get(job.id);
          if (failure !== undefined) return { id: job.id, status: 'failed', output: { message: failure } };
          const due = retries.get(job.id);
          if (due) {
            try {
              const tries = Math.max(...due.map((r) => r.tries));
              await boss.send(QUEUES.stripeEvents, { eventIds: due.map((r) => r.eventId) } satisfies EventJob, {
                startAfter: eventRetryDelay(tries, firstDelay),
              });
            } catch (err) {
              return {
                id: job.id,
                status: 'failed',
                output: { message: `cannot queue the retry: ${err instanceof Error ? err.message : String(err)}` },
              };
            }
          }
          return { id: job.id, status: 'completed' };
        }),
      );
    },
  );
}

/**
 * Every `everyMs`, parks events whose job is gone (see `parkOrphans`) and logs each as an error for
 * ops. Every worker process may run it: the update is idempotent. Returns the stop function.
 */
export function startOrphanSweep(
  sql: Sql,
  log: Logger,
  opts: { everyMs: number; graceSeconds: number },
): () => Promise<void> {
  let running: Promise<void> | null = null;
  const sweep = async () => {
    try {
      for (const eventId of await store.parkOrphans(sql, opts.graceSeconds)) {
        log.error({ eventId }, 'event parked as failed: its job ended without applying it');
      }
    } catch (err) {
      log.warn({ err }, 'orphaned-event sweep failed; next sweep will try again');
    }
  };
  // A sweep still running (a slow database) is not joined by another one.
  const timer = setInterval(() => {
    running ??= sweep().finally(() => {
      running = null;
    });
  }, opts.everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

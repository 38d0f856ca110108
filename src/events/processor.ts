import type { JobResult, PgBoss } from 'pg-boss';
import type { Sql } from '../db.ts';
import { QUEUES } from '../queue.ts';
import { chargeFailed, intentFailed } from './charges.ts';
import type { EventHandler, Outcome, ProcessorDeps } from './context.ts';
import { customerUpdated, paymentMethodChanged, sourceExpiring, subscriptionDeleted, subscriptionUpdated } from './customers.ts';
import { actionRequired, invoiceChanged, paymentFailed } from './invoices.ts';
import type { Logger } from '../log.ts';
import { customerKnown, customerOfEvent, upsertCustomer } from './objects.ts';
import * as store from './store.ts';

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
export async function processEvent(sql: Sql, deps: ProcessorDeps, eventId: string, handlers = HANDLERS): Promise<ProcessResult> {
  const log = deps.log.child({ eventId });
  if (deps.fetchCustomer) await learnCustomer(sql, deps, eventId, log);
  return (await sql.begin(async (tx) => {
    const ev = await store.eventById(tx, eventId, true);
    if (!ev) return 'missing';
    if (ev.status === 'processed' || ev.status === 'ignored') return 'done';
    // One customer's events apply one at a time: a charge.failed and the invoice.payment_failed
    // it explains, applied side by side, would each miss the other's uncommitted rows.
    const customerId = customerOfEvent(ev.payload);
    if (customerId) await tx`select pg_advisory_xact_lock(hashtextextended(${`customer:${customerId}`}, 0))`;
    const handler = handlers[ev.type];
    const outcome: Outcome = handler
      ? await handler({ tx, event: ev.payload, at: ev.created, deps, log: log.child({ type: ev.type }) })
      : 'ignored';
    await store.markDone(tx, eventId, outcome, deps.clock.now());
    log.debug({ type: ev.type, outcome }, 'event applied');
    return outcome;
  })) as ProcessResult;
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

/**
 * Runs `processEvent`, counting a failed try on the event row (outside the rolled-back transaction).
 * On the last allowed try the event is parked as `failed`; earlier failures rethrow so pg-boss
 * retries with backoff.
 */
export async function processWithTries(sql: Sql, deps: ProcessorDeps, eventId: string, maxTries: number, handlers = HANDLERS): Promise<ProcessResult> {
  try {
    return await processEvent(sql, deps, eventId, handlers);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const current = await store.eventById(sql, eventId);
    const parked = (current?.tries ?? 0) + 1 >= maxTries;
    const tries = await store.recordFailure(sql, eventId, message, parked);
    deps.log.error({ eventId, type: current?.type, tries, parked, err }, parked ? 'event parked as failed' : 'event failed; will retry');
    if (parked) return 'done';
    throw new Error(`event ${eventId} failed (try ${tries} of ${maxTries})`, { cause: err });
  }
}

export interface EventWorkerOptions {
  maxTries: number;
  concurrency: number;
  handlers?: Readonly<Record<string, EventHandler>>;
  batchSize?: number;
}

/** Jobs fetched per poll by each loop; a full batch fetches again at once (burst). */
export const EVENT_BATCH_SIZE = 20;

/** Events of the fetched jobs applied side by side by one loop. */
const EVENTS_AT_ONCE = 16;

/**
 * Subscribes the processor to the stripe-events queue; returns the worker id for `boss.offWork`.
 * Each loop applies the events of a batch of jobs side by side (one customer's events still apply
 * one at a time, under their lock) and settles every job on its own: a job completes when all its
 * events are applied or parked, and otherwise fails so the queue retries it with backoff, when
 * the events already applied are skipped. While batches come back full the loop fetches without
 * waiting: a backlog drains at database speed rather than at one poll per half-second.
 */
export async function startEventWorker(boss: PgBoss, sql: Sql, deps: ProcessorDeps, opts: EventWorkerOptions): Promise<string> {
  return boss.work<EventJob>(
    QUEUES.stripeEvents,
    { batchSize: opts.batchSize ?? EVENT_BATCH_SIZE, localConcurrency: opts.concurrency, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true, perJobResults: true },
    async (jobs) => {
      const work = jobs.flatMap((job) => eventIdsOf(job.data).map((eventId) => ({ job: job.id, eventId })));
      const failures = new Map<string, string[]>();
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < work.length; i = next++) {
          const { job, eventId } = work[i]!;
          try {
            await processWithTries(sql, deps, eventId, opts.maxTries, opts.handlers);
          } catch (err) {
            // processWithTries counted and logged the try; the queue retries this job with backoff.
            failures.set(job, [...(failures.get(job) ?? []), err instanceof Error ? err.message : String(err)]);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(EVENTS_AT_ONCE, work.length) }, lane));
      return jobs.map((job): JobResult => {
        const failed = failures.get(job.id);
        return failed ? { id: job.id, status: 'failed', output: { message: failed.join('; ') } } : { id: job.id, status: 'completed' };
      });
    },
  );
}

/**
 * Every `everyMs`, parks events whose job is gone (see `parkOrphans`) and logs each as an error for
 * ops. Every worker process may run it: the update is idempotent. Returns the stop function.
 */
export function startOrphanSweep(sql: Sql, log: Logger, opts: { everyMs: number; graceSeconds: number }): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const sweep = async () => {
    try {
      for (const eventId of await store.parkOrphans(sql, opts.graceSeconds)) {
        log.error({ eventId }, 'event parked as failed: its job ended without applying it');
      }
    } catch (err) {
      log.warn({ err }, 'orphaned-event sweep failed; next sweep will try again');
    }
  };
  const timer = setInterval(() => { running = sweep(); }, opts.everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

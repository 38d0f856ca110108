import type { PgBoss } from 'pg-boss';
import type { Sql } from '../db.ts';
import { QUEUES } from '../queue.ts';
import { chargeFailed, intentFailed } from './charges.ts';
import type { EventHandler, Outcome, ProcessorDeps } from './context.ts';
import { customerUpdated, paymentMethodChanged, sourceExpiring, subscriptionDeleted, subscriptionUpdated } from './customers.ts';
import { actionRequired, invoiceChanged, paymentFailed } from './invoices.ts';
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
  'customer.subscription.updated': subscriptionUpdated,
  'customer.subscription.deleted': subscriptionDeleted,
  'payment_method.attached': paymentMethodChanged,
  'payment_method.automatically_updated': paymentMethodChanged,
  'customer.source.expiring': sourceExpiring,
};

export interface EventJob {
  eventId: string;
}

export type ProcessResult = Outcome | 'missing' | 'done';

/**
 * Applies one stored event in one transaction: domain updates, hooks and the event's own status
 * commit together. An event already finished is left alone (a job delivered twice).
 */
export async function processEvent(sql: Sql, deps: ProcessorDeps, eventId: string, handlers = HANDLERS): Promise<ProcessResult> {
  const log = deps.log.child({ eventId });
  return (await sql.begin(async (tx) => {
    const ev = await store.eventById(tx, eventId, true);
    if (!ev) return 'missing';
    if (ev.status === 'processed' || ev.status === 'ignored') return 'done';
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
}

/** Subscribes the processor to the stripe-events queue; returns the worker id for `boss.offWork`. */
export async function startEventWorker(boss: PgBoss, sql: Sql, deps: ProcessorDeps, opts: EventWorkerOptions): Promise<string> {
  return boss.work<EventJob>(
    QUEUES.stripeEvents,
    { batchSize: 1, localConcurrency: opts.concurrency, pollingIntervalSeconds: 0.5 },
    async ([job]) => {
      if (!job) return;
      await processWithTries(sql, deps, job.data.eventId, opts.maxTries, opts.handlers);
    },
  );
}

import { PgBoss } from 'pg-boss';
import type { Db as IDatabase } from 'pg-boss';
import type { Tx } from './db.ts';
import type { Logger } from './log.ts';

/** Every queue the worker uses; all are created at start, because pg-boss may drop jobs sent to an unknown queue. */
export const QUEUES = {
  stripeEvents: 'stripe-events',
  attempts: 'dunning-attempts',
  deadlines: 'dunning-deadlines',
  reminders: 'reminders-send',
  opsAlerts: 'ops-alerts',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export interface QueueOptions {
  /** Tries of a stripe event before it is parked as failed. */
  eventMaxTries: number;
  /**
   * First wait before an event's retry, doubled per try up to 5 minutes (default 2 s). 0 retries at
   * once without backoff: for tests, which must not wait minutes for a parked event.
   */
  eventRetryDelaySeconds?: number;
}

export async function startQueue(url: string, log: Logger, options: QueueOptions): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: url, schema: 'pgboss', max: 5, application_name: 'dunning-queue' });
  boss.on('error', (err: Error) => log.error({ err }, 'job queue error'));
  await boss.start();
  await ensureQueues(boss, options);
  return boss;
}

/** Delivery tries of one ops alert (the first and pg-boss's retries, about a day with backoff). */
export const OPS_ALERT_TRIES = 11;

/** A queue's retry settings; `retryDelayMax` null means no cap. */
export interface RetrySettings {
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  retryDelayMax: number | null;
}

/** The retry settings each queue must have, from the configuration. */
export function queueSettings(options: QueueOptions): Array<[QueueName, RetrySettings]> {
  const eventDelay = options.eventRetryDelaySeconds ?? 2;
  return [
    [QUEUES.stripeEvents, {
      retryLimit: options.eventMaxTries - 1, retryDelay: eventDelay, retryBackoff: eventDelay > 0, retryDelayMax: eventDelay > 0 ? 300 : null,
    }],
    [QUEUES.attempts, { retryLimit: 10, retryDelay: 5, retryBackoff: true, retryDelayMax: 600 }],
    [QUEUES.deadlines, { retryLimit: 10, retryDelay: 5, retryBackoff: true, retryDelayMax: 600 }],
    [QUEUES.reminders, { retryLimit: 10, retryDelay: 30, retryBackoff: true, retryDelayMax: 3600 }],
    [QUEUES.opsAlerts, { retryLimit: OPS_ALERT_TRIES - 1, retryDelay: 10, retryBackoff: true, retryDelayMax: 3600 }],
  ];
}

/**
 * Creates missing queues and brings existing ones to the configured retry settings. pg-boss copies
 * a queue's retryLimit into each job it sends, so a queue left at an old EVENT_MAX_TRIES would fail
 * jobs before the processor's last try: the event would never be parked and stay pending. Processes
 * started with different settings each apply their own; the last one to start wins.
 */
export async function ensureQueues(boss: PgBoss, options: QueueOptions): Promise<void> {
  const existing = new Map((await boss.getQueues()).map((q) => [q.name, q]));
  for (const [name, wanted] of queueSettings(options)) {
    let current = existing.get(name) ?? null;
    if (!current) {
      try {
        await boss.createQueue(name, { ...wanted, retryDelayMax: wanted.retryDelayMax ?? undefined });
        continue;
      } catch (err) {
        // Another process created it between our check and our call: compare with what it made.
        current = await boss.getQueue(name);
        if (!current) throw err;
      }
    }
    if (!sameRetry(current, wanted)) await boss.updateQueue(name, wanted);
  }
}

function sameRetry(q: Partial<RetrySettings>, wanted: RetrySettings): boolean {
  return q.retryLimit === wanted.retryLimit && q.retryDelay === wanted.retryDelay
    && q.retryBackoff === wanted.retryBackoff && (q.retryDelayMax ?? null) === wanted.retryDelayMax;
}

/**
 * Lets pg-boss write its job row inside one of our transactions, so an event and the job that
 * processes it commit together or not at all.
 */
export function jobDb(tx: Tx): IDatabase {
  return {
    executeSql: async (text: string, values: unknown[] = []) => {
      const rows = await tx.unsafe(text, values.map((v) => (v === undefined ? null : v)) as never[]);
      return { rows: [...rows] };
    },
  };
}

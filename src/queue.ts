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
  cardExpiryScan: 'card-expiry-scan',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export async function startQueue(url: string, log: Logger): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: url, schema: 'pgboss', max: 5, application_name: 'dunning-queue' });
  boss.on('error', (err: Error) => log.error({ err }, 'job queue error'));
  await boss.start();
  await ensureQueues(boss);
  return boss;
}

/** Delivery tries of one ops alert (the first and pg-boss's retries, about a day with backoff). */
export const OPS_ALERT_TRIES = 11;

/** A queue's retry settings. */
export interface RetrySettings {
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  retryDelayMax: number;
}

/**
 * The retry settings each queue must have. For stripe-events they cover only a run that died (a
 * crash, an expired job, the database away): an event's own tries (EVENT_MAX_TRIES) are counted on
 * its row, and the processor sends a new job for the events that failed (src/events/processor.ts),
 * so no setting here depends on the configuration, and every process agrees on them.
 */
export function queueSettings(): Array<[QueueName, RetrySettings]> {
  return [
    [QUEUES.stripeEvents, { retryLimit: 10, retryDelay: 2, retryBackoff: true, retryDelayMax: 300 }],
    [QUEUES.attempts, { retryLimit: 10, retryDelay: 5, retryBackoff: true, retryDelayMax: 600 }],
    [QUEUES.deadlines, { retryLimit: 10, retryDelay: 5, retryBackoff: true, retryDelayMax: 600 }],
    [QUEUES.reminders, { retryLimit: 10, retryDelay: 30, retryBackoff: true, retryDelayMax: 3600 }],
    [QUEUES.opsAlerts, { retryLimit: OPS_ALERT_TRIES - 1, retryDelay: 10, retryBackoff: true, retryDelayMax: 3600 }],
    // A failed daily scan tries again within the day; the next day's scan covers anything left.
    [QUEUES.cardExpiryScan, { retryLimit: 5, retryDelay: 300, retryBackoff: true, retryDelayMax: 3600 }],
  ];
}

/**
 * Creates missing queues and brings existing ones to the settings above (pg-boss copies a queue's
 * settings into each job it sends, so a queue created by an older version keeps old ones otherwise).
 */
export async function ensureQueues(boss: PgBoss): Promise<void> {
  const existing = new Map((await boss.getQueues()).map((q) => [q.name, q]));
  for (const [name, wanted] of queueSettings()) {
    let current = existing.get(name) ?? null;
    if (!current) {
      try {
        await boss.createQueue(name, wanted);
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
  return (
    q.retryLimit === wanted.retryLimit &&
    q.retryDelay === wanted.retryDelay &&
    q.retryBackoff === wanted.retryBackoff &&
    q.retryDelayMax === wanted.retryDelayMax
  );
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

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

export async function ensureQueues(boss: PgBoss, options: QueueOptions): Promise<void> {
  const existing = new Set((await boss.getQueues()).map((q) => q.name));
  const wanted: Array<[QueueName, Parameters<PgBoss['createQueue']>[1]]> = [
    [QUEUES.stripeEvents, { retryLimit: options.eventMaxTries - 1, retryDelay: 2, retryBackoff: true, retryDelayMax: 300 }],
    [QUEUES.attempts, { retryLimit: 10, retryDelay: 5, retryBackoff: true, retryDelayMax: 600 }],
    [QUEUES.deadlines, { retryLimit: 10, retryDelay: 5, retryBackoff: true, retryDelayMax: 600 }],
    [QUEUES.reminders, { retryLimit: 10, retryDelay: 30, retryBackoff: true, retryDelayMax: 3600 }],
    [QUEUES.opsAlerts, { retryLimit: OPS_ALERT_TRIES - 1, retryDelay: 10, retryBackoff: true, retryDelayMax: 3600 }],
  ];
  for (const [name, opts] of wanted) {
    if (!existing.has(name)) {
      try {
        await boss.createQueue(name, opts);
      } catch (err) {
        // Another process created it between our check and our call.
        if (!(await boss.getQueue(name))) throw err;
      }
    }
  }
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

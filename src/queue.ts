import { PgBoss } from 'pg-boss';
import type { Db as IDatabase } from 'pg-boss';
import { reachable, type Tx } from './db.ts';
import type { Logger } from './log.ts';
import { databaseOutageReporter } from './unavailable.ts';

/** Every queue the worker uses; all are created at start, because pg-boss may drop jobs sent to an unknown queue. */
export const QUEUES = {
  stripeEvents: 'stripe-events',
  attempts: 'dunning-attempts',
  deadlines: 'dunning-deadlines',
  reminders: 'reminders-send',
  opsAlerts: 'ops-alerts',
  cardExpiryScan: 'card-expiry-scan',
  adaptiveRefresh: 'adaptive-refresh',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/**
 * How often pg-boss looks for jobs whose worker stopped beating (and other upkeep); with
 * JOB_HEARTBEAT_SECONDS it bounds how long a killed worker's jobs stay `active` (pg-boss's own
 * default is a minute, and without a heartbeat such a job waited for its 15-minute expiry).
 */
export const SUPERVISE_SECONDS = 10;
/** A running job's worker refreshes it every half of this; a job not refreshed for this long is retried. pg-boss's minimum. */
export const JOB_HEARTBEAT_SECONDS = 10;

export async function startQueue(url: string, log: Logger): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: url,
    schema: 'pgboss',
    max: 5,
    application_name: 'dunning-queue',
    superviseIntervalSeconds: SUPERVISE_SECONDS,
    monitorIntervalSeconds: SUPERVISE_SECONDS,
  });
  // The database away is one warning naming DATABASE_URL and one line when it is back, not a
  // line with a stack from every poller every half second; anything else is an error.
  const outage = databaseOutageReporter({ url, log, probe: () => reachable(url) });
  boss.on('error', (err: Error) => {
    if (!outage.report(err)) log.error({ err }, 'job queue error');
  });
  boss.on('stopped', () => outage.close());
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
  heartbeatSeconds: number;
}

/**
 * The retry settings each queue must have. For stripe-events they cover only a run that died (a
 * crash, an expired job, the database away): an event's own tries (EVENT_MAX_TRIES) are counted on
 * its row, and the processor sends a new job for the events that failed (src/events/processor.ts),
 * so no setting here depends on the configuration, and every process agrees on them. Every queue
 * has a heartbeat: a job whose process died (SIGKILL, OOM) or lost the database while settling it is
 * retried within about JOB_HEARTBEAT_SECONDS + SUPERVISE_SECONDS, not after pg-boss's 15-minute expiry.
 */
export function queueSettings(): Array<[QueueName, RetrySettings]> {
  return [
    [
      QUEUES.stripeEvents,
      {
        retryLimit: 10,
        retryDelay: 2,
        retryBackoff: true,
        retryDelayMax: 300,
        heartbeatSeconds: JOB_HEARTBEAT_SECONDS,
      },
    ],
    [
      QUEUES.attempts,
      {
        retryLimit: 10,
        retryDelay: 5,
        retryBackoff: true,
        retryDelayMax: 600,
        heartbeatSeconds: JOB_HEARTBEAT_SECONDS,
      },
    ],
    [
      QUEUES.deadlines,
      {
        retryLimit: 10,
        retryDelay: 5,
        retryBackoff: true,
        retryDelayMax: 600,
        heartbeatSeconds: JOB_HEARTBEAT_SECONDS,
      },
    ],
    [
      QUEUES.reminders,
      {
        retryLimit: 10,
        retryDelay: 30,
        retryBackoff: true,
        retryDelayMax: 3600,
        heartbeatSeconds: JOB_HEARTBEAT_SECONDS,
      },
    ],
    [
      QUEUES.opsAlerts,
      {
        retryLimit: OPS_ALERT_TRIES - 1,
        retryDelay: 10,
        retryBackoff: true,
        retryDelayMax: 3600,
        heartbeatSeconds: JOB_HEARTBEAT_SECONDS,
      },
    ],
    // A failed daily scan tries again within the day; the next day's scan covers anything left.
    [
      QUEUES.cardExpiryScan,
      {
        retryLimit: 5,
        retryDelay: 300,
        retryBackoff: true,
        retryDelayMax: 3600,
        heartbeatSeconds: JOB_HEARTBEAT_SECONDS,
      },
    ],
    // A failed refresh tries again within the hour; until then plans use the previous snapshot.
    [
      QUEUES.adaptiveRefresh,
      {
        retryLimit: 5,
        retryDelay: 300,
        retryBackoff: true,
        retryDelayMax: 3600,
        heartbeatSeconds: JOB_HEARTBEAT_SECONDS,
      },
    ],
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
    q.retryDelayMax === wanted.retryDelayMax &&
    q.heartbeatSeconds === wanted.heartbeatSeconds
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

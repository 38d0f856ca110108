/** The pg-boss worker that delivers recorded ops alerts to OPS_WEBHOOK_URL. */
import type { PgBoss } from 'pg-boss';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import { OPS_ALERT_TRIES, QUEUES } from '../queue.ts';
import { SIGNATURE_HEADER, signAlert } from './ops-alerts.ts';

export interface OpsAlerterDeps {
  sql: Sql;
  boss: PgBoss;
  clock: Clock;
  log: Logger;
  config: Pick<Config, 'opsWebhookUrl' | 'opsWebhookSecret'>;
  fetch?: typeof fetch;
  /**
   * Real time, for the signature's timestamp: receivers compare it with their own clock, which
   * does not run on the worker's (possibly scaled) domain clock. Defaults to the system clock.
   */
  wallClock?: () => Date;
  /** Tries before an alert is given up as `failed` (default OPS_ALERT_TRIES, the queue's retry limit + 1). */
  maxTries?: number;
  pollingIntervalSeconds?: number;
}

/** Starts the worker; the returned function stops it. */
export async function startOpsAlerter(deps: OpsAlerterDeps): Promise<() => Promise<void>> {
  const { sql, boss, clock, config } = deps;
  const log = deps.log.child({ component: 'ops-alerts' });
  const doFetch = deps.fetch ?? fetch;
  const maxTries = deps.maxTries ?? OPS_ALERT_TRIES;
  const wallClock = deps.wallClock ?? (() => new Date());
  await boss.work<{ alertId: number }>(
    QUEUES.opsAlerts,
    { pollingIntervalSeconds: deps.pollingIntervalSeconds ?? 2 },
    async (jobs) => {
      for (const job of jobs) {
        const alertId = job.data.alertId;
        const [alert] = await sql<{ status: string; payload: unknown }[]>`
          select status, payload from ops_alerts where id = ${alertId}`;
        if (!alert || alert.status !== 'pending') continue;
        if (!config.opsWebhookUrl || !config.opsWebhookSecret) {
          await sql`update ops_alerts set status = 'skipped' where id = ${alertId} and status = 'pending'`;
          continue;
        }
        const body = JSON.stringify(alert.payload);
        try {
          const res = await doFetch(config.opsWebhookUrl, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              [SIGNATURE_HEADER]: signAlert(config.opsWebhookSecret, body, wallClock()),
            },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          if (!res.ok) throw new Error(`ops webhook answered ${res.status}`);
        } catch (err) {
          const message = (err as Error).message;
          // The last try gives up visibly: `failed` in ops_alerts, an error log, not a row pending forever.
          const [row] = await sql<{ tries: number }[]>`
            update ops_alerts set tries = tries + 1, last_error = ${message},
                   status = case when tries + 1 >= ${maxTries} then 'failed' else status end
             where id = ${alertId} returning tries`;
          if ((row?.tries ?? 0) >= maxTries) {
            log.error({ alertId, tries: row?.tries, err: message }, 'ops alert not delivered; giving up');
            continue;
          }
          log.warn({ alertId, err: message }, 'ops alert delivery failed; will retry');
          // pg-boss retries the job with the queue's backoff.
          throw new Error(`ops alert ${alertId} not delivered`, { cause: err });
        }
        await sql`
          update ops_alerts set status = 'sent', sent_at = ${clock.now()}, tries = tries + 1, last_error = null
          where id = ${alertId}`;
        log.info({ alertId }, 'ops alert sent');
      }
    },
  );
  return () => boss.offWork(QUEUES.opsAlerts);
}

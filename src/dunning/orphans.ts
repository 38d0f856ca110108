import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import { ACTIVE_STATUSES } from '../ledger.ts';
import { QUEUES } from '../queue.ts';
import { sendAttemptJob, type SchedulerDeps } from './scheduler.ts';

/**
 * Attempts whose pg-boss job is gone (a job deleted or cancelled by hand, a queue purged, a job
 * that ran out of tries while its worker kept dying): without a job nothing ever runs them, and an
 * active attempt blocks every other charge of its invoice for ever. The sweep sends each a new job,
 * due at its planned time (now, if that passed); the claim's guards make a duplicate job harmless.
 * An attempt parked for ops ("needs ops", left unknown without a job on purpose) is not touched,
 * nor one a live worker holds.
 */
export async function resendOrphanedAttempts(
  sql: Sql,
  deps: Pick<SchedulerDeps, 'boss' | 'clock'>,
  graceSeconds: number,
  limit = 500,
): Promise<Array<{ attemptId: number; invoiceId: string }>> {
  const rows = await sql`
    select a.id, a.invoice_id, a.planned_at from payment_attempts a
     where a.status = any(${ACTIVE_STATUSES})
       and a.created_at < now() - make_interval(secs => ${graceSeconds})
       and not (a.status = 'in_flight' and a.lease_until > clock_timestamp())
       and not (a.status = 'unknown' and a.lease_until is null and coalesce(a.failure_message, '') like 'needs ops%')
       and not exists (
         select 1 from pgboss.job j
          where j.name = ${QUEUES.attempts} and j.state < 'completed'
            and (j.id = a.job_id or j.data->>'attemptId' = a.id::text))
     order by a.id
     limit ${limit}`;
  const out: Array<{ attemptId: number; invoiceId: string }> = [];
  for (const r of rows) {
    const attemptId = Number(r.id);
    const invoiceId = r.invoice_id as string;
    const planned = (r.planned_at as Date | null) ?? deps.clock.now();
    const at = planned > deps.clock.now() ? planned : deps.clock.now();
    await sql.begin((tx) => sendAttemptJob(tx, deps, attemptId, invoiceId, at));
    out.push({ attemptId, invoiceId });
  }
  return out;
}

/** Runs `resendOrphanedAttempts` every `everyMs`; every worker process may run it. Returns the stop function. */
export function startAttemptOrphanSweep(
  sql: Sql,
  deps: Pick<SchedulerDeps, 'boss' | 'clock'>,
  log: Logger,
  opts: { everyMs: number; graceSeconds: number },
): () => Promise<void> {
  let running: Promise<void> | null = null;
  const sweep = async () => {
    try {
      for (const o of await resendOrphanedAttempts(sql, deps, opts.graceSeconds)) {
        log.error(o, 'attempt had no live job: a new one was sent');
      }
    } catch (err) {
      log.warn({ err }, 'orphaned-attempt sweep failed; next sweep will try again');
    }
  };
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

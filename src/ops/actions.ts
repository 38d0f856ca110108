import type { Clock } from '../clock.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import { OpsError, pause, resume, retryNow, type PauseHooks } from '../dunning/ops-actions.ts';
import type { SchedulerDeps } from '../dunning/scheduler.ts';
import * as store from '../dunning/store.ts';
import { recordAudit, type OpsAction, type Outcome } from './audit.ts';
import { when } from './page.ts';

/** What /ops needs to act: the scheduler and reminder hooks the CLI's ops commands use (openOps). */
export interface ActionDeps {
  sql: Sql;
  clock: Clock;
  log: Logger;
  scheduler: SchedulerDeps;
  hooks: PauseHooks;
}

export interface ActionResult {
  auditId: number;
  outcome: Outcome;
  detail: string;
}

/**
 * Runs one operator action through the same functions as `dunning retry-now --queue`, `pause` and
 * `resume`, so the same rules refuse the same things; then records it. A done action and its audit
 * row commit together; a refused or failed one is rolled back and then recorded with the reason.
 * Web actions only ever touch the one invoice's case (never every case of a customer), and a manual
 * retry is planned for the workers to charge: the web role holds no Stripe key of its own.
 */
export async function performAction(
  deps: ActionDeps,
  actor: string,
  action: OpsAction,
  invoiceId: string,
): Promise<ActionResult> {
  const at = deps.clock.now();
  const caseId = (await store.caseByInvoice(deps.sql, invoiceId))?.id ?? null;
  const base = { at, actor, action, invoiceId, caseId };
  try {
    return await deps.sql.begin(async (tx) => {
      const detail = await run(tx, deps, action, invoiceId);
      const auditId = await recordAudit(tx, { ...base, outcome: 'done', detail });
      return { auditId, outcome: 'done' as const, detail };
    });
  } catch (err) {
    const refused = err instanceof OpsError;
    const detail = refused ? err.message : 'the action failed on an internal error; see the server log';
    if (!refused) deps.log.error({ err, action, invoiceId, actor }, 'ops action failed');
    const outcome: Outcome = refused ? 'refused' : 'failed';
    const auditId = await recordAudit(deps.sql, { ...base, outcome, detail });
    return { auditId, outcome, detail };
  }
}

async function run(
  tx: Parameters<Parameters<Sql['begin']>[1]>[0],
  deps: ActionDeps,
  action: OpsAction,
  invoiceId: string,
) {
  switch (action) {
    case 'retry-now': {
      const a = await retryNow(tx, deps.scheduler, invoiceId, { hooks: deps.hooks });
      return `manual attempt #${a.attemptNo} planned for ${when(a.plannedAt)}; the workers charge it`;
    }
    case 'pause':
      await pause(tx, deps.scheduler, invoiceId, deps.hooks);
      return 'paused: planned attempts cancelled, pending emails held';
    case 'resume': {
      const [r] = await resume(tx, deps.scheduler, invoiceId, deps.hooks);
      const result = r?.result;
      if (!result) return 'resumed';
      if (result.kind === 'planned')
        return `resumed; next attempt ${when(result.attempt.plannedAt)}: ${result.attempt.planReason ?? ''}`;
      if (result.kind === 'unchanged') return `resumed; no new attempt: ${result.why}`;
      return `resumed; ${result.kind}: ${'reason' in result.plan ? result.plan.reason : ''}`;
    }
  }
}

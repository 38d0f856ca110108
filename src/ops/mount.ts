import type { PgBoss } from 'pg-boss';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import type { Policy } from '../dunning/policy.ts';
import type { Logger } from '../log.ts';
import { loadTemplates } from '../reminders/templates.ts';
import { wireHooks } from '../worker.ts';
import { opsRoutes, type Handler } from './routes.ts';

/**
 * The ops pages as `dunning start` mounts them: acting wired to the same scheduler and reminder
 * hooks as the workers and the CLI (openOps), and only when OPS_TOKENS names someone who may act.
 */
export function opsRoutesFor(deps: {
  sql: Sql;
  boss: PgBoss;
  clock: Clock;
  log: Logger;
  config: Config;
  policy: Policy;
}): Record<string, Handler> {
  const { config } = deps;
  const wiring = config.opsTokens.length > 0 ? wireHooks(deps) : null;
  let templates = null;
  try {
    templates = loadTemplates(config.templatesDir);
  } catch (err) {
    // Workers refuse to start on broken templates; the pages only lose their email previews.
    deps.log.warn({ err }, 'email previews off on /ops: the templates do not load');
  }
  return opsRoutes({
    sql: deps.sql,
    clock: deps.clock,
    log: deps.log.child({ component: 'ops' }),
    config,
    templates,
    actions: wiring ? { scheduler: wiring.scheduler, hooks: wiring.reminders } : null,
  });
}

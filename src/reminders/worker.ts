/**
 * Everything the reminders need at `dunning start`, in one call: templates checked (a broken one
 * stops the start with a clear error), the transport chosen and announced, the mailer and the ops
 * alerter running. Returns one stop function.
 */
import type { PgBoss } from 'pg-boss';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import type { StripeGateway } from '../stripe/charge.ts';
import { updateCardLinks } from './links.ts';
import { backoffOf, startMailer } from './mailer.ts';
import { startOpsAlerter } from './ops-alerter.ts';
import { defaultReminderPolicy, type ReminderPolicy } from './policy.ts';
import { loadTemplates } from './templates.ts';
import { createMailTransport, type MailTransport } from './transport.ts';

export interface ReminderWorkerDeps {
  sql: Sql;
  boss: PgBoss;
  clock: Clock;
  log: Logger;
  config: Config;
  /**
   * For Billing Portal links made at send time when an invoice has no hosted page and PUBLIC_URL is
   * unset; omit to rely on hosted pages only. The process's shared gateway, so portal calls share
   * the throttle with every other Stripe call.
   */
  gateway?: StripeGateway;
  /** The current policy's reminders: how long a refused email is retried. */
  policy?: ReminderPolicy;
  /** Overrides the update-card link for invoices without a hosted page (tests). */
  portalLink?: (customerId: string) => Promise<string | null>;
  /** Overrides the transport chosen from the config (tests, the demo). */
  transport?: MailTransport;
}

export async function startReminderWorkers(deps: ReminderWorkerDeps): Promise<() => Promise<void>> {
  const { config, log } = deps;
  const templates = loadTemplates(config.templatesDir);
  if (config.templatesDir)
    log.info({ templatesDir: config.templatesDir }, 'email templates loaded with merchant overrides');
  if (!config.opsWebhookUrl)
    log.info({}, 'OPS_WEBHOOK_URL not set: ops alerts are recorded in ops_alerts but not sent');
  const transport = deps.transport ?? createMailTransport(config, log);
  const portalLink =
    deps.portalLink ??
    updateCardLinks({
      config,
      clock: deps.clock,
      log,
      gateway: deps.gateway,
      policy: deps.policy ?? defaultReminderPolicy(),
    });
  const stopMailer = await startMailer({
    ...deps,
    transport,
    templates,
    ...(portalLink ? { portalLink } : {}),
    backoff: backoffOf(deps.policy ?? defaultReminderPolicy()),
    concurrency: Math.min(config.workerConcurrency, 4),
  });
  const stopAlerts = await startOpsAlerter(deps);
  return async () => {
    await stopMailer();
    await stopAlerts();
    transport.close();
  };
}

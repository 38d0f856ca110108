import type { PgBoss } from 'pg-boss';
import type { Clock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { Logger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { createReminderHooks, type ReminderHooks } from '../../src/reminders/hooks.ts';
import { startMailCatcher, type MailCatcher } from '../../src/reminders/mail-catcher.ts';
import { startMailer, type MailerDeps } from '../../src/reminders/mailer.ts';
import { defaultReminderPolicy } from '../../src/reminders/policy.ts';
import { loadTemplates } from '../../src/reminders/templates.ts';
import { smtpTransport } from '../../src/reminders/transport.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/** What a reminder test talks to: a database, pg-boss, the loopback SMTP catcher, the hooks and the mailer's deps. */
export interface MailWorld {
  db: TestDatabase;
  boss: PgBoss;
  catcher: MailCatcher;
  config: Config;
  hooks: ReminderHooks;
  mailerDeps: MailerDeps;
  stop(): Promise<void>;
}

/**
 * Starts the parts in a Berlin merchant's zone with the default reminder policy. With `mailer`,
 * the mailer also runs (with those options on top of the deps); otherwise tests call `sendOne`.
 */
export async function startMailWorld(o: {
  clock: Clock;
  log: Logger;
  merchantName: string;
  portalLink: MailerDeps['portalLink'];
  mailer?: Partial<MailerDeps>;
}): Promise<MailWorld> {
  const db = await createTestDatabase();
  const catcher = await startMailCatcher();
  const config = loadConfig({
    DEFAULT_TIME_ZONE: 'Europe/Berlin',
    DEFAULT_LOCALE: 'en',
    MERCHANT_NAME: o.merchantName,
    MAIL_FROM: 'billing@acme.test',
    SMTP_URL: catcher.url,
  });
  const boss = await startQueue(db.url, o.log);
  const hooks = createReminderHooks({ boss, clock: o.clock, log: o.log, config });
  const mailerDeps: MailerDeps = {
    sql: db.sql,
    boss,
    clock: o.clock,
    log: o.log,
    config,
    transport: smtpTransport(catcher.url),
    templates: loadTemplates(null),
    portalLink: o.portalLink,
    policy: defaultReminderPolicy(),
    ...o.mailer,
  };
  const stopMailer = o.mailer ? await startMailer(mailerDeps) : null;
  return {
    db,
    boss,
    catcher,
    config,
    hooks,
    mailerDeps,
    async stop() {
      await stopMailer?.();
      await boss.stop({ graceful: false });
      await catcher.close();
      await db.drop();
    },
  };
}

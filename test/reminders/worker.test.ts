/**
 * The reminder workers as `dunning start` runs them without SMTP: .eml files in OUTBOX_DIR, the
 * start-up log saying so, templates checked before anything starts, and card-expiry reminders.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { simpleParser } from 'mailparser';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { createReminderHooks } from '../../src/reminders/hooks.ts';
import { TemplateError } from '../../src/reminders/templates.ts';
import { startReminderWorkers } from '../../src/reminders/worker.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';

const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString('utf8').split('\n'))
      if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});
const log = createLogger('info', sink);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'reminders-worker-'));
const outboxDir = path.join(tmp, 'outbox');
const clock = new FixedClock('2026-03-02T12:00:00Z');

let db: TestDatabase;
let boss: PgBoss;
let config: Config;
let stop: (() => Promise<void>) | null = null;

beforeAll(async () => {
  db = await createTestDatabase();
  boss = await startQueue(db.url, log);
  config = loadConfig({
    OUTBOX_DIR: outboxDir,
    DEFAULT_TIME_ZONE: 'Europe/Berlin',
    DEFAULT_LOCALE: 'de',
    MERCHANT_NAME: 'Acme GmbH',
  });
});

afterAll(async () => {
  await stop?.();
  await boss?.stop({ graceful: false });
  await db?.drop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('reminder workers without SMTP', () => {
  it('refuses to start with a broken template override, naming the file', async () => {
    const dir = path.join(tmp, 'templates');
    fs.mkdirSync(path.join(dir, 'en'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'en', 'first_notice.tpl'), 'Subject: {{amount}\n--- text ---\n--- html ---\n');
    const broken = { ...config, templatesDir: dir };
    await expect(startReminderWorkers({ sql: db.sql, boss, clock, log, config: broken })).rejects.toThrow(
      TemplateError,
    );
    await expect(startReminderWorkers({ sql: db.sql, boss, clock, log, config: broken })).rejects.toThrow(
      path.join(dir, 'en', 'first_notice.tpl'),
    );
  });

  it('writes card-expiry reminders as .eml files and says where at start', async () => {
    clock.set('2026-03-20T12:00:00Z'); // within 14 days of the end of March
    stop = await startReminderWorkers({
      sql: db.sql,
      boss,
      clock,
      log,
      config,
      portalLink: async (customerId) => `https://billing.example.test/portal/${customerId}`,
    });
    expect(lines.some((l) => l.msg?.toString().includes('.eml files') && l.outboxDir === outboxDir)).toBe(true);

    await db.sql`insert into customers (id, email, preferred_locales, time_zone, default_payment_method, stripe_updated_at)
                 values ('cus_exp', 'exp@kunde.de', '{}', 'Europe/Berlin', 'pm_old', now())`;
    const hooks = createReminderHooks({ boss, clock, log, config });
    const expiring = (tx: Parameters<typeof hooks.cardExpiring>[0]) =>
      hooks.cardExpiring(tx, {
        customerId: 'cus_exp',
        paymentMethod: 'pm_old',
        expMonth: 3,
        expYear: 2026,
        at: clock.now(),
      });
    await db.sql.begin(expiring);
    await db.sql.begin(expiring);
    const file = await waitFor('an .eml file', async () =>
      fs.existsSync(outboxDir) ? fs.readdirSync(outboxDir).find((f) => f.endsWith('.eml')) : undefined,
    );
    const mail = await simpleParser(fs.readFileSync(path.join(outboxDir, file)));
    expect(mail.subject).toBe('Ihre Karte für Acme GmbH läuft bald ab');
    expect(mail.text).toContain('Ende 03/2026');
    expect(mail.text).toContain('31. März 2026');
    expect(mail.text).toContain('https://billing.example.test/portal/cus_exp');
    const rows = await db.sql`select kind, step, status, case_id from reminder_outbox where customer_id = 'cus_exp'`;
    expect(rows).toEqual([{ kind: 'card_expiring', step: 202603, status: 'sent', case_id: null }]);
  });

  it('drops a planned card-expiry reminder when the customer changes card', async () => {
    await db.sql`insert into customers (id, email, preferred_locales, default_payment_method, stripe_updated_at)
                 values ('cus_later', 'later@customer.com', '{en}', 'pm_a', now())`;
    const hooks = createReminderHooks({ boss, clock, log, config });
    await db.sql.begin((tx) =>
      hooks.cardExpiring(tx, {
        customerId: 'cus_later',
        paymentMethod: 'pm_a',
        expMonth: 12,
        expYear: 2026,
        at: clock.now(),
      }),
    );
    const [planned] = await db.sql<
      { status: string; due_at: Date }[]
    >`select status, due_at from reminder_outbox where customer_id = 'cus_later'`;
    expect(planned).toMatchObject({ status: 'pending' });
    expect(planned!.due_at.toISOString()).toBe('2026-12-17T22:59:59.999Z'); // 14 days before 31 Dec, Berlin
    await db.sql.begin((tx) =>
      hooks.paymentMethodChanged(tx, { customerId: 'cus_later', paymentMethod: 'pm_b', at: clock.now() }),
    );
    const [after] = await db.sql`select status, cancel_reason from reminder_outbox where customer_id = 'cus_later'`;
    expect(after).toEqual({ status: 'cancelled', cancel_reason: 'payment method changed' });
  });
});

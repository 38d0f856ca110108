/** The ops alerter against a real webhook receiver on loopback that keeps failing. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { startOpsAlerter } from '../../src/reminders/ops-alerter.ts';
import { recordOpsAlert } from '../../src/reminders/ops-alerts.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { insertCase } from './fixtures.ts';

let db: TestDatabase;
let boss: PgBoss;
let server: http.Server;
let received = 0;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      res.writeHead(500).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  boss = await startQueue(db.url, createLogger('silent'));
});
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await boss?.stop({ graceful: false });
  await new Promise((r) => server?.close(r));
  await db?.drop();
});

it('gives an alert up as failed after its last try, instead of leaving it pending for ever', async () => {
  const config = loadConfig({
    OPS_WEBHOOK_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    OPS_WEBHOOK_SECRET: 'ops-secret-for-tests',
  });
  const clock = new FixedClock('2026-03-02T15:00:00Z');
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('info', {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  stops.push(
    await startOpsAlerter({ sql: db.sql, boss, clock, log, config, pollingIntervalSeconds: 0.5, maxTries: 1 }),
  );
  const caseId = await insertCase(db.sql, { customerId: 'cus_alert', invoiceId: 'in_alert', amount: 900_000 });
  await db.sql.begin((tx) =>
    recordOpsAlert(
      tx,
      { boss, config },
      'case_lost',
      {
        caseId,
        invoiceId: 'in_alert',
        customerId: 'cus_alert',
        amount: 900_000,
        currency: 'usd',
        detail: null,
      },
      clock.now(),
    ),
  );

  const [alert] = await waitFor('alert given up', async () => {
    const rows = await db.sql`select status, tries, last_error from ops_alerts where case_id = ${caseId}`;
    return rows[0]?.status === 'failed' ? rows : null;
  });
  expect(alert).toMatchObject({ status: 'failed', tries: 1, last_error: 'ops webhook answered 500' });
  expect(received).toBe(1);
  expect(lines.some((l) => l.level === 50 && l.msg === 'ops alert not delivered; giving up')).toBe(true);
});

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { REPORT_POOL_SIZE } from '../../src/reports/routes.ts';
import { connect, type Sql } from '../../src/db.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { event, invoice } from '../fixtures/events/stripe-objects.ts';
import { deliver, sign } from '../http/harness.ts';
import { insertCases, NOVEMBER } from './fixtures.ts';

/**
 * `dunning start` gives the reports their own small pool: however many dashboards refresh at
 * once, they hold at most REPORT_POOL_SIZE connections, and webhooks keep theirs.
 */
const SECRET = 'whsec_pool_test_0123456789';
const TOKEN = 'pool-test-token-0123456789';
const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
let db: TestDatabase;
let outbox: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await insertCases(db.sql, NOVEMBER);
  outbox = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-report-pool-'));
});
afterAll(async () => {
  await db?.drop();
  fs.rmSync(outbox, { recursive: true, force: true });
});

function startWeb(): { child: ChildProcess; lines: string[] } {
  const child = spawn(process.execPath, [cli, 'start', '--role', 'web'], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: db.url,
      STRIPE_WEBHOOK_SECRET: SECRET,
      REPORTS_TOKEN: TOKEN,
      PORT: '0',
      HOST: '127.0.0.1',
      OUTBOX_DIR: outbox,
      LOG_LEVEL: 'info',
      DEFAULT_TIME_ZONE: 'Europe/Berlin',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const collect = (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return { child, lines };
}

/** Backends of this test's database by application name, and how many of them wait on a lock. */
async function backends(sql: Sql, app: string): Promise<{ all: number; waiting: number }> {
  const [r] = await sql<{ all: number; waiting: number }[]>`
    select count(*)::int as all, (count(*) filter (where wait_event_type = 'Lock'))::int as waiting
      from pg_stat_activity where datname = current_database() and application_name = ${app}`;
  return r!;
}

test('reports blocked in the database hold only their own pool; a webhook still gets through', async () => {
  const web = startWeb();
  // A connection of its own: it holds the lock that stalls every report query.
  const locker = connect(db.url, { max: 1, applicationName: 'pool-test-locker' });
  let release!: () => void;
  let locked!: Promise<unknown>;
  try {
    const port = await waitFor(
      'the server to listen',
      async () => {
        const line = web.lines.find((l) => l.includes('"msg":"listening"'));
        return line ? (JSON.parse(line) as { port: number }).port : null;
      },
      20_000,
    );
    const url = `http://127.0.0.1:${port}`;

    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let granted!: () => void;
    const isLocked = new Promise<void>((resolve) => {
      granted = resolve;
    });
    locked = locker.begin(async (tx) => {
      await tx`lock table dunning_cases in access exclusive mode`;
      granted();
      await held;
    });
    await isLocked;

    // Four dashboards at once: 44 queries, far more than the report pool or the main pool of ten.
    const reports = Array.from({ length: 4 }, () =>
      fetch(`${url}/reports.json?from=2026-11-01&to=2026-11-30`, { headers: { authorization: `Bearer ${TOKEN}` } }),
    );
    await waitFor(
      'the report pool to fill up with blocked queries',
      async () => (await backends(db.sql, 'dunning-reports')).waiting === REPORT_POOL_SIZE,
      15_000,
    );

    const ev = event('invoice.payment_failed', invoice({ id: 'in_pool1', customer: 'cus_pool1' }), {
      created: Math.floor(Date.now() / 1000),
    });
    const text = JSON.stringify(ev);
    const answer = await deliver(url, text, sign(text, SECRET));
    expect(answer.status).toBe(200);
    expect((await db.sql`select 1 from stripe_events where id = ${ev.id}`).length).toBe(1);
    expect(await backends(db.sql, 'dunning-reports')).toEqual({ all: REPORT_POOL_SIZE, waiting: REPORT_POOL_SIZE });

    release();
    await locked;
    const bodies = await Promise.all(
      (await Promise.all(reports)).map(async (r) => {
        expect(r.status).toBe(200);
        return (await r.json()) as {
          currencies: Array<{ currency: string; recovered: { amount: { minor: number } } }>;
        };
      }),
    );
    for (const b of bodies) expect(b.currencies.find((c) => c.currency === 'usd')?.recovered.amount.minor).toBe(6000);
    expect((await backends(db.sql, 'dunning-reports')).all).toBeLessThanOrEqual(REPORT_POOL_SIZE);
  } finally {
    release?.();
    await locked?.catch(() => {});
    await locker.end({ timeout: 1 });
    web.child.kill('SIGTERM');
    await new Promise((resolve) => (web.child.exitCode === null ? web.child.once('exit', resolve) : resolve(null)));
  }
});

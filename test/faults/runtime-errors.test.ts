import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { listeningPort, runCli, type CliProcess } from '../helpers/cli-process.ts';
import { waitFor } from '../helpers/db.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.ts';
import { request } from '../http/harness.ts';

/**
 * The database goes away while the process runs. What the operator reads: one structured line
 * that names DATABASE_URL and why, no stack (that is for LOG_LEVEL=debug), and one line when it
 * is back; the process keeps running and heals with no restart of its own. Before, every pg-boss
 * poller logged each failure with a stack: hundreds of lines in 25 s, none naming the setting.
 */

let pg: PrivatePostgres;
let outbox: string;
let proc: CliProcess | null = null;

beforeAll(async () => {
  pg = await startPrivatePostgres();
  outbox = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-runtime-errors-'));
});
afterAll(async () => {
  if (proc?.running()) proc.child.kill('SIGKILL');
  await pg?.stop();
  fs.rmSync(outbox, { recursive: true, force: true });
});

test('a database that goes away while running: one line naming DATABASE_URL, no stack, still running, healed', async () => {
  proc = runCli(['start', '--role', 'all'], {
    DATABASE_URL: pg.url,
    STRIPE_WEBHOOK_SECRET: 'whsec_runtime_errors_0123',
    STRIPE_SECRET_KEY: 'sk_test_runtime_errors',
    STRIPE_API_BASE: 'http://127.0.0.1:9',
    PORT: '0',
    HOST: '127.0.0.1',
    OUTBOX_DIR: outbox,
    LOG_LEVEL: 'info',
  });
  const port = await listeningPort(proc);
  await proc.line('"msg":"dunning started"');
  const from = proc.lines.length;

  await pg.halt();
  const away = JSON.parse(await proc.line('retrying until it answers', 20_000)) as Record<string, unknown>;
  expect(away).toMatchObject({ level: 40, setting: 'DATABASE_URL' });
  expect(away.msg).toMatch(/^DATABASE_URL postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres: /);
  // Health says so meanwhile (and the pollers keep failing several times a second).
  await waitFor('/healthz to say degraded', async () => {
    const a = await request(`http://127.0.0.1:${port}`, { method: 'GET', path: '/healthz' });
    return a.status === 503 && a.body.status === 'degraded';
  });

  await pg.start();
  const back = JSON.parse(await proc.line('the database answers again', 20_000)) as Record<string, unknown>;
  expect(back).toMatchObject({ level: 30, setting: 'DATABASE_URL' });
  await waitFor('/healthz 200 again', async () => {
    const a = await request(`http://127.0.0.1:${port}`, { method: 'GET', path: '/healthz' });
    return a.status === 200;
  });
  expect(proc.running()).toBe(true);

  const during = proc.lines.slice(from);
  // Every line is one JSON object, and none carries a stack.
  for (const line of during) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
  expect(during.filter((l) => l.includes('"stack"') || /\\n\s+at /.test(l))).toEqual([]);
  // No error-level line for the database being away: the outage is the one warning above.
  expect(during.filter((l) => l.includes('"level":50'))).toEqual([]);

  proc.child.kill('SIGTERM');
  expect(await proc.exit).toBe(0);
}, 90_000);

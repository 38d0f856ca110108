import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { reachable } from '../src/db.ts';
import { runCli, listeningPort } from './helpers/cli-process.ts';
import { startPrivatePostgres, type PrivatePostgres } from './helpers/private-postgres.ts';
import { waitFor } from './helpers/db.ts';
import { freePort } from './helpers/net.ts';

/**
 * Without DATABASE_URL the CLI runs its own Postgres (EMBEDDED_PG_DIR on EMBEDDED_PG_PORT). It must
 * stop it however it is stopped (SIGTERM from a supervisor, SIGHUP when the terminal closes, not
 * only Ctrl-C), and must never take another server that happens to listen on that port for its own.
 */

let root: string;
let other: PrivatePostgres;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-embedded-'));
  fs.chmodSync(root, 0o755);
  other = await startPrivatePostgres();
});
afterAll(async () => {
  await other?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

const embeddedUrl = (port: number) => `postgres://postgres:dunning-local@127.0.0.1:${port}/postgres`;

test.each(['SIGHUP', 'SIGTERM'] as const)(
  '%s stops dunning start and the embedded Postgres it started',
  async (signal) => {
    const port = await freePort();
    const p = runCli(['start', '--role', 'web'], {
      EMBEDDED_PG_DIR: path.join(root, `data-${signal}`),
      EMBEDDED_PG_PORT: String(port),
      STRIPE_WEBHOOK_SECRET: 'whsec_embedded_0123456789',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
    });
    try {
      await listeningPort(p);
      expect(await reachable(embeddedUrl(port))).toBe(true);
      p.child.kill(signal);
      expect(await p.exit).toBe(0);
      await waitFor('the embedded Postgres to be stopped', async () => !(await reachable(embeddedUrl(port))), 15_000);
    } finally {
      if (p.running()) p.child.kill('SIGKILL');
    }
  },
  60_000,
);

test('a server on EMBEDDED_PG_PORT that is not this cluster is refused with a clear message, and left alone', async () => {
  const port = new URL(other.url).port;
  const p = runCli(['migrate'], {
    EMBEDDED_PG_DIR: path.join(root, 'data-mine'),
    EMBEDDED_PG_PORT: port,
    LOG_LEVEL: 'info',
  });
  expect(await p.exit).toBe(78);
  const text = p.lines.filter((l) => !l.startsWith('{')).join('\n');
  expect(text).toContain(`EMBEDDED_PG_PORT: ${port} is taken by another Postgres server`);
  expect(text).toContain(other.dir);
  // Nothing was migrated there.
  expect(await reachable(other.url)).toBe(true);
  const { connect } = await import('../src/db.ts');
  const sql = connect(other.url, { max: 1 });
  try {
    expect(await sql`select to_regclass('public.stripe_events') as t`).toEqual([{ t: null }]);
  } finally {
    await sql.end();
  }
}, 60_000);

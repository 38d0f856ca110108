import net from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { inject } from 'vitest';
import { withDatabase } from '../src/db.ts';
import { runCli } from './helpers/cli-process.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';

/**
 * What an operator sees when something the process needs is not there: one line naming the setting
 * to check, exit 69 (EX_UNAVAILABLE), and the stack only at LOG_LEVEL=debug.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

async function startWith(env: Record<string, string>): Promise<{ code: number | null; output: string[] }> {
  const p = runCli(['start', '--role', 'web'], {
    STRIPE_WEBHOOK_SECRET: 'whsec_startup_errors_0123',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    ...env,
  });
  const code = await p.exit;
  // Log lines are JSON; what the operator reads is the rest.
  return { code, output: p.lines.filter((l) => !l.startsWith('{')) };
}

test.each([
  [
    'postgres://postgres@127.0.0.1:1/dunning',
    /^dunning start: DATABASE_URL postgres:\/\/postgres@127\.0\.0\.1:1\/dunning: connection refused/,
  ],
  [
    'postgres://postgres:secret@no-such-host.invalid/dunning',
    /^dunning start: DATABASE_URL postgres:\/\/postgres:\*\*\*@no-such-host\.invalid\/dunning: unknown host/,
  ],
  ['missing database', /: the database does not exist/],
  // With password authentication Postgres does not say whether the role exists.
  ['missing role', /: (the role does not exist or may not connect|password authentication failed)/],
])('DATABASE_URL %s: one line naming it, exit 69, no stack', async (url, expected) => {
  const admin = inject('adminUrl');
  const databaseUrl =
    url === 'missing database'
      ? withDatabase(admin, 'no_such_database_i14')
      : url === 'missing role'
        ? Object.assign(new URL(withDatabase(admin, 'postgres')), {
            username: 'no_such_role_i14',
            password: '',
          }).toString()
        : url;
  const { code, output } = await startWith({ DATABASE_URL: databaseUrl });
  expect(code).toBe(69);
  expect(output).toHaveLength(1);
  expect(output[0]).toMatch(expected);
  expect(output[0]).not.toContain('secret');
});

test('PORT in use: one line naming PORT and HOST, exit 69; LOG_LEVEL=debug adds the stack', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = String((taken.address() as net.AddressInfo).port);
  try {
    const quiet = await startWith({ DATABASE_URL: db.url, PORT: port });
    expect(quiet.code).toBe(69);
    expect(quiet.output).toEqual([
      `dunning start: PORT ${port}: already in use on HOST 127.0.0.1 (another process listens there)`,
    ]);
    const debug = await startWith({ DATABASE_URL: db.url, PORT: port, LOG_LEVEL: 'debug' });
    expect(debug.code).toBe(69);
    expect(debug.output.join('\n')).toMatch(/EADDRINUSE[\s\S]*\n\s+at /);
  } finally {
    taken.close();
  }
});

test('an OUTBOX_DIR that cannot be written (no SMTP_URL) is configuration: exit 78 before the database is touched', async () => {
  const p = runCli(['start', '--role', 'worker'], {
    // Port 1: were the database opened first, this would be exit 69.
    DATABASE_URL: 'postgres://postgres@127.0.0.1:1/dunning',
    OUTBOX_DIR: '/etc/passwd/outbox',
    LOG_LEVEL: 'info',
  });
  expect(await p.exit).toBe(78);
  expect(p.lines.join('\n')).toContain(
    'OUTBOX_DIR: /etc/passwd/outbox is not writable (ENOTDIR); set SMTP_URL, or OUTBOX_DIR to a writable directory',
  );
});

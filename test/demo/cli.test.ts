import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { connect } from '../../src/db.ts';
import { demoDataDir } from '../../src/demo/run.ts';

/**
 * `dunning demo` and `dunning simulate` as a user runs them: the process, its arguments, its last
 * lines. The demo runs at a tiny size (a few customers, five seconds).
 */
const cli = join(import.meta.dirname, '../../src/cli.ts');
const adminUrl = inject('adminUrl');
const database = `dunning_demo_c_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const mailDir = mkdtempSync(join(tmpdir(), 'demo-cli-mail-'));
const CUSTOMERS = 4;

afterAll(async () => {
  rmSync(demoDataDir(database), { recursive: true, force: true });
  const admin = connect(adminUrl, { max: 1 });
  try {
    await admin.unsafe(`drop database if exists "${database}" with (force)`);
  } finally {
    await admin.end();
  }
});

function runDemoCli(): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        cli,
        'demo',
        '--exit',
        '--customers',
        String(CUSTOMERS),
        '--days',
        '5',
        '--seconds',
        '5',
        '--workers',
        '1',
        '--database',
        database,
        '--mail-dir',
        mailDir,
      ],
      { env: { PATH: process.env.PATH, DATABASE_URL: adminUrl, LOG_LEVEL: 'error' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const run = (args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 20_000 });

describe('dunning demo --exit', () => {
  it('ends with the report, where the emails are and the dashboard URL carrying its token; a rerun starts clean', async () => {
    const first = await runDemoCli();
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    const ending = (out: string) => {
      const lines = out.trimEnd().split('\n');
      const [emails, dashboard, token] = lines.slice(-3);
      return { lines, emails: emails ?? '', dashboard: dashboard ?? '', token: token ?? '' };
    };
    const a = ending(first.stdout);
    expect(
      a.lines.some((l) =>
        /^Dunning recovery report {2}\d{4}-\d{2}-\d{2} \.\. \d{4}-\d{2}-\d{2} \(Europe\/Berlin\)$/.test(l),
      ),
    ).toBe(true);
    expect(a.lines.some((l) => l.endsWith('(final)'))).toBe(true);
    expect(a.emails).toMatch(
      new RegExp(
        `^Emails: (\\d+) caught by the local mail catcher; \\.eml copies in ${mailDir.replaceAll('/', '\\/')}/$`,
      ),
    );
    const sent = Number(/^Emails: (\d+)/.exec(a.emails)?.[1]);
    expect(sent).toBeGreaterThan(0);
    expect(readdirSync(mailDir).filter((f) => f.endsWith('.eml'))).toHaveLength(sent);
    const url = new URL(/^Dashboard: (\S+)$/.exec(a.dashboard)?.[1] ?? '');
    const token = /^ {2}token (\S+) \(as a bearer token, or as the password with any user name\)$/.exec(a.token)?.[1];
    expect(token).toMatch(/^[\w-]{24}$/);
    expect({ user: url.username, password: url.password, host: url.hostname, path: url.pathname }).toEqual({
      user: 'demo',
      password: token,
      host: '127.0.0.1',
      path: '/reports',
    });
    expect(url.searchParams.get('from')).toMatch(/^\d{4}-\d{2}-\d{2}$/);

    const db = connect(`${adminUrl.replace(/\/[^/]*$/, '')}/${database}`, { max: 1 });
    try {
      const count = async () => (await db`select count(*)::int as n from dunning_cases`)[0]?.n as number;
      const firstCases = await count();
      expect(firstCases).toBeGreaterThan(0);
      expect(firstCases).toBeLessThanOrEqual(CUSTOMERS);
      await db.end();

      // Again, on the same database: nothing of the first run is left, in the database or the mail
      // folder, where only .eml files are removed.
      writeFileSync(join(mailDir, 'notes.txt'), 'mine');
      const second = await runDemoCli();
      expect(second.status).toBe(0);
      const b = ending(second.stdout);
      const again = connect(`${adminUrl.replace(/\/[^/]*$/, '')}/${database}`, { max: 1 });
      try {
        const [row] =
          await again`select count(*)::int as n, count(distinct customer_id)::int as customers from dunning_cases`;
        expect(row?.n).toBeLessThanOrEqual(CUSTOMERS);
        expect(row?.customers).toBe(row?.n);
      } finally {
        await again.end();
      }
      expect(readdirSync(mailDir).filter((f) => f.endsWith('.eml'))).toHaveLength(
        Number(/^Emails: (\d+)/.exec(b.emails)?.[1]),
      );
      expect(existsSync(join(mailDir, 'notes.txt'))).toBe(true);
      expect(b.token).not.toBe(a.token);
    } finally {
      await db.end().catch(() => undefined);
    }
  }, 60_000);
});

describe('dunning demo and simulate arguments', () => {
  it.each(['demo', 'simulate'])('%s --help describes its options and exits 0', (command) => {
    const r = run([command, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: dunning ${command} `));
    for (const flag of command === 'demo'
      ? ['--customers', '--days', '--seconds', '--seed', '--keep', '--mail-dir', '--exit']
      : ['--policy', '--seed', '--customers']) {
      expect(r.stdout).toContain(`  ${flag} `);
    }
  });

  it.each([
    [['demo', '--customers', '0'], '--customers: expected 1 to 20000, got 0'],
    [['demo', '--days', 'abc'], '--days: expected a whole number, got "abc"'],
    [['demo', '--seconds', '2'], '--seconds: expected 5 to 3600, got 2'],
    [['demo', '--seed', '-1'], '--seed: expected 0 to 4294967295, got -1'],
    [['demo', '--workers', '17'], '--workers: expected 1 to 16, got 17'],
    [['demo', '--port', '1.5'], '--port: expected a whole number, got "1.5"'],
    [['simulate', '--seed', '-1'], '--seed: expected 0 to 4294967295, got -1'],
    [['simulate', '--customers', '-5'], '--customers: expected 1 to 200000, got -5'],
  ])('%j: exit 2 with a clear message, before anything starts', (args, message) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`dunning ${args[0]}: ${message}`);
    expect(r.stderr).not.toContain('ambiguous');
    expect(r.stdout).toBe('');
  });
});

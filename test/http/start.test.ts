import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createCardLinkSigner } from '../../src/card-link.ts';
import { systemClock } from '../../src/clock.ts';
import { startSandbox } from '../../src/sandbox/index.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { event, invoice } from '../fixtures/events/stripe-objects.ts';
import { deliver, request, sign } from './harness.ts';

const SECRET = 'whsec_start_test_0123456789';
const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');
let db: TestDatabase;
let outbox: string;

beforeAll(async () => {
  db = await createTestDatabase();
  outbox = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-start-'));
});
afterAll(async () => {
  await db?.drop();
  fs.rmSync(outbox, { recursive: true, force: true });
});

function run(
  args: string[],
  extraEnv: Record<string, string> = {},
): { child: ChildProcess; lines: string[]; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [cli, ...args], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: db.url,
      STRIPE_WEBHOOK_SECRET: SECRET,
      PORT: '0',
      HOST: '127.0.0.1',
      OUTBOX_DIR: outbox,
      LOG_LEVEL: 'info',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const collect = (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, exit };
}

test('dunning start serves webhooks and health, processes events, and stops cleanly on SIGTERM', async () => {
  const p = run(['start', '--role', 'all']);
  try {
    const port = await waitFor(
      'the server to listen',
      async () => {
        const line = p.lines.find((l) => l.includes('"msg":"listening"'));
        return line ? (JSON.parse(line) as { port: number }).port : null;
      },
      20_000,
    );
    const url = `http://127.0.0.1:${port}`;
    expect(await request(url, { method: 'GET', path: '/healthz' })).toMatchObject({ status: 200, body: { ok: true } });
    const ev = event('invoice.payment_failed', invoice({ id: 'in_start1', customer: 'cus_start1' }), {
      created: Math.floor(Date.now() / 1000),
    });
    const text = JSON.stringify(ev);
    expect((await deliver(url, text, sign(text, SECRET))).status).toBe(200);
    await waitFor(
      'the event processed',
      async () => (await db.sql`select 1 from stripe_events where id = ${ev.id} and status = 'processed'`).length > 0,
      15_000,
    );
    expect((await db.sql`select status from dunning_cases where invoice_id = 'in_start1'`)[0]).toMatchObject({
      status: 'open',
    });
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    expect(p.lines.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    expect(p.lines.join('\n')).not.toContain(SECRET);
  } finally {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }
});

test('--role web and --role worker as separate processes: the web one stores the event, the worker one applies it', async () => {
  const web = run(['start', '--role', 'web']);
  const worker = run(['start', '--role', 'worker']);
  try {
    const port = await waitFor(
      'the web process to listen',
      async () => {
        const line = web.lines.find((l) => l.includes('"msg":"listening"'));
        return line ? (JSON.parse(line) as { port: number }).port : null;
      },
      20_000,
    );
    const ev = event('invoice.payment_failed', invoice({ id: 'in_roles1', customer: 'cus_roles1' }), {
      created: Math.floor(Date.now() / 1000),
    });
    const text = JSON.stringify(ev);
    expect((await deliver(`http://127.0.0.1:${port}`, text, sign(text, SECRET))).status).toBe(200);
    await waitFor(
      'the event processed',
      async () => (await db.sql`select 1 from stripe_events where id = ${ev.id} and status = 'processed'`).length > 0,
      20_000,
    );
    expect((await db.sql`select status from dunning_cases where invoice_id = 'in_roles1'`)[0]).toMatchObject({
      status: 'open',
    });
    // The worker process applied it; the web process serves HTTP only.
    const applied = (lines: string[]) =>
      lines.some((l) => l.includes('"msg":"payment failure recorded"') && l.includes(ev.id));
    expect(applied(worker.lines)).toBe(true);
    expect(applied(web.lines)).toBe(false);
    expect(worker.lines.some((l) => l.includes('"msg":"listening"'))).toBe(false);
    web.child.kill('SIGTERM');
    worker.child.kill('SIGTERM');
    expect(await Promise.all([web.exit, worker.exit])).toEqual([0, 0]);
  } finally {
    for (const p of [web, worker]) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }
});

test('with PUBLIC_URL, --role web needs STRIPE_SECRET_KEY, then sends update-card links to a fresh portal session', async () => {
  const noKey = run(['start', '--role', 'web'], { PUBLIC_URL: 'https://billing.example.com' });
  try {
    expect(await Promise.race([noKey.exit, new Promise((r) => setTimeout(() => r('still running'), 15_000))])).toBe(78);
  } finally {
    if (noKey.child.exitCode === null) noKey.child.kill('SIGKILL');
  }
  expect(noKey.lines.join('\n')).toContain('STRIPE_SECRET_KEY: required when PUBLIC_URL is set');

  const sandbox = await startSandbox({ clock: systemClock, seed: 2 });
  const web = run(['start', '--role', 'web'], {
    PUBLIC_URL: 'https://billing.example.com',
    STRIPE_SECRET_KEY: sandbox.apiKey,
    STRIPE_API_BASE: sandbox.url,
  });
  try {
    const { id } = await sandbox.createCustomer({
      email: 'web@customer.com',
      name: 'W',
      country: 'US',
      card: { brand: 'visa', failure: null, expMonth: 1, expYear: 2030 },
    });
    const port = await waitFor(
      'the web process to listen',
      async () => {
        const line = web.lines.find((l) => l.includes('"msg":"listening"'));
        return line ? (JSON.parse(line) as { port: number }).port : null;
      },
      20_000,
    );
    const token = createCardLinkSigner(sandbox.apiKey).sign(id, new Date(Date.now() + 86_400_000));
    const a = await request(`http://127.0.0.1:${port}`, { method: 'GET', path: `/update-card?t=${token}` });
    expect(a.status).toBe(303);
    expect(a.headers.location).toMatch(new RegExp(`^${sandbox.url.replace(/[.]/g, '\\.')}/portal/bps_`));
    web.child.kill('SIGTERM');
    expect(await web.exit).toBe(0);
    expect(web.lines.join('\n')).not.toContain(token);
  } finally {
    if (web.child.exitCode === null) web.child.kill('SIGKILL');
    await sandbox.stop();
  }
});

test('dunning start refuses an unknown role with exit code 2', async () => {
  const p = run(['start', '--role', 'janitor']);
  expect(await p.exit).toBe(2);
  expect(p.lines.join('\n')).toContain('--role: expected one of web, worker, all');
});

test('a broken policy file or template stops dunning start as configuration (exit 78), before the database is touched', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-start-config-'));
  try {
    const policyFile = path.join(dir, 'dunning.config.json');
    fs.writeFileSync(policyFile, JSON.stringify({ retry: { maxAttempts: 'lots' } }));
    fs.mkdirSync(path.join(dir, 'en'));
    fs.writeFileSync(path.join(dir, 'en', 'first_notice.tpl'), 'Subject: Card stolen\n\nYour card was stolen.');
    // Port 1: were the database opened first, this would be a connection error, not exit 78.
    const unreachable = { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing' };
    const p = run(['start'], { ...unreachable, DUNNING_POLICY_FILE: policyFile });
    expect(await p.exit).toBe(78);
    expect(p.lines.join('\n')).toMatch(/DUNNING_POLICY_FILE: [\s\S]*retry.maxAttempts: expected an integer/);
    const t = run(['start'], { ...unreachable, TEMPLATES_DIR: dir });
    expect(await t.exit).toBe(78);
    expect(t.lines.join('\n')).toMatch(/TEMPLATES_DIR: .*first_notice\.tpl/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('with API_KEYS, --role web serves the billing status API behind the key and the banner script', async () => {
  const key = 'merchant-backend-key-0123456789';
  const web = run(['start', '--role', 'web'], {
    API_KEYS: `backend:${createHash('sha256').update(key).digest('hex')}`,
    STRIPE_SECRET_KEY: 'sk_test_start_banner',
  });
  try {
    const port = await waitFor(
      'the web process to listen',
      async () => {
        const line = web.lines.find((l) => l.includes('"msg":"listening"'));
        return line ? (JSON.parse(line) as { port: number }).port : null;
      },
      20_000,
    );
    const base = `http://127.0.0.1:${port}`;
    const path = '/api/v1/customers/cus_start/billing-status';
    expect((await fetch(`${base}${path}`)).status).toBe(401);
    expect((await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404);
    expect((await fetch(`${base}/embed/billing-banner.js`)).status).toBe(200);
    web.child.kill('SIGTERM');
    expect(await web.exit).toBe(0);
    expect(web.lines.join('\n')).toContain('"apiClient":"backend"');
  } finally {
    if (web.child.exitCode === null) web.child.kill('SIGKILL');
  }
});

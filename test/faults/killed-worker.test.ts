import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { savePolicy, sendAttemptJob } from '../../src/dunning/scheduler.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { apiCharges, planDueAttempt, seedFailedInvoice, type SeededCase } from '../dunning/runner-helpers.ts';
import { customer, event } from '../fixtures/events/stripe-objects.ts';
import { listeningPort, runCli, type CliProcess } from '../helpers/cli-process.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { deliver, sign } from '../http/harness.ts';

/**
 * Several processes on one database, as production runs them: two web and three worker processes.
 * One worker is killed with SIGKILL in the middle of a burst of due attempts, after its charge
 * requests reached Stripe and before it heard the answers (the worst moment). Its attempts must be
 * taken over within about the attempt lease, and made once: the takeover reads the invoice back and
 * repeats the charge with the same idempotency key. Stripe: "subsequent requests with the same key
 * return the same result, including 500 errors" (https://docs.stripe.com/api/idempotent_requests).
 */

const SECRET = 'whsec_killed_worker_0123456789';
const ATTEMPTS = 20;
const LEASE_SECONDS = 10;
/** The victim's charge requests held (sent on to Stripe, the answer never returned) before the kill. */
const HELD = 3;

let db: TestDatabase;
let sandbox: Sandbox;
let outbox: string;
const procs: CliProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  sandbox = await startSandbox({ clock: systemClock, seed: 13 });
  outbox = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-killed-'));
});
afterAll(async () => {
  for (const p of procs) if (p.running()) p.child.kill('SIGKILL');
  await sandbox?.stop();
  await db?.drop();
  fs.rmSync(outbox, { recursive: true, force: true });
});

/**
 * The victim's way to Stripe: requests pass through to the sandbox, but the answers to charge
 * requests are held back, so the victim dies with charges made and not recorded.
 */
async function answerHoldingProxy(held: string[]): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(sandbox.url);
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const pay = /^\/v1\/invoices\/([^/]+)\/pay$/.exec(req.url ?? '');
        if (pay && req.method === 'POST') {
          held.push(pay[1]!);
          answer.resume();
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function start(role: string, stripeUrl = sandbox.url): CliProcess {
  const p = runCli(['start', '--role', role], {
    DATABASE_URL: db.url,
    STRIPE_WEBHOOK_SECRET: SECRET,
    STRIPE_SECRET_KEY: sandbox.apiKey,
    STRIPE_API_BASE: stripeUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    OUTBOX_DIR: outbox,
    LOG_LEVEL: 'info',
    ATTEMPT_LEASE_SECONDS: String(LEASE_SECONDS),
  });
  procs.push(p);
  return p;
}

test('two web and three worker processes; a worker killed mid-burst: every due attempt made once, its attempts taken over within the lease', async () => {
  const policy = defaultPolicy();
  await savePolicy(db.sql, policy);
  const cases: SeededCase[] = [];
  const attemptIds: number[] = [];
  for (let i = 0; i < ATTEMPTS; i++) {
    const c = await seedFailedInvoice({ sandbox, policy, clock: systemClock, db }, 'insufficient_funds');
    cases.push(c);
    attemptIds.push(await planDueAttempt(db.sql, c, new Date()));
  }

  const held: string[] = [];
  const proxy = await answerHoldingProxy(held);
  // The victim works alone at first, so it surely holds attempts when it dies (on a busy machine
  // the other workers could otherwise take the whole burst); they join before the kill.
  const victim = start('worker', proxy.url);
  const webs = [start('web'), start('web')];
  const urls = (await Promise.all(webs.map(listeningPort))).map((p) => `http://127.0.0.1:${p}`);
  await victim.line('"msg":"dunning started"');

  // The burst, queued as the scheduler queues attempts; webhooks arrive at both web processes meanwhile.
  const boss = await startQueue(db.url, createLogger('silent'));
  for (const [i, id] of attemptIds.entries())
    await sendAttemptJob(db.sql, { boss, clock: systemClock }, id, cases[i]!.invoiceId, new Date());
  await boss.stop({ graceful: false, close: true });
  const deliveries = urls.flatMap((url, n) =>
    Array.from({ length: 10 }, (_, i) => {
      const ev = event('customer.updated', customer({ id: `cus_kw_${n}_${i}` }), {
        id: `evt_kw_${n}_${i}`,
        created: Math.floor(Date.now() / 1000),
      });
      const text = JSON.stringify(ev);
      return deliver(url, text, sign(text, SECRET)).then((a) => ({ id: ev.id, status: a.status }));
    }),
  );

  await waitFor('the victim to have charges in flight', () => held.length >= HELD, 30_000);
  const workers = [start('worker'), start('worker')];
  await Promise.all(workers.map((w) => w.line('"msg":"dunning started"')));
  victim.child.kill('SIGKILL');
  const killedAt = Date.now();
  await victim.exit;
  const victimInvoices = [...new Set(held)];

  const answers = await Promise.all(deliveries);
  expect(answers.filter((a) => a.status !== 200)).toEqual([]);

  await waitFor(
    'every due attempt to be made',
    async () => {
      const [row] = await db.sql<{ n: number }[]>`
        select count(*)::int as n from payment_attempts
         where id in ${db.sql(attemptIds)} and status in ('planned', 'in_flight', 'unknown')`;
      return row!.n === 0;
    },
    LEASE_SECONDS * 1000 + 30_000,
  );
  await proxy.close();

  // Made once: one charge at Stripe per attempt, the victim's included (the takeover's repeat was a replay).
  for (const c of cases) expect(apiCharges(sandbox, c.invoiceId), c.invoiceId).toHaveLength(1);
  const succeeded = sandbox.charges().filter((c) => c.source === 'api' && c.status === 'succeeded');
  expect(new Set(succeeded.map((c) => c.invoice)).size).toBe(succeeded.length);

  // How long the killed worker's attempts waited: from the kill to their outcome being recorded.
  const finished = await db.sql<{ invoice_id: string; finished_at: Date }[]>`
    select invoice_id, finished_at from payment_attempts
     where id in ${db.sql(attemptIds)} and invoice_id in ${db.sql(victimInvoices)}`;
  const waits = finished.map((r) => (r.finished_at.getTime() - killedAt) / 1000);
  const worst = Math.max(...waits);
  console.log(
    `killed worker: ${victimInvoices.length} attempts held at the kill, taken over and recorded after ` +
      `${Math.min(...waits).toFixed(1)}-${worst.toFixed(1)} s (lease ${LEASE_SECONDS} s); ` +
      `${ATTEMPTS} due attempts made once by 3 workers; 20 webhooks stored via 2 web processes`,
  );
  // The bound docs/runner.md states: the lease, plus a job heartbeat and a supervision pass.
  expect(worst).toBeLessThan(LEASE_SECONDS + 25);

  const stored = await db.sql`select id from stripe_events where id in ${db.sql(answers.map((a) => a.id))}`;
  expect(stored).toHaveLength(answers.length);
  for (const p of [...workers, ...webs]) p.child.kill('SIGTERM');
  expect(await Promise.all([...workers, ...webs].map((p) => p.exit))).toEqual([0, 0, 0, 0]);
}, 90_000);

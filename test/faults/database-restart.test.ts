import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { connect, type Sql } from '../../src/db.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { savePolicy, sendAttemptJob } from '../../src/dunning/scheduler.ts';
import { createLogger } from '../../src/log.ts';
import { migrate } from '../../src/migrate.ts';
import { startQueue } from '../../src/queue.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { apiCharges, planDueAttempt, seedFailedInvoice, type SeededCase } from '../dunning/runner-helpers.ts';
import { customer, event } from '../fixtures/events/stripe-objects.ts';
import { listeningPort, runCli, type CliProcess } from '../helpers/cli-process.ts';
import { waitFor } from '../helpers/db.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.ts';
import { deliver, request, sign } from '../http/harness.ts';

/**
 * Production restarts its database: a failover, a `pg_ctl restart`, a killed postmaster. Every role
 * must live through it with no restart of its own, answer 503 (Stripe retries) while the database
 * is away and 2xx again once it is back, and lose or repeat nothing: an event answered 2xx is
 * stored, a due attempt is made once.
 */

const SECRET = 'whsec_fault_test_0123456789';
const ATTEMPTS = 24;
const LEASE_SECONDS = 10;

let pg: PrivatePostgres;
let sandbox: Sandbox;
let outbox: string;
const procs: CliProcess[] = [];

beforeAll(async () => {
  pg = await startPrivatePostgres();
  sandbox = await startSandbox({ clock: systemClock, seed: 14 });
  outbox = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-faults-'));
});
afterAll(async () => {
  for (const p of procs) if (p.running()) p.child.kill('SIGKILL');
  await sandbox?.stop();
  await pg?.stop();
  fs.rmSync(outbox, { recursive: true, force: true });
});

/** A short-lived pool: the test's own connections must not be open across a restart. */
async function withSql<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = connect(pg.url, { max: 2 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

function start(role: string): CliProcess {
  const p = runCli(['start', '--role', role], {
    DATABASE_URL: pg.url,
    STRIPE_WEBHOOK_SECRET: SECRET,
    STRIPE_SECRET_KEY: sandbox.apiKey,
    STRIPE_API_BASE: sandbox.url,
    PORT: '0',
    HOST: '127.0.0.1',
    OUTBOX_DIR: outbox,
    LOG_LEVEL: 'info',
    ATTEMPT_LEASE_SECONDS: String(LEASE_SECONDS),
  });
  procs.push(p);
  return p;
}

/** Signed deliveries from `loops` concurrent senders until `stop.value`; collects the ids answered 2xx. */
async function flood(
  url: string,
  tag: string,
  stop: { value: boolean },
  accepted: string[],
  loops = 3,
): Promise<number> {
  let sent = 0;
  await Promise.all(
    Array.from({ length: loops }, async (_, loop) => {
      for (let i = 0; !stop.value; i++) {
        const ev = event('customer.updated', customer({ id: `cus_flood_${tag}_${loop}_${i}` }), {
          id: `evt_flood_${tag}_${loop}_${i}`,
          created: Math.floor(Date.now() / 1000),
        });
        const text = JSON.stringify(ev);
        sent++;
        const answer = await deliver(url, text, sign(text, SECRET)).catch(() => null);
        if (answer && answer.status >= 200 && answer.status < 300) accepted.push(ev.id);
      }
    }),
  );
  return sent;
}

/**
 * Called once the server answers again (pg_ctl waited for it): waits until the receiver stores a
 * delivery, and says how long that took. The target (within a second, at 150 deliveries/s) is
 * measured by bench/recovery.ts; here only that it comes back at all, so a busy machine cannot
 * fail the suite on timing.
 */
async function msUntilStored(url: string): Promise<number> {
  const back = Date.now();
  await waitFor(
    'a delivery stored after the restart',
    async () => {
      const ev = event('customer.updated', customer({ id: 'cus_back' }), { created: Math.floor(Date.now() / 1000) });
      const text = JSON.stringify(ev);
      return (await deliver(url, text, sign(text, SECRET))).status === 200;
    },
    20_000,
  );
  const ms = Date.now() - back;
  console.log(`receiver stored a delivery ${ms} ms after the restarted server answered`);
  return ms;
}

test('every role lives through pg_ctl restart -m fast and a killed postmaster under a webhook flood and a burst of due attempts', async () => {
  const policy = defaultPolicy();
  const log = createLogger('silent');
  const cases: SeededCase[] = [];
  const attemptIds: number[] = [];
  await withSql(async (sql) => {
    await migrate(sql, log);
    await savePolicy(sql, policy);
    for (let i = 0; i < ATTEMPTS; i++) {
      const c = await seedFailedInvoice({ sandbox, policy, clock: systemClock, db: { sql } }, 'insufficient_funds');
      cases.push(c);
      attemptIds.push(await planDueAttempt(sql, c, new Date()));
    }
  });

  const all = start('all');
  const worker = start('worker');
  const web = start('web');
  const ports = await Promise.all([listeningPort(all), listeningPort(web)]);
  await worker.line('"msg":"dunning started"');
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);

  const stop = { value: false };
  const accepted: string[] = [];
  const health: Array<{ status: number; body: Record<string, unknown> }> = [];
  const floods = Promise.all(urls.map((u, n) => flood(u, String(n), stop, accepted)));
  const healthPoll = (async () => {
    while (!stop.value) {
      const a = await request(urls[1]!, { method: 'GET', path: '/healthz' }).catch(() => null);
      if (a) health.push({ status: a.status, body: a.body });
    }
  })();

  // The burst: every attempt due now, queued as the scheduler queues them.
  const boss = await startQueue(pg.url, log);
  await withSql(async (sql) => {
    for (const [i, id] of attemptIds.entries())
      await sendAttemptJob(sql, { boss, clock: systemClock }, id, cases[i]!.invoiceId, new Date());
  });
  await boss.stop({ graceful: false, close: true });
  await waitFor('the burst to start charging', () => sandbox.charges().some((c) => c.source === 'api'));

  await pg.restart();
  const recoveries = [await msUntilStored(urls[1]!)];
  await waitFor('events accepted after the restart', () => accepted.length > 20);
  const beforeKill = accepted.length;
  await pg.killAndStart();
  recoveries.push(await msUntilStored(urls[1]!));
  await waitFor('events accepted after the killed postmaster', () => accepted.length > beforeKill + 20, 20_000);
  stop.value = true;
  const sent = (await floods).reduce((a, b) => a + b, 0);
  await healthPoll;

  // Every role is still running: no restart of its own.
  const dead = [all, worker, web].filter((p) => !p.running()).map((p) => p.lines.slice(-30).join('\n'));
  expect(dead).toEqual([]);
  // /healthz said so while the database was away, and is healthy again.
  expect(health.some((h) => h.status === 503 && h.body.status === 'degraded')).toBe(true);
  const healthy = await waitFor(
    `/healthz 200 again (last: ${JSON.stringify(health.at(-1))})`,
    async () => {
      const a = await request(urls[1]!, { method: 'GET', path: '/healthz' });
      return a.status === 200 ? a : null;
    },
    5_000,
  );
  expect(healthy.body).toMatchObject({ ok: true, status: 'ok' });

  await withSql(async (sql) => {
    // Every event answered 2xx is stored.
    const stored = await sql<
      { n: number }[]
    >`select count(*)::int as n from stripe_events where id in ${sql(accepted)}`;
    expect(stored[0]!.n).toBe(accepted.length);
    // Every due attempt is made, once: one charge request per attempt, and no invoice charged twice.
    const left = async () =>
      JSON.stringify(
        await sql`select a.id, a.status, a.lease_until, a.planned_at, j.state, j.retry_count, j.start_after
                    from payment_attempts a left join pgboss.job j on j.id = a.job_id
                   where a.id in ${sql(attemptIds)} and a.status in ('planned', 'in_flight', 'unknown')`,
      );
    await waitFor(
      'every due attempt to be made',
      async () => {
        const [row] = await sql<{ n: number }[]>`
          select count(*)::int as n from payment_attempts
           where id in ${sql(attemptIds)} and status in ('planned', 'in_flight', 'unknown')`;
        return row!.n === 0;
      },
      LEASE_SECONDS * 1000 + 45_000,
    ).catch(async (err: Error) => {
      if (process.env.FAULT_LOG_DIR)
        for (const [n, p] of procs.entries())
          fs.writeFileSync(path.join(process.env.FAULT_LOG_DIR, `proc${n}.log`), p.lines.join('\n'));
      throw new Error(`${err.message}: ${await left()}`);
    });
  });
  for (const c of cases) {
    const charges = apiCharges(sandbox, c.invoiceId);
    expect(charges, c.invoiceId).toHaveLength(1);
  }
  console.log(
    `fault test: ${sent} deliveries, ${accepted.length} accepted and stored; ${ATTEMPTS} due attempts made once; ` +
      `health samples ${health.length} (${health.filter((h) => h.status === 503).length} degraded); ` +
      `stored again ${recoveries.join(' ms, ')} ms after the server answered`,
  );

  for (const p of [all, worker, web]) p.child.kill('SIGTERM');
  expect(await Promise.all([all.exit, worker.exit, web.exit])).toEqual([0, 0, 0]);
}, 90_000);

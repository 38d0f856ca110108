/**
 * The one-command demo: the real worker (receiver, event processor, planner, runner, mailer) runs
 * in-process against a local Stripe sandbox and a mail catcher, on a time-scaled clock, while a
 * seeded population of renewals fails. This module only wires the public start functions; it
 * decides nothing the worker decides.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { DateTime } from 'luxon';
import type { PgBoss } from 'pg-boss';
import { pino } from 'pino';
import { systemClock } from '../clock.ts';
import { loadConfig } from '../config.ts';
import type { Policy } from '../dunning/policy.ts';
import { healthRoutes } from '../http/health.ts';
import { closeServer, createServer, listen, mountRoutes } from '../http/server.ts';
import { updateCardRoutesFor } from '../http/update-card.ts';
import { webhookRoutes } from '../http/webhook.ts';
import { createLogger, type Logger } from '../log.ts';
import { projectRoot } from '../paths.ts';
import { QUEUES, startQueue } from '../queue.ts';
import { startMailCatcher, type CaughtMail, type MailCatcher } from '../reminders/mail-catcher.ts';
import { loadReport, type Report } from '../reports/build.ts';
import { resolvePeriod } from '../reports/period.ts';
import { reportRoutes } from '../reports/routes.ts';
import {
  sandboxApiKey,
  startSandbox,
  type DeliveryRecord,
  type ExecutedCharge,
  type Fault,
  type RateLimitedRequest,
  type Sandbox,
} from '../sandbox/index.ts';
import { createStripeClient } from '../stripe/client.ts';
import { startWorkers } from '../worker.ts';
import { DemoClock } from './clock.ts';
import { openDemoDatabase, type DemoDatabase } from './database.ts';
import { driveCycle } from './cycle.ts';
import {
  checkContinuity,
  DEMO_STATE_FORMAT,
  loadDemoState,
  moveQueuedJobs,
  removeDemoState,
  saveDemoState,
} from './keep.ts';
import { progressLine, takeSnapshot } from './progress.ts';

export interface DemoOptions {
  customers: number;
  /** Simulated days the cycle covers. */
  days: number;
  /** Real seconds those days take. */
  seconds: number;
  seed: number;
  keep: boolean;
  database: string;
  mailDir: string;
  /** Where the sandbox's state is saved at the end, for a later `--keep`. */
  stateFile: string;
  policy: Policy;
  /** Port for the receiver and the dashboard; 0 picks a free one. */
  port: number;
  /** Worker instances sharing the queues, like that many worker processes. */
  workers: number;
  /**
   * Operations whose webhooks the sandbox holds back, and for up to how many simulated days (half
   * that at least): default 10 %, 2 days. Tests raise both to see more crossings.
   */
  late?: { share: number; maxDays: number };
  /**
   * Faults the sandbox plays from the start (see src/sandbox/faults.ts): a test that must see the
   * workers meet a 429 or a 500 makes it certain instead of hoping the load brings one.
   */
  faults?: readonly Fault[];
}

export interface DemoRun {
  report: Report;
  /** Simulated time the cycle started at; the clock stands still at its end. */
  start: Date;
  clock: DemoClock;
  databaseUrl: string;
  mailDir: string;
  emails: number;
  /** What the mail catcher received and what the sandbox charged: the ground truth to check the worker against. */
  mails: CaughtMail[];
  charges: ExecutedCharge[];
  /** Requests the sandbox answered 429. */
  rateLimited: RateLimitedRequest[];
  /** Every webhook delivery attempt the sandbox made. */
  deliveries: DeliveryRecord[];
  dashboardUrl: string;
  token: string;
  /** Closes the dashboard, the sandbox, the mail catcher and the database. */
  stop(): Promise<void>;
}

const DAY = 86_400_000;

/** The demo's files, one folder per demo database, so two demos never share (or wipe) them. */
export function demoDataDir(database: string): string {
  return path.join(projectRoot, '.data', 'demo', database);
}

/** Removes the emails of an earlier run: only the .eml files, whatever else the folder holds. */
function clearMail(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const name of names) if (name.endsWith('.eml')) fs.rmSync(path.join(dir, name), { force: true });
}

/** Where the dunning cycle starts: now, or after everything a kept database already holds. */
async function simulatedStart(db: DemoDatabase): Promise<Date> {
  const now = DateTime.utc().startOf('hour');
  if (!db.kept) return now.toJSDate();
  const [row] =
    await db.sql`select max(greatest(opened_at, coalesce(closed_at, opened_at))) as last from dunning_cases`;
  const last = row?.last as Date | null | undefined;
  return last && last > now.toJSDate()
    ? DateTime.fromJSDate(last).toUTC().plus({ hours: 1 }).startOf('hour').toJSDate()
    : now.toJSDate();
}

/**
 * Stripe limits requests per account and per endpoint (src/sandbox/limiter.ts), while the demo's
 * workers pace themselves one by one, like separate processes (each lets a quarter second's worth
 * through at once: src/stripe/throttle.ts). The sandbox allows a little under their pace: the
 * account 90 % of all workers' together, each endpoint 90 % of one worker's, both with half the
 * burst. So batches of due attempts meet 429s, and take the "not sent, retry soon" path.
 */
export function sandboxRateLimits(pacePerWorker: number, workers: number): { account: Limit; endpoint: Limit } {
  const burst = Math.max(1, Math.ceil(pacePerWorker / 4));
  const limit = (perSecond: number, b: number): Limit => ({
    perSecond: Math.max(1, Math.floor(0.9 * perSecond)),
    burst: Math.max(1, Math.floor(b / 2)),
  });
  return { account: limit(pacePerWorker * workers, burst * workers), endpoint: limit(pacePerWorker, burst) };
}

interface Limit {
  perSecond: number;
  burst: number;
}

interface Parts {
  db: DemoDatabase | null;
  boss: PgBoss | null;
  server: http.Server | null;
  sandbox: Sandbox | null;
  catcher: MailCatcher | null;
  stopWorkers: (() => Promise<void>) | null;
}

async function closeParts(p: Parts, log: Logger): Promise<void> {
  const steps: Array<[string, (() => Promise<unknown>) | null]> = [
    ['workers', p.stopWorkers],
    ['sandbox', p.sandbox ? () => p.sandbox!.stop() : null],
    ['http server', p.server ? () => closeServer(p.server!) : null],
    ['job queue', p.boss ? () => p.boss!.stop({ graceful: true, timeout: 5_000 }) : null],
    ['mail catcher', p.catcher ? () => p.catcher!.close() : null],
    ['database', p.db ? () => p.db!.close() : null],
  ];
  for (const [what, step] of steps) {
    if (!step) continue;
    try {
      await step();
    } catch (err) {
      log.warn({ err, what }, 'demo shutdown step failed');
    }
  }
}

/** Settings the worker reads from the environment, pointed at the demo's own parts. */
function demoEnv(
  env: NodeJS.ProcessEnv,
  parts: { databaseUrl: string; smtpUrl: string; token: string; secret: string; apiBase?: string },
): NodeJS.ProcessEnv {
  return {
    ...env,
    DATABASE_URL: parts.databaseUrl,
    STRIPE_SECRET_KEY: sandboxApiKey,
    STRIPE_WEBHOOK_SECRET: parts.secret,
    SMTP_URL: parts.smtpUrl,
    REPORTS_TOKEN: parts.token,
    DEFAULT_TIME_ZONE: env.DEFAULT_TIME_ZONE || 'Europe/Berlin',
    MERCHANT_NAME: env.MERCHANT_NAME || 'Demo Shop',
    // pg-boss polls each handler slot every half second at best: event throughput is about
    // 2 x WORKER_CONCURRENCY per second per worker, and the demo's webhooks arrive faster than that.
    WORKER_CONCURRENCY: env.WORKER_CONCURRENCY || '16',
    // Stripe's production pace would stretch the demo; the sandbox can take more.
    STRIPE_REQUESTS_PER_SECOND: env.STRIPE_REQUESTS_PER_SECOND || '100',
    ...(parts.apiBase ? { STRIPE_API_BASE: parts.apiBase } : {}),
  };
}

export async function runDemo(env: NodeJS.ProcessEnv, o: DemoOptions, print: (line: string) => void): Promise<DemoRun> {
  const base = loadConfig(env);
  // Progress lines own stdout; the worker's logs go to stderr and only when something is wrong.
  const log = createLogger(env.LOG_LEVEL || 'error', pino.destination({ fd: 2, sync: false }));
  const parts: Parts = { db: null, boss: null, server: null, sandbox: null, catcher: null, stopWorkers: null };
  try {
    parts.db = await openDemoDatabase(base, log, o.database, o.keep);
    const db = parts.db;
    const kept = db.kept ? loadDemoState(o.stateFile) : null;
    if (db.kept) await checkContinuity(db.sql, kept, o.stateFile);
    else removeDemoState(o.stateFile);
    // A kept run's time resumes where the last one stopped, so what it planned stays in the future.
    const start = kept ? new Date(kept.clock.frozenAt) : await simulatedStart(db);
    const scale = (o.days * DAY) / (o.seconds * 1000);
    const clock = new DemoClock(start, scale);
    const token = randomBytes(18).toString('base64url');
    const secret = `whsec_${randomBytes(24).toString('hex')}`;

    if (!db.kept) clearMail(o.mailDir);
    parts.catcher = await startMailCatcher({ dir: o.mailDir });
    const catcher = parts.catcher;
    const webConfig = loadConfig(demoEnv(env, { databaseUrl: db.url, smtpUrl: catcher.url, token, secret }));
    parts.boss = await startQueue(db.url, log);
    const boss = parts.boss;
    if (kept)
      await moveQueuedJobs(db.sql, kept.clock, { simStart: start.getTime(), realStart: clock.scaled.realStart, scale });
    parts.server = createServer({
      log: log.child({ component: 'http' }),
      routes: {
        ...webhookRoutes({
          sql: db.sql,
          boss,
          secrets: webConfig.webhookSecrets,
          toleranceSeconds: webConfig.webhookToleranceSeconds,
        }),
        ...healthRoutes({ sql: db.sql, queueRunning: () => true }),
        ...reportRoutes({ sql: db.sql, config: webConfig, clock, log }),
      },
    });
    const port = await listen(parts.server, o.port, '127.0.0.1');

    const limits = sandboxRateLimits(webConfig.stripeRequestsPerSecond, o.workers);
    const late = o.late ?? { share: 0.1, maxDays: 2 };
    parts.sandbox = await startSandbox({
      clock,
      seed: o.seed,
      webhookUrl: `http://127.0.0.1:${port}/webhooks/stripe`,
      webhookSecret: secret,
      duplicateShare: 0.1,
      reorder: true,
      // Some operations' webhooks (and some duplicates) arrive days late, after later events: an
      // old failure after the payment. An operation's events stay together, so the worker never
      // sees a failure without the charge that explains it.
      lateShare: late.share,
      lateMinMs: (late.maxDays * DAY) / scale / 2,
      lateMaxMs: (late.maxDays * DAY) / scale,
      rateLimitPerSecond: limits.account.perSecond,
      rateLimitBurst: limits.account.burst,
      endpointRateLimit: limits.endpoint,
      // Signatures are checked against real time, as Stripe's are.
      webhookSigningClock: systemClock,
      // The workers repeat an unanswered charge seconds later in real time, simulated days here:
      // keys aging in simulated time would be forgotten by then, and the repeat would charge again
      // or be refused as "already paid" for a charge of ours. Stripe keeps them 24 real hours.
      idempotencyClock: systemClock,
      log: log.child({ component: 'sandbox' }),
      // The kept database points at the earlier sandbox's objects: bring them back. Without a
      // saved state (nothing was open), new ids must still not collide with the old ones.
      ...(kept ? { state: kept.sandbox } : db.kept ? { idTag: randomBytes(3).toString('hex') } : {}),
    });
    const sandbox = parts.sandbox;
    for (const fault of o.faults ?? []) sandbox.inject(fault);
    const config = loadConfig({
      ...demoEnv(env, { databaseUrl: db.url, smtpUrl: catcher.url, token, secret, apiBase: sandbox.url }),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
    });
    mountRoutes(parts.server, updateCardRoutesFor(config, { clock })); // emails link to this server's /update-card
    // Several worker instances share the queues exactly as several `dunning start --role worker`
    // processes would: time runs thousands of times faster here than in production.
    const stops: Array<() => Promise<void>> = [];
    parts.stopWorkers = async () => {
      for (const stop of stops.splice(0).reverse()) await stop();
    };
    for (let i = 0; i < o.workers; i += 1) {
      stops.push(
        await startWorkers({
          sql: db.sql,
          boss,
          clock,
          log,
          config,
          policy: o.policy,
          stripe: createStripeClient(config),
        }),
      );
    }

    print(
      `Demo: ${o.customers} failing renewals over ${o.days} simulated days in about ${o.seconds} s (1 s = ${((o.days * 24) / o.seconds).toFixed(1)} simulated hours).`,
    );
    print(
      `Stripe sandbox ${sandbox.url} (${limits.account.perSecond} requests/s, ${limits.endpoint.perSecond}/s per endpoint), webhooks to http://127.0.0.1:${port}/webhooks/stripe, mail catcher ${catcher.url}, database ${o.database}${db.kept ? ' (kept)' : ''}.`,
    );
    const run = (kept?.runs ?? (db.kept ? 1 : 0)) + 1;
    // Time runs from here, not from when setup began: under load setup takes seconds, which the
    // scale made simulated days, so a short demo could end before the worker sent anything.
    const held = clock.run();
    const s0 = clock.scaled;
    await moveQueuedJobs(
      db.sql,
      { simStart: held.simStart, realStart: held.realStart, scale: held.scale, frozenAt: held.simStart },
      { simStart: s0.simStart, realStart: s0.realStart, scale: s0.scale },
    );
    // The same seed makes the same people again: a kept run's customers get their own addresses.
    await driveCycle({ o, clock, sandbox, catcher, db, config, print, start, emailTag: run > 1 ? `run${run}` : null });

    // Stop charging first (a charge started now would run against stopped time, before the
    // moment it was planned for), then stop time, let in-flight webhooks land and be applied, and
    // stop the remaining workers.
    for (const queue of [QUEUES.attempts, QUEUES.deadlines]) await boss.offWork(queue, { wait: true });
    clock.freeze();
    await sandbox.flushWebhooks();
    await settle(db, 15_000);
    await parts.stopWorkers();
    parts.stopWorkers = null;
    const s = clock.scaled;
    saveDemoState(o.stateFile, {
      format: DEMO_STATE_FORMAT,
      runs: run,
      clock: { simStart: s.simStart, realStart: s.realStart, scale: s.scale, frozenAt: clock.now().getTime() },
      sandbox: sandbox.saveState(),
    });
    print(
      `${progressLine(clock.now(), config.defaultTimeZone, await takeSnapshot(db.sql), o.customers, o.customers)}  (final)`,
    );

    const zone = config.defaultTimeZone;
    const period = resolvePeriod({
      from: DateTime.fromJSDate(start, { zone }).toISODate(),
      to: DateTime.fromJSDate(clock.now(), { zone }).toISODate(),
      timeZone: zone,
      now: clock.now(),
    });
    const report = await loadReport(db.sql, { period, currency: null, asOf: clock.now() });
    const query = `from=${period.fromDate}&to=${period.toDate}`;
    return {
      report,
      start,
      clock,
      databaseUrl: db.url,
      mailDir: o.mailDir,
      emails: catcher.messages.length,
      mails: catcher.messages.slice(),
      charges: sandbox.charges(),
      rateLimited: sandbox.rateLimited(),
      deliveries: sandbox.deliveries(),
      dashboardUrl: `http://127.0.0.1:${port}/reports?${query}`,
      token,
      stop: () => closeParts(parts, log),
    };
  } catch (err) {
    await closeParts(parts, log);
    throw err;
  }
}

/** Waits (bounded) until every stored webhook event has been applied. */
async function settle(db: DemoDatabase, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = await db.sql`select count(*)::int as pending from stripe_events where status = 'pending'`;
    if ((row?.pending ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

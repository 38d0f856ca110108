import { parseArgs } from 'node:util';
import { systemClock } from '../clock.ts';
import { billingStatusRoutesFor } from '../http/billing-status.ts';
import { healthRoutes } from '../http/health.ts';
import { closeServer, createServer, listen } from '../http/server.ts';
import { updateCardRoutesFor } from '../http/update-card.ts';
import { webhookRoutes } from '../http/webhook.ts';
import { surviveLostConnections } from '../postgres-guard.ts';
import { startQueue } from '../queue.ts';
import { listenUnavailable } from '../unavailable.ts';
import { REPORT_POOL_SIZE, reportRoutes } from '../reports/routes.ts';
import { openRuntime } from '../runtime.ts';
import { createStripeClient } from '../stripe/client.ts';
import { createThrottle } from '../stripe/throttle.ts';
import { opsRoutesFor } from '../ops/mount.ts';
import { startWorkers } from '../worker.ts';
import { UsageError, type Command } from './types.ts';

const ROLES = ['web', 'worker', 'all'] as const;
type Role = (typeof ROLES)[number];

export const startCommand: Command = {
  name: 'start',
  summary: 'run the webhook receiver and/or the background workers until stopped',
  help: `Usage: dunning start [--role web|worker|all]

Applies pending migrations, starts the job queue, then:
  web     the HTTP server on HOST:PORT: POST /webhooks/stripe (signed Stripe events, stored
          and queued), GET /healthz, the reports at /reports* when REPORTS_TOKEN is set, the
          ops pages at /ops* when OPS_TOKENS or REPORTS_TOKEN is set (docs/ops.md), and
          GET /update-card (the signed update-card links in emails) when PUBLIC_URL is set, and
          the billing status API and banner at /api/v1/customers/* and /embed/* when API_KEYS
          is set (docs/billing-status.md)
  worker  the background workers: Stripe event processing, retries, reminders, ops alerts
  all     both (default)

Run several workers against one database to share the load; a web process only needs the
database. STRIPE_WEBHOOK_SECRET is required for web (comma-separated for rotation), and
STRIPE_SECRET_KEY for any role when PUBLIC_URL is set (links are signed with a key derived from it).
SIGTERM, SIGINT or SIGHUP stops gracefully: no new requests or jobs, in-flight ones finish; a second
signal exits at once.`,
  async run(argv, env) {
    const { values } = parseArgs({ args: argv, options: { role: { type: 'string', default: 'all' } }, strict: true });
    const role = values.role as Role;
    if (!ROLES.includes(role))
      throw new UsageError(`--role: expected one of ${ROLES.join(', ')}, got "${values.role}"`);
    const web = role !== 'worker';
    const work = role !== 'web';

    // With PUBLIC_URL, workers sign update-card links and the web role opens portal sessions: both need the key.
    const rt = await openRuntime(env, {
      require: web ? ['webhook', 'cardLinks'] : ['cardLinks'],
      // The ops pages plan attempts as the workers do, so they need the policy too.
      policy: work || Boolean(env.OPS_TOKENS?.trim()),
      reportPoolSize: web ? REPORT_POOL_SIZE : undefined,
    });
    const { config, log, sql } = rt;
    surviveLostConnections(log);
    const clock = systemClock;
    const boss = await startQueue(rt.databaseUrl, log);
    let queueRunning = true;
    boss.on('stopped', () => {
      queueRunning = false;
    });

    const shutdown: Array<() => Promise<void>> = [];
    try {
      const stripe = config.stripeSecretKey ? createStripeClient(config) : null;
      // One throttle for every Stripe call of the process: the workers' and the update-card clicks'.
      const gateway = stripe ? { stripe, throttle: createThrottle(config.stripeRequestsPerSecond) } : undefined;
      if (work) {
        shutdown.push(
          await startWorkers({
            sql,
            boss,
            clock,
            log,
            config,
            policy: rt.policy,
            stripe,
            ...(gateway ? { throttle: gateway.throttle } : {}),
          }),
        );
      }
      if (web) {
        const server = createServer({
          log: log.child({ component: 'http' }),
          routes: {
            ...webhookRoutes({
              sql,
              boss,
              secrets: config.webhookSecrets,
              toleranceSeconds: config.webhookToleranceSeconds,
            }),
            ...healthRoutes({ sql, queueRunning: () => queueRunning }),
            ...reportRoutes({ sql: rt.reportSql, config, clock, log }),
            ...updateCardRoutesFor(config, { clock, gateway }),
            ...opsRoutesFor({ sql, boss, clock, log, config, policy: rt.policy }),
            ...billingStatusRoutesFor(config, { sql, clock }),
          },
        });
        const port = await listen(server, config.port, config.host).catch((err: unknown) => {
          throw listenUnavailable(config.host, config.port, err) ?? err;
        });
        log.info(
          {
            host: config.host,
            port,
            role,
            webhookSecretCount: config.webhookSecrets.length,
            updateCardLinks: config.publicUrl !== null,
          },
          'listening',
        );
        // Stop accepting first, so nothing new arrives while workers drain.
        shutdown.unshift(() => closeServer(server));
      }
    } catch (err) {
      await boss.stop({ graceful: false }).catch(() => {});
      await rt.close();
      throw err;
    }
    log.info({ role }, 'dunning started');

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
      // The terminal closed: stop as on Ctrl-C.
      process.once('SIGHUP', () => resolve('SIGHUP'));
    });
    log.info({ signal }, 'shutting down: finishing in-flight requests and jobs');
    const force = () => {
      log.warn({}, 'second signal: exiting now');
      process.exit(130);
    };
    process.once('SIGTERM', force);
    process.once('SIGINT', force);
    process.once('SIGHUP', force);
    for (const stop of shutdown) await stop();
    await boss.stop({ graceful: true, timeout: 30_000 });
    await rt.close();
    log.info({}, 'stopped');
    return 0;
  },
};

import type { PgBoss } from 'pg-boss';
import type Stripe from 'stripe';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { Sql } from './db.ts';
import { assignCohort, choosePolicy, policyBody, type Policy } from './dunning/policy.ts';
import type { SegmentFacts } from './dunning/segments.ts';
import { createUnknownCodeReporter, type Classification } from './dunning/declines.ts';
import { createDunningHooks } from './dunning/hooks.ts';
import type { BackfillDeps } from './dunning/backfill.ts';
import { startRetryWorkers, type RetryWorkerOptions } from './dunning/runner.ts';
import { createPolicySource, type SchedulerDeps } from './dunning/scheduler.ts';
import { combineHooks, type DomainHooks } from './events/hooks.ts';
import { startEventWorker, startOrphanSweep, type ProcessorDeps } from './events/processor.ts';
import { startAttemptOrphanSweep } from './dunning/orphans.ts';
import type { Logger } from './log.ts';
import { QUEUES } from './queue.ts';
import {
  readWithRetries,
  retrieveCustomer,
  retrieveInvoice,
  retrieveInvoiceCharges,
  type StripeGateway,
} from './stripe/charge.ts';
import { createThrottle, type Throttle } from './stripe/throttle.ts';
import { createReminderHooks, type ReminderHooks } from './reminders/hooks.ts';
import { parseReminderPolicy } from './reminders/policy.ts';
import { startReminderWorkers } from './reminders/worker.ts';
import { startCardExpiryScan } from './reminders/card-expiry-scan.ts';
import { createLearnedSource, startAdaptiveRefresh, type LearnedSource } from './dunning/adaptive-refresh.ts';

/**
 * The one place where background work is wired: which hooks react to Stripe events and which
 * queues this process works. A new worker or hook is added here, nowhere else.
 */
export interface WorkerDeps {
  sql: Sql;
  boss: PgBoss;
  clock: Clock;
  log: Logger;
  config: Config;
  policy: Policy;
  /** Without it (no STRIPE_SECRET_KEY) events are still stored and applied, but nothing is charged. */
  stripe: Stripe | null;
  /** The process's Stripe throttle when something else in it calls Stripe too (the update-card route); else one is made. */
  throttle?: Throttle;
  /** More hooks, called after the built-in ones (tests, the demo). */
  extraHooks?: DomainHooks[];
  /** The learned-timing snapshot the planners read; one per process, made here when absent. */
  learned?: LearnedSource;
}

export function processorDeps(
  deps: Pick<WorkerDeps, 'clock' | 'log' | 'policy'>,
  hooks: DomainHooks,
  gateway?: StripeGateway,
  reportUnknownCodes?: (c: Classification) => void,
): ProcessorDeps {
  const { policy } = deps;
  return {
    clock: deps.clock,
    log: deps.log.child({ component: 'events' }),
    hooks,
    policy: { version: policy.version, body: policyBody(policy) },
    ...(policy.segments
      ? {
          choosePolicy: (facts: SegmentFacts) => {
            const chosen = choosePolicy(policy, facts);
            return {
              name: chosen.name,
              version: chosen.policy.version,
              body: policyBody(chosen.policy),
              rule: chosen.rule,
            };
          },
        }
      : {}),
    assignCohort: (invoiceId) => assignCohort(invoiceId, deps.policy),
    ...(gateway
      ? {
          fetchCustomer: (id: string) => retrieveCustomer(gateway, id),
          fetchInvoice: (id: string) => retrieveInvoice(gateway, id),
          // Asked again while Stripe is busy (three tries within about 1.5 s), as customer reads are:
          // without the list a failure is matched by time.
          fetchInvoiceCharges: (id: string) =>
            readWithRetries(() => retrieveInvoiceCharges(gateway, id), { tries: 3, firstDelayMs: 500 }),
        }
      : {}),
    ...(reportUnknownCodes ? { reportUnknownCodes } : {}),
  };
}

/**
 * The hooks every path that changes cases must call, built once here: the workers (events, retry
 * runner) and the ops commands (`retry-now`, `pause`, `resume`, `backfill`) get the same reactions,
 * so a manual recovery still thanks the customer and a resumed case still warns before its final
 * attempt.
 */
export interface Wiring {
  reminders: ReminderHooks;
  /** For `planNext` and friends: plans an attempt and tells the reminders. */
  scheduler: SchedulerDeps;
  /** For the event processor. */
  hooks: DomainHooks;
  /** For `startRetryWorkers` / `runnerDeps`. */
  runner: Pick<RetryWorkerOptions, 'onAttemptPlanned' | 'onCaseClosed' | 'onMerchantError'>;
  /** For `backfill`. */
  onCaseOpened: NonNullable<BackfillDeps['onCaseOpened']>;
}

export function wireHooks(
  deps: Pick<WorkerDeps, 'boss' | 'clock' | 'log' | 'config' | 'policy' | 'extraHooks' | 'learned'>,
): Wiring {
  const { boss, clock, log, config, policy } = deps;
  const reminders = createReminderHooks({ boss, clock, log, config, policy: parseReminderPolicy(policy.reminders) });
  const runner = {
    onAttemptPlanned: reminders.attemptPlanned.bind(reminders),
    onCaseClosed: reminders.caseClosed.bind(reminders),
    onMerchantError: reminders.merchantError.bind(reminders),
  };
  const scheduler: SchedulerDeps = {
    boss,
    clock,
    log,
    merchantTimeZone: config.defaultTimeZone,
    policies: createPolicySource(policy),
    learned: deps.learned ?? createLearnedSource(),
    onAttemptPlanned: runner.onAttemptPlanned,
    onMerchantError: runner.onMerchantError,
    // Stripe's pause_collection holds reminders as `dunning pause` does.
    onCaseHeld: reminders.casePaused.bind(reminders),
    onCaseReleased: reminders.caseResumed.bind(reminders),
  };
  return {
    reminders,
    scheduler,
    hooks: combineHooks(createDunningHooks(scheduler), reminders, ...(deps.extraHooks ?? [])),
    runner,
    onCaseOpened: (tx, e) => reminders.paymentFailed(tx, { ...e, opened: true }),
  };
}

/** Starts every worker of this process; the returned function stops them, letting running jobs finish. */
export async function startWorkers(deps: WorkerDeps): Promise<() => Promise<void>> {
  const { sql, boss, clock, log, config, policy } = deps;
  const learned = deps.learned ?? createLearnedSource();
  const wiring = wireHooks({ ...deps, learned });
  const stops: Array<() => Promise<void>> = [];
  // One throttle for every Stripe call of the process: customer reads, invoice reads, charges, portal sessions.
  const throttle = deps.throttle ?? createThrottle(config.stripeRequestsPerSecond);
  const gateway = deps.stripe ? { stripe: deps.stripe, throttle } : undefined;
  // One per process: a code Stripe adds is logged once, wherever a decline first shows it.
  const reportUnknownCodes = createUnknownCodeReporter(log.child({ component: 'declines' }));

  await startEventWorker(boss, sql, processorDeps(deps, wiring.hooks, gateway, reportUnknownCodes), {
    maxTries: config.eventMaxTries,
    concurrency: config.workerConcurrency,
  });
  stops.push(() => boss.offWork(QUEUES.stripeEvents, { wait: true }));
  // A job in retry or running still counts as live; the grace only keeps clear of a replay or a
  // delivery being committed while the sweep reads.
  stops.push(startOrphanSweep(sql, log.child({ component: 'events' }), { everyMs: 5 * 60_000, graceSeconds: 15 * 60 }));

  if (deps.stripe) {
    stops.push(
      await startRetryWorkers({
        sql,
        boss,
        stripe: deps.stripe,
        clock,
        log,
        config,
        policy,
        throttle,
        learned,
        leaseMs: config.attemptLeaseSeconds * 1000,
        ...wiring.runner,
        reportUnknownCodes,
      }),
    );
    // An attempt without a live job would block its invoice for ever: it gets a new one.
    stops.push(
      startAttemptOrphanSweep(sql, { boss, clock }, log.child({ component: 'retry-runner' }), {
        everyMs: 5 * 60_000,
        graceSeconds: 15 * 60,
      }),
    );
  } else {
    log.warn({}, 'STRIPE_SECRET_KEY not set: retries are planned but not run');
  }
  stops.push(
    await startReminderWorkers({
      sql,
      boss,
      clock,
      log,
      config,
      policy: parseReminderPolicy(policy.reminders),
      ...(gateway ? { gateway } : {}),
    }),
  );
  // Stripe sends no expiry warning for PaymentMethod cards: a daily scan of the expiries we keep does.
  stops.push(
    await startCardExpiryScan({
      sql,
      boss,
      clock,
      log,
      policy: parseReminderPolicy(policy.reminders),
      reminders: wiring.reminders,
      timeZone: config.defaultTimeZone,
      ...(gateway ? { gateway } : {}),
    }),
  );
  // The learned retry timing: counted from the ledger once a day, read by the planners above.
  stops.push(
    await startAdaptiveRefresh({
      sql,
      boss,
      clock,
      log,
      mode: policy.retry.adaptive,
      merchantTimeZone: config.defaultTimeZone,
      source: learned,
    }),
  );
  log.info({ concurrency: config.workerConcurrency }, 'workers started');

  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}

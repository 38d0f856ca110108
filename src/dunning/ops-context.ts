import type { PgBoss } from 'pg-boss';
import { systemClock, type Clock } from '../clock.ts';
import { startQueue } from '../queue.ts';
import { openRuntime, type Runtime } from '../runtime.ts';
import { createStripeClient } from '../stripe/client.ts';
import { createThrottle } from '../stripe/throttle.ts';
import { plainMoney } from '../money.ts';
import { wireHooks, type Wiring } from '../worker.ts';
import type { Policy } from './policy.ts';
import { runnerDeps, type RunnerDeps } from './runner.ts';
import type { SchedulerDeps } from './scheduler.ts';

/** The shell the ops commands share: runtime, queue (for planned jobs), policy and, if asked, Stripe. */
export interface OpsContext {
  rt: Runtime;
  boss: PgBoss;
  clock: Clock;
  policy: Policy;
  scheduler: SchedulerDeps;
  /** The same hooks the workers call (src/worker.ts): reminders and ops alerts follow ops actions too. */
  wiring: Wiring;
  /** Only when opened with `stripe: true`. */
  runner: RunnerDeps | null;
  close(): Promise<void>;
}

export async function openOps(env: NodeJS.ProcessEnv, options: { stripe?: boolean } = {}): Promise<OpsContext> {
  const rt = await openRuntime(env, { logLevel: 'warn', require: options.stripe ? ['stripe'] : [], policy: true });
  let boss: PgBoss;
  try {
    boss = await startQueue(rt.databaseUrl, rt.log);
  } catch (err) {
    await rt.close();
    throw err;
  }
  const clock = systemClock;
  const policy = rt.policy;
  const wiring = wireHooks({ boss, clock, log: rt.log, config: rt.config, policy });
  const runner = options.stripe
    ? runnerDeps({
        sql: rt.sql,
        boss,
        clock,
        log: rt.log,
        policy,
        config: rt.config,
        stripe: createStripeClient(rt.config),
        throttle: createThrottle(rt.config.stripeRequestsPerSecond),
        ...wiring.runner,
      })
    : null;
  return {
    rt,
    boss,
    clock,
    policy,
    scheduler: wiring.scheduler,
    wiring,
    runner,
    async close() {
      await boss.stop({ graceful: true, timeout: 5_000 });
      await rt.close();
    },
  };
}

/** `49.00 EUR` from minor units. */
export const money = plainMoney;

/** `2026-03-03 08:00Z`: compact, unambiguous, sortable. */
export function when(d: Date | null): string {
  return d ? `${d.toISOString().slice(0, 16).replace('T', ' ')}Z` : '-';
}

/** A plain text table with a header row; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

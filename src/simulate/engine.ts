/**
 * A fast, in-memory discrete-event simulation of dunning: each failed renewal runs through retries
 * (timed by a strategy), reminders and card updates, with the sandbox's issuer model deciding every
 * charge. No database, no HTTP, no clock: a seed replays the same story.
 */
import type { Member } from '../demo/population.ts';
import { DEFAULT_POLICY_NAME } from '../dunning/segments.ts';
import { createRng, decideCardUpdate, decideCharge, type Rng } from '../sandbox/issuer-model.ts';
import { sandboxIssuer, type IssuerModel } from './issuers.ts';
import type { SimAttempt, SimCase, Strategy } from './strategies.ts';
import { addViolations, countViolations, noViolations, type Violations } from './violations.ts';

export interface SimSettings {
  seed: number;
  /** Instant the population's billing week starts. */
  start: Date;
  /** Who answers the charges; the sandbox's model when absent. */
  issuer?: IssuerModel;
}

export interface CaseResult {
  key: string;
  currency: string;
  amount: number;
  /** Why the renewal failed: the first decline's reason. */
  reason: string;
  /** The named policy the case ran (segment rules), `default` when none applied. */
  policy: string;
  recovered: boolean;
  /** Charges after Stripe's failed renewal: scheduled retries and card-update charges. */
  charges: number;
  violations: Violations;
  attempts: SimAttempt[];
}

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** A strategy that keeps proposing retries cannot loop forever. */
const MAX_STEPS = 200;

/**
 * Each member gets its own random streams, one for the issuer and one for the customer, so every
 * strategy meets the same customers: retries drawing on the issuer stream cannot change whether a
 * customer answers a reminder.
 */
export function memberRng(seed: number, index: number, stream: number): Rng {
  return createRng((seed * 0x9e3779b1 + index * 0x85ebca6b + stream * 0xc2b2ae35) >>> 0);
}

export function simulateCase(member: Member, index: number, outer: Strategy, s: SimSettings): CaseResult {
  const segment = outer.segment?.(member);
  const strategy = segment?.strategy ?? outer;
  const issuer = memberRng(s.seed, index, 1);
  const customer = memberRng(s.seed, index, 2);
  const openedAt = new Date(s.start.getTime() + member.failsAfterMs);
  const cause = (s.issuer ?? sandboxIssuer).open(member, openedAt, memberRng(s.seed, index, 3));
  // Each strategy's own window: a baseline must not move with the policy under test.
  const windowEnd = openedAt.getTime() + strategy.windowDays * DAY;
  const reminders = strategy.reminderHours
    .map((h) => openedAt.getTime() + h * HOUR)
    .filter((t) => t < windowEnd)
    .sort((a, b) => a - b);
  const c: SimCase = {
    invoiceId: `in_sim_${member.key}`,
    openedAt,
    timeZone: member.timeZone,
    country: member.country,
    cardBrand: member.card.brand,
    attempts: [{ at: openedAt, card: 0, source: 'stripe', ok: false, reason: member.card.failure }],
  };
  let recovered = member.card.failure === null;
  let reminderIdx = 0;
  for (let step = 0; step < MAX_STEPS && !recovered; step += 1) {
    const last = c.attempts[c.attempts.length - 1] as SimAttempt;
    const proposed = strategy.nextRetry(c);
    // A strategy must move forward in time, within its window (a retry on its last day counts).
    const retryAt =
      proposed !== null && proposed.getTime() > last.at.getTime() && proposed.getTime() <= windowEnd
        ? proposed.getTime()
        : Infinity;
    const reminderAt = reminders[reminderIdx] ?? Infinity;
    if (retryAt === Infinity && reminderAt === Infinity) break;
    if (reminderAt <= retryAt) {
      reminderIdx += 1;
      if (!decideCardUpdate(member.cardUpdateProbability, customer)) continue;
      // The customer put in a working card: every strategy charges it at once.
      const at = new Date(Math.max(reminderAt, last.at.getTime() + 1));
      const ok = decideCharge(
        { reason: null, cardBrand: member.card.brand, firstFailedAt: null, at, timeZone: member.timeZone },
        issuer,
      ).ok;
      c.attempts.push({ at, card: last.card + 1, source: 'card_update', ok, reason: null });
      recovered = ok;
      continue;
    }
    const at = new Date(retryAt);
    const ok = cause.charge(at, issuer);
    c.attempts.push({ at, card: last.card, source: 'scheduled', ok, reason: ok ? null : member.card.failure });
    recovered = ok;
  }
  return {
    key: member.key,
    currency: member.currency,
    amount: member.amount,
    reason: member.card.failure ?? 'none',
    policy: segment?.policy ?? DEFAULT_POLICY_NAME,
    recovered,
    charges: c.attempts.length - 1,
    violations: countViolations(c.attempts, member.card.brand),
    attempts: c.attempts,
  };
}

export interface CurrencyTotals {
  currency: string;
  opened: number;
  openedAmount: number;
  recovered: number;
  recoveredAmount: number;
}

export interface StrategyResult {
  name: string;
  describe: string;
  cases: number;
  recovered: number;
  charges: number;
  violations: Violations;
  byCurrency: CurrencyTotals[];
  /** Cases and recoveries per failure reason, to see where a policy wins or loses. */
  byReason: Array<{ reason: string; cases: number; recovered: number }>;
  /** Cases and recoveries per named policy (segment rules); one `default` row without segments. */
  byPolicy: Array<{ policy: string; cases: number; recovered: number }>;
}

export function summarize(strategy: Strategy, results: readonly CaseResult[]): StrategyResult {
  const byCurrency = new Map<string, CurrencyTotals>();
  const violations = noViolations();
  const byReason = new Map<string, { reason: string; cases: number; recovered: number }>();
  const byPolicy = new Map<string, { policy: string; cases: number; recovered: number }>();
  let recovered = 0;
  let charges = 0;
  for (const r of results) {
    const t = byCurrency.get(r.currency) ?? {
      currency: r.currency,
      opened: 0,
      openedAmount: 0,
      recovered: 0,
      recoveredAmount: 0,
    };
    t.opened += 1;
    t.openedAmount += r.amount;
    if (r.recovered) {
      t.recovered += 1;
      t.recoveredAmount += r.amount;
      recovered += 1;
    }
    charges += r.charges;
    const why = byReason.get(r.reason) ?? { reason: r.reason, cases: 0, recovered: 0 };
    why.cases += 1;
    if (r.recovered) why.recovered += 1;
    byReason.set(r.reason, why);
    const pol = byPolicy.get(r.policy) ?? { policy: r.policy, cases: 0, recovered: 0 };
    pol.cases += 1;
    if (r.recovered) pol.recovered += 1;
    byPolicy.set(r.policy, pol);
    addViolations(violations, r.violations);
    byCurrency.set(r.currency, t);
  }
  return {
    name: strategy.name,
    describe: strategy.describe,
    cases: results.length,
    recovered,
    charges,
    violations,
    byCurrency: [...byCurrency.values()].sort((a, b) => a.currency.localeCompare(b.currency)),
    byReason: [...byReason.values()].sort((a, b) => b.cases - a.cases || a.reason.localeCompare(b.reason)),
    byPolicy: [...byPolicy.values()].sort((a, b) => b.cases - a.cases || a.policy.localeCompare(b.policy)),
  };
}

export function simulateStrategy(population: readonly Member[], strategy: Strategy, s: SimSettings): StrategyResult {
  return summarize(
    strategy,
    population.map((m, i) => simulateCase(m, i, strategy, s)),
  );
}

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatePopulation } from '../../src/demo/population.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { comparePolicies, renderComparison, SIMULATION_START } from '../../src/simulate/compare.ts';
import { simulateCase, simulateStrategy, type SimSettings } from '../../src/simulate/engine.ts';
import { fixedSchedule, type SimAttempt } from '../../src/simulate/strategies.ts';
import { countViolations, totalViolations } from '../../src/simulate/violations.ts';

const cli = join(import.meta.dirname, '../../src/cli.ts');
const settings: SimSettings = { seed: 7, start: SIMULATION_START };
const H = 3_600_000;

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, 'simulate', ...args], {
    encoding: 'utf8',
    env: { ...process.env, DEFAULT_TIME_ZONE: 'Europe/Berlin' },
  });
}

describe('population', () => {
  it('is the same for a seed and spans currencies, languages and zones', () => {
    const a = generatePopulation({ seed: 3, customers: 400 });
    expect(generatePopulation({ seed: 3, customers: 400 })).toEqual(a);
    expect(generatePopulation({ seed: 4, customers: 400 })).not.toEqual(a);
    expect(new Set(a.map((m) => m.currency))).toEqual(new Set(['eur', 'usd', 'gbp', 'jpy']));
    expect(new Set(a.map((m) => m.locale))).toEqual(new Set(['en', 'de']));
    expect(new Set(a.map((m) => m.timeZone)).size).toBeGreaterThanOrEqual(6);
    const funds = a.filter((m) => m.card.failure === 'insufficient_funds').length / a.length;
    expect(funds).toBeGreaterThan(0.3);
    expect(funds).toBeLessThan(0.5);
  });
});

describe('comparePolicies', () => {
  const options = {
    seed: 11,
    customers: 300,
    policy: defaultPolicy(),
    policyLabel: 'default policy',
    merchantTimeZone: 'Europe/Berlin',
  };

  it('gives the same figures for the same seed and different ones for another seed', () => {
    const first = comparePolicies(options);
    expect(comparePolicies(options)).toEqual(first);
    expect(comparePolicies({ ...options, seed: 12 })).not.toEqual(first);
  });

  it('keeps the baselines where they are whatever the policy file says', () => {
    const other = defaultPolicy();
    other.retry.windowDays = 9;
    other.retry.maxAttempts = 3;
    other.reminders = {
      firstNotice: { enabled: false },
      lastChance: { hoursBefore: 120 },
      frequencyCap: { maxEmails: 1, perDays: 30 },
    };
    const [mine, fixed, none] = comparePolicies(options);
    const [theirs, fixed2, none2] = comparePolicies({ ...options, policy: other, policyLabel: 'policy other.json' });
    // The policy row does change, or the file never reached the simulation.
    expect(theirs).not.toEqual(mine);
    expect(fixed2).toEqual(fixed);
    expect(none2).toEqual(none);
  });

  it('retries 8 times over 14 days in the Stripe-like schedule, and not after a never-retry code', () => {
    const population = generatePopulation({ seed: 11, customers: 300 });
    const stripeLike = fixedSchedule({ retries: 8, days: 14 });
    const noReminders = { ...stripeLike, reminders: [] };
    const byReason = (reason: string) => population.findIndex((m) => m.card.failure === reason);
    const runOne = (i: number) => simulateCase(population[i]!, i, noReminders, settings);
    // Expired cards never pass and are not on Stripe's never-retry list: all 8 retries, the last on day 14.
    const expired = runOne(byReason('expired_card'));
    expect(expired.charges).toBe(8);
    const opened = expired.attempts[0]!.at.getTime();
    expect(expired.attempts.slice(1).map((a) => (a.at.getTime() - opened) / 86_400_000)).toEqual([
      1.75, 3.5, 5.25, 7, 8.75, 10.5, 12.25, 14,
    ]);
    // A stolen card is on it: Stripe stops at once.
    expect(runOne(byReason('stolen_card')).charges).toBe(0);
  });

  it('recovers least with no retries, and the planner keeps within the network rules', () => {
    const [policy, fixed, none] = comparePolicies(options);
    expect(none?.name).toBe('no retries');
    expect(none!.recovered).toBeLessThan(policy!.recovered);
    expect(none!.recovered).toBeLessThan(fixed!.recovered);
    expect(totalViolations(policy!.violations)).toBe(0);
    for (const r of [policy!, fixed!, none!]) {
      // Every case is counted once, in its own currency.
      expect(r.byCurrency.reduce((s, c) => s + c.opened, 0)).toBe(300);
      expect(r.byCurrency.reduce((s, c) => s + c.recovered, 0)).toBe(r.recovered);
    }
    // Cards that never recover by retrying are saved only by customers answering reminders, which
    // must not depend on the strategy: the same customers, the same answers.
    for (const reason of ['expired_card', 'lost_card', 'stolen_card', 'authentication_required']) {
      const rates = [policy!, fixed!, none!].map((r) => r.byReason.find((x) => x.reason === reason));
      expect(rates[0]!.cases).toBeGreaterThan(0);
      expect(rates[1]).toEqual(rates[0]);
      expect(rates[2]).toEqual(rates[0]);
    }
    const text = renderComparison([policy!, fixed!, none!], { seed: 11, customers: 300 });
    expect(text).toContain('== Recovery rate by failure reason');
    expect(text).toContain('== Stripe-like fixed schedule');
    expect(text).toMatch(/JPY .* [\d,]+ JPY/);
  });
});

describe('violations', () => {
  it('are counted when a deliberately bad schedule hammers every card', () => {
    const population = generatePopulation({ seed: 5, customers: 120 });
    const hammer = fixedSchedule({ retries: 60, days: 2, name: 'hammer', ignoreNeverRetry: true, reminders: [] });
    const result = simulateStrategy(population, hammer, settings);
    expect(result.violations.over30d).toBeGreaterThan(0);
    expect(result.violations.afterNeverRetry).toBeGreaterThan(0);
    expect(result.violations.mastercard24h).toBeGreaterThan(0);
  });

  it('counts each rule exactly on a hand-built card history', () => {
    const t0 = Date.parse('2026-03-02T06:00:00Z');
    const declines = (n: number, every: number, reason: SimAttempt['reason']): SimAttempt[] =>
      Array.from({ length: n }, (_, i) => ({
        at: new Date(t0 + i * every),
        card: 0,
        source: i === 0 ? 'stripe' : 'scheduled',
        ok: false,
        reason,
      }));
    // 12 Mastercard declines within 11 hours: the 11th and 12th exceed 10 in 24 h.
    expect(countViolations(declines(12, H, 'insufficient_funds'), 'mastercard')).toEqual({
      over30d: 0,
      afterNeverRetry: 0,
      mastercard24h: 2,
    });
    // 17 charges a day apart on a Visa card: the 16th and 17th exceed 15 in 30 days.
    expect(countViolations(declines(17, 24 * H, 'insufficient_funds'), 'visa')).toEqual({
      over30d: 2,
      afterNeverRetry: 0,
      mastercard24h: 0,
    });
    // A lost card retried twice; a new card (card 1) after it is fine.
    const lost = [
      ...declines(3, 48 * H, 'lost_card'),
      { at: new Date(t0 + 200 * H), card: 1, source: 'card_update' as const, ok: true, reason: null },
    ];
    expect(countViolations(lost, 'visa')).toEqual({ over30d: 0, afterNeverRetry: 2, mastercard24h: 0 });
  });
});

describe('dunning simulate', () => {
  it('prints the same table for the same seed, with a given policy file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'simulate-'));
    const file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ retry: { maxAttempts: 4 } }));
    const a = run(['--seed', '3', '--customers', '150', '--policy', file]);
    expect(a.stderr).toBe('');
    expect(a.status).toBe(0);
    expect(a.stdout).toContain('== policy policy.json: the planner with policy');
    expect(a.stdout).toContain('4 attempts in 28 days');
    expect(run(['--seed', '3', '--customers', '150', '--policy', file]).stdout).toBe(a.stdout);
  });

  it.each([
    [['--seed', 'abc'], '--seed: expected a whole number, got "abc"'],
    [['--customers', '0'], '--customers: expected 1 to 200000, got 0'],
    [['--policy', '/nonexistent/p.json'], '--policy: cannot read dunning policy file /nonexistent/p.json'],
    [['--colour'], "Unknown option '--colour'"],
  ])('rejects %j with exit code 2 and a clear message', (args, message) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });
});

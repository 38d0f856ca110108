import { describe, expect, it } from 'vitest';
import { generatePopulation, type Member } from '../../src/demo/population.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { SIMULATION_START } from '../../src/simulate/compare.ts';
import { populationCustomers, simulateCustomer, type SimSettings } from '../../src/simulate/engine.ts';
import type { IssuerModel } from '../../src/simulate/issuers.ts';
import { fixedSchedule, paymentMethodOf, plannerStrategy, type SimAttempt } from '../../src/simulate/strategies.ts';
import { countViolations, totalViolations } from '../../src/simulate/violations.ts';

const H = 3_600_000;
const DAY = 24 * H;
const t0 = Date.parse('2026-03-02T06:00:00Z');

/** An issuer whose cause never goes away: every retry is declined. */
const neverClears: IssuerModel = { open: () => ({ charge: () => false }) };

function attempt(hours: number, source: SimAttempt['source'], reason: SimAttempt['reason']): SimAttempt {
  return { at: new Date(t0 + hours * H), card: 0, source, ok: false, reason };
}

/** One customer, two subscriptions on one card, failing a day apart. */
function twoInvoices(reason: Member['card']['failure'], brand: string): Member[] {
  const [a, b] = generatePopulation({ seed: 21, customers: 2 }) as [Member, Member];
  const owner: Member = { ...a, card: { ...a.card, brand, failure: reason }, cardUpdateProbability: 0 };
  return [owner, { ...owner, key: b.key, failsAfterMs: owner.failsAfterMs + DAY }];
}

describe('violations per card across invoices', () => {
  it('count what a per-invoice counter misses', () => {
    // Invoice A: 9 charges a day apart; invoice B, same card, 8 charges a day apart from day 0.5.
    const a = Array.from({ length: 9 }, (_, i) =>
      attempt(i * 24, i === 0 ? 'stripe' : 'scheduled', 'insufficient_funds'),
    );
    const b = Array.from({ length: 8 }, (_, i) =>
      attempt(12 + i * 24, i === 0 ? 'stripe' : 'scheduled', 'insufficient_funds'),
    );
    expect(totalViolations(countViolations(a, 'visa')) + totalViolations(countViolations(b, 'visa'))).toBe(0);
    // 17 charges on one card within 9 days: the 16th and 17th break the 15-in-30-days limit.
    expect(countViolations([...a, ...b], 'visa')).toEqual({ over30d: 2, afterNeverRetry: 0, mastercard24h: 0 });

    // 6 Mastercard declines in 5 hours on each invoice: 12 declines of one card in 24 h.
    const burst = (from: number) =>
      Array.from({ length: 6 }, (_, i) => attempt(from + i, i === 0 ? 'stripe' : 'scheduled', 'generic_decline'));
    expect(totalViolations(countViolations(burst(0), 'mastercard'))).toBe(0);
    expect(countViolations([...burst(0), ...burst(0.5)], 'mastercard').mastercard24h).toBe(2);

    // A lost card on invoice A; invoice B (an earlier soft decline) is retried on it afterwards.
    const lost = [attempt(0, 'stripe', 'lost_card')];
    const soft = [attempt(-24, 'stripe', 'insufficient_funds'), attempt(24, 'scheduled', 'insufficient_funds')];
    expect(totalViolations(countViolations(soft, 'visa'))).toBe(0);
    expect(countViolations([...lost, ...soft], 'visa')).toEqual({ over30d: 0, afterNeverRetry: 1, mastercard24h: 0 });
  });

  it('are found when a schedule that is fine per invoice charges one card for two invoices', () => {
    const members = twoInvoices('generic_decline', 'visa');
    const customer = { key: 'c', invoices: members.map((member, index) => ({ member, index })) };
    const settings: SimSettings = { seed: 3, start: SIMULATION_START, issuer: neverClears };
    const nine = fixedSchedule({ retries: 9, days: 14, name: 'nine', reminders: [] });
    const [a, b] = simulateCustomer(customer, nine, settings);
    // Each invoice on its own: its renewal and 9 retries, 10 charges, within the limit.
    expect([a!.charges, b!.charges]).toEqual([9, 9]);
    expect(totalViolations(countViolations(a!.attempts, 'visa'))).toBe(0);
    expect(totalViolations(countViolations(b!.attempts, 'visa'))).toBe(0);
    // One card, 20 charges within 15 days: every charge past the 15th is a violation.
    expect(a!.violations.over30d + b!.violations.over30d).toBe(5);

    // The worker's planner, seeing the other invoice, keeps the card within 15 charges in 30 days.
    const policy = defaultPolicy();
    // A policy generous per invoice: 12 retries a day apart; 26 charges of the card if counted per invoice.
    policy.retry.maxAttempts = 13;
    policy.retry.categories.generic = { maxAttempts: 13, spacingHours: [24], stopAfterIdenticalDeclines: 13 };
    const planner = plannerStrategy(policy, 'Europe/Berlin');
    const [pa, pb] = simulateCustomer(customer, { ...planner, reminders: [] }, settings);
    expect(totalViolations(pa!.violations) + totalViolations(pb!.violations)).toBe(0);
    const all = [...pa!.attempts, ...pb!.attempts].map((x) => x.at.getTime()).sort((x, y) => x - y);
    for (const t of all) expect(all.filter((u) => u > t - 30 * DAY && u <= t).length).toBeLessThanOrEqual(15);
    expect(all.length).toBe(15);
  });
});

describe('the simulated population', () => {
  const population = generatePopulation({ seed: 11, customers: 600 });
  const customers = populationCustomers(population, 11);

  it('has customers with several failing invoices on one card', () => {
    const several = customers.filter((c) => c.invoices.length > 1);
    expect(several.length).toBeGreaterThan(20);
    for (const c of several) for (const inv of c.invoices) expect(inv.member.card).toEqual(c.invoices[0]!.member.card);
    expect(customers.flatMap((c) => c.invoices.map((i) => i.index))).toEqual(population.map((_, i) => i));
  });

  it('re-adds cards under new payment method ids, and the default policy breaks no rule per card', () => {
    const strategy = plannerStrategy(defaultPolicy(), 'Europe/Berlin');
    const results = customers.flatMap((c) => simulateCustomer(c, strategy, { seed: 11, start: SIMULATION_START }));
    const readded = results.flatMap((r) =>
      r.attempts.filter((a) => a.paymentMethod !== undefined && a.paymentMethod !== paymentMethodOf(a.card)),
    );
    // Charges of a re-added card under its new id: the same card (fingerprint), another id.
    expect(readded.length).toBeGreaterThan(0);
    expect(results.reduce((n, r) => n + totalViolations(r.violations), 0)).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { generatePopulation } from '../../src/demo/population.ts';
import { parsePolicy } from '../../src/dunning/policy.ts';
import { comparePolicies, renderComparison } from '../../src/simulate/compare.ts';
import { segmentedPlannerStrategy } from '../../src/simulate/strategies.ts';

describe('simulate with segment rules', () => {
  const seed = 5;
  const customers = 300;
  // Large USD invoices get a policy of their own; the rest keep the default.
  const policy = parsePolicy({
    policies: { 'high-value': { retry: { windowDays: 60 } } },
    segments: [{ policy: 'high-value', match: { currencies: ['usd'], amount: { min: 5_000 } } }],
  });
  const highValue = generatePopulation({ seed, customers }).filter((m) => m.currency === 'usd' && m.amount >= 5_000);

  it('runs each case under the policy its rule picks and breaks the policy row down by policy', () => {
    expect(highValue.length).toBeGreaterThan(0);
    const results = comparePolicies({ seed, customers, policy, policyLabel: 'segmented', merchantTimeZone: 'UTC' });
    const byPolicy = Object.fromEntries(results[0]!.byPolicy.map((p) => [p.policy, p.cases]));
    expect(byPolicy).toEqual({ 'high-value': highValue.length, default: customers - highValue.length });
    // The fixed schedules have no segments: every case is `default` there.
    expect(results[1]!.byPolicy.map((p) => p.policy)).toEqual(['default']);
    const text = renderComparison(results, { seed, customers });
    expect(text).toContain('== segmented by policy');
    expect(text).toMatch(/high-value\s+\d+/);
  });

  it("a case picked by a rule runs that policy's window; the others the default's", () => {
    const strategy = segmentedPlannerStrategy(policy, 'UTC');
    const other = generatePopulation({ seed, customers }).find((m) => m.currency !== 'usd')!;
    expect(strategy.segment!(highValue[0]!)).toMatchObject({ policy: 'high-value', strategy: { windowDays: 60 } });
    expect(strategy.segment!(other)).toMatchObject({ policy: 'default', strategy: { windowDays: 28 } });
    expect(
      renderComparison(
        comparePolicies({ seed, customers: 20, policy: parsePolicy({}), policyLabel: 'p', merchantTimeZone: 'UTC' }),
        { seed, customers: 20 },
      ),
    ).not.toContain('by policy');
  });
});

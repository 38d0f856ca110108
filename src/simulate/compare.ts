/**
 * `dunning simulate`'s pure core: one seeded population, three strategies (the merchant's policy,
 * a Stripe-like fixed schedule and no retries), one table each.
 */
import { generatePopulation } from '../demo/population.ts';
import type { Policy } from '../dunning/policy.ts';
import { majorUnits, minorDigits } from '../money.ts';
import { simulateStrategy, type SimSettings, type StrategyResult } from './engine.ts';
import { fixedSchedule, noRetries, segmentedPlannerStrategy, STRIPE_LIKE, type Strategy } from './strategies.ts';
import { totalViolations } from './violations.ts';

export interface CompareOptions {
  seed: number;
  customers: number;
  policy: Policy;
  /** Label for the policy row: the file name, or "default policy". */
  policyLabel: string;
  merchantTimeZone: string;
  /** Fixed so a seed gives the same answer on every day it is run. */
  start?: Date;
}

export const SIMULATION_START = new Date('2026-03-02T00:00:00Z');

export function standardStrategies(policy: Policy, policyLabel: string, merchantTimeZone: string): Strategy[] {
  return [
    segmentedPlannerStrategy(policy, merchantTimeZone, policyLabel),
    fixedSchedule({ ...STRIPE_LIKE, name: 'Stripe-like fixed schedule' }),
    noRetries,
  ];
}

export function comparePolicies(o: CompareOptions): StrategyResult[] {
  const population = generatePopulation({ seed: o.seed, customers: o.customers });
  const settings: SimSettings = { seed: o.seed, start: o.start ?? SIMULATION_START };
  return standardStrategies(o.policy, o.policyLabel, o.merchantTimeZone).map((s) =>
    simulateStrategy(population, s, settings),
  );
}

/** `12,345.00 EUR`: grouped, since simulated totals run into the thousands. */
export function formatMoney(amount: number, currency: string): string {
  const digits = minorDigits(currency);
  const major = majorUnits(amount, currency).toLocaleString('en', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  return `${major} ${currency.toUpperCase()}`;
}

function pct(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)} %`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '))
    .join('\n');
}

export function renderComparison(results: readonly StrategyResult[], o: { seed: number; customers: number }): string {
  const out: string[] = [
    `Simulated ${o.customers} failed renewals (seed ${o.seed}); the same customers and odds for every policy.`,
    '',
  ];
  for (const r of results) {
    const v = r.violations;
    out.push(`== ${r.name}: ${r.describe}`);
    out.push(
      table([
        ['currency', 'failed', 'recovered', 'rate', 'failed revenue', 'recovered revenue', 'revenue rate'],
        ...r.byCurrency.map((c) => [
          c.currency.toUpperCase(),
          String(c.opened),
          String(c.recovered),
          pct(c.recovered, c.opened),
          formatMoney(c.openedAmount, c.currency),
          formatMoney(c.recoveredAmount, c.currency),
          pct(c.recoveredAmount, c.openedAmount),
        ]),
      ]).replace(/^/gm, '  '),
    );
    out.push(
      `  recovered ${r.recovered} of ${r.cases} (${pct(r.recovered, r.cases)}); charges used ${r.charges} (${(r.cases === 0 ? 0 : r.charges / r.cases).toFixed(2)} per case); reminder emails ${r.emails} (${(r.cases === 0 ? 0 : r.emails / r.cases).toFixed(2)} per case)`,
    );
    out.push(
      `  network-rule violations: ${totalViolations(v)} (over 15 per card in 30 days: ${v.over30d}; after a never-retry answer: ${v.afterNeverRetry}; Mastercard over 10 declines in 24 h: ${v.mastercard24h})`,
    );
    out.push('');
  }
  const reasons = results[0]?.byReason ?? [];
  if (reasons.length > 0) {
    out.push('== Recovery rate by failure reason');
    out.push(
      table([
        ['reason', 'cases', ...results.map((r) => r.name)],
        ...reasons.map((why) => [
          why.reason,
          String(why.cases),
          ...results.map((r) => {
            const row = r.byReason.find((x) => x.reason === why.reason);
            return row ? pct(row.recovered, row.cases) : '-';
          }),
        ]),
      ]).replace(/^/gm, '  '),
    );
    out.push('');
  }
  // Only the policy row has segments; the fixed schedules run every case alike.
  const policies = results[0]?.byPolicy ?? [];
  if (policies.some((p) => p.policy !== 'default')) {
    out.push(`== ${results[0]!.name} by policy (segment rules; simulated customers have only currency and amount)`);
    out.push(
      table([
        ['policy', 'cases', 'recovered', 'rate'],
        ...policies.map((p) => [p.policy, String(p.cases), String(p.recovered), pct(p.recovered, p.cases)]),
      ]).replace(/^/gm, '  '),
    );
    out.push('');
  }
  out.push(
    "Charges count every attempt after Stripe's failed renewal. Each strategy keeps its case open for its own window and sends",
  );
  out.push(
    'a notice at the failure and a last chance before its window ends (your policy: as its reminder settings say), as one',
  );
  out.push(
    'conversation per customer (the frequency cap and merging; the baselines: the default rules). Reminder emails count',
  );
  out.push(
    'first notices and last chances; each is one chance that the customer puts in a card, however many invoices it lists.',
  );
  return out.join('\n') + '\n';
}

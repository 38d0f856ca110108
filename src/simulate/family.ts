/**
 * `dunning simulate --family`: one policy against the fixed schedules on every issuer variant
 * (issuers.ts), and the worst case over the family, because defaults that only win on the model
 * they were tuned on are not defaults.
 */
import { generatePopulation, type Member } from '../demo/population.ts';
import type { Policy } from '../dunning/policy.ts';
import { majorUnits } from '../money.ts';
import { memberRng, simulateStrategy, type StrategyResult } from './engine.ts';
import { ISSUER_VARIANTS, issuerModelOf, SANDBOX_MIX, withMix, type IssuerVariant } from './issuers.ts';
import { OBSERVED_PAYDAY_SHARE } from './observed-paydays.ts';
import { fixedSchedule, noRetries, plannerStrategy, STRIPE_LIKE, type Strategy } from './strategies.ts';
import { totalViolations } from './violations.ts';
import { cacheZoneOffsets } from './zone-offsets.ts';

/**
 * Rough EUR value of one major unit, only to add currencies up into one revenue share (the
 * populations mix EUR, USD, GBP and JPY). An assumption of the order of 2025 rates; the ranking of
 * strategies does not hinge on it, since every strategy meets the same customers.
 */
export const EUR_PER_UNIT: Readonly<Record<string, number>> = { eur: 1, usd: 0.9, gbp: 1.17, jpy: 0.006 };

export const FAMILY_SPREAD_DAYS = 30;

export const FAMILY_STRATEGY_NAMES = ['policy', 'holdout', 'Stripe-like', 'no retries'] as const;

export interface StrategyFigures {
  name: (typeof FAMILY_STRATEGY_NAMES)[number];
  /** Share of failed revenue recovered, 0..1, in EUR at `EUR_PER_UNIT`. */
  revenueShare: number;
  result: StrategyResult;
}

export interface VariantFigures {
  variant: IssuerVariant;
  strategies: StrategyFigures[];
}

export interface FamilyResult {
  seed: number;
  customers: number;
  variants: VariantFigures[];
  /** The smallest policy-minus-baseline gap in revenue share over the variants, with where it is. */
  worstOverStripeLike: { lift: number; variant: string };
  worstOverHoldout: { lift: number; variant: string };
}

export interface FamilyOptions {
  seed: number;
  customers: number;
  policy: Policy;
  merchantTimeZone: string;
  start: Date;
  variants?: readonly IssuerVariant[];
  /** Share of customers with an observed payday (engine's `SimSettings`); the assumption when absent. */
  observedPaydayShare?: number;
}

function eur(amount: number, currency: string): number {
  const rate = EUR_PER_UNIT[currency];
  if (rate === undefined) throw new Error(`no EUR rate for currency ${currency}`);
  return majorUnits(amount, currency) * rate;
}

export function revenueShare(r: StrategyResult): number {
  let opened = 0;
  let recovered = 0;
  for (const c of r.byCurrency) {
    opened += eur(c.openedAmount, c.currency);
    recovered += eur(c.recoveredAmount, c.currency);
  }
  return opened === 0 ? 0 : recovered / opened;
}

export function familyStrategies(policy: Policy, merchantTimeZone: string): Strategy[] {
  return [
    plannerStrategy(policy, merchantTimeZone, 'policy'),
    plannerStrategy(policy, merchantTimeZone, 'holdout', 'holdout'),
    fixedSchedule({ ...STRIPE_LIKE, name: 'Stripe-like' }),
    noRetries,
  ];
}

/** The variant's population: the same members as every other variant, with its decline mix. */
export function variantPopulation(base: readonly Member[], v: IssuerVariant, seed: number): Member[] {
  return withMix(base, v, (i) => memberRng(seed, i, 4));
}

export function compareFamily(o: FamilyOptions): FamilyResult {
  cacheZoneOffsets();
  // Renewals fail over a whole month, so no pay cycle is favoured by where the month starts.
  const base = generatePopulation({ seed: o.seed, customers: o.customers, spreadDays: FAMILY_SPREAD_DAYS });
  const strategies = familyStrategies(o.policy, o.merchantTimeZone);
  const variants = (o.variants ?? ISSUER_VARIANTS).map((variant): VariantFigures => {
    const population = variantPopulation(base, variant, o.seed);
    const settings = {
      seed: o.seed,
      start: o.start,
      issuer: issuerModelOf(variant),
      observedPaydayShare: o.observedPaydayShare,
    };
    return {
      variant,
      strategies: strategies.map((s, i) => {
        const result = simulateStrategy(population, s, settings);
        return {
          name: FAMILY_STRATEGY_NAMES[i] as StrategyFigures['name'],
          revenueShare: revenueShare(result),
          result,
        };
      }),
    };
  });
  const worst = (against: StrategyFigures['name']) =>
    variants.reduce(
      (w, v) => {
        const lift = shareOf(v, 'policy') - shareOf(v, against);
        return lift < w.lift ? { lift, variant: v.variant.name } : w;
      },
      { lift: Infinity, variant: '' },
    );
  return {
    seed: o.seed,
    customers: o.customers,
    variants,
    worstOverStripeLike: worst('Stripe-like'),
    worstOverHoldout: worst('holdout'),
  };
}

export function figuresOf(v: VariantFigures, name: StrategyFigures['name']): StrategyFigures {
  const f = v.strategies.find((s) => s.name === name);
  if (!f) throw new Error(`variant ${v.variant.name} has no ${name} row`);
  return f;
}

function shareOf(v: VariantFigures, name: StrategyFigures['name']): number {
  return figuresOf(v, name).revenueShare;
}

/**
 * One line of a variant's parameters: mix, how long soft declines last, permanent share, pay cycles
 * and how many customers' ledgers show their payday.
 */
export function describeParameters(v: IssuerVariant, observedPaydayShare = OBSERVED_PAYDAY_SHARE): string {
  const mix = v.mix ?? SANDBOX_MIX;
  const total = mix.reduce((s, [, w]) => s + w, 0);
  const share = (...reasons: string[]) =>
    Math.round((100 * mix.filter(([r]) => reasons.includes(r)).reduce((s, [, w]) => s + w, 0)) / total);
  const shares = `generic+dnh ${share('generic_decline', 'do_not_honor')} %, funds ${share('insufficient_funds')} %, never-clear codes ${share('expired_card', 'lost_card', 'stolen_card', 'authentication_required')} %`;
  const p = v.params;
  if (p === null) return `${shares}; sandbox timing (see src/sandbox/issuer-model.ts)`;
  const paydays = p.paydays.map(([profile, w]) =>
    p.paydays.length === 1 ? profile : `${profile} ${Math.round(100 * w)} %`,
  );
  return `${shares}; soft declines clear after ${p.softClearMeanHours} h on average, ${Math.round(100 * p.permanentShare)} % never; paid ${paydays.join(', ')}; funds last ${p.fundsLastDays} d; ${Math.round(100 * observedPaydayShare)} % with an observed payday (a funds failure paid the month before)`;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)} %`;
}

function points(x: number): string {
  return `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '))
    .join('\n');
}

export function renderFamily(f: FamilyResult, policyLabel: string): string {
  const out: string[] = [
    `${policyLabel} against fixed schedules on ${f.variants.length} issuer models, ${f.customers} failed renewals each (seed ${f.seed}).`,
    'Revenue: share of failed revenue recovered (currencies added in EUR at fixed rates). Charges: attempts after the failed renewal.',
    '',
  ];
  const header = ['variant'];
  for (const n of FAMILY_STRATEGY_NAMES) header.push(`${n} revenue`, 'charges', 'viol.');
  header.push('lift vs Stripe-like', 'lift vs holdout');
  const rows = [header];
  for (const v of f.variants) {
    const row = [v.variant.name];
    for (const n of FAMILY_STRATEGY_NAMES) {
      const s = figuresOf(v, n);
      row.push(pct(s.revenueShare), String(s.result.charges), String(totalViolations(s.result.violations)));
    }
    row.push(
      points(shareOf(v, 'policy') - shareOf(v, 'Stripe-like')),
      points(shareOf(v, 'policy') - shareOf(v, 'holdout')),
    );
    rows.push(row);
  }
  out.push(table(rows));
  out.push('');
  out.push(
    `Worst-case lift of the policy over the Stripe-like schedule: ${points(f.worstOverStripeLike.lift)} points (${f.worstOverStripeLike.variant}); over its holdout: ${points(f.worstOverHoldout.lift)} points (${f.worstOverHoldout.variant}).`,
  );
  out.push('');
  out.push('Issuer models (src/simulate/issuers.ts):');
  for (const v of f.variants) {
    out.push(`  ${v.variant.name}: ${describeParameters(v.variant)}`);
    out.push(`    source: ${v.variant.source}`);
  }
  return out.join('\n') + '\n';
}

import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { IANAZone } from 'luxon';
import { defaultPolicy, loadPolicyFile, type Policy } from '../dunning/policy.ts';
import { comparePolicies, renderComparison, SIMULATION_START } from '../simulate/compare.ts';
import { compareFamily, renderFamily } from '../simulate/family.ts';
import { learningCurves, renderLearning } from '../simulate/learning.ts';
import { UsageError, type Command } from './types.ts';

const MAX_CUSTOMERS = 200_000;
/**
 * Per issuer model, the size of the independent check in issue 15: at 500 one seed's lift over the
 * Stripe-like schedule on one model moved by 1.6 points against 3,000 (paydays-25th, seed 1), more
 * than the lifts compared. The whole family takes about 20 s of CPU.
 */
const FAMILY_CUSTOMERS = 3000;

/** A whole number in [min, max] from a flag, or a UsageError naming the flag. */
export function intFlag(value: string | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`${flag}: expected a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`${flag}: expected ${min} to ${max}, got ${n}`);
  return n;
}

/**
 * `--seed -1`: Node's parseArgs takes "-1" for an option and calls the value ambiguous. Handing
 * it over as `--seed=-1` lets the flag's own check say what is wrong with it.
 */
export function joinNegativeNumbers(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (arg.startsWith('--') && !arg.includes('=') && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i += 1;
    } else out.push(arg);
  }
  return out;
}

export const simulateCommand: Command = {
  name: 'simulate',
  summary: 'compare a retry policy with a fixed schedule and no retries on a simulated population',
  help: `Usage: dunning simulate [--policy <file>] [--seed N] [--customers N] [--family | --months N [--per-month N]]

Runs the same seeded population of failed renewals (EUR, USD, GBP and JPY customers in several
time zones, realistic decline reasons, card brands and card-update habits) through three retry
strategies, in memory and in a second or two:

  1. your policy (the default policy when --policy is not given), timed by the worker's planner,
     over its dunning window with its reminders
  2. a Stripe-like fixed schedule: 8 retries evenly over 14 days after the failed renewal
     (Stripe's recommended "8 tries within 2 weeks", which its dashboard counts as retries),
     whatever the decline except Stripe's never-retry codes, as Stripe does
  3. no retries at all: only reminders and card updates, over the same 14 days

The two baselines keep their own 14-day window and reminders (a notice at the failure and a last
chance two days before the end), so they stay the same whatever your policy file says.

and prints for each: recovered revenue per currency, recovery rate (count and revenue), charges
used and card-network rule violations (over 15 charges per card in 30 days, a retry after a
never-retry answer, Mastercard over 10 declines in 24 h). The card issuer is the sandbox's model,
so this is a comparison between policies, not a forecast of your revenue.

  --policy     dunning policy JSON file (see docs/policy.md); default: the built-in policy
  --seed       random seed (default 1); the same seed gives the same output
  --customers  size of the population (default 1000, at most ${MAX_CUSTOMERS}; with --family: per
               issuer model, default ${FAMILY_CUSTOMERS})
  --family     instead, run the policy, its holdout schedule, the Stripe-like schedule and no retries
               on every issuer model of src/simulate/issuers.ts (today's sandbox model and variants in
               decline mix, how long soft declines last, pay cycles and never-clearing shares), one
               row each, with the worst-case lift of the policy over the fixed schedules
  --months     instead, the learning curve of learned retry timing (retry.adaptive) over N months
               (1-24) on every issuer model: each month the policy plans with the table learned
               from earlier months' retries (both cohorts, as the refresh job learns from the whole
               ledger), next to the default policy and the holdout on the same customers
  --per-month  failed renewals a month for --months (default 1000; slow: about a second of CPU
               per model and month at 1000)

Local times use DEFAULT_TIME_ZONE for customers without a known zone (default UTC).`,
  async run(argv, env) {
    const { values } = parseArgs({
      args: joinNegativeNumbers(argv),
      options: {
        policy: { type: 'string' },
        seed: { type: 'string' },
        customers: { type: 'string' },
        family: { type: 'boolean' },
        months: { type: 'string' },
        'per-month': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
    const seed = intFlag(values.seed, '--seed', 1, 0, 2 ** 32 - 1);
    const customers = intFlag(
      values.customers,
      '--customers',
      values.family ? FAMILY_CUSTOMERS : 1000,
      1,
      MAX_CUSTOMERS,
    );
    let policy: Policy;
    try {
      policy = values.policy === undefined ? defaultPolicy() : loadPolicyFile(values.policy);
    } catch (err) {
      throw new UsageError(`--policy: ${(err as Error).message}`);
    }
    const zone = env.DEFAULT_TIME_ZONE || 'UTC';
    if (!IANAZone.isValidZone(zone))
      throw new UsageError(`DEFAULT_TIME_ZONE: expected an IANA time zone such as Europe/Berlin, got "${zone}"`);
    const policyLabel = values.policy === undefined ? 'default policy' : `policy ${basename(values.policy)}`;
    if (values.months !== undefined) {
      const months = intFlag(values.months, '--months', 3, 1, 24);
      const perMonth = intFlag(values['per-month'], '--per-month', 1000, 1, MAX_CUSTOMERS);
      const curves = learningCurves({
        seed,
        months,
        perMonth,
        policy,
        merchantTimeZone: zone,
        start: SIMULATION_START,
      });
      process.stdout.write(renderLearning(curves, { seed, perMonth }));
      return 0;
    }
    if (values.family) {
      const family = compareFamily({ seed, customers, policy, merchantTimeZone: zone, start: SIMULATION_START });
      process.stdout.write(renderFamily(family, policyLabel));
      return 0;
    }
    const results = comparePolicies({ seed, customers, policy, policyLabel, merchantTimeZone: zone });
    process.stdout.write(renderComparison(results, { seed, customers }));
    return 0;
  },
};

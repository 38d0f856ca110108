import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { generatePopulation } from '../../src/demo/population.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { createRng } from '../../src/sandbox/issuer-model.ts';
import { SIMULATION_START } from '../../src/simulate/compare.ts';
import { simulateCase, type SimSettings } from '../../src/simulate/engine.ts';
import { compareFamily, describeParameters, FAMILY_SPREAD_DAYS, variantPopulation } from '../../src/simulate/family.ts';
import { issuerModelOf, issuerVariant, type PaydayProfile } from '../../src/simulate/issuers.ts';
import { OBSERVED_PAYDAY_SHARE, observedPaydayOf } from '../../src/simulate/observed-paydays.ts';
import { noRetries } from '../../src/simulate/strategies.ts';

const zone = 'America/New_York';
// Opened in March 2026: the month before is February 2026, whose last business day is Friday the 27th.
const openedAt = DateTime.fromISO('2026-03-10T14:00', { zone }).toJSDate();

/** Observed days of many customers with this profile, each from its own stream. */
function observedDays(profile: PaydayProfile, n = 400): number[] {
  const days: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const o = observedPaydayOf(profile, openedAt, zone, `m${i}`, createRng(1000 + i), 1);
    if (o) days.push(o.dayOfMonth);
  }
  return days;
}

describe('observed paydays of simulated customers', () => {
  it('is the day of one of the true paydays in the month before the failure, for each profile', () => {
    expect(new Set(observedDays('first'))).toEqual(new Set([1]));
    expect(new Set(observedDays('month_end'))).toEqual(new Set([27]));
    expect(new Set(observedDays('semi_monthly'))).toEqual(new Set([1, 15]));
    // February 2026's Fridays: a weak predictor of next month's paydays, as a real ledger's would be.
    expect(new Set(observedDays('weekly'))).toEqual(new Set([6, 13, 20, 27]));
  });

  it('names the earlier invoice and when it was paid: on that payday, before the failure', () => {
    const o = observedPaydayOf('semi_monthly', openedAt, zone, 'cus_7', createRng(3), 1);
    expect(o).not.toBeNull();
    expect(o!.invoiceId).toBe('in_prev_cus_7');
    const paid = DateTime.fromJSDate(o!.paidAt, { zone });
    expect(paid.toFormat('yyyy-MM')).toBe('2026-02');
    expect(paid.day).toBe(o!.dayOfMonth);
    expect(o!.paidAt.getTime()).toBeLessThan(openedAt.getTime());
  });

  it('gives one to the stated share of customers, the same ones for the same stream', () => {
    const n = 4000;
    let observed = 0;
    for (let i = 0; i < n; i += 1) if (observedPaydayOf('weekly', openedAt, zone, 'k', createRng(i))) observed += 1;
    // Binomial: 4,000 draws at 40 % have a standard deviation of 31, so 4 of them is far outside.
    expect(OBSERVED_PAYDAY_SHARE).toBe(0.4);
    expect(Math.abs(observed - n * OBSERVED_PAYDAY_SHARE)).toBeLessThan(4 * Math.sqrt(n * 0.4 * 0.6));
    for (let i = 0; i < 50; i += 1)
      expect(observedPaydayOf('weekly', openedAt, zone, 'k', createRng(i))).toEqual(
        observedPaydayOf('weekly', openedAt, zone, 'k', createRng(i)),
      );
    expect(observedPaydayOf('first', openedAt, zone, 'k', createRng(1), 0)).toBeNull();
  });
});

describe('observed paydays in the simulation', () => {
  const seed = 3;
  const base = generatePopulation({ seed, customers: 300, spreadDays: FAMILY_SPREAD_DAYS });
  const run = (variant: string, s: Partial<SimSettings> = {}) => {
    const v = issuerVariant(variant);
    const settings: SimSettings = { seed, start: SIMULATION_START, issuer: issuerModelOf(v), ...s };
    return variantPopulation(base, v, seed).map((m, i) => simulateCase(m, i, noRetries, settings));
  };

  it('gives members of a variant with pay cycles an observed payday from their own profile, none in the sandbox', () => {
    const first = run('paydays-first');
    const withPayday = first.filter((r) => r.observedPayday !== null);
    expect(withPayday.length / first.length).toBeGreaterThan(0.3);
    expect(withPayday.length / first.length).toBeLessThan(0.5);
    for (const r of withPayday) expect(r.observedPayday!.dayOfMonth).toBe(1);
    expect(new Set(run('paydays-semi-monthly').flatMap((r) => r.observedPayday?.dayOfMonth ?? []))).toEqual(
      new Set([1, 15]),
    );
    expect(run('sandbox').every((r) => r.observedPayday === null)).toBe(true);
    expect(run('paydays-first', { observedPaydayShare: 0 }).every((r) => r.observedPayday === null)).toBe(true);
  });

  it('is the same for the same seed and the same members in every variant with the same profile', () => {
    expect(run('generic-majority')).toEqual(run('generic-majority'));
    // The variants differ in decline mix, not in which customers have a recovered funds failure on record.
    const has = (variant: string) => run(variant).map((r) => r.observedPayday !== null);
    expect(has('paydays-weekly')).toEqual(has('paydays-first'));
  });

  it('says so in the description of every variant with pay cycles', () => {
    expect(describeParameters(issuerVariant('paydays-weekly'))).toContain('40 % with an observed payday');
    expect(describeParameters(issuerVariant('sandbox'))).not.toContain('observed payday');
  });
});

describe('the family figures without observed paydays', () => {
  // Recovered / charges of policy, holdout, Stripe-like and no retries, seed 1, 100 customers per
  // variant, measured on the tree before observed paydays existed (c9db4bc), then re-measured when
  // a customer's reminders became one conversation (capped and merged: customers with several
  // invoices get fewer emails; test/simulate/conversation.test.ts shows single-invoice customers
  // unchanged). Drawing the observed payday from its own stream must leave every customer's true
  // paydays, and so these, alone. A later change to the planner or the issuer models may move
  // them: re-measure then.
  const before: Record<string, string> = {
    sandbox: '85/140 79/219 82/274 50/50',
    'generic-majority': '78/257 73/258 73/340 50/50',
    'funds-majority': '72/236 64/297 66/403 50/50',
    'visa-dnh-nsf': '78/281 70/288 71/381 50/50',
    'soft-hours': '77/210 76/224 75/287 50/50',
    'soft-two-weeks': '73/310 68/292 67/394 50/50',
    'paydays-first': '75/261 68/268 70/363 50/50',
    'paydays-month-end': '74/255 68/270 70/366 50/50',
    'paydays-semi-monthly': '77/257 68/265 72/345 50/50',
    'paydays-weekly': '79/218 76/240 76/319 50/50',
    'permanent-low': '82/233 76/243 76/323 50/50',
    'permanent-high': '70/302 67/282 69/374 50/50',
  };
  const figures = (observedPaydayShare?: number) => {
    const f = compareFamily({
      seed: 1,
      customers: 100,
      policy: defaultPolicy(),
      merchantTimeZone: 'Europe/Berlin',
      start: SIMULATION_START,
      observedPaydayShare,
    });
    return Object.fromEntries(
      f.variants.map((v) => [
        v.variant.name,
        v.strategies.map((s) => `${s.result.recovered}/${s.result.charges}`).join(' '),
      ]),
    );
  };

  const pinned = (f: Record<string, string>) => Object.fromEntries(Object.keys(before).map((k) => [k, f[k]]));

  it('are the figures from before the feature, with it disabled', () => {
    expect(pinned(figures(0))).toEqual(before);
  });

  it("with it on, move only for the policy, whose funds calendar holds the customer's payday", () => {
    const on = pinned(figures());
    const others = (f: Record<string, string | undefined>) =>
      Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v?.split(' ').slice(1).join(' ')]));
    expect(others(on)).toEqual(others(before));
    // On the model whose payday the calendar does not hold, the customer's own payday moves the policy.
    const off25 = figures(0)['paydays-25th']?.split(' ');
    const on25 = figures()['paydays-25th']?.split(' ');
    expect(on25?.[0]).not.toBe(off25?.[0]);
    expect(on25?.slice(1)).toEqual(off25?.slice(1));
  });
});

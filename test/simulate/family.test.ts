import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { SIMULATION_START } from '../../src/simulate/compare.ts';
import { compareFamily, FAMILY_STRATEGY_NAMES, figuresOf, renderFamily } from '../../src/simulate/family.ts';
import { ISSUER_VARIANTS, paydaysOf } from '../../src/simulate/issuers.ts';
import { totalViolations } from '../../src/simulate/violations.ts';
import { cacheZoneOffsets } from '../../src/simulate/zone-offsets.ts';
import { IANAZone } from 'luxon';

const cli = join(import.meta.dirname, '../../src/cli.ts');
const options = {
  seed: 5,
  customers: 60,
  policy: defaultPolicy(),
  merchantTimeZone: 'Europe/Berlin',
  start: SIMULATION_START,
};

describe('the issuer family', () => {
  const family = compareFamily(options);

  it('has every variant, each with the policy, its holdout, the Stripe-like schedule and no retries', () => {
    expect(family.variants.map((v) => v.variant.name)).toEqual(ISSUER_VARIANTS.map((v) => v.name));
    expect(new Set(ISSUER_VARIANTS.map((v) => v.name)).size).toBe(ISSUER_VARIANTS.length);
    for (const v of family.variants) {
      expect(v.strategies.map((s) => s.name)).toEqual([...FAMILY_STRATEGY_NAMES]);
      expect(v.variant.source.length).toBeGreaterThan(10);
      for (const s of v.strategies) {
        expect(s.result.cases).toBe(options.customers);
        expect(s.revenueShare).toBeGreaterThanOrEqual(0);
        expect(s.revenueShare).toBeLessThanOrEqual(1);
      }
    }
  });

  it('keeps its invariants: same customers for every variant without retries, retries never lose to none', () => {
    const none = family.variants.map((v) => figuresOf(v, 'no retries').result);
    // Without retries only card updates recover, and those do not depend on the issuer model.
    for (const n of none) expect(n.recovered).toBe(none[0]?.recovered);
    for (const v of family.variants) {
      // Same window and reminders as no retries, so a retry can only add recoveries.
      expect(figuresOf(v, 'Stripe-like').result.recovered).toBeGreaterThanOrEqual(
        figuresOf(v, 'no retries').result.recovered,
      );
      expect(figuresOf(v, 'no retries').result.charges).toBe(figuresOf(v, 'no retries').result.recovered);
    }
    const worst = Math.min(
      ...family.variants.map((v) => figuresOf(v, 'policy').revenueShare - figuresOf(v, 'Stripe-like').revenueShare),
    );
    expect(family.worstOverStripeLike.lift).toBeCloseTo(worst, 10);
  });

  it('gives the same figures for the same seed', () => {
    expect(compareFamily(options)).toEqual(family);
  });

  it('caches zone offsets without moving a DST transition', () => {
    cacheZoneOffsets();
    const berlin = IANAZone.create('Europe/Berlin');
    const lordHowe = IANAZone.create('Australia/Lord_Howe');
    // Berlin moves to summer time at 01:00 UTC on 29 March 2026.
    expect(berlin.offset(Date.parse('2026-03-29T00:59:59Z'))).toBe(60);
    expect(berlin.offset(Date.parse('2026-03-29T01:00:00Z'))).toBe(120);
    expect(berlin.offset(Date.parse('2026-03-29T00:30:00Z'))).toBe(60);
    // Lord Howe changes by 30 minutes at 02:00 local, 15:30 UTC on 4 October 2025 (+10:30 to +11):
    // inside a UTC hour, which must not be cached as one offset.
    expect(lordHowe.offset(Date.parse('2025-10-04T15:00:00Z'))).toBe(630);
    expect(lordHowe.offset(Date.parse('2025-10-04T15:29:00Z'))).toBe(630);
    expect(lordHowe.offset(Date.parse('2025-10-04T15:30:00Z'))).toBe(660);
  });

  it('draws paydays on each profile in the customer zone', () => {
    const from = new Date('2026-03-10T12:00:00Z');
    const days = (p: Parameters<typeof paydaysOf>[0]) =>
      paydaysOf(p, from, 40, 'Europe/Berlin').map((d) => d.toISOString().slice(0, 10));
    // Local midnight in Berlin is 23:00 or 22:00 UTC the day before.
    expect(days('first')).toEqual(['2026-03-31']);
    expect(days('month_end')).toEqual(['2026-03-30']);
    expect(days('semi_monthly')).toEqual(['2026-03-14', '2026-03-31', '2026-04-14']);
    expect(days('day_25')).toEqual(['2026-03-24']);
    expect(days('weekly')).toEqual([
      '2026-03-12',
      '2026-03-19',
      '2026-03-26',
      '2026-04-02',
      '2026-04-09',
      '2026-04-16',
    ]);
  });

  it('prints a row per variant, the worst case and the parameters with their sources', () => {
    const text = renderFamily(family, 'default policy');
    for (const v of ISSUER_VARIANTS) expect(text).toContain(v.name);
    expect(text).toMatch(/Worst-case lift of the policy over the Stripe-like schedule: [+-]\d+\.\d points/);
    expect(text).toContain('soft declines clear after');
    expect(totalViolations(figuresOf(family.variants[0]!, 'policy').result.violations)).toBe(0);
  });

  it('runs from the command line with --family', () => {
    const r = spawnSync(process.execPath, [cli, 'simulate', '--family', '--customers', '20', '--seed', '3'], {
      encoding: 'utf8',
      env: { ...process.env, DEFAULT_TIME_ZONE: 'Europe/Berlin' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('on 13 issuer models, 20 failed renewals each (seed 3)');
  });
});

describe('the default policy on the issuer family', () => {
  it('beats the Stripe-like schedule and its own holdout on every variant, with fewer charges and no violations', () => {
    // Measured at 3,000 per variant in docs/policy.md. Below about 1,000 one model's lift is noise:
    // paydays-25th, the closest, reads -0.5 points at 300 and +0.5 at 1,500 (seed 1).
    const family = compareFamily({ ...options, seed: 1, customers: 1500 });
    for (const v of family.variants) {
      const policy = figuresOf(v, 'policy');
      const row = { variant: v.variant.name, policy: policy.revenueShare };
      expect({ ...row, beatsStripeLike: policy.revenueShare > figuresOf(v, 'Stripe-like').revenueShare }).toEqual({
        ...row,
        beatsStripeLike: true,
      });
      expect({ ...row, beatsHoldout: policy.revenueShare > figuresOf(v, 'holdout').revenueShare }).toEqual({
        ...row,
        beatsHoldout: true,
      });
      expect(policy.result.charges).toBeLessThan(figuresOf(v, 'Stripe-like').result.charges);
      expect(totalViolations(policy.result.violations)).toBe(0);
    }
  }, 120_000);
});

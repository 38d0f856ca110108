import { describe, expect, it } from 'vitest';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { SIMULATION_START } from '../../src/simulate/compare.ts';
import type { CaseResult } from '../../src/simulate/engine.ts';
import { issuerVariant } from '../../src/simulate/issuers.ts';
import { learningCurves, pairedLift, renderLearning } from '../../src/simulate/learning.ts';

describe('simulate --months', () => {
  it('learns month by month: nothing in month 1, the earlier months retries after it', () => {
    const curves = learningCurves({
      seed: 2,
      months: 2,
      perMonth: 40,
      policy: defaultPolicy(),
      merchantTimeZone: 'Europe/Berlin',
      start: SIMULATION_START,
      variants: [issuerVariant('generic-majority'), issuerVariant('sandbox')],
    });
    expect(curves.map((c) => c.variant.name)).toEqual(['generic-majority', 'sandbox']);
    for (const c of curves) {
      expect(c.months.map((m) => m.month)).toEqual([1, 2]);
      const [first, second] = c.months;
      expect(first).toMatchObject({ learnedRetries: 0, inUse: false });
      // Without a table in use the adaptive cohort is the default policy.
      expect(first!.adaptive).toBe(first!.defaults);
      expect(second!.learnedRetries).toBeGreaterThan(0);
      for (const m of c.months) {
        expect(m.overHoldout.low).toBeLessThanOrEqual(m.overHoldout.lift);
        expect(m.overHoldout.high).toBeGreaterThanOrEqual(m.overHoldout.lift);
      }
    }
    expect(renderLearning(curves, { seed: 2, perMonth: 40 })).toContain('generic-majority');
  });

  it('pairs cases for the lift and its 95 % interval', () => {
    const r = (recovered: boolean): CaseResult =>
      ({ currency: 'eur', amount: 1000, recovered }) as unknown as CaseResult;
    // Two of four cases recovered only by the first strategy: +50 points, interval around it.
    const a = [r(true), r(true), r(true), r(false)];
    const b = [r(false), r(false), r(true), r(false)];
    const lift = pairedLift(a, b);
    expect(lift.lift).toBeCloseTo(0.5, 10);
    // Differences 1, 1, 0, 0 about 0.5: variance 4 * 0.25 / 16.
    expect(lift.high - lift.lift).toBeCloseTo(1.96 * Math.sqrt(1 / 16), 10);
    expect(pairedLift(a, a)).toEqual({ lift: 0, low: 0, high: 0 });
  });
});

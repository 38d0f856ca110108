/**
 * The observed payday reaches the planner and the learned table. Until the planner times funds
 * retries by it no figure shows that, so the planner's and the learner's inputs are recorded here.
 */
import { describe, expect, it, vi } from 'vitest';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import type { CustomerContext } from '../../src/dunning/planner.ts';
import type { RetryObservation } from '../../src/dunning/adaptive.ts';
import { SIMULATION_START } from '../../src/simulate/compare.ts';
import { issuerVariant } from '../../src/simulate/issuers.ts';
import { learningCurves } from '../../src/simulate/learning.ts';
import { plannerStrategy, type SimCase } from '../../src/simulate/strategies.ts';

const seen = vi.hoisted(() => ({ customers: [] as CustomerContext[], learnedFrom: [] as RetryObservation[][] }));

vi.mock('../../src/dunning/planner.ts', async (original) => {
  const m = await original<typeof import('../../src/dunning/planner.ts')>();
  return {
    ...m,
    planNextAttempt: (...args: Parameters<typeof m.planNextAttempt>) => {
      seen.customers.push(args[1]);
      return m.planNextAttempt(...args);
    },
  };
});

vi.mock('../../src/dunning/adaptive.ts', async (original) => {
  const m = await original<typeof import('../../src/dunning/adaptive.ts')>();
  return {
    ...m,
    learnTable: (...args: Parameters<typeof m.learnTable>) => {
      seen.learnedFrom.push([...args[0]]);
      return m.learnTable(...args);
    },
  };
});

describe('the observed payday in the simulator', () => {
  it('goes to the planner with the rest of the customer', () => {
    const observedPayday = { dayOfMonth: 15, invoiceId: 'in_prev_k', paidAt: new Date('2026-10-15T05:00:00Z') };
    const c: SimCase = {
      invoiceId: 'in_sim_k',
      openedAt: new Date('2026-11-03T10:00:00Z'),
      timeZone: 'Europe/Berlin',
      country: 'DE',
      cardBrand: 'visa',
      attempts: [
        { at: new Date('2026-11-03T10:00:00Z'), card: 0, source: 'stripe', ok: false, reason: 'insufficient_funds' },
      ],
      observedPayday,
    };
    seen.customers.length = 0;
    for (const cohort of ['smart', 'holdout'] as const)
      plannerStrategy(defaultPolicy(), 'Europe/Berlin', 'p', cohort).nextRetry(c);
    plannerStrategy(defaultPolicy(), 'Europe/Berlin').nextRetry({ ...c, observedPayday: undefined });
    expect(seen.customers.map((x) => x.observedPayday)).toEqual([observedPayday, observedPayday, null]);
  });

  it('is learned from: funds retries of customers with one are counted by days since their payday', () => {
    seen.learnedFrom.length = 0;
    learningCurves({
      seed: 4,
      months: 2,
      perMonth: 120,
      policy: defaultPolicy(),
      merchantTimeZone: 'Europe/Berlin',
      start: SIMULATION_START,
      variants: [issuerVariant('funds-majority')],
    });
    const month2 = seen.learnedFrom[1] ?? [];
    const funds = month2.filter((o) => o.category === 'funds');
    const known = funds.filter((o) => o.daysFromPayday !== null);
    // About 40 % of customers have one on record: some funds retries with a distance, most without.
    expect(known.length).toBeGreaterThan(0);
    expect(known.length).toBeLessThan(funds.length);
    for (const o of known) expect(o.daysFromPayday).toBeGreaterThanOrEqual(0);
  });
});

/**
 * The observed payday reaches the planner and the learned table in the simulator: a customer's
 * payday on record moves their funds retry when the merchant's data favour it, and the learning
 * curve's table learns funds retries by days since the payday.
 */
import { describe, expect, it } from 'vitest';
import { ADAPTIVE_DEFAULTS, explorationUnit, learnTable, type RetryObservation } from '../../src/dunning/adaptive.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { SIMULATION_START } from '../../src/simulate/compare.ts';
import { issuerVariant } from '../../src/simulate/issuers.ts';
import { learningCurves } from '../../src/simulate/learning.ts';
import { plannerStrategy, type SimCase } from '../../src/simulate/strategies.ts';

function funds(n: number, wins: number, daysFromPayday: number): RetryObservation[] {
  return Array.from({ length: n }, (_, i) => ({
    category: 'funds' as const,
    hoursSinceDecline: 72,
    declinesSoFar: 1,
    localHour: 6,
    daysFromPayday,
    succeeded: i < wins,
  }));
}

describe('the observed payday in the simulator', () => {
  it("puts the customer's payday on the funds calendar, and a learned table may move the retry near it", () => {
    // The day after a payday 60 %, a week or more after it 15 %.
    const table = learnTable([...funds(200, 120, 1), ...funds(300, 45, 7)], new Date('2026-11-01T00:00:00Z'));
    let key = '';
    for (let i = 0; !key; i += 1)
      if (explorationUnit(`in_sim_k${i}`) >= ADAPTIVE_DEFAULTS.explorationShare) key = `k${i}`;
    const observedPayday = { dayOfMonth: 12, invoiceId: `in_prev_${key}`, paidAt: new Date('2026-10-12T05:00:00Z') };
    // Tuesday 10 November 2026, 08:00 Berlin: the calendar's next payday is Friday the 13th.
    const c: SimCase = {
      invoiceId: `in_sim_${key}`,
      openedAt: new Date('2026-11-10T07:00:00Z'),
      timeZone: 'Europe/Berlin',
      country: 'DE',
      cardBrand: 'visa',
      attempts: [
        { at: new Date('2026-11-10T07:00:00Z'), card: 0, source: 'stripe', ok: false, reason: 'insufficient_funds' },
      ],
      observedPayday,
    };
    const policy = defaultPolicy();
    const day = (d: Date | null) => d?.toISOString().slice(0, 10);
    const plain = plannerStrategy(policy, 'Europe/Berlin');
    expect(day(plain.nextRetry(c))).toBe('2026-11-12');
    expect(day(plain.nextRetry({ ...c, observedPayday: null }))).toBe('2026-11-13');
    // Paid on the 10th: the 11th is the day after it, which the table favours over the calendar's 13th.
    const tenth = { ...c, observedPayday: { ...observedPayday, dayOfMonth: 10 } };
    expect(day(plain.nextRetry(tenth))).toBe('2026-11-13');
    expect(day(plannerStrategy(policy, 'Europe/Berlin', 'adaptive', 'smart', table).nextRetry(tenth))).toBe(
      '2026-11-11',
    );
  });

  it('is learned from: funds retries of customers with one are counted by days since their payday', () => {
    const curveOf = (observedPaydayShare?: number) =>
      learningCurves({
        seed: 4,
        months: 2,
        perMonth: 120,
        policy: defaultPolicy(),
        merchantTimeZone: 'Europe/Berlin',
        start: SIMULATION_START,
        variants: [issuerVariant('funds-majority')],
        observedPaydayShare,
      });
    const [curve] = curveOf();
    const [month1, month2] = curve!.months;
    expect(month1!.paydayRetries).toBe(0);
    // About 40 % of customers have one on record: some of the learned retries, not all.
    expect(month2!.paydayRetries).toBeGreaterThan(0);
    expect(month2!.paydayRetries).toBeLessThan(month2!.learnedRetries);
    const none = curveOf(0);
    expect(none[0]!.months[1]!.paydayRetries).toBe(0);
  });
});

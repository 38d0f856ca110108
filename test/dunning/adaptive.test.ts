import { describe, expect, it } from 'vitest';
import {
  ADAPTIVE_DEFAULTS,
  chooseDelay,
  delayBucket,
  learnTable,
  observationsFromLedger,
  tableInUse,
  type RetryObservation,
} from '../../src/dunning/adaptive.ts';
import { planNextAttempt, type CaseHistory, type LedgerAttempt } from '../../src/dunning/planner.ts';
import { parsePolicy } from '../../src/dunning/policy.ts';

const builtAt = new Date('2026-11-01T00:00:00Z');
const exact = parsePolicy({ retry: { jitterMinutes: 0 } });
const berlin = { timeZone: 'Europe/Berlin', country: 'DE', cardBrand: 'visa' };

function retries(n: number, wins: number, hoursSinceDecline: number, extra: Partial<RetryObservation> = {}) {
  return Array.from({ length: n }, (_, i): RetryObservation => ({
    category: 'generic',
    hoursSinceDecline,
    localHour: 7,
    daysFromPayday: null,
    succeeded: i < wins,
    ...extra,
  }));
}

/** 24 h: 20 % of 200; 96 h: 45 % of 200 (44 % once shrunk); 48 h and 72 h: 25 % of 100 each. */
const evidence = [...retries(200, 40, 24), ...retries(100, 25, 48), ...retries(100, 25, 72), ...retries(200, 90, 100)];

describe('learnTable', () => {
  it('shrinks every cell towards the pooled rate with the stated Beta prior of k pseudo-retries', () => {
    const t = learnTable([...retries(100, 20, 24), ...retries(10, 8, 96)], builtAt, {
      ...ADAPTIVE_DEFAULTS,
      priorStrength: 20,
    });
    const m = 28 / 110;
    expect(t.pooled.generic.rate).toBeCloseTo(m, 10);
    const at96 = t.byDelay.generic[delayBucket(96)]!;
    expect(at96).toMatchObject({ successes: 8, trials: 10 });
    // (8 + 20 m) / (10 + 20): the raw 80 % is pulled most of the way to the pool.
    expect(at96.rate).toBeCloseTo((8 + 20 * m) / 30, 10);
    expect(at96.low).toBeLessThan(at96.rate);
    expect(at96.high).toBeGreaterThan(at96.rate);
    // A delay nobody tried reads as the pool, not as zero.
    expect(t.byDelay.generic[delayBucket(240)]!.rate).toBeCloseTo(m, 10);
    expect(t.retries).toBe(110);
    // More data, a narrower interval.
    const wide = t.byDelay.generic[delayBucket(96)]!;
    const narrow = t.byDelay.generic[delayBucket(24)]!;
    expect(narrow.high - narrow.low).toBeLessThan(wide.high - wide.low);
  });

  it('learns by local hour and, for funds, by days since the customer payday', () => {
    const t = learnTable(
      [
        ...retries(30, 15, 24, { category: 'funds', localHour: 6, daysFromPayday: 0 }),
        ...retries(30, 3, 24, { category: 'funds', localHour: 18, daysFromPayday: 12 }),
      ],
      builtAt,
    );
    expect(t.byLocalHour.funds[6]!.rate).toBeGreaterThan(t.byLocalHour.funds[18]!.rate);
    expect(t.byPaydayDistance[0]!.trials).toBe(30);
    // Twelve days after payday shares the last bucket.
    expect(t.byPaydayDistance[7]!.trials).toBe(30);
  });

  it('rejects a prior or an exploration share that cannot be used', () => {
    expect(() => learnTable([], builtAt, { ...ADAPTIVE_DEFAULTS, priorStrength: 0 })).toThrow(/priorStrength/);
    expect(() => learnTable([], builtAt, { ...ADAPTIVE_DEFAULTS, explorationShare: 1 })).toThrow(/explorationShare/);
  });
});

describe('chooseDelay', () => {
  const table = learnTable(evidence, builtAt, { ...ADAPTIVE_DEFAULTS, explorationShare: 0.1 });

  it('is off below the stated minimum of the merchant retries', () => {
    const few = learnTable(evidence.slice(0, 250), builtAt);
    expect(tableInUse(few)).toBe(false);
    expect(chooseDelay(few, 'generic', 72, 0.5)).toBeNull();
    expect(tableInUse(table)).toBe(true);
  });

  it('picks the best posterior between half and twice the default, and explores a stated share', () => {
    const chosen = chooseDelay(table, 'generic', 72, 0.5);
    expect(chosen).toMatchObject({ hours: 96, explored: false });
    expect(chosen?.evidence).toMatch(
      /^44 % success at this delay over your last 200 retries at it \(600 learned; prior 20 retries at 30 %\)$/,
    );
    // Below the exploration share (10 %) another candidate is tried, and the reason says so.
    const explored = chooseDelay(table, 'generic', 72, 0.01);
    expect(explored?.explored).toBe(true);
    expect(explored?.evidence).toMatch(/^exploring, /);
    // Never past the window.
    expect(chooseDelay(table, 'generic', 72, 0.5, 80)).toMatchObject({ hours: 72 });
  });
});

function declined(at: string, extra: Partial<LedgerAttempt> = {}): LedgerAttempt {
  return {
    attemptNo: 1,
    at: new Date(at),
    source: 'stripe',
    outcome: 'declined',
    paymentMethod: 'pm_1',
    decline: { declineCode: 'do_not_honor', cardBrand: 'visa' },
    ...extra,
  };
}

describe('the planner with a learned table', () => {
  const days = ['02', '03', '05', '07'];
  const h: CaseHistory = {
    invoiceId: 'in_adaptive',
    openedAt: new Date('2026-11-02T07:00:00Z'),
    cohort: 'smart',
    attempts: days.map((d, i) =>
      declined(`2026-11-${d}T07:00:00Z`, { attemptNo: i + 1, source: i === 0 ? 'stripe' : 'scheduled' }),
    ),
    currentPaymentMethod: 'pm_1',
  };
  const now = new Date('2026-11-07T07:00:01Z');
  const table = learnTable(evidence, builtAt, { ...ADAPTIVE_DEFAULTS, explorationShare: 0 });

  it('moves a generic retry to the learned delay and says which data chose it', () => {
    // The fourth generic retry waits 72 h by default; the merchant's own retries favour 96 h.
    const plain = planNextAttempt(h, berlin, exact, now, 'Europe/London');
    expect(plain).toMatchObject({ kind: 'retry', at: new Date('2026-11-10T07:00:00Z') });
    const p = planNextAttempt(h, berlin, exact, now, 'Europe/London', table);
    expect(p).toMatchObject({ kind: 'retry', at: new Date('2026-11-11T07:00:00Z') });
    expect((p as { reason: string }).reason).toContain(
      'do_not_honor: retry 4 d after the decline: 44 % success at this delay over your last 200 retries at it',
    );
  });

  it('plans by the policy alone while the table holds too few retries', () => {
    const few = learnTable(evidence.slice(0, 100), builtAt);
    expect(planNextAttempt(h, berlin, exact, now, 'Europe/London', few)).toEqual(
      planNextAttempt(h, berlin, exact, now, 'Europe/London'),
    );
  });
});

describe('observationsFromLedger', () => {
  it('turns scheduled retries of the declined card into observations, leaving out card changes', () => {
    const attempts: LedgerAttempt[] = [
      declined('2026-11-02T07:00:00Z'),
      declined('2026-11-03T07:00:00Z', { attemptNo: 2, source: 'scheduled' }),
      {
        ...declined('2026-11-06T08:00:00Z', { attemptNo: 3, source: 'scheduled' }),
        outcome: 'succeeded',
        decline: null,
      },
    ];
    const other: LedgerAttempt[] = [
      declined('2026-11-02T07:00:00Z'),
      declined('2026-11-02T09:00:00Z', { attemptNo: 2, source: 'scheduled', paymentMethod: 'pm_new' }),
    ];
    const obs = observationsFromLedger([
      { attempts, timeZone: 'Europe/Berlin', paydayOfMonth: 1 },
      { attempts: other, timeZone: 'Europe/Berlin' },
    ]);
    expect(obs).toEqual([
      { category: 'generic', hoursSinceDecline: 24, localHour: 8, daysFromPayday: 2, succeeded: false },
      { category: 'generic', hoursSinceDecline: 73, localHour: 9, daysFromPayday: 5, succeeded: true },
    ]);
  });
});

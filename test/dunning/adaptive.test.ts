import { describe, expect, it } from 'vitest';
import {
  ADAPTIVE_DEFAULTS,
  categoryInUse,
  chooseDelay,
  chooseFundsDay,
  chooseHour,
  countObservations,
  delayBucket,
  explorationUnit,
  learnTable,
  observationsFromLedger,
  retriesByCategory,
  tableFromCounts,
  type RetryObservation,
} from '../../src/dunning/adaptive.ts';
import { planNextAttempt, type CaseHistory, type LedgerAttempt, type Plan } from '../../src/dunning/planner.ts';
import { parsePolicy } from '../../src/dunning/policy.ts';

const builtAt = new Date('2026-11-01T00:00:00Z');
const exact = parsePolicy({ retry: { jitterMinutes: 0 } });
const berlin = { timeZone: 'Europe/Berlin', country: 'DE', cardBrand: 'visa' };

function retries(n: number, wins: number, hoursSinceDecline: number, extra: Partial<RetryObservation> = {}) {
  return Array.from({ length: n }, (_, i): RetryObservation => ({
    category: 'generic',
    hoursSinceDecline,
    declinesSoFar: 4,
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

  it('rebuilds the same table from the raw counts a snapshot stores', () => {
    const counts = countObservations(evidence);
    const again = tableFromCounts(JSON.parse(JSON.stringify(counts)) as typeof counts, builtAt);
    expect(again).toEqual(learnTable(evidence, builtAt));
    expect(retriesByCategory(counts)).toEqual({ generic: 600, funds: 0, temporary: 0 });
  });
});

/** An invoice id whose stable draw is at or above the exploration share (10 %), and one below it. */
function invoiceWhere(explores: boolean): string {
  for (let i = 0; ; i += 1) {
    const id = `in_draw${i}`;
    if (explorationUnit(id) < ADAPTIVE_DEFAULTS.explorationShare === explores) return id;
  }
}

describe('chooseDelay', () => {
  const table = learnTable(evidence, builtAt);
  const choice = {
    category: 'generic' as const,
    defaultHours: 72,
    maxHours: 1000,
    mode: 'auto' as const,
    declinesSoFar: 4,
  };
  const exploiting = invoiceWhere(false);

  it('keeps the policy timing below the stated per-category minimum, and says why', () => {
    // 150 generic retries: under the minimum of 200.
    const few = learnTable(evidence.slice(0, 150), builtAt);
    expect(categoryInUse(few, 'generic')).toBe(false);
    expect(chooseDelay(few, { ...choice, invoiceId: exploiting })).toEqual({
      hours: 72,
      moved: false,
      evidence: 'policy timing: learned timing needs 200 of your generic retries, 150 so far',
    });
    expect(ADAPTIVE_DEFAULTS.minRetriesPerCategory).toBe(200);
    expect(categoryInUse(table, 'generic')).toBe(true);
    // The minimum is per category: no funds retries were learned.
    expect(categoryInUse(table, 'funds')).toBe(false);
    // `on` uses the table from the first retry, `off` never, and says nothing.
    expect(categoryInUse(few, 'generic', 'on')).toBe(true);
    expect(chooseDelay(learnTable([], builtAt), { ...choice, mode: 'on', invoiceId: exploiting })).toEqual({
      hours: 72,
      moved: false,
      evidence: 'policy timing: none of your generic retries learned yet',
    });
    expect(chooseDelay(table, { ...choice, mode: 'off', invoiceId: exploiting })).toBeNull();
    expect(chooseDelay(null, { ...choice, invoiceId: exploiting })).toBeNull();
  });

  it('moves to a delay whose 95 % interval lies above the policy wait, and cites the data', () => {
    expect(chooseDelay(table, { ...choice, invoiceId: exploiting })).toEqual({
      hours: 96,
      moved: true,
      evidence:
        '44 % success at this delay over your last 200 retries at it after 4 declines (policy wait 72 h: 26 % over 100)',
    });
    // Never so late that the retries still allowed after it fall out of the window.
    expect(chooseDelay(table, { ...choice, maxHours: 80, invoiceId: exploiting })).toMatchObject({
      hours: 72,
      moved: false,
    });
  });

  it('keeps the policy wait when the better delay is within the noise', () => {
    // 96 h at 35 % of 40 against 72 h at 25 %: the interval of 96 h reaches below 25 %.
    const noisy = learnTable(
      [...retries(100, 25, 24), ...retries(100, 25, 48), ...retries(100, 25, 72), ...retries(40, 14, 96)],
      builtAt,
    );
    expect(chooseDelay(noisy, { ...choice, invoiceId: exploiting })).toEqual({
      hours: 72,
      moved: false,
      evidence:
        '25 % success at this delay over your last 100 retries at it after 4 declines; no other delay from 36 h to 144 h did better at 95 %',
    });
  });

  it('keeps a stated share of cases on the policy timing, the same cases every time', () => {
    const exploring = invoiceWhere(true);
    const kept = chooseDelay(table, { ...choice, invoiceId: exploring });
    expect(kept).toEqual({
      hours: 72,
      moved: false,
      evidence:
        'policy timing kept for 10 % of cases, to go on measuring it (26 % success at this delay over your last 100 retries at it after 4 declines)',
    });
    expect(chooseDelay(table, { ...choice, invoiceId: exploring })).toEqual(kept);
    // About the stated share of invoices, drawn from the invoice id alone.
    const ids = Array.from({ length: 4000 }, (_, i) => `in_share${i}`);
    const share = ids.filter((id) => explorationUnit(id) < ADAPTIVE_DEFAULTS.explorationShare).length / ids.length;
    expect(share).toBeGreaterThan(0.085);
    expect(share).toBeLessThan(0.115);
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

  it('plans at the policy time while the table holds too few retries, and says so; off leaves the reason alone', () => {
    const few = learnTable(evidence.slice(0, 100), builtAt);
    const plain = planNextAttempt(h, berlin, exact, now, 'Europe/London') as Extract<Plan, { kind: 'retry' }>;
    const p = planNextAttempt(h, berlin, exact, now, 'Europe/London', few) as Extract<Plan, { kind: 'retry' }>;
    expect(p.at).toEqual(plain.at);
    expect(p.reason).toBe(
      plain.reason.replace(
        'retry 3 d after the decline',
        'retry 3 d after the decline: policy timing: learned timing needs 200 of your generic retries, 100 so far',
      ),
    );
    const off = parsePolicy({ retry: { jitterMinutes: 0, adaptive: 'off' } });
    expect(planNextAttempt(h, berlin, off, now, 'Europe/London', table)).toEqual(
      planNextAttempt(h, berlin, off, now, 'Europe/London'),
    );
  });

  it('reads a temporary error that outlasted its quick retries from the table its retries were learned into', () => {
    // The refresh files a retry under the category of the decline it follows, and a processing
    // error stays `temporary` there however long it lasts; the planner spaces it as generic but
    // must read the same rows, or those retries are learned and never used.
    const errors = ['02T05', '02T06', '02T07', '03T07'].map((t, i) =>
      declined(`2026-11-${t}:00:00Z`, {
        attemptNo: i + 1,
        source: i === 0 ? 'stripe' : 'scheduled',
        decline: { declineCode: 'processing_error', cardBrand: 'visa' },
      }),
    );
    const outlasted: CaseHistory = { ...h, invoiceId: 'in_outlasted', attempts: errors };
    const temporary = { category: 'temporary' as const };
    const learned = learnTable([...retries(200, 40, 24, temporary), ...retries(200, 90, 48, temporary)], builtAt, {
      ...ADAPTIVE_DEFAULTS,
      explorationShare: 0,
    });
    const at = new Date('2026-11-03T07:00:01Z');
    const plain = planNextAttempt(outlasted, berlin, exact, at, 'Europe/London');
    expect(plain).toMatchObject({ kind: 'retry', at: new Date('2026-11-04T07:00:00Z') });
    const p = planNextAttempt(outlasted, berlin, exact, at, 'Europe/London', learned);
    expect(p).toMatchObject({ kind: 'retry', at: new Date('2026-11-05T07:00:00Z') });
    expect((p as { reason: string }).reason).toContain(
      'still failing after 4 temporary declines, spaced as a generic decline: retry 2 d after the decline: 44 % success at this delay over your last 200 retries at it after 4 declines (policy wait 24 h: 21 % over 200)',
    );
  });

  it('never moves a retry so late that the retries the policy still allows fall out of the window', () => {
    // A 14-day window: after the fourth decline (day 5) the remaining waits 72+96+120+144 h do not fit, so no later slot.
    const short = parsePolicy({ retry: { jitterMinutes: 0, windowDays: 14 } });
    const p = planNextAttempt(h, berlin, short, now, 'Europe/London', table);
    expect(p).toMatchObject({ kind: 'retry', at: new Date('2026-11-10T07:00:00Z') });
    expect((p as { reason: string }).reason).toContain('no other delay from 36 h to 72 h did better at 95 %');
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
      {
        category: 'generic',
        hoursSinceDecline: 24,
        declinesSoFar: 1,
        localHour: 8,
        daysFromPayday: 2,
        succeeded: false,
      },
      {
        category: 'generic',
        hoursSinceDecline: 73,
        declinesSoFar: 2,
        localHour: 9,
        daysFromPayday: 5,
        succeeded: true,
      },
    ]);
  });
});

describe('retry.adaptive in the policy', () => {
  it('is auto by default, takes on and off, and names a bad value in one line', () => {
    expect(parsePolicy({}).retry.adaptive).toBe('auto');
    expect(parsePolicy({ retry: { adaptive: 'on' } }).retry.adaptive).toBe('on');
    expect(parsePolicy({ retry: { adaptive: 'off' } }).retry.adaptive).toBe('off');
    expect(() => parsePolicy({ retry: { adaptive: true } })).toThrow(
      /^invalid dunning policy:\n {2}- retry\.adaptive: expected one of auto, on, off, got true$/,
    );
  });
});

describe('the learned hour', () => {
  const r = (n: number, wins: number, hour: number, declinesSoFar = 1): RetryObservation[] =>
    retries(n, wins, 24, { localHour: hour, declinesSoFar });
  const once: CaseHistory = {
    invoiceId: 'in_hour',
    openedAt: new Date('2026-11-02T04:00:00Z'),
    cohort: 'smart',
    attempts: [declined('2026-11-02T04:00:00Z')],
    currentPaymentMethod: 'pm_1',
  };

  it('gives the same plan when the case is planned again later the same morning', () => {
    // 06:00 20 %, 07:00 45 %, 08:00 50 %, 09:00 20 %: from the policy's 06:00, 08:00 is clearly better.
    const t = learnTable([...r(300, 60, 6), ...r(300, 135, 7), ...r(300, 150, 8), ...r(300, 60, 9)], builtAt, {
      ...ADAPTIVE_DEFAULTS,
      explorationShare: 0,
    });
    const at = (now: string) =>
      (planNextAttempt(once, berlin, exact, new Date(now), 'Europe/London', t) as { at: Date }).at;
    const first = at('2026-11-02T04:00:01Z');
    expect(first).toEqual(new Date('2026-11-03T07:00:00Z'));
    // Planned again at 05:30 and at 07:10 Berlin on the day (a late event, a worker restart).
    expect(at('2026-11-03T04:30:00Z')).toEqual(first);
    expect(at('2026-11-03T06:10:00Z')).toEqual(first);
  });

  it('never moves a retry so late in the morning that a later retry falls out of the window', () => {
    // A 3-day window with a retry a day for three days: 09:00 is better, but a retry at 09:00 on the
    // first day pushes the third past the window's end at 07:30.
    const policy = parsePolicy({
      baseline: { retryDays: [1, 2] },
      retry: {
        jitterMinutes: 0,
        windowDays: 3,
        maxAttempts: 4,
        categories: { generic: { maxAttempts: 4, spacingHours: [24, 24, 24], stopAfterIdenticalDeclines: 9 } },
      },
    });
    const t = learnTable(
      [1, 2, 3].flatMap((d) => [...r(300, 60, 7, d), ...r(300, 60, 8, d), ...r(300, 150, 9, d)]),
      builtAt,
      { ...ADAPTIVE_DEFAULTS, explorationShare: 0 },
    );
    const h: CaseHistory = { ...once, invoiceId: 'in_chain', openedAt: new Date('2026-11-02T06:30:00Z') };
    h.attempts = [declined('2026-11-02T06:30:00Z')];
    const retriesOf = (table: typeof t | null) => {
      const c: CaseHistory = { ...h, attempts: [...h.attempts] };
      let now = new Date('2026-11-02T06:30:01Z');
      const out: string[] = [];
      for (let i = 0; i < 5; i += 1) {
        const p = planNextAttempt(c, berlin, policy, now, 'Europe/London', table);
        if (p.kind !== 'retry') break;
        out.push(p.at.toISOString());
        c.attempts.push(declined(p.at.toISOString(), { attemptNo: i + 2, source: 'scheduled' }));
        now = new Date(p.at.getTime() + 1000);
      }
      return out;
    };
    expect(retriesOf(null)).toHaveLength(3);
    expect(retriesOf(t)).toHaveLength(3);
  });
});

describe('learned paydays and hours', () => {
  const funds = (n: number, wins: number, daysFromPayday: number | null, localHour = 6) =>
    retries(n, wins, 72, { category: 'funds', daysFromPayday, localHour, declinesSoFar: 1 });
  /** The day after the customer's own payday 60 % of 200 paid; a week or more after it 15 % of 300; other days 25 %. */
  const paydayEvidence = [
    ...funds(200, 120, 1),
    ...[0, 2, 3, 4, 5, 6].flatMap((d) => funds(50, 12, d)),
    ...funds(300, 45, 9),
  ];
  const table = learnTable(paydayEvidence, builtAt, { ...ADAPTIVE_DEFAULTS, explorationShare: 0 });
  const payday = { dayOfMonth: 10, invoiceId: 'in_october', paidAt: new Date('2026-10-10T05:30:00Z') };
  // Tuesday 10 November 2026, 08:00 Berlin: insufficient funds.
  const h: CaseHistory = {
    invoiceId: 'in_funds',
    openedAt: new Date('2026-11-10T07:00:00Z'),
    cohort: 'smart',
    attempts: [declined('2026-11-10T07:00:00Z', { decline: { declineCode: 'insufficient_funds', cardBrand: 'visa' } })],
    currentPaymentMethod: 'pm_1',
  };
  const now = new Date('2026-11-10T07:00:01Z');

  it("moves a funds retry to a day after the customer's own payday when the merchant's data say so, and cites them", () => {
    // The calendar's next payday is Friday 13 November (06:00 Berlin), 3 days after the customer's payday.
    const plain = planNextAttempt(h, { ...berlin, observedPayday: payday }, exact, now, 'Europe/London');
    expect(plain).toMatchObject({ kind: 'retry', at: new Date('2026-11-13T05:00:00Z') });
    const p = planNextAttempt(h, { ...berlin, observedPayday: payday }, exact, now, 'Europe/London', table);
    // 24 h after the decline, Wednesday the 11th at 08:00 Berlin, already inside the window.
    expect(p).toMatchObject({ kind: 'retry', at: new Date('2026-11-11T07:00:00Z') });
    expect((p as { reason: string }).reason).toContain(
      "insufficient_funds: learned payday timing: 57 % success 1 day after the payday over your last 200 funds retries at it after 1 decline (this customer's payday: the 10th, seen when in_october was paid; the calendar's next payday (friday), 3 days after the payday: 26 % over 50)",
    );
  });

  it('keeps the calendar without a payday on record, with too few retries, or for the exploration share', () => {
    const plain = planNextAttempt(h, berlin, exact, now, 'Europe/London') as Extract<Plan, { kind: 'retry' }>;
    const unknown = planNextAttempt(h, berlin, exact, now, 'Europe/London', table) as Extract<Plan, { kind: 'retry' }>;
    expect(unknown.at).toEqual(plain.at);
    expect(unknown.reason).toContain(
      "insufficient_funds: next payday (friday): policy calendar: this customer's payday is not on record yet",
    );
    const few = learnTable(paydayEvidence.slice(0, 150), builtAt);
    const c = {
      policy: { at: plain.at, label: 'the calendar next payday' },
      earliest: new Date('2026-11-11T07:00:00Z'),
      latest: new Date('2026-12-08T07:00:00Z'),
      zone: 'Europe/Berlin',
      window: { startHour: 6, endHour: 10 },
      payday,
      mode: 'auto' as const,
      invoiceId: invoiceWhere(false),
      declinesSoFar: 1,
    };
    expect(chooseFundsDay(few, c)).toEqual({
      at: plain.at,
      moved: false,
      evidence:
        'policy calendar: learned paydays need 200 of your funds retries from customers with a known payday, 150 so far',
    });
    const exploring = chooseFundsDay(learnTable(paydayEvidence, builtAt), { ...c, invoiceId: invoiceWhere(true) });
    expect(exploring).toMatchObject({ at: plain.at, moved: false });
    expect(exploring?.evidence).toMatch(/^policy calendar kept for 10 % of cases/);
    expect(chooseFundsDay(table, { ...c, mode: 'off' })).toBeNull();
    // Funds retries from customers without a known payday do not count towards the payday table.
    const unknownPaydays = learnTable(funds(400, 100, null), builtAt);
    expect(chooseFundsDay(unknownPaydays, c)?.evidence).toBe(
      'policy calendar: learned paydays need 200 of your funds retries from customers with a known payday, 0 so far',
    );
  });

  it("never moves a funds retry past the calendar's slot", () => {
    // Paid on the 20th: its payday is after the calendar's Friday 13th, so the calendar stands.
    const later = { ...payday, dayOfMonth: 20 };
    const q = planNextAttempt(h, { ...berlin, observedPayday: later }, exact, now, 'Europe/London', table);
    expect(q).toMatchObject({ kind: 'retry', at: new Date('2026-11-13T05:00:00Z') });
    expect((q as { reason: string }).reason).toContain('no earlier day did better at 95 %');
  });

  it("moves a retry to a later hour of the window when the merchant's retries at that hour did clearly better", () => {
    const byHour = [
      ...evidence,
      ...[6, 7, 8].flatMap((hour) => retries(300, 60, 24, { localHour: hour })),
      ...retries(300, 150, 24, { localHour: 9 }),
    ];
    const hourly = learnTable(byHour, builtAt, { ...ADAPTIVE_DEFAULTS, explorationShare: 0 });
    const generic: CaseHistory = {
      invoiceId: 'in_hourly',
      openedAt: new Date('2026-11-02T06:00:00Z'),
      cohort: 'smart',
      attempts: [declined('2026-11-02T06:00:00Z')],
      currentPaymentMethod: 'pm_1',
    };
    const at = new Date('2026-11-02T06:00:01Z');
    const plain = planNextAttempt(generic, berlin, exact, at, 'Europe/London');
    expect(plain).toMatchObject({ kind: 'retry', at: new Date('2026-11-03T06:00:00Z') });
    const p = planNextAttempt(generic, berlin, exact, at, 'Europe/London', hourly);
    expect(p).toMatchObject({ kind: 'retry', at: new Date('2026-11-03T08:00:00Z') });
    expect((p as { reason: string }).reason).toContain(
      'at 09:00 local: 49 % success at this hour over your last 300 generic retries at it (07:00: 27 % over 900)',
    );
    // Never earlier than the planned time: that would shorten the learned wait.
    expect(
      chooseHour(hourly, {
        category: 'generic',
        planned: new Date('2026-11-03T08:30:00Z'),
        earliest: new Date('2026-11-03T08:30:00Z'),
        latest: new Date('2026-12-01T00:00:00Z'),
        zone: 'Europe/Berlin',
        window: { startHour: 6, endHour: 10 },
        mode: 'auto',
        invoiceId: 'in_hourly',
      }),
    ).toBeNull();
  });
});

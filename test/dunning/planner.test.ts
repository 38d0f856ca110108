import { describe, expect, it } from 'vitest';
import {
  currentCard,
  planNextAttempt,
  type CaseHistory,
  type CustomerContext,
  type LedgerAttempt,
  type Plan,
} from '../../src/dunning/planner.ts';
import { parsePolicy, type Policy } from '../../src/dunning/policy.ts';
import type { DeclineInfo } from '../../src/dunning/declines.ts';
import { windowClose, zoneOfCountry } from '../../src/dunning/local-time.ts';
import { customerTimeZone } from '../../src/events/objects.ts';

const exact = parsePolicy({ retry: { jitterMinutes: 0 } });
const berlin: CustomerContext = { timeZone: 'Europe/Berlin', country: 'DE', cardBrand: 'visa' };
const newYork: CustomerContext = { timeZone: 'America/New_York', country: 'US', cardBrand: 'visa' };

function declined(at: string, decline: DeclineInfo, extra: Partial<LedgerAttempt> = {}): LedgerAttempt {
  return {
    attemptNo: 1,
    at: new Date(at),
    source: 'stripe',
    outcome: 'declined',
    paymentMethod: 'pm_1',
    decline,
    ...extra,
  };
}

function history(attempts: LedgerAttempt[], extra: Partial<CaseHistory> = {}): CaseHistory {
  const numbered = attempts.map((a, i) => ({ ...a, attemptNo: a.attemptNo === 1 ? i + 1 : a.attemptNo }));
  return {
    invoiceId: 'in_test',
    openedAt: numbered[0]?.at ?? new Date('2026-11-02T08:00:00Z'),
    cohort: 'smart',
    attempts: numbered,
    currentPaymentMethod: 'pm_1',
    ...extra,
  };
}

function plan(
  h: CaseHistory,
  now: string,
  opts: { customer?: CustomerContext; policy?: Policy; merchantZone?: string } = {},
): Plan {
  return planNextAttempt(
    h,
    opts.customer ?? berlin,
    opts.policy ?? exact,
    new Date(now),
    opts.merchantZone ?? 'Europe/London',
  );
}

function retryAt(p: Plan): string {
  if (p.kind !== 'retry') throw new Error(`expected a retry, got ${p.kind}: ${p.reason}`);
  return p.at.toISOString();
}

describe('planNextAttempt: one example per category', () => {
  it('funds: next payday at the opening of the local window', () => {
    // Wed 25 Nov 2026: the next payday is Friday 27 Nov.
    const p = plan(
      history([declined('2026-11-25T09:00:00Z', { declineCode: 'insufficient_funds' })]),
      '2026-11-25T09:00:05Z',
    );
    expect(retryAt(p)).toBe('2026-11-27T05:00:00.000Z');
    expect(p).toMatchObject({
      category: 'funds',
      reason: 'insufficient_funds: next payday (friday), Fri 27 Nov 06:00 Europe/Berlin',
    });
  });

  it("funds: the customer's observed payday is a payday too, unless the policy says otherwise", () => {
    // Mon 23 Nov 2026; the customer's earlier funds failure was paid on 25 October.
    const observedPayday = { dayOfMonth: 25, invoiceId: 'in_october', paidAt: new Date('2026-10-25T06:10:00Z') };
    const h = history([declined('2026-11-23T09:00:00Z', { declineCode: 'insufficient_funds' })]);
    const p = plan(h, '2026-11-23T09:00:05Z', { customer: { ...berlin, observedPayday } });
    expect(retryAt(p)).toBe('2026-11-25T05:00:00.000Z');
    expect(p).toMatchObject({
      reason:
        "insufficient_funds: next payday of this customer's (the 25th, seen when in_october was paid), Wed 25 Nov 06:00 Europe/Berlin",
    });
    const calendarOnly = parsePolicy({ retry: { jitterMinutes: 0, paydays: { observed: false } } });
    expect(
      retryAt(plan(h, '2026-11-23T09:00:05Z', { customer: { ...berlin, observedPayday }, policy: calendarOnly })),
    ).toBe('2026-11-27T05:00:00.000Z');
    // The 31st falls on the last day of a 30-day month.
    const thirtyFirst = { ...observedPayday, dayOfMonth: 31 };
    const q = plan(
      history([declined('2026-11-28T09:00:00Z', { declineCode: 'insufficient_funds' })]),
      '2026-11-28T09:00:05Z',
      {
        customer: { ...berlin, observedPayday: thirtyFirst },
        policy: parsePolicy({
          retry: { jitterMinutes: 0, paydays: { daysOfMonth: [15], lastBusinessDay: false, weekdays: [] } },
        }),
      },
    );
    expect(retryAt(q)).toBe('2026-11-30T05:00:00.000Z');
  });

  it('temporary: retries hours later, inside the local window', () => {
    const p = plan(
      history([declined('2026-11-25T05:10:00Z', { declineCode: 'processing_error' })]),
      '2026-11-25T05:10:01Z',
    );
    expect(retryAt(p)).toBe('2026-11-25T06:10:00.000Z');
    expect(p).toMatchObject({ category: 'temporary' });
    expect((p as { reason: string }).reason).toContain('retry 1 h after the decline');
  });

  it('temporary: honours a Mastercard retry-after (advice 27: four days)', () => {
    const p = plan(
      history([
        declined('2026-11-25T05:10:00Z', {
          declineCode: 'try_again_later',
          networkAdviceCode: '27',
          cardBrand: 'mastercard',
        }),
      ]),
      '2026-11-25T05:10:01Z',
    );
    expect(retryAt(p)).toBe('2026-11-29T05:10:00.000Z');
    expect((p as { reason: string }).reason).toContain('network asked to wait 4 d');
  });

  it('temporary: waits the 24 hours Stripe asks for after card_decline_rate_limit_exceeded', () => {
    const p = plan(
      history([declined('2026-11-25T05:10:00Z', { failureCode: 'card_decline_rate_limit_exceeded' })]),
      '2026-11-25T05:10:01Z',
    );
    expect(retryAt(p)).toBe('2026-11-26T05:10:00.000Z');
    expect((p as { reason: string }).reason).toContain('card_decline_rate_limit_exceeded: Stripe asked to wait 1 d');
  });

  it('generic: retries 1, 3, 5, 8, 11, 15, 20 and 26 days after the failure, then stops on the generic cap', () => {
    // The default spacing spreads eight retries over the 28-day window (docs/policy.md says why).
    const days = ['02', '03', '05', '07', '10', '13', '17', '22', '28'];
    const declines = days.map((d) => declined(`2026-11-${d}T07:00:00Z`, { declineCode: 'do_not_honor' }));
    for (let k = 1; k < days.length; k += 1) {
      const p = plan(history(declines.slice(0, k)), `2026-11-${days[k - 1]}T07:00:01Z`);
      expect(retryAt(p)).toBe(`2026-11-${days[k]}T07:00:00.000Z`);
      expect(p).toMatchObject({ isLast: k === days.length - 1 });
    }
    const stop = plan(history(declines), '2026-11-28T07:00:01Z');
    expect(stop).toMatchObject({ kind: 'stop', category: 'generic' });
    expect((stop as { reason: string }).reason).toContain('9 generic declines, policy allows 9');
  });

  it('generic: stops after identical declines in a row when the policy sets that below its cap', () => {
    const strict = parsePolicy({
      retry: {
        jitterMinutes: 0,
        windowDays: 30,
        categories: { generic: { maxAttempts: 5, spacingHours: [72, 120, 168], stopAfterIdenticalDeclines: 4 } },
      },
    });
    const first = declined('2026-11-02T07:00:00Z', { declineCode: 'do_not_honor' });
    expect(retryAt(plan(history([first]), '2026-11-02T07:00:01Z', { policy: strict }))).toBe(
      '2026-11-05T07:00:00.000Z',
    );
    const four = ['2026-11-02', '2026-11-05', '2026-11-10', '2026-11-17'].map((d) =>
      declined(`${d}T07:00:00Z`, { declineCode: 'do_not_honor' }),
    );
    const stop = plan(history(four), '2026-11-17T07:00:01Z', { policy: strict });
    expect(stop).toMatchObject({ kind: 'stop', category: 'generic' });
    expect((stop as { reason: string }).reason).toContain('4 identical declines in a row');
    // Three identical declines with a different fourth keep going, on the last spacing.
    const mixed = [...four.slice(0, 3), declined('2026-11-17T07:00:00Z', { declineCode: 'generic_decline' })];
    expect(retryAt(plan(history(mixed), '2026-11-17T07:00:01Z', { policy: strict }))).toBe('2026-11-24T07:00:00.000Z');
  });

  it.each([
    ['lost_card', 'hard'],
    ['expired_card', 'customer_action'],
    ['authentication_required', 'authentication'],
  ] as const)('%s (%s): waits for the customer until the window ends', (declineCode, category) => {
    const p = plan(history([declined('2026-11-02T07:00:00Z', { declineCode })]), '2026-11-02T07:00:01Z');
    expect(p).toMatchObject({ kind: 'await_customer', category, until: new Date('2026-11-30T07:00:00Z') });
  });

  it('merchant_error: stops without bothering the customer', () => {
    const p = plan(
      history([declined('2026-11-02T07:00:00Z', { declineCode: 'invalid_amount' })]),
      '2026-11-02T07:00:01Z',
    );
    expect(p).toMatchObject({ kind: 'stop', category: 'merchant_error' });
    expect((p as { reason: string }).reason).toContain('alert ops');
  });
});

describe('planNextAttempt: soft declines that outlast their first schedule', () => {
  // Generic rules as a merchant may set them (fewer retries, stop on identical answers), to see the hand-over.
  const anyHour = parsePolicy({
    retry: {
      jitterMinutes: 0,
      localWindow: { startHour: 0, endHour: 24 },
      categories: { generic: { maxAttempts: 5, spacingHours: [72, 120, 168], stopAfterIdenticalDeclines: 4 } },
    },
  });
  const processing = (at: string) => declined(at, { declineCode: 'processing_error' });

  it('continues a temporary error that outlasts its quick retries with generic spacing, then stops on the generic caps', () => {
    // Quick retries 1 h and 4 h and 24 h after the first three declines, as configured.
    const quick = ['2026-11-02T07:00:00Z', '2026-11-02T08:00:00Z', '2026-11-02T12:00:00Z'].map(processing);
    const third = plan(history(quick), '2026-11-02T12:00:01Z', { policy: anyHour });
    expect(retryAt(third)).toBe('2026-11-03T12:00:00.000Z');
    // The fourth temporary decline used the last quick retry: days apart now, not the end of the case.
    const fourth = [...quick, processing('2026-11-03T12:00:00Z')];
    const p = plan(history(fourth), '2026-11-03T12:00:01Z', { policy: anyHour });
    expect(retryAt(p)).toBe('2026-11-06T12:00:00.000Z');
    expect(p).toMatchObject({ category: 'temporary', isLast: false });
    expect((p as { reason: string }).reason).toContain('spaced as a generic decline: retry 3 d after the decline');
    const fifth = [...fourth, processing('2026-11-06T12:00:00Z')];
    expect(retryAt(plan(history(fifth), '2026-11-06T12:00:01Z', { policy: anyHour }))).toBe('2026-11-11T12:00:00.000Z');
    const sixth = [...fifth, processing('2026-11-11T12:00:00Z')];
    expect(retryAt(plan(history(sixth), '2026-11-11T12:00:01Z', { policy: anyHour }))).toBe('2026-11-18T12:00:00.000Z');
    // Four identical answers since it became generic: the generic rule ends it, inside the window and the cap.
    const stop = plan(history([...sixth, processing('2026-11-18T12:00:00Z')]), '2026-11-18T12:00:01Z', {
      policy: anyHour,
    });
    expect(stop).toMatchObject({ kind: 'stop' });
    expect((stop as { reason: string }).reason).toContain('4 identical declines in a row');
  });

  it('counts escalated temporary errors against the generic cap', () => {
    const policy = parsePolicy({
      retry: {
        jitterMinutes: 0,
        localWindow: { startHour: 0, endHour: 24 },
        categories: {
          temporary: { maxAttempts: 2, spacingHours: [1] },
          generic: { maxAttempts: 2, spacingHours: [24], stopAfterIdenticalDeclines: 9 },
        },
      },
    });
    const two = [processing('2026-11-02T07:00:00Z'), processing('2026-11-02T08:00:00Z')];
    expect(plan(history(two), '2026-11-02T08:00:01Z', { policy })).toMatchObject({ kind: 'retry', isLast: true });
    const three = [...two, processing('2026-11-03T08:00:00Z')];
    const stop = plan(history(three), '2026-11-03T08:00:01Z', { policy });
    expect(stop).toMatchObject({ kind: 'stop', category: 'temporary' });
    expect((stop as { reason: string }).reason).toContain(
      '2 generic declines (counting temporary errors that outlasted their quick retries), policy allows 2',
    );
  });

  it('keeps retrying funds declines on paydays while the window still holds one', () => {
    // Opened Wed 4 Nov; declined again on Fri 6, Fri 13 and Sun 15 (the 15th): Fri 20 is still in the window.
    const funds = ['2026-11-04T09:00:00Z', '2026-11-06T05:00:00Z', '2026-11-13T05:00:00Z', '2026-11-15T05:00:00Z'].map(
      (at) => declined(at, { declineCode: 'insufficient_funds' }),
    );
    const threeWeeks = parsePolicy({ retry: { jitterMinutes: 0, windowDays: 21 } });
    const p = plan(history(funds), '2026-11-15T05:00:01Z', { policy: threeWeeks });
    expect(retryAt(p)).toBe('2026-11-20T05:00:00.000Z');
    // After Fri 20 the window (to 25 Nov) has no payday left: that, not a count, ends the case.
    const stop = plan(
      history([...funds, declined('2026-11-20T05:00:00Z', { declineCode: 'insufficient_funds' })]),
      '2026-11-20T05:00:01Z',
      { policy: threeWeeks },
    );
    expect(stop).toMatchObject({ kind: 'stop', category: 'funds' });
    expect((stop as { reason: string }).reason).toContain('no payday left before the dunning window ends');
  });
});

describe('planNextAttempt: card changes, ledger states and caps', () => {
  it('retries right away when the payment method changed after a hard decline', () => {
    const h = history([declined('2026-11-02T07:00:00Z', { declineCode: 'stolen_card' })], {
      currentPaymentMethod: 'pm_new',
    });
    const p = plan(h, '2026-11-03T15:00:00Z');
    expect(retryAt(p)).toBe('2026-11-03T15:00:00.000Z');
    expect((p as { reason: string }).reason).toContain('payment method changed');
    // Back on the stolen card: never again.
    const back = plan({ ...h, currentPaymentMethod: 'pm_1' }, '2026-11-03T15:00:00Z');
    expect(back.kind).toBe('await_customer');
  });

  it('refuses to plan while an attempt is planned or its outcome unknown', () => {
    for (const outcome of ['unknown', 'planned'] as const) {
      const h = history([
        declined('2026-11-02T07:00:00Z', { declineCode: 'insufficient_funds' }),
        declined('2026-11-06T05:00:00Z', {}, { outcome, source: 'scheduled', decline: null }),
      ]);
      expect(plan(h, '2026-11-06T05:00:01Z')).toMatchObject({ kind: 'blocked' });
    }
  });

  it('does not count not_sent attempts against the cap', () => {
    const policy = parsePolicy({ retry: { maxAttempts: 2, jitterMinutes: 0 } });
    const h = history([
      declined('2026-11-02T07:00:00Z', { declineCode: 'processing_error' }),
      declined('2026-11-02T08:00:00Z', {}, { outcome: 'not_sent', decline: null }),
    ]);
    const p = plan(h, '2026-11-02T08:00:01Z', { policy });
    expect(p).toMatchObject({ kind: 'retry', isLast: true });
    const used = history([...h.attempts, declined('2026-11-02T08:30:00Z', { declineCode: 'processing_error' })]);
    expect(plan(used, '2026-11-02T08:30:01Z', { policy })).toMatchObject({ kind: 'stop' });
  });

  it('stops when the next retry would fall after the dunning window', () => {
    const policy = parsePolicy({
      retry: { windowDays: 2, jitterMinutes: 0, categories: { generic: { spacingHours: [72] } } },
      baseline: { retryDays: [1] },
    });
    const p = plan(
      history([declined('2026-11-02T07:00:00Z', { declineCode: 'generic_decline' })]),
      '2026-11-02T07:00:01Z',
      { policy },
    );
    expect(p).toMatchObject({ kind: 'stop' });
    expect((p as { reason: string }).reason).toContain('after the dunning window ends');
  });

  it('never lets jitter push a retry past the end of the dunning window', () => {
    // The generic spacing lands 10 minutes before the window's end; 60 minutes of jitter must shrink to fit.
    const policy = parsePolicy({
      retry: {
        windowDays: 3,
        jitterMinutes: 60,
        localWindow: { startHour: 0, endHour: 24 },
        categories: { generic: { spacingHours: [72] } },
      },
      baseline: { retryDays: [1] },
    });
    const h = history([declined('2026-11-02T07:00:00Z', { declineCode: 'generic_decline' })], {
      openedAt: new Date('2026-11-02T07:10:00Z'),
    });
    const at = new Date(retryAt(plan(h, '2026-11-02T07:00:01Z', { policy }))).getTime();
    expect(at).toBeGreaterThanOrEqual(Date.parse('2026-11-05T07:00:00Z'));
    expect(at).toBeLessThanOrEqual(Date.parse('2026-11-05T07:10:00Z'));
  });

  it('holds back a retry that would exceed 15 attempts on one card in 30 days', () => {
    const policy = parsePolicy({
      retry: { maxAttempts: 30, jitterMinutes: 0, categories: { temporary: { maxAttempts: 30, spacingHours: [1] } } },
    });
    // 15 declines, one per day from 1 Nov: the next may come only once the first is 30 days old.
    const attempts = Array.from({ length: 15 }, (_, i) =>
      declined(new Date(Date.UTC(2026, 10, 1 + i, 6)).toISOString(), { declineCode: 'processing_error' }),
    );
    const p = plan(history(attempts, { openedAt: new Date('2026-11-01T06:00:00Z') }), '2026-11-15T07:00:00Z', {
      policy,
    });
    expect(p).toMatchObject({ kind: 'stop' });
    expect((p as { reason: string }).reason).toContain('limit of 15 attempts per card in 30 days');
  });

  it('holds back a Mastercard after 10 declines in 24 hours', () => {
    const policy = parsePolicy({
      retry: {
        maxAttempts: 14,
        jitterMinutes: 0,
        localWindow: { startHour: 0, endHour: 24 },
        categories: { temporary: { maxAttempts: 20, spacingHours: [0.25] } },
      },
    });
    const attempts = Array.from({ length: 10 }, (_, i) =>
      declined(new Date(Date.UTC(2026, 10, 2, 6, i * 20)).toISOString(), { declineCode: 'processing_error' }),
    );
    const p = plan(history(attempts), '2026-11-02T09:30:00Z', {
      policy,
      customer: { ...berlin, cardBrand: 'mastercard' },
    });
    expect(retryAt(p)).toBe('2026-11-03T06:00:01.000Z');
    expect((p as { reason: string }).reason).toContain('Mastercard limit of 10 declines per card in 24 hours');
  });
});

describe('planNextAttempt: time zones', () => {
  const sundayPaydays = (window = { startHour: 6, endHour: 10 }) =>
    parsePolicy({
      retry: {
        jitterMinutes: 0,
        localWindow: window,
        paydays: { daysOfMonth: [], lastBusinessDay: false, weekdays: ['sunday'] },
      },
    });

  it.each([
    // [zone, decline (Friday), expected Sunday 06:00 local, in UTC]
    ['Europe/Berlin', '2027-03-26T08:00:00Z', '2027-03-28T04:00:00.000Z'], // spring forward: CEST, UTC+2
    ['Europe/Berlin', '2026-10-23T08:00:00Z', '2026-10-25T05:00:00.000Z'], // fall back: CET, UTC+1
    ['America/New_York', '2027-03-12T14:00:00Z', '2027-03-14T10:00:00.000Z'], // spring forward: EDT, UTC-4
    ['America/New_York', '2026-10-30T14:00:00Z', '2026-11-01T11:00:00.000Z'], // fall back: EST, UTC-5
  ])('in %s a payday retry lands on 06:00 local across the DST change', (timeZone, declineAt, expected) => {
    const p = plan(history([declined(declineAt, { declineCode: 'insufficient_funds' })]), declineAt, {
      policy: sundayPaydays(),
      customer: { ...berlin, timeZone },
    });
    expect(retryAt(p)).toBe(expected);
  });

  it('moves a window that opens inside the spring-forward gap to the first real hour', () => {
    const p = plan(
      history([declined('2027-03-26T08:00:00Z', { declineCode: 'insufficient_funds' })]),
      '2027-03-26T08:00:00Z',
      { policy: sundayPaydays({ startHour: 2, endHour: 5 }) },
    );
    expect(retryAt(p)).toBe('2027-03-28T01:00:00.000Z'); // 03:00 CEST; 02:00 does not exist that night
  });

  it('keeps inside a window on the repeated fall-back hour', () => {
    const p = plan(
      history([declined('2026-11-01T00:30:00Z', { declineCode: 'processing_error' })]),
      '2026-11-01T05:00:00Z',
      {
        policy: parsePolicy({ retry: { jitterMinutes: 0, localWindow: { startHour: 1, endHour: 2 } } }),
        customer: newYork,
      },
    );
    // 01:00 EDT (05:00Z) is inside the window; so is 01:00 EST an hour later.
    expect(retryAt(p)).toBe('2026-11-01T05:00:00.000Z');
  });

  it('keeps the holdout baseline at the same local time across DST', () => {
    const p = plan(
      history([declined('2026-10-23T07:00:00Z', { declineCode: 'insufficient_funds' })], { cohort: 'holdout' }),
      '2026-10-23T07:00:01Z',
    );
    expect(retryAt(p)).toBe('2026-10-26T08:00:00.000Z'); // 09:00 CEST -> 09:00 CET three days later
    expect((p as { reason: string }).reason).toContain('baseline retry, day 3');
  });

  it('falls back to the merchant zone for an invalid customer zone, and says so', () => {
    const p = plan(
      history([declined('2026-11-25T15:00:00Z', { declineCode: 'insufficient_funds' })]),
      '2026-11-25T15:00:01Z',
      { customer: { ...berlin, timeZone: 'Mars/Olympus_Mons' }, merchantZone: 'America/New_York' },
    );
    expect(retryAt(p)).toBe('2026-11-27T11:00:00.000Z'); // Friday 06:00 in New York, not UTC
    expect((p as { reason: string }).reason).toContain(
      'customer time zone "Mars/Olympus_Mons" is invalid, using merchant zone America/New_York',
    );
  });

  it('refuses an invalid merchant zone instead of guessing UTC', () => {
    expect(() =>
      plan(history([declined('2026-11-25T15:00:00Z', { declineCode: 'insufficient_funds' })]), '2026-11-25T15:00:01Z', {
        merchantZone: 'Nowhere/Town',
      }),
    ).toThrow(/Nowhere\/Town/);
  });
});

describe('planNextAttempt: paydays at month end', () => {
  const lastBusinessDayOnly = parsePolicy({
    retry: { jitterMinutes: 0, paydays: { daysOfMonth: [], lastBusinessDay: true, weekdays: [] } },
  });

  it.each([
    ['2026-11-23T08:00:00Z', '2026-11-30T05:00:00.000Z'], // Mon 30 Nov is a weekday
    ['2027-01-20T08:00:00Z', '2027-01-29T05:00:00.000Z'], // 31 Jan 2027 is a Sunday -> Fri 29 Jan
    ['2026-10-20T08:00:00Z', '2026-10-30T05:00:00.000Z'], // 31 Oct 2026 is a Saturday -> Fri 30 Oct
  ])('after a decline on %s the last business day is %s', (declineAt, expected) => {
    const p = plan(history([declined(declineAt, { declineCode: 'insufficient_funds' })]), declineAt, {
      policy: lastBusinessDayOnly,
    });
    expect(retryAt(p)).toBe(expected);
    expect((p as { reason: string }).reason).toContain('last business day');
  });

  it('moves a payday on the 31st to the last day of a short month', () => {
    const policy = parsePolicy({
      retry: { jitterMinutes: 0, windowDays: 30, paydays: { daysOfMonth: [31], lastBusinessDay: false, weekdays: [] } },
    });
    const p = plan(
      history([declined('2027-02-10T08:00:00Z', { declineCode: 'insufficient_funds' })]),
      '2027-02-10T08:00:00Z',
      { policy },
    );
    expect(retryAt(p)).toBe('2027-02-28T05:00:00.000Z');
  });

  it('jitters deterministically and stays in the window', () => {
    const h = history([declined('2026-11-25T09:00:00Z', { declineCode: 'insufficient_funds' })]);
    const jittered = parsePolicy({});
    const a = plan(h, '2026-11-25T09:00:05Z', { policy: jittered });
    const b = plan(h, '2026-11-25T09:00:05Z', { policy: jittered });
    expect(a).toEqual(b);
    const offset = new Date(retryAt(a)).getTime() - new Date('2026-11-27T05:00:00Z').getTime();
    expect(offset).toBeGreaterThanOrEqual(0);
    expect(offset).toBeLessThan(20 * 60_000);
    const other = plan({ ...h, invoiceId: 'in_other' }, '2026-11-25T09:00:05Z', { policy: jittered });
    expect(retryAt(other)).not.toBe(retryAt(a));
  });
});

describe('currentCard: which card a new plan treats as current', () => {
  const a = declined('2026-11-02T07:00:00Z', { declineCode: 'stolen_card' }, { paymentMethod: 'pm_a' });
  const b = declined(
    '2026-11-03T07:00:00Z',
    { declineCode: 'insufficient_funds' },
    { attemptNo: 2, source: 'card_update', paymentMethod: 'pm_b' },
  );

  it('a card the caller names wins', () => {
    expect(currentCard([a], 'pm_new', 'pm_a')).toBe('pm_new');
  });

  it('a default the case has not tried is the current card; one it tried is no news', () => {
    expect(currentCard([a], null, 'pm_c')).toBe('pm_c');
    expect(currentCard([a, b], null, 'pm_a')).toBeNull();
    expect(currentCard([a, b], null, 'pm_b')).toBeNull();
  });

  it('with the last card unknown, the default is taken as the card Stripe tried; with nothing tried, it is the card', () => {
    expect(currentCard([{ ...a, paymentMethod: null }], null, 'pm_c')).toBeNull();
    expect(currentCard([], null, 'pm_c')).toBe('pm_c');
    expect(currentCard([a], null, null)).toBeNull();
  });

  it('a new default turns a wait for the customer into a retry on that card, named in the plan', () => {
    const p = plan(history([a], { currentPaymentMethod: currentCard([a], null, 'pm_c') }), '2026-11-03T15:00:00Z');
    expect(p).toMatchObject({ kind: 'retry', paymentMethod: 'pm_c' });
    const barred = plan(
      history([a, b], { currentPaymentMethod: currentCard([a, b], null, 'pm_a') }),
      '2026-11-03T15:00:00Z',
    );
    expect(barred).toMatchObject({ kind: 'retry', paymentMethod: 'pm_b' });
  });
});

describe('customer time zone from the address', () => {
  it('takes the country zone when the whole country keeps one clock, else leaves it to the merchant default', () => {
    expect(zoneOfCountry('DE')).toBe('Europe/Berlin');
    expect(zoneOfCountry('jp')).toBe('Asia/Tokyo');
    expect(zoneOfCountry('US')).toBeNull();
    expect(zoneOfCountry('AU')).toBeNull();
    expect(zoneOfCountry('XX')).toBeNull();
    expect(zoneOfCountry('Germany')).toBeNull();
    expect(zoneOfCountry(null)).toBeNull();
  });

  it('metadata wins over the address; the address fills in when metadata says nothing', () => {
    const address = (country: string) => ({
      city: null,
      country,
      line1: null,
      line2: null,
      postal_code: null,
      state: null,
    });
    expect(customerTimeZone({ metadata: { time_zone: 'America/Chicago' }, address: address('DE') })).toBe(
      'America/Chicago',
    );
    expect(customerTimeZone({ metadata: {}, address: address('FR') })).toBe('Europe/Paris');
    expect(customerTimeZone({ metadata: {}, address: address('US') })).toBeNull();
    expect(customerTimeZone({ metadata: {}, address: null })).toBeNull();
  });
});

describe('windowClose', () => {
  it('closes a window at a clock change whose new local hour lies outside it (found by fast-check)', () => {
    // Pacific/Chatham falls back on 5 Apr 2026 at 03:45 (+13:45) to 02:45 (+12:45): a retry placed
    // at 03:00 local may be jittered only until 03:45, or it lands at 02:xx, outside 03:00-04:00.
    const at = new Date('2026-04-04T13:15:00.000Z'); // 03:00 +13:45
    expect(windowClose(at, 'Pacific/Chatham', { startHour: 3, endHour: 4 }).toISOString()).toBe(
      '2026-04-04T14:00:00.000Z',
    );
    // A clock change that keeps the window's hours (Berlin springs forward at 02:00 to 03:00) does not.
    expect(
      windowClose(new Date('2026-03-29T00:30:00.000Z'), 'Europe/Berlin', { startHour: 1, endHour: 6 }).toISOString(),
    ).toBe('2026-03-29T04:00:00.000Z');
  });
});

import fc from 'fast-check';
import { IANAZone, DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { classifyDecline, KNOWN_DECLINE_CODES, type DeclineInfo } from '../../src/dunning/declines.ts';
import {
  planNextAttempt,
  type CaseHistory,
  type CustomerContext,
  type LedgerAttempt,
} from '../../src/dunning/planner.ts';
import { parsePolicy, WEEKDAYS, type Policy } from '../../src/dunning/policy.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const RUNS = { numRuns: 300 };
const ZONES = [
  'Europe/Berlin',
  'America/New_York',
  'Asia/Kolkata',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'UTC',
  'America/Sao_Paulo',
];

/**
 * Zones with daylight saving time: whole hours at 01:00-03:00 (Europe, the US, Sydney), at midnight
 * (Havana, Santiago: the local day itself starts late or twice), half an hour (Lord Howe), at :45
 * (Chatham).
 */
const DST_ZONES = [
  'Europe/Berlin',
  'Europe/London',
  'America/New_York',
  'Australia/Sydney',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'America/Havana',
  'America/Santiago',
];

/** The instants in 2026-2027 where the zone's UTC offset changes, to the minute. */
function dstTransitions(zone: string): number[] {
  const z = IANAZone.create(zone);
  const found: number[] = [];
  const WEEK = 7 * DAY;
  for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2028, 0, 1); t += WEEK) {
    if (z.offset(t) === z.offset(t + WEEK)) continue;
    let lo = t;
    let hi = t + WEEK;
    while (hi - lo > 60_000) {
      const mid = lo + Math.ceil((hi - lo) / 120_000) * 60_000;
      if (z.offset(mid) === z.offset(lo)) lo = mid;
      else hi = mid;
    }
    found.push(hi);
  }
  return found;
}

const TRANSITIONS = DST_ZONES.flatMap((zone) => dstTransitions(zone).map((at) => ({ zone, at })));

/** `burst` scenarios hammer one card with many quick declines, to reach the network caps. */
const policyArb = (burst: boolean): fc.Arbitrary<Policy> =>
  fc
    .record({
      maxAttempts: fc.integer({ min: burst ? 20 : 1, max: 30 }),
      windowDays: fc.integer({ min: 1, max: 60 }),
      jitterMinutes: fc.integer({ min: 0, max: 60 }),
      startHour: fc.integer({ min: 0, max: 23 }),
      span: fc.integer({ min: 1, max: 24 }),
      daysOfMonth: fc.uniqueArray(fc.integer({ min: 1, max: 31 }), { maxLength: 3 }),
      lastBusinessDay: fc.boolean(),
      weekdays: fc.uniqueArray(fc.constantFrom(...WEEKDAYS), { maxLength: 2 }),
      catMax: fc.integer({ min: burst ? 20 : 1, max: 30 }),
      spacing: fc.array(fc.integer({ min: 1, max: burst ? 6 : 200 }), { minLength: 1, maxLength: 4 }),
      identical: fc.integer({ min: burst ? 30 : 1, max: burst ? 30 : 6 }),
      retryDays: fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 }),
    })
    .map((r) =>
      parsePolicy({
        retry: {
          maxAttempts: r.maxAttempts,
          windowDays: r.windowDays,
          jitterMinutes: r.jitterMinutes,
          localWindow: { startHour: r.startHour, endHour: Math.min(24, r.startHour + r.span) },
          paydays: {
            daysOfMonth: [...r.daysOfMonth].sort((a, b) => a - b),
            lastBusinessDay: r.lastBusinessDay || (r.daysOfMonth.length === 0 && r.weekdays.length === 0),
            weekdays: r.weekdays,
          },
          categories: {
            funds: { maxAttempts: r.catMax, minSpacingHours: r.spacing[0] },
            temporary: { maxAttempts: r.catMax, spacingHours: r.spacing },
            generic: { maxAttempts: r.catMax, spacingHours: r.spacing, stopAfterIdenticalDeclines: r.identical },
          },
        },
        baseline: { retryDays: [...new Set(r.retryDays.map((d) => Math.min(d, r.windowDays)))].sort((a, b) => a - b) },
      }),
    );

/** Mostly null: advice and network codes are the exception on real declines. */
function rare<T>(arb: fc.Arbitrary<T>, nilWeight: number, valueWeight = 1): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: nilWeight, arbitrary: fc.constant(null) }, { weight: valueWeight, arbitrary: arb });
}

const declineArb = (burst: boolean): fc.Arbitrary<DeclineInfo> =>
  burst
    ? fc.record({
        declineCode: fc.constantFrom(
          'processing_error',
          'issuer_not_available',
          'generic_decline',
          'do_not_honor',
          'insufficient_funds',
        ),
        networkAdviceCode: rare(fc.constantFrom('24', '25', '26', '27', '28', '29', '30'), 1),
      })
    : fc.record({
        // Soft declines dominate real dunning; every known code still shows up.
        declineCode: rare(
          fc.oneof(
            {
              weight: 3,
              arbitrary: fc.constantFrom(
                'insufficient_funds',
                'card_velocity_exceeded',
                'generic_decline',
                'do_not_honor',
                'processing_error',
                'issuer_not_available',
                'not_a_real_code',
              ),
            },
            { weight: 1, arbitrary: fc.constantFrom(...KNOWN_DECLINE_CODES) },
          ),
          1,
          6,
        ),
        failureCode: rare(
          fc.constantFrom('card_declined', 'expired_card', 'authentication_required', 'processing_error'),
          1,
        ),
        adviceCode: rare(fc.constantFrom('do_not_try_again', 'confirm_card_data', 'try_again_later'), 8),
        networkAdviceCode: rare(fc.constantFrom('03', '21', '24', '25', '26', '27', '28', '29', '30', '02'), 5),
        networkDeclineCode: rare(fc.constantFrom('05', '14', '51'), 6),
        cardBrand: rare(fc.constantFrom('visa', 'mastercard', 'amex'), 1),
      });

const attemptArb = (burst: boolean) =>
  fc.record({
    gapMinutes: fc.integer({ min: 0, max: burst ? 150 : 3 * 24 * 60 }),
    outcome: fc.constantFrom<LedgerAttempt['outcome']>(...Array<'declined'>(10).fill('declined'), 'not_sent'),
    source: fc.constantFrom<LedgerAttempt['source']>('stripe', 'scheduled', 'card_update', 'manual'),
    paymentMethod: fc.constantFrom('pm_a', 'pm_a', 'pm_a', 'pm_b', null),
    decline: rare(declineArb(burst), 1, 10),
  });

const scenarioArb = (burst: boolean) =>
  fc
    .record({
      openedAt: fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2027, 11, 31) }).map((ms) => new Date(ms)),
      steps: fc.array(attemptArb(burst), { minLength: burst ? 8 : 0, maxLength: burst ? 26 : 16 }),
      // How the ledger ends: usually with a resolved decline, sometimes paid or still pending.
      ending: fc.constantFrom<'none' | 'succeeded' | 'unknown' | 'planned'>(
        ...Array<'none'>(16).fill('none'),
        'succeeded',
        'unknown',
        'planned',
      ),
      nowGapMinutes: fc.integer({ min: 0, max: burst ? 120 : 5 * 24 * 60 }),
      cohort: fc.constantFrom<'smart' | 'holdout'>('smart', 'smart', 'holdout'),
      currentPaymentMethod: fc.constantFrom<string | null>('same', 'same', 'same', 'same', 'pm_a', 'pm_b', null),
      customer: fc.record<CustomerContext>({
        timeZone: fc.constantFrom(...ZONES, 'Not/A_Zone', null),
        country: fc.constant(null),
        cardBrand: fc.constantFrom('visa', 'mastercard', burst ? 'mastercard' : null),
      }),
      merchantZone: fc.constantFrom(...ZONES),
      policy: policyArb(burst),
    })
    .map((s) => {
      let t = s.openedAt.getTime();
      const attempts: LedgerAttempt[] = s.steps.map((step, i) => {
        t += step.gapMinutes * 60_000;
        return {
          attemptNo: i + 1,
          at: new Date(t),
          source: step.source,
          outcome: step.outcome,
          paymentMethod: step.paymentMethod,
          decline: step.decline,
        };
      });
      const lastPm = attempts.at(-1)?.paymentMethod ?? null;
      if (s.ending !== 'none') {
        attempts.push({
          attemptNo: attempts.length + 1,
          at: new Date(t),
          source: 'scheduled',
          outcome: s.ending,
          paymentMethod: lastPm,
          decline: null,
        });
      }
      const currentPaymentMethod = s.currentPaymentMethod === 'same' ? lastPm : s.currentPaymentMethod;
      const history: CaseHistory = {
        invoiceId: `in_${s.openedAt.getTime()}`,
        openedAt: s.openedAt,
        cohort: s.cohort,
        attempts,
        currentPaymentMethod,
      };
      return { ...s, history, now: new Date(t + s.nowGapMinutes * 60_000) };
    });

interface Scenario {
  history: CaseHistory;
  customer: CustomerContext;
  merchantZone: string;
  policy: Policy;
  now: Date;
}

/** The local window's close on a local day, as the policy defines it: `endHour`, or midnight for 24. */
function closeOn(day: DateTime, endHour: number): DateTime {
  return endHour >= 24 ? day.plus({ days: 1 }).startOf('day') : day.startOf('day').set({ hour: endHour });
}

/**
 * Where time arithmetic breaks: a few days around a DST transition of the customer's zone, the
 * last decline minutes before the local window closes, and "now" either right after it or just
 * before a later closing. A retry planned there sits at the end of the window, so jitter must be
 * clipped to the window's close, and 24 h after a decline can be 23 or 25 local hours.
 */
const edgeScenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    transition: fc.constantFrom(...TRANSITIONS),
    dayShift: fc.integer({ min: -2, max: 2 }),
    startHour: fc.integer({ min: 0, max: 23 }),
    span: fc.integer({ min: 1, max: 6 }),
    declineMinutesBeforeClose: fc.integer({ min: 0, max: 120 }),
    code: fc.constantFrom(
      'generic_decline',
      'do_not_honor',
      'processing_error',
      'issuer_not_available',
      'insufficient_funds',
      'none',
    ),
    earlierDeclines: fc.integer({ min: 0, max: 2 }),
    spacingHours: fc.constantFrom(1, 2, 3, 6, 23, 24, 25, 48),
    now: fc.oneof(
      fc.record({ kind: fc.constant('after_decline' as const), minutes: fc.integer({ min: 0, max: 10 }) }),
      fc.record({
        kind: fc.constant('before_close' as const),
        days: fc.integer({ min: 0, max: 3 }),
        minutes: fc.integer({ min: 0, max: 30 }),
      }),
    ),
    jitterMinutes: fc.integer({ min: 5, max: 60 }),
    zoneFromMerchant: fc.boolean(),
    cardBrand: fc.constantFrom('visa', 'mastercard'),
  })
  .map((e): Scenario => {
    const { zone } = e.transition;
    const endHour = Math.min(24, e.startHour + e.span);
    const day = DateTime.fromMillis(e.transition.at, { zone }).startOf('day').plus({ days: e.dayShift });
    const declineAt = closeOn(day, endHour).minus({ minutes: e.declineMinutesBeforeClose }).toJSDate();
    const spacingMs = e.spacingHours * HOUR;
    const attempts: LedgerAttempt[] = [];
    for (let k = e.earlierDeclines; k >= 0; k -= 1) {
      const at = new Date(declineAt.getTime() - k * (spacingMs + HOUR));
      const decline = e.code === 'none' ? null : { declineCode: e.code };
      attempts.push({
        attemptNo: attempts.length + 1,
        at,
        source: k === e.earlierDeclines ? 'stripe' : 'scheduled',
        outcome: e.code === 'none' ? 'not_sent' : 'declined',
        paymentMethod: 'pm_a',
        decline,
      });
    }
    const nowAt =
      e.now.kind === 'after_decline'
        ? declineAt.getTime() + e.now.minutes * 60_000
        : Math.max(
            declineAt.getTime(),
            closeOn(day.plus({ days: e.now.days }), endHour)
              .minus({ minutes: e.now.minutes })
              .toMillis(),
          );
    const policy = parsePolicy({
      retry: {
        maxAttempts: 20,
        windowDays: 14,
        jitterMinutes: e.jitterMinutes,
        localWindow: { startHour: e.startHour, endHour },
        // Every day a payday: funds retries may also land late in the window.
        paydays: { daysOfMonth: [], lastBusinessDay: false, weekdays: [...WEEKDAYS] },
        categories: {
          funds: { maxAttempts: 10, minSpacingHours: e.spacingHours },
          temporary: { maxAttempts: 10, spacingHours: [e.spacingHours] },
          generic: { maxAttempts: 10, spacingHours: [e.spacingHours], stopAfterIdenticalDeclines: 10 },
        },
      },
    });
    return {
      history: {
        invoiceId: `in_edge_${declineAt.getTime()}`,
        openedAt: attempts[0]!.at,
        cohort: 'smart',
        attempts,
        currentPaymentMethod: 'pm_a',
      },
      customer: { timeZone: e.zoneFromMerchant ? null : zone, country: null, cardBrand: e.cardBrand },
      merchantZone: e.zoneFromMerchant ? zone : 'UTC',
      policy,
      now: new Date(nowAt),
    };
  });

/** Ordinary histories, bursts against one card, and DST or window-closing edges, in equal shares. */
const scenarios: fc.Arbitrary<Scenario> = fc.oneof(scenarioArb(false), scenarioArb(true), edgeScenarioArb);

function run(s: Scenario) {
  return planNextAttempt(s.history, s.customer, s.policy, s.now, s.merchantZone);
}

const counted = (a: LedgerAttempt) => a.outcome === 'declined' || a.outcome === 'succeeded' || a.outcome === 'unknown';

/** What the planner charges: the current payment method, else the card of the last decline. */
function lastDecline(s: Scenario) {
  return s.history.attempts.filter((a) => a.outcome === 'declined').at(-1);
}
function target(s: Scenario): string | null {
  return s.history.currentPaymentMethod ?? lastDecline(s)?.paymentMethod ?? null;
}
function cardChanged(s: Scenario): boolean {
  const last = lastDecline(s);
  return last !== undefined && (target(s) ?? '') !== (last.paymentMethod ?? '');
}
/**
 * A decline without a brand is read with its card's brand as another decline of the same card
 * reported it, else the customer's: Visa's never-retry codes are Visa's only (a network decline
 * code 14 on an Amex card bars nothing), and the card's own brand beats the customer's.
 */
function classify(s: Scenario, a: LedgerAttempt) {
  const sameCard = s.history.attempts
    .filter((x) => x.decline?.cardBrand && (x.paymentMethod ?? '') === (a.paymentMethod ?? ''))
    .sort((x, y) => x.at.getTime() - y.at.getTime());
  const cardBrand = a.decline?.cardBrand ?? sameCard[sameCard.length - 1]?.decline?.cardBrand ?? s.customer.cardBrand;
  return classifyDecline({ ...a.decline, cardBrand });
}

describe('planNextAttempt properties', () => {
  it('never plans a retry in the past or after the dunning window', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const plan = run(s);
        const windowEnd = s.history.openedAt.getTime() + s.policy.retry.windowDays * DAY;
        if (plan.kind === 'retry') {
          expect(plan.at.getTime()).toBeGreaterThanOrEqual(s.now.getTime());
          expect(plan.at.getTime()).toBeLessThanOrEqual(windowEnd);
        }
        if (plan.kind === 'await_customer') expect(plan.until.getTime()).toBeLessThanOrEqual(windowEnd);
      }),
      RUNS,
    );
  });

  it('never exceeds the card-network caps', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const plan = run(s);
        if (plan.kind !== 'retry') return;
        const pm = target(s);
        const at = plan.at.getTime();
        const onCard = s.history.attempts.filter(
          (a) => counted(a) && (a.paymentMethod === null || a.paymentMethod === pm),
        );
        expect(onCard.filter((a) => a.at.getTime() >= at - 30 * DAY).length).toBeLessThan(15);
        const brand = s.customer.cardBrand ?? lastDecline(s)?.decline?.cardBrand ?? null;
        if (brand === 'mastercard') {
          const recentDeclines = onCard.filter((a) => a.outcome === 'declined' && a.at.getTime() >= at - DAY);
          expect(recentDeclines.length).toBeLessThan(10);
        }
      }),
      RUNS,
    );
  });

  it('never retries a card that got a never-retry answer', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const plan = run(s);
        if (plan.kind !== 'retry') return;
        const pm = target(s) ?? '';
        const barred = s.history.attempts.filter(
          (a) => a.outcome === 'declined' && (a.paymentMethod ?? '') === pm && classify(s, a).neverRetrySameCard,
        );
        expect(barred).toEqual([]);
      }),
      RUNS,
    );
  });

  it('honours retry-after advice and never plans a charge while one is pending', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const plan = run(s);
        if (s.history.attempts.some((a) => a.outcome === 'unknown' || a.outcome === 'planned')) {
          expect(plan.kind === 'blocked' || plan.kind === 'stop').toBe(true);
        }
        const last = lastDecline(s);
        if (plan.kind !== 'retry' || !last || cardChanged(s)) return;
        const wait = classify(s, last).retryAfterMs ?? 0;
        expect(plan.at.getTime()).toBeGreaterThanOrEqual(last.at.getTime() + wait);
      }),
      RUNS,
    );
  });

  it('keeps smart-cohort retries inside the local window of the right zone', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const plan = run(s);
        if (plan.kind !== 'retry' || s.history.cohort !== 'smart' || cardChanged(s)) return;
        const zone =
          s.customer.timeZone && IANAZone.isValidZone(s.customer.timeZone) ? s.customer.timeZone : s.merchantZone;
        const hour = DateTime.fromJSDate(plan.at, { zone }).hour;
        expect(hour).toBeGreaterThanOrEqual(s.policy.retry.localWindow.startHour);
        expect(hour).toBeLessThan(s.policy.retry.localWindow.endHour);
        if (s.customer.timeZone === 'Not/A_Zone') expect(plan.reason).toContain('is invalid, using merchant zone');
      }),
      RUNS,
    );
  });

  it('is deterministic and does not touch its inputs', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const before = structuredClone(s.history);
        const first = run(s);
        const again = planNextAttempt(
          structuredClone(s.history),
          { ...s.customer },
          structuredClone(s.policy),
          new Date(s.now),
          s.merchantZone,
        );
        expect(again).toEqual(first);
        expect(s.history).toEqual(before);
      }),
      RUNS,
    );
  });

  it('respects the policy attempt cap counted from the ledger', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const plan = run(s);
        const used = s.history.attempts.filter(counted).length;
        if (used >= s.policy.retry.maxAttempts) expect(plan.kind).not.toBe('retry');
        if (plan.kind === 'retry' && used + 1 === s.policy.retry.maxAttempts) expect(plan.isLast).toBe(true);
      }),
      RUNS,
    );
  });
});

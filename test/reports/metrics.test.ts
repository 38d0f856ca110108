import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  formatMoney,
  formatPercent,
  liftOf,
  liftsByCategory,
  rate,
} from '../../src/reports/metrics.ts';
import { plainMoney } from '../../src/money.ts';
import { parseCurrency, PeriodError, resolvePeriod } from '../../src/reports/period.ts';
import { grid } from '../../src/reports/render-table.ts';

describe('rates and lift', () => {
  it('has no rate for an empty denominator', () => {
    expect(rate(0, 0)).toBeNull();
    expect(rate(3, 4)).toBe(0.75);
  });

  it('gives the lift with a 95 % Agresti-Caffo interval', () => {
    // smart 60/100, holdout 40/100; adjusted 61/102 and 41/102: centre 20/102 = 0.196078,
    // se = sqrt(2 * (61/102) * (41/102) / 102) = 0.068655, 1.959964 * se = 0.134561.
    const lift = liftOf({ cases: 100, recovered: 60 }, { cases: 100, recovered: 40 })!;
    expect(lift.difference).toBeCloseTo(0.2, 12);
    expect(lift.low).toBeCloseTo(0.061517, 5);
    expect(lift.high).toBeCloseTo(0.330639, 5);
    expect(lift.relative).toBeCloseTo(0.5, 12);
  });

  it('keeps a real interval when both groups recovered everything (Wald would claim certainty)', () => {
    const lift = liftOf({ cases: 5, recovered: 5 }, { cases: 3, recovered: 3 })!;
    expect(lift.difference).toBe(0);
    expect(lift.low).toBeLessThan(-0.3);
    expect(lift.high).toBeGreaterThan(0.2);
  });

  it('has no lift without a holdout group, and no relative lift when the holdout recovered nothing', () => {
    expect(liftOf({ cases: 10, recovered: 5 }, { cases: 0, recovered: 0 })).toBeNull();
    expect(liftOf({ cases: 10, recovered: 5 }, { cases: 10, recovered: 0 })!.relative).toBeNull();
  });
});

describe('lift per decline category', () => {
  it('sums the rows of each arm and gives every category its own Agresti-Caffo interval', () => {
    const lifts = liftsByCategory([
      // generic: smart 30/50 (two rows, e.g. two currencies), holdout 10/20.
      { category: 'generic', cohort: 'smart', cases: 20, recovered: 12 },
      { category: 'generic', cohort: 'smart', cases: 30, recovered: 18 },
      { category: 'generic', cohort: 'holdout', cases: 20, recovered: 10 },
      // funds: smart 8/10, holdout 2/10.
      { category: 'funds', cohort: 'smart', cases: 10, recovered: 8 },
      { category: 'funds', cohort: 'holdout', cases: 10, recovered: 2 },
      // Only smart cases: no comparison, so no lift.
      { category: 'fraud', cohort: 'smart', cases: 4, recovered: 0 },
    ]);
    expect(lifts.map((l) => l.category)).toEqual(['generic', 'funds', 'fraud']);
    const [generic, funds, fraud] = lifts;
    expect(generic!.smart).toEqual({ cases: 50, recovered: 30 });
    expect(generic!.holdout).toEqual({ cases: 20, recovered: 10 });
    // Adjusted 31/52 and 11/22: centre 0.096154, se 0.126466, so 0.096154 -+ 1.96 * 0.126466.
    expect(generic!.lift!.difference).toBeCloseTo(0.1, 12);
    expect(generic!.lift!.low).toBeCloseTo(-0.151714, 5);
    expect(generic!.lift!.high).toBeCloseTo(0.344022, 5);
    // Adjusted 9/12 and 3/12: centre 0.5, se 0.176777.
    expect(funds!.lift!.difference).toBeCloseTo(0.6, 12);
    expect(funds!.lift!.low).toBeCloseTo(0.153524, 5);
    expect(funds!.lift!.high).toBeCloseTo(0.846476, 5);
    expect(fraud!.lift).toBeNull();
    expect(fraud!.holdout).toEqual({ cases: 0, recovered: 0 });
  });

  it('is the overall lift when there is one category', () => {
    const [only] = liftsByCategory([
      { category: 'generic', cohort: 'smart', cases: 100, recovered: 60 },
      { category: 'generic', cohort: 'holdout', cases: 100, recovered: 40 },
    ]);
    expect(only!.lift).toEqual(liftOf({ cases: 100, recovered: 60 }, { cases: 100, recovered: 40 }));
  });
});

describe('formatting', () => {
  // Intl separates code and amount with a no-break space.
  it('formats minor units per currency, zero- and three-decimal ones included', () => {
    expect(formatMoney(123456, 'usd')).toBe('$1,234.56');
    expect(formatMoney(123456, 'jpy')).toBe('¥123,456');
    expect(formatMoney(1500, 'kwd')).toBe('KWD\u00a01.500');
    expect(formatMoney(-250, 'eur')).toBe('-€2.50');
    expect(formatMoney(123456, 'eur', 'de')).toBe('1.234,56\u00a0€');
  });

  it('formats percentages and durations', () => {
    expect(formatPercent(null)).toBe('n/a');
    expect(formatPercent(0.4567)).toBe('45.7 %');
    expect(formatDuration(90 * 60)).toBe('1.5 h');
    expect(formatDuration(3 * 86_400)).toBe('3.0 d');
  });
});

describe('period', () => {
  it('defaults to the current calendar month in the merchant time zone', () => {
    // 23:30 UTC on 31 January is already February in Berlin.
    const p = resolvePeriod({ timeZone: 'Europe/Berlin', now: new Date('2026-01-31T23:30:00Z') });
    expect(p).toMatchObject({ fromDate: '2026-02-01', toDate: '2026-02-28' });
    expect(p.start.toISOString()).toBe('2026-01-31T23:00:00.000Z');
    expect(p.end.toISOString()).toBe('2026-02-28T23:00:00.000Z');
  });

  it('takes inclusive dates, and from alone runs to the end of the current month', () => {
    const now = new Date('2026-11-23T10:00:00Z');
    const p = resolvePeriod({ from: '2026-03-29', to: '2026-03-29', timeZone: 'Europe/Berlin', now });
    // The day clocks go forward has 23 hours.
    expect(p.end.getTime() - p.start.getTime()).toBe(23 * 3_600_000);
    expect(resolvePeriod({ from: '2026-01-15', timeZone: 'UTC', now }).toDate).toBe('2026-11-30');
  });

  it('rejects bad dates, reversed periods and malformed currencies with clear messages', () => {
    const now = new Date('2026-11-23T10:00:00Z');
    expect(() => resolvePeriod({ from: '2026-02-30', timeZone: 'UTC', now })).toThrow(
      /--from: "2026-02-30" is not a calendar date/,
    );
    expect(() => resolvePeriod({ to: '23.11.2026', timeZone: 'UTC', now })).toThrow(
      /--to: expected a date as YYYY-MM-DD/,
    );
    expect(() => resolvePeriod({ from: '2026-11-02', to: '2026-11-01', timeZone: 'UTC', now })).toThrow(PeriodError);
    expect(() => parseCurrency('dollars')).toThrow(/three-letter ISO code/);
    expect(parseCurrency('EUR')).toBe('eur');
    expect(parseCurrency(undefined)).toBeNull();
  });
});

describe('terminal grid', () => {
  it('aligns names left and figures right', () => {
    expect(
      grid(
        ['step', 'kind', 'sent to'],
        [
          [1, 'first_notice', 12],
          [2, 'last_chance', 3],
        ],
      ),
    ).toEqual(['  step  kind          sent to', '  1     first_notice       12', '  2     last_chance         3']);
    expect(grid(['a'], [])).toEqual(['  (none)']);
  });
});

describe('plainMoney', () => {
  it('uses Stripe minor units, not the locale data, for the value', () => {
    expect(plainMoney(4_900, 'eur')).toBe('49.00 EUR');
    expect(plainMoney(1_200, 'jpy')).toBe('1200 JPY');
    expect(plainMoney(1_000_000, 'huf')).toBe('10000.00 HUF');
    expect(plainMoney(1_234, 'kwd')).toBe('1.234 KWD');
  });
});

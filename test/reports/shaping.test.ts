import { describe, expect, it } from 'vitest';
import { chargesByNumber, monthStartsOf } from '../../src/reports/queries.ts';

describe('chargesByNumber', () => {
  it('counts attempt N in every case with N charges or more, and a success at the last charge of a recovered case', () => {
    const rows = chargesByNumber([
      { currency: 'eur', charges: 1, won: false, cases: 4, paidAmount: 0 },
      { currency: 'eur', charges: 2, won: true, cases: 3, paidAmount: 300 },
      { currency: 'eur', charges: 3, won: false, cases: 2, paidAmount: 0 },
      { currency: 'usd', charges: 1, won: true, cases: 1, paidAmount: 50 },
    ]);
    const by = (c: string, n: number) => rows.find((r) => r.currency === c && r.attemptNo === n);
    expect(by('eur', 1)).toEqual({ currency: 'eur', attemptNo: 1, attempted: 9, succeeded: 0, succeededAmount: 0 });
    expect(by('eur', 2)).toEqual({ currency: 'eur', attemptNo: 2, attempted: 5, succeeded: 3, succeededAmount: 300 });
    expect(by('eur', 3)).toEqual({ currency: 'eur', attemptNo: 3, attempted: 2, succeeded: 0, succeededAmount: 0 });
    expect(by('eur', 4)).toBeUndefined();
    expect(by('usd', 1)).toEqual({ currency: 'usd', attemptNo: 1, attempted: 1, succeeded: 1, succeededAmount: 50 });
    expect(chargesByNumber([])).toEqual([]);
  });
});

describe('monthStartsOf', () => {
  it('gives each month start in the zone, across a DST change, and ends with the end', () => {
    const starts = monthStartsOf(new Date('2026-02-10T12:00:00Z'), new Date('2026-04-30T22:00:00Z'), 'Europe/Berlin');
    expect(starts.map((d) => d.toISOString())).toEqual([
      '2026-01-31T23:00:00.000Z', // 1 Feb, CET
      '2026-02-28T23:00:00.000Z', // 1 Mar, CET
      '2026-03-31T22:00:00.000Z', // 1 Apr, CEST
      '2026-04-30T22:00:00.000Z',
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { buildReport } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import type { ReportData } from '../../src/reports/queries.ts';
import { csvCell, renderCsv } from '../../src/reports/render-csv.ts';

/** A minimal RFC 4180 reader, to prove the writer's output reads back to the same values. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  return rows;
}

describe('CSV cells', () => {
  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "no"', '"say ""no"""'],
    ['two\nlines', '"two\nlines"'],
    [' padded ', '" padded "'],
    ['=HYPERLINK("http://x")', '"\'=HYPERLINK(""http://x"")"'],
    ['-1+2', "'-1+2"],
    ['@sum', "'@sum"],
    ['+1+cmd|calc', "'+1+cmd|calc"],
    // A leading tab or carriage return hides a formula from a quick look; both are guarded too.
    ['\t=1+1', "'\t=1+1"],
    ['\r=1+1', `"'\r=1+1"`],
  ])('writes %j as %s', (input, expected) => {
    expect(csvCell(input)).toBe(expected);
  });

  it('writes numbers as numbers and missing values as empty cells', () => {
    expect(csvCell(-12)).toBe('-12');
    expect(csvCell(0.25)).toBe('0.25');
    expect(csvCell(null)).toBe('');
  });
});

describe('CSV report', () => {
  it('reads back to the same values when decline codes and reminder kinds are awkward', () => {
    const period = resolvePeriod({
      from: '2026-11-01',
      to: '2026-11-30',
      timeZone: 'UTC',
      now: new Date('2026-12-01T00:00:00Z'),
    });
    const awkward = 'weird, "quoted"\ncode';
    const data: ReportData = {
      query: { period, currency: null, asOf: period.end },
      snapshotAt: period.end,
      cohortStart: period.start,
      timelineUnit: 'day',
      cohortTotals: [
        {
          currency: 'usd',
          opened: 2,
          openedAmount: 3000,
          voided: 0,
          voidedAmount: 0,
          recovered: 1,
          recoveredAmount: 1000,
          lost: 0,
          open: 1,
        },
      ],
      closedTotals: [],
      atRisk: [],
      declines: [
        {
          currency: 'usd',
          category: 'generic',
          code: awkward,
          cases: 2,
          amount: 3000,
          recovered: 1,
          recoveredAmount: 1000,
        },
      ],
      attempts: [],
      paths: [],
      arms: [],
      months: [],
      timeline: [],
      reminders: [
        { currency: 'usd', kind: '=cmd|calc', step: 1, reached: 2, recoveredAfter: 1, merged: 1, deferred: 0 },
      ],
      churn: { activeAtStart: 0, churned: 0 },
      churnRevenue: [],
      policies: [],
    };
    const rows = parseCsv(renderCsv(buildReport(data)));
    expect(rows[0]).toEqual(['currency', 'section', 'key', 'metric', 'value']);
    expect(rows.every((r) => r.length === 5)).toBe(true);
    expect(rows).toContainEqual(['usd', 'decline_code', awkward, 'cases', '2']);
    expect(rows).toContainEqual(['usd', 'reminder', '1:=cmd|calc', 'sent_to', '2']);
    expect(rows).toContainEqual(['usd', 'reminder', '1:=cmd|calc', 'merged', '1']);
    expect(rows).toContainEqual(['usd', 'reminder', '1:=cmd|calc', 'deferred_by_cap', '0']);
    expect(rows).toContainEqual(['usd', 'summary', '', 'recovery_rate_by_count', '0.5']);
    expect(rows.find((r) => r[1] === 'definition' && r[2] === 'Refunds')?.[4]).toMatch(/Not subtracted/);
  });
});

import { describe, expect, it } from 'vitest';
import { buildReport } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import type { ReportData } from '../../src/reports/queries.ts';
import { renderHtml } from '../../src/reports/render-html.ts';

function data(currency: string): ReportData {
  const period = resolvePeriod({
    from: '2026-11-01',
    to: '2026-11-30',
    timeZone: 'UTC',
    now: new Date('2026-12-01T00:00:00Z'),
  });
  return {
    query: { period, currency: null, asOf: period.end },
    snapshotAt: period.end,
    cohortStart: period.start,
    timelineUnit: 'day',
    cohortTotals: [
      {
        currency,
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
    closedTotals: [
      { currency, recovered: 1, recoveredAmount: 1000, partial: 0, lost: 0, lostAmount: 0, p50: 3600, p90: 3600 },
    ],
    atRisk: [{ currency, count: 1, amount: 2000 }],
    declines: [
      {
        currency,
        category: 'funds',
        code: 'insufficient_funds',
        cases: 2,
        amount: 3000,
        recovered: 1,
        recoveredAmount: 1000,
      },
    ],
    attempts: [
      { currency, attemptNo: 1, attempted: 2, succeeded: 0, succeededAmount: 0 },
      { currency, attemptNo: 2, attempted: 2, succeeded: 1, succeededAmount: 1000 },
    ],
    paths: [],
    arms: [],
    months: [],
    timeline: [],
    reminders: [],
    churn: { activeAtStart: 0, churned: 0 },
    churnRevenue: [],
    policies: [],
  };
}

describe('dashboard HTML', () => {
  it('escapes the currency wherever it lands, tile ids included', () => {
    const evil = 'x"><img src=x onerror=alert(1)>';
    const page = renderHtml(buildReport(data(evil)), { json: '/reports.json', csv: '/reports.csv' });
    expect(page).not.toContain('<img');
    expect(page).toContain('<div class="tile" id="x&#34;&#62;&#60;img src=x onerror=alert(1)&#62;-recovered">');
    expect(page).toContain('<table id="x&#34;&#62;&#60;img src=x onerror=alert(1)&#62;-table-attempt">');
  });

  it('shows the attempt and decline-category figures as tables, not only as charts', () => {
    const page = renderHtml(buildReport(data('usd')), { json: '/reports.json', csv: '/reports.csv' });
    expect(page).toMatch(
      /<table id="usd-table-attempt">.*<tr><td class="num">2<\/td><td class="num">2<\/td><td class="num">1<\/td><td>50.0 %<\/td><td>100.0 %<\/td><td>\$10.00<\/td><\/tr>/s,
    );
    expect(page).toMatch(
      /<table id="usd-table-category">.*<tr><td>funds<\/td><td class="num">2<\/td><td class="num">1<\/td><td>50.0 %<\/td><td>\$10.00<\/td><\/tr>/s,
    );
  });
});

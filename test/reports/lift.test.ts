import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadReport, type CurrencyReport } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import { renderCsv } from '../../src/reports/render-csv.ts';
import { renderTable } from '../../src/reports/render-table.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { insertCases, type CaseSpec } from './fixtures.ts';

const ZONE = 'Europe/Berlin';
const NOW = new Date('2026-12-10T12:00:00Z');
const OPENED = '2026-11-05T10:00:00Z';
const CLOSED = '2026-11-12T10:00:00Z';

const generic = { code: 'generic_decline', category: 'generic' } as const;
const funds = { code: 'insufficient_funds', category: 'funds' } as const;

// generic: smart 2/3, holdout 1/2. funds: smart 2/2, holdout 0/2 (one lost, one still open).
// A voided holdout case is left out of every denominator.
const CASES: CaseSpec[] = [
  { id: 'in_g1', amount: 1000, status: 'recovered', openedAt: OPENED, closedAt: CLOSED, cohort: 'smart', ...generic },
  { id: 'in_g2', amount: 1000, status: 'recovered', openedAt: OPENED, closedAt: CLOSED, cohort: 'smart', ...generic },
  { id: 'in_g3', amount: 1000, status: 'lost', openedAt: OPENED, closedAt: CLOSED, cohort: 'smart', ...generic },
  { id: 'in_g4', amount: 1000, status: 'recovered', openedAt: OPENED, closedAt: CLOSED, cohort: 'holdout', ...generic },
  { id: 'in_g5', amount: 1000, status: 'lost', openedAt: OPENED, closedAt: CLOSED, cohort: 'holdout', ...generic },
  { id: 'in_f1', amount: 1000, status: 'recovered', openedAt: OPENED, closedAt: CLOSED, cohort: 'smart', ...funds },
  { id: 'in_f2', amount: 1000, status: 'recovered', openedAt: OPENED, closedAt: CLOSED, cohort: 'smart', ...funds },
  { id: 'in_f3', amount: 1000, status: 'lost', openedAt: OPENED, closedAt: CLOSED, cohort: 'holdout', ...funds },
  { id: 'in_f4', amount: 1000, status: 'open', openedAt: OPENED, cohort: 'holdout', ...funds },
  { id: 'in_v1', amount: 1000, status: 'closed', openedAt: OPENED, closedAt: CLOSED, cohort: 'holdout', ...funds },
];

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await insertCases(db.sql, CASES);
});
afterAll(async () => db?.drop());

async function november(): Promise<{ usd: CurrencyReport; report: Awaited<ReturnType<typeof loadReport>> }> {
  const period = resolvePeriod({ from: '2026-11-01', to: '2026-11-30', timeZone: ZONE, now: NOW });
  const report = await loadReport(db.sql, { period, currency: null, asOf: NOW });
  const usd = report.currencies.find((c) => c.currency === 'usd');
  if (!usd) throw new Error('no usd in the report');
  return { usd, report };
}

describe('holdout lift per decline category', () => {
  it('shows the overall lift and each category with its own 95 % interval', async () => {
    const { usd } = await november();
    // Overall: smart 4/5, holdout 1/4 (the voided case left out).
    expect(usd.policy.smart).toMatchObject({ cases: 5, recovered: 4 });
    expect(usd.policy.holdout).toMatchObject({ cases: 4, recovered: 1 });
    expect(usd.policy.lift!.difference).toBeCloseTo(0.55, 10);
    expect(usd.policy.lift!.low).toBeCloseTo(-0.123302, 5);
    expect(usd.policy.lift!.high).toBeCloseTo(0.885206, 5);

    expect(usd.policy.byCategory.map((r) => r.category)).toEqual(['generic', 'funds']);
    const [g, f] = usd.policy.byCategory;
    expect([g!.smart, g!.holdout]).toEqual([
      { cases: 3, recovered: 2 },
      { cases: 2, recovered: 1 },
    ]);
    // Agresti-Caffo on 3/5 against 2/4.
    expect(g!.lift!.difference).toBeCloseTo(1 / 6, 10);
    expect(g!.lift!.low).toBeCloseTo(-0.551522, 5);
    expect(g!.lift!.high).toBeCloseTo(0.751522, 5);
    expect([f!.smart, f!.holdout]).toEqual([
      { cases: 2, recovered: 2 },
      { cases: 2, recovered: 0 },
    ]);
    expect(f!.lift!.difference).toBeCloseTo(1, 10);
    expect(f!.lift!.low).toBeCloseTo(-0.100114, 5);
    // 1.10 before clipping: a difference of proportions never exceeds 100 points.
    expect(f!.lift!.high).toBe(1);
  });

  it('prints the per-category lift in the table and the CSV', async () => {
    const { report } = await november();
    const table = renderTable(report);
    expect(table).toContain('Lift by decline category');
    expect(table).toMatch(/generic\s+2\/3\s+1\/2\s+\+16\.7 pts\s+-55\.2 pts \.\. \+75\.2 pts/);
    expect(table).toMatch(/funds\s+2\/2\s+0\/2\s+\+100\.0 pts\s+-10\.0 pts \.\. \+100\.0 pts/);
    const csv = renderCsv(report);
    expect(csv).toContain('usd,lift_by_category,funds,holdout_cases,2\r\n');
    expect(csv).toMatch(/usd,lift_by_category,generic,ci95_low,-0\.5515/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { refreshAdaptive } from '../../src/dunning/adaptive-refresh.ts';
import { createLogger } from '../../src/log.ts';
import { loadReport } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import { renderCsv } from '../../src/reports/render-csv.ts';
import { renderHtml } from '../../src/reports/render-html.ts';
import { adaptiveLine, renderTable } from '../../src/reports/render-table.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const NOW = new Date('2026-12-07T05:00:00Z');
const ZONE = 'Europe/Berlin';
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const report = () =>
  loadReport(db.sql, {
    period: resolvePeriod({ from: '2026-11-01', to: '2026-11-30', timeZone: ZONE, now: NOW }),
    currency: null,
    asOf: NOW,
  });

describe('the report on learned retry timing', () => {
  it('says when no snapshot exists yet', async () => {
    const r = await report();
    expect(r.adaptive).toBeNull();
    expect(renderTable(r)).toContain(
      "Learned retry timing: no snapshot yet (the daily refresh has not run); retries follow the policy's timing",
    );
  });

  it('reads in use, refresh time and learned retries from the stored snapshot, not from the ledger', async () => {
    await refreshAdaptive({
      sql: db.sql,
      clock: new FixedClock(NOW),
      log: createLogger('silent'),
      mode: 'auto',
      merchantTimeZone: ZONE,
    });
    // What a refresh over a busy ledger would have stored: the report shows it as stored.
    await db.sql`
      update adaptive_snapshots
         set retries = '{"generic": 512, "funds": 80, "temporary": 0}',
             in_use = '{"generic": true, "funds": false, "temporary": false}'`;
    const r = await report();
    expect(r.adaptive).toEqual({
      computedAt: '2026-12-07T05:00:00.000Z',
      since: '2026-06-10T05:00:00.000Z',
      mode: 'auto',
      inUse: true,
      retries: 592,
      minimumPerCategory: 200,
      categories: [
        { category: 'generic', retries: 512, inUse: true },
        { category: 'funds', retries: 80, inUse: false },
        { category: 'temporary', retries: 0, inUse: false },
      ],
    });
    const line =
      'Learned retry timing (retry.adaptive auto): in use for generic (512 retries); not yet for funds (80 of 200), temporary (0 of 200); learned from 592 retries since 2026-06-10, refreshed 2026-12-07T05:00:00.000Z';
    expect(renderTable(r)).toContain(line);
    expect(renderHtml(r, { json: '/reports.json', csv: '/reports.csv' })).toContain(
      '<p id="adaptive">Learned retry timing (retry.adaptive auto): in use for generic',
    );
    const csv = renderCsv(r);
    expect(csv).toContain(',adaptive,,in_use,1');
    expect(csv).toContain(',adaptive,generic,retries,512');
    expect(csv).toContain(',adaptive,funds,in_use,0');
  });

  it('says when the policy switched it off', () => {
    expect(
      adaptiveLine({
        computedAt: '2026-12-07T05:00:00.000Z',
        since: '2026-06-10T05:00:00.000Z',
        mode: 'off',
        inUse: false,
        retries: 40,
        minimumPerCategory: 200,
        categories: [],
      }),
    ).toBe(
      'Learned retry timing (retry.adaptive off): not used; learned from 40 retries since 2026-06-10, refreshed 2026-12-07T05:00:00.000Z',
    );
  });
});

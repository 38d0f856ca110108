import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { refreshAdaptive } from '../../src/dunning/adaptive-refresh.ts';
import { parsePolicy } from '../../src/dunning/policy.ts';
import { savePolicy } from '../../src/dunning/scheduler.ts';
import { createLogger } from '../../src/log.ts';
import { adaptiveLines } from '../../src/reports/adaptive.ts';
import { loadReport } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import { renderCsv } from '../../src/reports/render-csv.ts';
import { renderHtml } from '../../src/reports/render-html.ts';
import { renderTable } from '../../src/reports/render-table.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { insertCases } from './fixtures.ts';

const NOW = new Date('2026-12-07T05:00:00Z');
const ZONE = 'Europe/Berlin';
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const LINKS = { json: '/reports.json', csv: '/reports.csv' };
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
      "Learned retry timing: no snapshot yet (the daily refresh has not run); retries follow the policy's timing\n",
    );
    expect(renderHtml(r, LINKS)).toContain(
      '<div id="adaptive"><p>Learned retry timing: no snapshot yet (the daily refresh has not run); retries follow the policy&#39;s timing.</p></div>',
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
    // No case in the period: the default's mode is the one the refresh stored.
    expect(r.adaptive).toEqual({
      computedAt: '2026-12-07T05:00:00.000Z',
      since: '2026-06-10T05:00:00.000Z',
      inUse: true,
      retries: 592,
      minimumPerCategory: 200,
      categories: [
        { category: 'generic', retries: 512 },
        { category: 'funds', retries: 80 },
        { category: 'temporary', retries: 0 },
      ],
      policies: [{ name: 'default', mode: 'auto', cases: 0, inUse: { generic: true, funds: false, temporary: false } }],
    });
    const head = 'Learned retry timing: learned from 592 retries since 2026-06-10, refreshed 2026-12-07T05:00:00.000Z';
    const line =
      '  default (retry.adaptive auto as at the refresh, no cases in the period): in use for generic (512 retries); not yet for funds (80 of 200), temporary (0 of 200)';
    expect(renderTable(r)).toContain(`${head}\n${line}\n`);
    expect(renderHtml(r, LINKS)).toContain(
      `<div id="adaptive"><p>${head}.</p><ul><li data-policy="default">default (retry.adaptive auto as at the refresh, no cases in the period): in use for generic`,
    );
    const csv = renderCsv(r);
    expect(csv).toContain(',adaptive,,in_use,1');
    expect(csv).toContain(',adaptive,generic,retries,512');
    expect(csv).toContain(',adaptive_policy,default,mode,auto');
    expect(csv).toContain(',adaptive_policy,default,generic_in_use,1');
    expect(csv).toContain(',adaptive_policy,default,funds_in_use,0');
  });

  it("says per policy with cases in the period whether it is in use, from that policy's own retry.adaptive", async () => {
    // The default is auto with 512 generic retries learned; gold switches learned timing off and
    // silver on. A case keeps the policy version it opened with, so the modes are those versions'.
    const policy = parsePolicy({
      policies: { gold: { retry: { adaptive: 'off' } }, silver: { retry: { adaptive: 'on' } }, bronze: {} },
    });
    await savePolicy(db.sql, policy);
    const named = policy.segments!.policies;
    const at = (day: string) => `${day}T10:00:00Z`;
    await insertCases(db.sql, [
      { id: 'in_d1', amount: 1000, status: 'open', openedAt: at('2026-11-10'), policyVersion: policy.version },
      {
        id: 'in_d2',
        amount: 1000,
        status: 'lost',
        openedAt: at('2026-11-02'),
        closedAt: at('2026-11-25'),
        policyVersion: policy.version,
      },
      {
        id: 'in_g1',
        amount: 9000,
        status: 'open',
        openedAt: at('2026-11-12'),
        policyName: 'gold',
        policyVersion: named.gold!.version,
      },
      // Opened before the period and recovered in it: its retries in November ran silver's timing.
      {
        id: 'in_s1',
        amount: 500,
        status: 'recovered',
        openedAt: at('2026-10-20'),
        closedAt: at('2026-11-03'),
        policyName: 'silver',
        policyVersion: named.silver!.version,
      },
      // Over before the period began: bronze ran nothing in November.
      {
        id: 'in_b1',
        amount: 500,
        status: 'lost',
        openedAt: at('2026-09-01'),
        closedAt: at('2026-09-29'),
        policyName: 'bronze',
        policyVersion: named.bronze!.version,
      },
    ]);
    const r = await report();
    expect(r.adaptive?.policies).toEqual([
      { name: 'default', mode: 'auto', cases: 2, inUse: { generic: true, funds: false, temporary: false } },
      { name: 'gold', mode: 'off', cases: 1, inUse: { generic: false, funds: false, temporary: false } },
      { name: 'silver', mode: 'on', cases: 1, inUse: { generic: true, funds: true, temporary: false } },
    ]);
    expect(r.adaptive?.inUse).toBe(true);
    const lines = [
      'Learned retry timing: learned from 592 retries since 2026-06-10, refreshed 2026-12-07T05:00:00.000Z',
      '  default (retry.adaptive auto, 2 cases): in use for generic (512 retries); not yet for funds (80 of 200), temporary (0 of 200)',
      '  gold (retry.adaptive off, 1 case): not used',
      '  silver (retry.adaptive on, 1 case): in use for generic (512 retries), funds (80 retries); not yet for temporary (none yet)',
    ];
    expect(renderTable(r)).toContain(lines.join('\n') + '\n');
    const html = renderHtml(r, LINKS);
    expect(html).toContain(
      '<li data-policy="default">default (retry.adaptive auto, 2 cases): in use for generic (512 retries); not yet for funds (80 of 200), temporary (0 of 200)</li>',
    );
    expect(html).toContain('<li data-policy="gold">gold (retry.adaptive off, 1 case): not used</li>');
    expect(html).toContain(
      '<li data-policy="silver">silver (retry.adaptive on, 1 case): in use for generic (512 retries), funds (80 retries); not yet for temporary (none yet)</li>',
    );
    expect(html).not.toContain('bronze');
    const csv = renderCsv(r);
    expect(csv).toContain(',adaptive_policy,gold,mode,off');
    expect(csv).toContain(',adaptive_policy,gold,generic_in_use,0');
    expect(csv).toContain(',adaptive_policy,silver,cases,1');
    expect(csv).toContain(',adaptive_policy,silver,funds_in_use,1');

    // The currency filter narrows the policies as it narrows every figure: no EUR case, only the default.
    const eur = await loadReport(db.sql, {
      period: resolvePeriod({ from: '2026-11-01', to: '2026-11-30', timeZone: ZONE, now: NOW }),
      currency: 'eur',
      asOf: NOW,
    });
    expect(eur.adaptive?.policies.map((p) => [p.name, p.cases])).toEqual([['default', 0]]);
  });

  it('says when the policy switched it off', () => {
    expect(
      adaptiveLines({
        computedAt: '2026-12-07T05:00:00.000Z',
        since: '2026-06-10T05:00:00.000Z',
        inUse: false,
        retries: 40,
        minimumPerCategory: 200,
        categories: [],
        policies: [
          { name: 'default', mode: 'off', cases: 3, inUse: { generic: false, funds: false, temporary: false } },
        ],
      }),
    ).toEqual({
      head: 'Learned retry timing: learned from 40 retries since 2026-06-10, refreshed 2026-12-07T05:00:00.000Z',
      policies: [{ name: 'default', text: 'default (retry.adaptive off, 3 cases): not used' }],
    });
  });
});

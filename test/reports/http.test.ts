import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { authorized, reportRoutes } from '../../src/reports/routes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { insertCases, NOVEMBER } from './fixtures.ts';
import { serveRoutes } from './serve.ts';

const TOKEN = 'reports-token-0123456789';
const OPS = 'alice-ops-token-0123456789';
const clock = new FixedClock('2026-12-10T12:00:00Z');
let db: TestDatabase;
let on: Awaited<ReturnType<typeof serveRoutes>>;
let off: Awaited<ReturnType<typeof serveRoutes>>;

beforeAll(async () => {
  db = await createTestDatabase();
  await insertCases(db.sql, NOVEMBER);
  on = await serveRoutes(
    reportRoutes({
      sql: db.sql,
      clock,
      config: { reportsToken: TOKEN, defaultTimeZone: 'Europe/Berlin', opsTokens: [{ name: 'alice', token: OPS }] },
    }),
  );
  off = await serveRoutes(
    reportRoutes({ sql: db.sql, clock, config: { reportsToken: null, defaultTimeZone: 'Europe/Berlin' } }),
  );
});
afterAll(async () => {
  await on?.close();
  await off?.close();
  await db?.drop();
});

const basic = (password: string) => `Basic ${Buffer.from(`ops:${password}`).toString('base64')}`;

describe('report routes', () => {
  it('also let the ops (OPS_TOKENS) read the reports: who may act may read', async () => {
    const res = await fetch(`${on.base}/reports.json?from=2026-11-01&to=2026-11-30`, {
      headers: { authorization: basic(OPS) },
    });
    expect(res.status).toBe(200);
  });

  it.each(['/reports', '/reports.json', '/reports.csv'])(
    '%s answers 401 with a challenge without the token',
    async (path) => {
      const res = await fetch(`${on.base}${path}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/Basic realm="dunning reports"/);
      const wrong = await fetch(`${on.base}${path}`, { headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.status).toBe(401);
    },
  );

  it('serves JSON with a bearer token, for the period asked', async () => {
    const res = await fetch(`${on.base}/reports.json?from=2026-11-01&to=2026-11-30&currency=USD`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as {
      currency: string;
      currencies: Array<{ currency: string; recovered: { amount: { minor: number } } }>;
    };
    expect(body.currency).toBe('usd');
    expect(body.currencies.map((c) => [c.currency, c.recovered.amount.minor])).toEqual([['usd', 6000]]);
  });

  it('serves CSV and HTML with the token as basic-auth password', async () => {
    const csv = await fetch(`${on.base}/reports.csv?from=2026-11-01&to=2026-11-30`, {
      headers: { authorization: basic(TOKEN) },
    });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-disposition')).toBe(
      'attachment; filename="dunning-report-2026-11-01-2026-11-30.csv"',
    );
    expect(await csv.text()).toContain('usd,summary,,recovered_amount,6000\r\n');
    const html = await fetch(`${on.base}/reports?from=2026-11-01&to=2026-11-30`, {
      headers: { authorization: basic(TOKEN) },
    });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const page = await html.text();
    expect(page).toContain('$60.00');
    expect(page).not.toMatch(/<script|https?:\/\/(?!127)/);
  });

  it('answers 400 with the reason for a bad period', async () => {
    const res = await fetch(`${on.base}/reports.json?from=2026-11-30&to=2026-11-01`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/from 2026-11-30 is after to 2026-11-01/);
  });

  it('answers 400 with the reason for a currency that is not three letters', async () => {
    const res = await fetch(`${on.base}/reports.csv?currency=euro`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(400);
    expect(await res.text()).toBe('currency: expected a three-letter ISO code such as usd or EUR, got "euro"\n');
  });

  it.each(['POST', 'PUT', 'DELETE'])('answers %s with 405 and the methods it allows', async (method) => {
    const res = await fetch(`${on.base}/reports.json`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers HEAD like GET, without a body', async () => {
    const res = await fetch(`${on.base}/reports.csv?from=2026-11-01&to=2026-11-30`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(
      'attachment; filename="dunning-report-2026-11-01-2026-11-30.csv"',
    );
    expect(await res.text()).toBe('');
    const anonymous = await fetch(`${on.base}/reports`, { method: 'HEAD' });
    expect(anonymous.status).toBe(401);
  });

  it('is off, and says so, when no token is configured', async () => {
    const res = await fetch(`${off.base}/reports`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/dashboard is off: set REPORTS_TOKEN/);
  });
});

describe('token check', () => {
  it('accepts the token only as bearer or as basic-auth password', () => {
    expect(authorized(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(authorized(`bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(authorized(basic(TOKEN), TOKEN)).toBe(true);
    expect(authorized(`Basic ${Buffer.from(`${TOKEN}:`).toString('base64')}`, TOKEN)).toBe(false);
    expect(authorized(`Token ${TOKEN}`, TOKEN)).toBe(false);
    expect(authorized(TOKEN, TOKEN)).toBe(false);
    expect(authorized(undefined, TOKEN)).toBe(false);
    expect(authorized('Bearer ', TOKEN)).toBe(false);
  });
});

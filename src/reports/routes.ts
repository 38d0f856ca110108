import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import { loadReport } from './build.ts';
import { parseCurrency, PeriodError, resolvePeriod } from './period.ts';
import { renderCsv } from './render-csv.ts';
import { renderHtml } from './render-html.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * Connections for report queries in `dunning start` (their own pool, see openRuntime). A report runs
 * eleven queries at once: on the shared pool of ten, two or three dashboard refreshes held every
 * connection and webhooks waited behind them. A pool of their own bounds what reports can take,
 * however many run; more reports only queue longer among themselves. Three is enough on the
 * two-core machines this targets (the database cannot run more queries at once anyway).
 */
export const REPORT_POOL_SIZE = 3;

export interface ReportRouteDeps {
  sql: Sql;
  config: Pick<Config, 'reportsToken' | 'defaultTimeZone'> & Partial<Pick<Config, 'opsTokens'>>;
  clock: Clock;
  log?: Logger;
}

/** GET handlers keyed by path, for the HTTP server to mount. */
export function reportRoutes(deps: ReportRouteDeps): Record<'/reports' | '/reports.json' | '/reports.csv', Handler> {
  return {
    '/reports': handler(deps, 'html'),
    '/reports.json': handler(deps, 'json'),
    '/reports.csv': handler(deps, 'csv'),
  };
}

type Format = 'html' | 'json' | 'csv';

// No script, no external anything: the page must render offline and leak nothing.
const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

function handler(deps: ReportRouteDeps, format: Format): Handler {
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'text/plain', 'Method not allowed\n', { allow: 'GET, HEAD' });
    }
    const token = deps.config.reportsToken;
    if (!token) {
      return send(
        res,
        503,
        'text/plain',
        'The reports dashboard is off: set REPORTS_TOKEN (16+ characters) to turn it on.\n',
      );
    }
    // Who may act at /ops (OPS_TOKENS) may read the figures too; every token is compared.
    const opsToken = (deps.config.opsTokens ?? []).reduce(
      (hit, t) => authorized(req.headers.authorization, t.token) || hit,
      false,
    );
    if (!authorized(req.headers.authorization, token) && !opsToken) {
      res.setHeader('www-authenticate', [
        'Basic realm="dunning reports", charset="UTF-8"',
        'Bearer realm="dunning reports"',
      ]);
      return send(
        res,
        401,
        'text/plain',
        'Reports need the REPORTS_TOKEN, as a bearer token or as the basic-auth password.\n',
      );
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const q = url.searchParams;
    let period;
    let currency;
    try {
      period = resolvePeriod({
        from: q.get('from'),
        to: q.get('to'),
        timeZone: deps.config.defaultTimeZone,
        now: deps.clock.now(),
      });
      currency = parseCurrency(q.get('currency'));
    } catch (err) {
      if (err instanceof PeriodError) return send(res, 400, 'text/plain', `${err.message.replace(/--/g, '')}\n`);
      throw err;
    }
    try {
      const report = await loadReport(deps.sql, { period, currency, asOf: deps.clock.now() });
      const search = url.search;
      if (format === 'json') return send(res, 200, 'application/json', JSON.stringify(report, null, 2) + '\n');
      if (format === 'csv') {
        return send(res, 200, 'text/csv; charset=utf-8', renderCsv(report), {
          'content-disposition': `attachment; filename="dunning-report-${period.fromDate}-${period.toDate}.csv"`,
        });
      }
      return send(
        res,
        200,
        'text/html; charset=utf-8',
        renderHtml(report, { json: `/reports.json${search}`, csv: `/reports.csv${search}` }),
      );
    } catch (err) {
      deps.log?.error({ err, format }, 'report failed');
      return send(res, 500, 'text/plain', 'The report could not be built; see the server log.\n');
    }
  };
}

/**
 * Accepts `Bearer <token>` or `Basic base64(anything:<token>)`. Both sides are hashed first so the
 * comparison runs in constant time whatever the lengths.
 */
export function authorized(header: string | undefined, token: string): boolean {
  const presented = presentedToken(header);
  return presented !== null && sameSecret(presented, token);
}

/** The token a request presents: `Bearer <token>`, or the password of `Basic`; null when neither. */
export function presentedToken(header: string | undefined): string | null {
  if (!header) return null;
  const space = header.indexOf(' ');
  if (space < 0) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') return value;
  if (scheme !== 'basic') return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : decoded.slice(colon + 1);
}

/** Constant time whatever the lengths: both sides are hashed first. */
export function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

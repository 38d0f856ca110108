import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import { BodyTooLarge, readRawBody } from '../http/body.ts';
import type { Logger } from '../log.ts';
import type { TemplateSet } from '../reminders/templates.ts';
import { accessOf, csrfValid, type Access } from './access.ts';
import { performAction, type ActionDeps } from './actions.ts';
import { auditCsv, auditEntry, auditLog, OPS_ACTIONS, type OpsAction } from './audit.ts';
import { listCasePage, policyVersions } from './case-list.ts';
import { loadCaseView } from './case-view.ts';
import { FilterError, parseFilters } from './filters.ts';
import { renderCase, renderConfirm } from './render-case.ts';
import { renderCaseList } from './render-list.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface OpsRouteDeps {
  sql: Sql;
  clock: Clock;
  log: Logger;
  config: Pick<Config, 'reportsToken' | 'opsTokens' | 'merchantName' | 'supportEmail' | 'merchantLogoUrl'>;
  /** For email previews on the case page; null: no previews. */
  templates: TemplateSet | null;
  /** What acting needs; null: the pages are read-only for everyone (e.g. no OPS_TOKENS). */
  actions: Omit<ActionDeps, 'sql' | 'clock' | 'log'> | null;
}

// No script, nothing from another host; forms post only here.
const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const INVOICE = /^in_[\w]{1,250}$/;

/** The ops pages, keyed by path for the HTTP server to mount. */
export function opsRoutes(deps: OpsRouteDeps): Record<string, Handler> {
  return {
    '/ops': guarded(deps, ['GET'], caseList),
    '/ops/case': guarded(deps, ['GET'], casePage),
    '/ops/confirm': guarded(deps, ['GET'], confirmPage),
    '/ops/action': guarded(deps, ['POST'], action),
    '/ops/audit.csv': guarded(deps, ['GET'], auditExport),
  };
}

type Page = (deps: OpsRouteDeps, req: IncomingMessage, res: ServerResponse, access: Access, url: URL) => Promise<void>;

function guarded(deps: OpsRouteDeps, methods: string[], page: Page): Handler {
  return async (req, res) => {
    const allowed = methods.includes('GET') ? [...methods, 'HEAD'] : methods;
    if (!allowed.includes(req.method ?? '')) {
      return send(res, 405, 'text/plain', 'Method not allowed\n', { allow: allowed.join(', ') });
    }
    if (deps.config.reportsToken === null && deps.config.opsTokens.length === 0) {
      return send(
        res,
        503,
        'text/plain',
        'The ops pages are off: set OPS_TOKENS (to act) or REPORTS_TOKEN (to read).\n',
      );
    }
    const access = accessOf(req.headers.authorization, deps.config);
    if (!access) {
      res.setHeader('www-authenticate', ['Basic realm="dunning ops", charset="UTF-8"', 'Bearer realm="dunning ops"']);
      return send(
        res,
        401,
        'text/plain',
        'The ops pages need a token from OPS_TOKENS (to act) or REPORTS_TOKEN (to read), as a bearer token or as the basic-auth password.\n',
      );
    }
    await page(deps, req, res, access, new URL(req.url ?? '/', 'http://localhost'));
  };
}

const caseList: Page = async (deps, _req, res, access, url) => {
  let filters;
  try {
    filters = parseFilters(url.searchParams);
  } catch (err) {
    if (!(err instanceof FilterError)) throw err;
    const empty = parseFilters(new URLSearchParams());
    const html = renderCaseList(access, empty, { rows: [], next: null }, { policies: [] }, err.message);
    return send(res, 400, 'text/html; charset=utf-8', html);
  }
  const [page, policies] = await Promise.all([
    listCasePage(deps.sql, filters, deps.clock.now()),
    policyVersions(deps.sql),
  ]);
  return send(res, 200, 'text/html; charset=utf-8', renderCaseList(access, filters, page, { policies }));
};

function invoiceOf(url: URL | URLSearchParams): string | null {
  const v = (url instanceof URL ? url.searchParams : url).get('invoice');
  return v && INVOICE.test(v) ? v : null;
}

async function viewOf(deps: OpsRouteDeps, invoiceId: string) {
  return loadCaseView(deps.sql, invoiceId, { now: deps.clock.now(), templates: deps.templates, config: deps.config });
}

const casePage: Page = async (deps, _req, res, access, url) => {
  const invoiceId = invoiceOf(url);
  if (!invoiceId) return send(res, 400, 'text/plain', 'invoice: expected an invoice id such as in_123\n');
  const view = await viewOf(deps, invoiceId);
  if (!view) return send(res, 404, 'text/plain', `No dunning case for invoice ${invoiceId}.\n`);
  const auditId = Number(url.searchParams.get('audit'));
  const banner = Number.isSafeInteger(auditId) && auditId > 0 ? await auditEntry(deps.sql, auditId) : null;
  const shown = banner && banner.invoiceId === invoiceId ? banner : null;
  return send(res, 200, 'text/html; charset=utf-8', renderCase(access, view, shown));
};

function actionOf(v: string | null): OpsAction | null {
  return (OPS_ACTIONS as readonly string[]).includes(v ?? '') ? (v as OpsAction) : null;
}

const READ_ONLY = 'This token is read-only (REPORTS_TOKEN): acting on cases needs a token from OPS_TOKENS.\n';

const confirmPage: Page = async (deps, _req, res, access, url) => {
  if (access.role !== 'ops') return send(res, 403, 'text/plain', READ_ONLY);
  const invoiceId = invoiceOf(url);
  const act = actionOf(url.searchParams.get('action'));
  if (!invoiceId || !act)
    return send(res, 400, 'text/plain', `expected invoice=in_... and action=${OPS_ACTIONS.join('|')}\n`);
  const view = await viewOf(deps, invoiceId);
  if (!view) return send(res, 404, 'text/plain', `No dunning case for invoice ${invoiceId}.\n`);
  return send(res, 200, 'text/html; charset=utf-8', renderConfirm(access, view, act));
};

/** A cross-site form post carries its Origin; a same-site one ours (or none, from older clients). */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin || origin === 'null') return origin !== 'null';
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

const action: Page = async (deps, req, res, access) => {
  if (access.role !== 'ops') return send(res, 403, 'text/plain', READ_ONLY);
  if (!deps.actions) return send(res, 503, 'text/plain', 'Actions are not available in this process.\n');
  let form: URLSearchParams;
  try {
    form = new URLSearchParams((await readRawBody(req, 16 * 1024)).toString('utf8'));
  } catch (err) {
    if (err instanceof BodyTooLarge) return send(res, 413, 'text/plain', 'Form too large\n');
    throw err;
  }
  if (!sameOrigin(req) || !csrfValid(access, form.get('csrf'))) {
    return send(
      res,
      403,
      'text/plain',
      'This form did not come from the ops pages (missing or wrong CSRF value): open the case again and confirm from there.\n',
    );
  }
  const invoiceId = invoiceOf(form);
  const act = actionOf(form.get('action'));
  if (!invoiceId || !act)
    return send(res, 400, 'text/plain', `expected invoice=in_... and action=${OPS_ACTIONS.join('|')}\n`);
  const result = await performAction(
    { sql: deps.sql, clock: deps.clock, log: deps.log, ...deps.actions },
    access.name,
    act,
    invoiceId,
  );
  deps.log.info({ actor: access.name, action: act, invoiceId, outcome: result.outcome }, 'ops action');
  // Post/redirect/get: a reload shows the result instead of acting twice.
  res.writeHead(303, {
    location: `/ops/case?invoice=${encodeURIComponent(invoiceId)}&audit=${result.auditId}`,
    'cache-control': 'no-store',
  });
  res.end();
};

const auditExport: Page = async (deps, _req, res, _access, url) => {
  const invoice = url.searchParams.get('invoice');
  const invoiceId = invoice ? invoiceOf(url) : null;
  if (invoice && !invoiceId) return send(res, 400, 'text/plain', 'invoice: expected an invoice id such as in_123\n');
  const entries = await auditLog(deps.sql, { invoiceId, limit: 100_000 });
  return send(res, 200, 'text/csv; charset=utf-8', auditCsv(entries), {
    'content-disposition': `attachment; filename="dunning-ops-audit${invoiceId ? `-${invoiceId}` : ''}.csv"`,
  });
};

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    // Invoice ids must not leak to other sites; `no-referrer` would also make the browser send
    // `Origin: null` on our own form posts, which the origin check must refuse.
    'referrer-policy': 'same-origin',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

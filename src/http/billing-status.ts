/**
 * The in-app billing status (docs/billing-status.md):
 * - `GET /api/v1/customers/{id}/billing-status` and `POST /api/v1/customers/{id}/banner-token`, for
 *   the merchant's backend, behind API_KEYS;
 * - `GET /embed/billing-banner.js` and `GET /embed/billing-status?token=...`, for the merchant's
 *   pages: the token is short-lived and names one customer; CORS lets BANNER_ORIGINS read it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { cardLinkUrl, createCardLinkSigner, type CardLinkSigner } from '../card-link.ts';
import { apiKeyName, presentedApiKey } from '../billing-status/api-keys.ts';
import { decideBillingStatus, type BillingStatus } from '../billing-status/decide.ts';
import { EMBED_SCRIPT } from '../billing-status/embed-script.ts';
import { loadCustomerDue } from '../billing-status/queries.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import { chooseLocale, type Locale } from '../reminders/localize.ts';
import { sendJson, type Routes } from './server.ts';

export interface BillingStatusDeps {
  sql: Sql;
  clock: Clock;
  config: Pick<
    Config,
    'apiKeys' | 'bannerOrigins' | 'bannerTokenMinutes' | 'defaultLocale' | 'publicUrl' | 'updateCardLinkDays'
  >;
  /** Signs update-card links; null without PUBLIC_URL (the invoice's hosted page is linked instead). */
  cardLinks: CardLinkSigner | null;
  /** Signs banner tokens; null without STRIPE_SECRET_KEY (no embedding). */
  bannerTokens: CardLinkSigner | null;
}

/** Banner tokens are signed like update-card links, under their own key: one never passes as the other. */
export const BANNER_TOKEN_LABEL = 'stripe-dunning-worker/billing-banner/v1';
const API_PREFIX = '/api/v1/customers/';
const API_PATH = /^\/api\/v1\/customers\/([^/]+)\/(billing-status|banner-token)$/;
const CUSTOMER_ID = /^[A-Za-z0-9_]{1,255}$/;
const DAY_MS = 86_400_000;
const NO_STORE = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
const SCRIPT_ETAG = `"${createHash('sha256').update(EMBED_SCRIPT).digest('base64url').slice(0, 16)}"`;

export function billingStatusRoutes(deps: BillingStatusDeps): Routes {
  return {
    [`${API_PREFIX}*`]: async (req, res, ctx) => {
      // Every request pays for the same hash and comparisons before anything else is looked at.
      const keyName = apiKeyName(presentedApiKey(req.headers.authorization), deps.config.apiKeys);
      if (keyName === null) {
        ctx.annotate({ apiClient: null });
        return sendJson(
          res,
          401,
          { error: 'an API key from API_KEYS is required, as Authorization: Bearer <key>' },
          { ...NO_STORE, 'www-authenticate': 'Bearer realm="dunning api"' },
        );
      }
      // The key's name, not the key: the log line says which backend asked.
      ctx.annotate({ apiClient: keyName });
      const m = API_PATH.exec(new URL(req.url ?? '/', 'http://localhost').pathname);
      if (!m) return sendJson(res, 404, { error: 'not found' }, NO_STORE);
      const [, rawId = '', what] = m;
      let customerId: string;
      try {
        customerId = decodeURIComponent(rawId);
      } catch {
        customerId = rawId;
      }
      const method = what === 'billing-status' ? 'GET' : 'POST';
      if (req.method !== method) return sendJson(res, 405, { error: `use ${method}` }, { ...NO_STORE, allow: method });
      if (!CUSTOMER_ID.test(customerId))
        return sendJson(res, 400, { error: `"${customerId.slice(0, 64)}" is not a Stripe customer id` }, NO_STORE);
      ctx.annotate({ customerId });
      if (what === 'billing-status') {
        const status = await statusOf(deps, customerId);
        if (!status) return unknownCustomer(res, customerId);
        return sendJson(res, 200, { customer: customerId, ...status }, NO_STORE);
      }
      return mintToken(deps, res, customerId);
    },
    '/embed/billing-banner.js': async (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res);
      res.writeHead(200, {
        'content-type': 'text/javascript; charset=utf-8',
        'content-length': Buffer.byteLength(EMBED_SCRIPT),
        'cache-control': 'public, max-age=300',
        etag: SCRIPT_ETAG,
        'x-content-type-options': 'nosniff',
        // Loaded by the merchant's pages, which may send Cross-Origin-Embedder-Policy.
        'cross-origin-resource-policy': 'cross-origin',
      });
      res.end(req.method === 'HEAD' ? undefined : EMBED_SCRIPT);
    },
    '/embed/billing-status': async (req, res, ctx) => {
      const cors = corsHeaders(req, deps.config.bannerOrigins);
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET', 'access-control-max-age': '600' });
        res.end();
        return;
      }
      if (req.method !== 'GET') return methodNotAllowed(res);
      // The token is read here and nowhere logged: the request line logs the path without its query.
      const token = new URL(req.url ?? '/', 'http://localhost').searchParams.get('token') ?? '';
      const check = deps.bannerTokens?.verify(token, deps.clock.now());
      if (!check?.ok) {
        ctx.annotate({ bannerToken: check?.reason ?? 'off' });
        return sendJson(
          res,
          401,
          { error: 'the banner token is missing, expired or not ours' },
          { ...NO_STORE, ...cors },
        );
      }
      ctx.annotate({ customerId: check.customerId });
      const status = await statusOf(deps, check.customerId);
      // A token outlives nothing: a customer we no longer know simply gets no banner.
      const body: Partial<BillingStatus> & { status: string } = status ?? { status: 'ok' };
      return sendJson(res, 200, body, { ...NO_STORE, ...cors });
    },
  };
}

/** The routes as `dunning start` mounts them: none without API_KEYS (nothing could mint a token). */
export function billingStatusRoutesFor(config: Config, o: { sql: Sql; clock: Clock }): Routes {
  if (config.apiKeys.length === 0) return {};
  const signer = (label?: string) =>
    config.stripeSecretKey ? createCardLinkSigner(config.stripeSecretKey, label) : null;
  return billingStatusRoutes({
    ...o,
    config,
    cardLinks: config.publicUrl ? signer() : null,
    bannerTokens: signer(BANNER_TOKEN_LABEL),
  });
}

async function statusOf(deps: BillingStatusDeps, customerId: string): Promise<BillingStatus | null> {
  const facts = await loadCustomerDue(deps.sql, customerId);
  if (!facts) return null;
  const now = deps.clock.now();
  const { publicUrl, updateCardLinkDays, defaultLocale } = deps.config;
  const updateCardUrl =
    deps.cardLinks && publicUrl
      ? cardLinkUrl(publicUrl, deps.cardLinks.sign(customerId, new Date(now.getTime() + updateCardLinkDays * DAY_MS)))
      : null;
  return decideBillingStatus({
    due: facts.due,
    locale: chooseLocale(facts.preferredLocales, defaultLocale as Locale),
    now,
    updateCardUrl,
  });
}

async function mintToken(deps: BillingStatusDeps, res: ServerResponse, customerId: string): Promise<void> {
  if (!deps.bannerTokens)
    return sendJson(
      res,
      503,
      { error: 'banner tokens are off: set STRIPE_SECRET_KEY (tokens are signed with a key derived from it)' },
      NO_STORE,
    );
  if (!(await loadCustomerDue(deps.sql, customerId))) return unknownCustomer(res, customerId);
  // Whole seconds, as the token carries it: the answer never promises more than the token holds.
  const expiresAt = new Date(
    Math.ceil((deps.clock.now().getTime() + deps.config.bannerTokenMinutes * 60_000) / 1000) * 1000,
  );
  const token = deps.bannerTokens.sign(customerId, expiresAt);
  return sendJson(res, 200, { token, expiresAt: expiresAt.toISOString() }, NO_STORE);
}

function unknownCustomer(res: ServerResponse, customerId: string): void {
  sendJson(res, 404, { error: `no customer ${customerId} is known to the dunning worker` }, NO_STORE);
}

function methodNotAllowed(res: ServerResponse): void {
  sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
}

/** CORS for the merchant's configured origins only; `Vary` so caches keep answers per origin. */
function corsHeaders(req: IncomingMessage, origins: readonly string[]): Record<string, string> {
  const origin = req.headers.origin;
  const allowed = typeof origin === 'string' && origins.includes(origin);
  return allowed ? { 'access-control-allow-origin': origin, vary: 'Origin' } : { vary: 'Origin' };
}

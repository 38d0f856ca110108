import { isIP } from 'node:net';
import path from 'node:path';
import { IANAZone } from 'luxon';
import { parseApiKeys, type ApiKey } from './billing-status/api-keys.ts';
import { parseOrigins } from './billing-status/origins.ts';
import { projectRoot } from './paths.ts';

/**
 * Environment -> validated, typed configuration. Read once at the edge (the CLI); everything else
 * receives the object. A bad environment produces one error that lists every bad variable.
 */
export interface StripeApiBase {
  protocol: 'http' | 'https';
  host: string;
  port: number;
}

export interface Config {
  databaseUrl: string | null;
  embeddedPgDir: string;
  embeddedPgPort: number;
  stripeSecretKey: string | null;
  webhookSecrets: string[];
  webhookToleranceSeconds: number;
  stripeApiBase: StripeApiBase | null;
  stripeRequestsPerSecond: number;
  host: string;
  port: number;
  logLevel: string;
  defaultTimeZone: string;
  defaultLocale: string;
  policyFile: string | null;
  eventMaxTries: number;
  workerConcurrency: number;
  /**
   * How long a worker's claim on a charge attempt protects it from other workers; a killed worker's
   * attempts are taken over after it (docs/runner.md). Must outlast the Stripe requests of one attempt.
   */
  attemptLeaseSeconds: number;
  smtpUrl: string | null;
  /** The From header as configured: an address or `Name <address>`. */
  mailFrom: string;
  /** The address inside `mailFrom`. */
  mailFromAddress: string;
  outboxDir: string;
  templatesDir: string | null;
  merchantName: string;
  supportEmail: string | null;
  /** Read-only access to /reports and /ops. */
  reportsToken: string | null;
  /** Named tokens that may act on cases at /ops (retry now, pause, resume); the name goes into the audit log. */
  opsTokens: OpsToken[];
  /** A logo shown at the top of customer emails; null: the merchant's name alone. */
  merchantLogoUrl: string | null;
  opsWebhookUrl: string | null;
  opsWebhookSecret: string | null;
  opsAlertMinAmount: AlertThreshold;
  /** Where Stripe's Billing Portal sends the customer back; null: the portal configuration's default. */
  billingPortalReturnUrl: string | null;
  /**
   * Where customers reach the web role (no trailing slash); emails then carry signed links to its
   * `/update-card`. Null: links are Billing Portal sessions made at send time, which expire quickly.
   */
  publicUrl: string | null;
  /** How long an emailed update-card link works. */
  updateCardLinkDays: number;
  /** Keys (stored as SHA-256 digests) for /api/v1 (billing status, banner tokens): docs/billing-status.md. */
  apiKeys: ApiKey[];
  /** Origins whose pages may embed the billing banner (CORS on /embed/billing-status). */
  bannerOrigins: string[];
  /** How long a banner token minted by the merchant's backend works. */
  bannerTokenMinutes: number;
}

/**
 * What a command needs beyond the defaults; checked here so the error names the variable.
 * `cardLinks`: the Stripe key, but only when PUBLIC_URL is set (links are signed with a key derived
 * from it, and a click makes a Billing Portal session).
 */
export type Requirement = 'stripe' | 'webhook' | 'cardLinks';

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;

export interface OpsToken {
  name: string;
  token: string;
}

/** `alice:<token>,bob:<token>`; the errors name entries by position and name, never echo a token. */
function opsTokensOf(raw: string | null, reportsToken: string | null, problems: string[]): OpsToken[] {
  if (raw === null) return [];
  const out: OpsToken[] = [];
  const names = new Set<string>();
  raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .forEach((entry, i) => {
      const at = `OPS_TOKENS: entry ${i + 1}`;
      const colon = entry.indexOf(':');
      if (colon < 0) {
        problems.push(`${at} is not name:token (comma-separated, such as alice:<token>,bob:<token>)`);
        return;
      }
      const name = entry.slice(0, colon).trim();
      const token = entry.slice(colon + 1).trim();
      const seen = names.has(name);
      names.add(name);
      if (!/^[\w.-]{1,64}$/.test(name)) {
        problems.push(`${at}: the name "${name}" must be letters, digits, dot, dash or underscore (at most 64)`);
      } else if (token.length < 16) {
        problems.push(`${at} (${name}): the token needs at least 16 characters (it can charge cards)`);
      } else if (seen) {
        problems.push(`${at}: the name ${name} is used twice (the audit log must tell people apart)`);
      } else if (token === reportsToken) {
        problems.push(
          `${at} (${name}): the token is the same as REPORTS_TOKEN (read-only and acting access must differ)`,
        );
      } else if (out.some((t) => t.token === token)) {
        problems.push(`${at} (${name}): the token is used by another name (the audit log must tell people apart)`);
      } else out.push({ name, token });
    });
  return out;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * When an opened case is large enough to alert ops. `byCurrency` amounts are in that currency's own
 * minor units; `fallback` (minor units of a two-decimal currency, so 50000 = 500.00) is compared in
 * major units for every other currency, or, when null, other currencies never alert.
 */
export interface AlertThreshold {
  fallback: number | null;
  byCurrency: Readonly<Record<string, number>>;
}

/** `50000`, or `50000,jpy:75000,krw:700000`, or only `usd:50000,eur:50000`. */
function alertThreshold(raw: string | null, problems: string[]): AlertThreshold {
  if (raw === null) return { fallback: 50_000, byCurrency: {} };
  const out: { fallback: number | null; byCurrency: Record<string, number> } = { fallback: null, byCurrency: {} };
  for (const entry of raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const m = /^(?:([a-zA-Z]{3}):)?(\d{1,15})$/.exec(entry);
    if (!m) {
      problems.push(
        `OPS_ALERT_MIN_AMOUNT: expected an amount in minor units, or currency:amount entries such as 50000,jpy:75000; "${entry}" is neither`,
      );
      continue;
    }
    if (m[1]) out.byCurrency[m[1].toLowerCase()] = Number(m[2]);
    else out.fallback = Number(m[2]);
  }
  return out;
}

/** One hostname label: letters, digits and inner hyphens. */
const LABEL = '[\\p{L}\\p{N}](?:[\\p{L}\\p{N}-]{0,61}[\\p{L}\\p{N}])?';
const HOSTNAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`, 'u');
/** A bare email address: a local part without spaces, brackets or separators, and a domain. */
const ADDRESS = new RegExp(`^[^\\s@<>()\\[\\]",;:]+@${LABEL}(?:\\.${LABEL})*$`, 'u');
/** `Name <address>`, the name optionally quoted. */
const NAMED_ADDRESS = /^(?:"[^"]*"|[^"<>]*?)\s*<([^<>]+)>$/;

/** A hostname or an IP address (IPv6 without brackets); dotted digits must be a real IPv4 address. */
export function isHost(host: string): boolean {
  if (isIP(host) !== 0) return true;
  return !/^[\d.]+$/.test(host) && HOSTNAME.test(host);
}

/** The address of `value` when it is an address, or `Name <address>` with `named`; else null. */
export function emailAddress(value: string, named: boolean): string | null {
  const inner = named ? (NAMED_ADDRESS.exec(value)?.[1]?.trim() ?? value) : value;
  return ADDRESS.test(inner) ? inner : null;
}

/**
 * PUBLIC_URL: an absolute http(s) URL, optionally with a path (a reverse proxy's prefix), returned
 * without a trailing slash. A query, fragment or credentials would end up in every emailed link.
 */
function publicUrlOf(raw: string | null, problems: string[]): string | null {
  if (raw === null) return null;
  const expected =
    'expected the absolute http(s) URL where customers reach the web role, such as https://billing.example.com';
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    problems.push(`PUBLIC_URL: ${expected}`);
    return null;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    problems.push(`PUBLIC_URL: ${expected}, got a ${u.protocol} URL`);
  else if (u.username || u.password)
    problems.push(`PUBLIC_URL: ${expected}; credentials cannot be part of it (they would be in every email)`);
  else if (raw.includes('?') || raw.includes('#'))
    problems.push(`PUBLIC_URL: ${expected}; no query or fragment (the link adds /update-card?t=...)`);
  else return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  return null;
}

export function loadConfig(env: Env, require: Requirement[] = []): Config {
  const problems: string[] = [];
  const str = (name: string): string | null => {
    const v = env[name]?.trim();
    return v ? v : null;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = str(name);
    if (raw === null) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return n;
  };
  const url = (name: string, protocols: string[]): string | null => {
    const raw = str(name);
    if (raw === null) return null;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) throw new Error('protocol');
      return raw;
    } catch {
      // Never echo the value: connection URLs carry passwords.
      problems.push(`${name}: expected a ${protocols.join(' or ')} URL`);
      return null;
    }
  };

  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:']);

  const stripeSecretKey = str('STRIPE_SECRET_KEY');
  if (stripeSecretKey !== null && !/^(sk|rk)_(test|live)_\S+$/.test(stripeSecretKey)) {
    problems.push('STRIPE_SECRET_KEY: expected a Stripe secret key (sk_live_..., sk_test_... or a restricted rk_ key)');
  } else if (stripeSecretKey === null && require.includes('stripe')) {
    problems.push('STRIPE_SECRET_KEY: required (your Stripe secret key, sk_live_... or sk_test_...)');
  }

  const webhookSecrets = (str('STRIPE_WEBHOOK_SECRET') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const badSecret = webhookSecrets.findIndex((s) => !s.startsWith('whsec_'));
  if (badSecret >= 0) {
    problems.push(
      `STRIPE_WEBHOOK_SECRET: entry ${badSecret + 1} does not start with "whsec_" (comma-separated signing secrets)`,
    );
  } else if (webhookSecrets.length === 0 && require.includes('webhook')) {
    problems.push(
      'STRIPE_WEBHOOK_SECRET: required (the endpoint signing secret whsec_...; several, comma-separated, during rotation)',
    );
  }

  let stripeApiBase: StripeApiBase | null = null;
  const apiBase = url('STRIPE_API_BASE', ['http:', 'https:']);
  if (apiBase !== null) {
    const u = new URL(apiBase);
    const protocol = u.protocol === 'http:' ? 'http' : 'https';
    // The SDK takes protocol, host and port only and adds /v1/... itself: anything more would be dropped.
    if (u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
      problems.push(
        `STRIPE_API_BASE: expected only scheme, host and port, such as http://127.0.0.1:12111 (the SDK adds /v1/... itself; a path, query or credentials cannot be used)`,
      );
    } else {
      stripeApiBase = { protocol, host: u.hostname, port: u.port ? Number(u.port) : protocol === 'http' ? 80 : 443 };
    }
  }

  const host = str('HOST') ?? '0.0.0.0';
  if (!isHost(host)) {
    problems.push(
      `HOST: expected a hostname or IP address to listen on, such as 0.0.0.0, 127.0.0.1 or :: (IPv6 without brackets), got "${host}"`,
    );
  }

  const mailFrom = str('MAIL_FROM') ?? 'billing@example.com';
  const mailFromAddress = emailAddress(mailFrom, true);
  if (mailFromAddress === null) {
    problems.push(
      `MAIL_FROM: expected an email address or Name <address>, such as Example Billing <billing@example.com>, got "${mailFrom}"`,
    );
  }
  const supportEmail = str('SUPPORT_EMAIL');
  if (supportEmail !== null && emailAddress(supportEmail, false) === null) {
    problems.push(
      `SUPPORT_EMAIL: expected a bare email address (it is shown and linked in emails), such as support@example.com, got "${supportEmail}"`,
    );
  }

  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);

  const defaultTimeZone = str('DEFAULT_TIME_ZONE') ?? 'UTC';
  if (!IANAZone.isValidZone(defaultTimeZone)) {
    problems.push(`DEFAULT_TIME_ZONE: expected an IANA time zone such as Europe/Berlin, got "${defaultTimeZone}"`);
  }

  const defaultLocale = str('DEFAULT_LOCALE') ?? 'en';
  if (!['en', 'de'].includes(defaultLocale))
    problems.push(`DEFAULT_LOCALE: expected "en" or "de", got "${defaultLocale}"`);

  const smtpUrl = url('SMTP_URL', ['smtp:', 'smtps:']);
  const opsWebhookUrl = url('OPS_WEBHOOK_URL', ['http:', 'https:']);
  const opsWebhookSecret = str('OPS_WEBHOOK_SECRET');
  if (opsWebhookUrl !== null && opsWebhookSecret === null) {
    problems.push('OPS_WEBHOOK_SECRET: required when OPS_WEBHOOK_URL is set (alerts are signed with it)');
  }

  const publicUrl = publicUrlOf(str('PUBLIC_URL'), problems);
  if (publicUrl !== null && stripeSecretKey === null && require.includes('cardLinks') && !require.includes('stripe')) {
    problems.push(
      'STRIPE_SECRET_KEY: required when PUBLIC_URL is set (update-card links are signed with a key derived from it, and open Billing Portal sessions)',
    );
  }

  const reportsToken = str('REPORTS_TOKEN');
  if (reportsToken !== null && reportsToken.length < 16) {
    problems.push('REPORTS_TOKEN: expected at least 16 characters (it guards revenue figures)');
  }

  if (str('BANNER_ORIGINS') !== null && stripeSecretKey === null) {
    problems.push(
      'STRIPE_SECRET_KEY: required when BANNER_ORIGINS is set (banner tokens are signed with a key derived from it)',
    );
  }

  const opsTokens = opsTokensOf(str('OPS_TOKENS'), reportsToken, problems);
  const resolve = (p: string) => path.resolve(projectRoot, p);
  const config: Config = {
    databaseUrl,
    embeddedPgDir: resolve(str('EMBEDDED_PG_DIR') ?? '.data/postgres'),
    embeddedPgPort: int('EMBEDDED_PG_PORT', 54329, 1024, 65535),
    stripeSecretKey,
    webhookSecrets,
    webhookToleranceSeconds: int('STRIPE_WEBHOOK_TOLERANCE_SECONDS', 300, 1, 86_400),
    stripeApiBase,
    stripeRequestsPerSecond: int('STRIPE_REQUESTS_PER_SECOND', 20, 1, 100),
    host,
    port: int('PORT', 3000, 0, 65535),
    logLevel,
    defaultTimeZone,
    defaultLocale,
    policyFile: str('DUNNING_POLICY_FILE'),
    eventMaxTries: int('EVENT_MAX_TRIES', 8, 1, 100),
    workerConcurrency: int('WORKER_CONCURRENCY', 4, 1, 64),
    attemptLeaseSeconds: int('ATTEMPT_LEASE_SECONDS', 120, 10, 3600),
    smtpUrl,
    mailFrom,
    mailFromAddress: mailFromAddress ?? mailFrom,
    outboxDir: resolve(str('OUTBOX_DIR') ?? '.data/outbox'),
    templatesDir: str('TEMPLATES_DIR'),
    merchantName: str('MERCHANT_NAME') ?? 'Example Inc.',
    supportEmail,
    reportsToken,
    opsTokens,
    merchantLogoUrl: url('MERCHANT_LOGO_URL', ['https:', 'http:']),
    opsWebhookUrl,
    opsWebhookSecret,
    opsAlertMinAmount: alertThreshold(str('OPS_ALERT_MIN_AMOUNT'), problems),
    billingPortalReturnUrl: url('BILLING_PORTAL_RETURN_URL', ['https:', 'http:']),
    publicUrl,
    updateCardLinkDays: int('UPDATE_CARD_LINK_DAYS', 30, 1, 90),
    apiKeys: parseApiKeys(str('API_KEYS'), problems, [
      ...(reportsToken ? [{ variable: 'REPORTS_TOKEN', token: reportsToken }] : []),
      ...opsTokens.map((t) => ({ variable: `OPS_TOKENS (${t.name})`, token: t.token })),
    ]),
    bannerOrigins: parseOrigins(str('BANNER_ORIGINS'), problems),
    bannerTokenMinutes: int('BANNER_TOKEN_MINUTES', 10, 1, 60),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

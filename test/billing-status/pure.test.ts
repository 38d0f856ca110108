import { describe, expect, it } from 'vitest';
import { apiKeyDigest, apiKeyName, parseApiKeys, presentedApiKey } from '../../src/billing-status/api-keys.ts';
import { defaultAccessPolicy } from '../../src/billing-status/access-policy.ts';
import { decideBillingStatus, type DueInvoice } from '../../src/billing-status/decide.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { defaultPolicy, parsePolicy } from '../../src/dunning/policy.ts';

const hex = (key: string) => apiKeyDigest(key).toString('hex');
const WEB_KEY = 'sk_web_app_0123456789abcdef';
const JOB_KEY = 'sk_billing_job_0123456789abcdef';

describe('API_KEYS', () => {
  it('holds names and SHA-256 digests, never raw keys', () => {
    const config = loadConfig({ API_KEYS: `web-app:${hex(WEB_KEY)}, billing-job:${hex(JOB_KEY).toUpperCase()}` });
    expect(config.apiKeys.map((k) => k.name)).toEqual(['web-app', 'billing-job']);
    expect(apiKeyName(WEB_KEY, config.apiKeys)).toBe('web-app');
    expect(apiKeyName(JOB_KEY, config.apiKeys)).toBe('billing-job');
    expect(apiKeyName('sk_web_app_0123456789abcdeX', config.apiKeys)).toBeNull();
    expect(apiKeyName('', config.apiKeys)).toBeNull();
  });

  it('names every bad entry on its own line without echoing a key', () => {
    const problems: string[] = [];
    parseApiKeys(
      `web-app:${WEB_KEY},no-colon,bad name:${hex(WEB_KEY)},a:${hex(JOB_KEY)},a:${hex('x')},b:${hex(JOB_KEY)}`,
      problems,
    );
    expect(problems).toEqual([
      'API_KEYS: entry 1 (web-app): expected the key\'s SHA-256 as 64 hex digits (printf %s "$KEY" | sha256sum), not the key itself',
      'API_KEYS: entry 2 is not name:sha256hex (comma-separated, such as web-app:<64 hex digits>)',
      'API_KEYS: entry 3: the name "bad name" must be letters, digits, dot, dash or underscore (at most 64)',
      'API_KEYS: entry 5: the name a is used twice (logs must tell keys apart)',
      'API_KEYS: entry 6 (b): the same key is configured under another name',
    ]);
    expect(problems.join('\n')).not.toContain(WEB_KEY);
    expect(() => loadConfig({ API_KEYS: 'oops' })).toThrow(ConfigError);
    const reports = 'reports-token-0123456789';
    const ops = 'alice-ops-token-0123456789';
    let err: ConfigError | undefined;
    try {
      loadConfig({
        REPORTS_TOKEN: reports,
        OPS_TOKENS: `alice:${ops}`,
        API_KEYS: `dash:${hex(reports)},tool:${hex(ops)}`,
      });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err?.problems).toEqual([
      'API_KEYS: entry 1 (dash): this is the key of REPORTS_TOKEN; API keys must be separate from it',
      'API_KEYS: entry 2 (tool): this is the key of OPS_TOKENS (alice); API keys must be separate from it',
    ]);
  });

  it('does the same work for a missing, a wrong and a right key: one hash, then every key compared', () => {
    const keys = parseApiKeys(`web-app:${hex(WEB_KEY)},billing-job:${hex(JOB_KEY)},ci:${hex('ci-key-0123456789')}`, []);
    const work = (header: string | undefined) => {
      const compared: string[] = [];
      const name = apiKeyName(presentedApiKey(header), keys, (a, b) => {
        compared.push(b.toString('hex'));
        expect(a).toHaveLength(32);
        return a.equals(b);
      });
      return { name, compared };
    };
    const all = keys.map((k) => k.digest.toString('hex'));
    // A match on the first key must not end the loop early; nor may an absent header skip it.
    expect(work(`Bearer ${WEB_KEY}`)).toEqual({ name: 'web-app', compared: all });
    expect(work('Bearer not-a-key')).toEqual({ name: null, compared: all });
    expect(work(undefined)).toEqual({ name: null, compared: all });
    expect(work('Basic abc')).toEqual({ name: null, compared: all });
  });
});

describe('BANNER_ORIGINS', () => {
  it('takes exact origins and names each bad entry', () => {
    expect(
      loadConfig({ BANNER_ORIGINS: 'https://app.example.com, http://127.0.0.1:8080/', STRIPE_SECRET_KEY: 'sk_test_x' })
        .bannerOrigins,
    ).toEqual(['https://app.example.com', 'http://127.0.0.1:8080']);
    let err: ConfigError | undefined;
    try {
      loadConfig({ BANNER_ORIGINS: 'https://*.example.com,https://app.example.com/account,ftp://x.example.com' });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err?.problems).toEqual([
      'STRIPE_SECRET_KEY: required when BANNER_ORIGINS is set (banner tokens are signed with a key derived from it)',
      'BANNER_ORIGINS: entry 1 ("https://*.example.com") is not an origin such as https://app.example.com',
      'BANNER_ORIGINS: entry 2 ("https://app.example.com/account"): expected only scheme, host and port, such as https://app.example.com (no path, query or wildcard)',
      'BANNER_ORIGINS: entry 3 ("ftp://x.example.com"): expected an http(s) origin',
    ]);
  });
});

describe('access in the policy', () => {
  it('is validated like the other fields, and its absence keeps the version hash', () => {
    expect(parsePolicy({}).version).toBe(defaultPolicy().version);
    expect(parsePolicy({ access: { graceDays: 7 } }).access).toEqual({ graceDays: 7, afterGrace: 'restrict' });
    expect(parsePolicy({ access: { graceDays: 7 } }).version).not.toBe(defaultPolicy().version);
    expect(() => parsePolicy({ access: { graceDays: -1, afterGrace: 'lock', grace: 3 } })).toThrow(
      [
        'invalid dunning policy:',
        '  - access.grace: unknown field (expected one of graceDays, afterGrace)',
        '  - access.graceDays: expected an integer from 0 to 365, got -1',
        '  - access.afterGrace: expected one of restrict, banner, got "lock"',
      ].join('\n'),
    );
  });
});

describe('decideBillingStatus', () => {
  const now = new Date('2026-03-10T12:00:00Z');
  const due = (o: Partial<DueInvoice> = {}): DueInvoice => ({
    invoiceId: 'in_1',
    currency: 'usd',
    amountRemaining: 4_900,
    hostedInvoiceUrl: 'https://invoice.stripe.com/i/in_1',
    failingSince: new Date('2026-03-05T12:00:00Z'),
    actionRequired: false,
    access: defaultAccessPolicy(),
    ...o,
  });
  const link = 'https://billing.example.com/update-card?t=x';

  it('is ok with nothing due', () => {
    expect(decideBillingStatus({ due: [due({ amountRemaining: 0 })], locale: 'en', now, updateCardUrl: link })).toEqual(
      {
        status: 'ok',
        amountsDue: [],
        banner: null,
        link: null,
        access: { decision: 'full', graceEndsAt: null },
        locale: 'en',
      },
    );
  });

  it('is past due inside the grace period, amounts per currency, never added across currencies', () => {
    const s = decideBillingStatus({
      due: [
        due(),
        due({ invoiceId: 'in_2', amountRemaining: 1_000 }),
        due({ invoiceId: 'in_3', currency: 'eur', amountRemaining: 1_200 }),
      ],
      locale: 'en',
      now,
      updateCardUrl: link,
    });
    expect(s).toMatchObject({
      status: 'past_due',
      amountsDue: [
        { amount: 5_900, currency: 'usd' },
        { amount: 1_200, currency: 'eur' },
      ],
      link: { kind: 'update_card', url: link, label: 'Update card' },
      access: { decision: 'banner', graceEndsAt: '2026-03-19T12:00:00.000Z' },
    });
    expect(s.banner).toBe(
      'Your last payment of $59.00 and €12.00 failed. Please update your card to keep your subscription.',
    );
  });

  it('speaks German', () => {
    const s = decideBillingStatus({ due: [due({ currency: 'eur' })], locale: 'de', now, updateCardUrl: link });
    expect(s.banner).toBe(
      'Ihre letzte Zahlung über 49,00\u00a0€ ist fehlgeschlagen. Bitte aktualisieren Sie Ihre Karte, um Ihr Abonnement zu behalten.',
    );
    expect(s.link?.label).toBe('Karte aktualisieren');
  });

  it('links the hosted invoice page when 3-D Secure is awaited', () => {
    const s = decideBillingStatus({ due: [due({ actionRequired: true })], locale: 'en', now, updateCardUrl: link });
    expect(s).toMatchObject({
      status: 'action_required',
      link: { kind: 'authenticate', url: 'https://invoice.stripe.com/i/in_1', label: 'Confirm payment' },
    });
  });

  it('ends the grace period at graceDays after the oldest failure; the policy says restrict or banner', () => {
    const old = due({
      failingSince: new Date('2026-03-03T12:00:00Z'),
      access: { graceDays: 7, afterGrace: 'restrict' },
    });
    expect(decideBillingStatus({ due: [due(), old], locale: 'en', now, updateCardUrl: link })).toMatchObject({
      status: 'grace_ended',
      access: { decision: 'restricted', graceEndsAt: '2026-03-10T12:00:00.000Z' },
    });
    const lenient = { ...old, access: { graceDays: 7, afterGrace: 'banner' as const } };
    expect(decideBillingStatus({ due: [lenient], locale: 'en', now, updateCardUrl: link }).access.decision).toBe(
      'banner',
    );
    const justBefore = new Date(now.getTime() - 1);
    expect(decideBillingStatus({ due: [old], locale: 'en', now: justBefore, updateCardUrl: link }).status).toBe(
      'past_due',
    );
  });

  it('falls back to the hosted invoice page without signed links (no PUBLIC_URL)', () => {
    expect(decideBillingStatus({ due: [due()], locale: 'en', now, updateCardUrl: null }).link).toEqual({
      kind: 'update_card',
      url: 'https://invoice.stripe.com/i/in_1',
      label: 'Update card',
    });
  });
});

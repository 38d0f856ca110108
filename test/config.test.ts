import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  it('gives working defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c.databaseUrl).toBeNull();
    expect(c.port).toBe(3000);
    expect(c.defaultTimeZone).toBe('UTC');
    expect(c.stripeRequestsPerSecond).toBe(20);
    expect(c.webhookSecrets).toEqual([]);
  });

  it('accepts several comma-separated webhook secrets for rotation and parses the API base', () => {
    const c = loadConfig(
      {
        STRIPE_WEBHOOK_SECRET: 'whsec_old, whsec_new',
        STRIPE_SECRET_KEY: 'sk_test_abc',
        STRIPE_API_BASE: 'http://127.0.0.1:12111',
      },
      ['stripe', 'webhook'],
    );
    expect(c.webhookSecrets).toEqual(['whsec_old', 'whsec_new']);
    expect(c.stripeApiBase).toEqual({ protocol: 'http', host: '127.0.0.1', port: 12111 });
  });

  it('lists every bad variable in one error, without echoing secrets', () => {
    let error: unknown;
    try {
      loadConfig(
        {
          DATABASE_URL: 'mysql://user:hunter2@db/x',
          PORT: '99999',
          DEFAULT_TIME_ZONE: 'Europe/Atlantis',
          STRIPE_WEBHOOK_SECRET: 'whsec_ok,notasecret',
          LOG_LEVEL: 'chatty',
          OPS_WEBHOOK_URL: 'https://hooks.example.com/x',
        },
        ['stripe'],
      );
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(new Set(problems.map((p) => p.split(':')[0]))).toEqual(
      new Set([
        'DATABASE_URL',
        'PORT',
        'DEFAULT_TIME_ZONE',
        'STRIPE_WEBHOOK_SECRET',
        'LOG_LEVEL',
        'OPS_WEBHOOK_SECRET',
        'STRIPE_SECRET_KEY',
      ]),
    );
    expect(problems).toHaveLength(7);
    expect((error as Error).message).not.toContain('hunter2');
    expect((error as Error).message).not.toContain('notasecret');
  });

  const problemsOf = (env: Record<string, string>): string[] => {
    try {
      loadConfig(env);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };

  it.each([
    ['HOST', '0.0.0.0'],
    ['HOST', '127.0.0.1'],
    ['HOST', '::'],
    ['HOST', '::1'],
    ['HOST', 'localhost'],
    ['HOST', 'dunning-web.internal'],
    ['MAIL_FROM', 'billing@example.com'],
    ['MAIL_FROM', 'Example Billing <billing@example.com>'],
    ['MAIL_FROM', '"Example, Inc." <billing@mail.example.com>'],
    ['MAIL_FROM', 'billing@bücher.example'],
    ['SUPPORT_EMAIL', 'support+dunning@example.com'],
    ['STRIPE_API_BASE', 'https://stripe-proxy.internal'],
    ['STRIPE_API_BASE', 'http://127.0.0.1:12111/'],
    ['PUBLIC_URL', 'https://billing.example.com'],
    ['PUBLIC_URL', 'http://127.0.0.1:3000/'],
    ['PUBLIC_URL', 'https://example.com/dunning/'],
    ['UPDATE_CARD_LINK_DAYS', '1'],
    ['UPDATE_CARD_LINK_DAYS', '90'],
  ])('accepts %s=%s', (name, value) => {
    expect(problemsOf({ [name]: value })).toEqual([]);
  });

  it.each([
    ['HOST', 'http://0.0.0.0', 'expected a hostname or IP address'],
    ['HOST', '[::1]', 'expected a hostname or IP address'],
    ['HOST', '300.1.1.1', 'expected a hostname or IP address'],
    ['HOST', 'my host', 'expected a hostname or IP address'],
    ['HOST', '-web', 'expected a hostname or IP address'],
    ['MAIL_FROM', 'billing', 'expected an email address or Name <address>'],
    ['MAIL_FROM', 'Billing <billing>', 'expected an email address or Name <address>'],
    ['MAIL_FROM', 'billing@example.com, other@example.com', 'expected an email address or Name <address>'],
    ['SUPPORT_EMAIL', 'Support <support@example.com>', 'expected a bare email address'],
    ['SUPPORT_EMAIL', 'support at example.com', 'expected a bare email address'],
    ['STRIPE_API_BASE', 'http://127.0.0.1:12111/v1', 'expected only scheme, host and port'],
    ['STRIPE_API_BASE', 'https://proxy.example.com/stripe', 'expected only scheme, host and port'],
    ['STRIPE_API_BASE', 'https://user:pw@proxy.example.com', 'expected only scheme, host and port'],
    ['PUBLIC_URL', 'billing.example.com', 'expected the absolute http\\(s\\) URL'],
    ['PUBLIC_URL', '/dunning', 'expected the absolute http\\(s\\) URL'],
    ['PUBLIC_URL', 'ftp://billing.example.com', 'expected the absolute http\\(s\\) URL .*, got a ftp: URL'],
    [
      'PUBLIC_URL',
      'https://billing.example.com/?ref=mail',
      'expected the absolute http\\(s\\) URL .*; no query or fragment',
    ],
    ['PUBLIC_URL', 'https://billing.example.com/#x', 'expected the absolute http\\(s\\) URL .*; no query or fragment'],
    [
      'PUBLIC_URL',
      'https://ops:pw@billing.example.com',
      'expected the absolute http\\(s\\) URL .*; credentials cannot',
    ],
    ['UPDATE_CARD_LINK_DAYS', '0', 'expected an integer from 1 to 90'],
    ['UPDATE_CARD_LINK_DAYS', '365', 'expected an integer from 1 to 90'],
  ])('rejects %s=%s with one line naming it', (name, value, expected) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}: ${expected}`));
  });

  it('keeps the configured From header and takes the address inside it for message ids', () => {
    const c = loadConfig({ MAIL_FROM: 'Example Billing <billing@mail.example.com>' });
    expect(c.mailFrom).toBe('Example Billing <billing@mail.example.com>');
    expect(c.mailFromAddress).toBe('billing@mail.example.com');
    expect(loadConfig({}).mailFromAddress).toBe('billing@example.com');
  });

  it('takes an absolute http(s) URL for the Billing Portal return page, unset by default', () => {
    expect(loadConfig({}).billingPortalReturnUrl).toBeNull();
    expect(loadConfig({ BILLING_PORTAL_RETURN_URL: 'https://acme.test/account' }).billingPortalReturnUrl).toBe(
      'https://acme.test/account',
    );
    expect(() => loadConfig({ BILLING_PORTAL_RETURN_URL: '/account' })).toThrow(
      /BILLING_PORTAL_RETURN_URL: expected a https: or http: URL/,
    );
    expect(() => loadConfig({ BILLING_PORTAL_RETURN_URL: 'javascript:alert(1)' })).toThrow(/BILLING_PORTAL_RETURN_URL/);
  });

  it('requires the Stripe key and webhook secret only when the command needs them', () => {
    expect(() => loadConfig({}, ['webhook'])).toThrow(/STRIPE_WEBHOOK_SECRET: required/);
    expect(() => loadConfig({}, ['stripe'])).toThrow(/STRIPE_SECRET_KEY: required/);
  });

  it('takes PUBLIC_URL without a trailing slash, off by default, with 30-day links', () => {
    expect(loadConfig({})).toMatchObject({ publicUrl: null, updateCardLinkDays: 30 });
    expect(loadConfig({ PUBLIC_URL: 'https://Billing.Example.com/dunning/' }).publicUrl).toBe(
      'https://billing.example.com/dunning',
    );
    expect(loadConfig({ PUBLIC_URL: 'http://127.0.0.1:3000' }).publicUrl).toBe('http://127.0.0.1:3000');
  });

  it('requires the Stripe key for card links only when PUBLIC_URL is set', () => {
    expect(loadConfig({}, ['cardLinks']).publicUrl).toBeNull();
    expect(problemsOfRequired({ PUBLIC_URL: 'https://billing.example.com' }, ['cardLinks'])).toEqual([
      'STRIPE_SECRET_KEY: required when PUBLIC_URL is set (update-card links are signed with a key derived from it, and open Billing Portal sessions)',
    ]);
    expect(
      problemsOfRequired({ PUBLIC_URL: 'https://billing.example.com', STRIPE_SECRET_KEY: 'sk_test_x' }, ['cardLinks']),
    ).toEqual([]);
    // Commands that do not make links (reports, migrate) do not care.
    expect(problemsOfRequired({ PUBLIC_URL: 'https://billing.example.com' }, [])).toEqual([]);
    // One line, not two, when the command needs the key anyway.
    expect(problemsOfRequired({ PUBLIC_URL: 'https://billing.example.com' }, ['stripe', 'cardLinks'])).toHaveLength(1);
  });

  it('reads OPS_TOKENS as named tokens, distinct from REPORTS_TOKEN, with one clear line per bad entry', () => {
    expect(loadConfig({}).opsTokens).toEqual([]);
    expect(
      loadConfig({ OPS_TOKENS: ' alice:alice-token-0123456789 , bob:bob-token-0123456789abc ' }).opsTokens,
    ).toEqual([
      { name: 'alice', token: 'alice-token-0123456789' },
      { name: 'bob', token: 'bob-token-0123456789abc' },
    ]);
    expect(
      problemsOfRequired(
        {
          OPS_TOKENS:
            'alice:short,no-colon-here-0123456789,alice:other-token-0123456789,b@d:x123456789012345678,carol:reports-token-0123456789',
          REPORTS_TOKEN: 'reports-token-0123456789',
        },
        [],
      ),
    ).toEqual([
      'OPS_TOKENS: entry 1 (alice): the token needs at least 16 characters (it can charge cards)',
      'OPS_TOKENS: entry 2 is not name:token (comma-separated, such as alice:<token>,bob:<token>)',
      'OPS_TOKENS: entry 3: the name alice is used twice (the audit log must tell people apart)',
      'OPS_TOKENS: entry 4: the name "b@d" must be letters, digits, dot, dash or underscore (at most 64)',
      'OPS_TOKENS: entry 5 (carol): the token is the same as REPORTS_TOKEN (read-only and acting access must differ)',
    ]);
    // Never the token in an error.
    expect(problemsOfRequired({ OPS_TOKENS: 'alice:short' }, []).join('\n')).not.toContain('short');
  });

  it('takes an optional https logo for emails', () => {
    expect(loadConfig({}).merchantLogoUrl).toBeNull();
    expect(loadConfig({ MERCHANT_LOGO_URL: 'https://cdn.example.com/logo.png' }).merchantLogoUrl).toBe(
      'https://cdn.example.com/logo.png',
    );
    expect(problemsOfRequired({ MERCHANT_LOGO_URL: 'ftp://x/logo.png' }, [])).toEqual([
      'MERCHANT_LOGO_URL: expected a https: or http: URL',
    ]);
  });

  const problemsOfRequired = (env: Record<string, string>, require: Parameters<typeof loadConfig>[1]): string[] => {
    try {
      loadConfig(env, require);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
});

describe('.env in the working directory', () => {
  const cli = path.resolve(import.meta.dirname, '../src/cli.ts');
  const migrate = async (env: NodeJS.ProcessEnv) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dunning-dotenv-'));
    await writeFile(path.join(dir, '.env'), 'DEFAULT_TIME_ZONE=Mars/Olympus_Mons\n');
    try {
      await promisify(execFile)(process.execPath, [cli, 'migrate'], {
        cwd: dir,
        env: { PATH: process.env.PATH, ...env },
        timeout: 20_000,
      });
      return { code: 0, stderr: '' };
    } catch (err) {
      return err as { code: number; stderr: string };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  it('is read at start, so its bad value stops the command with the variable named', async () => {
    const r = await migrate({});
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('DEFAULT_TIME_ZONE');
    expect(r.stderr).toContain('Mars/Olympus_Mons');
  });

  it('does not override what the environment sets', async () => {
    const r = await migrate({ DEFAULT_TIME_ZONE: 'UTC', DATABASE_URL: 'not a url' });
    expect(r.stderr).not.toContain('Mars/Olympus_Mons');
    expect(r.stderr).toContain('DATABASE_URL');
  });
});

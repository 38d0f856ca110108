import { describe, expect, it } from 'vitest';
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
    const c = loadConfig({
      STRIPE_WEBHOOK_SECRET: 'whsec_old, whsec_new',
      STRIPE_SECRET_KEY: 'sk_test_abc',
      STRIPE_API_BASE: 'http://127.0.0.1:12111',
    }, ['stripe', 'webhook']);
    expect(c.webhookSecrets).toEqual(['whsec_old', 'whsec_new']);
    expect(c.stripeApiBase).toEqual({ protocol: 'http', host: '127.0.0.1', port: 12111 });
  });

  it('lists every bad variable in one error, without echoing secrets', () => {
    let error: unknown;
    try {
      loadConfig({
        DATABASE_URL: 'mysql://user:hunter2@db/x',
        PORT: '99999',
        DEFAULT_TIME_ZONE: 'Europe/Atlantis',
        STRIPE_WEBHOOK_SECRET: 'whsec_ok,notasecret',
        LOG_LEVEL: 'chatty',
        OPS_WEBHOOK_URL: 'https://hooks.example.com/x',
      }, ['stripe']);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(new Set(problems.map((p) => p.split(':')[0]))).toEqual(new Set([
      'DATABASE_URL', 'PORT', 'DEFAULT_TIME_ZONE', 'STRIPE_WEBHOOK_SECRET', 'LOG_LEVEL', 'OPS_WEBHOOK_SECRET', 'STRIPE_SECRET_KEY',
    ]));
    expect(problems).toHaveLength(7);
    expect((error as Error).message).not.toContain('hunter2');
    expect((error as Error).message).not.toContain('notasecret');
  });

  it('requires the Stripe key and webhook secret only when the command needs them', () => {
    expect(() => loadConfig({}, ['webhook'])).toThrow(/STRIPE_WEBHOOK_SECRET: required/);
    expect(() => loadConfig({}, ['stripe'])).toThrow(/STRIPE_SECRET_KEY: required/);
  });
});

/**
 * What a failed send means, and when the next try comes: pure, no I/O. The SMTP errors are shaped
 * exactly as the installed nodemailer throws them (recorded against smtp-server on loopback).
 */
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, backoffOf, nextRetry, retryDelayMs } from '../../src/reminders/mailer.ts';
import { parseReminderPolicy } from '../../src/reminders/policy.ts';
import { classifySendError, SendError } from '../../src/reminders/transport.ts';
import { classifyPortalError, createPortalSession } from '../../src/stripe/portal.ts';
import { createThrottle } from '../../src/stripe/throttle.ts';

const smtpError = (o: {
  code?: string;
  responseCode?: number;
  command?: string;
  response?: string;
  message?: string;
}) => Object.assign(new Error(o.message ?? 'send failed'), o);

describe('classifySendError', () => {
  it.each([
    [
      'connection refused',
      { code: 'ESOCKET', command: 'CONN', message: 'connect ECONNREFUSED 127.0.0.1:1' },
      'transport',
    ],
    ['unknown host', { code: 'EDNS', command: 'CONN', message: 'getaddrinfo ENOTFOUND smtp.invalid' }, 'transport'],
    ['silent server', { code: 'ETIMEDOUT', command: 'CONN', message: 'Greeting never received' }, 'transport'],
    [
      'login refused (535)',
      { code: 'EAUTH', responseCode: 535, command: 'AUTH PLAIN', response: '535 Invalid username or password' },
      'transport',
    ],
    [
      'authentication required (530)',
      { code: 'EENVELOPE', responseCode: 530, command: 'MAIL FROM', response: '530 Authentication required' },
      'transport',
    ],
    [
      'our sender refused (553)',
      { code: 'EENVELOPE', responseCode: 553, command: 'MAIL FROM', response: '553 sender rejected' },
      'transport',
    ],
    [
      'no such mailbox (550)',
      { code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO', response: '550 no mailbox' },
      'permanent',
    ],
    [
      'message refused (554)',
      { code: 'EMESSAGE', responseCode: 554, command: 'DATA', response: '554 rejected as spam' },
      'permanent',
    ],
    ['bad address before sending', { code: 'EENVELOPE', message: 'No recipients defined' }, 'permanent'],
    [
      'mailbox busy (451)',
      { code: 'EENVELOPE', responseCode: 451, command: 'RCPT TO', response: '451 try again later' },
      'temporary',
    ],
    [
      'greylisted (421 at RCPT)',
      { code: 'EENVELOPE', responseCode: 421, command: 'RCPT TO', response: '421 closing' },
      'temporary',
    ],
    ['anything else', { message: 'socket hang up' }, 'temporary'],
  ] as const)('%s -> %s', (_name, err, expected) => {
    const problem = classifySendError(smtpError(err));
    expect(problem).toBeInstanceOf(SendError);
    expect(problem.problem).toBe(expected);
    expect(problem.permanent).toBe(expected === 'permanent');
  });

  it('says where to look for transport problems and never quotes an address', () => {
    expect(
      classifySendError(smtpError({ code: 'EAUTH', responseCode: 535, command: 'AUTH PLAIN', response: '535 bad' }))
        .message,
    ).toContain('SMTP_URL');
    const m = classifySendError(
      smtpError({
        code: 'EENVELOPE',
        responseCode: 550,
        command: 'RCPT TO',
        response: '550 <anna@kunde.de>: no mailbox',
      }),
    ).message;
    expect(m).toBe('SMTP 550: 550 <***>: no mailbox');
  });

  it('keeps a SendError as it is', () => {
    const e = new SendError('billing portal: 429', 'temporary');
    expect(classifySendError(e)).toBe(e);
  });
});

describe('retry backoff', () => {
  const t0 = new Date('2026-03-02T10:00:00Z');
  const minutes = (ms: number) => ms / 60_000;

  it('doubles from one minute and never waits more than an hour between tries', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => minutes(retryDelayMs(n, DEFAULT_BACKOFF)))).toEqual([
      1, 2, 4, 8, 16, 32, 60, 60, 60,
    ]);
  });

  /** Fails every try of one reminder at the moment it was planned; returns the tries made and the last try's time. */
  function failUntilGivenUp(problem: 'temporary' | 'transport', backoff = DEFAULT_BACKOFF, limit = 500) {
    let now = t0;
    let firstFailedAt: Date | null = null;
    for (let tries = 1; tries <= limit; tries += 1) {
      const next = nextRetry({ tries, problem, firstFailedAt, now }, backoff);
      if (next.giveUp) return { tries, lastTry: now };
      if (problem === 'temporary') firstFailedAt ??= now;
      now = next.at;
    }
    return { tries: limit, lastTry: now };
  }

  it('gives a temporarily refused email up after two days of tries: 53 tries, the last 47 h after the first', () => {
    const { tries, lastTry } = failUntilGivenUp('temporary');
    // 1+2+4+8+16+32 min, then hourly: the 53rd try is 63 + 46 * 60 min = 47.05 h after the first;
    // a 54th would come 48.05 h after it, past the 48 h horizon.
    expect(tries).toBe(53);
    expect(minutes(lastTry.getTime() - t0.getTime())).toBe(63 + 46 * 60);
  });

  it('takes the horizon from the policy', () => {
    const backoff = backoffOf(parseReminderPolicy({ delivery: { retryHours: 2 } }));
    expect(backoff).toEqual({ baseMs: 60_000, maxMs: 3_600_000, horizonMs: 2 * 3_600_000 });
    // Tries at 0, 1, 3, 7, 15, 31 and 63 min; an 8th would come at 123 min, past 120: the 7th gives up.
    expect(failUntilGivenUp('temporary', backoff).tries).toBe(7);
  });

  it('counts the horizon from the first temporary failure, not from when the reminder was due', () => {
    const next = nextRetry({ tries: 3, problem: 'temporary', firstFailedAt: null, now: t0 }, DEFAULT_BACKOFF);
    expect(next).toEqual({ giveUp: false, at: new Date(t0.getTime() + 4 * 60_000) });
    const late = nextRetry(
      { tries: 40, problem: 'temporary', firstFailedAt: new Date(t0.getTime() - 47.5 * 3_600_000), now: t0 },
      DEFAULT_BACKOFF,
    );
    expect(late).toEqual({ giveUp: true });
  });

  it('never gives up on transport problems (our mail server), and gives up at once on permanent ones', () => {
    expect(failUntilGivenUp('transport').tries).toBe(500);
    expect(nextRetry({ tries: 500, problem: 'transport', firstFailedAt: null, now: t0 }, DEFAULT_BACKOFF)).toEqual({
      giveUp: false,
      at: new Date(t0.getTime() + 3_600_000),
    });
    expect(nextRetry({ tries: 1, problem: 'permanent', firstFailedAt: null, now: t0 }, DEFAULT_BACKOFF)).toEqual({
      giveUp: true,
    });
  });
});

describe('classifyPortalError', () => {
  const stripeError = (raw: { type: string; statusCode?: number; code?: string }) =>
    Stripe.errors.StripeError.generate({ message: `boom ${raw.statusCode ?? ''}`, ...raw } as never);

  it.each([
    ['rate limited', { type: 'rate_limit_error', statusCode: 429 }, true, false],
    ['Stripe down', { type: 'api_error', statusCode: 500 }, true, false],
    ['lock timeout', { type: 'invalid_request_error', statusCode: 409, code: 'lock_timeout' }, true, false],
    ['revoked key', { type: 'authentication_error', statusCode: 401 }, true, true],
    ['no such customer', { type: 'invalid_request_error', statusCode: 404, code: 'resource_missing' }, false, false],
    ['no portal configured', { type: 'invalid_request_error', statusCode: 400 }, false, false],
  ] as const)('%s', (_name, raw, transient, configuration) => {
    const e = classifyPortalError(stripeError(raw));
    expect({ transient: e.transient, configuration: e.configuration }).toEqual({ transient, configuration });
  });

  it('no answer at all is transient', () => {
    const e = classifyPortalError(
      new Stripe.errors.StripeConnectionError({ message: 'connect ECONNREFUSED', type: 'api_error' } as never),
    );
    expect(e.transient).toBe(true);
  });
});

describe('createPortalSession', () => {
  it("opens the payment-method form, with the configured return URL, and none when unset (the portal configuration's default applies)", async () => {
    const seen: unknown[] = [];
    const stripe = {
      billingPortal: {
        sessions: { create: async (p: unknown) => (seen.push(p), { url: 'https://billing.stripe.test/session/x' }) },
      },
    } as unknown as Stripe;
    const gateway = { stripe, throttle: createThrottle(100) };
    expect(await createPortalSession(gateway, 'cus_1', 'https://acme.test/account')).toBe(
      'https://billing.stripe.test/session/x',
    );
    await createPortalSession(gateway, 'cus_2', null);
    expect(seen).toEqual([
      { customer: 'cus_1', flow_data: { type: 'payment_method_update' }, return_url: 'https://acme.test/account' },
      { customer: 'cus_2', flow_data: { type: 'payment_method_update' } },
    ]);
  });
});

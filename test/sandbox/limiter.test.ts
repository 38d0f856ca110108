import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../src/sandbox/limiter.ts';

describe('sandbox rate limiter', () => {
  it('lets a burst through, then the steady rate, per endpoint and for the account', () => {
    let t = 0;
    const limiter = createRateLimiter({
      account: { perSecond: 10, burst: 5 },
      endpoint: { perSecond: 2, burst: 2 },
      now: () => t,
    });
    const pay = 'POST /v1/invoices/:id/pay';
    const read = 'GET /v1/invoices/:id';
    // The endpoint's burst of 2, then nothing more for it...
    expect([1, 2, 3].map(() => limiter.allow(pay))).toEqual([true, true, false]);
    // ...while another endpoint still has its own, up to the account's 5 in all.
    expect([1, 2, 3, 4].map(() => limiter.allow(read))).toEqual([true, true, false, false]);
    expect(limiter.allow('GET /v1/customers/:id')).toBe(true);
    expect(limiter.allow('GET /v1/charges/:id')).toBe(false); // the account is empty: 5 taken
    // Half a second refills one pay token (2/s) and five account tokens (10/s).
    t = 500;
    expect([limiter.allow(pay), limiter.allow(pay)]).toEqual([true, false]);
    // A refused request takes no token: the account still has four.
    expect(['a', 'b', 'c', 'd', 'e'].map((e) => limiter.allow(`GET /${e}`))).toEqual([true, true, true, true, false]);
  });

  it('limits nothing without limits', () => {
    const limiter = createRateLimiter({ account: null, endpoint: null, now: () => 0 });
    expect(Array.from({ length: 1000 }, () => limiter.allow('GET /v1/invoices/:id')).every(Boolean)).toBe(true);
  });
});

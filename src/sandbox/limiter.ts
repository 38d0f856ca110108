import { performance } from 'node:perf_hooks';

/**
 * Stripe's rate limits as its docs describe them: one limit for the whole account, and another for
 * each endpoint (a method and route: every `POST /v1/invoices/:id/pay` shares one), each a token
 * bucket that lets a burst through and then its steady rate. A request must fit both, and takes a
 * token from both. Real time, like Stripe's.
 */
export interface LimitSpec {
  perSecond: number;
  /** Requests let through at once after a quiet spell (default: one second's worth). */
  burst?: number | undefined;
}

export interface RateLimiter {
  /** False when the request is over a limit; it then takes no token. */
  allow(endpoint: string): boolean;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter(o: {
  account: LimitSpec | null;
  endpoint: LimitSpec | null;
  now?: () => number;
}): RateLimiter {
  const now = o.now ?? (() => performance.now());
  const capacity = (spec: LimitSpec) => Math.max(1, spec.burst ?? spec.perSecond);
  const fresh = (spec: LimitSpec): Bucket => ({ tokens: capacity(spec), at: now() });
  const account = o.account ? fresh(o.account) : null;
  const endpoints = new Map<string, Bucket>();
  const refill = (b: Bucket, spec: LimitSpec, t: number) => {
    b.tokens = Math.min(capacity(spec), b.tokens + ((t - b.at) / 1000) * spec.perSecond);
    b.at = t;
  };
  return {
    allow(endpoint) {
      const t = now();
      let own: Bucket | null = null;
      if (o.endpoint) {
        own = endpoints.get(endpoint) ?? fresh(o.endpoint);
        endpoints.set(endpoint, own);
        refill(own, o.endpoint, t);
        if (own.tokens < 1) return false;
      }
      if (account && o.account) {
        refill(account, o.account, t);
        if (account.tokens < 1) return false;
        account.tokens -= 1;
      }
      if (own) own.tokens -= 1;
      return true;
    },
  };
}

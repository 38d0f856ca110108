/**
 * One token bucket shared by every Stripe call of the process, so charges, reads and final actions
 * together stay under the account's rate limit. Time here is real (wall) time: Stripe's limits do
 * not run on the simulated clock.
 */
export interface Throttle {
  /** Resolves when the caller may send one request. */
  take(): Promise<void>;
  /** Requests waiting for a token, for metrics. */
  waiting(): number;
}

export function createThrottle(perSecond: number, options: { burst?: number; now?: () => number } = {}): Throttle {
  if (!(perSecond > 0)) throw new Error(`throttle: rate must be positive, got ${perSecond}`);
  const now = options.now ?? (() => performance.now());
  const capacity = Math.max(1, options.burst ?? Math.ceil(perSecond / 4));
  let tokens = capacity;
  let last = now();
  const queue: Array<() => void> = [];
  let timer: NodeJS.Timeout | null = null;

  const refill = () => {
    const t = now();
    tokens = Math.min(capacity, tokens + ((t - last) / 1000) * perSecond);
    last = t;
  };
  const drain = () => {
    timer = null;
    refill();
    while (queue.length > 0 && tokens >= 1) {
      tokens -= 1;
      queue.shift()?.();
    }
    if (queue.length > 0) {
      const waitMs = Math.max(1, ((1 - tokens) / perSecond) * 1000);
      timer = setTimeout(drain, waitMs);
    }
  };
  return {
    take() {
      return new Promise<void>((resolve) => {
        queue.push(resolve);
        if (timer === null) drain();
      });
    },
    waiting: () => queue.length,
  };
}

import { createHmac } from 'node:crypto';
import type { Rng } from './issuer-model.ts';
import type { WireEvent } from './objects.ts';

/**
 * Signed webhook delivery like Stripe's: at least once, optionally duplicated and out of
 * order, retried with bounded backoff on anything but 2xx. Never awaited by API handlers.
 *
 * Out of order comes in two sizes: the events of one operation shuffled among themselves
 * (`reorder`), and the events of an API request (or a duplicate) held back for a while
 * (`lateShare`), so they arrive after the events of later operations: an old
 * `invoice.payment_failed` after `invoice.paid`, or a duplicate long after its original. Which are held, and for how long, comes
 * from the seeded stream; the delays themselves run in real time, like Stripe's.
 */

export interface Clock {
  now(): Date;
}

/** The `Stripe-Signature` header value for a payload (same scheme as the SDK's test helper). */
export function signatureHeader(payload: string, secret: string, timestampSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${timestampSeconds}.${payload}`, 'utf8').digest('hex');
  return `t=${timestampSeconds},v1=${v1}`;
}

export interface DeliveryRecord {
  eventId: string;
  type: string;
  attempt: number;
  status: number | null;
  error: string | null;
  /** The second copy of a duplicated delivery. */
  duplicate: boolean;
  /** Real milliseconds this delivery was held back before its first attempt (0: sent at once). */
  heldMs: number;
}

export interface WebhookQueueOptions {
  url: string;
  secret: string;
  rng: Rng;
  /** Clock for the signature timestamp; receivers check it against their own clock. */
  signingClock: Clock;
  duplicateShare: number;
  reorder: boolean;
  /** Share (0..1) of API requests' deliveries, and of duplicates, held back for `lateMinMs` to `lateMaxMs`. */
  lateShare: number;
  lateMinMs: number;
  lateMaxMs: number;
  maxAttempts: number;
  backoffMs: number;
  timeoutMs: number;
  /**
   * Requests in flight to the endpoint at most (default 16); the rest wait their turn, as Stripe
   * paces deliveries to one endpoint. Unbounded, a burst of renewals opened a connection per event
   * and buried a slow receiver under requests it could only answer 503.
   */
  concurrency?: number;
}

export interface WebhookQueue {
  enqueue(event: WireEvent): void;
  flush(): Promise<void>;
  deliveries(): DeliveryRecord[];
  stop(): void;
}

export function createWebhookQueue(opts: WebhookQueueOptions): WebhookQueue {
  const pending = new Set<Promise<void>>();
  const timers = new Map<NodeJS.Timeout, () => void>();
  const log: DeliveryRecord[] = [];
  let batch: WireEvent[] = [];
  let stopped = false;
  const limit = opts.concurrency ?? 16;
  let inFlight = 0;
  /** Resolves true with a slot (handed over by `release`), false when the queue stopped first. */
  const waiting: Array<(granted: boolean) => void> = [];
  const acquire = (): Promise<boolean> => {
    if (inFlight < limit) {
      inFlight += 1;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next(true);
    else inFlight -= 1;
  };

  const track = (p: Promise<void>): void => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  const wait = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.set(t, resolve);
    });

  async function deliver(event: WireEvent, duplicate: boolean, heldMs: number): Promise<void> {
    if (heldMs > 0) await wait(heldMs);
    const payload = JSON.stringify(event, null, 2);
    for (let attempt = 1; attempt <= opts.maxAttempts && !stopped; attempt += 1) {
      if (!(await acquire())) return;
      if (stopped) {
        release();
        return;
      }
      // Signed when it goes out, not when it started waiting for its turn.
      const ts = Math.floor(opts.signingClock.now().getTime() / 1000);
      const record: DeliveryRecord = {
        eventId: event.id,
        type: event.type,
        attempt,
        status: null,
        error: null,
        duplicate,
        heldMs,
      };
      log.push(record);
      try {
        const res = await fetch(opts.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json; charset=utf-8',
            'stripe-signature': signatureHeader(payload, opts.secret, ts),
            'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          },
          body: payload,
          signal: AbortSignal.timeout(opts.timeoutMs),
        });
        record.status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
      } catch (err) {
        record.error = err instanceof Error ? err.message : String(err);
      } finally {
        release();
      }
      if (attempt < opts.maxAttempts && !stopped) await wait(opts.backoffMs * 2 ** (attempt - 1));
    }
  }

  function dispatch(events: WireEvent[]): void {
    const order = [...events];
    if (opts.reorder) {
      for (let i = order.length - 1; i > 0; i -= 1) {
        const j = Math.floor(opts.rng() * (i + 1));
        const a = order[i];
        const b = order[j];
        if (a === undefined || b === undefined) continue;
        order[i] = b;
        order[j] = a;
      }
    }
    // One operation's events are held back together, as when the endpoint missed them and Stripe
    // tries again later: a receiver never learns of a failure without the charge that explains it.
    // Only answers to API requests are held, whose caller already has the answer: a held renewal
    // failure would open its case late, with retries already due before the rest of the batch is
    // applied, which on the demo's compressed clock is days (the worker would charge blind).
    const heldMs = events.some((e) => (e.request?.id ?? null) !== null) ? holdTime() : 0;
    for (const ev of order) {
      track(deliver(ev, false, heldMs));
      if (opts.duplicateShare > 0 && opts.rng() < opts.duplicateShare) track(deliver(ev, true, holdTime()));
    }
  }

  /** No draws at all without `lateShare`, so seeded runs without it keep their old order. */
  function holdTime(): number {
    if (!(opts.lateShare > 0 && opts.rng() < opts.lateShare)) return 0;
    return Math.max(1, Math.round(opts.lateMinMs + opts.rng() * (opts.lateMaxMs - opts.lateMinMs)));
  }

  return {
    enqueue(event) {
      if (stopped) return;
      batch.push(event);
      if (batch.length > 1) return;
      // Events raised by one operation leave together, so reordering has something to shuffle.
      track(
        new Promise<void>((resolve) => {
          setImmediate(() => {
            const events = batch;
            batch = [];
            if (!stopped) dispatch(events);
            resolve();
          });
        }),
      );
    },
    async flush() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    deliveries: () => [...log],
    stop() {
      stopped = true;
      // Deliveries waiting for their turn see `stopped` and end.
      for (const next of waiting.splice(0)) next(false);
      // Resolve the waits too, so a flush after stop does not hang on a cleared timer.
      for (const [t, resolve] of timers) {
        clearTimeout(t);
        resolve();
      }
      timers.clear();
    },
  };
}

import type { Clock } from './webhooks.ts';

/**
 * Stripe's idempotency contract: the first response to a key (errors included) is replayed
 * for 24 h; the same key with other parameters is refused; a key still executing is refused
 * with a conflict so two requests never both run.
 */

export interface StoredResponse {
  status: number;
  body: unknown;
}

export type IdempotencyLookup =
  { kind: 'new' } | { kind: 'replay'; response: StoredResponse } | { kind: 'mismatch' } | { kind: 'in_flight' };

interface Entry {
  fingerprint: string;
  expiresAt: number;
  response: StoredResponse | null;
}

export const idempotencyTtlMs = 24 * 3_600_000;

export interface IdempotencyCache {
  /** Claims the key when it is new; the caller must then `complete` or `release` it. */
  begin(key: string, fingerprint: string): IdempotencyLookup;
  complete(key: string, response: StoredResponse): void;
  /** Forget a claim whose request never executed, so a retry runs for real. */
  release(key: string): void;
  /** Keys held in memory, expired ones included until the next sweep (for tests). */
  size(): number;
}

/**
 * Entries sit in the map in claim order, and every entry lives exactly `ttlMs`, so the expired
 * ones are always at the front: each `begin` drops them from there, in time proportional to what
 * it drops. Without this a long demo or benchmark keeps every key (and its response) forever.
 * The order holds as long as the clock does not run backwards, which no sandbox clock does.
 */
export function createIdempotencyCache(clock: Clock, ttlMs = idempotencyTtlMs): IdempotencyCache {
  const entries = new Map<string, Entry>();
  function sweep(now: number): void {
    for (const [key, entry] of entries) {
      if (entry.expiresAt > now) return;
      entries.delete(key);
    }
  }
  return {
    begin(key, fingerprint) {
      const now = clock.now().getTime();
      sweep(now);
      const found = entries.get(key);
      if (found !== undefined) {
        if (found.fingerprint !== fingerprint) return { kind: 'mismatch' };
        if (found.response === null) return { kind: 'in_flight' };
        return { kind: 'replay', response: found.response };
      }
      entries.set(key, { fingerprint, expiresAt: now + ttlMs, response: null });
      return { kind: 'new' };
    },
    complete(key, response) {
      const found = entries.get(key);
      if (found !== undefined) found.response = response;
    },
    release(key) {
      const found = entries.get(key);
      if (found !== undefined && found.response === null) entries.delete(key);
    },
    size: () => entries.size,
  };
}

/** Canonical form of a request, so the same parameters in another order still match. */
export function requestFingerprint(
  method: string,
  path: string,
  params: ReadonlyArray<readonly [string, string]>,
): string {
  const sorted = [...params].sort((a, b) => (a[0] === b[0] ? a[1].localeCompare(b[1]) : a[0].localeCompare(b[0])));
  return JSON.stringify([method, path, sorted]);
}

import type Stripe from 'stripe';

/**
 * Why Postgres could not store this event, for a body JSON.parse accepted; null when it can. Such
 * a delivery answered 503 would be redelivered by Stripe for three days and refused every time, so
 * the receiver answers 400 with this reason instead.
 */
export function unstorableReason(event: Stripe.Event): string | null {
  const created = event.created;
  if (!Number.isInteger(created) || created < 0 || created > MAX_CREATED)
    return `created ${String(created)} is not a Unix timestamp in seconds (0 to ${MAX_CREATED})`;
  return walk(event);
}

/** The last second of year 9999: beyond it timestamptz input and most tools give up. */
const MAX_CREATED = 253_402_300_799;

/**
 * Postgres parses jsonb recursively and stops at its stack depth (about 14,500 levels by default);
 * Stripe's objects nest about a dozen levels. Far below the limit, far above any real event.
 */
export const MAX_DEPTH = 1_000;

/** With the `u` flag a surrogate pair is one code point; only an unpaired half is in category Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

/** jsonb refuses strings with lone UTF-16 surrogates (`\ud800`), in values and in keys. */
function walk(root: unknown): string | null {
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) return 'a string is not valid Unicode (a lone surrogate escape such as \\ud800)';
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_DEPTH) return `the body is nested deeper than ${MAX_DEPTH} levels`;
    if (Array.isArray(value)) {
      for (const v of value) stack.push([v, depth + 1]);
      continue;
    }
    for (const [k, v] of Object.entries(value)) {
      if (LONE_SURROGATE.test(k)) return 'a key is not valid Unicode (a lone surrogate escape such as \\ud800)';
      stack.push([v, depth + 1]);
    }
  }
  return null;
}

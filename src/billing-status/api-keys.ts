import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * API keys for the merchant's backend (`/api/v1/...`). The environment holds only their SHA-256
 * digests (`API_KEYS=web-app:<64 hex>,billing-job:<64 hex>`), so a leaked environment or config
 * dump does not leak a usable key; the merchant keeps the raw key in their own backend.
 *
 * Every request costs the same work whatever it presents: the presented value (an empty string when
 * there is none) is hashed once, then compared with every configured digest in constant time, with
 * no early exit on a match or on a missing header. The name of the matching key is what the logs
 * record.
 */
export interface ApiKey {
  name: string;
  /** SHA-256 of the raw key, 32 bytes. */
  digest: Buffer;
}

const NAME = /^[\w.-]{1,64}$/;
const HEX_DIGEST = /^[0-9a-f]{64}$/i;

/** The digest the configuration holds for a raw key; `printf %s "$KEY" | sha256sum` gives the same. */
export function apiKeyDigest(rawKey: string): Buffer {
  return createHash('sha256').update(rawKey, 'utf8').digest();
}

/**
 * `name:sha256hex,...` -> keys; one line in `problems` per bad entry, named by position and name
 * and never echoing the value (a raw key pasted by mistake must not end up in a log).
 */
export function parseApiKeys(
  raw: string | null,
  problems: string[],
  /** Tokens the keys must differ from, by the variable that holds them (REPORTS_TOKEN, OPS_TOKENS). */
  others: ReadonlyArray<{ variable: string; token: string }> = [],
): ApiKey[] {
  if (raw === null) return [];
  const out: ApiKey[] = [];
  raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .forEach((entry, i) => {
      const at = `API_KEYS: entry ${i + 1}`;
      const colon = entry.indexOf(':');
      if (colon < 0) {
        problems.push(`${at} is not name:sha256hex (comma-separated, such as web-app:<64 hex digits>)`);
        return;
      }
      const name = entry.slice(0, colon).trim();
      const hex = entry.slice(colon + 1).trim();
      if (!NAME.test(name)) {
        problems.push(`${at}: the name "${name}" must be letters, digits, dot, dash or underscore (at most 64)`);
      } else if (!HEX_DIGEST.test(hex)) {
        problems.push(
          `${at} (${name}): expected the key's SHA-256 as 64 hex digits (printf %s "$KEY" | sha256sum), not the key itself`,
        );
      } else if (out.some((k) => k.name === name)) {
        problems.push(`${at}: the name ${name} is used twice (logs must tell keys apart)`);
      } else {
        const digest = Buffer.from(hex, 'hex');
        const shared = others.find((o) => apiKeyDigest(o.token).equals(digest));
        if (out.some((k) => k.digest.equals(digest)))
          problems.push(`${at} (${name}): the same key is configured under another name`);
        else if (shared)
          problems.push(`${at} (${name}): this is the key of ${shared.variable}; API keys must be separate from it`);
        else out.push({ name, digest });
      }
    });
  return out;
}

/** The key an API request presents: `Authorization: Bearer <key>`; '' when there is none. */
export function presentedApiKey(header: string | undefined): string {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1] ?? '';
}

export type Compare = (a: Buffer, b: Buffer) => boolean;

/**
 * The name of the key `presented` matches, or null. Same work for every input: one hash, then one
 * constant-time comparison per configured key. `compare` is injectable so a test can count the work.
 */
export function apiKeyName(
  presented: string,
  keys: readonly ApiKey[],
  compare: Compare = timingSafeEqual,
): string | null {
  const digest = apiKeyDigest(presented);
  let found: string | null = null;
  for (const k of keys) {
    // The comparison runs first and always: `&&` must not skip it once a match is found.
    const same = compare(digest, k.digest);
    if (same && found === null && presented !== '') found = k.name;
  }
  return found;
}

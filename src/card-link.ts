import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Long-lived, signed update-card links: `<PUBLIC_URL>/update-card?t=<token>`. A Billing Portal
 * session is short-lived (Stripe expires it unless visited soon), so emails carry this token instead and the web role
 * makes a fresh session when the customer clicks. Pure: no clock reads, no I/O.
 *
 * Token: `<customer id>.<expiry, unix seconds>.<MAC>`, the MAC being HMAC-SHA256 over
 * `v1.<customer id>.<expiry>` cut to 128 bits, base64url. The key is derived from the Stripe secret
 * key, so there is no new secret to keep; rotating that key invalidates every link already sent.
 */

/** Fixed label for the key derivation: the same Stripe key yields unrelated keys for other uses. */
const KEY_LABEL = 'stripe-dunning-worker/update-card-link/v1';
const VERSION = 'v1';
const MAC_BYTES = 16;
/** Stripe ids: a prefix, an underscore, letters and digits. No dot, the token's separator. */
const CUSTOMER_ID = /^[A-Za-z0-9_]{1,255}$/;
const EXPIRY = /^\d{1,12}$/;
const MAC = /^[A-Za-z0-9_-]{22}$/;

export type CardLinkCheck =
  | { ok: true; customerId: string; expiresAt: Date }
  /** Signed by us, but past its time: the customer should use a newer email. */
  | { ok: false; reason: 'expired'; customerId: string; expiresAt: Date }
  /** Cut off, edited, made up, or signed with another key (the Stripe key was rotated). */
  | { ok: false; reason: 'malformed' | 'bad_signature' };

export interface CardLinkSigner {
  sign(customerId: string, expiresAt: Date): string;
  verify(token: string, now: Date): CardLinkCheck;
}

/** The signing key: HMAC of a fixed label under the Stripe secret key. */
export function deriveCardLinkKey(stripeSecretKey: string, label: string = KEY_LABEL): Buffer {
  return createHmac('sha256', stripeSecretKey).update(label).digest();
}

/**
 * `label` signs other customer tokens the same way under an unrelated key (the billing banner's
 * short-lived tokens), so a token of one kind never passes as the other.
 */
export function createCardLinkSigner(stripeSecretKey: string, label: string = KEY_LABEL): CardLinkSigner {
  const key = deriveCardLinkKey(stripeSecretKey, label);
  const mac = (customerId: string, expiry: string) =>
    createHmac('sha256', key).update(`${VERSION}.${customerId}.${expiry}`).digest().subarray(0, MAC_BYTES);
  return {
    sign(customerId, expiresAt) {
      if (!CUSTOMER_ID.test(customerId))
        throw new Error(`update-card link: "${customerId}" is not a Stripe customer id`);
      // Rounded up: a link never dies before the moment it was promised.
      const expiry = String(Math.ceil(expiresAt.getTime() / 1000));
      return `${customerId}.${expiry}.${mac(customerId, expiry).toString('base64url')}`;
    },
    verify(token, now) {
      const parts = token.split('.');
      if (parts.length !== 3) return { ok: false, reason: 'malformed' };
      const [customerId = '', expiry = '', given = ''] = parts;
      if (!CUSTOMER_ID.test(customerId) || !EXPIRY.test(expiry) || !MAC.test(given))
        return { ok: false, reason: 'malformed' };
      // The encoded forms are compared, not decoded bytes: base64url's spare low bits would let
      // several spellings of one MAC pass. Both are 22 ASCII characters; compared in constant time.
      const expected = mac(customerId, expiry).toString('base64url');
      if (!timingSafeEqual(Buffer.from(given, 'ascii'), Buffer.from(expected, 'ascii')))
        return { ok: false, reason: 'bad_signature' };
      // Only a genuine link learns that it expired: a forged one is told nothing more than "bad".
      const expiresAt = new Date(Number(expiry) * 1000);
      if (now.getTime() >= expiresAt.getTime()) return { ok: false, reason: 'expired', customerId, expiresAt };
      return { ok: true, customerId, expiresAt };
    },
  };
}

/** Where the web role serves the link (src/http/update-card.ts). */
export const UPDATE_CARD_PATH = '/update-card';

/** The URL the email carries. `publicUrl` has no trailing slash (config normalises it). */
export function cardLinkUrl(publicUrl: string, token: string): string {
  return `${publicUrl}${UPDATE_CARD_PATH}?t=${token}`;
}

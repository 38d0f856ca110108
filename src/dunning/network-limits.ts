/**
 * Card-network and Stripe retry limits. These are not policy: networks fine merchants for excess
 * attempts and Stripe blocks the payment, whatever the merchant configured.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export const WINDOW_30D_MS = 30 * DAY;
export const WINDOW_24H_MS = DAY;
/** Stripe blocks a payment after 15 retries in 30 days; Visa allows 15 reattempts in 30 days. */
export const STRIPE_MAX_ATTEMPTS_30D = 15;
export const MASTERCARD_MAX_ATTEMPTS_30D = 35;
export const MASTERCARD_MAX_DECLINES_24H = 10;
/** Pushed-back times land just past the limit, not on its edge. */
const MARGIN_MS = 1000;

export interface CardLimits {
  maxAttempts30d: number;
  maxDeclines24h: number | null;
  label: string;
}

export function limitsFor(cardBrand: string | null): CardLimits {
  const brand = (cardBrand ?? '').toLowerCase().replace(/[^a-z]/g, '');
  if (brand === 'mastercard') {
    // Stripe's own 15 applies on top of Mastercard's 35, so the lower one binds.
    return {
      maxAttempts30d: Math.min(STRIPE_MAX_ATTEMPTS_30D, MASTERCARD_MAX_ATTEMPTS_30D),
      maxDeclines24h: MASTERCARD_MAX_DECLINES_24H,
      label: 'Mastercard',
    };
  }
  if (brand === '') {
    // The brand of the card about to be charged is unknown: it may be a Mastercard, so both bind.
    return {
      maxAttempts30d: STRIPE_MAX_ATTEMPTS_30D,
      maxDeclines24h: MASTERCARD_MAX_DECLINES_24H,
      label: 'card-network (brand unknown)',
    };
  }
  return { maxAttempts30d: STRIPE_MAX_ATTEMPTS_30D, maxDeclines24h: null, label: brand === 'visa' ? 'Visa' : 'Stripe' };
}

export interface CardAttempt {
  at: Date;
  declined: boolean;
}

/**
 * The earliest instant >= `candidate` at which one more attempt on this card stays within the
 * limits, counting every earlier attempt within 30 days (and declines within 24 h) inclusively.
 * `attempts` must all lie at or before `candidate`.
 */
export function earliestWithinLimits(
  attempts: CardAttempt[],
  candidate: Date,
  limits: CardLimits,
): { at: Date; reason: string | null } {
  const times = attempts.map((a) => a.at.getTime()).sort((a, b) => a - b);
  let at = candidate.getTime();
  let reason: string | null = null;

  const recent = times.filter((t) => t >= at - WINDOW_30D_MS);
  if (recent.length >= limits.maxAttempts30d) {
    const oldestThatMustExpire = recent[recent.length - limits.maxAttempts30d] as number;
    at = Math.max(at, oldestThatMustExpire + WINDOW_30D_MS + MARGIN_MS);
    reason = `${limits.label} limit of ${limits.maxAttempts30d} attempts per card in 30 days`;
  }

  if (limits.maxDeclines24h !== null) {
    const declines = attempts
      .filter((a) => a.declined)
      .map((a) => a.at.getTime())
      .sort((a, b) => a - b);
    const lastDay = declines.filter((t) => t >= at - WINDOW_24H_MS);
    if (lastDay.length >= limits.maxDeclines24h) {
      const oldestThatMustExpire = lastDay[lastDay.length - limits.maxDeclines24h] as number;
      at = Math.max(at, oldestThatMustExpire + WINDOW_24H_MS + MARGIN_MS);
      reason = `${limits.label} limit of ${limits.maxDeclines24h} declines per card in 24 hours`;
    }
  }
  return { at: new Date(at), reason };
}

/**
 * Card-network rule violations in a simulated attempt list, counted per offending charge. These
 * are the limits networks fine merchants for, so a policy that breaks them is not worth its
 * extra recoveries.
 */
import { limitsFor, WINDOW_24H_MS, WINDOW_30D_MS } from '../dunning/network-limits.ts';
import { neverRetryAfter, type SimAttempt } from './strategies.ts';

export interface Violations {
  /** Charges beyond 15 on one card within 30 days. */
  over30d: number;
  /** Charges on a card after it drew a never-retry answer. */
  afterNeverRetry: number;
  /** Mastercard declines beyond 10 on one card within 24 hours. */
  mastercard24h: number;
}

export function noViolations(): Violations {
  return { over30d: 0, afterNeverRetry: 0, mastercard24h: 0 };
}

export function totalViolations(v: Violations): number {
  return v.over30d + v.afterNeverRetry + v.mastercard24h;
}

export function addViolations(into: Violations, v: Violations): void {
  into.over30d += v.over30d;
  into.afterNeverRetry += v.afterNeverRetry;
  into.mastercard24h += v.mastercard24h;
}

/**
 * The rules each attempt broke, in the order given. Attempts are counted per card (its
 * fingerprint, `SimAttempt.card`, not its payment method id), whichever invoice they were for: pass
 * all of a customer's attempts. Stripe's own renewal charges count toward the limits but are not
 * violations themselves: no retry strategy decides them.
 */
export function violationsByAttempt(attempts: readonly SimAttempt[], cardBrand: string): Violations[] {
  const out = attempts.map(() => noViolations());
  const limits = limitsFor(cardBrand);
  const byCard = new Map<number, number[]>();
  attempts.forEach((a, i) => byCard.set(a.card, [...(byCard.get(a.card) ?? []), i]));
  for (const list of byCard.values()) {
    const sorted = [...list].sort(
      (x, y) => (attempts[x] as SimAttempt).at.getTime() - (attempts[y] as SimAttempt).at.getTime() || x - y,
    );
    let barred = false;
    sorted.forEach((idx, i) => {
      const a = attempts[idx] as SimAttempt;
      const v = out[idx] as Violations;
      const t = a.at.getTime();
      const earlier = sorted.slice(0, i + 1).map((j) => attempts[j] as SimAttempt);
      const ours = a.source !== 'stripe';
      if (barred && ours) v.afterNeverRetry += 1;
      if (ours && earlier.filter((e) => e.at.getTime() > t - WINDOW_30D_MS).length > limits.maxAttempts30d)
        v.over30d += 1;
      if (ours && limits.maxDeclines24h !== null && !a.ok) {
        const declines = earlier.filter((e) => !e.ok && e.at.getTime() > t - WINDOW_24H_MS).length;
        if (declines > limits.maxDeclines24h) v.mastercard24h += 1;
      }
      if (!a.ok && a.reason !== null && neverRetryAfter(a.reason, cardBrand)) barred = true;
    });
  }
  return out;
}

export function countViolations(attempts: readonly SimAttempt[], cardBrand: string): Violations {
  const v = noViolations();
  for (const each of violationsByAttempt(attempts, cardBrand)) addViolations(v, each);
  return v;
}

/**
 * Who owns which failed renewal. The card networks count per card, not per invoice: a customer
 * with two subscriptions on one card spends one budget of charges on both. So some failed renewals
 * of a population are further subscriptions of the customer before them, on the same card.
 */
import type { Member } from '../demo/population.ts';
import type { Rng } from '../sandbox/issuer-model.ts';

/** Chance that a failed renewal is another subscription of the customer listed just before it. */
export const FURTHER_INVOICE_SHARE = 0.15;
/** At most this many failing invoices per customer. */
export const MAX_INVOICES = 3;
/** A further subscription renews (and fails) within this many days after the customer's first. */
const RENEWAL_SPREAD_DAYS = 5;
const DAY = 86_400_000;

/** One member of the population: its failed renewal and its index (which names its random streams). */
export interface SimInvoice {
  member: Member;
  index: number;
}

export interface SimCustomer {
  /** The first invoice's member key. */
  key: string;
  invoices: SimInvoice[];
}

/**
 * Groups a population into customers, deterministically from `rngFor` (one stream per member). A
 * further invoice takes its customer's card, zone, market, price and reminder habits, and fails a
 * few days after the first: the same card answers for both.
 */
export function customersOf(population: readonly Member[], rngFor: (i: number) => Rng): SimCustomer[] {
  const out: SimCustomer[] = [];
  population.forEach((m, index) => {
    const rng = rngFor(index);
    const prev = out[out.length - 1];
    const owner = prev?.invoices[0]?.member;
    if (prev && owner && prev.invoices.length < MAX_INVOICES && rng() < FURTHER_INVOICE_SHARE) {
      prev.invoices.push({
        index,
        member: {
          ...owner,
          key: m.key,
          failsAfterMs: owner.failsAfterMs + Math.floor(rng() * RENEWAL_SPREAD_DAYS * DAY),
        },
      });
    } else out.push({ key: m.key, invoices: [{ member: m, index }] });
  });
  return out;
}

/**
 * A seeded population of subscribers whose renewal fails: shared by `dunning simulate` (in memory)
 * and `dunning demo` (through the sandbox), so both tell the same story for the same seed.
 * Pure: the seed decides everything, including when each renewal fails.
 */
import { createRng, type FailureReason, type Rng } from '../sandbox/issuer-model.ts';
import type { CardSpec } from '../sandbox/store.ts';

export interface Member {
  /** Stable per seed and index, e.g. `m0042`; also names the customer in emails. */
  key: string;
  name: string;
  email: string;
  country: string;
  timeZone: string;
  locale: 'en' | 'de';
  currency: 'eur' | 'usd' | 'gbp' | 'jpy';
  /** Minor units of `currency` (yen have none). */
  amount: number;
  card: CardSpec;
  /** Chance per reminder that this customer puts in a working card. */
  cardUpdateProbability: number;
  /** Milliseconds after the population's start at which the renewal charge fails. */
  failsAfterMs: number;
}

export interface PopulationOptions {
  seed: number;
  customers: number;
  /** Renewals fail spread over this many days from the start (a billing week, by default). */
  spreadDays?: number;
}

type Weighted<T> = ReadonlyArray<readonly [T, number]>;

/**
 * Shares of failure reasons roughly as merchants report them: funds dominate, then soft generic
 * declines and expired cards; hard declines are a small but costly tail.
 */
export const FAILURE_SHARES: Weighted<FailureReason> = [
  ['insufficient_funds', 0.4],
  ['generic_decline', 0.14],
  ['do_not_honor', 0.09],
  ['expired_card', 0.15],
  ['processing_error', 0.05],
  ['issuer_not_available', 0.03],
  ['authentication_required', 0.06],
  ['lost_card', 0.05],
  ['stolen_card', 0.03],
];

interface Market {
  country: string;
  currency: Member['currency'];
  locale: Member['locale'];
  zones: readonly string[];
  prices: readonly number[];
}

const MARKETS: Weighted<Market> = [
  [{ country: 'DE', currency: 'eur', locale: 'de', zones: ['Europe/Berlin'], prices: [990, 1990, 4900, 9900] }, 0.28],
  [{ country: 'AT', currency: 'eur', locale: 'de', zones: ['Europe/Vienna'], prices: [990, 1990, 4900] }, 0.05],
  [{ country: 'NL', currency: 'eur', locale: 'en', zones: ['Europe/Amsterdam'], prices: [990, 1990, 4900] }, 0.07],
  [
    {
      country: 'US',
      currency: 'usd',
      locale: 'en',
      zones: ['America/New_York', 'America/Chicago', 'America/Los_Angeles'],
      prices: [900, 2900, 7900, 19900],
    },
    0.3,
  ],
  [{ country: 'GB', currency: 'gbp', locale: 'en', zones: ['Europe/London'], prices: [800, 1800, 4500] }, 0.18],
  [{ country: 'JP', currency: 'jpy', locale: 'en', zones: ['Asia/Tokyo'], prices: [1200, 2900, 9800] }, 0.12],
];

const BRANDS: Weighted<string> = [
  ['visa', 0.55],
  ['mastercard', 0.35],
  ['amex', 0.1],
];

const FIRST_NAMES = [
  'Anna',
  'Ben',
  'Clara',
  'David',
  'Emma',
  'Felix',
  'Greta',
  'Hiro',
  'Ines',
  'Jonas',
  'Kate',
  'Lukas',
  'Mia',
  'Noah',
  'Olivia',
  'Paul',
  'Rin',
  'Sofia',
  'Tom',
  'Yuki',
];
const LAST_NAMES = [
  'Bauer',
  'Clarke',
  'Fischer',
  'Garcia',
  'Hoffmann',
  'Ito',
  'Jones',
  'Klein',
  'Meyer',
  'Patel',
  'Sato',
  'Schmidt',
  'Smith',
  'Tanaka',
  'Walker',
  'Weber',
];

const DAY = 86_400_000;

function pick<T>(rng: Rng, weighted: Weighted<T>): T {
  let r = rng() * weighted.reduce((s, [, w]) => s + w, 0);
  for (const [value, w] of weighted) {
    r -= w;
    if (r < 0) return value;
  }
  return (weighted[weighted.length - 1] as readonly [T, number])[0];
}

function one<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}

export function generatePopulation(opts: PopulationOptions): Member[] {
  if (!Number.isInteger(opts.customers) || opts.customers < 0)
    throw new Error(`customers must be a whole number >= 0, got ${opts.customers}`);
  const rng = createRng(opts.seed);
  const spreadMs = (opts.spreadDays ?? 7) * DAY;
  const width = Math.max(4, String(opts.customers).length);
  const members: Member[] = [];
  for (let i = 0; i < opts.customers; i += 1) {
    const market = pick(rng, MARKETS);
    const first = one(rng, FIRST_NAMES);
    const last = one(rng, LAST_NAMES);
    const key = `m${String(i).padStart(width, '0')}`;
    const failure = pick(rng, FAILURE_SHARES);
    const expiresSoon = failure === 'expired_card';
    members.push({
      key,
      name: `${first} ${last}`,
      // example.com is reserved for documentation: a misrouted demo email reaches nobody.
      email: `${first.toLowerCase()}.${last.toLowerCase()}.${key}@example.com`,
      country: market.country,
      timeZone: one(rng, market.zones),
      locale: market.locale,
      currency: market.currency,
      amount: one(rng, market.prices),
      card: {
        brand: pick(rng, BRANDS),
        failure,
        expMonth: 1 + Math.floor(rng() * 12),
        expYear: expiresSoon ? 2024 : 2028 + Math.floor(rng() * 3),
      },
      cardUpdateProbability: 0.1 + rng() * 0.35,
      failsAfterMs: Math.floor(rng() * spreadMs),
    });
  }
  return members;
}

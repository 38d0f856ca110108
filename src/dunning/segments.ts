/**
 * Policies per segment: ordered rules in the policy file that pick a named policy for a new case
 * from what the invoice is for (prices, products, billing interval), its amount and currency, and
 * the customer's metadata. Parsing and matching are pure; the facts come from our copies of the
 * invoice, its subscription and the customer (`segmentFactsOf` in store.ts).
 */
import { isObj, Issues, list, section } from './validate.ts';

export const DEFAULT_POLICY_NAME = 'default';

/** Stripe's `price.recurring.interval` values. */
export const INTERVALS = ['day', 'week', 'month', 'year'] as const;
export type Interval = (typeof INTERVALS)[number];

/** Every condition given must hold; within a list, any value may match. An empty match matches every invoice. */
export interface SegmentMatch {
  prices?: string[];
  products?: string[];
  intervals?: Interval[];
  currencies?: string[];
  /** Amount due in the currency's minor unit, bounds inclusive; only with `currencies` (amounts of different currencies do not compare). */
  amount?: { min?: number; max?: number };
  /** Each key must have exactly this value in the customer's Stripe metadata. */
  metadata?: Record<string, string>;
}

export interface SegmentRule {
  policy: string;
  match: SegmentMatch;
}

/** What a rule can match, for one invoice. */
export interface SegmentFacts {
  prices: readonly string[];
  products: readonly string[];
  intervals: readonly string[];
  currency: string;
  amount: number;
  metadata: Readonly<Record<string, string>>;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;

export function validPolicyName(name: string): boolean {
  return NAME.test(name) && name !== DEFAULT_POLICY_NAME;
}

function strings(raw: unknown, path: string, issues: Issues, lower = false): string[] | undefined {
  if (raw === undefined) return undefined;
  return list<string>(raw, path, [], issues, {
    minLength: 1,
    item: (value, itemPath) =>
      typeof value === 'string' && value.length > 0
        ? lower
          ? value.toLowerCase()
          : value
        : (issues.bad(itemPath, 'a non-empty string', value), undefined),
  });
}

function bound(raw: unknown, path: string, issues: Issues): number | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) return raw;
  issues.bad(path, 'a whole amount in the minor unit, 0 or more', raw);
  return undefined;
}

function parseMatch(raw: unknown, path: string, issues: Issues): SegmentMatch {
  const m = section(raw, path, ['prices', 'products', 'intervals', 'currencies', 'amount', 'metadata'], issues);
  const out: SegmentMatch = {};
  const prices = strings(m.prices, `${path}.prices`, issues);
  if (prices) out.prices = prices;
  const products = strings(m.products, `${path}.products`, issues);
  if (products) out.products = products;
  if (m.intervals !== undefined) {
    out.intervals = list<Interval>(m.intervals, `${path}.intervals`, [], issues, {
      minLength: 1,
      item: (value, itemPath) =>
        typeof value === 'string' && (INTERVALS as readonly string[]).includes(value)
          ? (value as Interval)
          : (issues.bad(itemPath, `one of ${INTERVALS.join(', ')}`, value), undefined),
    });
  }
  // Stripe's currency codes are lowercase ISO codes; `USD` in a file means the same currency.
  const currencies = strings(m.currencies, `${path}.currencies`, issues, true);
  if (currencies) out.currencies = currencies;
  if (m.amount !== undefined) {
    const a = section(m.amount, `${path}.amount`, ['min', 'max'], issues);
    const min = bound(a.min, `${path}.amount.min`, issues);
    const max = bound(a.max, `${path}.amount.max`, issues);
    if (min === undefined && max === undefined && isObj(m.amount))
      issues.note(`${path}.amount`, 'give min, max or both');
    if (min !== undefined && max !== undefined && max < min)
      issues.note(`${path}.amount`, `max (${max}) is below min (${min})`);
    if (!currencies)
      issues.note(`${path}.amount`, 'needs currencies in the same match: amounts only compare within one currency');
    out.amount = { ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
  }
  if (m.metadata !== undefined) {
    if (!isObj(m.metadata) || Object.keys(m.metadata).length === 0) {
      issues.bad(`${path}.metadata`, 'an object of metadata keys and their values', m.metadata);
    } else {
      const meta: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.metadata)) {
        if (typeof v === 'string') meta[k] = v;
        else issues.bad(`${path}.metadata.${k}`, 'a string (Stripe metadata values are strings)', v);
      }
      out.metadata = meta;
    }
  }
  return out;
}

/**
 * Parses `segments`: each rule names a policy of `known` (the file's `policies`), or `default`. A
 * rule naming an unknown policy is an error, not a silent fall-through: the merchant meant something.
 */
export function parseSegments(raw: unknown, known: ReadonlySet<string>, issues: Issues): SegmentRule[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    issues.bad('segments', 'a list of rules', raw);
    return [];
  }
  return raw.map((r, i): SegmentRule => {
    const path = `segments[${i}]`;
    const rule = section(r, path, ['policy', 'match'], issues);
    const policy = rule.policy;
    if (typeof policy !== 'string') {
      issues.bad(`${path}.policy`, 'the name of a policy', policy);
    } else if (policy !== DEFAULT_POLICY_NAME && !known.has(policy)) {
      const names = [DEFAULT_POLICY_NAME, ...known].join(', ');
      issues.note(`${path}.policy`, `names unknown policy "${policy}" (known: ${names})`);
    }
    if (r !== undefined && isObj(r) && rule.match === undefined)
      issues.note(`${path}.match`, 'missing (use {} to match every invoice)');
    return {
      policy: typeof policy === 'string' ? policy : DEFAULT_POLICY_NAME,
      match: parseMatch(rule.match ?? {}, `${path}.match`, issues),
    };
  });
}

const anyOf = (wanted: readonly string[] | undefined, have: readonly string[]) =>
  wanted === undefined || wanted.some((w) => have.includes(w));

export function matches(m: SegmentMatch, f: SegmentFacts): boolean {
  if (!anyOf(m.prices, f.prices) || !anyOf(m.products, f.products) || !anyOf(m.intervals, f.intervals)) return false;
  if (m.currencies && !m.currencies.includes(f.currency.toLowerCase())) return false;
  if (m.amount?.min !== undefined && f.amount < m.amount.min) return false;
  if (m.amount?.max !== undefined && f.amount > m.amount.max) return false;
  return Object.entries(m.metadata ?? {}).every(([k, v]) => f.metadata[k] === v);
}

/** The first rule that matches names the policy; none matching means the default. */
export function selectSegment(
  rules: readonly SegmentRule[],
  facts: SegmentFacts,
): { name: string; rule: number | null } {
  const i = rules.findIndex((r) => matches(r.match, facts));
  return i < 0 ? { name: DEFAULT_POLICY_NAME, rule: null } : { name: rules[i]!.policy, rule: i };
}

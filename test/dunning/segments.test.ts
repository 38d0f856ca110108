import { describe, expect, it } from 'vitest';
import type Stripe from 'stripe';
import { choosePolicy, defaultPolicy, parsePolicy, policyBody } from '../../src/dunning/policy.ts';
import { matches, selectSegment, type SegmentFacts } from '../../src/dunning/segments.ts';
import { invoiceLinePricing, subscriptionItemPricing } from '../../src/events/objects.ts';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

const monthly: SegmentFacts = {
  prices: ['price_basic_m'],
  products: ['prod_basic'],
  intervals: ['month'],
  currency: 'usd',
  amount: 2_900,
  metadata: { tier: 'smb' },
};

const FILE = {
  retry: { windowDays: 28 },
  policies: {
    annual: { retry: { windowDays: 60 }, reminders: { steps: 'longer' } },
    'high-value': { retry: { maxAttempts: 12 } },
  },
  segments: [
    { policy: 'high-value', match: { currencies: ['USD'], amount: { min: 100_000 } } },
    { policy: 'annual', match: { intervals: ['year'] } },
    { policy: 'annual', match: { products: ['prod_enterprise'] } },
    { policy: 'default', match: { metadata: { tier: 'internal' } } },
  ],
};

describe('segment rules', () => {
  it('match in order: the first rule that matches names the policy; none matching is the default', () => {
    const { rules } = parsePolicy(FILE).segments!;
    expect(selectSegment(rules, monthly)).toEqual({ name: 'default', rule: null });
    expect(selectSegment(rules, { ...monthly, intervals: ['year'] })).toEqual({ name: 'annual', rule: 1 });
    // High-value comes first, so a large annual invoice is high-value.
    expect(selectSegment(rules, { ...monthly, intervals: ['year'], amount: 100_000 })).toEqual({
      name: 'high-value',
      rule: 0,
    });
    // The same amount in another currency is not high-value: amounts compare only within their currency.
    expect(selectSegment(rules, { ...monthly, currency: 'jpy', amount: 150_000 })).toEqual({
      name: 'default',
      rule: null,
    });
    expect(selectSegment(rules, { ...monthly, products: ['prod_enterprise'] }).name).toBe('annual');
  });

  it('within a list any value matches; every condition given must hold; {} matches everything', () => {
    expect(matches({ prices: ['price_x', 'price_basic_m'] }, monthly)).toBe(true);
    expect(matches({ prices: ['price_x'] }, monthly)).toBe(false);
    expect(matches({ intervals: ['month'], metadata: { tier: 'smb' } }, monthly)).toBe(true);
    expect(matches({ intervals: ['month'], metadata: { tier: 'enterprise' } }, monthly)).toBe(false);
    expect(matches({ metadata: { region: 'eu' } }, monthly)).toBe(false);
    expect(matches({ currencies: ['usd'], amount: { min: 2_900, max: 2_900 } }, monthly)).toBe(true);
    expect(matches({ currencies: ['usd'], amount: { max: 2_899 } }, monthly)).toBe(false);
    expect(matches({}, monthly)).toBe(true);
    // A subscription we have not heard of yet gives no interval: an interval rule does not match.
    expect(matches({ intervals: ['year'] }, { ...monthly, intervals: [] })).toBe(false);
  });

  it('named policies override the default field by field; each has its own version', () => {
    const p = parsePolicy(FILE);
    const annual = choosePolicy(p, { ...monthly, intervals: ['year'] });
    expect(annual.name).toBe('annual');
    expect(annual.policy.retry.windowDays).toBe(60);
    // Not overridden: taken from the file's default (top level), which itself has defaults filled.
    expect(annual.policy.retry.maxAttempts).toBe(p.retry.maxAttempts);
    expect(annual.policy.reminders).toEqual({ steps: 'longer' });
    expect(annual.policy.version).not.toBe(p.version);
    expect(annual.policy.segments).toBeUndefined();
    expect(choosePolicy(p, monthly).policy).toBe(p);
  });

  it('leaves the default version alone: rules and named policies are not part of its body', () => {
    const p = parsePolicy(FILE);
    expect(p.version).toBe(parsePolicy({ retry: { windowDays: 28 } }).version);
    expect(Object.keys(policyBody(p)).sort()).toEqual([
      'baseline',
      'finalAction',
      'holdoutShare',
      'reminders',
      'retry',
    ]);
    expect(defaultPolicy().segments).toBeUndefined();
  });
});

describe('segment configuration errors', () => {
  it('a rule naming an unknown policy is an error that names the rule and the known policies', () => {
    const msg = errorOf(() =>
      parsePolicy({ policies: { annual: {} }, segments: [{ policy: 'anual', match: { intervals: ['year'] } }] }),
    );
    expect(msg).toContain('segments[0].policy: names unknown policy "anual" (known: default, annual)');
  });

  it('lists every bad rule and bad override by its path', () => {
    const msg = errorOf(() =>
      parsePolicy({
        policies: {
          annual: { retry: { windowDays: 400 }, colour: 'red' },
          default: {},
          'Bad Name': {},
          trial: { holdoutShare: 0 },
        },
        segments: [
          { policy: 'annual', match: { intervals: ['yearly'] } },
          { policy: 'annual', match: { amount: { min: 10, max: 5 } } },
          { policy: 'annual', match: { metadata: { tier: 3 } } },
          { policy: 'annual' },
          'nope',
        ],
      }),
    );
    expect(msg).toContain('policies.annual.retry.windowDays: expected an integer from 1 to 90, got 400');
    expect(msg).toContain('policies.annual.colour: unknown field');
    expect(msg).toContain('policies.default: a policy name is');
    expect(msg).toContain('policies.Bad Name: a policy name is');
    expect(msg).toContain('policies.trial.holdoutShare: set the holdout share at the top level');
    expect(msg).toContain('segments[0].match.intervals[0]: expected one of day, week, month, year, got "yearly"');
    expect(msg).toContain('segments[1].match.amount: max (5) is below min (10)');
    expect(msg).toContain('segments[1].match.amount: needs currencies');
    expect(msg).toContain('segments[2].match.metadata.tier: expected a string');
    expect(msg).toContain('segments[3].match: missing');
    expect(msg).toContain('segments[4]: expected an object');
  });
});

describe('what rules match on, from Stripe objects', () => {
  it('reads price and product of invoice lines from pricing.price_details', () => {
    // SDK types (InvoiceLineItem.Pricing.PriceDetails, API 2026-10-28.endive): `price`: "The ID of the
    // price this item is associated with."; `product`: "The ID of the product this item is associated with."
    const inv = {
      lines: {
        data: [
          { pricing: { type: 'price_details', price_details: { price: 'price_pro_y', product: 'prod_pro' } } },
          { pricing: { type: 'price_details', price_details: { price: { id: 'price_seat_y' }, product: 'prod_pro' } } },
          { pricing: null },
        ],
      },
    } as unknown as Stripe.Invoice;
    expect(invoiceLinePricing(inv)).toEqual({ prices: ['price_pro_y', 'price_seat_y'], products: ['prod_pro'] });
  });

  it('reads the billing interval from subscription items', () => {
    // SDK types: Subscription `items`: "List of subscription items, each with an attached price.";
    // Price.Recurring `interval`: "The frequency at which a subscription is billed. One of `day`,
    // `week`, `month` or `year`."; Price `product`: "The ID of the product this price is associated with."
    const sub = {
      items: {
        data: [
          { price: { id: 'price_pro_y', product: 'prod_pro', recurring: { interval: 'year' } } },
          { price: { id: 'price_setup', product: { id: 'prod_setup' }, recurring: null } },
        ],
      },
    } as unknown as Stripe.Subscription;
    expect(subscriptionItemPricing(sub)).toEqual({
      prices: ['price_pro_y', 'price_setup'],
      products: ['prod_pro', 'prod_setup'],
      intervals: ['year'],
    });
  });
});

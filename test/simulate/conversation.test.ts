import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generatePopulation, type Member } from '../../src/demo/population.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { defaultReminderPolicy } from '../../src/reminders/policy.ts';
import { decideCardUpdate } from '../../src/sandbox/issuer-model.ts';
import { SIMULATION_START } from '../../src/simulate/compare.ts';
import { CHANCE_KINDS, type SimEmail } from '../../src/simulate/conversation.ts';
import type { SimCustomer } from '../../src/simulate/customers.ts';
import { populationCustomers, simulateCustomer, type SimSettings } from '../../src/simulate/engine.ts';
import { familyStrategies, FAMILY_STRATEGY_NAMES, variantPopulation } from '../../src/simulate/family.ts';
import { issuerModelOf, issuerVariant, type IssuerModel } from '../../src/simulate/issuers.ts';
import type { Strategy } from '../../src/simulate/strategies.ts';

const H = 3_600_000;
const DAY = 24 * H;
const cap = defaultReminderPolicy().frequencyCap;

/** An issuer whose cause never goes away: every retry is declined, so every reminder is due. */
const neverClears: IssuerModel = { open: () => ({ charge: () => false }) };

/** One customer, two subscriptions on one card, the second failing `apartMs` after the first. */
function twoInvoices(apartMs: number): SimCustomer {
  const [a, b] = generatePopulation({ seed: 21, customers: 2 }) as [Member, Member];
  const owner: Member = { ...a, card: { ...a.card, failure: 'generic_decline' } };
  const second: Member = { ...owner, key: b.key, failsAfterMs: owner.failsAfterMs + apartMs };
  return { key: owner.key, invoices: [owner, second].map((member, index) => ({ member, index })) };
}

/** Runs a customer, recording every email and every chance the customer had to put in a card. */
function run(customer: SimCustomer, strategy: Strategy, settings: SimSettings, answer = false) {
  const emails: SimEmail[] = [];
  let chances = 0;
  const results = simulateCustomer(customer, strategy, {
    ...settings,
    onEmail: (e) => emails.push(e),
    answers: () => ((chances += 1), answer),
  });
  return { results, emails, chances };
}

/** The mailer's cap as the customer sees it: no capped email within 48 h of, or as the third in 7 days after, others. */
function capBreaches(emails: readonly SimEmail[]): SimEmail[] {
  return emails.filter((e, i) => {
    if (cap.exempt.includes(e.kind)) return false;
    const before = emails.slice(0, i).map((x) => e.at.getTime() - x.at.getTime());
    return (
      before.some((d) => d < cap.minHoursBetween * H) ||
      before.filter((d) => d < cap.perDays * DAY).length >= cap.maxEmails
    );
  });
}

const strategies = familyStrategies(defaultPolicy(), 'Europe/Berlin');
const settings: SimSettings = { seed: 3, start: SIMULATION_START, issuer: neverClears };

describe('one conversation per customer in the simulator', () => {
  it.each(FAMILY_STRATEGY_NAMES.map((name, i) => [name, strategies[i] as Strategy]))(
    '%s: two invoices failing a day apart get merged emails, at most 2 in 7 days, one chance each',
    (_, strategy) => {
      const customer = twoInvoices(DAY);
      const { results, emails, chances } = run(customer, strategy, settings);
      const t0 = results[0]!.attempts[0]!.at.getTime();
      const window = strategy.windowDays * DAY;
      const asked = emails.filter((e) => CHANCE_KINDS.includes(e.kind));
      // The second first notice waits for the cap (48 h after the first); the last chances go as one.
      expect(asked.map((e) => [e.kind, (e.at.getTime() - t0) / H, e.cases])).toEqual([
        ['first_notice', 0, [0]],
        ['first_notice', 48, [1]],
        ['last_chance', window / H - 48, [0, 1]],
      ]);
      // The final notices go as one too, once the first case is over.
      expect(emails.slice(3).map((e) => [e.kind, e.cases])).toEqual([['final_notice', [0, 1]]]);
      expect(capBreaches(emails)).toEqual([]);
      expect(chances).toBe(3);
      expect(results.map((r) => r.emails)).toEqual([2, 1]);

      // One sequence per invoice, as the simulator counted before: four emails, four chances.
      const perInvoice = run(customer, { ...strategy, conversation: null }, settings);
      expect(perInvoice.chances).toBe(4);
      expect(capBreaches(perInvoice.emails).length).toBeGreaterThan(0);
    },
  );

  it('sends one first notice for two invoices that fail together', () => {
    const { emails, chances } = run(twoInvoices(0), strategies[0]!, settings);
    expect(emails.map((e) => [e.kind, e.cases])).toEqual([
      ['first_notice', [0, 1]],
      ['last_chance', [0, 1]],
      ['final_notice', [0, 1]],
    ]);
    expect(chances).toBe(2);
  });

  it('thanks for the invoices a card update paid, and counts the thank-yous against the cap', () => {
    // Invoices failing at 0, 72 h and 96 h; the customer puts in a card after the second email.
    const two = twoInvoices(3 * DAY);
    const owner = two.invoices[0]!.member;
    const third: Member = { ...owner, key: `${owner.key}_c`, failsAfterMs: owner.failsAfterMs + 4 * DAY };
    const customer: SimCustomer = { key: two.key, invoices: [...two.invoices, { member: third, index: 2 }] };
    let asked = 0;
    const emails: SimEmail[] = [];
    simulateCustomer(customer, strategies[0]!, {
      ...settings,
      onEmail: (e) => emails.push(e),
      answers: () => (asked += 1) === 2,
    });
    const t0 = emails[0]!.at.getTime();
    expect(emails.slice(0, 5).map((e) => [e.kind, e.cases, Math.round((e.at.getTime() - t0) / H)])).toEqual([
      ['first_notice', [0], 0],
      ['first_notice', [1], 72],
      ['recovered', [0], 72],
      ['recovered', [1], 72],
      // Four emails in the last week: the third invoice's notice waits until two have left it
      // (168 h without the thank-yous, the first notice at 0 leaving the week).
      ['first_notice', [2], 240],
    ]);
    expect(capBreaches(emails)).toEqual([]);
  });

  it('keeps every customer of a population within the cap, with one chance per email asking to act', () => {
    const population = generatePopulation({ seed: 5, customers: 400 });
    const customers = populationCustomers(population, 5);
    expect(customers.filter((c) => c.invoices.length > 1).length).toBeGreaterThan(30);
    for (const strategy of strategies) {
      let asked = 0;
      let chances = 0;
      let counted = 0;
      for (const customer of customers) {
        const emails: SimEmail[] = [];
        const results = simulateCustomer(customer, strategy, {
          seed: 5,
          start: SIMULATION_START,
          onEmail: (e) => emails.push(e),
          answers: (p, rng) => ((chances += 1), decideCardUpdate(p, rng)),
        });
        expect(capBreaches(emails)).toEqual([]);
        asked += emails.filter((e) => CHANCE_KINDS.includes(e.kind)).length;
        counted += results.reduce((n, r) => n + r.emails, 0);
      }
      expect(chances).toBe(asked);
      expect(counted).toBe(asked);
    }
  });
});

/**
 * A digest of every result of the single-invoice customers (or of all customers) of one population,
 * on the sandbox and on a hidden-state issuer with observed paydays, through the family's strategies.
 */
function digests(options: { all: boolean; perInvoice: boolean }): Record<string, string> {
  const seed = 5;
  const base = generatePopulation({ seed, customers: 400, spreadDays: 30 });
  const out: Record<string, string> = {};
  for (const name of ['sandbox', 'paydays-first']) {
    const v = issuerVariant(name);
    const population = variantPopulation(base, v, seed);
    const s: SimSettings = { seed, start: SIMULATION_START, issuer: issuerModelOf(v) };
    for (const strategy of strategies) {
      const rows: unknown[] = [];
      for (const c of populationCustomers(population, seed)) {
        if (!options.all && c.invoices.length !== 1) continue;
        for (const r of simulateCustomer(c, options.perInvoice ? { ...strategy, conversation: null } : strategy, s))
          rows.push([
            r.key,
            r.recovered,
            r.charges,
            r.violations,
            r.attempts.map((a) => [a.at.toISOString(), a.card, a.paymentMethod ?? null, a.source, a.ok, a.reason]),
          ]);
      }
      out[`${name}/${strategy.name}`] = createHash('sha256').update(JSON.stringify(rows)).digest('hex').slice(0, 16);
    }
  }
  return out;
}

describe('what conversations leave alone', () => {
  // Measured with the engine before conversations (every invoice its own reminders): a customer
  // with one invoice gets the same emails either way, so the same draws and the same story.
  it('gives single-invoice customers exactly the results from before', () => {
    expect(digests({ all: false, perInvoice: false })).toEqual({
      'sandbox/policy': '51b06cdcffda0f89',
      'sandbox/holdout': '8540107dbb42b3ca',
      'sandbox/Stripe-like': '59744ab82c53d304',
      'sandbox/no retries': '515d3e9e8284a7c7',
      'paydays-first/policy': '5eef0291738b7dad',
      'paydays-first/holdout': '761af69c8f03d83e',
      'paydays-first/Stripe-like': '9b789be286872faa',
      'paydays-first/no retries': '289b3558297b75b7',
    });
  });

  it('without conversation rules, gives every customer the results from before', () => {
    expect(digests({ all: true, perInvoice: true })).toEqual({
      'sandbox/policy': 'ed6aa6938999c637',
      'sandbox/holdout': 'd070366beee0c8c5',
      'sandbox/Stripe-like': '61a4917a5b33086b',
      'sandbox/no retries': '3778d6a4c7cd7359',
      'paydays-first/policy': '84b50a3630037564',
      'paydays-first/holdout': '75fe0f3c2b7bfb00',
      'paydays-first/Stripe-like': '9b2f78ce47c379ad',
      'paydays-first/no retries': '15f01fb643d87ac1',
    });
  });
});

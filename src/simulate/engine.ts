/**
 * A fast, in-memory discrete-event simulation of dunning: each failed renewal runs through retries
 * (timed by a strategy), reminders and card updates, with the sandbox's issuer model deciding every
 * charge. A customer's failed renewals run together: the card networks count per card. No database, no HTTP, no clock: a seed replays the same story.
 */
import type { Member } from '../demo/population.ts';
import type { ObservedPayday } from '../dunning/observed-payday.ts';
import { DEFAULT_POLICY_NAME } from '../dunning/segments.ts';
import { createRng, decideCardUpdate, decideCharge, type Rng } from '../sandbox/issuer-model.ts';
import { CHANCE_KINDS, createConversation, type SimEmail } from './conversation.ts';
import { customersOf, type SimCustomer, type SimInvoice } from './customers.ts';
import { sandboxIssuer, type CaseIssuer, type IssuerModel } from './issuers.ts';
import { OBSERVED_PAYDAY_SHARE, observedPaydayOf } from './observed-paydays.ts';
import { paymentMethodOf, type SimAttempt, type SimCase, type Strategy } from './strategies.ts';
import { addViolations, noViolations, violationsByAttempt, type Violations } from './violations.ts';

export interface SimSettings {
  seed: number;
  /** Instant the population's billing week starts. */
  start: Date;
  /** Who answers the charges; the sandbox's model when absent. */
  issuer?: IssuerModel;
  /**
   * Share of customers whose ledger shows their payday (observed-paydays.ts), where the issuer model
   * has pay cycles; `OBSERVED_PAYDAY_SHARE` when absent, 0 for none.
   */
  observedPaydayShare?: number;
  /**
   * Whether the customer puts in a working card after an email, from the customer's stream;
   * `decideCardUpdate` when absent (tests count the chances through it).
   */
  answers?: (probability: number, customer: Rng) => boolean;
  /** Sees every email of a customer as it goes out, for tests (cases by their place in the customer). */
  onEmail?: (email: SimEmail, customer: SimCustomer) => void;
}

export interface CaseResult {
  key: string;
  currency: string;
  amount: number;
  /** Why the renewal failed: the first decline's reason. */
  reason: string;
  /** The named policy the case ran (segment rules), `default` when none applied. */
  policy: string;
  recovered: boolean;
  /** Charges after Stripe's failed renewal: scheduled retries and card-update charges. */
  charges: number;
  violations: Violations;
  attempts: SimAttempt[];
  /** What the customer's ledger showed the strategy of their payday; null: nothing. */
  observedPayday: ObservedPayday | null;
  /** Emails sent for this case that asked the customer to act (a merged one counts for its host only). */
  emails: number;
}

const DAY = 86_400_000;
/** A strategy that keeps proposing retries cannot loop forever. */
const MAX_STEPS = 200;

/**
 * Each member gets its own random streams, one for the issuer and one for the customer, so every
 * strategy meets the same customers: retries drawing on the issuer stream cannot change whether a
 * customer answers a reminder.
 */
export function memberRng(seed: number, index: number, stream: number): Rng {
  return createRng((seed * 0x9e3779b1 + index * 0x85ebca6b + stream * 0xc2b2ae35) >>> 0);
}

/** Chance that a customer who does not put in a working card after a reminder re-enters the failing one. */
export const READD_SHARE = 0.3;

interface OpenCase {
  inv: SimInvoice;
  result: CaseResult;
  c: SimCase;
  issuer: Rng;
  customer: Rng;
  cause: CaseIssuer;
  windowEnd: number;
  /** The planned retry (ms), Infinity when none; null: to be asked. */
  retryAt: number | null;
  /** When the plan is asked for: the event that made it stale. */
  planFrom: number;
}

function lastOf(c: SimCase): SimAttempt {
  return c.attempts[c.attempts.length - 1] as SimAttempt;
}

function paymentMethodIn(a: SimAttempt): string {
  return a.paymentMethod ?? paymentMethodOf(a.card);
}

/**
 * One customer's failed renewals, run together in time order, as the worker meets them: the
 * planner sees the customer's other invoices (`SimCase.otherInvoices`), a due retry is checked
 * against what the other invoices charged since it was planned (`Strategy.allows`), a working card
 * the customer puts in is charged for every open invoice, and a card re-entered under a new payment
 * method id is the same card. The customer's reminders are one conversation (conversation.ts): capped
 * and merged as the mailer sends them, one chance of a card update per email. Violations are counted per card across the invoices and charged to
 * the invoice whose charge broke the rule.
 */
export function simulateCustomer(customer: SimCustomer, outer: Strategy, s: SimSettings): CaseResult[] {
  // A customer's invoices renew one plan (same price and currency): the first names the segment.
  const first = customer.invoices[0]?.member;
  const segment = first ? outer.segment?.(first) : undefined;
  const strategy = segment?.strategy ?? outer;
  const cases: OpenCase[] = customer.invoices.map((inv) => {
    const { member, index } = inv;
    const openedAt = new Date(s.start.getTime() + member.failsAfterMs);
    // Each strategy's own window: a baseline must not move with the policy under test.
    const windowEnd = openedAt.getTime() + strategy.windowDays * DAY;
    const cause = (s.issuer ?? sandboxIssuer).open(member, openedAt, memberRng(s.seed, index, 3));
    // From a stream of its own (6), after the case's hidden draws: no figure without it moves.
    const observedPayday = cause.paydays
      ? observedPaydayOf(
          cause.paydays,
          openedAt,
          member.timeZone,
          member.key,
          memberRng(s.seed, index, 6),
          s.observedPaydayShare ?? OBSERVED_PAYDAY_SHARE,
        )
      : null;
    const c: SimCase = {
      invoiceId: `in_sim_${member.key}`,
      openedAt,
      timeZone: member.timeZone,
      country: member.country,
      cardBrand: member.card.brand,
      attempts: [{ at: openedAt, card: 0, source: 'stripe', ok: false, reason: member.card.failure }],
      observedPayday,
    };
    return {
      inv,
      c,
      issuer: memberRng(s.seed, index, 1),
      customer: memberRng(s.seed, index, 2),
      cause,
      windowEnd,
      retryAt: null,
      planFrom: openedAt.getTime(),
      result: {
        key: member.key,
        currency: member.currency,
        amount: member.amount,
        reason: member.card.failure ?? 'none',
        policy: segment?.policy ?? DEFAULT_POLICY_NAME,
        recovered: member.card.failure === null,
        charges: 0,
        violations: noViolations(),
        attempts: c.attempts,
        observedPayday,
        emails: 0,
      },
    };
  });
  // A case exists from its failed renewal on: another invoice's story is only seen up to `now`.
  const opened = (k: OpenCase, now: number) => k.c.openedAt.getTime() <= now;
  const others = (k: OpenCase, now: number) =>
    cases.filter((o) => o !== k && opened(o, now)).flatMap((o) => o.c.attempts.filter((a) => a.at.getTime() <= now));
  const view = (k: OpenCase, now: number): SimCase => ({ ...k.c, otherInvoices: others(k, now), now: new Date(now) });
  const plan = (k: OpenCase, now: number) => {
    const last = lastOf(k.c);
    const proposed = strategy.nextRetry(view(k, now));
    // A strategy must move forward in time, within its window (a retry on its last day counts).
    k.retryAt =
      proposed !== null &&
      proposed.getTime() > last.at.getTime() &&
      proposed.getTime() >= now &&
      proposed.getTime() <= k.windowEnd
        ? proposed.getTime()
        : Infinity;
  };
  // The customer's reminders, as one conversation (or one sequence per invoice, without rules).
  const conversation = createConversation(
    strategy.conversation,
    cases.map((k) => ({
      openedAt: k.c.openedAt.getTime(),
      windowEnd: k.windowEnd,
      get recovered() {
        return k.result.recovered;
      },
    })),
  );
  cases.forEach((_, i) => conversation.open(i, strategy.reminders));
  const paid = (o: OpenCase, at: number) => {
    if (o.result.recovered) conversation.recovered(cases.indexOf(o), at);
  };
  const answers = s.answers ?? decideCardUpdate;
  let cards = 1;
  let readds = 0;
  // Steps are charges and emails that ask the customer to act; mail that is held back, cancelled
  // or only informs (a final notice, a thank-you) moves time on without one.
  let steps = 0;
  for (let guard = 0; steps < MAX_STEPS * cases.length && guard < 2 * MAX_STEPS * cases.length; guard += 1) {
    let next: { k: OpenCase; at: number } | null = null;
    for (const k of cases) {
      if (k.result.recovered) continue;
      if (k.retryAt === null) plan(k, k.planFrom);
      const at = k.retryAt ?? Infinity;
      if (at !== Infinity && (next === null || at < next.at)) next = { k, at };
    }
    // An email due at the same moment as a retry goes first, as a case's reminder always did.
    const mail = conversation.next();
    if (mail !== null && (next === null || mail.at <= next.at)) {
      const email = conversation.run();
      if (email !== null) s.onEmail?.(email, customer);
      if (email === null || !CHANCE_KINDS.includes(email.kind)) continue;
      steps += 1;
      // One email, one chance, drawn from the stream of the case it was sent for.
      const k = cases[email.host] as OpenCase;
      const at = email.at.getTime();
      k.result.emails += 1;
      if (answers(k.inv.member.cardUpdateProbability, k.customer)) {
        // The customer put in a working card: every strategy charges it at once, for every open invoice.
        const card = cards++;
        for (const o of cases) {
          if (o.result.recovered || !opened(o, at)) continue;
          const t = new Date(Math.max(at, lastOf(o.c).at.getTime() + 1));
          const member = o.inv.member;
          const ok = decideCharge(
            { reason: null, cardBrand: member.card.brand, firstFailedAt: null, at: t, timeZone: member.timeZone },
            o.issuer,
          ).ok;
          o.c.attempts.push({ at: t, card, source: 'card_update', ok, reason: null });
          delete o.c.current;
          o.result.recovered = ok;
          o.retryAt = null;
          o.planFrom = t.getTime();
          paid(o, t.getTime());
        }
      } else if (k.customer() < READD_SHARE) {
        // The customer typed the same card in again: a new payment method id, the same card.
        const card = lastOf(k.c).card;
        readds += 1;
        const current = { paymentMethod: `${paymentMethodOf(card)}.${readds}`, card };
        for (const o of cases) {
          if (o.result.recovered || !opened(o, at) || lastOf(o.c).card !== card) continue;
          o.c.current = current;
          o.retryAt = null;
          o.planFrom = at;
        }
      }
      continue;
    }
    if (next === null) break;
    steps += 1;
    const { k, at } = next;
    if (strategy.allows && !strategy.allows(view(k, at), new Date(at))) {
      // The runner's check right before charging said no: plan again from now.
      plan(k, at);
      if ((k.retryAt ?? Infinity) <= at) k.retryAt = Infinity;
      continue;
    }
    const last = lastOf(k.c);
    const ok = k.cause.charge(new Date(at), k.issuer);
    k.c.attempts.push({
      at: new Date(at),
      card: k.c.current?.card ?? last.card,
      paymentMethod: k.c.current?.paymentMethod ?? paymentMethodIn(last),
      source: 'scheduled',
      ok,
      reason: ok ? null : k.inv.member.card.failure,
    });
    k.result.recovered = ok;
    k.retryAt = null;
    k.planFrom = at;
    paid(k, at);
  }
  const all = cases.flatMap((k) => k.c.attempts.map((a) => ({ k, a })));
  const brand = customer.invoices[0]?.member.card.brand ?? '';
  violationsByAttempt(
    all.map((x) => x.a),
    brand,
  ).forEach((v, i) => addViolations((all[i] as (typeof all)[number]).k.result.violations, v));
  for (const k of cases) k.result.charges = k.c.attempts.length - 1;
  return cases.map((k) => k.result);
}

/** One failed renewal of a customer with no other failing invoice. */
export function simulateCase(member: Member, index: number, strategy: Strategy, s: SimSettings): CaseResult {
  return simulateCustomer({ key: member.key, invoices: [{ member, index }] }, strategy, s)[0] as CaseResult;
}

export interface CurrencyTotals {
  currency: string;
  opened: number;
  openedAmount: number;
  recovered: number;
  recoveredAmount: number;
}

export interface StrategyResult {
  name: string;
  describe: string;
  cases: number;
  recovered: number;
  charges: number;
  /** Emails that asked customers to act (first notices, last chances): one chance each of a card update. */
  emails: number;
  violations: Violations;
  byCurrency: CurrencyTotals[];
  /** Cases and recoveries per failure reason, to see where a policy wins or loses. */
  byReason: Array<{ reason: string; cases: number; recovered: number }>;
  /** Cases and recoveries per named policy (segment rules); one `default` row without segments. */
  byPolicy: Array<{ policy: string; cases: number; recovered: number }>;
}

export function summarize(strategy: Strategy, results: readonly CaseResult[]): StrategyResult {
  const byCurrency = new Map<string, CurrencyTotals>();
  const violations = noViolations();
  const byReason = new Map<string, { reason: string; cases: number; recovered: number }>();
  const byPolicy = new Map<string, { policy: string; cases: number; recovered: number }>();
  let recovered = 0;
  let charges = 0;
  let emails = 0;
  for (const r of results) {
    const t = byCurrency.get(r.currency) ?? {
      currency: r.currency,
      opened: 0,
      openedAmount: 0,
      recovered: 0,
      recoveredAmount: 0,
    };
    t.opened += 1;
    t.openedAmount += r.amount;
    if (r.recovered) {
      t.recovered += 1;
      t.recoveredAmount += r.amount;
      recovered += 1;
    }
    charges += r.charges;
    emails += r.emails;
    const why = byReason.get(r.reason) ?? { reason: r.reason, cases: 0, recovered: 0 };
    why.cases += 1;
    if (r.recovered) why.recovered += 1;
    byReason.set(r.reason, why);
    const pol = byPolicy.get(r.policy) ?? { policy: r.policy, cases: 0, recovered: 0 };
    pol.cases += 1;
    if (r.recovered) pol.recovered += 1;
    byPolicy.set(r.policy, pol);
    addViolations(violations, r.violations);
    byCurrency.set(r.currency, t);
  }
  return {
    name: strategy.name,
    describe: strategy.describe,
    cases: results.length,
    recovered,
    charges,
    emails,
    violations,
    byCurrency: [...byCurrency.values()].sort((a, b) => a.currency.localeCompare(b.currency)),
    byReason: [...byReason.values()].sort((a, b) => b.cases - a.cases || a.reason.localeCompare(b.reason)),
    byPolicy: [...byPolicy.values()].sort((a, b) => b.cases - a.cases || a.policy.localeCompare(b.policy)),
  };
}

/** The population's customers: some own several of its failed renewals (see customers.ts). */
export function populationCustomers(population: readonly Member[], seed: number): SimCustomer[] {
  return customersOf(population, (i) => memberRng(seed, i, 5));
}

/** Every customer of the population through one strategy; results in population order. */
export function simulateStrategy(population: readonly Member[], strategy: Strategy, s: SimSettings): StrategyResult {
  const results: CaseResult[] = [];
  for (const customer of populationCustomers(population, s.seed)) {
    const rs = simulateCustomer(customer, strategy, s);
    customer.invoices.forEach((inv, i) => (results[inv.index] = rs[i] as CaseResult));
  }
  return summarize(strategy, results);
}

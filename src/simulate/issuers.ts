/**
 * A family of simulated card issuers, so a retry policy is judged on more than the one model it
 * was tuned on. Each variant is one row of `ISSUER_VARIANTS`: its decline mix, how long soft
 * declines last, when its customers are paid and how many declines never clear, with the public
 * figure it leans on or the word "assumption" where there is none.
 *
 * `sandbox` is the sandbox's own model (src/sandbox/issuer-model.ts). Every other variant is a
 * hidden-state issuer: when a renewal fails, the case draws once, from its own random stream, when
 * (if ever) its cause goes away; a charge before that is declined (bar a small chance of noise),
 * a charge after it goes through with `afterClear`. So every strategy meets the same hidden causes,
 * and a strategy that stops early, or spends its tries on the wrong days, is seen to lose.
 */
import { DateTime } from 'luxon';
import { FAILURE_SHARES, type Member } from '../demo/population.ts';
import { lastBusinessDay } from '../dunning/paydays.ts';
import { decideCharge, type FailureReason, type Rng } from '../sandbox/issuer-model.ts';

export type PaydayProfile = 'first' | 'month_end' | 'semi_monthly' | 'weekly' | 'day_25';
export type Weighted<T> = ReadonlyArray<readonly [T, number]>;

/** What a simulated issuer knows about one failed renewal: its hidden cause, drawn once. */
export interface CaseIssuer {
  /** Whether a charge of the failed card at `at` goes through. */
  charge(at: Date, rng: Rng): boolean;
  /**
   * The customer's true pay cycle, which the simulator shows strategies only through an observed
   * payday (observed-paydays.ts). Absent: the model has no pay cycles (the sandbox's).
   */
  paydays?: PaydayProfile;
}

export interface IssuerModel {
  /** `hidden` is the case's own stream: the same draws whatever strategy runs the case. */
  open(member: Member, openedAt: Date, hidden: Rng): CaseIssuer;
}

export interface HiddenStateParams {
  /** Mean hours until a generic_decline / do_not_honor stops (exponential), when it stops at all. */
  softClearMeanHours: number;
  /** Share of generic, do_not_honor and funds declines that never clear within the case. */
  permanentShare: number;
  /** Chance a charge succeeds once the cause has gone. */
  afterClear: number;
  /** Chance a charge succeeds while the cause is still there (issuer noise). */
  noise: number;
  /** Chance the money covers the invoice after one of the customer's paydays. */
  fundedPerPayday: number;
  /** Mean days the money lasts after a payday before other debits take it (exponential). */
  fundsLastDays: number;
  /** Which paydays customers have: one profile per customer, drawn by these weights. */
  paydays: Weighted<PaydayProfile>;
}

export interface IssuerVariant {
  name: string;
  /** Failure reasons of the renewals; null keeps the population's own shares. */
  mix: Weighted<FailureReason> | null;
  /** null: the sandbox's own issuer model. */
  params: HiddenStateParams | null;
  /** Where the figures come from, and which are assumptions. */
  source: string;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The issue's independent model: generic and do_not_honor the majority, funds about 15 %.
 * Visa's Global Declines Transaction Analysis (as quoted by churnward.com/blog/credit-card-decline-codes)
 * puts "Do Not Honor" at 30-40 % of declines.
 */
const GENERIC_MAJORITY: Weighted<FailureReason> = [
  ['generic_decline', 0.28],
  ['do_not_honor', 0.27],
  ['insufficient_funds', 0.15],
  ['expired_card', 0.12],
  ['processing_error', 0.04],
  ['issuer_not_available', 0.02],
  ['authentication_required', 0.05],
  ['lost_card', 0.04],
  ['stolen_card', 0.03],
];
/** Funds the majority: PayNearMe's docs call insufficient funds "the most common decline codes". */
const FUNDS_MAJORITY: Weighted<FailureReason> = [
  ['insufficient_funds', 0.55],
  ['generic_decline', 0.1],
  ['do_not_honor', 0.08],
  ['expired_card', 0.12],
  ['processing_error', 0.03],
  ['issuer_not_available', 0.02],
  ['authentication_required', 0.04],
  ['lost_card', 0.04],
  ['stolen_card', 0.02],
];
/** "Do Not Honor" and "Insufficient Funds" together about 76 % of declines (Visa, via churnward.com). */
const VISA_DNH_NSF: Weighted<FailureReason> = [
  ['do_not_honor', 0.36],
  ['insufficient_funds', 0.4],
  ['generic_decline', 0.05],
  ['expired_card', 0.08],
  ['processing_error', 0.03],
  ['issuer_not_available', 0.02],
  ['authentication_required', 0.03],
  ['lost_card', 0.02],
  ['stolen_card', 0.01],
];
/** Funds and generic declines in balance, for the payday variants (assumption). */
const BALANCED: Weighted<FailureReason> = [
  ['insufficient_funds', 0.35],
  ['generic_decline', 0.18],
  ['do_not_honor', 0.17],
  ['expired_card', 0.12],
  ['processing_error', 0.04],
  ['issuer_not_available', 0.02],
  ['authentication_required', 0.05],
  ['lost_card', 0.04],
  ['stolen_card', 0.03],
];

/** Customers' pay cycles, an assumption: weekly and twice-monthly pay common, monthly less so. */
const MIXED_PAYDAYS: Weighted<PaydayProfile> = [
  ['weekly', 0.3],
  ['semi_monthly', 0.25],
  ['month_end', 0.25],
  ['first', 0.2],
];

/**
 * Recurly's research over 1,300 subscription sites finds most recoveries 2 to 12 days after the
 * decline and "Temporary Hold" (do_not_honor) up to 15 days: a mean of 4 days puts the median
 * near 3 days and 3 % beyond two weeks. The other figures are assumptions.
 */
const BASE: HiddenStateParams = {
  softClearMeanHours: 96,
  permanentShare: 0.3,
  afterClear: 0.8,
  noise: 0.02,
  fundedPerPayday: 0.75,
  fundsLastDays: 3,
  paydays: MIXED_PAYDAYS,
};

const RECURLY = 'Recurly research (recovery 2-12 days after the decline, temporary holds up to 15)';

export const ISSUER_VARIANTS: readonly IssuerVariant[] = [
  {
    name: 'sandbox',
    mix: null,
    params: null,
    source: "the sandbox's own model and population (src/sandbox/issuer-model.ts): assumptions, funds about 40 %",
  },
  {
    name: 'generic-majority',
    mix: GENERIC_MAJORITY,
    params: BASE,
    source: `issue 15's independent model (generic + do_not_honor 55 %, funds 15 %); ${RECURLY}; the rest assumptions`,
  },
  {
    name: 'funds-majority',
    mix: FUNDS_MAJORITY,
    params: BASE,
    source: 'PayNearMe docs (insufficient funds the most common decline); shares and timing assumptions',
  },
  {
    name: 'visa-dnh-nsf',
    mix: VISA_DNH_NSF,
    params: BASE,
    source: 'Visa Global Declines Transaction Analysis via churnward.com: do_not_honor + funds 76 %, code 05 30-40 %',
  },
  {
    name: 'soft-hours',
    mix: GENERIC_MAJORITY,
    params: { ...BASE, softClearMeanHours: 6 },
    source: 'generic-majority, soft declines gone in hours (mean 6 h): assumption, the short end',
  },
  {
    name: 'soft-two-weeks',
    mix: GENERIC_MAJORITY,
    params: { ...BASE, softClearMeanHours: 14 * 24 },
    source: 'generic-majority, soft declines lasting two weeks on average: assumption, the long end',
  },
  {
    name: 'paydays-first',
    mix: BALANCED,
    params: { ...BASE, paydays: [['first', 1]] },
    source: 'every customer paid on the 1st (assumption)',
  },
  {
    name: 'paydays-month-end',
    mix: BALANCED,
    params: { ...BASE, paydays: [['month_end', 1]] },
    source: "every customer paid on the month's last business day (assumption)",
  },
  {
    name: 'paydays-semi-monthly',
    mix: BALANCED,
    params: { ...BASE, paydays: [['semi_monthly', 1]] },
    source: 'every customer paid on the 1st and 15th (assumption)',
  },
  {
    name: 'paydays-weekly',
    mix: BALANCED,
    params: { ...BASE, paydays: [['weekly', 1]] },
    source: 'every customer paid on Fridays (assumption)',
  },
  {
    name: 'paydays-25th',
    mix: BALANCED,
    params: { ...BASE, paydays: [['day_25', 1]] },
    source:
      "every customer paid on the 25th, a day the policy's payday calendar does not hold (assumption): what the calendar misses, only learned timing can find",
  },
  {
    name: 'permanent-low',
    mix: GENERIC_MAJORITY,
    params: { ...BASE, permanentShare: 0.1 },
    source: 'generic-majority, 10 % of soft declines never clear (assumption)',
  },
  {
    name: 'permanent-high',
    mix: GENERIC_MAJORITY,
    params: { ...BASE, permanentShare: 0.6 },
    source: 'generic-majority, 60 % of soft declines never clear (assumption)',
  },
];

export function issuerVariant(name: string): IssuerVariant {
  const v = ISSUER_VARIANTS.find((x) => x.name === name);
  if (!v) throw new Error(`unknown issuer variant "${name}"; known: ${ISSUER_VARIANTS.map((x) => x.name).join(', ')}`);
  return v;
}

function pick<T>(rng: Rng, weighted: Weighted<T>): T {
  let r = rng() * weighted.reduce((s, [, w]) => s + w, 0);
  for (const [value, w] of weighted) {
    r -= w;
    if (r < 0) return value;
  }
  return (weighted[weighted.length - 1] as readonly [T, number])[0];
}

/** Exponential draw with this mean; `1 - rng()` keeps log away from 0. */
function exponential(rng: Rng, mean: number): number {
  return -Math.log(1 - rng()) * mean;
}

/** The sandbox's model, as the simulator always used it. */
export const sandboxIssuer: IssuerModel = {
  open(member, openedAt) {
    return {
      charge: (at, rng) =>
        decideCharge(
          {
            reason: member.card.failure,
            cardBrand: member.card.brand,
            firstFailedAt: openedAt,
            at,
            timeZone: member.timeZone,
          },
          rng,
        ).ok,
    };
  },
};

/** The customer's paydays from `from` for `days` days: local midnight of each. */
export function paydaysOf(profile: PaydayProfile, from: Date, days: number, zone: string): Date[] {
  const start = DateTime.fromJSDate(from, { zone }).startOf('day');
  const end = start.plus({ days });
  const out: DateTime[] = [];
  if (profile === 'weekly') {
    // Luxon weekdays: Monday 1 .. Sunday 7; Friday is 5.
    for (let d = start.plus({ days: (5 - start.weekday + 7) % 7 }); d <= end; d = d.plus({ weeks: 1 })) out.push(d);
  } else {
    for (let m = start.startOf('month'); m <= end; m = m.plus({ months: 1 })) {
      if (profile === 'first' || profile === 'semi_monthly') out.push(m);
      if (profile === 'semi_monthly') out.push(m.set({ day: 15 }));
      if (profile === 'month_end') out.push(m.set({ day: lastBusinessDay(m) }));
      if (profile === 'day_25') out.push(m.set({ day: 25 }));
    }
  }
  return out.filter((d) => d >= start && d <= end).map((d) => d.toJSDate());
}

/** How far ahead a case's hidden funding is drawn: longer than any window the policy allows. */
const HORIZON_DAYS = 95;

export function hiddenStateIssuer(p: HiddenStateParams): IssuerModel {
  return {
    open(member, openedAt, hidden) {
      const reason = member.card.failure;
      const opened = openedAt.getTime();
      // Draw every hidden quantity up front, in a fixed order, so they do not depend on the strategy.
      const permanent = hidden() < p.permanentShare;
      const softClearsAt = opened + exponential(hidden, p.softClearMeanHours) * HOUR;
      const quickClearsAt = opened + exponential(hidden, 3) * HOUR;
      const profile = pick(hidden, p.paydays);
      const funded: Array<[number, number]> = [];
      if (reason === 'insufficient_funds' && !permanent) {
        const zone = member.timeZone;
        for (const payday of paydaysOf(profile, openedAt, HORIZON_DAYS, zone)) {
          // Pay lands overnight: usable from 05:00 local on payday.
          const from = payday.getTime() + 5 * HOUR;
          const lasts = exponential(hidden, p.fundsLastDays) * DAY;
          if (hidden() < p.fundedPerPayday && from + lasts > opened)
            funded.push([Math.max(from, opened), from + lasts]);
        }
      }
      const zone = member.timeZone;
      return {
        paydays: profile,
        charge(at, rng) {
          const t = at.getTime();
          switch (reason) {
            case null:
              return true;
            case 'generic_decline':
            case 'do_not_honor': {
              const cleared = !permanent && t >= softClearsAt;
              // Risk rules are strictest at night, as in the sandbox model.
              const night = DateTime.fromMillis(t, { zone }).hour < 6;
              return rng() < (cleared ? p.afterClear : p.noise) * (night ? 0.6 : 1);
            }
            case 'insufficient_funds': {
              const covered = funded.some(([a, b]) => t >= a && t < b);
              return rng() < (covered ? p.afterClear : p.noise);
            }
            case 'processing_error':
            case 'issuer_not_available':
              return rng() < (t >= quickClearsAt ? 0.95 : p.noise);
            case 'expired_card':
            case 'lost_card':
            case 'stolen_card':
            case 'authentication_required':
              return false;
          }
        },
      };
    },
  };
}

export function issuerModelOf(v: IssuerVariant): IssuerModel {
  return v.params === null ? sandboxIssuer : hiddenStateIssuer(v.params);
}

/**
 * The population with this variant's decline mix: each member's failure is redrawn from its own
 * stream, so the same member keeps its market, amount, card and reminder habits in every variant.
 */
export function withMix(population: readonly Member[], v: IssuerVariant, rngFor: (i: number) => Rng): Member[] {
  const mix = v.mix;
  if (mix === null) return [...population];
  return population.map((m, i) => ({ ...m, card: { ...m.card, failure: pick(rngFor(i), mix) } }));
}

/** The population's own shares, for the table of variants. */
export const SANDBOX_MIX = FAILURE_SHARES;

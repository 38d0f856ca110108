/**
 * The `reminders` section of the merchant's dunning policy. The policy module carries it as opaque
 * JSON; this module owns its shape, its defaults and its validation.
 */

import { REMINDER_KINDS, type ReminderKind } from './kinds.ts';

export const FIRST_NOTICE_WHEN = ['first_failure', 'first_retry_failed'] as const;
export type FirstNoticeWhen = (typeof FIRST_NOTICE_WHEN)[number];

export interface QuietHours {
  /** Local hour (0-23) from which nothing is sent... */
  start: number;
  /** ...until this local hour (0-23). start === end means no quiet hours. */
  end: number;
}

export interface ReminderPolicy {
  enabled: boolean;
  firstNotice: { enabled: boolean; when: FirstNoticeWhen };
  lastChance: { enabled: boolean; hoursBefore: number };
  finalNotice: { enabled: boolean };
  recovered: { enabled: boolean };
  actionRequired: { enabled: boolean };
  cardExpiring: { enabled: boolean; daysBefore: number };
  quietHours: QuietHours;
  /** How long a message the mail server keeps refusing for now (4xx) is retried before it counts as failed. */
  delivery: { retryHours: number };
  /**
   * How often one customer may be written to, across every kind and every case: at most
   * `maxEmails` in any `perDays` days and `minHoursBetween` hours apart. `exempt` kinds go out
   * regardless (they still count as contact for the others).
   */
  frequencyCap: FrequencyCap;
  /**
   * One email per step for all of a customer's failing invoices: a reminder being sent takes along
   * the customer's other pending reminders of the same step due within `aheadHours`.
   */
  merge: { enabled: boolean; aheadHours: number };
}

export interface FrequencyCap {
  enabled: boolean;
  maxEmails: number;
  perDays: number;
  minHoursBetween: number;
  exempt: ReminderKind[];
}

export function defaultReminderPolicy(): ReminderPolicy {
  return {
    enabled: true,
    firstNotice: { enabled: true, when: 'first_failure' },
    lastChance: { enabled: true, hoursBefore: 48 },
    finalNotice: { enabled: true },
    recovered: { enabled: true },
    actionRequired: { enabled: true },
    cardExpiring: { enabled: true, daysBefore: 14 },
    quietHours: { start: 21, end: 8 },
    // Two days outlast a receiving server's greylisting or a weekend outage; tries are at most an hour apart.
    delivery: { retryHours: 48 },
    // Two in a week, two days apart: a first notice and a last chance fit; a third email in the
    // same week is held back. The 3-D Secure request is exempt because the bank's authentication
    // window is short and the payment waits on it; the thank-you because it answers the customer's
    // own payment and must not arrive days later.
    frequencyCap: {
      enabled: true,
      maxEmails: 2,
      perDays: 7,
      minHoursBetween: 48,
      exempt: ['action_required', 'recovered'],
    },
    // As far ahead as the cap's gap: a reminder due that soon would be held back anyway.
    merge: { enabled: true, aheadHours: 48 },
  };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Raw JSON -> a complete policy. Absent fields take defaults; every bad field is collected and
 * reported in one error, each named by its path (e.g. `reminders.quietHours.start`).
 */
export function parseReminderPolicy(raw: unknown): ReminderPolicy {
  const policy = defaultReminderPolicy();
  if (raw === undefined || raw === null) return policy;
  const problems: string[] = [];
  if (!isObj(raw)) throw new Error('Invalid policy: reminders: expected an object');

  const known = (obj: Obj, path: string, keys: string[]) => {
    for (const k of Object.keys(obj)) if (!keys.includes(k)) problems.push(`${path}.${k}: unknown field`);
  };
  const section = (obj: Obj, key: string, path: string): Obj | null => {
    const v = obj[key];
    if (v === undefined) return null;
    if (!isObj(v)) {
      problems.push(`${path}.${key}: expected an object`);
      return null;
    }
    return v;
  };
  const bool = (obj: Obj, key: string, path: string, fallback: boolean): boolean => {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') {
      problems.push(`${path}.${key}: expected true or false`);
      return fallback;
    }
    return v;
  };
  const int = (obj: Obj, key: string, path: string, fallback: number, min: number, max: number): number => {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      problems.push(`${path}.${key}: expected an integer from ${min} to ${max}`);
      return fallback;
    }
    return v;
  };

  const p = 'reminders';
  known(raw, p, [
    'enabled',
    'firstNotice',
    'lastChance',
    'finalNotice',
    'recovered',
    'actionRequired',
    'cardExpiring',
    'quietHours',
    'delivery',
    'frequencyCap',
    'merge',
  ]);
  policy.enabled = bool(raw, 'enabled', p, policy.enabled);

  const fn = section(raw, 'firstNotice', p);
  if (fn) {
    const fp = `${p}.firstNotice`;
    known(fn, fp, ['enabled', 'when']);
    policy.firstNotice.enabled = bool(fn, 'enabled', fp, true);
    if (fn.when !== undefined) {
      if (FIRST_NOTICE_WHEN.includes(fn.when as FirstNoticeWhen)) policy.firstNotice.when = fn.when as FirstNoticeWhen;
      else problems.push(`${fp}.when: expected one of ${FIRST_NOTICE_WHEN.join(', ')}`);
    }
  }
  const lc = section(raw, 'lastChance', p);
  if (lc) {
    const lp = `${p}.lastChance`;
    known(lc, lp, ['enabled', 'hoursBefore']);
    policy.lastChance.enabled = bool(lc, 'enabled', lp, true);
    policy.lastChance.hoursBefore = int(lc, 'hoursBefore', lp, policy.lastChance.hoursBefore, 1, 24 * 14);
  }
  for (const key of ['finalNotice', 'recovered', 'actionRequired'] as const) {
    const s = section(raw, key, p);
    if (s) {
      known(s, `${p}.${key}`, ['enabled']);
      policy[key].enabled = bool(s, 'enabled', `${p}.${key}`, true);
    }
  }
  const ce = section(raw, 'cardExpiring', p);
  if (ce) {
    const cp = `${p}.cardExpiring`;
    known(ce, cp, ['enabled', 'daysBefore']);
    policy.cardExpiring.enabled = bool(ce, 'enabled', cp, true);
    policy.cardExpiring.daysBefore = int(ce, 'daysBefore', cp, policy.cardExpiring.daysBefore, 0, 60);
  }
  const qh = section(raw, 'quietHours', p);
  if (qh) {
    const qp = `${p}.quietHours`;
    known(qh, qp, ['start', 'end']);
    policy.quietHours.start = int(qh, 'start', qp, policy.quietHours.start, 0, 23);
    policy.quietHours.end = int(qh, 'end', qp, policy.quietHours.end, 0, 23);
  }
  const dl = section(raw, 'delivery', p);
  if (dl) {
    const dp = `${p}.delivery`;
    known(dl, dp, ['retryHours']);
    policy.delivery.retryHours = int(dl, 'retryHours', dp, policy.delivery.retryHours, 1, 24 * 14);
  }
  const fc = section(raw, 'frequencyCap', p);
  if (fc) {
    const cp = `${p}.frequencyCap`;
    const cap = policy.frequencyCap;
    known(fc, cp, ['enabled', 'maxEmails', 'perDays', 'minHoursBetween', 'exempt']);
    cap.enabled = bool(fc, 'enabled', cp, cap.enabled);
    cap.maxEmails = int(fc, 'maxEmails', cp, cap.maxEmails, 1, 50);
    cap.perDays = int(fc, 'perDays', cp, cap.perDays, 1, 60);
    cap.minHoursBetween = int(fc, 'minHoursBetween', cp, cap.minHoursBetween, 0, 24 * 30);
    if (fc.exempt !== undefined) {
      const list = fc.exempt;
      const bad = Array.isArray(list) ? list.filter((k) => !(REMINDER_KINDS as readonly unknown[]).includes(k)) : null;
      if (bad === null || bad.length > 0)
        problems.push(
          `${cp}.exempt: expected a list of reminder kinds (${REMINDER_KINDS.join(', ')})${bad && bad.length > 0 ? `, got ${bad.map((b) => JSON.stringify(b)).join(', ')}` : ''}`,
        );
      else cap.exempt = [...new Set(list as ReminderKind[])];
    }
    // A gap longer than the window leaves maxEmails meaningless: almost certainly a unit mix-up.
    if (cap.minHoursBetween > cap.perDays * 24)
      problems.push(
        `${cp}.minHoursBetween: ${cap.minHoursBetween} h is longer than perDays (${cap.perDays} days); did you mean days?`,
      );
  }
  const mg = section(raw, 'merge', p);
  if (mg) {
    const mp = `${p}.merge`;
    known(mg, mp, ['enabled', 'aheadHours']);
    policy.merge.enabled = bool(mg, 'enabled', mp, policy.merge.enabled);
    policy.merge.aheadHours = int(mg, 'aheadHours', mp, policy.merge.aheadHours, 0, 24 * 14);
  }
  // One problem reads as one line (what `dunning start` prints); several as a list.
  if (problems.length === 1) throw new Error(`Invalid policy: ${problems[0]}`);
  if (problems.length > 1) {
    throw new Error(`Invalid policy:\n${problems.map((x) => `  - ${x}`).join('\n')}`);
  }
  return policy;
}

/**
 * The fields of the reminders section that are about the customer, not a case: one customer's
 * cases may run different named policies, and one cap must hold across them. Only the default
 * policy may set them; a named policy that does is refused at start rather than ignored.
 */
export const CUSTOMER_WIDE_FIELDS = ['frequencyCap', 'merge'] as const;

/**
 * The customer-wide fields a named policy sets differently from the default. A named policy is the
 * default merged with its override, so the default's own values come along and are fine.
 */
export function customerWideFieldsIn(named: unknown, base: unknown): string[] {
  const field = (raw: unknown, k: string): string | undefined =>
    typeof raw === 'object' && raw !== null && !Array.isArray(raw)
      ? JSON.stringify((raw as Record<string, unknown>)[k])
      : undefined;
  return CUSTOMER_WIDE_FIELDS.filter((k) => field(named, k) !== field(base, k));
}

/**
 * One conversation per customer: whether a due reminder goes out now, which of the customer's other
 * pending reminders it takes along (merged: one email lists all their invoices), or until when the
 * frequency cap holds it back. Pure: the mailer reads the rows under the customer's lock, asks
 * here, and writes the answer.
 */
import type { ReminderKind } from './kinds.ts';
import type { FrequencyCap, ReminderPolicy } from './policy.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** A reminder of the customer that has not gone out yet. */
export interface PendingReminder {
  id: number;
  kind: ReminderKind;
  caseId: number | null;
  invoiceId: string | null;
  sendAt: Date;
  /** When what the reminder announces happens (a last chance's final attempt): no use after it. */
  pointlessAfter?: Date | null;
}

/** An email the customer was sent (or is being sent right now): merged rows are not emails. */
export interface SentEmail {
  at: Date;
  kind: ReminderKind;
}

export type Decision =
  | { action: 'send'; merge: number[] }
  | { action: 'defer'; until: Date; reason: string }
  | { action: 'cancel'; reason: string };

/** The steps that talk about unpaid invoices and so can list several of them in one email. */
export const MERGEABLE: readonly ReminderKind[] = ['first_notice', 'last_chance', 'final_notice'];

/**
 * Whether an email of kind `host` already tells the customer what `other` would: the same step, or
 * a first notice whose invoice the last chance lists ("we could not collect" is part of it).
 */
export function covers(host: ReminderKind, other: ReminderKind): boolean {
  if (!MERGEABLE.includes(host) || !MERGEABLE.includes(other)) return false;
  return host === other || (host === 'last_chance' && other === 'first_notice');
}

/**
 * The earliest instant at or after `at` when the cap lets one more email go out, with the reason
 * when that is later than `at`. Counts every email in `history`, exempt kinds too: they are contact.
 */
export function capAllows(
  history: readonly SentEmail[],
  cap: FrequencyCap,
  at: Date,
): { at: Date; reason: string | null } {
  if (!cap.enabled || history.length === 0) return { at, reason: null };
  const t = at.getTime();
  const times = history.map((h) => h.at.getTime()).sort((a, b) => a - b);
  const windowMs = cap.perDays * DAY_MS;
  const inWindow = times.filter((x) => x > t - windowMs);
  let until = t;
  let reason: string | null = null;
  if (inWindow.length >= cap.maxEmails) {
    // Once the oldest of the last `maxEmails` emails leaves the window, one more fits.
    const byCount = inWindow[inWindow.length - cap.maxEmails]! + windowMs;
    if (byCount > until) {
      until = byCount;
      reason = `frequency cap: ${inWindow.length} emails in the last ${cap.perDays} days (at most ${cap.maxEmails})`;
    }
  }
  const byGap = times[times.length - 1]! + cap.minHoursBetween * HOUR_MS;
  if (byGap > until) {
    until = byGap;
    const ago = Math.max(0, Math.round((t - times[times.length - 1]!) / HOUR_MS));
    reason = `frequency cap: last email ${ago} h ago (at least ${cap.minHoursBetween} h apart)`;
  }
  return { at: new Date(until), reason };
}

/**
 * What to do with `reminder`, due now. Exempt kinds always go; others wait for the cap. When it
 * goes, it takes along the customer's pending reminders it covers that are due within
 * `merge.aheadHours`: they would otherwise follow as separate emails (or be held back by the cap).
 */
export function decideSend(o: {
  reminder: PendingReminder;
  pending: readonly PendingReminder[];
  history: readonly SentEmail[];
  policy: Pick<ReminderPolicy, 'frequencyCap' | 'merge'>;
  now: Date;
}): Decision {
  const { reminder, policy, now } = o;
  if (!policy.frequencyCap.exempt.includes(reminder.kind)) {
    const allowed = capAllows(o.history, policy.frequencyCap, now);
    if (allowed.reason !== null) {
      // "We make the final attempt on ..." read after that attempt would mislead: the final
      // notice (or the thank-you) tells the customer how it ended instead.
      const end = reminder.pointlessAfter ?? null;
      if (end !== null && allowed.at.getTime() >= end.getTime())
        return {
          action: 'cancel',
          reason: `${allowed.reason}: held past ${end.toISOString()}, when it no longer applies`,
        };
      return { action: 'defer', until: allowed.at, reason: allowed.reason };
    }
  }
  if (!policy.merge.enabled) return { action: 'send', merge: [] };
  const horizon = now.getTime() + policy.merge.aheadHours * HOUR_MS;
  const merge = o.pending
    .filter(
      (p) =>
        p.id !== reminder.id && p.invoiceId !== null && covers(reminder.kind, p.kind) && p.sendAt.getTime() <= horizon,
    )
    .map((p) => p.id)
    .sort((a, b) => a - b);
  return { action: 'send', merge };
}

/** One invoice as the email lists it. */
export interface ListedInvoice {
  invoiceId: string;
  currency: string;
  /** Minor units still owed (for a thank-you or a lost case: the case amount). */
  amount: number;
  created: Date | null;
  forSubscription: boolean;
}

/** Total per currency, in the order currencies first appear (the email's own invoice first). */
export function totalsByCurrency(items: readonly ListedInvoice[]): Array<{ currency: string; amount: number }> {
  const totals = new Map<string, number>();
  for (const i of items) totals.set(i.currency, (totals.get(i.currency) ?? 0) + i.amount);
  return [...totals].map(([currency, amount]) => ({ currency, amount }));
}

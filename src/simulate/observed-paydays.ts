/**
 * What a simulated customer's ledger shows of their payday (src/dunning/observed-payday.ts): the
 * day an earlier invoice of theirs, declined for lack of funds, was paid. The issuer model knows
 * the customer's true pay cycle (issuers.ts); the planner sees only this one observed day, for some
 * customers, so it gets no more than the worker would in production.
 */
import { DateTime } from 'luxon';
import type { ObservedPayday } from '../dunning/observed-payday.ts';
import type { Rng } from '../sandbox/issuer-model.ts';
import { paydaysOf, type PaydayProfile } from './issuers.ts';

/**
 * Share of customers with an earlier funds failure on record that was paid later (an assumption:
 * one in three to one in two subscribers of a few months' standing has had a renewal declined for
 * lack of funds and recovered). The others have no observed payday.
 */
export const OBSERVED_PAYDAY_SHARE = 0.4;

/**
 * The customer's observed payday, or null when they have none on record: one of their true paydays
 * in the calendar month before `openedAt`, drawn from `rng` (the member's own stream for this, so
 * no other draw moves). So `first` shows the 1st, `month_end` that month's last business day,
 * `semi_monthly` the 1st or the 15th, and `weekly` the date of one of that month's Fridays, which
 * predicts next month's Fridays only weakly, as a real ledger's would.
 */
export function observedPaydayOf(
  profile: PaydayProfile,
  openedAt: Date,
  zone: string,
  key: string,
  rng: Rng,
  share = OBSERVED_PAYDAY_SHARE,
): ObservedPayday | null {
  // Both draws always, so a different share changes who has one, not which day they show.
  const onRecord = rng() < share;
  const which = rng();
  if (!onRecord) return null;
  const month = DateTime.fromJSDate(openedAt, { zone }).minus({ months: 1 }).startOf('month');
  const days = paydaysOf(profile, month.toJSDate(), (month.daysInMonth ?? 30) - 1, zone);
  const payday = days[Math.floor(which * days.length)];
  if (payday === undefined) throw new Error(`no ${profile} payday in ${month.toFormat('yyyy-MM')} (${zone})`);
  // Paid by the first retry after the pay landed: the planner's funds retries are early morning.
  const paidAt = DateTime.fromJSDate(payday, { zone }).set({ hour: 6 });
  return { dayOfMonth: paidAt.day, invoiceId: `in_prev_${key}`, paidAt: paidAt.toJSDate() };
}

/**
 * The customer's own payday, as their ledger shows it: the local day of month on which an earlier
 * invoice of theirs, declined for lack of funds, was finally paid. Money arrived that day, so it is
 * the best single guess of when it arrives again. A renewal paid at its first try says nothing
 * (it shows the billing date, not the payday), nor does a recovery from another kind of decline.
 */
import { DateTime } from 'luxon';

export interface ObservedPayday {
  /** 1-31, in the customer's zone; in a shorter month it falls on the month's last day. */
  dayOfMonth: number;
  /** The invoice whose payment showed it, for the reason. */
  invoiceId: string;
  paidAt: Date;
}

/**
 * Whole local days from the customer's payday to `at` (0 on payday itself, then 1, 2, ... up to
 * the day before the next one); a payday of the 31st falls on the last day of a shorter month.
 */
export function daysSincePayday(at: Date, zone: string, dayOfMonth: number): number {
  const day = DateTime.fromJSDate(at, { zone }).startOf('day');
  if (!day.isValid) throw new Error(`invalid time zone ${zone} for a payday distance`);
  const thisMonth = day.set({ day: Math.min(dayOfMonth, day.daysInMonth ?? 31) });
  if (thisMonth <= day) return Math.round(day.diff(thisMonth, 'days').days);
  const prev = day.minus({ months: 1 });
  const lastMonth = prev.set({ day: Math.min(dayOfMonth, prev.daysInMonth ?? 31) });
  return Math.round(day.diff(lastMonth, 'days').days);
}

/** 1st, 2nd, 3rd, 11th, 21st, ...: the day of month as the reasons write it. */
export function ordinal(day: number): string {
  const tens = day % 100;
  return `${day}${tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][day % 10] ?? 'th')}`;
}

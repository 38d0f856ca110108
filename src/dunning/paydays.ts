/**
 * Likely paydays in the customer's zone: funds declines are retried when money has probably
 * just arrived, at the opening of the local charging window.
 */
import type { DateTime } from 'luxon';
import type { Paydays, Weekday } from './policy.ts';
import { WEEKDAYS } from './policy.ts';
import { local, placeInWindow, type LocalWindow } from './local-time.ts';
import { ordinal, type ObservedPayday } from './observed-payday.ts';

/** Day of month of the last Monday..Friday; public holidays are not modelled. */
export function lastBusinessDay(day: DateTime): number {
  let last = day.endOf('month').startOf('day');
  while (last.weekday > 5) last = last.minus({ days: 1 });
  return last.day;
}

/** Why this local date is a payday, or null when it is not one. */
export function paydayLabel(day: DateTime, paydays: Paydays, observed?: ObservedPayday | null): string | null {
  const daysInMonth = day.daysInMonth ?? 31;
  // A payday on the 31st falls on the month's last day in shorter months.
  if (paydays.daysOfMonth.some((d) => Math.min(d, daysInMonth) === day.day)) return 'payday';
  if (paydays.lastBusinessDay && lastBusinessDay(day) === day.day) return 'last business day';
  const weekday: Weekday | undefined = WEEKDAYS[day.weekday - 1];
  if (weekday && paydays.weekdays.includes(weekday)) return `payday (${weekday})`;
  if (paydays.observed && observed && Math.min(observed.dayOfMonth, daysInMonth) === day.day)
    return `payday of this customer's (the ${ordinal(observed.dayOfMonth)}, seen when ${observed.invoiceId} was paid)`;
  return null;
}

export interface PaydaySlot {
  at: Date;
  label: string;
}

/**
 * The first payday slot at or after `earliest` and not after `latest`: the window opening on
 * that local date, or a later moment of the same day's window when `earliest` falls inside it.
 */
export function nextPaydaySlot(
  earliest: Date,
  latest: Date,
  zone: string,
  window: LocalWindow,
  paydays: Paydays,
  observed?: ObservedPayday | null,
): PaydaySlot | null {
  let day = local(earliest, zone).startOf('day');
  const lastDay = local(latest, zone).startOf('day');
  for (let i = 0; i < 400 && day <= lastDay; i += 1, day = day.plus({ days: 1 }).startOf('day')) {
    const label = paydayLabel(day, paydays, observed);
    if (!label) continue;
    const from = day.toJSDate() > earliest ? day.toJSDate() : earliest;
    const at = placeInWindow(from, zone, window);
    if (local(at, zone).hasSame(day, 'day') && at <= latest) return { at, label };
  }
  return null;
}

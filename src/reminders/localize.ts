/**
 * Pure decisions about a customer's language, zone and the moment an email may go out, plus the
 * formatting of money and dates. No clock reads: every instant is passed in.
 */
import { DateTime } from 'luxon';
import { isZone } from '../dunning/local-time.ts';
import { majorUnits } from '../money.ts';
import type { QuietHours } from './policy.ts';

export const LOCALES = ['en', 'de'] as const;
export type Locale = (typeof LOCALES)[number];

/** The first preferred locale we have templates for (`de-AT` counts as `de`), else the merchant's. */
export function chooseLocale(preferred: readonly string[] | null | undefined, fallback: Locale): Locale {
  for (const tag of preferred ?? []) {
    const language = tag.trim().toLowerCase().split(/[-_]/)[0];
    const hit = LOCALES.find((l) => l === language);
    if (hit) return hit;
  }
  return fallback;
}

/** The customer's zone when it is a real IANA zone; never a silent UTC for a typo. */
export function chooseZone(customerZone: string | null | undefined, merchantZone: string): string {
  const wanted = customerZone?.trim();
  return wanted && isZone(wanted) ? wanted : merchantZone;
}

function isQuiet(localHour: number, quiet: QuietHours): boolean {
  if (quiet.start === quiet.end) return false;
  return quiet.start < quiet.end
    ? localHour >= quiet.start && localHour < quiet.end
    : localHour >= quiet.start || localHour < quiet.end;
}

/**
 * `due` itself when it lies outside the quiet hours of `zone`, else the next local `quiet.end:00`.
 * Luxon resolves a wall time that falls in a DST gap forward, so a spring-forward night never
 * produces an instant before the quiet period ends.
 */
export function nextAllowedSend(due: Date, zone: string, quiet: QuietHours): Date {
  const local = DateTime.fromJSDate(due, { zone });
  if (!isQuiet(local.hour, quiet)) return due;
  let end = local.set({ hour: quiet.end, minute: 0, second: 0, millisecond: 0 });
  if (end <= local) end = end.plus({ days: 1 }).set({ hour: quiet.end, minute: 0, second: 0, millisecond: 0 });
  return end.toJSDate();
}

/**
 * Minor units -> "12,34 €" / "$12.34" / "￥1,200". Stripe's minor unit gives the value (HUF counts
 * hundredths); the locale decides how it is written (Hungarian forints without decimals).
 */
export function formatAmount(minor: number, currency: string, locale: Locale): string {
  return new Intl.NumberFormat(locale, { style: 'currency', currency: currency.toUpperCase() }).format(
    majorUnits(minor, currency),
  );
}

/** A calendar date as the customer reads it, in their zone: "March 30, 2026" / "30. März 2026". */
export function formatDate(at: Date, zone: string, locale: Locale): string {
  return DateTime.fromJSDate(at, { zone }).setLocale(locale).toLocaleString(DateTime.DATE_FULL);
}

/** The last day of a card's expiry month (cards work through that month), in the given zone. */
export function cardExpiryEnd(expMonth: number, expYear: number, zone: string): Date {
  return DateTime.fromObject({ year: expYear, month: expMonth, day: 1 }, { zone }).endOf('month').toJSDate();
}

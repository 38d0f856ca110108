/**
 * Local-time arithmetic for scheduling charges: zone choice, the local charging window, jitter and
 * the wording of times in reasons. All luxon with explicit zones; no clock reads.
 */
import { createHash } from 'node:crypto';
import { DateTime, IANAZone } from 'luxon';

export interface LocalWindow {
  startHour: number;
  endHour: number;
}

export interface ZoneChoice {
  zone: string;
  /** Set when the customer's zone was unusable, so the reason can say which zone was used instead. */
  note: string | null;
}

// Two instants a year apart in season: zones that agree on both keep the same clock all year.
const ZONE_PROBES = [Date.UTC(2026, 0, 15, 12), Date.UTC(2026, 6, 15, 12)];

/**
 * The zone of a country (ISO 3166 alpha-2, as in Stripe's `address.country`) when the whole
 * country keeps one clock, from the runtime's time zone data: Germany (Berlin and Büsingen agree)
 * or Japan yes, the US or Australia no (null: the caller falls back to the merchant's zone).
 */
export function zoneOfCountry(country: string | null | undefined): string | null {
  if (!country || !/^[A-Za-z]{2}$/.test(country)) return null;
  let zones: string[];
  try {
    const locale = new Intl.Locale(`und-${country.toUpperCase()}`) as Intl.Locale & {
      getTimeZones?(): string[];
      timeZones?: string[];
    };
    zones = (locale.getTimeZones?.() ?? locale.timeZones ?? []).filter((z) => IANAZone.isValidZone(z));
  } catch {
    return null;
  }
  const clock = (zone: string) => ZONE_PROBES.map((t) => IANAZone.create(zone).offset(t)).join(',');
  const first = zones[0];
  return first !== undefined && zones.every((z) => clock(z) === clock(first)) ? first : null;
}

const zoneValidity = new Map<string, boolean>();

/**
 * Whether `name` is a real IANA zone. Remembered per name: luxon answers by building an
 * Intl.DateTimeFormat every time, which was a twentieth of a retry worker's CPU (planning asks
 * for every attempt), and the answer cannot change while the process runs. Only a few hundred
 * zones exist, so the cache stays small (unknown names are not kept).
 */
export function isZone(name: string): boolean {
  const known = zoneValidity.get(name);
  if (known !== undefined) return known;
  const valid = IANAZone.isValidZone(name);
  if (valid) zoneValidity.set(name, true);
  return valid;
}

/**
 * The customer's zone when it is a real IANA zone, else the merchant's. An invalid customer zone
 * is reported rather than silently turned into UTC; an invalid merchant zone is a config bug.
 */
export function resolveZone(customerZone: string | null, merchantZone: string): ZoneChoice {
  if (!isZone(merchantZone)) {
    throw new Error(`merchant time zone "${merchantZone}" is not a valid IANA zone`);
  }
  const wanted = customerZone?.trim() ?? '';
  if (wanted === '') return { zone: merchantZone, note: null };
  if (isZone(wanted)) return { zone: wanted, note: null };
  return {
    zone: merchantZone,
    note: `customer time zone "${wanted.slice(0, 40)}" is invalid, using merchant zone ${merchantZone}`,
  };
}

export function local(at: Date, zone: string): DateTime {
  return DateTime.fromJSDate(at, { zone });
}

export function inWindow(at: Date, zone: string, window: LocalWindow): boolean {
  const hour = local(at, zone).hour;
  return hour >= window.startHour && hour < window.endHour;
}

/** The window's opening on the given local day; DST gaps push it forward, never back. */
function openingOn(day: DateTime, window: LocalWindow): DateTime {
  return day.startOf('day').set({ hour: window.startHour, minute: 0, second: 0, millisecond: 0 });
}

/** The earliest instant at or after `earliest` whose local hour lies in [startHour, endHour). */
export function placeInWindow(earliest: Date, zone: string, window: LocalWindow): Date {
  let candidate = local(earliest, zone);
  // A few days is always enough: only a window lying wholly in a DST gap can miss one day.
  for (let i = 0; i < 5; i += 1) {
    if (candidate.hour >= window.startHour && candidate.hour < window.endHour) return candidate.toJSDate();
    const sameDay = openingOn(candidate, window);
    candidate =
      candidate.hour < window.startHour && sameDay > candidate
        ? sameDay
        : openingOn(candidate.plus({ days: 1 }), window);
  }
  throw new Error(`no local time in hours [${window.startHour}, ${window.endHour}) found in zone ${zone}`);
}

/** The first instant after `at` that is no longer inside the window `at` is in. */
export function windowClose(at: Date, zone: string, window: LocalWindow): Date {
  const start = local(at, zone);
  const day = start.startOf('day');
  const close = window.endHour >= 24 ? day.plus({ days: 1 }).startOf('day') : day.set({ hour: window.endHour });
  if (close.offset === start.offset) return close.toJSDate();
  // A clock change inside the window (e.g. Pacific/Chatham falls back from 03:45 to 02:45): the
  // local hours after it may lie outside the window. Find the change, and close there if so.
  let lo = at.getTime();
  let hi = close.toMillis();
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2);
    if (local(new Date(mid), zone).offset === start.offset) lo = mid;
    else hi = mid;
  }
  const after = local(new Date(hi), zone);
  return after.hour >= window.startHour && after.hour < window.endHour ? close.toJSDate() : after.toJSDate();
}

/**
 * A stable offset in [0, maxMs): the same invoice and attempt always get the same jitter, so a
 * re-plan after a crash lands on the same instant while a crowd of invoices is spread out.
 */
export function jitterMs(invoiceId: string, attemptNo: number, maxMs: number): number {
  if (maxMs <= 0) return 0;
  const digest = createHash('sha256').update(`jitter:${invoiceId}:${attemptNo}`).digest();
  return Math.floor((digest.readUInt32BE(0) / 2 ** 32) * maxMs);
}

/** e.g. `Mon 1 Dec 06:00 Europe/Berlin`: what ops read in a plan's reason. */
export function formatLocal(at: Date, zone: string): string {
  return `${local(at, zone).setLocale('en-GB').toFormat('ccc d LLL HH:mm')} ${zone}`;
}

import { DateTime } from 'luxon';

/**
 * The reporting period: whole calendar days in one time zone, `from` inclusive and `to` inclusive
 * as dates, turned into a half-open instant range [start, end) for SQL.
 */
export interface Period {
  fromDate: string;
  toDate: string;
  timeZone: string;
  start: Date;
  end: Date;
}

/** Bad period input (dates, order): the CLI turns it into a usage error, HTTP into a 400. */
export class PeriodError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeriodError';
  }
}

export interface PeriodInput {
  from?: string | null | undefined;
  to?: string | null | undefined;
  timeZone: string;
  now: Date;
}

function parseDay(name: string, raw: string, zone: string): DateTime {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(raw)) throw new PeriodError(`${name}: expected a date as YYYY-MM-DD, got "${raw}"`);
  const day = DateTime.fromISO(raw, { zone });
  if (!day.isValid) throw new PeriodError(`${name}: "${raw}" is not a calendar date`);
  return day.startOf('day');
}

/**
 * Defaults: `to` is the last day of the current month, `from` the first day of `to`'s month, so no
 * flags means "this month" in the merchant's time zone.
 */
export function resolvePeriod(input: PeriodInput): Period {
  const zone = input.timeZone;
  const today = DateTime.fromJSDate(input.now, { zone });
  const toDay = input.to ? parseDay('--to', input.to, zone) : today.endOf('month').startOf('day');
  const fromDay = input.from ? parseDay('--from', input.from, zone) : toDay.startOf('month');
  if (fromDay > toDay) throw new PeriodError(`--from ${fromDay.toISODate()} is after --to ${toDay.toISODate()}`);
  return {
    fromDate: fromDay.toISODate()!,
    toDate: toDay.toISODate()!,
    timeZone: zone,
    start: fromDay.toJSDate(),
    end: toDay.plus({ days: 1 }).startOf('day').toJSDate(),
  };
}

/** A currency filter as given by a user: three letters, stored lower-case like Stripe does. */
export function parseCurrency(raw: string | null | undefined): string | null {
  if (raw === null || raw === undefined || raw === '') return null;
  if (!/^[A-Za-z]{3}$/.test(raw))
    throw new PeriodError(`--currency: expected a three-letter ISO code such as usd or EUR, got "${raw}"`);
  return raw.toLowerCase();
}

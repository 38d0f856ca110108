/**
 * Amounts as Stripe counts them: integers in the currency's minor unit, whose size is Stripe's
 * choice, not the locale data's. Intl (CLDR) says HUF, ISK, TWD and UGX have no decimals; Stripe
 * still counts them in hundredths, so dividing by Intl's digits would be off by 100.
 */

// https://docs.stripe.com/currencies#zero-decimal and #three-decimal
const ZERO_DECIMAL = new Set([
  'bif',
  'clp',
  'djf',
  'gnf',
  'jpy',
  'kmf',
  'krw',
  'mga',
  'pyg',
  'rwf',
  'vnd',
  'vuv',
  'xaf',
  'xof',
  'xpf',
]);
const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/** Digits of the minor unit Stripe uses for `currency`. */
export function minorDigits(currency: string): number {
  const c = currency.toLowerCase();
  if (ZERO_DECIMAL.has(c)) return 0;
  if (THREE_DECIMAL.has(c)) return 3;
  return 2;
}

/** The amount in major units: 4900 EUR -> 49, 1200 JPY -> 1200, 1000000 HUF -> 10000. */
export function majorUnits(minor: number, currency: string): number {
  return minor / 10 ** minorDigits(currency);
}

/** `49.00 EUR`, `1200 JPY`: for ops (logs, CLI, alerts), the same in every locale. */
export function plainMoney(minor: number, currency: string): string {
  return `${majorUnits(minor, currency).toFixed(minorDigits(currency))} ${currency.toUpperCase()}`;
}

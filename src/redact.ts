/**
 * What may reach a log line. Pure functions the logger runs over every logged object, at any
 * depth: values under sensitive keys are censored, strings lose email addresses, secrets and card
 * numbers, and errors keep only a known set of fields. A Stripe error carries the payment method
 * (billing email, card details), the raw response and its headers; none of it is worth a log
 * line's risk, so an error is rebuilt from the fields below rather than filtered.
 */

export const CENSOR = '[redacted]';

/** Keys (compared in lower case) whose values never reach a log line, at any depth. */
const SENSITIVE_KEYS: ReadonlySet<string> = new Set([
  // secrets and credentials
  'secret',
  'secrets',
  'apikey',
  'api_key',
  'stripesecretkey',
  'webhooksecret',
  'webhooksecrets',
  'opswebhooksecret',
  'signature',
  'stripe-signature',
  'authorization',
  'cookie',
  'set-cookie',
  'password',
  'pass',
  'token',
  'reportstoken',
  'client_secret',
  'smtpurl',
  'databaseurl',
  // email addresses
  'email',
  'to',
  'cc',
  'bcc',
  'customer_email',
  'receipt_email',
  // card data and the objects that hold it
  'card',
  'number',
  'cvc',
  'exp_month',
  'exp_year',
  'last4',
  'fingerprint',
  'billing_details',
  'payment_method_details',
  // raw request and response bodies (a Stripe event payload holds all of the above)
  'raw',
  'rawbody',
  'body',
  'payload',
]);

/** How deep a logged object is followed; deeper values (and cycles) become a marker. */
const MAX_DEPTH = 6;

const EMAIL = /[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)/g;
const URL_PASSWORD = /(\/\/[^/\s:@]*:)[^/\s@]*@/g;
const STRIPE_SECRET = /\b((?:sk|rk)_(?:live|test)_|whsec_)[A-Za-z0-9]+|(_secret_)[A-Za-z0-9]+/g;
const DIGITS_12 = /\d{4}[ -]?\d{4}[ -]?\d{4}/;
const CARD_NUMBER = /\b\d(?:[ -]?\d){12,18}\b/g;

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Masks what a free-text string may carry: email addresses (the domain stays, as `maskEmail`
 * does), URL passwords, Stripe secrets and client secrets, and card numbers (digit runs that pass
 * the Luhn check). Each pattern runs only when a cheap test says it could match.
 */
export function scrubText(s: string): string {
  if (s.length < 8) return s;
  let out = s;
  if (out.includes('@')) out = out.replace(URL_PASSWORD, '$1***@').replace(EMAIL, '***@$1');
  if (out.includes('_'))
    out = out.replace(STRIPE_SECRET, (_m, prefix?: string, secret?: string) => `${prefix ?? secret}***`);
  if (DIGITS_12.test(out)) {
    out = out.replace(CARD_NUMBER, (m) => {
      const digits = m.replace(/[ -]/g, '');
      return luhn(digits) ? '[card number]' : m;
    });
  }
  return out;
}

/** A copy of `value` that is safe to log (see the module comment). Never changes `value`. */
export function scrubValue(value: unknown, depth = 0): unknown {
  switch (typeof value) {
    case 'string':
      return scrubText(value);
    case 'object':
      break;
    default:
      return value;
  }
  if (value === null || value instanceof Date) return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return serializeError(value, depth);
  if (ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, depth + 1));
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return scrubValue(toJSON.call(value), depth + 1);
  return scrubObject(value as Record<string, unknown>, depth);
}

/** Own enumerable keys, as JSON would write them; sensitive keys censored. */
export function scrubObject(obj: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    out[key] =
      v !== null && v !== undefined && SENSITIVE_KEYS.has(key.toLowerCase()) ? CENSOR : scrubValue(v, depth + 1);
  }
  return out;
}

/** Error fields that help ops and carry no customer data: Node, Stripe, Postgres and SMTP ones. */
const ERROR_FIELDS = [
  'code',
  'errno',
  'syscall',
  'statusCode',
  'status',
  'requestId',
  'rawType',
  'decline_code',
  'advice_code',
  'network_advice_code',
  'network_decline_code',
  'param',
  'doc_url',
  'charge',
  'severity',
  'detail',
  'hint',
  'routine',
  'constraint_name',
  'table_name',
  'column_name',
  'responseCode',
  'response',
  'command',
] as const;
/** Stripe error fields that hold whole objects (with billing details and cards): only their id is kept. */
const ERROR_OBJECT_IDS = ['payment_intent', 'payment_method', 'setup_intent', 'source'] as const;

/**
 * Postgres puts the offending row's values in a constraint error's detail ("Failing row contains
 * (cus_1, Jane Doe, ...)", "Key (email)=(jane@example.com) already exists"): customer data. The
 * column names stay, the values go.
 */
export function withoutRowValues(detail: string): string {
  return detail
    .replace(/Failing row contains \(.*\)/s, 'Failing row contains (values withheld)')
    .replace(/(Key \([^)]*\))=\(.*?\)(?= already exists| is not present| conflicts|\.|$)/gs, '$1=(values withheld)');
}

/**
 * An error as a log line may show it: type, message, stack, the fields above and its cause, with
 * every string scrubbed. Whatever else the error holds (Stripe's `raw`, `headers`,
 * `payment_method`; a signature error's `payload`) is left out.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return scrubValue(err, depth);
  const e = err as Error & Record<string, unknown>;
  const out: Record<string, unknown> = {
    type: e.constructor?.name && e.constructor.name !== 'Object' ? e.constructor.name : e.name,
    message: scrubText(e.message),
  };
  if (e.stack) out.stack = scrubText(e.stack);
  for (const k of ERROR_FIELDS) {
    const v = e[k];
    if (v !== undefined && v !== null && v !== '' && typeof v !== 'object')
      out[k] = typeof v === 'string' ? scrubText(k === 'detail' ? withoutRowValues(v) : v) : v;
  }
  for (const k of ERROR_OBJECT_IDS) {
    const v = e[k];
    const id = typeof v === 'string' ? v : (v as { id?: unknown } | null | undefined)?.id;
    if (typeof id === 'string') out[k] = scrubText(id);
  }
  if (depth < MAX_DEPTH) {
    if (e.cause !== undefined) out.cause = serializeError(e.cause, depth + 1);
    if (err instanceof AggregateError)
      out.errors = err.errors.slice(0, 5).map((x: unknown) => serializeError(x, depth + 1));
  }
  return out;
}

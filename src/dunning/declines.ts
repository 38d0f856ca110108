/**
 * Decline classification: turns what Stripe and the card networks said about a failed charge into
 * one of a few categories the planner can act on. Pure; the only side effect lives in
 * `createUnknownCodeReporter`, which the worker creates once (src/worker.ts) and hands to the
 * event processor and the runner, the two places where declines arrive.
 */

export const DECLINE_CATEGORIES = [
  'hard',
  'customer_action',
  'authentication',
  'funds',
  'temporary',
  'generic',
  'merchant_error',
] as const;
export type DeclineCategory = (typeof DECLINE_CATEGORIES)[number];

export interface DeclineInfo {
  declineCode?: string | null;
  failureCode?: string | null;
  adviceCode?: string | null;
  networkAdviceCode?: string | null;
  networkDeclineCode?: string | null;
  cardBrand?: string | null;
}

export interface Classification {
  category: DeclineCategory;
  /** The code that decided the category, e.g. `insufficient_funds` or `mastercard_advice_03`. */
  code: string;
  /**
   * No charge of this card without the customer: the issuer or network said it will never be
   * approved (retrying risks network fines), or it needs the customer to authenticate, which an
   * off-session retry cannot do.
   */
  neverRetrySameCard: boolean;
  /** Minimum wait the network (or Stripe) asked for before the next attempt, if any. */
  retryAfterMs: number | null;
  /** Who asked for `retryAfterMs`. */
  retryAfterBy: 'network' | 'Stripe' | null;
  /** For ops, never for the customer (it may name fraud or theft). */
  explanation: string;
  /** False when some code was not recognised; the caller should log it once. */
  known: boolean;
  unknownCodes: string[];
}

interface Rule {
  category: DeclineCategory;
  explanation: string;
  /** A wait Stripe or the network names for this answer, applied whatever decided the category. */
  retryAfterMs?: number | null;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function rules(category: DeclineCategory, entries: Record<string, string>): Array<[string, Rule]> {
  return Object.entries(entries).map(([code, explanation]) => [code, { category, explanation }]);
}

/**
 * Stripe's documented card decline codes (`decline_code`), plus the `outcome.reason` of charges
 * Stripe blocked: `highest_risk_level` and `rule` from Radar, `previously_declined_do_not_retry`.
 */
const DECLINE_CODES = new Map<string, Rule>([
  ...rules('hard', {
    lost_card: 'card reported lost',
    stolen_card: 'card reported stolen',
    pickup_card: 'issuer asked to retain the card',
    fraudulent: 'suspected fraud',
    highest_risk_level: 'blocked by Radar as highest risk',
    do_not_try_again: 'issuer said never to retry',
    revocation_of_authorization: 'customer revoked this recurring authorization',
    revocation_of_all_authorizations: 'customer revoked all recurring authorizations',
    stop_payment_order: 'customer placed a stop-payment order',
    invalid_account: 'card or account no longer valid',
    card_not_supported: 'card does not support this kind of purchase',
    currency_not_supported: 'card does not support this currency',
    transaction_not_allowed: 'issuer does not allow this transaction',
    security_violation: 'issuer reported a security violation',
    service_not_allowed: 'issuer does not allow this service',
    merchant_blacklist: 'matches a block list',
    previously_declined_do_not_retry: 'Stripe blocks further retries of this card after too many declines',
    not_permitted: 'payment not permitted by the issuer',
  }),
  ...rules('customer_action', {
    expired_card: 'card has expired',
    incorrect_number: 'card number is wrong',
    invalid_number: 'card number is invalid',
    incorrect_cvc: 'CVC is wrong',
    invalid_cvc: 'CVC is invalid',
    invalid_expiry_month: 'expiry month is invalid',
    invalid_expiry_year: 'expiry year is invalid',
    incorrect_zip: 'postal code does not match',
    incorrect_address: 'address does not match',
    new_account_information_available: 'issuer has new card details',
    pin_try_exceeded: 'too many wrong PIN entries',
    incorrect_pin: 'PIN is wrong',
    invalid_pin: 'PIN is invalid',
    offline_pin_required: 'card needs a PIN (card present only)',
    online_or_offline_pin_required: 'card needs a PIN (card present only)',
    testmode_decline: 'a test card was used in live mode',
  }),
  ...rules('authentication', {
    authentication_required: 'issuer requires 3-D Secure authentication',
    authentication_not_handled: 'authentication was required but not performed',
    mobile_device_authentication_required: 'customer must authenticate on their device',
  }),
  ...rules('funds', {
    insufficient_funds: 'not enough funds or credit',
    withdrawal_count_limit_exceeded: 'balance or credit limit reached',
    card_velocity_exceeded: 'spending or transaction limit reached',
  }),
  ...rules('temporary', {
    processing_error: 'error while processing the card',
    issuer_not_available: 'issuer could not be reached',
    try_again_later: 'issuer asked to try again later',
    reenter_transaction: 'issuer could not process this attempt',
    duplicate_transaction: 'an identical charge was made moments ago',
    approve_with_id: 'issuer could not authorise this attempt',
  }),
  ...rules('generic', {
    generic_decline: 'declined without a reason',
    do_not_honor: 'declined without a reason (do not honor)',
    call_issuer: 'declined; issuer asks the customer to call',
    no_action_taken: 'declined without a reason',
    restricted_card: 'card is restricted by the issuer',
    // `outcome.reason` of a charge blocked by one of the merchant's own Radar rules: whether the
    // same card passes later depends on the rule, so spaced retries that stop after a few alike.
    rule: 'blocked by one of your Radar rules',
  }),
  ...rules('merchant_error', {
    invalid_amount: 'the amount is invalid or over a limit: check the invoice',
  }),
]);

/** Error `code` values that appear on failed charges; `card_declined` defers to the decline code. */
const FAILURE_CODES = new Map<string, Rule>([
  ...rules('authentication', {
    authentication_required: 'issuer requires 3-D Secure authentication',
    payment_intent_authentication_failure: 'customer did not complete authentication',
    payment_action_required: 'invoice needs the customer to complete a payment action',
    // What `invoices.pay` answers (402, no decline_code) when the invoice's PaymentIntent needs
    // 3-D Secure: the PaymentIntent waits in `requires_action` for the customer.
    invoice_payment_intent_requires_action: 'the invoice payment needs the customer to complete 3-D Secure',
    payment_intent_action_required: 'the payment needs the customer to complete an action (3-D Secure)',
  }),
  ...rules('customer_action', {
    expired_card: 'card has expired',
    incorrect_cvc: 'CVC is wrong',
    invalid_cvc: 'CVC is invalid',
    incorrect_number: 'card number is wrong',
    invalid_number: 'card number is invalid',
    incorrect_zip: 'postal code does not match',
    incorrect_postal_code: 'postal code does not match',
    invalid_expiry_month: 'expiry month is invalid',
    invalid_expiry_year: 'expiry year is invalid',
    postal_code_invalid: 'postal code is invalid',
    payment_method_unactivated: 'payment method is not activated',
    invoice_no_payment_method_types: 'no payment method on file',
    invoice_no_customer_line_items: 'no payment method on file',
  }),
  ...rules('temporary', {
    processing_error: 'error while processing the card',
    rate_limit: 'Stripe rate limit',
  }),
  // Stripe refuses a card declined too often in the last 24 hours and says to wait 24 hours.
  [
    'card_decline_rate_limit_exceeded',
    {
      category: 'temporary',
      explanation: 'too many declines on this card in 24 hours: Stripe says wait 24 hours',
      retryAfterMs: DAY,
    },
  ],
  ...rules('funds', {
    balance_insufficient: 'not enough funds',
  }),
  ...rules('merchant_error', {
    amount_too_large: 'the amount is over the allowed maximum: check the invoice',
    amount_too_small: 'the amount is under the allowed minimum: check the invoice',
    invalid_charge_amount: 'the amount is invalid: check the invoice',
    currency_not_supported: 'the currency is not supported on this account',
  }),
  ...rules('generic', {
    card_declined: 'card declined without a decline code',
  }),
]);

const ADVICE_CODES = new Map<string, Rule>([
  ['do_not_try_again', { category: 'hard', explanation: 'Stripe advises never to retry this card' }],
  [
    'confirm_card_data',
    { category: 'customer_action', explanation: 'Stripe advises the customer to confirm the card details' },
  ],
  // "May be retried later", not "a passing outage": Stripe sends it on insufficient_funds and
  // generic declines alike, so on its own it means a soft decline with no reason and no timescale.
  ['try_again_later', { category: 'generic', explanation: 'Stripe advises trying again later' }],
]);

/** Mastercard merchant advice codes; 24..30 carry a minimum wait before the next attempt. */
const NETWORK_ADVICE = new Map<string, Rule & { retryAfterMs: number | null }>([
  [
    '01',
    {
      category: 'customer_action',
      explanation: 'network says new account information is available',
      retryAfterMs: null,
    },
  ],
  // Mastercard's "cannot approve at this time" names no wait, so it is a soft decline like any other.
  ['02', { category: 'generic', explanation: 'network says try again later', retryAfterMs: null }],
  ['03', { category: 'hard', explanation: 'network says do not try again', retryAfterMs: null }],
  ['04', { category: 'customer_action', explanation: 'network says token requirements not met', retryAfterMs: null }],
  ['21', { category: 'hard', explanation: 'network says the customer cancelled payments', retryAfterMs: null }],
  // The card itself will not pay this merchant again, whenever asked: another card is needed. The
  // customer hears "please update your card", never the reason.
  [
    '22',
    {
      category: 'hard',
      explanation: "network says this merchant does not qualify for the card's product",
      retryAfterMs: null,
    },
  ],
  [
    '40',
    {
      category: 'hard',
      explanation: 'network says this is a non-reloadable prepaid card: not usable for recurring payments',
      retryAfterMs: null,
    },
  ],
  [
    '41',
    {
      category: 'hard',
      explanation: 'network says this is a single-use virtual card number: not usable for recurring payments',
      retryAfterMs: null,
    },
  ],
  [
    '42',
    {
      category: 'hard',
      explanation: 'network says the sanctions screening score is over the threshold',
      retryAfterMs: null,
    },
  ],
  [
    '43',
    {
      category: 'hard',
      explanation: 'network says this is a multi-use virtual card number: not usable for recurring payments',
      retryAfterMs: null,
    },
  ],
  ['24', { category: 'temporary', explanation: 'network says retry after 1 hour', retryAfterMs: HOUR }],
  ['25', { category: 'temporary', explanation: 'network says retry after 24 hours', retryAfterMs: DAY }],
  ['26', { category: 'temporary', explanation: 'network says retry after 2 days', retryAfterMs: 2 * DAY }],
  ['27', { category: 'temporary', explanation: 'network says retry after 4 days', retryAfterMs: 4 * DAY }],
  ['28', { category: 'temporary', explanation: 'network says retry after 6 days', retryAfterMs: 6 * DAY }],
  ['29', { category: 'temporary', explanation: 'network says retry after 8 days', retryAfterMs: 8 * DAY }],
  ['30', { category: 'temporary', explanation: 'network says retry after 10 days', retryAfterMs: 10 * DAY }],
]);
/** Visa category 1 responses ("issuer will never approve"): Visa forbids any reattempt. */
const VISA_CATEGORY_1 = new Set(['04', '07', '12', '14', '15', '41', '43', '46', '57', 'R0', 'R1', 'R3']);

/** Stripe's own list of decline codes it will not let a merchant retry on the same card. */
export const STRIPE_NEVER_RETRY: ReadonlySet<string> = new Set([
  'incorrect_number',
  'lost_card',
  'pickup_card',
  'stolen_card',
  'revocation_of_authorization',
  'revocation_of_all_authorizations',
  'authentication_required',
  'highest_risk_level',
]);

export const KNOWN_DECLINE_CODES: ReadonlySet<string> = new Set(DECLINE_CODES.keys());
export const KNOWN_FAILURE_CODES: ReadonlySet<string> = new Set(FAILURE_CODES.keys());
export const KNOWN_ADVICE_CODES: ReadonlySet<string> = new Set(ADVICE_CODES.keys());
export const KNOWN_NETWORK_ADVICE_CODES: ReadonlySet<string> = new Set(NETWORK_ADVICE.keys());

function clean(value: string | null | undefined): string | null {
  const trimmed = value?.trim();
  return trimmed ? trimmed : null;
}

function isMastercard(brand: string | null): boolean {
  return brand !== null && brand.toLowerCase().replace(/[^a-z]/g, '') === 'mastercard';
}

function isVisa(brand: string | null): boolean {
  return brand !== null && brand.toLowerCase() === 'visa';
}

/**
 * Precedence: a "never" answer from the network or Stripe's advice beats everything; then a
 * specific decline_code; then (for vague or missing decline codes) the advice signals; then the
 * error code. Network retry-after advice is kept whatever decided the category, because the wait is
 * a network rule, not a hint.
 */
export function classifyDecline(info: DeclineInfo): Classification {
  const declineCode = clean(info.declineCode);
  const failureCode = clean(info.failureCode);
  const adviceCode = clean(info.adviceCode);
  const networkAdvice = clean(info.networkAdviceCode);
  const networkDecline = clean(info.networkDeclineCode);
  const brand = clean(info.cardBrand);

  const unknownCodes: string[] = [];
  if (declineCode && !DECLINE_CODES.has(declineCode)) unknownCodes.push(declineCode);
  if (failureCode && !FAILURE_CODES.has(failureCode) && !DECLINE_CODES.has(failureCode)) unknownCodes.push(failureCode);
  if (adviceCode && !ADVICE_CODES.has(adviceCode)) unknownCodes.push(adviceCode);
  if (networkAdvice && !NETWORK_ADVICE.has(networkAdvice)) unknownCodes.push(`network_advice_${networkAdvice}`);

  const networkRule = networkAdvice ? NETWORK_ADVICE.get(networkAdvice) : undefined;
  const failureWait = failureCode ? (FAILURE_CODES.get(failureCode)?.retryAfterMs ?? 0) : 0;
  const networkWait = networkRule?.retryAfterMs ?? 0;
  const longestWait = Math.max(networkWait, failureWait);
  const retryAfterMs = longestWait > 0 ? longestWait : null;
  const retryAfterBy = longestWait === 0 ? null : networkWait >= failureWait ? 'network' : 'Stripe';
  const result = (code: string, rule: Rule, neverOverride = false): Classification => ({
    category: rule.category,
    code,
    // Authentication: only the customer can complete it; charging the card again off-session
    // cannot, so it is not retried until a new card arrives (or the customer pays the invoice).
    neverRetrySameCard:
      neverOverride || rule.category === 'hard' || rule.category === 'authentication' || STRIPE_NEVER_RETRY.has(code),
    retryAfterMs: rule.category === 'hard' ? null : retryAfterMs,
    retryAfterBy: rule.category === 'hard' ? null : retryAfterBy,
    explanation: rule.explanation,
    known: unknownCodes.length === 0,
    unknownCodes,
  });

  // Hard network advice rules this card out whatever the decline code says.
  if (networkRule?.category === 'hard') {
    return result(`${isMastercard(brand) ? 'mastercard' : 'network'}_advice_${networkAdvice}`, networkRule);
  }
  if (networkDecline && isVisa(brand) && VISA_CATEGORY_1.has(networkDecline.toUpperCase())) {
    return result(`visa_category_1_${networkDecline}`, {
      category: 'hard',
      explanation: 'Visa says the issuer will never approve this card',
    });
  }
  if (adviceCode === 'do_not_try_again') {
    return result('advice_do_not_try_again', ADVICE_CODES.get(adviceCode)!);
  }

  const declineRule = declineCode ? DECLINE_CODES.get(declineCode) : undefined;
  if (declineCode && declineRule && declineRule.category !== 'generic') return result(declineCode, declineRule);

  // Advice that only says "retry later" adds nothing to a vague decline code; keeping the decline
  // code lets the planner count identical declines by what the issuer actually answered.
  const sharpens = (rule: Rule) => !(rule.category === 'generic' && declineRule);
  if (networkRule && networkAdvice && sharpens(networkRule)) {
    return result(`${isMastercard(brand) ? 'mastercard' : 'network'}_advice_${networkAdvice}`, networkRule);
  }
  const adviceRule = adviceCode ? ADVICE_CODES.get(adviceCode) : undefined;
  if (adviceCode && adviceRule && sharpens(adviceRule)) return result(`advice_${adviceCode}`, adviceRule);

  if (declineCode && declineRule) return result(declineCode, declineRule);

  // Some integrations put a decline code in `code`; accept it rather than calling it unknown.
  const failureRule = failureCode ? (FAILURE_CODES.get(failureCode) ?? DECLINE_CODES.get(failureCode)) : undefined;
  if (failureCode && failureRule && !(failureCode === 'card_declined' && declineCode)) {
    return result(failureCode, failureRule);
  }

  const code = declineCode ?? failureCode ?? 'no_decline_code';
  return result(code, {
    category: 'generic',
    explanation:
      unknownCodes.length > 0 ? 'unrecognised decline code, treated as a generic decline' : 'no decline code given',
  });
}

export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

/**
 * Logs each unrecognised code once per process, so a new Stripe code shows up in the logs
 * without flooding them. Returns the reporter; keep one per process.
 */
export function createUnknownCodeReporter(log: WarnLogger): (classification: Classification) => void {
  const seen = new Set<string>();
  return (classification) => {
    for (const code of classification.unknownCodes) {
      if (seen.has(code)) continue;
      seen.add(code);
      log.warn({ code, treatedAs: classification.category }, 'unknown decline code');
    }
  };
}

import { describe, expect, it } from 'vitest';
import {
  classifyDecline,
  createUnknownCodeReporter,
  DECLINE_CATEGORIES,
  KNOWN_ADVICE_CODES,
  KNOWN_DECLINE_CODES,
  KNOWN_FAILURE_CODES,
  KNOWN_NETWORK_ADVICE_CODES,
  STRIPE_NEVER_RETRY,
  type DeclineCategory,
} from '../../src/dunning/declines.ts';

/** Stripe's documented card decline codes (docs.stripe.com/declines/codes), checked by hand. */
const STRIPE_DOCUMENTED = [
  'authentication_required',
  'authentication_not_handled',
  'approve_with_id',
  'call_issuer',
  'card_not_supported',
  'card_velocity_exceeded',
  'currency_not_supported',
  'do_not_honor',
  'do_not_try_again',
  'duplicate_transaction',
  'expired_card',
  'fraudulent',
  'generic_decline',
  'incorrect_address',
  'incorrect_cvc',
  'incorrect_number',
  'incorrect_pin',
  'incorrect_zip',
  'insufficient_funds',
  'invalid_account',
  'invalid_amount',
  'invalid_cvc',
  'invalid_expiry_month',
  'invalid_expiry_year',
  'invalid_number',
  'invalid_pin',
  'issuer_not_available',
  'lost_card',
  'merchant_blacklist',
  'mobile_device_authentication_required',
  'new_account_information_available',
  'no_action_taken',
  'not_permitted',
  'offline_pin_required',
  'online_or_offline_pin_required',
  'pickup_card',
  'pin_try_exceeded',
  'processing_error',
  'reenter_transaction',
  'restricted_card',
  'revocation_of_all_authorizations',
  'revocation_of_authorization',
  'security_violation',
  'service_not_allowed',
  'stolen_card',
  'stop_payment_order',
  'testmode_decline',
  'transaction_not_allowed',
  'try_again_later',
  'withdrawal_count_limit_exceeded',
];

describe('classifyDecline', () => {
  it('knows every decline code Stripe documents', () => {
    const missing = STRIPE_DOCUMENTED.filter((code) => !KNOWN_DECLINE_CODES.has(code));
    expect(missing).toEqual([]);
  });

  it.each([...KNOWN_DECLINE_CODES])('classifies decline code %s as a known category', (code) => {
    const c = classifyDecline({ declineCode: code, failureCode: 'card_declined' });
    expect(DECLINE_CATEGORIES).toContain(c.category);
    expect(c.known).toBe(true);
    expect(c.code).toBe(code);
  });

  it.each([...KNOWN_FAILURE_CODES])('classifies failure code %s without a decline code', (code) => {
    const c = classifyDecline({ failureCode: code });
    expect(DECLINE_CATEGORIES).toContain(c.category);
    expect(c.known).toBe(true);
  });

  it.each<[string, DeclineCategory]>([
    ['lost_card', 'hard'],
    ['stolen_card', 'hard'],
    ['pickup_card', 'hard'],
    ['fraudulent', 'hard'],
    ['do_not_try_again', 'hard'],
    ['stop_payment_order', 'hard'],
    ['transaction_not_allowed', 'hard'],
    ['expired_card', 'customer_action'],
    ['incorrect_cvc', 'customer_action'],
    ['incorrect_zip', 'customer_action'],
    ['authentication_required', 'authentication'],
    ['insufficient_funds', 'funds'],
    ['card_velocity_exceeded', 'funds'],
    ['processing_error', 'temporary'],
    ['approve_with_id', 'temporary'],
    ['generic_decline', 'generic'],
    ['do_not_honor', 'generic'],
    ['restricted_card', 'generic'],
    ['invalid_amount', 'merchant_error'],
    // outcome.reason of charges Stripe blocked before the bank.
    ['highest_risk_level', 'hard'],
    ['previously_declined_do_not_retry', 'hard'],
    ['rule', 'generic'],
  ])('%s is %s', (declineCode, category) => {
    expect(classifyDecline({ declineCode }).category).toBe(category);
  });

  it("marks Stripe's never-retry codes and every hard decline as never-retry on the same card", () => {
    for (const code of STRIPE_NEVER_RETRY) expect(classifyDecline({ declineCode: code }).neverRetrySameCard).toBe(true);
    for (const code of KNOWN_DECLINE_CODES) {
      const c = classifyDecline({ declineCode: code });
      if (c.category === 'hard') expect(c.neverRetrySameCard).toBe(true);
    }
    expect(classifyDecline({ declineCode: 'insufficient_funds' }).neverRetrySameCard).toBe(false);
  });

  it('lets a network or Stripe "never" answer beat the decline code', () => {
    const mc03 = classifyDecline({
      declineCode: 'insufficient_funds',
      networkAdviceCode: '03',
      cardBrand: 'mastercard',
    });
    expect(mc03).toMatchObject({ category: 'hard', code: 'mastercard_advice_03', neverRetrySameCard: true });
    expect(classifyDecline({ declineCode: 'processing_error', networkAdviceCode: '21' }).category).toBe('hard');
    expect(classifyDecline({ declineCode: 'generic_decline', adviceCode: 'do_not_try_again' }).category).toBe('hard');
    const visa = classifyDecline({ declineCode: 'do_not_honor', networkDeclineCode: '14', cardBrand: 'visa' });
    expect(visa).toMatchObject({ category: 'hard', neverRetrySameCard: true });
    // Category-1 codes are Visa's rule; the same digits from another network mean something else.
    expect(classifyDecline({ declineCode: 'do_not_honor', networkDeclineCode: '14', cardBrand: 'amex' }).category).toBe(
      'generic',
    );
  });

  it.each([
    ['24', 1],
    ['25', 24],
    ['26', 48],
    ['27', 96],
    ['28', 144],
    ['29', 192],
    ['30', 240],
  ])('turns Mastercard advice %s into a retry-after of %i h', (networkAdviceCode, hours) => {
    const c = classifyDecline({ networkAdviceCode, cardBrand: 'mastercard' });
    expect(c).toMatchObject({ category: 'temporary', retryAfterMs: hours * 3_600_000, neverRetrySameCard: false });
    // A specific decline code keeps its category, but the network's wait still applies.
    const funds = classifyDecline({ declineCode: 'insufficient_funds', networkAdviceCode, cardBrand: 'mastercard' });
    expect(funds).toMatchObject({ category: 'funds', retryAfterMs: hours * 3_600_000 });
  });

  it('uses advice codes when the decline code is vague, and the failure code when there is none', () => {
    // "Try again later" permits a retry but names no outage: a vague decline stays generic, under its own code.
    expect(classifyDecline({ declineCode: 'generic_decline', adviceCode: 'try_again_later' })).toMatchObject({
      category: 'generic',
      code: 'generic_decline',
    });
    expect(
      classifyDecline({ declineCode: 'do_not_honor', networkAdviceCode: '02', cardBrand: 'mastercard' }),
    ).toMatchObject({ category: 'generic', code: 'do_not_honor' });
    expect(classifyDecline({ failureCode: 'card_declined', adviceCode: 'try_again_later' })).toMatchObject({
      category: 'generic',
      code: 'advice_try_again_later',
    });
    // A real outage code keeps the quick retries whatever the advice says.
    expect(classifyDecline({ declineCode: 'issuer_not_available', adviceCode: 'try_again_later' }).category).toBe(
      'temporary',
    );
    expect(classifyDecline({ declineCode: 'generic_decline', adviceCode: 'confirm_card_data' }).category).toBe(
      'customer_action',
    );
    expect(classifyDecline({ declineCode: 'insufficient_funds', adviceCode: 'try_again_later' }).category).toBe(
      'funds',
    );
    expect(classifyDecline({ failureCode: 'authentication_required' }).category).toBe('authentication');
    expect(classifyDecline({ failureCode: 'expired_card' }).category).toBe('customer_action');
    expect(classifyDecline({ failureCode: 'card_declined', declineCode: 'lost_card' }).category).toBe('hard');
    expect(KNOWN_ADVICE_CODES.size).toBe(3);
    expect(KNOWN_NETWORK_ADVICE_CODES.has('24')).toBe(true);
  });

  it('knows what invoices.pay answers for 3-D Secure: authentication, never an off-session retry of that card', () => {
    // Stripe's 402 for an invoice whose PaymentIntent needs 3-D Secure carries no decline_code.
    for (const failureCode of ['invoice_payment_intent_requires_action', 'payment_intent_action_required']) {
      expect(classifyDecline({ failureCode })).toMatchObject({
        category: 'authentication',
        code: failureCode,
        known: true,
        neverRetrySameCard: true,
      });
    }
    // Every authentication answer bars off-session retries of the card, not only Stripe's own list.
    for (const declineCode of ['authentication_not_handled', 'mobile_device_authentication_required']) {
      expect(classifyDecline({ declineCode })).toMatchObject({ category: 'authentication', neverRetrySameCard: true });
    }
    expect(classifyDecline({ failureCode: 'incorrect_postal_code' })).toMatchObject({
      category: 'customer_action',
      known: true,
    });
  });

  it('waits 24 hours after card_decline_rate_limit_exceeded, whatever decided the category', () => {
    const DAY = 24 * 3_600_000;
    expect(classifyDecline({ failureCode: 'card_decline_rate_limit_exceeded' })).toMatchObject({
      category: 'temporary',
      retryAfterMs: DAY,
      neverRetrySameCard: false,
    });
    expect(
      classifyDecline({ declineCode: 'generic_decline', failureCode: 'card_decline_rate_limit_exceeded' }),
    ).toMatchObject({ category: 'generic', code: 'generic_decline', retryAfterMs: DAY });
    // The longer of two waits applies.
    expect(
      classifyDecline({
        failureCode: 'card_decline_rate_limit_exceeded',
        networkAdviceCode: '26',
        cardBrand: 'mastercard',
      }).retryAfterMs,
    ).toBe(2 * DAY);
    expect(
      classifyDecline({
        failureCode: 'card_decline_rate_limit_exceeded',
        networkAdviceCode: '24',
        cardBrand: 'mastercard',
      }).retryAfterMs,
    ).toBe(DAY);
  });

  it.each([
    ['22', 'merchant does not qualify'],
    ['40', 'non-reloadable prepaid'],
    ['41', 'single-use virtual card'],
    ['42', 'sanctions'],
    ['43', 'multi-use virtual card'],
  ])('Mastercard advice %s (%s) rules the card out, whatever the decline code', (networkAdviceCode, words) => {
    const c = classifyDecline({ declineCode: 'insufficient_funds', networkAdviceCode, cardBrand: 'mastercard' });
    expect(c).toMatchObject({
      category: 'hard',
      code: `mastercard_advice_${networkAdviceCode}`,
      neverRetrySameCard: true,
      retryAfterMs: null,
      known: true,
    });
    expect(c.explanation).toContain(words);
    expect(KNOWN_NETWORK_ADVICE_CODES.has(networkAdviceCode)).toBe(true);
  });

  it('treats unknown codes as generic and says which codes were unknown', () => {
    const c = classifyDecline({ declineCode: 'brand_new_code', failureCode: 'card_declined' });
    expect(c).toMatchObject({
      category: 'generic',
      known: false,
      unknownCodes: ['brand_new_code'],
      code: 'brand_new_code',
    });
    expect(classifyDecline({}).category).toBe('generic');
    expect(classifyDecline({}).known).toBe(true);
  });
});

describe('createUnknownCodeReporter', () => {
  it('logs each unknown code once per reporter', () => {
    const lines: Array<{ obj: object; msg: string }> = [];
    const report = createUnknownCodeReporter({ warn: (obj, msg) => lines.push({ obj, msg }) });
    report(classifyDecline({ declineCode: 'mystery_a' }));
    report(classifyDecline({ declineCode: 'mystery_a' }));
    report(classifyDecline({ declineCode: 'mystery_b', adviceCode: 'odd_advice' }));
    report(classifyDecline({ declineCode: 'insufficient_funds' }));
    expect(lines.map((l) => (l.obj as { code: string }).code)).toEqual(['mystery_a', 'mystery_b', 'odd_advice']);
    expect(new Set(lines.map((l) => l.msg))).toEqual(new Set(['unknown decline code']));
  });
});

import Stripe from 'stripe';
import { describe, expect, test } from 'vitest';
import { createLogger } from '../src/log.ts';
import { scrubText } from '../src/redact.ts';
import { paymentIntent, paymentMethod } from './fixtures/events/stripe-objects.ts';

/** A logger writing into an array, one parsed object per line. */
function capture() {
  const raw: string[] = [];
  const log = createLogger('debug', { write: (s: string) => void raw.push(s) });
  return { log, raw, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Values that must never reach a log line, whatever object they sit in. */
const SECRETS = {
  email: 'jane.doe+billing@example.org',
  receiptEmail: 'receipts@jane-doe.example',
  name: 'Jane Q. Doe',
  last4: '4971',
  fingerprint: 'Xt5EWLLDS7FJjR1c',
  expYear: 2031,
  cardNumber: '4000 0566 5566 5556',
  clientSecret: 'pi_3Qx_secret_VeryPrivate123',
  apiKey: 'sk_test_51HxyzNotForLogs',
  webhookSecret: 'whsec_rotatedNotForLogs',
  signature: 't=1780000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd',
  dbPassword: 'hunter2pg',
  smtpPassword: 'smtp-pa55',
};

/** A card error as the SDK builds it from Stripe's 402 answer: the payment method and intent ride along. */
function cardError(): Stripe.errors.StripeCardError {
  const pm = paymentMethod({ id: 'pm_leaky', customer: 'cus_leaky' });
  const withDetails: Stripe.PaymentMethod = {
    ...pm,
    billing_details: {
      address: { city: 'Berlin', country: 'DE', line1: 'Hauptstr. 1', line2: null, postal_code: '10115', state: null },
      email: SECRETS.email,
      name: SECRETS.name,
      phone: '+49301234567',
      tax_id: null,
    },
    card: { ...pm.card!, last4: SECRETS.last4, exp_year: SECRETS.expYear, fingerprint: SECRETS.fingerprint },
  };
  const intent: Stripe.PaymentIntent = {
    ...paymentIntent({
      id: 'pi_leaky',
      customer: 'cus_leaky',
      chargeId: 'ch_leaky',
      declineCode: 'insufficient_funds',
    }),
    client_secret: SECRETS.clientSecret,
    receipt_email: SECRETS.receiptEmail,
  };
  return new Stripe.errors.StripeCardError({
    type: 'card_error',
    code: 'card_declined',
    decline_code: 'insufficient_funds',
    charge: 'ch_leaky',
    message: 'Your card has insufficient funds.',
    doc_url: 'https://stripe.com/docs/error-codes/card-declined',
    payment_method: withDetails,
    payment_intent: intent,
    statusCode: 402,
    requestId: 'req_leaky',
    headers: {
      'request-id': 'req_leaky',
      'stripe-version': '2026-10-28.endive',
      'set-cookie': `__stripe_orig_props=${SECRETS.email}`,
    },
  });
}

function expectClean(text: string) {
  for (const [what, value] of Object.entries(SECRETS)) {
    expect(text, `${what} leaked`).not.toContain(String(value));
  }
  expect(text).not.toContain('jane.doe');
  expect(text).not.toMatch(/4000\s?0566/);
}

describe('log redaction', () => {
  test('a Stripe card error keeps what ops need and loses the payment method, raw answer and headers', () => {
    const { log, raw, lines } = capture();
    const err = cardError();
    log.error({ err, invoiceId: 'in_1' }, 'charge failed');
    log.warn(err); // pino takes the error's message as the line's message
    expectClean(raw.join('\n'));
    const [line] = lines();
    expect(line).toMatchObject({
      msg: 'charge failed',
      invoiceId: 'in_1',
      err: {
        type: 'StripeCardError',
        message: 'Your card has insufficient funds.',
        code: 'card_declined',
        decline_code: 'insufficient_funds',
        rawType: 'card_error',
        statusCode: 402,
        requestId: 'req_leaky',
        charge: 'ch_leaky',
        payment_method: 'pm_leaky',
        payment_intent: 'pi_leaky',
      },
    });
    expect(Object.keys(line!.err as object)).not.toContain('raw');
    expect(Object.keys(line!.err as object)).not.toContain('headers');
  });

  test('nested objects, error causes, child bindings and free text lose emails, card data and secrets at any depth', () => {
    const { log, raw, lines } = capture();
    const smtp = Object.assign(
      new Error(`Can't send mail - all recipients were rejected: 550 5.1.1 <${SECRETS.email}>: unknown user`),
      {
        code: 'EENVELOPE',
        responseCode: 550,
        response: `550 5.1.1 <${SECRETS.email}>: unknown user`,
      },
    );
    const wrapped = new Error('reminder delivery failed', { cause: smtp });
    const child = log.child({ customer: { id: 'cus_1', contact: { email: SECRETS.email } } });
    child.child({ reminder: { to: SECRETS.receiptEmail } }).info('grandchild');
    child.error(
      {
        err: wrapped,
        request: {
          headers: {
            'Stripe-Signature': SECRETS.signature,
            Authorization: `Bearer ${SECRETS.apiKey}`,
            'content-type': 'application/json',
          },
        },
        config: {
          stripeSecretKey: SECRETS.apiKey,
          webhookSecrets: [SECRETS.webhookSecret],
          databaseUrl: `postgres://dunning:${SECRETS.dbPassword}@db:5432/dunning`,
          nested: { mail: { transport: `smtp://mailer:${SECRETS.smtpPassword}@smtp.example.com:587` } },
        },
        attempt: { payment: { method: { card: { last4: SECRETS.last4 }, billing_details: { email: SECRETS.email } } } },
        note: `customer typed ${SECRETS.cardNumber} into the notes, key ${SECRETS.apiKey}, secret ${SECRETS.clientSecret}`,
        body: Buffer.from(JSON.stringify({ email: SECRETS.email })),
      },
      'reminder failed',
    );
    expectClean(raw.join('\n'));
    const [grandchild, line] = lines();
    expect(grandchild).toMatchObject({ reminder: { to: '[redacted]' }, customer: { id: 'cus_1' } });
    expect(line).toMatchObject({
      customer: { id: 'cus_1', contact: { email: '[redacted]' } },
      request: {
        headers: { 'Stripe-Signature': '[redacted]', Authorization: '[redacted]', 'content-type': 'application/json' },
      },
      err: {
        message: 'reminder delivery failed',
        cause: { code: 'EENVELOPE', responseCode: 550, response: '550 5.1.1 <***@example.org>: unknown user' },
      },
      note: 'customer typed [card number] into the notes, key sk_test_***, secret pi_3Qx_secret_***',
    });
    expect((line!.config as { nested: { mail: { transport: string } } }).nested.mail.transport).toBe(
      'smtp://mailer:***@smtp.example.com:587',
    );
  });

  test('free text keeps ids, timestamps and masked emails as they are', () => {
    const text = 'evt_1NxYz invoice in_123 at 1780000000123 for ***@example.com, order 1234567890123';
    expect(scrubText(text)).toBe(text);
  });

  test('a cyclic object ends in a marker instead of a crash', () => {
    const { log, lines } = capture();
    const a: Record<string, unknown> = { id: 'a' };
    a.self = a;
    log.info({ a }, 'cyclic');
    expect(JSON.stringify(lines()[0])).toContain('[too deep]');
  });
});

describe('stacks of operational errors only at debug', () => {
  const at = (level: string) => {
    const raw: string[] = [];
    const log = createLogger(level, { write: (s: string) => void raw.push(s) });
    return { log, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
  };
  const failure = () =>
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432', { cause: new Error('underneath') }), {
      code: 'ECONNREFUSED',
    });

  test('at info an error is its type, message and fields, with no stack at any depth', () => {
    const { log, lines } = at('info');
    log.warn({ err: failure(), nested: { errors: [failure()] } }, 'database away');
    log.error(failure());
    const text = JSON.stringify(lines());
    expect(text).not.toContain('"stack"');
    expect(text).not.toMatch(/\\n\s+at /);
    expect(lines()[0]).toMatchObject({
      err: { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:5432', code: 'ECONNREFUSED', cause: {} },
    });
  });

  test('a bug (an error with no code anywhere above it) keeps its stack at info: finding it needs one', () => {
    const { log, lines } = at('info');
    log.error({ err: new TypeError("Cannot read properties of null (reading 'write')") }, 'uncaught');
    expect((lines()[0]!.err as { stack?: string }).stack).toMatch(/^TypeError: Cannot read properties/);
  });

  test('at debug the stack is there, and the error logged is left as it was', () => {
    const { log, lines } = at('debug');
    const err = failure();
    log.warn({ err }, 'database away');
    expect((lines()[0]!.err as { stack: string }).stack).toMatch(/^Error: connect ECONNREFUSED/);
    expect(err.stack).toBeTruthy();
  });
});

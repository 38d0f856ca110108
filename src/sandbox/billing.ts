import type Stripe from 'stripe';
import {
  declineFor,
  decideCardUpdate,
  decideCharge,
  invoiceRequiresAction,
  needsAuthentication,
  type ChargeDecision,
  type Rng,
} from './issuer-model.ts';
import {
  chargeJson,
  customerJson,
  invoiceJson,
  paymentIntentJson,
  paymentMethodJson,
  subscriptionJson,
  type RenderContext,
} from './objects.ts';
import {
  unixSeconds,
  type CardSpec,
  type ChargeRec,
  type CustomerRec,
  type InvoiceRec,
  type PaymentIntentRec,
  type PaymentMethodRec,
  type Store,
} from './store.ts';
import type { Clock } from './webhooks.ts';

/**
 * Billing operations shared by the HTTP API and the programmatic API: every state change
 * happens here, and every change emits the events Stripe would send.
 */

export class ApiError extends Error {
  readonly status: number;
  readonly body: { error: Record<string, unknown> };
  constructor(status: number, error: Record<string, unknown>) {
    super(typeof error.message === 'string' ? error.message : 'sandbox api error');
    this.status = status;
    this.body = { error };
  }
}

export function invalidRequest(message: string, extra: Record<string, unknown> = {}, status = 400): ApiError {
  return new ApiError(status, { type: 'invalid_request_error', message, ...extra });
}

export interface RequestInfo {
  id: string | null;
  idempotencyKey: string | null;
}

export type EventType = Stripe.Event['type'];
export type EventOf<T extends EventType> = Extract<Stripe.Event, { type: T }>;

/**
 * Raises an event. Typed per event type as the SDK pairs them: `invoice.payment_failed` carries a
 * `Stripe.Invoice` and a `Partial<Stripe.Invoice>`, so an object of the wrong kind, or one missing
 * a field, fails the typecheck.
 */
export type Emit = <T extends EventType>(
  type: T,
  object: EventOf<T>['data']['object'],
  previous?: EventOf<T>['data']['previous_attributes'],
  request?: RequestInfo,
  /** The event's time (default: the clock's now): an operation's events carry its own time. */
  at?: Date,
) => void;

export interface BillingDeps {
  store: Store;
  clock: Clock;
  rng: Rng;
  render: RenderContext;
  emit: Emit;
  cardUpdateProbability: number;
}

export interface NewCustomer {
  email: string;
  name: string;
  country: string;
  preferredLocales?: string[];
  /** Stored as the customer's `metadata.time_zone`; used by the card model (default UTC). */
  timeZone?: string;
  /** Chance per reminder that this customer puts in a working card (default: the sandbox's). */
  cardUpdateProbability?: number;
  /** The customer's default card; null: a customer without any card. */
  card: CardSpec | null;
}

export interface NewInvoice {
  amount: number;
  currency: string;
  subscription: boolean;
}

const noRequest: RequestInfo = { id: null, idempotencyKey: null };

export function createBilling(deps: BillingDeps) {
  const { store, clock, render, emit } = deps;
  const now = (): number => unixSeconds(clock.now());

  function mustGet<T>(map: Map<string, T>, id: string, what: string): T {
    const found = map.get(id);
    if (found === undefined) {
      throw invalidRequest(`No such ${what}: '${id}'`, { code: 'resource_missing', param: 'id' }, 404);
    }
    return found;
  }

  function newPaymentMethod(customerId: string | null, card: CardSpec): PaymentMethodRec {
    const id = store.nextId('pm');
    const last4 = card.failure === null ? '4242' : String(1000 + Math.floor(deps.rng() * 9000));
    const pm: PaymentMethodRec = {
      id,
      customer: customerId,
      card: { ...card },
      last4,
      created: now(),
      firstFailedAt: null,
    };
    store.paymentMethods.set(id, pm);
    return pm;
  }

  function createCustomer(input: NewCustomer): CustomerRec {
    const id = store.nextId('cus');
    const customer: CustomerRec = {
      id,
      email: input.email,
      name: input.name,
      country: input.country,
      preferredLocales: input.preferredLocales ?? [],
      timeZone: input.timeZone ?? null,
      cardUpdateProbability: input.cardUpdateProbability ?? null,
      defaultPaymentMethod: null,
      metadata: input.timeZone === undefined ? {} : { time_zone: input.timeZone },
      created: now(),
    };
    store.customers.set(id, customer);
    if (input.card !== null) customer.defaultPaymentMethod = newPaymentMethod(id, input.card).id;
    return customer;
  }

  /** A new card from the customer: attached, made default, announced like Stripe does. */
  function updateCard(customerId: string, card: CardSpec, request = noRequest): PaymentMethodRec {
    const customer = mustGet(store.customers, customerId, 'customer');
    const pm = newPaymentMethod(customerId, card);
    emit('payment_method.attached', paymentMethodJson(pm), undefined, request);
    const previous = customerJson(customer).invoice_settings;
    customer.defaultPaymentMethod = pm.id;
    emit('customer.updated', customerJson(customer), { invoice_settings: previous }, request);
    return pm;
  }

  /**
   * Another card the customer saves (e.g. in the Billing Portal) without making it the default:
   * attached and announced, the default stays as it is.
   */
  function saveCard(customerId: string, card: CardSpec, request = noRequest): PaymentMethodRec {
    mustGet(store.customers, customerId, 'customer');
    const pm = newPaymentMethod(customerId, card);
    emit('payment_method.attached', paymentMethodJson(pm), undefined, request);
    return pm;
  }

  /**
   * The customer removes a saved card (e.g. in the Billing Portal): Stripe's "Detach a
   * PaymentMethod from a Customer" makes it unusable for that customer, announced as
   * `payment_method.detached`.
   */
  function detachCard(paymentMethodId: string, request = noRequest): PaymentMethodRec {
    const pm = mustGet(store.paymentMethods, paymentMethodId, 'payment_method');
    pm.customer = null;
    emit('payment_method.detached', paymentMethodJson(pm), undefined, request);
    return pm;
  }

  /**
   * Stripe's card updater: the network sent new details (here a new expiry, and the card works
   * again) for a saved card. Same id; announced as `payment_method.automatically_updated`.
   */
  function updateCardAutomatically(
    paymentMethodId: string,
    card: Pick<CardSpec, 'expMonth' | 'expYear'>,
    request = noRequest,
  ): PaymentMethodRec {
    const pm = mustGet(store.paymentMethods, paymentMethodId, 'payment_method');
    pm.card = { ...pm.card, ...card, failure: null };
    pm.firstFailedAt = null;
    emit('payment_method.automatically_updated', paymentMethodJson(pm), undefined, request);
    return pm;
  }

  /** `previous_attributes` name only what changed: nothing when a manual try left the count alone. */
  function attemptCountChange(inv: InvoiceRec, before: number): Partial<Stripe.Invoice> | undefined {
    return inv.attemptCount === before ? undefined : { attempt_count: before };
  }

  function setSubscriptionStatus(
    subId: string | null,
    status: 'active' | 'past_due',
    request: RequestInfo,
    at?: Date,
  ): void {
    const sub = subId === null ? undefined : store.subscriptions.get(subId);
    if (sub === undefined || sub.status === status || sub.status === 'canceled') return;
    const previous = { status: sub.status };
    sub.status = status;
    emit('customer.subscription.updated', subscriptionJson(sub), previous, request, at);
  }

  function timeZoneOf(customer: CustomerRec): string {
    return customer.timeZone ?? 'UTC';
  }

  /**
   * Stripe: "Any payment attempt counts as the first attempt, and subsequently only automatic
   * retries increment the attempt count. In other words, manual payment attempts after the first
   * attempt do not affect the retry schedule." (`Invoice.attempt_count`)
   */
  function countAttempt(inv: InvoiceRec, source: ChargeRec['source']): void {
    if (inv.attemptCount === 0 || source === 'initial' || source === 'automatic') inv.attemptCount += 1;
  }

  /**
   * One charge attempt on an open invoice: records the charge and emits every outcome event.
   * `outcome`: `model` lets the card model decide; `fail` declines a failing card whatever the odds
   * (Stripe's own first attempt, a test's failed try); `succeed` pays (a card the customer just
   * typed in on the hosted page).
   */
  function charge(
    inv: InvoiceRec,
    pmId: string,
    source: ChargeRec['source'],
    request: RequestInfo,
    outcome: 'model' | 'fail' | 'succeed' = 'model',
  ): ChargeRec {
    const pm = mustGet(store.paymentMethods, pmId, 'payment_method');
    const customer = mustGet(store.customers, inv.customer, 'customer');
    const at = clock.now();
    const reason = pm.card.failure;
    const decision: ChargeDecision =
      outcome === 'succeed'
        ? { ok: true }
        : outcome === 'fail' && reason !== null
          ? { ok: false, decline: declineFor(reason, pm.card.brand) }
          : decideCharge(
              { reason, cardBrand: pm.card.brand, firstFailedAt: pm.firstFailedAt, at, timeZone: timeZoneOf(customer) },
              deps.rng,
            );
    const ch: ChargeRec = {
      id: store.nextId('ch'),
      invoice: inv.id,
      paymentIntent: inv.paymentIntent,
      paymentMethod: pm.id,
      customer: inv.customer,
      amount: inv.amount,
      currency: inv.currency,
      status: decision.ok ? 'succeeded' : 'failed',
      failure: decision.ok ? null : { ...decision.decline },
      created: unixSeconds(at),
      source,
    };
    store.charges.set(ch.id, ch);
    const pi = mustGet(store.paymentIntents, inv.paymentIntent, 'payment_intent');
    pi.latestCharge = ch.id;
    pi.paymentMethod = pm.id;
    const countBefore = inv.attemptCount;
    countAttempt(inv, source);
    if (decision.ok) {
      pi.status = 'succeeded';
      const previous = { status: inv.status, amount_paid: 0 };
      inv.status = 'paid';
      inv.paidAt = ch.created;
      emit('charge.succeeded', chargeJson(store, ch), undefined, request, at);
      emit('payment_intent.succeeded', paymentIntentJson(render, pi), undefined, request, at);
      emit('invoice.paid', invoiceJson(render, inv), previous, request, at);
      emit('invoice.payment_succeeded', invoiceJson(render, inv), undefined, request, at);
      setSubscriptionStatus(inv.subscription, 'active', request, at);
      return ch;
    }
    if (pm.firstFailedAt === null) pm.firstFailedAt = at;
    const auth = decision.decline.code === 'authentication_required';
    pi.status = auth ? 'requires_action' : 'requires_payment_method';
    emit('charge.failed', chargeJson(store, ch), undefined, request, at);
    emit('payment_intent.payment_failed', paymentIntentJson(render, pi), undefined, request, at);
    emit('invoice.payment_failed', invoiceJson(render, inv), attemptCountChange(inv, countBefore), request, at);
    if (auth) emit('invoice.payment_action_required', invoiceJson(render, inv), undefined, request, at);
    setSubscriptionStatus(inv.subscription, 'past_due', request, at);
    return ch;
  }

  /**
   * Our retry of an invoice whose card needs 3-D Secure: Stripe creates no charge (nothing reached
   * the issuer), moves the PaymentIntent to `requires_action`, counts the attempt and tells the
   * merchant the customer must act.
   */
  function requireAction(inv: InvoiceRec, pm: PaymentMethodRec, request: RequestInfo): PaymentIntentRec {
    const pi = mustGet(store.paymentIntents, inv.paymentIntent, 'payment_intent');
    pi.status = 'requires_action';
    pi.paymentMethod = pm.id;
    const countBefore = inv.attemptCount;
    countAttempt(inv, 'api');
    emit('payment_intent.requires_action', paymentIntentJson(render, pi), undefined, request);
    emit('invoice.payment_failed', invoiceJson(render, inv), attemptCountChange(inv, countBefore), request);
    emit('invoice.payment_action_required', invoiceJson(render, inv), undefined, request);
    setSubscriptionStatus(inv.subscription, 'past_due', request);
    return pi;
  }

  function newPaymentIntent(invoiceId: string, customerId: string, amount: number, currency: string): PaymentIntentRec {
    const pi: PaymentIntentRec = {
      id: store.nextId('pi'),
      invoice: invoiceId,
      customer: customerId,
      amount,
      currency,
      status: 'requires_payment_method',
      paymentMethod: null,
      latestCharge: null,
      created: now(),
    };
    store.paymentIntents.set(pi.id, pi);
    return pi;
  }

  /**
   * A new InvoicePayment for the invoice (say, the customer starts over on the hosted page): a new
   * PaymentIntent becomes the default and the one it replaces is canceled.
   */
  function startNewPayment(inv: InvoiceRec): PaymentIntentRec {
    const old = mustGet(store.paymentIntents, inv.paymentIntent, 'payment_intent');
    if (old.status !== 'succeeded') {
      old.status = 'canceled';
      old.canceledAt = now();
    }
    const pi = newPaymentIntent(inv.id, inv.customer, inv.amount, inv.currency);
    inv.paymentIntent = pi.id;
    return pi;
  }

  /** A new open invoice (and its subscription), finalized: Stripe's first attempt comes next. */
  function openInvoice(customerId: string, input: NewInvoice): InvoiceRec {
    mustGet(store.customers, customerId, 'customer');
    const created = now();
    let subscription: string | null = null;
    if (input.subscription) {
      subscription = store.nextId('sub');
      store.subscriptions.set(subscription, {
        id: subscription,
        customer: customerId,
        status: 'active',
        pauseCollection: null,
        defaultPaymentMethod: null,
        created: created - 30 * 86_400,
        currentPeriodStart: created,
        currentPeriodEnd: created + 30 * 86_400,
        canceledAt: null,
        amount: input.amount,
        currency: input.currency,
        metadata: {},
      });
    }
    const id = store.nextId('in');
    const pi = newPaymentIntent(id, customerId, input.amount, input.currency).id;
    const inv: InvoiceRec = {
      id,
      number: `SBX-${String(store.invoices.size + 1).padStart(6, '0')}`,
      customer: customerId,
      subscription,
      defaultPaymentMethod: null,
      amount: input.amount,
      currency: input.currency,
      status: 'open',
      attemptCount: 0,
      autoAdvance: true,
      collectionMethod: 'charge_automatically',
      metadata: {},
      created,
      periodStart: created - 30 * 86_400,
      periodEnd: created,
      finalizedAt: created,
      paidAt: null,
      voidedAt: null,
      uncollectibleAt: null,
      paymentIntent: pi,
    };
    store.invoices.set(id, inv);
    emit('invoice.finalized', invoiceJson(render, inv));
    return inv;
  }

  function createFailingInvoice(customerId: string, input: NewInvoice): { invoice: InvoiceRec; charge: ChargeRec } {
    const customer = mustGet(store.customers, customerId, 'customer');
    if (customer.defaultPaymentMethod === null) throw new Error(`customer ${customerId} has no card`);
    const inv = openInvoice(customerId, input);
    const ch = charge(inv, customer.defaultPaymentMethod, 'initial', noRequest, 'fail');
    return { invoice: inv, charge: ch };
  }

  /**
   * An invoice of a customer with no card at all (no invoice, subscription or customer default):
   * Stripe's first attempt has nothing to charge. invoice.payment_failed: "Occurs whenever an
   * invoice payment attempt fails, due to either a declined payment, including soft decline, or to
   * the lack of a stored payment method." No charge is made, so no charge event comes.
   */
  function createUnpayableInvoice(customerId: string, input: NewInvoice): InvoiceRec {
    const inv = openInvoice(customerId, input);
    if (cardCharged(inv) !== null) throw new Error(`customer ${customerId} has a card: use createFailingInvoice`);
    const countBefore = inv.attemptCount;
    countAttempt(inv, 'initial');
    emit('invoice.payment_failed', invoiceJson(render, inv), attemptCountChange(inv, countBefore), noRequest);
    setSubscriptionStatus(inv.subscription, 'past_due', noRequest);
    return inv;
  }

  /**
   * The card Stripe charges for an invoice when the request names none: the invoice's
   * default_payment_method, else its subscription's, else the customer's
   * invoice_settings.default_payment_method.
   */
  function cardCharged(inv: InvoiceRec): string | null {
    const customer = mustGet(store.customers, inv.customer, 'customer');
    const sub = inv.subscription === null ? undefined : store.subscriptions.get(inv.subscription);
    return inv.defaultPaymentMethod ?? sub?.defaultPaymentMethod ?? customer.defaultPaymentMethod;
  }

  function payInvoice(invoiceId: string, paymentMethod: string | undefined, request: RequestInfo): InvoiceRec {
    const inv = mustGet(store.invoices, invoiceId, 'invoice');
    if (inv.status === 'paid') throw invalidRequest('Invoice is already paid');
    if (inv.status === 'void') throw invalidRequest('This invoice is void and can no longer be paid.');
    const customer = mustGet(store.customers, inv.customer, 'customer');
    const pmId = paymentMethod ?? cardCharged(inv);
    if (pmId === null) {
      throw invalidRequest('This customer has no attached payment source or default payment method.');
    }
    const pm = store.paymentMethods.get(pmId);
    if (pm === undefined || pm.customer !== customer.id) {
      throw invalidRequest(`No such PaymentMethod: '${pmId}'`, { code: 'resource_missing', param: 'payment_method' });
    }
    if (needsAuthentication(pm.card.failure)) {
      const pi = requireAction(inv, pm, request);
      throw new ApiError(402, {
        type: 'card_error',
        ...invoiceRequiresAction,
        doc_url: `https://docs.stripe.com/error-codes/${invoiceRequiresAction.code.replaceAll('_', '-')}`,
        payment_intent: paymentIntentJson(render, pi),
      });
    }
    const ch = charge(inv, pmId, 'api', request);
    if (ch.failure !== null) {
      const pi = mustGet(store.paymentIntents, inv.paymentIntent, 'payment_intent');
      throw new ApiError(402, {
        type: 'card_error',
        code: ch.failure.code,
        decline_code: ch.failure.declineCode,
        advice_code: ch.failure.adviceCode ?? undefined,
        network_advice_code: ch.failure.networkAdviceCode ?? undefined,
        network_decline_code: ch.failure.networkDeclineCode ?? undefined,
        message: ch.failure.message,
        charge: ch.id,
        doc_url: `https://docs.stripe.com/error-codes/${ch.failure.code.replaceAll('_', '-')}`,
        payment_intent: paymentIntentJson(render, pi),
        payment_method: paymentMethodJson(pm),
      });
    }
    return inv;
  }

  function markUncollectible(invoiceId: string, request: RequestInfo): InvoiceRec {
    const inv = mustGet(store.invoices, invoiceId, 'invoice');
    if (inv.status === 'uncollectible') return inv;
    if (inv.status !== 'open')
      throw invalidRequest(`You can only mark an open invoice as uncollectible; this one is ${inv.status}.`);
    inv.status = 'uncollectible';
    inv.uncollectibleAt = now();
    emit('invoice.marked_uncollectible', invoiceJson(render, inv), { status: 'open' }, request);
    return inv;
  }

  function voidInvoice(invoiceId: string, request: RequestInfo): InvoiceRec {
    const inv = mustGet(store.invoices, invoiceId, 'invoice');
    if (inv.status !== 'open' && inv.status !== 'uncollectible') {
      throw invalidRequest(`You can only void an open or uncollectible invoice; this one is ${inv.status}.`);
    }
    const previous = { status: inv.status };
    inv.status = 'void';
    inv.voidedAt = now();
    emit('invoice.voided', invoiceJson(render, inv), previous, request);
    return inv;
  }

  function payOutOfBand(invoiceId: string): ChargeRec {
    const inv = mustGet(store.invoices, invoiceId, 'invoice');
    if (inv.status !== 'open' && inv.status !== 'uncollectible') {
      throw invalidRequest(`Invoice ${invoiceId} is ${inv.status} and cannot be paid.`);
    }
    const customer = mustGet(store.customers, inv.customer, 'customer');
    const pmId =
      customer.defaultPaymentMethod ??
      newPaymentMethod(customer.id, { brand: 'visa', failure: null, expMonth: 12, expYear: 2099 }).id;
    return charge(inv, pmId, 'hosted', noRequest, 'succeed');
  }

  /**
   * A failed try at an open invoice made outside the worker, with the customer's saved card: the
   * customer on the hosted invoice page, or someone in the Dashboard or another tool (`dashboard`). Declined
   * whatever the card model's odds, so a test can build a known history. `newPayment`: the try
   * comes with a new InvoicePayment (its own PaymentIntent), as when the customer starts over.
   */
  function failedTry(invoiceId: string, source: 'hosted' | 'dashboard', newPayment = false): ChargeRec {
    const inv = mustGet(store.invoices, invoiceId, 'invoice');
    if (inv.status !== 'open') throw invalidRequest(`Invoice ${invoiceId} is ${inv.status} and cannot be paid.`);
    if (newPayment) startNewPayment(inv);
    const customer = mustGet(store.customers, inv.customer, 'customer');
    const pm =
      customer.defaultPaymentMethod === null ? undefined : store.paymentMethods.get(customer.defaultPaymentMethod);
    if (pm === undefined || pm.card.failure === null) {
      throw new Error(`failedTry: customer ${customer.id} has no failing default card`);
    }
    return charge(inv, pm.id, source, noRequest, 'fail');
  }

  /** Stripe's own automatic retry (Smart Retries or a custom schedule): the only retry that counts in `attempt_count`. */
  function automaticRetry(invoiceId: string): ChargeRec {
    const inv = mustGet(store.invoices, invoiceId, 'invoice');
    if (inv.status !== 'open') throw invalidRequest(`Invoice ${invoiceId} is ${inv.status} and cannot be paid.`);
    const customer = mustGet(store.customers, inv.customer, 'customer');
    if (customer.defaultPaymentMethod === null) throw new Error(`customer ${customer.id} has no card`);
    return charge(inv, customer.defaultPaymentMethod, 'automatic', noRequest);
  }

  /** The customer got a reminder: maybe they put in a working card. Returns the new card if so. */
  function reminderSent(customerId: string): PaymentMethodRec | null {
    const customer = mustGet(store.customers, customerId, 'customer');
    if (!decideCardUpdate(customer.cardUpdateProbability ?? deps.cardUpdateProbability, deps.rng)) return null;
    const old =
      customer.defaultPaymentMethod === null ? undefined : store.paymentMethods.get(customer.defaultPaymentMethod);
    const year = clock.now().getUTCFullYear() + 3;
    return updateCard(customerId, { brand: old?.card.brand ?? 'visa', failure: null, expMonth: 12, expYear: year });
  }

  return {
    mustGet,
    createCustomer,
    updateCard,
    saveCard,
    detachCard,
    updateCardAutomatically,
    createFailingInvoice,
    createUnpayableInvoice,
    payInvoice,
    markUncollectible,
    voidInvoice,
    payOutOfBand,
    failedTry,
    automaticRetry,
    reminderSent,
  };
}

export type Billing = ReturnType<typeof createBilling>;

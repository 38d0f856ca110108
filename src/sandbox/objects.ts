import Stripe from 'stripe';
import type {
  ChargeRec,
  CustomerRec,
  InvoiceRec,
  PaymentIntentRec,
  PaymentMethodRec,
  Store,
  SubscriptionRec,
} from './store.ts';

/**
 * Stripe API shapes of the API version the SDK pins, built from sandbox records. Every object is
 * typed with the SDK's own type (`Stripe.Customer`, `Stripe.Subscription`, ...), never cast: a
 * field Stripe always sends and the sandbox forgets fails the typecheck
 * (`test/sandbox/shapes.test.ts` checks the served JSON against the same types). Where the sandbox
 * has no value for a field, it sends what Stripe sends for an account that does not use the
 * feature: null, false, 0, an empty list, or the documented default.
 */

/** The SDK's own pinned version, so an SDK upgrade cannot leave the sandbox claiming an older one. */
export const apiVersion: string = Stripe.API_VERSION;

/** The first API version whose invoices carry `parent` and `payments` instead of top-level ids. */
export const BASIL = '2025-03-31.basil';

/**
 * An event as a webhook endpoint at `version` receives it. Stripe, WebhookEndpoint.api_version:
 * "The API version that events are rendered as for this webhook endpoint. You can't change this
 * value after you create the endpoint." (the account default when none was set). The sandbox renders the one change the worker meets: before 2025-03-31.basil an invoice names its
 * `subscription`, `payment_intent` and `charge` at top level and has no `parent`.
 */
export function eventAtVersion(ctx: RenderContext, event: Stripe.Event, version: string): WireEvent {
  if (version === event.api_version) return event;
  if (event.data.object.object === 'invoice' && version < BASIL) {
    const { object: _object, ...data } = event.data;
    return { ...event, api_version: version, data: { ...data, object: legacyInvoice(ctx, event.data.object) } };
  }
  return { ...event, api_version: version };
}

/**
 * An invoice as an endpoint older than 2025-03-31.basil receives it: the fields that moved in that
 * version at top level, `parent` and `payments` absent. Typed from the SDK's invoice, so the rest
 * of it cannot drift.
 */
export type LegacyInvoice = Omit<Stripe.Invoice, 'parent' | 'payments'> & {
  subscription: string | null;
  payment_intent: string | null;
  charge: string | null;
};

/** An event as it goes out on the wire: at the SDK's version, or with a legacy invoice. */
export type WireEvent =
  | Stripe.Event
  | (Omit<Stripe.Event, 'data'> & {
      data: { object: LegacyInvoice; previous_attributes?: Stripe.Event['data']['previous_attributes'] };
    });

function legacyInvoice(ctx: RenderContext, json: Stripe.Invoice): LegacyInvoice {
  const inv = json.id === undefined ? undefined : ctx.store.invoices.get(json.id);
  const pi = inv === undefined ? undefined : ctx.store.paymentIntents.get(inv.paymentIntent);
  const { parent: _parent, payments: _payments, ...rest } = json;
  return {
    ...rest,
    subscription: inv?.subscription ?? null,
    payment_intent: pi?.id ?? null,
    charge: pi?.latestCharge ?? null,
  };
}

export interface RenderContext {
  store: Store;
  baseUrl: string;
}

export function customerJson(c: CustomerRec): Stripe.Customer {
  return {
    id: c.id,
    object: 'customer',
    address: { city: null, country: c.country, line1: null, line2: null, postal_code: null, state: null },
    balance: 0,
    created: c.created,
    currency: null,
    customer_account: null,
    default_source: null,
    delinquent: false,
    description: null,
    discount: null,
    email: c.email,
    invoice_prefix: c.id.slice(-8).toUpperCase(),
    invoice_settings: {
      custom_fields: null,
      default_payment_method: c.defaultPaymentMethod,
      footer: null,
      rendering_options: null,
    },
    livemode: false,
    metadata: { ...c.metadata },
    name: c.name,
    next_invoice_sequence: 1,
    phone: null,
    preferred_locales: [...c.preferredLocales],
    shipping: null,
    tax_exempt: 'none',
    test_clock: null,
  };
}

/** One card number, one fingerprint: here derived from the payment method id. */
function fingerprintOf(pm: PaymentMethodRec): string {
  return `fp${pm.id.slice(-10)}`;
}

export function paymentMethodJson(pm: PaymentMethodRec): Stripe.PaymentMethod {
  return {
    id: pm.id,
    object: 'payment_method',
    allow_redisplay: 'unspecified',
    billing_details: { address: null, email: null, name: null, phone: null, tax_id: null },
    card: {
      brand: pm.card.brand,
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' },
      country: 'US',
      display_brand: pm.card.brand,
      exp_month: pm.card.expMonth,
      exp_year: pm.card.expYear,
      fingerprint: fingerprintOf(pm),
      funding: 'credit',
      generated_from: null,
      last4: pm.last4,
      networks: { available: [pm.card.brand], preferred: null },
      regulated_status: 'unregulated',
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: pm.created,
    customer: pm.customer,
    customer_account: null,
    livemode: false,
    metadata: {},
    type: 'card',
  };
}

/** The price a subscription's one item bills: a monthly licensed price of the sandbox's one product. */
function priceJson(s: SubscriptionRec): Stripe.Price {
  return {
    id: `price_${s.currency}_${s.amount}`,
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    created: s.created,
    currency: s.currency,
    custom_unit_amount: null,
    livemode: false,
    lookup_key: null,
    metadata: {},
    nickname: null,
    product: SANDBOX_PRODUCT,
    recurring: { interval: 'month', interval_count: 1, meter: null, trial_period_days: null, usage_type: 'licensed' },
    tax_behavior: 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: 'recurring',
    unit_amount: s.amount,
    unit_amount_decimal: Stripe.Decimal.from(s.amount),
  };
}

/** `plan`: "You can now model subscriptions more flexibly using the Prices API", the same price as a plan. */
function planJson(s: SubscriptionRec): Stripe.Plan {
  return {
    id: `price_${s.currency}_${s.amount}`,
    object: 'plan',
    active: true,
    amount: s.amount,
    amount_decimal: Stripe.Decimal.from(s.amount),
    billing_scheme: 'per_unit',
    created: s.created,
    currency: s.currency,
    interval: 'month',
    interval_count: 1,
    livemode: false,
    metadata: {},
    meter: null,
    nickname: null,
    product: SANDBOX_PRODUCT,
    tiers_mode: null,
    transform_usage: null,
    trial_period_days: null,
    usage_type: 'licensed',
  };
}

const SANDBOX_PRODUCT = 'prod_sandbox';

export function subscriptionJson(s: SubscriptionRec): Stripe.Subscription {
  const item: Stripe.SubscriptionItem = {
    id: `si_${s.id.slice(4)}`,
    object: 'subscription_item',
    billing_thresholds: null,
    created: s.created,
    current_period_end: s.currentPeriodEnd,
    current_period_start: s.currentPeriodStart,
    current_trial: null,
    discounts: [],
    metadata: {},
    plan: planJson(s),
    price: priceJson(s),
    quantity: 1,
    subscription: s.id,
    tax_rates: [],
  };
  return {
    id: s.id,
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: s.currentPeriodStart,
    billing_cycle_anchor_config: null,
    billing_mode: { flexible: null, type: 'classic' },
    billing_schedules: [],
    billing_thresholds: null,
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: s.canceledAt,
    cancellation_details: {
      comment: null,
      feedback: null,
      feedback_option: null,
      reason: s.canceledAt === null ? null : (s.cancellationReason ?? 'cancellation_requested'),
    },
    collection_method: 'charge_automatically',
    created: s.created,
    currency: s.currency,
    customer: s.customer,
    customer_account: null,
    days_until_due: null,
    default_payment_method: s.defaultPaymentMethod,
    default_source: null,
    description: null,
    discounts: [],
    ended_at: s.canceledAt,
    invoice_settings: {
      account_tax_ids: null,
      custom_fields: null,
      description: null,
      footer: null,
      issuer: { type: 'self' },
    },
    items: { object: 'list', data: [item], has_more: false, url: `/v1/subscription_items?subscription=${s.id}` },
    latest_invoice: null,
    livemode: false,
    managed_payments: null,
    metadata: { ...s.metadata },
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: s.pauseCollection === null ? null : { ...s.pauseCollection },
    payment_settings: null,
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: s.created,
    status: s.status,
    test_clock: null,
    transfer_data: null,
    trial_end: null,
    trial_settings: null,
    trial_start: null,
  };
}

/**
 * The invoice as Stripe answers it, unexpanded. Typed with the SDK's `Stripe.Invoice`: a field
 * Stripe requires and the sandbox forgets fails the typecheck. Includable `payments` and expanded
 * objects are added by `invoiceJson`.
 */
export function invoiceObject(ctx: RenderContext, inv: InvoiceRec): Stripe.Invoice {
  const customer = ctx.store.customers.get(inv.customer);
  const paid = inv.status === 'paid';
  const address: Stripe.Address | null =
    customer === undefined
      ? null
      : { city: null, country: customer.country, line1: null, line2: null, postal_code: null, state: null };
  return {
    id: inv.id,
    object: 'invoice',
    account_country: 'US',
    account_name: 'Sandbox Merchant',
    account_tax_ids: null,
    amount_due: inv.amount,
    amount_overpaid: 0,
    amount_paid: paid ? inv.amount : 0,
    // Every payment the sandbox takes goes through Stripe (no payment recorded off Stripe).
    amount_paid_off_stripe: 0,
    amount_remaining: paid || inv.status === 'void' ? 0 : inv.amount,
    amount_shipping: 0,
    application: null,
    attempt_count: inv.attemptCount,
    attempted: inv.attemptCount > 0,
    auto_advance: inv.autoAdvance,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    automatically_finalizes_at: null,
    billing_reason: inv.subscription === null ? 'manual' : 'subscription_cycle',
    collection_method: inv.collectionMethod,
    created: inv.created,
    currency: inv.currency,
    custom_fields: null,
    customer: inv.customer,
    customer_account: null,
    // As it stood when the invoice was finalized; the sandbox's addresses hold only a country.
    customer_address: address,
    customer_email: customer?.email ?? null,
    customer_name: customer?.name ?? null,
    customer_phone: null,
    customer_shipping: null,
    customer_tax_exempt: 'none',
    default_payment_method: inv.defaultPaymentMethod,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    due_date: null,
    effective_at: inv.finalizedAt,
    ending_balance: 0,
    footer: null,
    from_invoice: null,
    hosted_invoice_url: `${ctx.baseUrl}/hosted/invoices/${inv.id}`,
    invoice_pdf: `${ctx.baseUrl}/hosted/invoices/${inv.id}/pdf`,
    issuer: { type: 'self' },
    last_finalization_error: null,
    latest_revision: null,
    lines: { object: 'list', data: [], has_more: false, url: `/v1/invoices/${inv.id}/lines` },
    livemode: false,
    metadata: { ...inv.metadata },
    // Smart Retries are off in the sandbox: the worker owns dunning.
    next_payment_attempt: null,
    number: inv.number,
    on_behalf_of: null,
    parent:
      inv.subscription === null
        ? null
        : {
            type: 'subscription_details',
            quote_details: null,
            subscription_details: { metadata: {}, subscription: inv.subscription },
          },
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    period_end: inv.periodEnd,
    period_start: inv.periodStart,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: inv.status,
    status_transitions: {
      finalized_at: inv.finalizedAt,
      marked_uncollectible_at: inv.uncollectibleAt,
      paid_at: inv.paidAt,
      voided_at: inv.voidedAt,
    },
    subtotal: inv.amount,
    subtotal_excluding_tax: inv.amount,
    test_clock: null,
    total: inv.amount,
    total_discount_amounts: [],
    total_excluding_tax: inv.amount,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: inv.created,
  };
}

/** The invoice with what `expand[]` asks for: the subscription object, the payments and their PaymentIntents. */
export function invoiceJson(ctx: RenderContext, inv: InvoiceRec, expand: readonly string[] = []): Stripe.Invoice {
  const json = invoiceObject(ctx, inv);
  const sub = expand.includes('parent.subscription_details.subscription')
    ? inv.subscription && ctx.store.subscriptions.get(inv.subscription)
    : undefined;
  if (sub && json.parent?.subscription_details) {
    json.parent = {
      ...json.parent,
      subscription_details: { ...json.parent.subscription_details, subscription: subscriptionJson(sub) },
    };
  }
  // Expanding a nested path expands its parent too, as Stripe does. An expanded list holds its
  // first page (10, newest first); `has_more` says the rest is at its `url`.
  if (expand.some((e) => e === 'payments' || e.startsWith('payments.'))) {
    const all = paymentsOf(ctx.store, inv.id);
    const expandIntent = expand.includes('payments.data.payment.payment_intent');
    json.payments = listJson(
      `/v1/invoice_payments?invoice=${inv.id}`,
      all.slice(0, EXPANDED_LIST_PAGE).map((pi) => invoicePaymentJson(ctx, inv, pi, expandIntent)),
      all.length > EXPANDED_LIST_PAGE,
    );
  }
  return json;
}

const EXPANDED_LIST_PAGE = 10;

/** The invoice's PaymentIntents, one per InvoicePayment, newest first as Stripe lists them. */
export function paymentsOf(store: Store, invoiceId: string): PaymentIntentRec[] {
  return [...store.paymentIntents.values()]
    .filter((pi) => pi.invoice === invoiceId)
    .sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1));
}

export function invoicePaymentId(pi: PaymentIntentRec): string {
  return `inpay_${pi.id.slice(3)}`;
}

/** The InvoicePayment of one of the invoice's PaymentIntents; only the invoice's current one is its default. */
export function invoicePaymentJson(
  ctx: RenderContext,
  inv: InvoiceRec,
  pi: PaymentIntentRec,
  expandIntent: boolean,
): Stripe.InvoicePayment {
  const paid = pi.status === 'succeeded';
  const canceled = !paid && (inv.status === 'void' || pi.status === 'canceled');
  return {
    id: invoicePaymentId(pi),
    object: 'invoice_payment',
    amount_paid: paid ? pi.amount : null,
    amount_requested: pi.amount,
    created: pi.created,
    currency: pi.currency,
    invoice: inv.id,
    is_default: pi.id === inv.paymentIntent,
    livemode: false,
    payment: { type: 'payment_intent', payment_intent: expandIntent ? paymentIntentJson(ctx, pi) : pi.id },
    status: paid ? 'paid' : canceled ? 'canceled' : 'open',
    status_transitions: {
      canceled_at: canceled ? (inv.voidedAt ?? pi.canceledAt ?? null) : null,
      paid_at: paid ? inv.paidAt : null,
    },
  };
}

function outcomeJson(ch: ChargeRec): Stripe.Charge.Outcome {
  const f = ch.failure;
  if (f === null) {
    return {
      advice_code: null,
      network_advice_code: null,
      network_decline_code: null,
      network_status: 'approved_by_network',
      reason: null,
      risk_level: 'normal',
      seller_message: 'Payment complete.',
      type: 'authorized',
    };
  }
  return {
    advice_code: f.adviceCode,
    network_advice_code: f.networkAdviceCode,
    network_decline_code: f.networkDeclineCode,
    network_status: 'declined_by_network',
    reason: f.declineCode,
    risk_level: 'normal',
    seller_message: 'The bank did not return any further details with this decline.',
    type: 'issuer_declined',
  };
}

/** The card as a charge reports it; the same fingerprint as its PaymentMethod's. */
function paymentMethodDetailsJson(pm: PaymentMethodRec | undefined): Stripe.Charge.PaymentMethodDetails | null {
  if (pm === undefined) return null;
  return {
    type: 'card',
    card: {
      amount_authorized: null,
      authorization_code: null,
      brand: pm.card.brand,
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' },
      country: 'US',
      electronic_commerce_indicator: null,
      exp_month: pm.card.expMonth,
      exp_year: pm.card.expYear,
      fingerprint: fingerprintOf(pm),
      funding: 'credit',
      installments: null,
      last4: pm.last4,
      mandate: null,
      network: pm.card.brand,
      network_token: null,
      network_transaction_id: null,
      regulated_status: null,
      three_d_secure: null,
      transaction_link_id: null,
      wallet: null,
    },
  };
}

/** Typed with the SDK's `Stripe.Charge`: a field Stripe requires and the sandbox forgets fails the typecheck. */
export function chargeJson(store: Store, ch: ChargeRec): Stripe.Charge {
  const succeeded = ch.status === 'succeeded';
  return {
    id: ch.id,
    object: 'charge',
    amount: ch.amount,
    amount_captured: succeeded ? ch.amount : 0,
    amount_refunded: 0,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: null,
    billing_details: { address: null, email: null, name: null, phone: null, tax_id: null },
    calculated_statement_descriptor: null,
    captured: succeeded,
    created: ch.created,
    currency: ch.currency,
    customer: ch.customer,
    description: 'Subscription update',
    disputed: false,
    failure_balance_transaction: null,
    failure_code: ch.failure?.code ?? null,
    failure_message: ch.failure?.message ?? null,
    fraud_details: null,
    livemode: false,
    metadata: {},
    on_behalf_of: null,
    outcome: outcomeJson(ch),
    paid: succeeded,
    payment_intent: ch.paymentIntent,
    payment_method: ch.paymentMethod,
    payment_method_details: paymentMethodDetailsJson(store.paymentMethods.get(ch.paymentMethod)),
    receipt_email: null,
    receipt_number: null,
    receipt_url: null,
    refunded: false,
    review: null,
    shipping: null,
    source: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: ch.status,
    transfer_data: null,
    transfer_group: null,
  };
}

export function lastPaymentErrorJson(
  ch: ChargeRec,
  pm: PaymentMethodRec | undefined,
): Stripe.PaymentIntent.LastPaymentError | null {
  const f = ch.failure;
  if (f === null) return null;
  return {
    type: 'card_error',
    code: f.code,
    decline_code: f.declineCode,
    ...(f.adviceCode === null ? {} : { advice_code: f.adviceCode }),
    ...(f.networkAdviceCode === null ? {} : { network_advice_code: f.networkAdviceCode }),
    ...(f.networkDeclineCode === null ? {} : { network_decline_code: f.networkDeclineCode }),
    message: f.message,
    charge: ch.id,
    doc_url: `https://docs.stripe.com/error-codes/${f.code.replaceAll('_', '-')}`,
    ...(pm === undefined ? {} : { payment_method: paymentMethodJson(pm) }),
  };
}

/** A PaymentIntent of an invoice: confirmed off-session with the invoice's card, captured at once. */
export function paymentIntentJson(ctx: RenderContext, pi: PaymentIntentRec): Stripe.PaymentIntent {
  const latest = pi.latestCharge === null ? undefined : ctx.store.charges.get(pi.latestCharge);
  const pm = latest === undefined ? undefined : ctx.store.paymentMethods.get(latest.paymentMethod);
  const canceled = pi.status === 'canceled';
  return {
    id: pi.id,
    object: 'payment_intent',
    allowed_payment_method_types: null,
    amount: pi.amount,
    amount_capturable: 0,
    amount_received: pi.status === 'succeeded' ? pi.amount : 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: null,
    canceled_at: canceled ? (pi.canceledAt ?? null) : null,
    cancellation_reason: canceled ? 'void_invoice' : null,
    capture_method: 'automatic',
    client_secret: `${pi.id}_secret_sandbox`,
    confirmation_method: 'automatic',
    created: pi.created,
    currency: pi.currency,
    customer: pi.customer,
    customer_account: null,
    description: 'Subscription update',
    excluded_payment_method_types: null,
    last_payment_error: latest === undefined ? null : lastPaymentErrorJson(latest, pm),
    latest_charge: pi.latestCharge,
    livemode: false,
    managed_payments: null,
    metadata: {},
    // 3-D Secure waits for the customer (the hosted invoice page completes it).
    next_action: pi.status === 'requires_action' ? { type: 'use_stripe_sdk', use_stripe_sdk: {} } : null,
    on_behalf_of: null,
    payment_method: pi.paymentMethod,
    payment_method_configuration_details: null,
    payment_method_options: null,
    payment_method_types: ['card'],
    payment_record: null,
    processing: null,
    receipt_email: null,
    review: null,
    setup_future_usage: null,
    shipping: null,
    source: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: pi.status,
    transfer_group: null,
  };
}

/** A list object: "a dictionary with a data property that contains an array of up to limit objects". */
export function listJson<T>(url: string, data: T[], hasMore: boolean): Stripe.ApiList<T> {
  return { object: 'list', data, has_more: hasMore, url };
}

export function errorJson(
  type: string,
  message: string,
  extra: Record<string, unknown> = {},
): { error: Record<string, unknown> } {
  return { error: { type, message, ...extra } };
}

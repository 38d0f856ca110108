import Stripe from 'stripe';
import type {
  ChargeRec,
  CustomerRec,
  EventRec,
  InvoiceRec,
  PaymentIntentRec,
  PaymentMethodRec,
  Store,
  SubscriptionRec,
} from './store.ts';

/**
 * Stripe API shapes of the API version the SDK pins, built from sandbox records: realistic
 * enough for the SDK and the worker, with only the fields anyone reads.
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
export function eventAtVersion(ctx: RenderContext, event: EventRec, version: string): EventRec {
  if (version === event.api_version) return event;
  const object = event.data.object as Record<string, unknown>;
  const rendered = object.object === 'invoice' && version < BASIL ? legacyInvoice(ctx, object) : object;
  return { ...event, api_version: version, data: { ...event.data, object: rendered } };
}

function legacyInvoice(ctx: RenderContext, json: Record<string, unknown>): Record<string, unknown> {
  const inv = ctx.store.invoices.get(String(json.id));
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

export function customerJson(c: CustomerRec): Record<string, unknown> {
  return {
    id: c.id,
    object: 'customer',
    address: { city: null, country: c.country, line1: null, line2: null, postal_code: null, state: null },
    balance: 0,
    created: c.created,
    currency: null,
    default_source: null,
    delinquent: false,
    description: null,
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

export function paymentMethodJson(pm: PaymentMethodRec): Record<string, unknown> {
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
      last4: pm.last4,
      networks: { available: [pm.card.brand], preferred: null },
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: pm.created,
    customer: pm.customer,
    livemode: false,
    metadata: {},
    type: 'card',
  };
}

export function subscriptionJson(s: SubscriptionRec): Record<string, unknown> {
  return {
    id: s.id,
    object: 'subscription',
    billing_cycle_anchor: s.currentPeriodStart,
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: s.canceledAt,
    cancellation_details: {
      comment: null,
      feedback: null,
      reason: s.canceledAt === null ? null : (s.cancellationReason ?? 'cancellation_requested'),
    },
    collection_method: 'charge_automatically',
    created: s.created,
    currency: s.currency,
    customer: s.customer,
    default_payment_method: s.defaultPaymentMethod,
    ended_at: s.canceledAt,
    items: {
      object: 'list',
      data: [
        {
          id: `si_${s.id.slice(4)}`,
          object: 'subscription_item',
          current_period_end: s.currentPeriodEnd,
          current_period_start: s.currentPeriodStart,
          quantity: 1,
          subscription: s.id,
          price: {
            id: `price_${s.currency}_${s.amount}`,
            object: 'price',
            currency: s.currency,
            unit_amount: s.amount,
          },
        },
      ],
      has_more: false,
      url: `/v1/subscription_items?subscription=${s.id}`,
    },
    latest_invoice: null,
    livemode: false,
    metadata: { ...s.metadata },
    pause_collection: s.pauseCollection === null ? null : { ...s.pauseCollection },
    start_date: s.created,
    status: s.status,
    test_clock: null,
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
export function invoiceJson(
  ctx: RenderContext,
  inv: InvoiceRec,
  expand: readonly string[] = [],
): Record<string, unknown> {
  const base = invoiceObject(ctx, inv);
  const json: Record<string, unknown> = { ...base };
  const sub = expand.includes('parent.subscription_details.subscription')
    ? inv.subscription && ctx.store.subscriptions.get(inv.subscription)
    : undefined;
  if (sub && base.parent) {
    json.parent = {
      ...base.parent,
      subscription_details: { ...base.parent.subscription_details, subscription: subscriptionJson(sub) },
    };
  }
  // Expanding a nested path expands its parent too, as Stripe does. An expanded list holds its
  // first page (10, newest first); `has_more` says the rest is at its `url`.
  if (expand.some((e) => e === 'payments' || e.startsWith('payments.'))) {
    const all = paymentsOf(ctx.store, inv.id);
    const expandIntent = expand.includes('payments.data.payment.payment_intent');
    json.payments = {
      object: 'list',
      data: all.slice(0, EXPANDED_LIST_PAGE).map((pi) => invoicePaymentJson(ctx, inv, pi, expandIntent)),
      has_more: all.length > EXPANDED_LIST_PAGE,
      url: `/v1/invoice_payments?invoice=${inv.id}`,
    };
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
): Record<string, unknown> {
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
      canceled_at: canceled ? (inv.voidedAt ?? pi.canceledAt) : null,
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

export function lastPaymentErrorJson(ch: ChargeRec, pm: PaymentMethodRec | undefined): Record<string, unknown> | null {
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
    payment_method: pm === undefined ? undefined : paymentMethodJson(pm),
  };
}

export function paymentIntentJson(ctx: RenderContext, pi: PaymentIntentRec): Record<string, unknown> {
  const latest = pi.latestCharge === null ? undefined : ctx.store.charges.get(pi.latestCharge);
  const pm = latest === undefined ? undefined : ctx.store.paymentMethods.get(latest.paymentMethod);
  return {
    id: pi.id,
    object: 'payment_intent',
    amount: pi.amount,
    amount_received: pi.status === 'succeeded' ? pi.amount : 0,
    capture_method: 'automatic',
    created: pi.created,
    currency: pi.currency,
    customer: pi.customer,
    description: 'Subscription update',
    last_payment_error: latest === undefined ? null : lastPaymentErrorJson(latest, pm),
    latest_charge: pi.latestCharge,
    livemode: false,
    metadata: {},
    // 3-D Secure waits for the customer (the hosted invoice page completes it).
    next_action: pi.status === 'requires_action' ? { type: 'use_stripe_sdk', use_stripe_sdk: {} } : null,
    payment_method: pi.paymentMethod,
    payment_method_types: ['card'],
    status: pi.status,
  };
}

export function listJson(url: string, data: unknown[], hasMore: boolean): Record<string, unknown> {
  return { object: 'list', data, has_more: hasMore, url };
}

export function errorJson(
  type: string,
  message: string,
  extra: Record<string, unknown> = {},
): { error: Record<string, unknown> } {
  return { error: { type, message, ...extra } };
}

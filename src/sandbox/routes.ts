import type Stripe from 'stripe';
import { invalidRequest, type Billing, type Emit, type RequestInfo } from './billing.ts';
import { applyMetadata, obj, str, strings, type FormObject } from './form.ts';
import {
  chargeJson,
  customerJson,
  invoiceJson,
  invoicePaymentId,
  invoicePaymentJson,
  listJson,
  paymentIntentJson,
  paymentMethodJson,
  subscriptionJson,
  type RenderContext,
} from './objects.ts';
import { accountRoutes, DEFAULT_PORTAL_CONFIGURATION } from './account.ts';
import { pageOf } from './paging.ts';
import { listSubscriptions } from './subscription-list.ts';
import { unixSeconds, type InvoiceRec, type Store } from './store.ts';
import type { Clock } from './webhooks.ts';

/** The Stripe API surface the sandbox answers: one small handler per route. */

export interface RouteDeps {
  store: Store;
  billing: Billing;
  render: RenderContext;
  emit: Emit;
  clock: Clock;
}

export interface Call {
  id: string | null;
  form: FormObject;
  request: RequestInfo;
}

export interface Reply {
  status: number;
  body: unknown;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** Also the name faults match on, with the method: `POST /v1/invoices/:id/pay`. */
  pattern: string;
  handle(deps: RouteDeps, call: Call): Reply;
}

const ok = (body: unknown): Reply => ({ status: 200, body });

function need(call: Call): string {
  if (call.id === null) throw new Error('route without :id');
  return call.id;
}

function listInvoices(deps: RouteDeps, call: Call): Reply {
  const { form } = call;
  const status = str(form, 'status');
  const customer = str(form, 'customer');
  const method = str(form, 'collection_method');
  const subscription = str(form, 'subscription');
  const { page, hasMore } = pageOf(
    form,
    [...deps.store.invoices.values()].filter(
      (i: InvoiceRec) =>
        (status === undefined || i.status === status) &&
        (customer === undefined || i.customer === customer) &&
        (method === undefined || i.collectionMethod === method) &&
        (subscription === undefined || i.subscription === subscription),
    ),
    'invoice',
  );
  const expand = strings(form, 'expand').map((e) => e.replace(/^data\./, ''));
  return ok(
    listJson(
      '/v1/invoices',
      page.map((i) => invoiceJson(deps.render, i, expand)),
      hasMore,
    ),
  );
}

/** `GET /v1/charges`, newest first, filtered by `payment_intent` or `customer` as Stripe allows. */
function listCharges(deps: RouteDeps, call: Call): Reply {
  const { form } = call;
  const intent = str(form, 'payment_intent');
  const customer = str(form, 'customer');
  const { page, hasMore } = pageOf(
    form,
    [...deps.store.charges.values()].filter(
      (c) =>
        (intent === undefined || c.paymentIntent === intent) && (customer === undefined || c.customer === customer),
    ),
    'charge',
  );
  return ok(
    listJson(
      '/v1/charges',
      page.map((ch) => chargeJson(deps.store, ch)),
      hasMore,
    ),
  );
}

/**
 * `GET /v1/invoice_payments`, newest first, filtered by `invoice`; `expand[]=data.payment.payment_intent`
 * gives each PaymentIntent.
 */
function listInvoicePayments(deps: RouteDeps, call: Call): Reply {
  const { form } = call;
  const invoiceId = str(form, 'invoice');
  const items = [...deps.store.paymentIntents.values()]
    .filter((pi) => invoiceId === undefined || pi.invoice === invoiceId)
    .map((pi) => ({ id: invoicePaymentId(pi), created: pi.created, pi }));
  const { page, hasMore } = pageOf(form, items, 'invoice_payment');
  const expandIntent = strings(form, 'expand').includes('data.payment.payment_intent');
  return ok(
    listJson(
      '/v1/invoice_payments',
      page.map(({ pi }) =>
        invoicePaymentJson(
          deps.render,
          deps.billing.mustGet(deps.store.invoices, pi.invoice, 'invoice'),
          pi,
          expandIntent,
        ),
      ),
      hasMore,
    ),
  );
}

function updateInvoice(deps: RouteDeps, call: Call): Reply {
  const inv = deps.billing.mustGet(deps.store.invoices, need(call), 'invoice');
  const before = invoiceJson(deps.render, inv);
  applyMetadata(inv.metadata, obj(call.form, 'metadata'));
  const autoAdvance = str(call.form, 'auto_advance');
  if (autoAdvance !== undefined) inv.autoAdvance = autoAdvance === 'true';
  deps.emit(
    'invoice.updated',
    invoiceJson(deps.render, inv),
    { metadata: before.metadata, auto_advance: before.auto_advance },
    call.request,
  );
  return ok(invoiceJson(deps.render, inv));
}

/**
 * `GET /v1/customers/{id}/payment_methods`: "Returns a list of PaymentMethods for a given Customer",
 * newest first and paged like every list; `type` is "an optional filter on the list, based on the
 * object type field" (every payment method here is a card).
 */
function listCustomerPaymentMethods(deps: RouteDeps, call: Call): Reply {
  const id = need(call);
  deps.billing.mustGet(deps.store.customers, id, 'customer');
  const type = str(call.form, 'type');
  const { page, hasMore } = pageOf(
    call.form,
    [...deps.store.paymentMethods.values()].filter(
      (pm) => pm.customer === id && (type === undefined || type === 'card'),
    ),
    'payment_method',
  );
  return ok(listJson(`/v1/customers/${id}/payment_methods`, page.map(paymentMethodJson), hasMore));
}

function updateCustomer(deps: RouteDeps, call: Call): Reply {
  const c = deps.billing.mustGet(deps.store.customers, need(call), 'customer');
  const before = customerJson(c);
  const pm = str(obj(call.form, 'invoice_settings') ?? {}, 'default_payment_method');
  if (pm !== undefined) {
    const found = deps.store.paymentMethods.get(pm);
    if (found === undefined || found.customer !== c.id) {
      throw invalidRequest(`No such PaymentMethod: '${pm}'`, {
        code: 'resource_missing',
        param: 'invoice_settings[default_payment_method]',
      });
    }
    c.defaultPaymentMethod = pm;
  }
  applyMetadata(c.metadata, obj(call.form, 'metadata'));
  c.email = str(call.form, 'email') ?? c.email;
  c.name = str(call.form, 'name') ?? c.name;
  const after = customerJson(c);
  const changed = (a: unknown, b: unknown): boolean => JSON.stringify(a) !== JSON.stringify(b);
  const previous: Partial<Stripe.Customer> = {
    ...(changed(before.invoice_settings, after.invoice_settings) ? { invoice_settings: before.invoice_settings } : {}),
    ...(changed(before.metadata, after.metadata) ? { metadata: before.metadata } : {}),
    ...(changed(before.email, after.email) ? { email: before.email } : {}),
    ...(changed(before.name, after.name) ? { name: before.name } : {}),
  };
  if (Object.keys(previous).length > 0) deps.emit('customer.updated', after, previous, call.request);
  return ok(after);
}

function cancelSubscription(deps: RouteDeps, call: Call): Reply {
  const sub = deps.billing.mustGet(deps.store.subscriptions, need(call), 'subscription');
  if (sub.status === 'canceled') {
    throw invalidRequest(`No such subscription: '${sub.id}'`, { code: 'resource_missing' }, 404);
  }
  sub.status = 'canceled';
  sub.canceledAt = unixSeconds(deps.clock.now());
  deps.emit('customer.subscription.deleted', subscriptionJson(sub), undefined, call.request);
  return ok(subscriptionJson(sub));
}

function updateSubscription(deps: RouteDeps, call: Call): Reply {
  const sub = deps.billing.mustGet(deps.store.subscriptions, need(call), 'subscription');
  const before = subscriptionJson(sub);
  const raw = call.form.pause_collection;
  if (raw === '') sub.pauseCollection = null;
  else if (raw !== undefined && typeof raw !== 'string' && !Array.isArray(raw)) {
    const behavior = str(raw, 'behavior');
    if (behavior !== 'keep_as_draft' && behavior !== 'mark_uncollectible' && behavior !== 'void') {
      throw invalidRequest('Invalid pause_collection[behavior]', { param: 'pause_collection[behavior]' });
    }
    const resumes = str(raw, 'resumes_at');
    sub.pauseCollection = { behavior, resumes_at: resumes === undefined ? null : Number(resumes) };
  }
  const pm = str(call.form, 'default_payment_method');
  if (pm !== undefined) {
    if (pm !== '' && deps.store.paymentMethods.get(pm)?.customer !== sub.customer) {
      throw invalidRequest(`No such PaymentMethod: '${pm}'`, {
        code: 'resource_missing',
        param: 'default_payment_method',
      });
    }
    sub.defaultPaymentMethod = pm === '' ? null : pm;
  }
  applyMetadata(sub.metadata, obj(call.form, 'metadata'));
  const after = subscriptionJson(sub);
  deps.emit(
    'customer.subscription.updated',
    after,
    {
      pause_collection: before.pause_collection,
      metadata: before.metadata,
      ...(pm !== undefined ? { default_payment_method: before.default_payment_method } : {}),
    },
    call.request,
  );
  return ok(after);
}

/** Flows Stripe accepts in `flow_data[type]`; the ones naming a subscription need it, which the sandbox does not check. */
const PORTAL_FLOWS: readonly Stripe.BillingPortal.Session.Flow.Type[] = [
  'payment_method_update',
  'customer_update',
  'subscription_pause',
  'subscription_cancel',
  'subscription_update',
  'subscription_update_confirm',
];

const AFTER_COMPLETION: readonly Stripe.BillingPortal.Session.Flow.AfterCompletion.Type[] = [
  'hosted_confirmation',
  'portal_homepage',
  'redirect',
];

function oneOf<T extends string>(allowed: readonly T[], value: string | undefined): T | undefined {
  return allowed.find((a) => a === value);
}

/** `flow_data` as Stripe echoes it in `flow`, or null without one; an unknown type is refused as Stripe does. */
function portalFlow(form: FormObject): Stripe.BillingPortal.Session.Flow | null {
  const data = obj(form, 'flow_data');
  if (data === undefined) return null;
  const type = oneOf(PORTAL_FLOWS, str(data, 'type'));
  if (type === undefined) {
    throw invalidRequest(`Invalid flow_data[type]: must be one of ${PORTAL_FLOWS.join(', ')}`, {
      param: 'flow_data[type]',
    });
  }
  const after = obj(data, 'after_completion');
  const afterRaw = after && str(after, 'type');
  const afterType = afterRaw === undefined ? 'portal_homepage' : oneOf(AFTER_COMPLETION, afterRaw);
  if (afterType === undefined) {
    throw invalidRequest(`Invalid flow_data[after_completion][type]: must be one of ${AFTER_COMPLETION.join(', ')}`, {
      param: 'flow_data[after_completion][type]',
    });
  }
  const redirect = after && obj(after, 'redirect');
  const returnUrl = redirect && str(redirect, 'return_url');
  return {
    type,
    after_completion: {
      type: afterType,
      hosted_confirmation: null,
      redirect: returnUrl === undefined ? null : { return_url: returnUrl },
    },
    customer_update: type === 'customer_update' ? {} : null,
    subscription_cancel: null,
    subscription_pause: null,
    subscription_update: null,
    subscription_update_confirm: null,
  };
}

function portalSession(deps: RouteDeps, call: Call): Reply {
  const customer = str(call.form, 'customer');
  if (customer === undefined) throw invalidRequest('Missing required param: customer.', { param: 'customer' });
  deps.billing.mustGet(deps.store.customers, customer, 'customer');
  const flow = portalFlow(call.form);
  const id = deps.store.nextId('bps');
  deps.store.portalSessions.set(id, { customer, flow: flow === null ? null : flow.type });
  const session: Stripe.BillingPortal.Session = {
    id,
    object: 'billing_portal.session',
    configuration: DEFAULT_PORTAL_CONFIGURATION,
    created: unixSeconds(deps.clock.now()),
    customer,
    customer_account: null,
    flow,
    livemode: false,
    locale: oneOf(PORTAL_LOCALES, str(call.form, 'locale')) ?? null,
    on_behalf_of: null,
    return_url: str(call.form, 'return_url') ?? null,
    url: `${deps.render.baseUrl}/portal/${id}`,
  };
  return ok(session);
}

/** The locales the sandbox's portal knows; any other is answered as Stripe's default (null: auto). */
const PORTAL_LOCALES: readonly Stripe.BillingPortal.Session.Locale[] = ['auto', 'de', 'en', 'es', 'fr', 'it', 'nl'];

export const routes: readonly Route[] = [
  { method: 'GET', pattern: '/v1/invoices', handle: listInvoices },
  {
    method: 'GET',
    pattern: '/v1/invoices/:id',
    handle: (d, c) =>
      ok(invoiceJson(d.render, d.billing.mustGet(d.store.invoices, need(c), 'invoice'), strings(c.form, 'expand'))),
  },
  {
    method: 'POST',
    pattern: '/v1/invoices/:id/pay',
    handle: (d, c) =>
      ok(
        invoiceJson(
          d.render,
          d.billing.payInvoice(need(c), str(c.form, 'payment_method'), c.request),
          strings(c.form, 'expand'),
        ),
      ),
  },
  {
    method: 'POST',
    pattern: '/v1/invoices/:id/mark_uncollectible',
    handle: (d, c) => ok(invoiceJson(d.render, d.billing.markUncollectible(need(c), c.request))),
  },
  {
    method: 'POST',
    pattern: '/v1/invoices/:id/void',
    handle: (d, c) => ok(invoiceJson(d.render, d.billing.voidInvoice(need(c), c.request))),
  },
  { method: 'POST', pattern: '/v1/invoices/:id', handle: updateInvoice },
  {
    method: 'GET',
    pattern: '/v1/customers/:id',
    handle: (d, c) => ok(customerJson(d.billing.mustGet(d.store.customers, need(c), 'customer'))),
  },
  { method: 'POST', pattern: '/v1/customers/:id', handle: updateCustomer },
  { method: 'GET', pattern: '/v1/customers/:id/payment_methods', handle: listCustomerPaymentMethods },
  { method: 'GET', pattern: '/v1/subscriptions', handle: listSubscriptions },
  {
    method: 'GET',
    pattern: '/v1/subscriptions/:id',
    handle: (d, c) => ok(subscriptionJson(d.billing.mustGet(d.store.subscriptions, need(c), 'subscription'))),
  },
  { method: 'DELETE', pattern: '/v1/subscriptions/:id', handle: cancelSubscription },
  { method: 'POST', pattern: '/v1/subscriptions/:id', handle: updateSubscription },
  {
    method: 'GET',
    pattern: '/v1/payment_methods/:id',
    handle: (d, c) => ok(paymentMethodJson(d.billing.mustGet(d.store.paymentMethods, need(c), 'payment_method'))),
  },
  { method: 'GET', pattern: '/v1/invoice_payments', handle: listInvoicePayments },
  { method: 'GET', pattern: '/v1/charges', handle: listCharges },
  {
    method: 'GET',
    pattern: '/v1/charges/:id',
    handle: (d, c) => ok(chargeJson(d.store, d.billing.mustGet(d.store.charges, need(c), 'charge'))),
  },
  {
    method: 'GET',
    pattern: '/v1/payment_intents/:id',
    handle: (d, c) =>
      ok(paymentIntentJson(d.render, d.billing.mustGet(d.store.paymentIntents, need(c), 'payment_intent'))),
  },
  {
    method: 'GET',
    pattern: '/v1/events/:id',
    handle: (d, c) => {
      const ev = d.store.events.find((e) => e.id === need(c));
      if (ev === undefined) throw invalidRequest(`No such event: '${need(c)}'`, { code: 'resource_missing' }, 404);
      return ok(ev);
    },
  },
  { method: 'POST', pattern: '/v1/billing_portal/sessions', handle: portalSession },
  ...accountRoutes,
];

/** Finds the route for a path; `:id` captures one segment. */
export function matchRoute(method: string, path: string): { route: Route; id: string | null } | null {
  const parts = path.split('/').filter((p) => p !== '');
  for (const route of routes) {
    if (route.method !== method) continue;
    const pat = route.pattern.split('/').filter((p) => p !== '');
    if (pat.length !== parts.length) continue;
    let id: string | null = null;
    let match = true;
    for (let i = 0; i < pat.length && match; i += 1) {
      const seg = parts[i] ?? '';
      if (pat[i] === ':id') id = decodeURIComponent(seg);
      else if (pat[i] !== seg) match = false;
    }
    if (match) return { route, id };
  }
  return null;
}

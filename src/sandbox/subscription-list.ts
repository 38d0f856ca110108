import { invalidRequest } from './billing.ts';
import { str, strings } from './form.ts';
import { customerJson, listJson, paymentMethodJson, subscriptionJson } from './objects.ts';
import { pageOf } from './paging.ts';
import type { Call, Reply, RouteDeps } from './routes.ts';

/**
 * `GET /v1/subscriptions`: "By default, returns a list of subscriptions that have not been
 * canceled"; `status=all` includes them. Expands what a card backfill asks for: the customer and
 * its default payment method, and the subscription's own one (four levels, Stripe's limit).
 */
const EXPANDABLE = [
  'data.customer',
  'data.customer.invoice_settings.default_payment_method',
  'data.default_payment_method',
];

export function listSubscriptions(deps: RouteDeps, call: Call): Reply {
  const status = str(call.form, 'status');
  const customer = str(call.form, 'customer');
  const expand = strings(call.form, 'expand');
  const unknown = expand.find((e) => !EXPANDABLE.includes(e));
  if (unknown !== undefined) {
    throw invalidRequest(`This property cannot be expanded (${unknown}).`, { param: 'expand' });
  }
  const { page, hasMore } = pageOf(
    call.form,
    [...deps.store.subscriptions.values()].filter(
      (s) =>
        (customer === undefined || s.customer === customer) &&
        (status === 'all' || (status === undefined ? s.status !== 'canceled' : s.status === status)),
    ),
    'subscription',
  );
  const withCard = expand.includes('data.customer.invoice_settings.default_payment_method');
  const data = page.map((s) => {
    const json = subscriptionJson(s);
    if (!withCard && !expand.includes('data.customer')) return json;
    const c = deps.store.customers.get(s.customer);
    if (c === undefined) return json;
    const cus = customerJson(c);
    const pm = c.defaultPaymentMethod === null ? undefined : deps.store.paymentMethods.get(c.defaultPaymentMethod);
    if (withCard && pm !== undefined) {
      cus.invoice_settings = { ...cus.invoice_settings, default_payment_method: paymentMethodJson(pm) };
    }
    return { ...json, customer: cus };
  });
  return { status: 200, body: listJson('/v1/subscriptions', data, hasMore) };
}

import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { invalidRequest } from './billing.ts';
import { applyMetadata, obj, str, strings, type FormObject } from './form.ts';
import { listJson } from './objects.ts';
import { pageOf } from './paging.ts';
import type { Call, Reply, Route, RouteDeps } from './routes.ts';
import { unixSeconds } from './store.ts';

/**
 * The account's settings objects `dunning setup` and `dunning doctor` read and write: webhook
 * endpoints and Billing Portal configurations. Records are the SDK's own types, so a field Stripe
 * documents and the sandbox forgets fails the typecheck.
 */

/** The signing secret is kept apart: Stripe returns it on create only. */
export interface WebhookEndpointRec {
  endpoint: Stripe.WebhookEndpoint;
  secret: string;
}

export type PortalConfigurationRec = Stripe.BillingPortal.Configuration;

/** The configuration a test account has once its portal settings are saved; sessions name it. */
export const DEFAULT_PORTAL_CONFIGURATION = 'bpc_sandbox';

const ok = (body: unknown): Reply => ({ status: 200, body });

function need(call: Call): string {
  if (call.id === null) throw new Error('route without :id');
  return call.id;
}

const EVENT_NAME = /^(\*|[a-z_]+(\.[a-z_]+)+)$/;

function enabledEvents(form: FormObject, required: boolean): string[] | undefined {
  const events = strings(form, 'enabled_events');
  if (events.length === 0) {
    if (!required) return undefined;
    throw invalidRequest('Missing required param: enabled_events.', { param: 'enabled_events' });
  }
  const bad = events.find((e) => !EVENT_NAME.test(e));
  if (bad !== undefined) {
    throw invalidRequest(`Invalid enabled_events: '${bad}' is not a valid event type`, { param: 'enabled_events' });
  }
  return [...new Set(events)];
}

function webhookUrl(form: FormObject, required: boolean): string | undefined {
  const url = str(form, 'url');
  if (url === undefined) {
    if (!required) return undefined;
    throw invalidRequest('Missing required param: url.', { param: 'url' });
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidRequest('Invalid URL: url must be a valid URL', { param: 'url' });
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw invalidRequest('Invalid URL: url must use http or https', { param: 'url' });
  }
  return url;
}

function mustEndpoint(deps: RouteDeps, id: string): WebhookEndpointRec {
  const rec = deps.store.webhookEndpoints.get(id);
  if (rec === undefined)
    throw invalidRequest(`No such webhook endpoint: '${id}'`, { code: 'resource_missing', param: 'id' }, 404);
  return rec;
}

/** Adds an endpoint as the Dashboard would (any mode, any version): the seam tests use for a live one. */
export function addWebhookEndpoint(
  deps: Pick<RouteDeps, 'store' | 'clock'>,
  input: {
    url: string;
    enabledEvents: string[];
    apiVersion?: string | null;
    livemode?: boolean;
    metadata?: Record<string, string>;
  },
): WebhookEndpointRec {
  const id = deps.store.nextId('we');
  const rec: WebhookEndpointRec = {
    secret: `whsec_${randomBytes(24).toString('hex')}`,
    endpoint: {
      id,
      object: 'webhook_endpoint',
      api_version: input.apiVersion ?? null,
      application: null,
      created: unixSeconds(deps.clock.now()),
      description: null,
      enabled_events: input.enabledEvents,
      livemode: input.livemode ?? false,
      metadata: { ...(input.metadata ?? {}) },
      status: 'enabled',
      url: input.url,
    },
  };
  deps.store.webhookEndpoints.set(id, rec);
  return rec;
}

function createEndpoint(deps: RouteDeps, call: Call): Reply {
  const url = webhookUrl(call.form, true)!;
  const events = enabledEvents(call.form, true)!;
  const version = str(call.form, 'api_version');
  const rec = addWebhookEndpoint(deps, { url, enabledEvents: events, apiVersion: version ?? null });
  rec.endpoint.description = str(call.form, 'description') || null;
  applyMetadata(rec.endpoint.metadata, obj(call.form, 'metadata'));
  // "The endpoint's secret ... Only returned at creation."
  const created: Stripe.WebhookEndpoint = { ...rec.endpoint, secret: rec.secret };
  return ok(created);
}

function updateEndpoint(deps: RouteDeps, call: Call): Reply {
  const rec = mustEndpoint(deps, need(call));
  // "The API version that events are rendered as for this webhook endpoint. You can't change this
  // value after you create the endpoint." The update parameters have no api_version.
  if (call.form.api_version !== undefined) {
    throw invalidRequest('Received unknown parameter: api_version', { param: 'api_version' });
  }
  const url = webhookUrl(call.form, false);
  if (url !== undefined) rec.endpoint.url = url;
  const events = enabledEvents(call.form, false);
  if (events !== undefined) rec.endpoint.enabled_events = events;
  const disabled = str(call.form, 'disabled');
  if (disabled !== undefined) rec.endpoint.status = disabled === 'true' ? 'disabled' : 'enabled';
  const description = str(call.form, 'description');
  if (description !== undefined) rec.endpoint.description = description || null;
  applyMetadata(rec.endpoint.metadata, obj(call.form, 'metadata'));
  return ok(rec.endpoint);
}

function listEndpoints(deps: RouteDeps, call: Call): Reply {
  const all = [...deps.store.webhookEndpoints.values()].map((r) => r.endpoint);
  const { page, hasMore } = pageOf(call.form, all, 'webhook endpoint');
  return ok(listJson('/v1/webhook_endpoints', page, hasMore));
}

/** A configuration with Stripe's defaults for what `features` leaves out. */
function newConfiguration(
  deps: Pick<RouteDeps, 'store' | 'clock'>,
  id: string,
  isDefault: boolean,
): PortalConfigurationRec {
  const now = unixSeconds(deps.clock.now());
  return {
    id,
    object: 'billing_portal.configuration',
    active: true,
    application: null,
    business_profile: { headline: null, privacy_policy_url: null, terms_of_service_url: null },
    created: now,
    default_return_url: null,
    features: {
      customer_update: { allowed_updates: [], enabled: false },
      invoice_history: { enabled: false },
      payment_method_update: { enabled: false, payment_method_configuration: null },
      subscription_cancel: {
        cancellation_reason: { enabled: false, feedback_options: null, options: [] },
        enabled: false,
        mode: 'at_period_end',
        proration_behavior: 'none',
      },
      subscription_pause: { duration: { interval_options: [], type: 'indefinite' }, enabled: false },
      subscription_update: {
        billing_cycle_anchor: null,
        default_allowed_updates: [],
        enabled: false,
        proration_behavior: 'none',
        schedule_at_period_end: { conditions: [] },
        trial_update_behavior: 'end_trial',
      },
    },
    is_default: isDefault,
    livemode: false,
    login_page: { enabled: false, url: null },
    metadata: {},
    name: null,
    updated: now,
  };
}

/** The account's default configuration, as saved portal settings with payment-method updates on. */
export function portalConfigurations(deps: Pick<RouteDeps, 'store' | 'clock'>): Map<string, PortalConfigurationRec> {
  const configs = deps.store.portalConfigurations;
  if (configs.size === 0) {
    const c = newConfiguration(deps, DEFAULT_PORTAL_CONFIGURATION, true);
    c.features.payment_method_update.enabled = true;
    c.features.invoice_history.enabled = true;
    configs.set(c.id, c);
  }
  return configs;
}

const bool = (form: FormObject, key: string): boolean | undefined => {
  const v = str(form, key);
  return v === undefined ? undefined : v === 'true';
};

/** The simple on/off features; the rest of `features` is accepted and left at its defaults. */
function applyFeatures(c: PortalConfigurationRec, form: FormObject): void {
  const features = obj(form, 'features');
  if (features === undefined) return;
  for (const name of ['customer_update', 'invoice_history', 'payment_method_update'] as const) {
    const f = obj(features, name);
    const enabled = f && bool(f, 'enabled');
    if (enabled !== undefined) c.features[name].enabled = enabled;
  }
  for (const name of ['subscription_cancel', 'subscription_pause', 'subscription_update'] as const) {
    const f = obj(features, name);
    const enabled = f && bool(f, 'enabled');
    if (enabled !== undefined) c.features[name].enabled = enabled;
  }
}

function createConfiguration(deps: RouteDeps, call: Call): Reply {
  if (obj(call.form, 'features') === undefined)
    throw invalidRequest('Missing required param: features.', { param: 'features' });
  const configs = portalConfigurations(deps);
  const c = newConfiguration(deps, deps.store.nextId('bpc'), false);
  applyFeatures(c, call.form);
  c.name = str(call.form, 'name') || null;
  configs.set(c.id, c);
  return ok(c);
}

function updateConfiguration(deps: RouteDeps, call: Call): Reply {
  const c = portalConfigurations(deps).get(need(call));
  if (c === undefined)
    throw invalidRequest(`No such configuration: '${need(call)}'`, { code: 'resource_missing', param: 'id' }, 404);
  applyFeatures(c, call.form);
  const active = bool(call.form, 'active');
  if (active !== undefined) c.active = active;
  c.updated = unixSeconds(deps.clock.now());
  return ok(c);
}

/** `active` and `is_default` filter as in Stripe's list parameters. */
function listConfigurations(deps: RouteDeps, call: Call): Reply {
  const active = bool(call.form, 'active');
  const isDefault = bool(call.form, 'is_default');
  const all = [...portalConfigurations(deps).values()].filter(
    (c) => (active === undefined || c.active === active) && (isDefault === undefined || c.is_default === isDefault),
  );
  const { page, hasMore } = pageOf(call.form, all, 'configuration');
  return ok(listJson('/v1/billing_portal/configurations', page, hasMore));
}

export const accountRoutes: readonly Route[] = [
  { method: 'GET', pattern: '/v1/webhook_endpoints', handle: listEndpoints },
  { method: 'POST', pattern: '/v1/webhook_endpoints', handle: createEndpoint },
  {
    method: 'GET',
    pattern: '/v1/webhook_endpoints/:id',
    handle: (d, c) => ok(mustEndpoint(d, need(c)).endpoint),
  },
  { method: 'POST', pattern: '/v1/webhook_endpoints/:id', handle: updateEndpoint },
  {
    method: 'DELETE',
    pattern: '/v1/webhook_endpoints/:id',
    handle: (d, c) => {
      mustEndpoint(d, need(c));
      d.store.webhookEndpoints.delete(need(c));
      const deleted: Stripe.DeletedWebhookEndpoint = { id: need(c), object: 'webhook_endpoint', deleted: true };
      return ok(deleted);
    },
  },
  { method: 'GET', pattern: '/v1/billing_portal/configurations', handle: listConfigurations },
  { method: 'POST', pattern: '/v1/billing_portal/configurations', handle: createConfiguration },
  { method: 'POST', pattern: '/v1/billing_portal/configurations/:id', handle: updateConfiguration },
];

import type Stripe from 'stripe';

/**
 * What `dunning setup` does to the account's webhook endpoints, decided from what is there. Pure:
 * the command lists the endpoints and carries out the plan.
 */

/** Marks the endpoints `dunning setup` made, so a changed URL still finds them. */
export const OUR_METADATA_KEY = 'dunning_worker';

export interface WantedEndpoint {
  url: string;
  events: string[];
  /** The SDK's pinned version: the shapes the worker reads. */
  apiVersion: string;
}

export interface EventDiff {
  missing: string[];
  extra: string[];
}

export type EndpointPlan =
  | { action: 'create'; params: Stripe.WebhookEndpointCreateParams; replaces: Stripe.WebhookEndpoint | null }
  | {
      action: 'update';
      endpoint: Stripe.WebhookEndpoint;
      params: Stripe.WebhookEndpointUpdateParams;
      diff: EventDiff;
      urlChanged: boolean;
      /** The endpoint renders events at another version, which no update can change. */
      wrongVersion: boolean;
    }
  | { action: 'none'; endpoint: Stripe.WebhookEndpoint; wrongVersion: boolean };

export function diffEvents(enabled: string[], wanted: string[]): EventDiff {
  // '*' sends every event: nothing missing, everything else extra.
  const all = enabled.includes('*');
  return {
    missing: all ? [] : wanted.filter((e) => !enabled.includes(e)),
    extra: all ? ['*'] : enabled.filter((e) => !wanted.includes(e)).sort(),
  };
}

/** The endpoint `dunning setup` owns: the one at the URL, else the one it marked. */
export function findOurEndpoint(endpoints: Stripe.WebhookEndpoint[], url: string): Stripe.WebhookEndpoint | null {
  return (
    endpoints.find((e) => e.url === url) ?? endpoints.find((e) => e.metadata?.[OUR_METADATA_KEY] === 'true') ?? null
  );
}

/**
 * `recreate`: the endpoint renders at another API version, which Stripe does not let an update
 * change ("You can't change this value after you create the endpoint"): make a new one at ours.
 */
export function planEndpoint(
  endpoints: Stripe.WebhookEndpoint[],
  wanted: WantedEndpoint,
  options: { recreate?: boolean } = {},
): EndpointPlan {
  const createParams: Stripe.WebhookEndpointCreateParams = {
    url: wanted.url,
    enabled_events: wanted.events as Stripe.WebhookEndpointCreateParams.EnabledEvent[],
    api_version: wanted.apiVersion as Stripe.WebhookEndpointCreateParams.ApiVersion,
    description: 'stripe-dunning-worker: failed-payment recovery',
    metadata: { [OUR_METADATA_KEY]: 'true' },
  };
  const ours = findOurEndpoint(endpoints, wanted.url);
  if (!ours) return { action: 'create', params: createParams, replaces: null };
  const wrongVersion = ours.api_version !== wanted.apiVersion;
  if (wrongVersion && options.recreate) return { action: 'create', params: createParams, replaces: ours };
  const diff = diffEvents(ours.enabled_events, wanted.events);
  const urlChanged = ours.url !== wanted.url;
  const disabled = ours.status !== 'enabled';
  if (diff.missing.length === 0 && diff.extra.length === 0 && !urlChanged && !disabled)
    return { action: 'none', endpoint: ours, wrongVersion };
  return {
    action: 'update',
    endpoint: ours,
    params: {
      enabled_events: wanted.events as Stripe.WebhookEndpointUpdateParams.EnabledEvent[],
      ...(urlChanged ? { url: wanted.url } : {}),
      ...(disabled ? { disabled: false } : {}),
      metadata: { [OUR_METADATA_KEY]: 'true' },
    },
    diff,
    urlChanged,
    wrongVersion,
  };
}

/** What to do about an endpoint at another API version, in words an operator can follow. */
export function versionAdvice(endpoint: Stripe.WebhookEndpoint, apiVersion: string): string {
  const at = endpoint.api_version ?? "the account's default version";
  return [
    `Webhook endpoint ${endpoint.id} (${endpoint.url}) renders events at ${at}, but the worker reads ${apiVersion}.`,
    `  Stripe cannot change an endpoint's API version after it is created. Run`,
    `  \`dunning setup --url ${endpoint.url} --recreate\` to create a second endpoint at ${apiVersion},`,
    `  add its signing secret to STRIPE_WEBHOOK_SECRET (comma-separated, next to the old one), restart`,
    `  the web processes, then delete ${endpoint.id} in the Dashboard (Developers > Webhooks). Events that`,
    `  reach both endpoints meanwhile are stored once (by event id).`,
  ].join('\n');
}

import type Stripe from 'stripe';
import { diffEvents, OUR_METADATA_KEY, versionAdvice } from './endpoint.ts';

/**
 * What `dunning doctor` finds wrong with the account's setup, from what Stripe's API shows. Pure:
 * the command reads the endpoints and portal configurations and prints the findings.
 */

export interface Finding {
  /** `problem` makes the doctor exit non-zero; `note` is worth knowing but breaks nothing. */
  level: 'problem' | 'note' | 'ok';
  text: string;
}

export interface AccountFacts {
  endpoints: Stripe.WebhookEndpoint[];
  portalConfigurations: Stripe.BillingPortal.Configuration[];
  /** From the key's prefix: sk_live_/rk_live_ or sk_test_/rk_test_. */
  keyLivemode: boolean;
  wantedEvents: string[];
  apiVersion: string;
  /** The URL the worker receives at, when the operator said (--url); else endpoints are recognised by our mark or path. */
  url: string | null;
}

export function keyIsLive(secretKey: string): boolean {
  return /^(sk|rk)_live_/.test(secretKey);
}

/** Endpoints that deliver to this worker. */
export function ourEndpoints(endpoints: Stripe.WebhookEndpoint[], url: string | null): Stripe.WebhookEndpoint[] {
  if (url !== null) return endpoints.filter((e) => e.url === url);
  return endpoints.filter(
    (e) => e.metadata?.[OUR_METADATA_KEY] === 'true' || new URL(e.url).pathname.endsWith('/webhooks/stripe'),
  );
}

const mode = (live: boolean) => (live ? 'live' : 'test');

function endpointFindings(e: Stripe.WebhookEndpoint, facts: AccountFacts): Finding[] {
  const out: Finding[] = [];
  const name = `Webhook endpoint ${e.id} (${e.url})`;
  if (e.livemode !== facts.keyLivemode) {
    out.push({
      level: 'problem',
      text: `${name} is a ${mode(e.livemode)}-mode endpoint, but STRIPE_SECRET_KEY is a ${mode(facts.keyLivemode)} key: the worker would charge and read other objects than the events it receives. Use keys and endpoints of one mode.`,
    });
  }
  if (e.status !== 'enabled') {
    out.push({
      level: 'problem',
      text: `${name} is ${e.status}: Stripe sends it nothing. Run \`dunning setup\` to enable it.`,
    });
  }
  if (e.api_version !== facts.apiVersion) out.push({ level: 'problem', text: versionAdvice(e, facts.apiVersion) });
  const diff = diffEvents(e.enabled_events, facts.wantedEvents);
  if (diff.missing.length > 0) {
    out.push({
      level: 'problem',
      text: `${name} does not send ${diff.missing.join(', ')}: the worker never hears of them. Run \`dunning setup --url ${e.url}\` to fix its events.`,
    });
  }
  if (diff.extra.length > 0) {
    out.push({
      level: 'problem',
      text: `${name} also sends ${diff.extra.join(', ')}, which the worker stores and ignores (load for nothing). Run \`dunning setup --url ${e.url}\` to send exactly what it needs.`,
    });
  }
  if (out.length === 0)
    out.push({
      level: 'ok',
      text: `${name}: ${mode(e.livemode)} mode, ${e.api_version}, the events the worker needs.`,
    });
  return out;
}

function portalFindings(configs: Stripe.BillingPortal.Configuration[]): Finding[] {
  const active = configs.filter((c) => c.active);
  const def = active.find((c) => c.is_default) ?? null;
  if (def === null) {
    return [
      {
        level: 'problem',
        text: 'No active default Billing Portal configuration: update-card links for customers without a hosted invoice page cannot open the portal. Save the portal settings in the Dashboard (Settings > Billing > Customer portal).',
      },
    ];
  }
  if (!def.features.payment_method_update.enabled) {
    return [
      {
        level: 'problem',
        text: `The default Billing Portal configuration ${def.id} does not let customers update their payment method: the update-card link in reminders would lead to a page where they cannot change their card. Turn on "Payment methods" in the portal settings.`,
      },
    ];
  }
  return [{ level: 'ok', text: `Billing Portal configuration ${def.id} lets customers update their payment method.` }];
}

export function diagnose(facts: AccountFacts): Finding[] {
  const ours = ourEndpoints(facts.endpoints, facts.url);
  const findings: Finding[] = [];
  if (ours.length === 0) {
    const where = facts.url ?? 'this worker (marked by `dunning setup`, or a URL ending in /webhooks/stripe)';
    findings.push({
      level: 'problem',
      text: `No webhook endpoint delivers to ${where}: the worker hears of no failed payment. Run \`dunning setup --url https://<your host>/webhooks/stripe\`.`,
    });
  }
  for (const e of ours) findings.push(...endpointFindings(e, facts));
  if (ours.length > 1) {
    findings.push({
      level: 'note',
      text: `${ours.length} endpoints deliver to the worker (${ours.map((e) => e.id).join(', ')}): each event arrives more than once (stored once). Delete the ones you replaced.`,
    });
  }
  findings.push(...portalFindings(facts.portalConfigurations));
  // Stripe's API does not expose the Billing retry and email settings.
  findings.push({
    level: 'note',
    text: "Stripe's Smart Retries and its failed-payment emails cannot be read through the API. Check Dashboard > Billing > Revenue recovery: switch off Smart Retries (retries) and the customer emails for failed payments, or customers get charged and emailed twice.",
  });
  return findings;
}

export function hasProblems(findings: Finding[]): boolean {
  return findings.some((f) => f.level === 'problem');
}

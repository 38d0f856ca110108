import { parseArgs } from 'node:util';
import Stripe from 'stripe';
import { describeStripeError, listWebhookEndpoints, openStripe } from '../setup/account.ts';
import { planEndpoint, versionAdvice, type EndpointPlan } from '../setup/endpoint.ts';
import { keyIsLive } from '../setup/doctor.ts';
import { webhookEvents } from '../setup/webhook-events.ts';
import { UsageError, type Command } from './types.ts';

export const setupCommand: Command = {
  name: 'setup',
  summary: 'create or fix the Stripe webhook endpoint the worker needs (prints the signing secret once)',
  help: `Usage: dunning setup --url <https://host/webhooks/stripe> [--dry-run] [--recreate]

Creates the account's webhook endpoint for this worker through the Stripe API, at the API
version of the worker's Stripe SDK (${Stripe.API_VERSION}) and with exactly the events the
worker handles, or fixes the events and URL of the one it made before (found by URL, else by
its "dunning_worker" metadata). A new endpoint's signing secret is printed once: Stripe never
shows it again. Put it into STRIPE_WEBHOOK_SECRET.

  --url       where Stripe delivers: the web process's public address + /webhooks/stripe
              (default: PUBLIC_URL + /webhooks/stripe when PUBLIC_URL is set)
  --dry-run   only print what would be created or changed
  --recreate  the endpoint renders events at another API version, which Stripe cannot change
              on an existing endpoint: create a second one at ours (the old one stays until
              you delete it, after the worker has the new secret)

Needs STRIPE_SECRET_KEY (a restricted key needs write access to webhook endpoints).`,
  async run(argv, env) {
    const { values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        recreate: { type: 'boolean', default: false },
      },
      strict: true,
    });
    const { config, stripe } = openStripe(env);
    const url = endpointUrl(
      values.url ?? (config.publicUrl ? `${config.publicUrl.replace(/\/$/, '')}/webhooks/stripe` : undefined),
    );
    if (url.protocol !== 'https:' && keyIsLive(config.stripeSecretKey!)) {
      throw new UsageError(`--url: live-mode webhook endpoints must use https, got "${url.href}"`);
    }
    const wanted = { url: url.href, events: webhookEvents(), apiVersion: Stripe.API_VERSION };
    try {
      const plan = planEndpoint(await listWebhookEndpoints(stripe), wanted, { recreate: values.recreate });
      const dry = values['dry-run'];
      console.log(describePlan(plan, wanted.apiVersion, dry));
      if (!dry) await carryOut(stripe, plan);
      if ((plan.action === 'update' || plan.action === 'none') && plan.wrongVersion) {
        console.log(`\n${versionAdvice(plan.endpoint, wanted.apiVersion)}`);
        return 1;
      }
      return 0;
    } catch (err) {
      console.error(`dunning setup: ${describeStripeError(err, 'webhook endpoint').message}`);
      return 1;
    }
  },
};

function endpointUrl(raw: string | undefined): URL {
  if (raw === undefined) throw new UsageError('--url is required (or set PUBLIC_URL)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url: not a URL: "${raw}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new UsageError(`--url: expected an https:// address, got "${raw}"`);
  if (!url.pathname.endsWith('/webhooks/stripe'))
    throw new UsageError(`--url: the worker receives webhooks at /webhooks/stripe, got path "${url.pathname}"`);
  return url;
}

function describePlan(plan: EndpointPlan, apiVersion: string, dry: boolean): string {
  const would = (done: string, todo: string) => (dry ? `Would ${todo}` : done);
  if (plan.action === 'create') {
    const events = plan.params.enabled_events;
    return [
      would(
        `Created a webhook endpoint for ${plan.params.url} at API version ${apiVersion}.`,
        `create a webhook endpoint for ${plan.params.url} at API version ${apiVersion}.`,
      ),
      plan.replaces
        ? `It replaces ${plan.replaces.id} (at ${plan.replaces.api_version ?? 'the account default'}), which stays until you delete it.`
        : null,
      `Events (${events.length}): ${events.join(', ')}`,
    ]
      .filter((l) => l !== null)
      .join('\n');
  }
  if (plan.action === 'none')
    return `Webhook endpoint ${plan.endpoint.id} (${plan.endpoint.url}) already sends exactly the events the worker needs.`;
  const changes = [
    plan.diff.missing.length > 0 ? `add ${plan.diff.missing.join(', ')}` : null,
    plan.diff.extra.length > 0 ? `remove ${plan.diff.extra.join(', ')}` : null,
    plan.urlChanged ? `move it from ${plan.endpoint.url} to ${plan.params.url}` : null,
    plan.endpoint.status !== 'enabled' ? 'enable it' : null,
  ].filter((c) => c !== null);
  return would(
    `Updated webhook endpoint ${plan.endpoint.id}: ${changes.join('; ')}.`,
    `update webhook endpoint ${plan.endpoint.id}: ${changes.join('; ')}.`,
  );
}

async function carryOut(stripe: Stripe, plan: EndpointPlan): Promise<void> {
  if (plan.action === 'create') {
    const created = await stripe.webhookEndpoints.create(plan.params);
    console.log(`\nEndpoint ${created.id}. Its signing secret, shown only this once:\n\n  ${created.secret}\n`);
    console.log(
      plan.replaces
        ? 'Add it to STRIPE_WEBHOOK_SECRET next to the old secret (comma-separated) and restart the web processes.'
        : 'Set STRIPE_WEBHOOK_SECRET to it and restart the web processes.',
    );
  } else if (plan.action === 'update') {
    await stripe.webhookEndpoints.update(plan.endpoint.id, plan.params);
  }
}

import { parseArgs } from 'node:util';
import Stripe from 'stripe';
import { describeStripeError, listPortalConfigurations, listWebhookEndpoints, openStripe } from '../setup/account.ts';
import { diagnose, hasProblems, keyIsLive } from '../setup/doctor.ts';
import { webhookEvents } from '../setup/webhook-events.ts';
import { UsageError, type Command } from './types.ts';

const MARK = { problem: 'PROBLEM', note: 'note   ', ok: 'ok     ' } as const;

export const doctorCommand: Command = {
  name: 'doctor',
  summary: "check the Stripe account's webhook endpoint and customer portal against what the worker needs",
  help: `Usage: dunning doctor [--url <https://host/webhooks/stripe>]

Reads the account's webhook endpoints and Billing Portal configurations through the Stripe API
and says what is wrong, in plain words: an endpoint at another API version than the worker's
(${Stripe.API_VERSION}), events missing or extra, a disabled endpoint, a test key against a
live endpoint (or the reverse), no portal configuration that lets customers update their card.
Also reminds you of the settings the API does not show (Smart Retries, Stripe's emails).

  --url   the worker's webhook URL; without it, endpoints marked by \`dunning setup\` or
          whose path ends in /webhooks/stripe are checked

Exits 0 when nothing is wrong, 1 when something is. Needs STRIPE_SECRET_KEY (read access is
enough).`,
  async run(argv, env) {
    const { values } = parseArgs({ args: argv, options: { url: { type: 'string' } }, strict: true });
    if (values.url !== undefined) {
      try {
        new URL(values.url);
      } catch {
        throw new UsageError(`--url: not a URL: "${values.url}"`);
      }
    }
    const { config, stripe } = openStripe(env);
    let endpoints: Stripe.WebhookEndpoint[];
    let portalConfigurations: Stripe.BillingPortal.Configuration[];
    try {
      endpoints = await listWebhookEndpoints(stripe);
      portalConfigurations = await listPortalConfigurations(stripe);
    } catch (err) {
      console.error(`dunning doctor: ${describeStripeError(err, 'reading the account').message}`);
      return 1;
    }
    const findings = diagnose({
      endpoints,
      portalConfigurations,
      keyLivemode: keyIsLive(config.stripeSecretKey!),
      wantedEvents: webhookEvents(),
      apiVersion: Stripe.API_VERSION,
      url: values.url ? new URL(values.url).href : null,
    });
    for (const f of findings) console.log(`${MARK[f.level]}  ${f.text}`);
    const bad = hasProblems(findings);
    console.log(bad ? '\nSomething needs fixing (see PROBLEM lines).' : '\nNothing wrong found.');
    return bad ? 1 : 0;
  },
};

/**
 * `GET /update-card?t=<token>`: the target of the update-card link in emails. The token is checked,
 * then a fresh Billing Portal session is made (through the process's shared Stripe throttle) and
 * the browser is sent there with a 303. Sessions are short-lived; this link lives
 * for UPDATE_CARD_LINK_DAYS, so a customer who reads the email next week still gets one click.
 */
import Stripe from 'stripe';
import type { ServerResponse } from 'node:http';
import { createCardLinkSigner, UPDATE_CARD_PATH, type CardLinkSigner } from '../card-link.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Locale } from '../reminders/localize.ts';
import type { StripeGateway } from '../stripe/charge.ts';
import { createStripeClient } from '../stripe/client.ts';
import { classifyPortalError, createPortalSession, PortalError } from '../stripe/portal.ts';
import { createThrottle } from '../stripe/throttle.ts';
import { pageLocale, renderPage, type PageKind } from './update-card-pages.ts';
import type { Routes } from './server.ts';

export interface UpdateCardDeps {
  signer: CardLinkSigner;
  gateway: StripeGateway;
  clock: Clock;
  config: Pick<Config, 'merchantName' | 'supportEmail' | 'defaultLocale' | 'billingPortalReturnUrl'>;
}

// Nothing but the inline style; no forms, frames or referrers: the URL holds a bearer token, and the
// Referrer-Policy also covers the redirect, so Stripe's page never sees our link.
const HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-robots-tag': 'noindex',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

const STATUS: Record<PageKind, number> = { invalid: 400, expired: 410, gone: 410, unavailable: 503 };

export function updateCardRoutes(deps: UpdateCardDeps): Routes {
  return {
    [UPDATE_CARD_PATH]: async (req, res, ctx) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { ...HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
        res.end('Method not allowed\n');
        return;
      }
      const locale = pageLocale(req.headers['accept-language'], deps.config.defaultLocale as Locale);
      const page = (kind: PageKind, extra: Record<string, string> = {}) => {
        const body = renderPage(kind, locale, deps.config);
        res.writeHead(STATUS[kind], {
          ...HEADERS,
          'content-type': 'text/html; charset=utf-8',
          'content-length': Buffer.byteLength(body),
          ...extra,
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      // The token is read here and nowhere logged: the request line logs the path without its query.
      const token = new URL(req.url ?? '/', 'http://localhost').searchParams.get('t') ?? '';
      const check = deps.signer.verify(token, deps.clock.now());
      if (!check.ok) {
        ctx.annotate(
          check.reason === 'expired' ? { link: 'expired', customerId: check.customerId } : { link: check.reason },
        );
        return page(check.reason === 'expired' ? 'expired' : 'invalid');
      }
      ctx.annotate({ customerId: check.customerId });
      // A HEAD (link checkers, mail scanners) learns the link is good without opening a session.
      if (req.method === 'HEAD') {
        ctx.annotate({ link: 'checked' });
        res.writeHead(200, { ...HEADERS, 'content-type': 'text/html; charset=utf-8' });
        res.end();
        return;
      }
      let url: string;
      try {
        url = await createPortalSession(deps.gateway, check.customerId, deps.config.billingPortalReturnUrl);
      } catch (err) {
        const e = classifyPortalError(err);
        if (customerGone(e)) {
          ctx.annotate({ link: 'customer_gone' });
          ctx.log.warn(
            { customerId: check.customerId, err: e.message },
            'update-card link: Stripe does not know this customer',
          );
          return page('gone');
        }
        ctx.annotate({ link: 'stripe_unavailable' });
        // Stripe busy or down passes; a refused key or a portal that is not enabled is ours to fix.
        if (e.transient && !e.configuration)
          ctx.log.warn(
            { customerId: check.customerId, err: e.message },
            'update-card link: Billing Portal session could not be created; the customer was asked to retry',
          );
        else
          ctx.log.error(
            { customerId: check.customerId, err: e.message },
            'update-card link: Stripe refused the Billing Portal session (check STRIPE_SECRET_KEY and that the customer portal is enabled in the Stripe dashboard)',
          );
        return page('unavailable', { 'retry-after': '60' });
      }
      ctx.annotate({ link: 'redirected' });
      redirect(res, url);
    },
  };
}

/**
 * The route as `dunning start` (web role) and the demo mount it: nothing without PUBLIC_URL. Pass
 * the process's gateway where it has one, so the clicks share the throttle with the workers.
 */
export function updateCardRoutesFor(config: Config, o: { clock: Clock; gateway?: StripeGateway | undefined }): Routes {
  if (!config.publicUrl || !config.stripeSecretKey) return {};
  const gateway = o.gateway ?? {
    stripe: createStripeClient(config),
    throttle: createThrottle(config.stripeRequestsPerSecond),
  };
  return updateCardRoutes({ signer: createCardLinkSigner(config.stripeSecretKey), gateway, clock: o.clock, config });
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { ...HEADERS, location, 'content-length': 0 });
  res.end();
}

/** Stripe answered that the customer does not exist (deleted, or of another account or mode). */
function customerGone(e: PortalError): boolean {
  const cause = e.cause;
  return cause instanceof Stripe.errors.StripeError && (cause.statusCode === 404 || cause.code === 'resource_missing');
}

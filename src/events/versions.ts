import Stripe from 'stripe';
import type { Logger } from '../log.ts';

/**
 * Stripe renders each event at the API version of the webhook endpoint that receives it, not at the
 * version of the SDK that reads it: WebhookEndpoint.api_version, "The API version that events are
 * rendered as for this webhook endpoint. You can't change this value after you create the endpoint." The worker reads objects at the SDK's pinned version; an event
 * at another version may lack fields it needs (before 2025-03-31.basil an invoice names its
 * subscription at top level and has no `parent`), and reading it as ours would silently lose them.
 */

/** The version this worker reads: the SDK's own pin, which every API call of ours uses. */
export const OUR_API_VERSION: string = Stripe.API_VERSION;

const VERSION_SHAPE = /^(\d{4}-\d{2}-\d{2})(\.[a-z_]+)?$/;

export type VersionVerdict =
  | { kind: 'ours' }
  /** A dated version no newer than ours: its shapes are documented in the API changelog. */
  | { kind: 'older'; version: string }
  /** Missing, malformed, or newer than the SDK: nothing is known about its shapes. */
  | { kind: 'unknown'; version: string };

export function versionOf(apiVersion: string | null | undefined): VersionVerdict {
  if (apiVersion === OUR_API_VERSION) return { kind: 'ours' };
  const version = apiVersion ?? '(none)';
  const m = VERSION_SHAPE.exec(apiVersion ?? '');
  const ours = VERSION_SHAPE.exec(OUR_API_VERSION);
  if (!m || !ours || m[1]! > ours[1]!) return { kind: 'unknown', version };
  return { kind: 'older', version };
}

/**
 * Whether the event's object must be read again at our version before a handler sees it. Invoices:
 * the fields we read moved between versions (`subscription` into `parent.subscription_details`,
 * `payment_intent` and `charge` into `payments`). Charges, PaymentIntents, customers, subscriptions
 * and payment methods keep the fields we read (decline codes and outcome, `invoice_settings`,
 * `status`, `pause_collection`, `cancellation_details`, `card`) in every version we know.
 */
export function needsReread(event: Stripe.Event): boolean {
  if (versionOf(event.api_version).kind === 'ours') return false;
  return (event.data.object as { object?: string }).object === 'invoice';
}

/** Logs one warning per API version other than ours that webhook deliveries arrive at. */
export function versionWarner(): (log: Logger, apiVersion: string | null | undefined) => void {
  const seen = new Set<string>();
  return (log, apiVersion) => {
    const v = versionOf(apiVersion);
    if (v.kind === 'ours' || seen.has(v.version)) return;
    seen.add(v.version);
    log.warn(
      { apiVersion: v.version, ours: OUR_API_VERSION, known: v.kind === 'older' },
      `a webhook endpoint sends events at Stripe API version ${v.version}; this worker reads ${OUR_API_VERSION}: create the endpoint anew at API version ${OUR_API_VERSION} (an endpoint's version cannot be changed); until then invoice events are read again from Stripe`,
    );
  };
}

/**
 * The event with its object replaced by the copy read at our version; the rest of the envelope
 * (id, type, `created`, `previous_attributes`) stays the event's. The cast: the SDK's union pairs
 * each event type with its object, which a replaced object of the same kind keeps.
 */
export function withObject(event: Stripe.Event, object: Stripe.Invoice): Stripe.Event {
  const envelope: Record<string, unknown> = { ...event, data: { ...event.data, object } };
  return envelope as unknown as Stripe.Event;
}

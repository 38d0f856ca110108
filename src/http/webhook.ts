import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PgBoss } from 'pg-boss';
import Stripe from 'stripe';
import type { Sql } from '../db.ts';
import { versionWarner } from '../events/versions.ts';
import { BodyTimeout, BodyTooLarge, ClientGone, readRawBody } from './body.ts';
import { createEventWriter, storeEvents, type EventWriterOptions } from './event-writer.ts';
import { unstorableReason } from './storable.ts';
import { sendJson, type Handler, type RequestContext, type Routes } from './server.ts';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface WebhookDeps {
  sql: Sql;
  boss: Pick<PgBoss, 'insert'>;
  /** Every secret currently valid (rotation, several endpoints); a delivery signed with any of them is accepted. */
  secrets: readonly string[];
  toleranceSeconds: number;
  /** A commit slower than this answers 503 (Stripe redelivers; the duplicate is harmless). */
  storeTimeoutMs?: number;
  batching?: EventWriterOptions;
}

export type Verification = { ok: true; event: Stripe.Event } | { ok: false; reason: string };

/**
 * Checks the signature against each secret on the raw bytes. A valid signature over a body that is
 * not a Stripe event is still refused.
 */
export function verifyDelivery(
  raw: Buffer,
  header: string | undefined,
  secrets: readonly string[],
  toleranceSeconds: number,
  now: () => number = Date.now,
): Verification {
  if (!header) return { ok: false, reason: 'missing Stripe-Signature header' };
  if (secrets.length === 0) return { ok: false, reason: 'no webhook secret configured' };
  // The SDK refuses only timestamps too far in the past; one too far in the future is as suspect
  // (a replay prepared ahead, or a clock far off) and is refused the same way.
  const signedAt = Number(/(?:^|,)\s*t=(\d+)/.exec(header)?.[1]);
  if (Number.isFinite(signedAt) && signedAt - now() / 1000 > toleranceSeconds)
    return { ok: false, reason: 'timestamp outside the tolerance' };
  let reason = 'signature does not match';
  for (const secret of secrets) {
    let event: unknown;
    try {
      event = Stripe.webhooks.constructEvent(raw, header, secret, toleranceSeconds);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
        if (/unable to extract|expected scheme/i.test(err.message)) reason = 'malformed Stripe-Signature header';
        else if (/outside the tolerance/i.test(err.message)) reason = 'timestamp outside the tolerance';
        continue;
      }
      return { ok: false, reason: 'body is not valid JSON' };
    }
    return isEvent(event) ? { ok: true, event } : { ok: false, reason: 'body is not a Stripe event' };
  }
  return { ok: false, reason };
}

function isEvent(v: unknown): v is Stripe.Event {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  const data = e.data as Record<string, unknown> | undefined;
  return (
    e.object === 'event' &&
    typeof e.id === 'string' &&
    e.id.length > 0 &&
    e.id.length <= 255 &&
    typeof e.type === 'string' &&
    typeof e.created === 'number' &&
    typeof e.livemode === 'boolean' &&
    typeof data === 'object' &&
    data !== null &&
    typeof data.object === 'object' &&
    data.object !== null
  );
}

/**
 * Stores one event and enqueues its processing in one transaction: a job exists exactly for each
 * stored event, and a duplicate id stores and enqueues nothing.
 */
export async function storeEvent(sql: Sql, boss: Pick<PgBoss, 'insert'>, event: Stripe.Event): Promise<boolean> {
  return (await storeEvents(sql, boss, [{ event, raw: JSON.stringify(event) }])).has(event.id);
}

export function webhookRoutes(deps: WebhookDeps): Routes {
  return { '/webhooks/stripe': webhookHandler(deps) };
}

export function webhookHandler(deps: WebhookDeps): Handler {
  const writer = createEventWriter(deps.sql, deps.boss, { timeoutMs: deps.storeTimeoutMs ?? 2_000, ...deps.batching });
  // Once per version for the process: the endpoint's version is the operator's to fix.
  const warnVersion = versionWarner();
  return async (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => {
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'POST' });
    let raw: Buffer;
    try {
      raw = await readRawBody(req, MAX_BODY_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        ctx.log.warn({ limit: MAX_BODY_BYTES }, 'webhook body too large');
        res.once('finish', () => req.socket.destroy());
        return sendJson(res, 413, { error: 'body larger than 1 MiB' }, { connection: 'close' });
      }
      if (err instanceof BodyTimeout) {
        ctx.log.warn({ reason: err.message }, 'webhook body too slow');
        res.once('finish', () => req.socket.destroy());
        return sendJson(res, 408, { error: err.message }, { connection: 'close' });
      }
      if (err instanceof ClientGone) {
        // Stripe redelivers what it could not send; a disconnect is routine, not an error of ours.
        ctx.log.debug({ reason: err.message }, 'webhook client disconnected');
        req.socket.destroy();
        return;
      }
      throw err;
    }
    const header = req.headers['stripe-signature'];
    const verdict = verifyDelivery(
      raw,
      typeof header === 'string' ? header : undefined,
      deps.secrets,
      deps.toleranceSeconds,
    );
    if (!verdict.ok) {
      ctx.log.warn({ reason: verdict.reason, bytes: raw.length }, 'webhook rejected');
      return sendJson(res, 400, { error: verdict.reason });
    }
    const event = verdict.event;
    ctx.annotate({ eventId: event.id, type: event.type });
    const unstorable = unstorableReason(event);
    if (unstorable) {
      ctx.log.warn({ reason: unstorable, bytes: raw.length }, 'webhook rejected: Postgres cannot store it');
      return sendJson(res, 400, { error: `event cannot be stored: ${unstorable}` });
    }
    warnVersion(ctx.log, event.api_version);
    try {
      const inserted = await writer.write(event, raw.toString('utf8'));
      // The request line says what happened: one log line per delivery, on the hot path.
      ctx.annotate({ duplicate: !inserted });
      return sendJson(res, 200, { received: true, duplicate: !inserted });
    } catch (err) {
      // Never 2xx for an event that may not be committed: Stripe redelivers, the duplicate is harmless.
      ctx.log.error(
        {
          eventId: event.id,
          type: event.type,
          setting: 'DATABASE_URL',
          err: { message: err instanceof Error ? err.message : String(err) },
        },
        'webhook event not stored',
      );
      return sendJson(res, 503, { error: 'temporarily unable to store the event' }, { 'retry-after': '5' });
    }
  };
}

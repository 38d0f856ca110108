import type Stripe from 'stripe';
import type { Tx } from '../db.ts';
import {
  enrichAttempt,
  insertStripeAttempt,
  refreshCaseDeclines,
  rememberCard,
  startedBy,
  STRIPE_CLOCK_SKEW_MS,
} from '../ledger.ts';
import { detailsOfCharge, NO_DETAILS } from '../stripe/read.ts';
import type { HandlerContext } from './context.ts';

/**
 * Puts every failed charge of an invoice on the ledger by its charge id, from the list Stripe gave
 * just before the event applied (every InvoicePayment's PaymentIntent, every charge of each). Run on
 * each `invoice.payment_failed`, so whichever of an invoice's failure events arrives, in whatever
 * order and however often, the ledger ends with one row per failed charge: the charge id is unique
 * on the ledger, so a charge is never counted twice, and a charge someone else made (the hosted
 * invoice page, the Dashboard, another tool, Stripe's own retries) is never mistaken for ours.
 *
 * Time plays no part in which charge a row is, with two exceptions that have no id to go by: a row
 * recorded without its charge (the list could not be read then) takes the failed charge of its
 * time, and a failure with no charge at all (3-D Secure, no payment method) is matched to the try
 * of its time as before.
 */

/** The failure's own ledger row, or the reason it cannot be recorded yet. */
export class OurAttemptUnresolved extends Error {
  constructor(invoiceId: string, attemptNos: number[], charges: string[]) {
    super(
      `invoice ${invoiceId}: failed charge(s) ${charges.join(', ')} may be our attempt #${attemptNos.join(', #')}'s, ` +
        'whose outcome is not recorded yet; the event is applied again once it is',
    );
    this.name = 'OurAttemptUnresolved';
  }
}

interface Row {
  id: number;
  attemptNo: number;
  source: string;
  status: string;
  chargeId: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  failureEventId: string | null;
  idempotencyKey: string | null;
}

async function ledgerRows(tx: Tx, invoiceId: string): Promise<Row[]> {
  const rows = await tx`
    select id, attempt_no, source, status, charge_id, started_at, finished_at, failure_event_id, idempotency_key
      from payment_attempts where invoice_id = ${invoiceId} order by attempt_no for update`;
  return rows.map((r) => ({
    id: Number(r.id),
    attemptNo: Number(r.attempt_no),
    source: r.source as string,
    status: r.status as string,
    chargeId: (r.charge_id as string | null) ?? null,
    startedAt: (r.started_at as Date | null) ?? null,
    finishedAt: (r.finished_at as Date | null) ?? null,
    failureEventId: (r.failure_event_id as string | null) ?? null,
    idempotencyKey: (r.idempotency_key as string | null) ?? null,
  }));
}

const ms = (ch: Stripe.Charge): number => ch.created * 1000;

/**
 * Records the invoice's failed charges and returns the ledger row of the failure this event
 * reports. Throws `OurAttemptUnresolved` when a charge not on the ledger may be one of our attempts
 * still waiting for Stripe's answer and the event cannot tell: the event is tried again shortly,
 * when the runner has recorded its charge (the charge id is unique on the ledger: recording it as
 * someone else's first would refuse the runner's own record).
 */
export async function recordFailedCharges(
  ctx: HandlerContext,
  c: { caseId: number; invoiceId: string; customerId: string },
  charges: readonly Stripe.Charge[],
): Promise<number> {
  const { tx } = ctx;
  const failed = charges
    .filter((ch) => ch.status === 'failed')
    .sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  const rows = await ledgerRows(tx, c.invoiceId);
  // On any invoice's row: a charge the time rules once gave to another invoice of the customer
  // stays there rather than be counted twice (the charge id is unique on the ledger).
  const ids = failed.map((ch) => ch.id);
  const elsewhere =
    ids.length === 0
      ? []
      : await tx`select charge_id, invoice_id from payment_attempts where charge_id in ${tx(ids)} and invoice_id <> ${c.invoiceId}`;
  for (const r of elsewhere) {
    ctx.log.warn(
      { invoiceId: c.invoiceId, chargeId: r.charge_id, onInvoice: r.invoice_id },
      "a failed charge of this invoice is on another invoice's ledger row; left there",
    );
  }
  const onLedger = new Set([
    ...rows.map((r) => r.chargeId).filter((id) => id !== null),
    ...elsewhere.map((r) => r.charge_id as string),
  ]);
  const unresolved = rows.filter((r) => r.source !== 'stripe' && (r.status === 'in_flight' || r.status === 'unknown'));
  const missing = failed.filter((ch) => !onLedger.has(ch.id));
  // A charge made after one of our unresolved attempts started may be that attempt's. One request
  // makes at most one charge, and the event of our own request says so: Event.request
  // "Information on the API request that triggers the event", its idempotency_key "The idempotency
  // key transmitted during the request".
  const mayBeOurs = missing.filter((ch) => unresolved.some((r) => startedBy(r.startedAt, new Date(ms(ch)))));
  const key = ctx.event.request?.idempotency_key ?? null;
  const ours = key === null ? undefined : unresolved.find((r) => r.idempotencyKey === key);
  if (mayBeOurs.length > (ours ? 1 : 0)) {
    throw new OurAttemptUnresolved(
      c.invoiceId,
      unresolved.map((r) => r.attemptNo),
      mayBeOurs.map((ch) => ch.id),
    );
  }
  let nextNo = Math.max(0, ...rows.map((r) => r.attemptNo)) + 1;
  const recorded: string[] = [];
  for (const ch of missing) {
    if (mayBeOurs.includes(ch)) continue;
    const d = detailsOfCharge(ch);
    const at = new Date(ms(ch));
    await rememberCard(tx, {
      paymentMethod: d.paymentMethod,
      customerId: c.customerId,
      fingerprint: d.cardFingerprint,
      brand: d.cardBrand,
      at,
    });
    // A Stripe try recorded without its charge (its event applied while the list could not be read).
    const bare = rows.find(
      (r) =>
        r.source === 'stripe' &&
        r.status === 'declined' &&
        r.chargeId === null &&
        r.startedAt !== null &&
        Math.abs(r.startedAt.getTime() - ms(ch)) <= STRIPE_CLOCK_SKEW_MS,
    );
    let id: number;
    if (bare) {
      await enrichAttempt(tx, bare.id, d);
      bare.chargeId = ch.id;
      id = bare.id;
    } else {
      id = await insertStripeAttempt(tx, {
        caseId: c.caseId,
        invoiceId: c.invoiceId,
        attemptNo: nextNo,
        at,
        eventId: null,
        details: d,
      });
      nextNo += 1;
      rows.push({
        id,
        attemptNo: nextNo - 1,
        source: 'stripe',
        status: 'declined',
        chargeId: ch.id,
        startedAt: at,
        finishedAt: at,
        failureEventId: null,
        idempotencyKey: null,
      });
    }
    // Its charge.failed may have come first and been parked: it is this row's now.
    await tx`update charge_failures set claimed_by = ${id} where charge_id = ${ch.id} and claimed_by is null`;
    recorded.push(ch.id);
  }
  if (recorded.length > 0) {
    ctx.log.info(
      {
        invoiceId: c.invoiceId,
        charges: recorded,
        paymentIntents: new Set(failed.map((ch) => ch.payment_intent)).size,
        failedCharges: failed.length,
        attemptCount: ctx.event.data.object.object === 'invoice' ? ctx.event.data.object.attempt_count : null,
      },
      "failed charges recorded from the invoice's payments",
    );
  }
  await refreshCaseDeclines(tx, c.caseId);
  return ownRow(ctx, c, failed, rows, ours);
}

/**
 * The row of the failure this event reports: the one it claimed before (the event applied again),
 * else the row of the failed charge of its time (Stripe sends `invoice.payment_failed` within
 * seconds of the charge), else, for a failure that made no charge, the try of its time or a row of
 * its own.
 */
async function ownRow(
  ctx: HandlerContext,
  c: { caseId: number; invoiceId: string; customerId: string },
  failed: readonly Stripe.Charge[],
  rows: Row[],
  ours: Row | undefined,
): Promise<number> {
  const { tx, event, at } = ctx;
  const mine = rows.find((r) => r.failureEventId === event.id);
  if (mine) return mine.id;
  if (ours) return claim(tx, ours, event.id);
  const near = failed
    .filter((ch) => Math.abs(ms(ch) - at.getTime()) <= STRIPE_CLOCK_SKEW_MS)
    .map((ch) => rows.find((r) => r.chargeId === ch.id))
    .filter((r): r is Row => r !== undefined);
  const row = near.reverse().find((r) => r.failureEventId === null) ?? near[0];
  if (row) return claim(tx, row, event.id);
  // No charge: the try stopped before the bank. The same failure under another event id (a copy:
  // two tries of one invoice within one second do not happen), else ours of its time without a
  // charge, else its own row.
  const copy = rows.find(
    (r) =>
      r.source === 'stripe' &&
      r.chargeId === null &&
      r.failureEventId !== null &&
      r.startedAt?.getTime() === at.getTime(),
  );
  if (copy) return copy.id;
  const skew = STRIPE_CLOCK_SKEW_MS;
  const chargeless = rows
    .filter(
      (r) =>
        r.chargeId === null &&
        r.failureEventId === null &&
        ['in_flight', 'unknown', 'declined'].includes(r.status) &&
        (r.startedAt === null || r.startedAt.getTime() <= at.getTime() + skew) &&
        (r.finishedAt === null || r.finishedAt.getTime() >= at.getTime() - skew),
    )
    .sort((a, b) => (b.startedAt?.getTime() ?? Infinity) - (a.startedAt?.getTime() ?? Infinity));
  if (chargeless[0]) return claim(tx, chargeless[0], event.id);
  const [customer] = await tx`
    select default_payment_method is null and default_source is null as "noCard" from customers where id = ${c.customerId}`;
  ctx.log.warn(
    {
      invoiceId: c.invoiceId,
      customerId: c.customerId,
      noCardOnFile: (customer?.noCard as boolean | undefined) ?? null,
    },
    'payment failure without a charge recorded: nothing reached the bank (no card on file, or the try waits for 3-D Secure)',
  );
  const id = await insertStripeAttempt(tx, {
    caseId: c.caseId,
    invoiceId: c.invoiceId,
    attemptNo: Math.max(0, ...rows.map((r) => r.attemptNo)) + 1,
    at,
    eventId: event.id,
    details: NO_DETAILS,
  });
  await refreshCaseDeclines(tx, c.caseId);
  return id;
}

async function claim(tx: Tx, row: Row, eventId: string): Promise<number> {
  if (row.failureEventId === null) {
    await tx`update payment_attempts set failure_event_id = ${eventId} where id = ${row.id} and failure_event_id is null`;
    row.failureEventId = eventId;
  }
  return row.id;
}

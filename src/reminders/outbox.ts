/** SQL over `reminder_outbox`. Every function takes the connection or transaction first. */
import type { Tx } from '../db.ts';
import type { ReminderKind } from './kinds.ts';
import { DUNNING_KINDS } from './kinds.ts';

export interface NewReminder {
  caseId: number | null;
  customerId: string;
  invoiceId: string | null;
  kind: ReminderKind;
  step: number;
  dedupeKey: string;
  dueAt: Date;
  sendAt: Date;
  locale: string;
  timeZone: string;
  data: Record<string, string | number | null>;
}

/** The new row's id, or null when this reminder already exists (a duplicate event, a retry). */
export async function insertReminder(tx: Tx, r: NewReminder): Promise<number | null> {
  const rows = await tx<{ id: number }[]>`
    insert into reminder_outbox (case_id, customer_id, invoice_id, kind, step, dedupe_key, due_at, send_at, locale, time_zone, data)
    values (${r.caseId}, ${r.customerId}, ${r.invoiceId}, ${r.kind}, ${r.step}, ${r.dedupeKey}, ${r.dueAt}, ${r.sendAt},
            ${r.locale}, ${r.timeZone}, ${tx.json(r.data)})
    on conflict (dedupe_key) do nothing
    returning id::float8 as id`;
  return rows[0]?.id ?? null;
}

/** Cancels what is still pending for a case; with `kinds`, only those. Returns how many. */
export async function cancelPendingForCase(
  tx: Tx,
  caseId: number,
  reason: string,
  at: Date,
  kinds: readonly ReminderKind[] = DUNNING_KINDS,
): Promise<number> {
  const rows = await tx`
    update reminder_outbox set status = 'cancelled', cancel_reason = ${reason}, updated_at = ${at}
    where case_id = ${caseId} and status = 'pending' and kind = any(${kinds as string[]})
    returning id`;
  return rows.length;
}

/**
 * Frees the outbox keys of a case's reminders cancelled with `reason`, so the same reminder can be
 * planned afresh (a case resumed after a pause). The rows stay, under a key nothing plans.
 */
export async function releaseCancelled(tx: Tx, caseId: number, reason: string, at: Date): Promise<number> {
  const rows = await tx`
    update reminder_outbox set dedupe_key = dedupe_key || '#released-' || id, updated_at = ${at}
    where case_id = ${caseId} and status = 'cancelled' and cancel_reason = ${reason} and dedupe_key not like '%#released-%'
    returning id`;
  return rows.length;
}

/**
 * Cancels the pending card-expiring reminders whose card renewals no longer charge (replaced as a
 * default, its subscription gone), and those about `changedCard`, whose details just changed (the
 * card updater's new expiry). A card saved beside the expiring one leaves its reminder alone.
 */
export async function cancelCardExpiringNoLongerDue(
  tx: Tx,
  customerId: string,
  changedCard: string | null,
  reason: string,
  at: Date,
): Promise<number> {
  const rows = await tx`
    update reminder_outbox set status = 'cancelled', cancel_reason = ${reason}, updated_at = ${at}
    where customer_id = ${customerId} and kind = 'card_expiring' and status = 'pending'
      and (data->>'paymentMethod' = ${changedCard} or not is_renewal_card(customer_id, data->>'paymentMethod'))
    returning id`;
  return rows.length;
}

export async function countSentForCase(tx: Tx, caseId: number): Promise<number> {
  const [row] = await tx<{ n: number }[]>`
    select count(*)::int as n from reminder_outbox where case_id = ${caseId} and status in ('sent', 'sending', 'merged')`;
  return row?.n ?? 0;
}

/** Everything the mailer needs to decide and render, read in one go. */
export interface SendContext {
  id: number;
  caseId: number | null;
  customerId: string;
  invoiceId: string | null;
  kind: ReminderKind;
  step: number;
  status: string;
  sendAt: Date;
  locale: string;
  timeZone: string;
  data: Record<string, string | number | null>;
  tries: number;
  /** When this reminder's temporary failures began; null while it has had none. */
  firstFailedAt: Date | null;
  email: string | null;
  customerName: string | null;
  customerDeleted: boolean;
  defaultPaymentMethod: string | null;
  /** For a card-expiry reminder: whether a live subscription still renews on its card; null when we know none of theirs. */
  reminderCardRenews: boolean | null;
  invoiceStatus: string | null;
  hostedInvoiceUrl: string | null;
  amountRemaining: number | null;
  currency: string | null;
  caseStatus: string | null;
  casePaused: boolean;
  /** Stripe's pause_collection on the invoice's subscription, as our copy has it. */
  pauseBehavior: string | null;
  pauseResumesAt: Date | null;
  caseAmount: number | null;
  declineCategory: string | null;
  nextAttemptAt: Date | null;
  /** When Stripe created the invoice, for the email's invoice summary. */
  invoiceCreated: Date | null;
  invoiceForSubscription: boolean;
}

/**
 * Share-locks the reminder's case before the mailer decides, so the event processor cannot close
 * the case (a payment) between that decision and its commit: either the payment is applied first
 * and the reminder is cancelled, or the decision stands and the payment is applied after it.
 */
export async function lockCaseOf(tx: Tx, id: number): Promise<void> {
  await tx`
    select d.id from dunning_cases d join reminder_outbox o on o.case_id = d.id
     where o.id = ${id} for share of d`;
}

/** Locks the row for the caller's transaction, so two mailers never both decide on it. */
export async function lockSendContext(tx: Tx, id: number): Promise<SendContext | null> {
  const rows = await tx<SendContext[]>`
    select o.id::float8 as id, o.case_id::float8 as "caseId", o.customer_id as "customerId", o.invoice_id as "invoiceId", o.kind, o.step,
           o.status, o.send_at as "sendAt", o.locale, o.time_zone as "timeZone", o.data, o.tries, o.first_failed_at as "firstFailedAt",
           c.email, c.name as "customerName", coalesce(c.deleted, false) as "customerDeleted",
           -- The card renewals charge: the subscription's, else the customer's default payment method or source.
           customer_renewal_card(o.customer_id) as "defaultPaymentMethod",
           -- A customer can renew on several cards: is the card-expiry reminder's card still one of them?
           -- Unknown (null) while our copy holds none of the customer's subscriptions (not backfilled).
           case when o.kind = 'card_expiring' and exists (select 1 from subscriptions x where x.customer_id = o.customer_id)
                then is_renewal_card(o.customer_id, o.data->>'paymentMethod') end as "reminderCardRenews",
           i.status as "invoiceStatus", i.hosted_invoice_url as "hostedInvoiceUrl",
           i.amount_remaining::float8 as "amountRemaining", i.currency,
           i.stripe_created as "invoiceCreated", (i.subscription_id is not null) as "invoiceForSubscription",
           d.status as "caseStatus", coalesce(d.paused, false) as "casePaused", d.amount::float8 as "caseAmount",
           d.last_decline_category as "declineCategory", d.next_attempt_at as "nextAttemptAt",
           s.pause_collection_behavior as "pauseBehavior", s.pause_collection_resumes_at as "pauseResumesAt"
    from reminder_outbox o
    left join customers c on c.id = o.customer_id
    left join invoices i on i.id = o.invoice_id
    left join subscriptions s on s.id = i.subscription_id
    left join dunning_cases d on d.id = o.case_id
    where o.id = ${id}
    for update of o skip locked`;
  return rows[0] ?? null;
}

/** Takes a pending row for sending. False when someone else took it or it is no longer pending. */
export async function markSending(tx: Tx, id: number, at: Date, leaseSeconds: number): Promise<boolean> {
  const rows = await tx`
    update reminder_outbox set status = 'sending', tries = tries + 1, claimed_at = ${at}, updated_at = ${at},
           send_lease_until = now() + make_interval(secs => ${leaseSeconds})
    where id = ${id} and status = 'pending' returning id`;
  return rows.length === 1;
}

export type StuckSend = Pick<
  SendContext,
  'id' | 'caseId' | 'customerId' | 'invoiceId' | 'kind' | 'caseAmount' | 'currency'
>;

/** Rows whose send outlived its lease (the worker died mid-send), locked for the caller. */
export async function lockStuckSends(tx: Tx, limit: number): Promise<StuckSend[]> {
  return tx<StuckSend[]>`
    select o.id::float8 as id, o.case_id::float8 as "caseId", o.customer_id as "customerId", o.invoice_id as "invoiceId", o.kind,
           d.amount::float8 as "caseAmount", d.currency
    from reminder_outbox o left join dunning_cases d on d.id = o.case_id
    where o.status = 'sending' and o.send_lease_until < now()
    order by o.send_lease_until
    limit ${limit}
    for update of o skip locked`;
}

export async function markSent(tx: Tx, id: number, at: Date, messageId: string | null): Promise<void> {
  await tx`
    update reminder_outbox set status = 'sent', sent_at = ${at}, message_id = ${messageId}, last_error = null, updated_at = ${at}
    where id = ${id}`;
}

/** Back to pending for another try; `failingSince` starts the retry horizon unless it already runs. */
export async function markRetry(
  tx: Tx,
  id: number,
  error: string,
  sendAt: Date,
  at: Date,
  failingSince: Date | null = null,
): Promise<void> {
  await tx`
    update reminder_outbox set status = 'pending', last_error = ${error}, send_at = ${sendAt}, updated_at = ${at},
           first_failed_at = coalesce(first_failed_at, ${failingSince})
    where id = ${id}`;
}

export async function markFailed(tx: Tx, id: number, error: string, at: Date): Promise<void> {
  await tx`
    update reminder_outbox set status = 'failed', last_error = ${error}, updated_at = ${at} where id = ${id}`;
}

export async function markCancelled(tx: Tx, id: number, reason: string, at: Date): Promise<void> {
  await tx`
    update reminder_outbox set status = 'cancelled', cancel_reason = ${reason}, updated_at = ${at}
    where id = ${id} and status = 'pending'`;
}

export async function reschedule(tx: Tx, id: number, sendAt: Date, at: Date): Promise<void> {
  await tx`update reminder_outbox set send_at = ${sendAt}, updated_at = ${at} where id = ${id}`;
}

/** The customer a row is for, read without a lock: the lock order starts with the customer. */
export async function customerOfReminder(tx: Tx, id: number): Promise<string | null> {
  const [row] = await tx<
    { customerId: string }[]
  >`select customer_id as "customerId" from reminder_outbox where id = ${id}`;
  return row?.customerId ?? null;
}

/** A pending reminder of the customer with what `cancelReason` needs to rule it out. */
export interface PendingOfCustomer {
  id: number;
  kind: ReminderKind;
  caseId: number | null;
  invoiceId: string | null;
  sendAt: Date;
  caseStatus: string | null;
  casePaused: boolean;
  invoiceStatus: string | null;
}

/**
 * Whether collection of invoice `i`'s subscription `s` is paused at Stripe at `at`: the SQL twin
 * of `pausedAt` (src/dunning/collection-pause.ts), for queries that list invoices.
 */
const stripePaused = (tx: Tx, at: Date) => tx`
  (s.pause_collection_behavior is not null
   and (s.pause_collection_resumes_at is null or s.pause_collection_resumes_at > ${at}))`;

/** The customer's pending reminders at `at`; a case paused by ops or at Stripe counts as paused. */
export async function pendingOfCustomer(tx: Tx, customerId: string, at: Date): Promise<PendingOfCustomer[]> {
  return tx<PendingOfCustomer[]>`
    select o.id::float8 as id, o.kind, o.case_id::float8 as "caseId", o.invoice_id as "invoiceId", o.send_at as "sendAt",
           d.status as "caseStatus", (coalesce(d.paused, false) or coalesce(${stripePaused(tx, at)}, false)) as "casePaused",
           i.status as "invoiceStatus"
    from reminder_outbox o
    left join dunning_cases d on d.id = o.case_id
    left join invoices i on i.id = o.invoice_id
    left join subscriptions s on s.id = i.subscription_id
    where o.customer_id = ${customerId} and o.status = 'pending'
    order by o.send_at, o.id`;
}

/** The customer's emails since `since`: sent, or being sent now (claimed). Merged rows are no email. */
export async function emailsOfCustomer(
  tx: Tx,
  customerId: string,
  since: Date,
): Promise<Array<{ at: Date; kind: ReminderKind }>> {
  return tx<Array<{ at: Date; kind: ReminderKind }>>`
    select coalesce(sent_at, claimed_at) as at, kind from reminder_outbox
    where customer_id = ${customerId} and status in ('sent', 'sending') and coalesce(sent_at, claimed_at) >= ${since}
    order by 1`;
}

/** Rows another email of the customer now covers; only those still pending. */
export async function markMerged(tx: Tx, ids: readonly number[], hostId: number, at: Date): Promise<number[]> {
  if (ids.length === 0) return [];
  const rows = await tx<{ id: number }[]>`
    update reminder_outbox set status = 'merged', merged_into = ${hostId}, merged_at = ${at}, updated_at = ${at}
    where id = any(${ids as number[]}::bigint[]) and status = 'pending'
    returning id::float8 as id`;
  return rows.map((r) => r.id);
}

/**
 * The host email goes back to pending for another try: what it had taken along is released to
 * pending at the same time, so whichever of them goes first takes the others again, and a host
 * cancelled meanwhile (its invoice paid) does not strand them.
 */
export async function releaseMerged(tx: Tx, hostId: number, sendAt: Date, at: Date): Promise<number[]> {
  const rows = await tx<{ id: number }[]>`
    update reminder_outbox set status = 'pending', merged_into = null, merged_at = null, send_at = greatest(send_at, ${sendAt}),
           updated_at = ${at}
    where merged_into = ${hostId} and status = 'merged'
    returning id::float8 as id`;
  return rows.map((r) => r.id);
}

/** The host failed for good: the reminders it carried did not reach the customer either. */
export async function failMerged(tx: Tx, hostId: number, error: string, at: Date): Promise<number> {
  const rows = await tx`
    update reminder_outbox set status = 'failed', last_error = ${`in the email that failed: ${error}`}, updated_at = ${at}
    where merged_into = ${hostId} and status = 'merged'
    returning id`;
  return rows.length;
}

/** Held back by the frequency cap: moved to `sendAt`, counted and explained for `dunning case` and the report. */
export async function deferByCap(tx: Tx, id: number, sendAt: Date, reason: string, at: Date): Promise<void> {
  await tx`
    update reminder_outbox set send_at = ${sendAt}, cap_deferrals = cap_deferrals + 1, updated_at = ${at},
           cap_note = ${`${reason}; held until ${sendAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`}
    where id = ${id}`;
}

/** An invoice an email lists, before formatting. */
export interface InvoiceOfEmail {
  invoiceId: string;
  currency: string;
  amountRemaining: number | null;
  caseAmount: number | null;
  created: Date | null;
  forSubscription: boolean;
  /** The final attempt a last chance merged into this email announced for the invoice, if any. */
  finalAttemptAt: Date | null;
}

/**
 * What an email about unpaid invoices lists besides its own: the invoices of the rows merged into
 * it and, with `allOpen`, every other invoice of the customer still being dunned (open case, not
 * paused, still owed), so each email states the whole balance and one card update settles it.
 */
export async function invoicesOfEmail(
  tx: Tx,
  hostId: number,
  customerId: string,
  allOpen: boolean,
  at: Date,
): Promise<InvoiceOfEmail[]> {
  return tx<InvoiceOfEmail[]>`
    select i.id as "invoiceId", i.currency, i.amount_remaining::float8 as "amountRemaining",
           d.amount::float8 as "caseAmount", i.stripe_created as created, (i.subscription_id is not null) as "forSubscription",
           (select min((o.data->>'attemptAt')::timestamptz) from reminder_outbox o
             where o.merged_into = ${hostId} and o.status = 'merged' and o.kind = 'last_chance'
               and o.invoice_id = i.id and o.data->>'attemptAt' is not null) as "finalAttemptAt"
    from invoices i
    left join dunning_cases d on d.invoice_id = i.id
    left join subscriptions s on s.id = i.subscription_id
    where i.id in (select o.invoice_id from reminder_outbox o where o.merged_into = ${hostId} and o.status = 'merged')
       or (${allOpen} and i.customer_id = ${customerId} and i.status = 'open' and i.amount_remaining > 0
           and d.status = 'open' and not coalesce(d.paused, false) and not coalesce(${stripePaused(tx, at)}, false))
    order by i.stripe_created, i.id`;
}

/** One reminder as ops see it in `dunning case`. */
export interface ReminderLine {
  kind: ReminderKind;
  step: number;
  status: string;
  sendAt: Date;
  sentAt: Date | null;
  tries: number;
  note: string | null;
}

/**
 * A merged row shows when the email that carried it went (and which one); a row the cap held back
 * says how often and why, next to any error or cancel reason.
 */
export async function remindersOfCase(sql: Tx, caseId: number): Promise<ReminderLine[]> {
  return sql<ReminderLine[]>`
    select o.kind, o.step, o.status, o.send_at as "sendAt", coalesce(o.sent_at, h.sent_at) as "sentAt", o.tries,
           reminder_outbox_note(o.id) as note
    from reminder_outbox o left join reminder_outbox h on h.id = o.merged_into
    where o.case_id = ${caseId} order by o.send_at, o.id`;
}

/** A permanent email failure, written on the case where ops look first. */
export async function recordCaseProblem(tx: Tx, caseId: number, problem: string, at: Date): Promise<void> {
  await tx`
    update dunning_cases set reminder_problem = ${problem}, reminder_problem_at = ${at}, updated_at = ${at}
    where id = ${caseId}`;
}

import { classifyDecline } from './dunning/declines.ts';
import type postgres from 'postgres';
import type { Tx } from './db.ts';
import { NO_DETAILS, type DeclineDetails } from './stripe/read.ts';

/**
 * The attempt ledger and its cases, shared by the event processor (events/) and the worker
 * (dunning/): opening and closing a case, recording Stripe's own attempts, filling in decline
 * details that arrive on other events, and the per-card view (which card stands behind a payment
 * method id, and when the card updater changed it).
 */
export function categoryOf(d: DeclineDetails): string {
  return classifyDecline(d).category;
}

export interface OpenCase {
  invoiceId: string;
  customerId: string;
  currency: string;
  amount: number;
  policyVersion: string;
  policyBody: unknown;
  /** The named policy (segment rules), `default` when none applied. */
  policyName?: string;
  cohort: 'smart' | 'holdout';
  at: Date;
}

/** One case per invoice: returns the case id and whether this call opened it. */
export async function openCase(tx: Tx, c: OpenCase): Promise<{ caseId: number; opened: boolean; status: string }> {
  await tx`insert into policies (version, body) values (${c.policyVersion}, ${tx.json(c.policyBody as never)})
           on conflict (version) do nothing`;
  const inserted = await tx`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, policy_name, cohort, opened_at, updated_at)
    values (${c.invoiceId}, ${c.customerId}, ${c.currency}, ${c.amount}, ${c.policyVersion}, ${c.policyName ?? 'default'},
            ${c.cohort}, ${c.at}, ${c.at})
    on conflict (invoice_id) do nothing
    returning id, status`;
  if (inserted[0]) return { caseId: Number(inserted[0].id), opened: true, status: 'open' };
  const rows = await tx`select id, status from dunning_cases where invoice_id = ${c.invoiceId} for update`;
  return { caseId: Number(rows[0]!.id), opened: false, status: rows[0]!.status as string };
}

export async function caseOfInvoice(
  tx: Tx,
  invoiceId: string,
): Promise<{ caseId: number; status: string; closedAt: Date | null } | null> {
  const rows = await tx`select id, status, closed_at from dunning_cases where invoice_id = ${invoiceId} for update`;
  const r = rows[0];
  return r
    ? { caseId: Number(r.id), status: r.status as string, closedAt: (r.closed_at as Date | null) ?? null }
    : null;
}

export interface LedgerEntry {
  id: number;
  attemptNo: number;
  source: string;
  status: string;
  chargeId: string | null;
  paymentIntentId: string | null;
  /** When the charge went to the bank (Stripe's own: its event's time); null for one never sent. */
  startedAt: Date | null;
}

/**
 * How far Stripe's clock (event and charge times) may be from ours. A charge of ours that started
 * more than this after a Stripe event's time cannot be what the event reports.
 */
export const STRIPE_CLOCK_SKEW_MS = 60_000;

/** Whether an attempt that started at `startedAt` (null: never started) had started by a Stripe time `at`. */
export function startedBy(startedAt: Date | null, at: Date): boolean {
  return startedAt === null || startedAt.getTime() <= at.getTime() + STRIPE_CLOCK_SKEW_MS;
}

/**
 * SQL condition: an attempt of ours on one of the customer's invoices is unresolved and had started
 * by `chargeAt`, so a charge made then may be its own. Such an attempt learns its charge only when it
 * finishes, and every try of an invoice shares one PaymentIntent, so the charge's time decides.
 */
export function ourAttemptMayOwn(tx: Tx, customerId: string, chargeAt: Date | postgres.PendingQuery<postgres.Row[]>) {
  return tx`exists (
    select 1 from payment_attempts a join invoices i on i.id = a.invoice_id
     where i.customer_id = ${customerId} and a.status in ('in_flight', 'unknown')
       and a.started_at <= ${chargeAt}::timestamptz + make_interval(secs => ${STRIPE_CLOCK_SKEW_MS / 1000}))`;
}

/**
 * The invoice's attempts in the order they reached the bank. That is not always attempt_no order:
 * a Stripe failure whose event arrives after our next charge gets the next free number.
 */
export async function ledgerOf(tx: Tx, invoiceId: string): Promise<LedgerEntry[]> {
  const rows = await tx`
    select id, attempt_no, source, status, charge_id, payment_intent_id, started_at
      from payment_attempts where invoice_id = ${invoiceId} order by started_at nulls last, attempt_no`;
  return rows.map((r) => ({
    id: Number(r.id),
    attemptNo: Number(r.attempt_no),
    source: r.source as string,
    status: r.status as string,
    chargeId: (r.charge_id as string | null) ?? null,
    paymentIntentId: (r.payment_intent_id as string | null) ?? null,
    startedAt: (r.started_at as Date | null) ?? null,
  }));
}

/**
 * Attempts that hold their invoice: planned, running, or with an outcome we do not know. At most
 * one per invoice at any moment, across all processes (the partial unique index
 * `payment_attempts_one_active`, sql/001_init.sql, enforces it); nothing else may be planned or
 * charged for the invoice while one stands.
 */
export const ACTIVE_STATUSES: readonly string[] = ['planned', 'in_flight', 'unknown'];

/** The invoice's active attempt (see `ACTIVE_STATUSES`), if any. */
export function activeAttempt<T extends { status: string }>(attempts: readonly T[]): T | undefined {
  return attempts.find((a) => ACTIVE_STATUSES.includes(a.status));
}

/** Statuses of attempts that reached (or may have reached) the bank. */
export const CHARGED = new Set(['in_flight', 'unknown', 'declined', 'succeeded']);

/**
 * The ledger row a failure event reports, claimed for it: the row it already claimed (the event
 * applied again), or the row of another copy of the same failure event, else a failed or unresolved try that no failure event has claimed and whose
 * charge may be the one the event reports: ours (the runner wrote it) or Stripe's recorded without
 * an event (backfill). Stripe sends `invoice.payment_failed` within the second of the failed
 * charge, so the try must have started by the event's time and not finished before it, give or
 * take the clocks' skew; of several, the latest started. Null when none: the failure is someone
 * else's try (the customer on the hosted page, the Dashboard, Stripe), to be recorded as new.
 */
export async function claimFailureRow(tx: Tx, invoiceId: string, eventId: string, at: Date): Promise<number | null> {
  const [mine] = await tx`select id from payment_attempts where failure_event_id = ${eventId}`;
  if (mine) return Number(mine.id);
  // The same failure under another event id (a copy of the event): Stripe's own try recorded from
  // an event of the very same time. Two real tries of one invoice within one second do not happen.
  const [same] = await tx`
    select id from payment_attempts
     where invoice_id = ${invoiceId} and source = 'stripe' and failure_event_id is not null and started_at = ${at}
     limit 1`;
  if (same) return Number(same.id);
  const skew = STRIPE_CLOCK_SKEW_MS / 1000;
  const rows = await tx`
    update payment_attempts set failure_event_id = ${eventId}
     where id = (
       select id from payment_attempts
        where invoice_id = ${invoiceId} and failure_event_id is null and status in ('in_flight', 'unknown', 'declined')
          and (started_at is null or started_at <= ${at}::timestamptz + make_interval(secs => ${skew}))
          and (finished_at is null or finished_at >= ${at}::timestamptz - make_interval(secs => ${skew}))
        order by started_at desc nulls last, attempt_no desc limit 1
        for update)
    returning id`;
  return rows[0] ? Number(rows[0].id) : null;
}

export async function insertStripeAttempt(
  tx: Tx,
  /** `eventId`: the event that reported the failure; null when backfill read it from the API. */
  a: {
    caseId: number;
    invoiceId: string;
    attemptNo: number;
    at: Date;
    eventId: string | null;
    details: DeclineDetails;
  },
): Promise<number> {
  const d = a.details;
  const rows = await tx`
    insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at,
      payment_method, card_fingerprint, card_brand, charge_id, payment_intent_id, decline_code, failure_code, advice_code,
      network_advice_code, network_decline_code, decline_category, failure_message, stripe_event_id, failure_event_id)
    values (${a.caseId}, ${a.invoiceId}, ${a.attemptNo}, 'stripe', 'declined', ${a.at}, ${a.at},
      ${d.paymentMethod}, ${d.cardFingerprint ?? null}, ${d.cardBrand}, ${d.chargeId}, ${d.paymentIntentId}, ${d.declineCode}, ${d.failureCode},
      ${d.adviceCode}, ${d.networkAdviceCode}, ${d.networkDeclineCode}, ${categoryOf(d)}, ${d.failureMessage}, ${a.eventId},
      ${a.eventId})
    returning id`;
  return Number(rows[0]!.id);
}

/** Ledger columns that can change a plan: what the bank said, and about which card. */
const DECIDING = [
  'decline_code',
  'failure_code',
  'advice_code',
  'network_advice_code',
  'network_decline_code',
  'payment_method',
  'card_fingerprint',
  'card_brand',
] as const;

export interface Enriched {
  caseId: number | null;
  invoiceId: string;
  /** A declined attempt gained a detail that can change its plan; false for a redelivery. */
  declineChanged: boolean;
}

/**
 * Fills the gaps of an attempt with late details; never overwrites what the attempt already knows
 * (the runner records its own charge's outcome first-hand).
 */
export async function enrichAttempt(tx: Tx, attemptId: number, d: DeclineDetails): Promise<Enriched | null> {
  const [before] = await tx`select * from payment_attempts where id = ${attemptId} for update`;
  if (!before) return null;
  const rows = await tx`
    update payment_attempts set
      charge_id = coalesce(charge_id, ${d.chargeId}),
      payment_intent_id = coalesce(payment_intent_id, ${d.paymentIntentId}),
      payment_method = coalesce(payment_method, ${d.paymentMethod}),
      card_fingerprint = coalesce(card_fingerprint, ${d.cardFingerprint ?? null}),
      card_brand = coalesce(card_brand, ${d.cardBrand}),
      decline_code = coalesce(decline_code, ${d.declineCode}),
      failure_code = coalesce(failure_code, ${d.failureCode}),
      advice_code = coalesce(advice_code, ${d.adviceCode}),
      network_advice_code = coalesce(network_advice_code, ${d.networkAdviceCode}),
      network_decline_code = coalesce(network_decline_code, ${d.networkDeclineCode}),
      failure_message = coalesce(failure_message, ${d.failureMessage})
    where id = ${attemptId}
    returning *`;
  const r = rows[0]!;
  const caseId = r.case_id === null ? null : Number(r.case_id);
  const result: Enriched = { caseId, invoiceId: r.invoice_id as string, declineChanged: false };
  if (r.status !== 'declined') return result;
  const merged: DeclineDetails = {
    chargeId: r.charge_id as string | null,
    paymentIntentId: r.payment_intent_id as string | null,
    paymentMethod: r.payment_method as string | null,
    cardFingerprint: r.card_fingerprint as string | null,
    cardBrand: r.card_brand as string | null,
    declineCode: r.decline_code as string | null,
    failureCode: r.failure_code as string | null,
    adviceCode: r.advice_code as string | null,
    networkAdviceCode: r.network_advice_code as string | null,
    networkDeclineCode: r.network_decline_code as string | null,
    failureMessage: r.failure_message as string | null,
  };
  await tx`update payment_attempts set decline_category = ${categoryOf(merged)} where id = ${attemptId}`;
  if (caseId !== null) await refreshCaseDeclines(tx, caseId);
  result.declineChanged = DECIDING.some((k) => before[k] !== r[k]);
  return result;
}

/**
 * The case's first and last decline, in the order they happened, whichever order their events
 * arrived in. Of the default card only: reminders, the billing status and ops read these as the
 * story of the card the customer must fix; a backup card's declines stay on the ledger.
 */
export async function refreshCaseDeclines(tx: Tx, caseId: number): Promise<void> {
  await tx`
    update dunning_cases c set
      first_decline_code = f.code, first_decline_category = f.category,
      last_decline_code = l.code, last_decline_category = l.category
    from
      (select coalesce(decline_code, failure_code) as code, decline_category as category from payment_attempts
        where case_id = ${caseId} and status = 'declined' and source <> 'backup_card'
        order by started_at asc nulls last, attempt_no asc limit 1) f,
      (select coalesce(decline_code, failure_code) as code, decline_category as category from payment_attempts
        where case_id = ${caseId} and status = 'declined' and source <> 'backup_card'
        order by started_at desc nulls first, attempt_no desc limit 1) l
    where c.id = ${caseId}`;
}

/** Parks decline details whose attempt we cannot name yet. */
export async function parkChargeFailure(
  tx: Tx,
  customerId: string | null,
  created: Date,
  d: DeclineDetails,
): Promise<void> {
  if (!d.chargeId) return;
  await tx`
    insert into charge_failures (charge_id, payment_intent_id, customer_id, created, details)
    values (${d.chargeId}, ${d.paymentIntentId}, ${customerId}, ${created}, ${tx.json(d as never)})
    on conflict (charge_id) do update set
      payment_intent_id = coalesce(charge_failures.payment_intent_id, excluded.payment_intent_id),
      details = jsonb_strip_nulls(excluded.details) || jsonb_strip_nulls(charge_failures.details)`;
}

/**
 * Claims the parked failure that belongs to a new Stripe attempt: by PaymentIntent when the invoice
 * names it, else the customer's latest unclaimed failure within the hour before the invoice event
 * (Stripe sends charge.failed just before invoice.payment_failed); never one made after the event.
 * Never a charge the ledger already holds, one whose PaymentIntent is another invoice's, nor one an
 * unresolved attempt of ours may have made: such an attempt knows its charge only once it finishes,
 * so the charge's time decides (made after one of the customer's attempts started, it may be ours).
 */
export async function claimChargeFailure(
  tx: Tx,
  q: { invoiceId: string; paymentIntentId: string | null; customerId: string; before: Date; attemptId: number },
): Promise<DeclineDetails | null> {
  const from = new Date(q.before.getTime() - 3600_000);
  const to = new Date(q.before.getTime() + STRIPE_CLOCK_SKEW_MS);
  const notOurs = tx`
    f.created <= ${to}
    and not exists (select 1 from payment_attempts a where a.charge_id = f.charge_id)
    and (f.payment_intent_id is null or not exists (
          select 1 from payment_attempts a where a.payment_intent_id = f.payment_intent_id and a.invoice_id <> ${q.invoiceId}))
    and not ${ourAttemptMayOwn(tx, q.customerId, tx`f.created`)}`;
  const rows = q.paymentIntentId
    ? await tx`select charge_id, details from charge_failures f where payment_intent_id = ${q.paymentIntentId}
                 and claimed_by is null and ${notOurs} order by created desc limit 1 for update`
    : await tx`select charge_id, details from charge_failures f where customer_id = ${q.customerId}
                 and claimed_by is null and created >= ${from} and ${notOurs}
                 order by created desc limit 1 for update`;
  const r = rows[0];
  if (!r) return null;
  await tx`update charge_failures set claimed_by = ${q.attemptId} where charge_id = ${r.charge_id as string}`;
  return { ...NO_DETAILS, ...(r.details as Partial<DeclineDetails>) };
}

export type CloseStatus = 'recovered' | 'lost' | 'closed';
export type RecoveryPath =
  'scheduled_retry' | 'card_update_retry' | 'backup_card_retry' | 'manual_retry' | 'customer_paid' | 'paid_outside';

/** The recovery path a paying charge of ours gives the case, by the attempt's source. */
export const PATH_OF_SOURCE: Readonly<Record<string, RecoveryPath>> = {
  scheduled: 'scheduled_retry',
  card_update: 'card_update_retry',
  backup_card: 'backup_card_retry',
  manual: 'manual_retry',
};

/**
 * Who recovered the money. A charge of ours that matches the payment, or that was the last thing
 * to reach the bank without a decline, gets the credit; otherwise the customer paid by themselves,
 * through Stripe (hosted page) or outside it.
 */
export function recoveryPath(ledger: LedgerEntry[], paidChargeId: string | null, paidOffStripe: boolean): RecoveryPath {
  if (paidChargeId) {
    const match = ledger.find((a) => a.chargeId === paidChargeId);
    if (match) return PATH_OF_SOURCE[match.source] ?? 'customer_paid';
  }
  const reached = ledger.filter((a) => CHARGED.has(a.status));
  const last = reached[reached.length - 1];
  if (last && last.status !== 'declined' && PATH_OF_SOURCE[last.source]) return PATH_OF_SOURCE[last.source]!;
  return paidOffStripe ? 'paid_outside' : 'customer_paid';
}

export interface CloseCase {
  status: CloseStatus;
  reason: string;
  at: Date;
  recoveryPath?: RecoveryPath;
  /**
   * The invoice's `amount_paid` as Stripe reported it with the payment: everything ever paid on it,
   * including any part paid before the first failure. Defaults to our copy of the invoice.
   */
  invoicePaid?: number;
}

/**
 * Closes an open case; a case already closed stays as it is (returns false). One implementation
 * for the processor and the runner, so both close by the same rules. `at` comes from the
 * worker's clock (runner) or Stripe's event time (processor): when the two disagree, `at` can fall
 * before `opened_at`, so the close time is clamped to it. The open span [opened_at, closed_at)
 * must not be negative: the reports' GiST index on it refuses such a row, which would make the
 * close fail, and a negative span would be a negative time to recover.
 *
 * `recovered_amount` is the part of the case amount paid while the case was open. The case amount
 * is what was still due at the first failure (amount_due - amount_paid then), so what had been paid
 * before is amount_due - amount; the rest of amount_paid came in during dunning, and never more than
 * the case amount. A recovered case records it as its recovery; a lost case records what was paid
 * in part before it was given up (null when nothing), so "lost" is the case amount minus that.
 * A credit note that lowers amount_due during dunning makes "paid before" look smaller; amount_paid
 * then still bounds the result from above, so it errs only when both happen on one invoice.
 */
export async function closeCase(tx: Tx, caseId: number, c: CloseCase): Promise<boolean> {
  const rows = await tx`
    update dunning_cases d set
      status = ${c.status}, closed_at = greatest(${c.at}::timestamptz, d.opened_at), close_reason = ${c.reason},
      recovery_path = ${c.recoveryPath ?? null},
      recovered_amount = (
        select case ${c.status}::text when 'recovered' then p.in_dunning when 'lost' then nullif(p.in_dunning, 0) end
        from (select least(d.amount, greatest(0, coalesce(${c.invoicePaid ?? null}::bigint, i.amount_paid) - greatest(0, i.amount_due - d.amount))) as in_dunning
              from invoices i where i.id = d.invoice_id) p),
      next_attempt_at = null, next_attempt_reason = null, updated_at = ${c.at}
    where d.id = ${caseId} and d.status = 'open'
    returning d.id`;
  return rows.length > 0;
}

export interface PaymentMethodCard {
  paymentMethod: string;
  fingerprint: string | null;
  brand: string | null;
}

/** What we know of the cards behind the customer's payment methods. */
export async function cardsOf(tx: Tx, customerId: string): Promise<PaymentMethodCard[]> {
  const rows = await tx<PaymentMethodCard[]>`
    select payment_method as "paymentMethod", fingerprint, brand from payment_method_cards where customer_id = ${customerId}`;
  return [...rows];
}

/**
 * Remembers the card behind a payment method (fingerprint, brand), as a charge, a decline or a
 * payment_method event reported it at `at`; a newer report wins, and a missing field never erases one.
 */
export async function rememberCard(
  tx: Tx,
  c: {
    paymentMethod: string | null;
    customerId: string | null;
    fingerprint: string | null;
    brand: string | null;
    at: Date;
  },
): Promise<void> {
  if (!c.paymentMethod || (!c.fingerprint && !c.brand)) return;
  await tx`
    insert into payment_method_cards as p (payment_method, customer_id, fingerprint, brand, updated_at)
    values (${c.paymentMethod}, ${c.customerId}, ${c.fingerprint}, ${c.brand}, ${c.at})
    on conflict (payment_method) do update set
      customer_id = coalesce(excluded.customer_id, p.customer_id),
      fingerprint = case when excluded.updated_at >= p.updated_at then coalesce(excluded.fingerprint, p.fingerprint)
                         else coalesce(p.fingerprint, excluded.fingerprint) end,
      brand = case when excluded.updated_at >= p.updated_at then coalesce(excluded.brand, p.brand)
                   else coalesce(p.brand, excluded.brand) end,
      updated_at = greatest(p.updated_at, excluded.updated_at)`;
}

/** When Stripe's card updater last changed each of the customer's payment methods. */
export async function cardUpdatesOf(tx: Tx, customerId: string): Promise<Map<string, Date>> {
  const rows = await tx<{ paymentMethod: string; updatedAt: Date }[]>`
    select payment_method as "paymentMethod", updated_at as "updatedAt" from payment_method_updates where customer_id = ${customerId}`;
  return new Map(rows.map((r) => [r.paymentMethod, r.updatedAt]));
}

export async function recordCardUpdate(tx: Tx, paymentMethod: string, customerId: string, at: Date): Promise<void> {
  await tx`
    insert into payment_method_updates as u (payment_method, customer_id, updated_at) values (${paymentMethod}, ${customerId}, ${at})
    on conflict (payment_method) do update set updated_at = greatest(u.updated_at, excluded.updated_at), customer_id = excluded.customer_id`;
}

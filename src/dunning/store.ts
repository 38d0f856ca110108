import type { Tx } from '../db.ts';
import { ACTIVE_STATUSES, rememberCard } from '../ledger.ts';
import type { CollectionPause } from './collection-pause.ts';
import type { SavedCard, SavedCards } from './backup-cards.ts';

/** SQL for dunning cases and the attempt ledger. Every function takes the connection first. */

export type AttemptSource = 'stripe' | 'scheduled' | 'card_update' | 'manual' | 'backup_card';
export type AttemptStatus =
  'planned' | 'in_flight' | 'succeeded' | 'declined' | 'not_sent' | 'unknown' | 'skipped' | 'cancelled';

export interface CaseRow {
  id: number;
  invoiceId: string;
  customerId: string;
  currency: string;
  amount: number;
  status: 'open' | 'recovered' | 'lost' | 'closed';
  policyVersion: string;
  /** The named policy the case opened with (segment rules), `default` when none applied. */
  policyName: string;
  cohort: 'smart' | 'holdout';
  openedAt: Date;
  /** Where the dunning window starts: the first failure, or later for an invoice taken over by backfill. */
  windowStartsAt: Date;
  closedAt: Date | null;
  paused: boolean;
  nextAttemptAt: Date | null;
  nextAttemptReason: string | null;
  finalAction: string | null;
}

export interface AttemptRow {
  id: number;
  caseId: number | null;
  invoiceId: string;
  attemptNo: number;
  source: AttemptSource;
  status: AttemptStatus;
  plannedAt: Date | null;
  planReason: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  paymentMethod: string | null;
  /** The card's fingerprint when Stripe gave it: the same card under another payment method id. */
  cardFingerprint: string | null;
  cardBrand: string | null;
  chargeId: string | null;
  declineCode: string | null;
  failureCode: string | null;
  adviceCode: string | null;
  networkAdviceCode: string | null;
  networkDeclineCode: string | null;
  declineCategory: string | null;
  failureMessage: string | null;
  idempotencyKey: string | null;
  requestTries: number;
  /** The pg-boss job sent last for this attempt. */
  jobId: string | null;
  /** Set by each claim: the holder writes its result only while this is still its own. */
  leaseToken: string | null;
  /**
   * Real time its charge request first left (null: never sent, or sent by a worker from before
   * migration 024); the idempotency key's age counts from it (see `keyLifeStart` in the runner).
   */
  firstSentAt: Date | null;
  /** Real time its latest charge request left (null: none recorded); a charge of it is no later than that request. */
  lastSentAt: Date | null;
  createdAt: Date;
}

type Row = Record<string, unknown>;

function toCase(r: Row): CaseRow {
  return {
    id: Number(r.id),
    invoiceId: r.invoice_id as string,
    customerId: r.customer_id as string,
    currency: r.currency as string,
    amount: Number(r.amount),
    status: r.status as CaseRow['status'],
    policyVersion: r.policy_version as string,
    policyName: (r.policy_name as string | undefined) ?? 'default',
    cohort: r.cohort as CaseRow['cohort'],
    openedAt: r.opened_at as Date,
    windowStartsAt: ((r.window_starts_at as Date | null) ?? r.opened_at) as Date,
    closedAt: (r.closed_at as Date | null) ?? null,
    paused: r.paused as boolean,
    nextAttemptAt: (r.next_attempt_at as Date | null) ?? null,
    nextAttemptReason: (r.next_attempt_reason as string | null) ?? null,
    finalAction: (r.final_action as string | null) ?? null,
  };
}

function toAttempt(r: Row): AttemptRow {
  const s = (k: string) => (r[k] as string | null) ?? null;
  return {
    id: Number(r.id),
    caseId: r.case_id === null ? null : Number(r.case_id),
    invoiceId: r.invoice_id as string,
    attemptNo: Number(r.attempt_no),
    source: r.source as AttemptSource,
    status: r.status as AttemptStatus,
    plannedAt: (r.planned_at as Date | null) ?? null,
    planReason: s('plan_reason'),
    startedAt: (r.started_at as Date | null) ?? null,
    finishedAt: (r.finished_at as Date | null) ?? null,
    paymentMethod: s('payment_method'),
    cardFingerprint: s('card_fingerprint'),
    cardBrand: s('card_brand'),
    chargeId: s('charge_id'),
    declineCode: s('decline_code'),
    failureCode: s('failure_code'),
    adviceCode: s('advice_code'),
    networkAdviceCode: s('network_advice_code'),
    networkDeclineCode: s('network_decline_code'),
    declineCategory: s('decline_category'),
    failureMessage: s('failure_message'),
    idempotencyKey: s('idempotency_key'),
    requestTries: Number(r.request_tries ?? 0),
    jobId: s('job_id'),
    leaseToken: s('lease_token'),
    firstSentAt: (r.first_sent_at as Date | null) ?? null,
    lastSentAt: (r.last_sent_at as Date | null) ?? null,
    createdAt: r.created_at as Date,
  };
}

export async function caseById(tx: Tx, caseId: number, lock = false): Promise<CaseRow | null> {
  const rows = lock
    ? await tx`select * from dunning_cases where id = ${caseId} for update`
    : await tx`select * from dunning_cases where id = ${caseId}`;
  return rows[0] ? toCase(rows[0]) : null;
}

export async function caseByInvoice(tx: Tx, invoiceId: string, lock = false): Promise<CaseRow | null> {
  const rows = lock
    ? await tx`select * from dunning_cases where invoice_id = ${invoiceId} for update`
    : await tx`select * from dunning_cases where invoice_id = ${invoiceId}`;
  return rows[0] ? toCase(rows[0]) : null;
}

export async function openCasesOfCustomer(tx: Tx, customerId: string): Promise<CaseRow[]> {
  const rows = await tx`select * from dunning_cases where customer_id = ${customerId} and status = 'open' order by id`;
  return rows.map(toCase);
}

export async function attemptsOf(tx: Tx, invoiceId: string): Promise<AttemptRow[]> {
  const rows = await tx`select * from payment_attempts where invoice_id = ${invoiceId} order by attempt_no`;
  return rows.map(toAttempt);
}

/**
 * The customer's attempts on its other invoices that reached (or may have reached) the bank: the
 * per-card side of the ledger (never-retry answers and network limits are per card).
 */
export async function customerAttemptsBesides(tx: Tx, customerId: string, invoiceId: string): Promise<AttemptRow[]> {
  const rows = await tx`
    select a.* from payment_attempts a join invoices i on i.id = a.invoice_id
     where i.customer_id = ${customerId} and a.invoice_id <> ${invoiceId}
       and a.status in ('in_flight', 'unknown', 'declined', 'succeeded')
     order by a.started_at nulls last, a.id`;
  return rows.map(toAttempt);
}

/** The customer's saved cards as last listed from Stripe; null when never listed. */
export async function savedCardsOf(tx: Tx, customerId: string): Promise<SavedCards | null> {
  const [listing] = await tx`select listed_at from saved_card_listings where customer_id = ${customerId}`;
  if (!listing) return null;
  const rows = await tx`select * from saved_cards where customer_id = ${customerId} order by payment_method`;
  return {
    listedAt: listing.listed_at as Date,
    cards: rows.map((r) => ({
      paymentMethod: r.payment_method as string,
      card: (r.fingerprint as string | null) ?? (r.payment_method as string),
      brand: (r.brand as string | null) ?? null,
      last4: (r.last4 as string | null) ?? null,
      expMonth: (r.exp_month as number | null) ?? null,
      expYear: (r.exp_year as number | null) ?? null,
      createdAt: r.created_at as Date,
    })),
  };
}

/** A saved card Stripe no longer lets us charge (removed by the customer): out of the listing. */
export async function forgetSavedCard(tx: Tx, paymentMethod: string): Promise<void> {
  await tx`delete from saved_cards where payment_method = ${paymentMethod}`;
}

/**
 * Replaces what we hold of the customer's saved cards with a fresh listing, and remembers each
 * card's identity and brand for the per-card ledger. An older listing never overwrites a newer one.
 */
export async function replaceSavedCards(
  tx: Tx,
  customerId: string,
  cards: readonly SavedCard[],
  listedAt: Date,
): Promise<boolean> {
  const [fresh] = await tx`
    insert into saved_card_listings as l (customer_id, listed_at) values (${customerId}, ${listedAt})
    on conflict (customer_id) do update set listed_at = excluded.listed_at where l.listed_at <= excluded.listed_at
    returning customer_id`;
  if (!fresh) return false;
  await tx`delete from saved_cards where customer_id = ${customerId}`;
  for (const c of cards) {
    const fingerprint = c.card === c.paymentMethod ? null : c.card;
    await tx`
      insert into saved_cards (payment_method, customer_id, fingerprint, brand, last4, exp_month, exp_year, created_at)
      values (${c.paymentMethod}, ${customerId}, ${fingerprint}, ${c.brand}, ${c.last4}, ${c.expMonth}, ${c.expYear}, ${c.createdAt})
      on conflict (payment_method) do update set customer_id = excluded.customer_id, fingerprint = excluded.fingerprint,
        brand = excluded.brand, last4 = excluded.last4, exp_month = excluded.exp_month, exp_year = excluded.exp_year,
        created_at = excluded.created_at`;
    await rememberCard(tx, { paymentMethod: c.paymentMethod, customerId, fingerprint, brand: c.brand, at: listedAt });
  }
  return true;
}

export async function attemptById(tx: Tx, attemptId: number): Promise<AttemptRow | null> {
  const rows = await tx`select * from payment_attempts where id = ${attemptId}`;
  return rows[0] ? toAttempt(rows[0]) : null;
}

export interface PlannedAttempt {
  caseId: number;
  invoiceId: string;
  source: AttemptSource;
  plannedAt: Date;
  reason: string;
  paymentMethod: string | null;
  /** The id of the job that will run it, chosen before the job is sent (see `sendAttemptJob`). */
  jobId: string;
}

/**
 * Inserts a `planned` attempt with the next free number and its idempotency key. Returns null
 * when the invoice already has an active attempt (the partial unique index decides, so two
 * processes planning at once get one row). A number taken by a concurrent insert is retried.
 */
export async function insertPlannedAttempt(tx: Tx, p: PlannedAttempt): Promise<AttemptRow | null> {
  for (let round = 0; round < 3; round += 1) {
    // Numbered in the statement itself: one round trip, and the key follows the number.
    const rows = await tx`
      insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, planned_at, plan_reason, payment_method, idempotency_key, job_id)
      select ${p.caseId}, ${p.invoiceId}, n, ${p.source}, 'planned', ${p.plannedAt}, ${p.reason}, ${p.paymentMethod},
             'dunning:' || ${p.invoiceId}::text || ':' || n, ${p.jobId}::uuid
        from (select coalesce(max(attempt_no), 0) + 1 as n from payment_attempts where invoice_id = ${p.invoiceId}) next
      on conflict do nothing
      returning *`;
    if (rows[0]) return toAttempt(rows[0]);
    const [active] = await tx`
      select 1 from payment_attempts where invoice_id = ${p.invoiceId} and status = any(${ACTIVE_STATUSES})`;
    if (active) return null;
  }
  throw new Error(`cannot number a new attempt for invoice ${p.invoiceId}: attempt numbers keep colliding`);
}

export async function setNextAttempt(
  tx: Tx,
  caseId: number,
  at: Date | null,
  reason: string | null,
  now: Date,
): Promise<void> {
  await tx`update dunning_cases set next_attempt_at = ${at}, next_attempt_reason = ${reason}, updated_at = ${now} where id = ${caseId}`;
}

/**
 * Takes an attempt for execution. Only one worker wins: the update is guarded by the status, and an
 * `in_flight` row is taken over only once its holder's lease ran out (that holder crashed).
 */
export async function claimAttempt(
  tx: Tx,
  attemptId: number,
  now: Date,
  leaseMs: number,
): Promise<{ attempt: AttemptRow; previous: AttemptStatus } | null> {
  const rows = await tx`
    update payment_attempts a
       set status = 'in_flight',
           started_at = coalesce(a.started_at, ${now}),
           lease_token = gen_random_uuid(),
           lease_until = clock_timestamp() + make_interval(secs => ${leaseMs / 1000})
      from (select id, status from payment_attempts where id = ${attemptId} for update) old
     where a.id = old.id
       and (a.status in ('planned', 'unknown') or (a.status = 'in_flight' and a.lease_until < clock_timestamp()))
    returning a.*, old.status as previous_status`;
  const r = rows[0];
  return r ? { attempt: toAttempt(r), previous: r.previous_status as AttemptStatus } : null;
}

export interface AttemptResult {
  status: Exclude<AttemptStatus, 'planned' | 'in_flight'>;
  finishedAt: Date | null;
  chargeId?: string | null;
  paymentIntentId?: string | null;
  paymentMethod?: string | null;
  cardFingerprint?: string | null;
  cardBrand?: string | null;
  declineCode?: string | null;
  failureCode?: string | null;
  adviceCode?: string | null;
  networkAdviceCode?: string | null;
  networkDeclineCode?: string | null;
  declineCategory?: string | null;
  failureMessage?: string | null;
}

/**
 * Who may write an attempt's result: the worker holding its claim (its `leaseToken` while the
 * attempt is still in flight), or, for an attempt nobody holds, whoever finds it in `status`.
 */
export type Fence = { leaseToken: string | null } | { status: AttemptStatus };

function fenced(tx: Tx, f: Fence) {
  return 'leaseToken' in f
    ? tx`status = 'in_flight' and lease_token = ${f.leaseToken}::uuid`
    : tx`status = ${f.status}`;
}

/** Writes an attempt's result; false (nothing written) when `fence` no longer holds. */
export async function finishAttempt(tx: Tx, attemptId: number, r: AttemptResult, fence: Fence): Promise<boolean> {
  const [held] = await tx`select 1 from payment_attempts where id = ${attemptId} and ${fenced(tx, fence)} for update`;
  if (!held) return false;
  if (r.chargeId) {
    // Our own charge, first-hand: should a late event have pinned it on a Stripe attempt, it leaves
    // that row, rather than the unique index failing this update on every try for good.
    await tx`update payment_attempts set charge_id = null
              where charge_id = ${r.chargeId} and id <> ${attemptId} and source = 'stripe'`;
  }
  await tx`
    update payment_attempts set
      status = ${r.status},
      finished_at = ${r.finishedAt},
      lease_until = null,
      charge_id = coalesce(${r.chargeId ?? null}, charge_id),
      payment_intent_id = coalesce(${r.paymentIntentId ?? null}, payment_intent_id),
      payment_method = coalesce(${r.paymentMethod ?? null}, payment_method),
      card_fingerprint = coalesce(${r.cardFingerprint ?? null}, card_fingerprint),
      card_brand = coalesce(${r.cardBrand ?? null}, card_brand),
      decline_code = ${r.declineCode ?? null},
      failure_code = ${r.failureCode ?? null},
      advice_code = ${r.adviceCode ?? null},
      network_advice_code = ${r.networkAdviceCode ?? null},
      network_decline_code = ${r.networkDeclineCode ?? null},
      decline_category = ${r.declineCategory ?? null},
      failure_message = ${r.failureMessage ?? null},
      lease_token = null
    where id = ${attemptId}`;
  return true;
}

/**
 * Notes the real time the attempt's charge request leaves, before it leaves: `at` as its latest
 * request always, and `first` as its first unless one is recorded (the idempotency key's life starts
 * with the first request, and a replay or a takeover does not renew it). `first` is `at` but for a
 * request an older worker sent without recording it. False when `fence` no longer holds.
 */
export async function markSent(tx: Tx, attemptId: number, first: Date, at: Date, fence: Fence): Promise<boolean> {
  const rows = await tx`
    update payment_attempts set first_sent_at = coalesce(first_sent_at, ${first}), last_sent_at = ${at}
     where id = ${attemptId} and ${fenced(tx, fence)}
    returning id`;
  return rows.length > 0;
}

/**
 * The request did not settle the attempt: back to `planned` (not sent) or `unknown`, same key.
 * Not sent, it has not started: the claim that sends it sets `started_at`, which says which
 * charges it may own (src/events/charges.ts). Unknown, it keeps the time it may have charged.
 */
export async function releaseAttempt(
  tx: Tx,
  attemptId: number,
  status: 'planned' | 'unknown',
  retryAt: Date,
  message: string,
  fence: Fence,
): Promise<boolean> {
  const rows = await tx`
    update payment_attempts
       set status = ${status}, planned_at = ${retryAt}, lease_until = null, lease_token = null,
           started_at = case when ${status} = 'planned' then null else started_at end,
           request_tries = request_tries + 1, failure_message = ${message}
     where id = ${attemptId} and ${fenced(tx, fence)}
    returning id`;
  return rows.length > 0;
}

/**
 * Stops repeating an attempt's request without settling it: it stays `unknown` (so no other charge
 * of the invoice can be planned) with no job, for ops to resolve.
 */
export async function parkAttempt(tx: Tx, attemptId: number, message: string, fence: Fence): Promise<boolean> {
  const rows = await tx`
    update payment_attempts
       set status = 'unknown', lease_until = null, lease_token = null, request_tries = request_tries + 1,
           failure_message = ${message}
     where id = ${attemptId} and ${fenced(tx, fence)}
    returning id`;
  return rows.length > 0;
}

/**
 * Cancels attempts that have not started; returns them with their pg-boss job, which the caller
 * cancels too (scheduler.cancelPlanned).
 */
export async function cancelPlannedAttempts(
  tx: Tx,
  invoiceId: string,
  reason: string,
  now: Date,
): Promise<Array<{ id: number; jobId: string | null }>> {
  const rows = await tx`
    update payment_attempts set status = 'cancelled', finished_at = ${now}, failure_message = ${reason}
     where invoice_id = ${invoiceId} and status = 'planned'
    returning id, job_id`;
  return rows.map((r) => ({ id: Number(r.id), jobId: (r.job_id as string | null) ?? null }));
}

/** The job that will run the attempt: the latest one sent for it. */
export async function setAttemptJob(tx: Tx, attemptId: number, jobId: string): Promise<void> {
  await tx`update payment_attempts set job_id = ${jobId} where id = ${attemptId}`;
}

export async function recordDecline(
  tx: Tx,
  caseId: number,
  code: string | null,
  category: string | null,
  now: Date,
): Promise<void> {
  await tx`
    update dunning_cases set
      first_decline_code = coalesce(first_decline_code, ${code}),
      first_decline_category = coalesce(first_decline_category, ${category}),
      last_decline_code = ${code}, last_decline_category = ${category}, updated_at = ${now}
    where id = ${caseId}`;
}

export async function recordFinalAction(tx: Tx, caseId: number, action: string, at: Date): Promise<void> {
  await tx`update dunning_cases set final_action = ${action}, final_action_at = ${at}, updated_at = ${at} where id = ${caseId}`;
}

export async function setPaused(tx: Tx, caseId: number, paused: boolean, now: Date): Promise<void> {
  await tx`update dunning_cases set paused = ${paused}, updated_at = ${now} where id = ${caseId}`;
}

export interface InvoiceRow {
  id: string;
  customerId: string;
  subscriptionId: string | null;
  status: string;
  currency: string;
  amountDue: number;
  amountRemaining: number;
  /** Our copy of the subscription's `pause_collection` (null: not paused, or subscription unknown). */
  collectionPause: CollectionPause | null;
  /**
   * The card Stripe charges before the customer's default: the invoice's default_payment_method,
   * else its subscription's. Null: the customer's default applies.
   */
  ownCard: string | null;
}

function pauseOf(r: Row): CollectionPause | null {
  const behavior = (r.pause_collection_behavior as string | null) ?? null;
  return behavior === null ? null : { behavior, resumesAt: (r.pause_collection_resumes_at as Date | null) ?? null };
}

export async function invoiceById(tx: Tx, invoiceId: string): Promise<InvoiceRow | null> {
  const [r] = await tx`
    select i.*, s.pause_collection_behavior, s.pause_collection_resumes_at,
           coalesce(i.default_payment_method, s.default_payment_method) as own_card
      from invoices i left join subscriptions s on s.id = i.subscription_id
     where i.id = ${invoiceId}`;
  if (!r) return null;
  return {
    id: r.id as string,
    customerId: r.customer_id as string,
    subscriptionId: (r.subscription_id as string | null) ?? null,
    status: r.status as string,
    currency: r.currency as string,
    amountDue: Number(r.amount_due),
    amountRemaining: Number(r.amount_remaining),
    collectionPause: pauseOf(r),
    ownCard: (r.own_card as string | null) ?? null,
  };
}

/**
 * What a Stripe read showed of a subscription's `pause_collection`, written into our copy when it
 * differs: the event that set it may be late or predate the install, and without it the event that
 * lifts the pause would change nothing in our row, so no hook would plan the case again. The row
 * keeps its event time (a row we did not have gets the epoch), so every real event still wins.
 */
export async function learnCollectionPause(
  tx: Tx,
  subscriptionId: string,
  customerId: string,
  pause: CollectionPause | null,
): Promise<void> {
  await tx`
    insert into subscriptions as s (id, customer_id, status, stripe_updated_at, pause_collection_behavior, pause_collection_resumes_at)
    values (${subscriptionId}, ${customerId}, 'active', to_timestamp(0), ${pause?.behavior ?? null}, ${pause?.resumesAt ?? null})
    on conflict (id) do update set
      pause_collection_behavior = excluded.pause_collection_behavior,
      pause_collection_resumes_at = excluded.pause_collection_resumes_at
    where s.pause_collection_behavior is distinct from excluded.pause_collection_behavior
       or s.pause_collection_resumes_at is distinct from excluded.pause_collection_resumes_at`;
}

/** Our copy of a subscription's `pause_collection`; null when not paused or not known. */
export async function collectionPauseOf(tx: Tx, subscriptionId: string): Promise<CollectionPause | null> {
  const [r] =
    await tx`select pause_collection_behavior, pause_collection_resumes_at from subscriptions where id = ${subscriptionId}`;
  return r ? pauseOf(r) : null;
}

export async function openCasesOfSubscription(tx: Tx, subscriptionId: string): Promise<CaseRow[]> {
  const rows = await tx`
    select c.* from dunning_cases c join invoices i on i.id = c.invoice_id
     where i.subscription_id = ${subscriptionId} and c.status = 'open' order by c.id`;
  return rows.map(toCase);
}

export interface CustomerRow {
  id: string;
  country: string | null;
  timeZone: string | null;
  /** invoice_settings.default_payment_method, else the legacy default source. */
  defaultPaymentMethod: string | null;
}

export async function customerById(tx: Tx, customerId: string): Promise<CustomerRow | null> {
  const [r] = await tx`
    select id, country, time_zone, coalesce(default_payment_method, default_source) as default_payment_method
      from customers where id = ${customerId}`;
  if (!r) return null;
  return {
    id: r.id as string,
    country: (r.country as string | null) ?? null,
    timeZone: (r.time_zone as string | null) ?? null,
    defaultPaymentMethod: (r.default_payment_method as string | null) ?? null,
  };
}

/** Our copy of the invoice after a Stripe read: only moves forward (paid/void are final). */
export async function syncInvoiceStatus(
  tx: Tx,
  invoiceId: string,
  status: string,
  amountPaid: number,
  amountRemaining: number,
  at: Date,
): Promise<void> {
  await tx`
    update invoices set status = ${status}, amount_paid = ${amountPaid}, amount_remaining = ${amountRemaining},
           paid_at = case when ${status} = 'paid' then coalesce(paid_at, ${at}) else paid_at end
     where id = ${invoiceId} and status not in ('paid', 'void')
       -- Stripe moves an uncollectible invoice only to paid or void; an older read saying open must not undo it.
       and not (status = 'uncollectible' and ${status} in ('draft', 'open'))`;
}

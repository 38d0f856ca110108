import type Stripe from 'stripe';
import { lockCustomer } from '../customer-lock.ts';
import type { Sql, Tx } from '../db.ts';
import { insertStripeAttempt, refreshCaseDeclines, rememberCard } from '../ledger.ts';
import { invoiceLinePricing, upsertCustomer as upsertCustomerRow } from '../events/objects.ts';
import {
  detailsOfCharge,
  idOf,
  intentsOf,
  lastIntentError,
  mergeDetails,
  subscriptionOfInvoice,
  type DeclineDetails,
} from '../stripe/read.ts';
import { call, failedChargesOf, withAllPayments, type StripeGateway } from '../stripe/charge.ts';
import { assignCohort, choosePolicy, type Policy } from './policy.ts';
import { segmentFactsOf } from './segment-facts.ts';
import { DEFAULT_POLICY_NAME } from './segments.ts';
import { planNext, savePolicy, type PlanResult, type SchedulerDeps } from './scheduler.ts';

/**
 * Takes over dunning for invoices that failed before the worker was installed: pages through
 * Stripe's open, automatically charged invoices, copies them, and opens a case (with its next
 * attempt planned) for each that Stripe already tried to charge. The case opens at the invoice's
 * first failure as Stripe knows it, not at the import: the dunning window and the reports count
 * from there, as they do for a case opened by a webhook.
 */

export interface BackfillProgress {
  pages: number;
  seen: number;
  opened: number;
  planned: number;
}

export interface BackfillDeps {
  sql: Sql;
  gateway: StripeGateway;
  scheduler: SchedulerDeps;
  policy: Policy;
  /** A case was taken over: the reminders' reaction to a new case (large-case alert, first notice). */
  onCaseOpened?: (tx: Tx, e: { caseId: number; invoiceId: string; at: Date }) => Promise<void>;
  progress?: (p: BackfillProgress) => void;
  pageSize?: number;
}

export async function backfill(deps: BackfillDeps): Promise<BackfillProgress> {
  const totals: BackfillProgress = { pages: 0, seen: 0, opened: 0, planned: 0 };
  await savePolicy(deps.sql, deps.policy);
  const knownCustomers = new Set<string>();
  let startingAfter: string | undefined;
  for (;;) {
    const params: Stripe.InvoiceListParams = {
      status: 'open',
      collection_method: 'charge_automatically',
      limit: deps.pageSize ?? 100,
    };
    if (startingAfter) params.starting_after = startingAfter;
    const page = await call(deps.gateway, (s) => s.invoices.list(params));
    totals.pages += 1;
    for (const invoice of page.data) {
      totals.seen += 1;
      const customerId = idOf(invoice.customer);
      if (!customerId || !invoice.id) continue;
      if (!knownCustomers.has(customerId)) {
        await upsertCustomer(deps, customerId);
        knownCustomers.add(customerId);
      }
      const tries = invoice.attempt_count > 0 ? await stripeTries(deps, invoice) : null;
      const result = await deps.sql.begin((tx) => takeOver(tx, deps, invoice, customerId, tries));
      if (result.opened) totals.opened += 1;
      if (result.plan?.kind === 'planned') totals.planned += 1;
    }
    deps.progress?.({ ...totals });
    const last = page.data[page.data.length - 1];
    if (!page.has_more || !last?.id) break;
    startingAfter = last.id;
  }
  return totals;
}

async function upsertCustomer(deps: BackfillDeps, customerId: string): Promise<void> {
  const [known] = await deps.sql`select 1 from customers where id = ${customerId}`;
  if (known) return;
  const c = await call(deps.gateway, (s) => s.customers.retrieve(customerId));
  if ('deleted' in c && c.deleted) return;
  // As of its creation, so any customer event we receive later wins over what backfill read. Under
  // the customer's lock, as the processor writes the row the mailer reads it (address, locale, zone).
  await deps.sql.begin(async (tx) => {
    await lockCustomer(tx, customerId);
    await upsertCustomerRow(tx, c, new Date(c.created * 1000));
  });
}

/** One of Stripe's own tries at the invoice, as far as Stripe can still tell. */
interface StripeTry {
  at: Date;
  /** What the bank said; null when no charge of this try was found. */
  details: DeclineDetails | null;
  /** For ops, on a try recorded without its charge: where its time comes from. */
  note: string | null;
}

interface StripeTries {
  /** The first failure: the earliest failed charge, else the invoice's finalization (see `note`). */
  openedAt: Date;
  /** One per failed charge (at least `attempt_count`), oldest first. */
  tries: StripeTry[];
}

/**
 * Stripe's earlier tries with their own times and answers: the failed charges of the invoice's
 * PaymentIntents (the invoice list does not carry them, and expanding them there is one level too
 * deep). Without them a lost or stolen card would look like a generic decline and be retried, and
 * the case would open at the import. Tries without a charge (Stripe cannot list it any more, or the
 * try stopped at 3-D Secure) fall back to the first failure's time, or to the invoice's
 * finalization when no failed charge is known at all, and say so.
 */
async function stripeTries(deps: BackfillDeps, inv: Stripe.Invoice): Promise<StripeTries> {
  const invoiceId = inv.id;
  let lastError: DeclineDetails | null = null;
  let failed: Stripe.Charge[] = [];
  try {
    const full = await withAllPayments(
      deps.gateway,
      await call(deps.gateway, (s) =>
        s.invoices.retrieve(invoiceId, { expand: ['payments.data.payment.payment_intent'] }),
      ),
    );
    lastError = lastIntentError(full);
    for (const pi of intentsOf(full)) failed.push(...(await failedChargesOf(deps.gateway, pi.id)));
  } catch (err) {
    deps.scheduler.log.warn(
      { invoiceId, err: (err as Error).message },
      "backfill: cannot read Stripe's tries; recorded without codes",
    );
  }
  failed = failed.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  const finalized = inv.status_transitions?.finalized_at ?? inv.created;
  const first = failed[0];
  const openedAt = new Date((first ? first.created : finalized) * 1000);
  if (!first) {
    deps.scheduler.log.info(
      { invoiceId },
      "backfill: no failed charge found; the case opens at the invoice's finalization",
    );
  }
  // Every failed charge is a try the card network counts, whoever made it (the customer on the
  // hosted page, the Dashboard, an earlier dunning tool): `attempt_count` counts only Stripe's first
  // try and its automatic retries, so it is a floor, not the number of tries.
  const n = Math.max(inv.attempt_count, failed.length);
  const known = failed;
  const unknownNote = first
    ? 'recorded by backfill: no charge found for this try; time of the first failed charge'
    : "recorded by backfill: no failed charge found; time of the invoice's finalization";
  const tries: StripeTry[] = [];
  for (let i = 0; i < n; i += 1) {
    const ch = known[i - (n - known.length)];
    const isLast = i === n - 1;
    if (ch) {
      const details = detailsOfCharge(ch);
      // The PaymentIntent's error repeats the latest charge's answer, sometimes with more of it.
      tries.push({
        at: new Date(ch.created * 1000),
        details: isLast && lastError?.chargeId === ch.id ? mergeDetails(details, lastError) : details,
        note: null,
      });
    } else {
      tries.push({ at: openedAt, details: isLast ? lastError : null, note: unknownNote });
    }
  }
  return { openedAt, tries };
}

const DAY_MS = 24 * 3_600_000;

/**
 * A past-due invoice seen for the first time must not meet its final action (by default a
 * cancelled subscription) the moment a new install imports it: its window is moved so that at
 * least `takeoverDays` of it remain, for a reminder and a retry or two. Null when the window from
 * the first failure leaves that much anyway. Reports still count the case from its first failure.
 */
export function takeoverWindowStart(firstFailure: Date, now: Date, policy: Policy): Date | null {
  const { windowDays, takeoverDays } = policy.retry;
  if (takeoverDays === 0) return null;
  const latestStart = now.getTime() + Math.min(takeoverDays, windowDays) * DAY_MS - windowDays * DAY_MS;
  return latestStart > firstFailure.getTime() ? new Date(latestStart) : null;
}

async function takeOver(
  tx: Tx,
  deps: BackfillDeps,
  inv: Stripe.Invoice,
  customerId: string,
  stripe: StripeTries | null,
): Promise<{ opened: boolean; plan: PlanResult | null }> {
  // The customer's lock first: this writes the invoice (perhaps `paid`), opens the case and plans
  // its attempt, which the event processor, the runner and the mailer (merging the customer's
  // reminders) decide on under that lock; taken before any row lock, as they take it.
  await lockCustomer(tx, customerId);
  const created = new Date(inv.created * 1000);
  const subscription = subscriptionOfInvoice(inv);
  const lines = invoiceLinePricing(inv);
  // Never move a newer copy (written from a webhook) back.
  await tx`
    insert into invoices (id, customer_id, subscription_id, status, currency, amount_due, amount_paid, amount_remaining,
                          hosted_invoice_url, stripe_attempt_count, stripe_created, line_prices, line_products,
                          stripe_updated_at)
    values (${inv.id}, ${customerId}, ${subscription}, ${inv.status ?? 'open'}, ${inv.currency}, ${inv.amount_due}, ${inv.amount_paid},
            ${inv.amount_remaining}, ${inv.hosted_invoice_url ?? null}, ${inv.attempt_count}, ${created},
            ${lines.prices}, ${lines.products}, ${created})
    on conflict (id) do update set status = excluded.status, amount_paid = excluded.amount_paid,
      amount_remaining = excluded.amount_remaining, stripe_attempt_count = excluded.stripe_attempt_count,
      line_prices = case when cardinality(excluded.line_prices) > 0 then excluded.line_prices else invoices.line_prices end,
      line_products = case when cardinality(excluded.line_products) > 0 then excluded.line_products else invoices.line_products end
    where invoices.stripe_updated_at <= excluded.stripe_updated_at and invoices.status not in ('paid', 'void')`;
  if (inv.attempt_count <= 0 || !stripe) return { opened: false, plan: null };
  const now = deps.scheduler.clock.now();
  // Segment rules pick the policy from what we hold: this invoice's lines, its subscription's items
  // as events left them, the customer backfill just read.
  const facts = await segmentFactsOf(tx, inv.id);
  const chosen = facts ? choosePolicy(deps.policy, facts) : { name: DEFAULT_POLICY_NAME, policy: deps.policy };
  const opened = await tx<{ id: number }[]>`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, policy_name, cohort, opened_at,
                               window_starts_at, updated_at)
    values (${inv.id}, ${customerId}, ${inv.currency}, ${inv.amount_remaining}, ${chosen.policy.version}, ${chosen.name},
            ${assignCohort(inv.id, deps.policy)}, ${stripe.openedAt}, ${takeoverWindowStart(stripe.openedAt, now, chosen.policy)}, ${now})
    on conflict (invoice_id) do nothing
    returning id`;
  const caseId = opened[0]?.id;
  if (caseId === undefined) return { opened: false, plan: null };
  // Stripe's tries count against caps and network limits, at their own times where Stripe still
  // knows them. A try without its answer is a decline without a code (the planner's generic
  // category), which errs on the side of fewer retries.
  for (const [i, t] of stripe.tries.entries()) {
    const n = i + 1;
    if (t.details) {
      await rememberCard(tx, {
        paymentMethod: t.details.paymentMethod,
        customerId,
        fingerprint: t.details.cardFingerprint,
        brand: t.details.cardBrand,
        at: t.at,
      });
      const id = await insertStripeAttempt(tx, {
        caseId: Number(caseId),
        invoiceId: inv.id,
        attemptNo: n,
        at: t.at,
        eventId: null,
        details: t.details,
      });
      if (t.note)
        await tx`update payment_attempts set failure_message = ${t.note} || coalesce(': ' || failure_message, '') where id = ${id}`;
      continue;
    }
    await tx`
      insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, failure_message)
      values (${caseId}, ${inv.id}, ${n}, 'stripe', 'declined', ${t.at}, ${t.at}, ${t.note ?? 'recorded by backfill'})
      on conflict do nothing`;
  }
  // The case's decline columns, as the event processor keeps them: reminders word a hard decline
  // differently and say nothing on a merchant error.
  await refreshCaseDeclines(tx, Number(caseId));
  await deps.onCaseOpened?.(tx, { caseId: Number(caseId), invoiceId: inv.id, at: now });
  return { opened: true, plan: await planNext(tx, deps.scheduler, Number(caseId)) };
}

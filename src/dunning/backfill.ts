import type Stripe from 'stripe';
import type { Sql, Tx } from '../db.ts';
import { detailsOfIntent } from '../events/charges.ts';
import { insertStripeAttempt, refreshCaseDeclines, type DeclineDetails } from '../events/ledger.ts';
import { upsertCustomer as upsertCustomerRow } from '../events/objects.ts';
import { call, type StripeGateway } from '../stripe/charge.ts';
import { assignCohort, type Policy } from './policy.ts';
import { planNext, savePolicy, type PlanResult, type SchedulerDeps } from './scheduler.ts';

/**
 * Takes over dunning for invoices that failed before the worker was installed: pages through
 * Stripe's open, automatically charged invoices, copies them, and opens a case (with its next
 * attempt planned) for each that Stripe already tried to charge.
 */

export interface BackfillProgress { pages: number; seen: number; opened: number; planned: number }

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
    const params: Stripe.InvoiceListParams = { status: 'open', collection_method: 'charge_automatically', limit: deps.pageSize ?? 100 };
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
      const last = invoice.attempt_count > 0 ? await lastDecline(deps, invoice.id) : null;
      const result = await deps.sql.begin((tx) => takeOver(tx, deps, invoice, customerId, last));
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

function idOf(v: string | { id?: string } | null | undefined): string | null {
  if (!v) return null;
  return typeof v === 'string' ? v : (v.id ?? null);
}

async function upsertCustomer(deps: BackfillDeps, customerId: string): Promise<void> {
  const [known] = await deps.sql`select 1 from customers where id = ${customerId}`;
  if (known) return;
  const c = await call(deps.gateway, (s) => s.customers.retrieve(customerId));
  if ('deleted' in c && c.deleted) return;
  // As of its creation, so any customer event we receive later wins over what backfill read.
  await upsertCustomerRow(deps.sql, c as Stripe.Customer, new Date(c.created * 1000));
}

/**
 * What the bank said to Stripe's latest try, from the invoice's PaymentIntent (the list response
 * does not carry it, and expanding it there is one level too deep). Without it a lost or stolen
 * card would look like a generic decline and be retried. Null when Stripe cannot say.
 */
async function lastDecline(deps: BackfillDeps, invoiceId: string): Promise<DeclineDetails | null> {
  try {
    const inv = await call(deps.gateway, (s) => s.invoices.retrieve(invoiceId, { expand: ['payments.data.payment.payment_intent'] }));
    const intents = (inv.payments?.data ?? []).map((p) => p.payment.payment_intent).filter((pi): pi is Stripe.PaymentIntent => typeof pi === 'object' && pi !== null);
    const failed = intents.filter((pi) => pi.last_payment_error);
    const pi = failed[failed.length - 1];
    return pi ? detailsOfIntent(pi) : null;
  } catch (err) {
    deps.scheduler.log.warn({ invoiceId, err: (err as Error).message }, 'backfill: cannot read the last decline; recorded without a code');
    return null;
  }
}

async function takeOver(
  tx: Tx, deps: BackfillDeps, inv: Stripe.Invoice, customerId: string, last: DeclineDetails | null,
): Promise<{ opened: boolean; plan: PlanResult | null }> {
  const created = new Date(inv.created * 1000);
  const subscription = idOf(inv.parent?.subscription_details?.subscription);
  // Never move a newer copy (written from a webhook) back.
  await tx`
    insert into invoices (id, customer_id, subscription_id, status, currency, amount_due, amount_paid, amount_remaining,
                          hosted_invoice_url, stripe_attempt_count, stripe_created, stripe_updated_at)
    values (${inv.id!}, ${customerId}, ${subscription}, ${inv.status ?? 'open'}, ${inv.currency}, ${inv.amount_due}, ${inv.amount_paid},
            ${inv.amount_remaining}, ${inv.hosted_invoice_url ?? null}, ${inv.attempt_count}, ${created}, ${created})
    on conflict (id) do update set status = excluded.status, amount_paid = excluded.amount_paid,
      amount_remaining = excluded.amount_remaining, stripe_attempt_count = excluded.stripe_attempt_count
    where invoices.stripe_updated_at <= excluded.stripe_updated_at and invoices.status not in ('paid', 'void')`;
  if (inv.attempt_count <= 0) return { opened: false, plan: null };
  const now = deps.scheduler.clock.now();
  const opened = await tx`
    insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at, updated_at)
    values (${inv.id!}, ${customerId}, ${inv.currency}, ${inv.amount_remaining}, ${deps.policy.version},
            ${assignCohort(inv.id!, deps.policy)}, ${now}, ${now})
    on conflict (invoice_id) do nothing
    returning id`;
  const caseId = opened[0]?.id;
  if (caseId === undefined) return { opened: false, plan: null };
  // Stripe's earlier tries count against caps and network limits. Only the latest one's answer can
  // be read back; the others are recorded as declines without a code (the planner's generic
  // category) at the invoice's creation time, which errs on the side of fewer retries.
  for (let n = 1; n <= inv.attempt_count; n += 1) {
    if (n === inv.attempt_count && last) {
      await insertStripeAttempt(tx, { caseId: Number(caseId), invoiceId: inv.id!, attemptNo: n, at: created, eventId: null, details: last });
      continue;
    }
    await tx`
      insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, failure_message)
      values (${caseId}, ${inv.id!}, ${n}, 'stripe', 'declined', ${created}, ${created}, 'recorded by backfill')
      on conflict do nothing`;
  }
  // The case's decline columns, as the event processor keeps them: reminders word a hard decline
  // differently and say nothing on a merchant error.
  await refreshCaseDeclines(tx, Number(caseId));
  await deps.onCaseOpened?.(tx, { caseId: Number(caseId), invoiceId: inv.id!, at: now });
  return { opened: true, plan: await planNext(tx, deps.scheduler, Number(caseId)) };
}

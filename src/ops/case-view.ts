import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import { caseDetail, type CaseDetail } from '../dunning/ops-actions.ts';
import { cardBudget, type CardBudget } from '../dunning/planner.ts';
import { createPolicySource, loadPlanContext } from '../dunning/scheduler.ts';
import { buildValues } from '../reminders/content.ts';
import type { ReminderKind } from '../reminders/kinds.ts';
import type { Locale } from '../reminders/localize.ts';
import type { SendContext } from '../reminders/outbox.ts';
import type { TemplateSet } from '../reminders/templates.ts';
import { auditOfInvoice, type AuditEntry } from './audit.ts';

/** Everything the case page shows, read in one place: the CLI's case detail plus the rest of the story. */

export interface StripeEventLine {
  id: string;
  type: string;
  created: Date;
  status: string;
}

export interface EmailLine {
  id: number;
  kind: ReminderKind;
  step: number;
  status: string;
  sendAt: Date;
  sentAt: Date | null;
  tries: number;
  note: string | null;
  preview: { subject: string; text: string } | null;
}

export interface CaseView {
  detail: CaseDetail;
  email: string | null;
  customerName: string | null;
  /** The budget of the card the next charge uses, across the customer's invoices, as the planner counts it. */
  card: CardBudget;
  events: StripeEventLine[];
  emails: EmailLine[];
  audit: AuditEntry[];
}

export async function loadCaseView(
  sql: Sql,
  invoiceId: string,
  o: {
    now: Date;
    templates: TemplateSet | null;
    config: Pick<Config, 'merchantName' | 'supportEmail' | 'merchantLogoUrl'>;
  },
): Promise<CaseView | null> {
  const detail = await caseDetail(sql, invoiceId);
  if (!detail) return null;
  const c = detail.caseRow;
  const [customer] = await sql`select email, name from customers where id = ${c.customerId}`;
  // The Stripe events whose object is the invoice, or names it (charges, payment intents).
  const events = await sql<StripeEventLine[]>`
    select id, type, created, status from stripe_events where payload -> 'data' -> 'object' ->> 'id' = ${invoiceId}
    union
    select id, type, created, status from stripe_events where payload -> 'data' -> 'object' ->> 'invoice' = ${invoiceId}
    order by created, id limit 500`;
  // The same ledger reads and card rules the planner and retry-now use, so the page cannot disagree with them.
  const ctx = await loadPlanContext(sql, { policies: createPolicySource(null) }, c, null);
  return {
    detail,
    email: (customer?.email as string | null) ?? null,
    customerName: (customer?.name as string | null) ?? null,
    card: cardBudget(ctx.history, ctx.customer, o.now),
    events,
    emails: await emailsOf(sql, c.id, o),
    audit: await auditOfInvoice(sql, invoiceId),
  };
}

/**
 * The case's emails with what each said. Sent mail is not stored, so the preview is the template
 * rendered again from the row's facts (the link shown as a placeholder: the real one is signed
 * and personal). Read without locks: the mailer must never find a row held by a page view.
 */
async function emailsOf(
  sql: Sql,
  caseId: number,
  o: {
    now: Date;
    templates: TemplateSet | null;
    config: Pick<Config, 'merchantName' | 'supportEmail' | 'merchantLogoUrl'>;
  },
): Promise<EmailLine[]> {
  const rows = await sql<Array<SendContext & { sentAt: Date | null; note: string | null }>>`
    select o.id::float8 as id, o.case_id::float8 as "caseId", o.customer_id as "customerId", o.invoice_id as "invoiceId", o.kind, o.step,
           o.status, o.send_at as "sendAt", coalesce(o.sent_at, h.sent_at) as "sentAt", o.locale, o.time_zone as "timeZone", o.data, o.tries,
           -- Merged into another invoice's email, held back by the cap, failed or cancelled (sql/019).
           reminder_outbox_note(o.id) as note,
           c.name as "customerName", i.amount_remaining::float8 as "amountRemaining", i.currency,
           i.stripe_created as "invoiceCreated", (i.subscription_id is not null) as "invoiceForSubscription",
           d.amount::float8 as "caseAmount", d.last_decline_category as "declineCategory", d.next_attempt_at as "nextAttemptAt"
      from reminder_outbox o
      left join reminder_outbox h on h.id = o.merged_into
      left join customers c on c.id = o.customer_id
      left join invoices i on i.id = o.invoice_id
      left join dunning_cases d on d.id = o.case_id
     where o.case_id = ${caseId}
     order by o.send_at, o.id`;
  return rows.map((r) => {
    let preview: EmailLine['preview'] = null;
    if (o.templates) {
      const at = r.sentAt ?? r.sendAt;
      const m = o.templates.render(r.kind, r.locale as Locale, buildValues(r, o.config, '[update-card link]', at));
      preview = { subject: m.subject, text: m.text };
    }
    return {
      id: r.id,
      kind: r.kind,
      step: r.step,
      status: r.status,
      sendAt: r.sendAt,
      sentAt: r.sentAt,
      tries: r.tries,
      note: r.note,
      preview,
    };
  });
}

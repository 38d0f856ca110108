/**
 * The billing status of one customer, decided from what is due: pure, no clock reads, no I/O.
 *
 * - `ok`: nothing due.
 * - `past_due`: an invoice in dunning, inside the grace period.
 * - `action_required`: an invoice waits for the customer to complete 3-D Secure (the link is that
 *   invoice's hosted page, where they authenticate), inside the grace period.
 * - `grace_ended`: an invoice has been failing longer than `access.graceDays`.
 */
import { type AccessPolicy } from './access-policy.ts';
import { bannerText, linkLabel } from './banner-text.ts';
import type { Locale } from '../reminders/localize.ts';

export const STATUSES = ['ok', 'past_due', 'action_required', 'grace_ended'] as const;
export type BillingStatusKind = (typeof STATUSES)[number];

/** One invoice in dunning, as the query reads it. */
export interface DueInvoice {
  invoiceId: string;
  currency: string;
  /** Minor units still to pay. */
  amountRemaining: number;
  hostedInvoiceUrl: string | null;
  /** When the grace period starts: the first failure, or the takeover of a backfilled invoice. */
  failingSince: Date;
  /** The customer must complete authentication (3-D Secure) for this invoice. */
  actionRequired: boolean;
  /** The access section of the policy the invoice's case opened with. */
  access: AccessPolicy;
}

export type AccessDecision = 'full' | 'banner' | 'restricted';

export interface BillingStatus {
  status: BillingStatusKind;
  /** One entry per currency, largest first; amounts of different currencies are never added. */
  amountsDue: Array<{ amount: number; currency: string }>;
  /** One line for the product's banner, in the customer's language; null when status is ok. */
  banner: string | null;
  link: { kind: 'update_card' | 'authenticate'; url: string; label: string } | null;
  access: { decision: AccessDecision; graceEndsAt: string | null };
  locale: Locale;
}

const DAY_MS = 86_400_000;

export function decideBillingStatus(o: {
  due: readonly DueInvoice[];
  locale: Locale;
  now: Date;
  /** The signed update-card link for this customer; null when links cannot be signed (no PUBLIC_URL). */
  updateCardUrl: string | null;
}): BillingStatus {
  const due = o.due.filter((d) => d.amountRemaining > 0);
  if (due.length === 0)
    return {
      status: 'ok',
      amountsDue: [],
      banner: null,
      link: null,
      access: { decision: 'full', graceEndsAt: null },
      locale: o.locale,
    };

  const totals = new Map<string, number>();
  for (const d of due) totals.set(d.currency, (totals.get(d.currency) ?? 0) + d.amountRemaining);
  const amountsDue = [...totals]
    .map(([currency, amount]) => ({ amount, currency }))
    .sort((a, b) => b.amount - a.amount || a.currency.localeCompare(b.currency));

  // The earliest end of grace among the invoices: the oldest failure decides.
  const graceEnds = due.map((d) => ({ d, at: d.failingSince.getTime() + d.access.graceDays * DAY_MS }));
  const first = graceEnds.reduce((a, b) => (b.at < a.at ? b : a));
  const ended = o.now.getTime() >= first.at;
  const authenticate = due.find((d) => d.actionRequired && d.hostedInvoiceUrl);
  const status: BillingStatusKind = ended ? 'grace_ended' : authenticate ? 'action_required' : 'past_due';
  const decision: AccessDecision = ended && first.d.access.afterGrace === 'restrict' ? 'restricted' : 'banner';

  // 3-D Secure is completed on the invoice's own page; a new card through ours. Without PUBLIC_URL,
  // the oldest invoice's hosted page still lets the customer pay with another card.
  const oldest = [...due].sort((a, b) => a.failingSince.getTime() - b.failingSince.getTime())[0]!;
  const url = authenticate ? authenticate.hostedInvoiceUrl : (o.updateCardUrl ?? oldest.hostedInvoiceUrl);
  const kind = authenticate ? ('authenticate' as const) : ('update_card' as const);
  const link = url ? { kind, url, label: linkLabel(kind, o.locale) } : null;

  return {
    status,
    amountsDue,
    banner: bannerText(status, amountsDue, o.locale),
    link,
    access: { decision, graceEndsAt: new Date(first.at).toISOString() },
    locale: o.locale,
  };
}

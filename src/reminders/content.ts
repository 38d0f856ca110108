/** Turns an outbox row and its context into template values: pure, no I/O. */
import type { Config } from '../config.ts';
import { totalsByCurrency, type ListedInvoice } from './conversation.ts';
import type { Locale } from './localize.ts';
import { formatAmount, formatDate } from './localize.ts';
import type { SendContext } from './outbox.ts';
import type { Values } from './template-engine.ts';

const asDate = (v: unknown): Date | null => {
  if (typeof v !== 'string' || v === '') return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
};

/** The one date each kind talks about, if any. */
function dateFor(ctx: SendContext, now: Date): Date | null {
  switch (ctx.kind) {
    case 'first_notice':
      return ctx.nextAttemptAt && ctx.nextAttemptAt.getTime() > now.getTime() ? ctx.nextAttemptAt : null;
    case 'last_chance':
      return asDate(ctx.data.attemptAt);
    case 'recovered':
      return asDate(ctx.data.closedAt);
    case 'card_expiring':
      return asDate(ctx.data.expiresAt);
    default:
      return null;
  }
}

/** What the invoice is for, as the summary names it (our copy of an invoice keeps no line items). */
function invoiceFor(forSubscription: boolean, merchantName: string, locale: Locale): string {
  if (locale === 'de') return forSubscription ? `Abonnement bei ${merchantName}` : `Rechnung von ${merchantName}`;
  return forSubscription ? `${merchantName} subscription` : `Invoice from ${merchantName}`;
}

/** "$98.00 and €20.00" / "98,00 $ und 20,00 €": amounts in different currencies are never added. */
export function formatTotals(items: readonly ListedInvoice[], locale: Locale): string {
  const parts = totalsByCurrency(items).map((t) => formatAmount(t.amount, t.currency, locale));
  return new Intl.ListFormat(locale, { style: 'long', type: 'conjunction' }).format(parts);
}

export function buildValues(
  ctx: SendContext,
  config: Pick<Config, 'merchantName' | 'supportEmail' | 'merchantLogoUrl'>,
  link: string,
  now: Date,
  /** Every invoice the email covers (its own first), when it covers more than its own. */
  listed: readonly ListedInvoice[] = [],
): Values {
  const locale = ctx.locale as Locale;
  const date = dateFor(ctx, now);
  // What is still owed; after a recovery that is zero, so the confirmation names the case amount.
  const minor =
    ctx.kind === 'recovered' || !ctx.amountRemaining
      ? (ctx.caseAmount ?? ctx.amountRemaining ?? 0)
      : ctx.amountRemaining;
  const many = listed.length > 1;
  const amount = ctx.currency ? formatAmount(minor, ctx.currency, locale) : '';
  const expMonth = Number(ctx.data.expMonth);
  const expYear = Number(ctx.data.expYear);
  return {
    customerName: ctx.customerName?.trim() ?? '',
    merchantName: config.merchantName,
    supportEmail: config.supportEmail ?? '',
    // With several invoices `amount` is the total too, so a merchant's template that knows no list
    // still names what is owed in full.
    amount: many ? formatTotals(listed, locale) : amount,
    total: many ? formatTotals(listed, locale) : amount,
    manyInvoices: many,
    invoices: listed.map((i) => ({
      amount: formatAmount(i.amount, i.currency, locale),
      invoiceDate: i.created ? formatDate(i.created, ctx.timeZone, locale) : '',
      invoiceFor: invoiceFor(i.forSubscription, config.merchantName, locale),
    })),
    link,
    date: date ? formatDate(date, ctx.timeZone, locale) : '',
    cardExpiry: expMonth && expYear ? `${String(expMonth).padStart(2, '0')}/${expYear}` : '',
    hardDecline: ctx.declineCategory === 'hard',
    hasSupport: Boolean(config.supportEmail),
    hasDate: date !== null,
    hasName: Boolean(ctx.customerName?.trim()),
    // last_chance before a deadline rather than a final charge: the customer must act by `date`.
    deadline: ctx.data.deadline === 1,
    logoUrl: config.merchantLogoUrl ?? '',
    hasLogo: Boolean(config.merchantLogoUrl),
    invoiceDate: ctx.invoiceCreated ? formatDate(ctx.invoiceCreated, ctx.timeZone, locale) : '',
    invoiceFor: invoiceFor(ctx.invoiceForSubscription, config.merchantName, locale),
    hasInvoice: Boolean(ctx.invoiceId && ctx.currency && ctx.invoiceCreated),
  };
}

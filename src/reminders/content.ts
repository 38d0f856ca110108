/** Turns an outbox row and its context into template values: pure, no I/O. */
import type { Config } from '../config.ts';
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
function invoiceFor(ctx: SendContext, merchantName: string, locale: Locale): string {
  if (locale === 'de')
    return ctx.invoiceForSubscription ? `Abonnement bei ${merchantName}` : `Rechnung von ${merchantName}`;
  return ctx.invoiceForSubscription ? `${merchantName} subscription` : `Invoice from ${merchantName}`;
}

export function buildValues(
  ctx: SendContext,
  config: Pick<Config, 'merchantName' | 'supportEmail' | 'merchantLogoUrl'>,
  link: string,
  now: Date,
): Values {
  const locale = ctx.locale as Locale;
  const date = dateFor(ctx, now);
  // What is still owed; after a recovery that is zero, so the confirmation names the case amount.
  const minor =
    ctx.kind === 'recovered' || !ctx.amountRemaining
      ? (ctx.caseAmount ?? ctx.amountRemaining ?? 0)
      : ctx.amountRemaining;
  const expMonth = Number(ctx.data.expMonth);
  const expYear = Number(ctx.data.expYear);
  return {
    customerName: ctx.customerName?.trim() ?? '',
    merchantName: config.merchantName,
    supportEmail: config.supportEmail ?? '',
    amount: ctx.currency ? formatAmount(minor, ctx.currency, locale) : '',
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
    invoiceFor: invoiceFor(ctx, config.merchantName, locale),
    hasInvoice: Boolean(ctx.invoiceId && ctx.currency && ctx.invoiceCreated),
  };
}

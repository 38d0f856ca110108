/**
 * The banner's one line, in English or German. Amounts are listed per currency ("$49.00 and
 * 12,00 €"), never summed across currencies. Pure.
 */
import { formatAmount, type Locale } from '../reminders/localize.ts';
import type { BillingStatusKind } from './decide.ts';

type Due = ReadonlyArray<{ amount: number; currency: string }>;

const TEXT: Record<Locale, Record<Exclude<BillingStatusKind, 'ok'>, (amount: string) => string>> = {
  en: {
    past_due: (a) => `Your last payment of ${a} failed. Please update your card to keep your subscription.`,
    action_required: (a) => `Your bank needs you to confirm the payment of ${a}. Please complete it now.`,
    grace_ended: (a) => `Your payment of ${a} is overdue and your access is limited. Please update your card.`,
  },
  de: {
    past_due: (a) =>
      `Ihre letzte Zahlung über ${a} ist fehlgeschlagen. Bitte aktualisieren Sie Ihre Karte, um Ihr Abonnement zu behalten.`,
    action_required: (a) =>
      `Ihre Bank bittet Sie, die Zahlung über ${a} zu bestätigen. Bitte schließen Sie sie jetzt ab.`,
    grace_ended: (a) =>
      `Ihre Zahlung über ${a} ist überfällig und Ihr Zugang ist eingeschränkt. Bitte aktualisieren Sie Ihre Karte.`,
  },
};

const AND: Record<Locale, string> = { en: ' and ', de: ' und ' };

export function bannerText(status: BillingStatusKind, due: Due, locale: Locale): string | null {
  if (status === 'ok') return null;
  const amounts = due.map((d) => formatAmount(d.amount, d.currency, locale)).join(AND[locale]);
  return TEXT[locale][status](amounts);
}

const LINK_LABEL: Record<Locale, Record<'update_card' | 'authenticate', string>> = {
  en: { update_card: 'Update card', authenticate: 'Confirm payment' },
  de: { update_card: 'Karte aktualisieren', authenticate: 'Zahlung bestätigen' },
};

/** The words on the banner's link. */
export function linkLabel(kind: 'update_card' | 'authenticate', locale: Locale): string {
  return LINK_LABEL[locale][kind];
}

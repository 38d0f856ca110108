/**
 * The small pages a customer sees when an update-card link cannot take them to Stripe: plain HTML,
 * no script, no external assets, in English or German. Pure.
 */
import { chooseLocale, type Locale } from '../reminders/localize.ts';
import { escapeHtml } from '../reminders/template-engine.ts';

export type PageKind = 'invalid' | 'expired' | 'gone' | 'unavailable';

export interface PageContext {
  merchantName: string;
  supportEmail: string | null;
}

/** Who to ask, already escaped: a mailto link, else the merchant's support in words. */
function support(locale: Locale, c: PageContext): string {
  if (c.supportEmail) return `<a href="mailto:${escapeHtml(c.supportEmail)}">${escapeHtml(c.supportEmail)}</a>`;
  return locale === 'de' ? `den Support von ${escapeHtml(c.merchantName)}` : `${escapeHtml(c.merchantName)} support`;
}

const TEXT: Record<Locale, Record<PageKind, (c: PageContext, l: Locale) => { title: string; body: string }>> = {
  en: {
    invalid: (c, l) => ({
      title: 'This link does not work',
      body: `The link may be incomplete, or it has been replaced by a newer one. Please use the link in the most recent email from ${escapeHtml(c.merchantName)}, or contact ${support(l, c)}.`,
    }),
    expired: (c, l) => ({
      title: 'This link has expired',
      body: `For your security, links to update your card work for a limited time. Please use the link in a newer email from ${escapeHtml(c.merchantName)}, or contact ${support(l, c)}.`,
    }),
    gone: (c, l) => ({
      title: 'This link no longer works',
      body: `We could not find your billing account. Please contact ${support(l, c)}.`,
    }),
    unavailable: () => ({
      title: 'Please try again in a minute',
      body: 'We could not open the page to update your card just now. Please try again in a minute; the link in your email still works.',
    }),
  },
  de: {
    invalid: (c, l) => ({
      title: 'Dieser Link funktioniert nicht',
      body: `Der Link ist möglicherweise unvollständig oder wurde durch einen neueren ersetzt. Bitte verwenden Sie den Link aus der neuesten E-Mail von ${escapeHtml(c.merchantName)} oder wenden Sie sich an ${support(l, c)}.`,
    }),
    expired: (c, l) => ({
      title: 'Dieser Link ist abgelaufen',
      body: `Zu Ihrer Sicherheit sind Links zum Aktualisieren Ihrer Karte nur begrenzt gültig. Bitte verwenden Sie den Link aus einer neueren E-Mail von ${escapeHtml(c.merchantName)} oder wenden Sie sich an ${support(l, c)}.`,
    }),
    gone: (c, l) => ({
      title: 'Dieser Link funktioniert nicht mehr',
      body: `Wir konnten Ihr Kundenkonto nicht finden. Bitte wenden Sie sich an ${support(l, c)}.`,
    }),
    unavailable: () => ({
      title: 'Bitte versuchen Sie es in einer Minute erneut',
      body: 'Die Seite zum Aktualisieren Ihrer Karte konnte gerade nicht geöffnet werden. Bitte versuchen Sie es in einer Minute noch einmal; der Link in Ihrer E-Mail bleibt gültig.',
    }),
  },
};

export function renderPage(kind: PageKind, locale: Locale, c: PageContext): string {
  const { title, body } = TEXT[locale][kind](c, locale);
  return `<!doctype html>
<html lang="${locale}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)} · ${escapeHtml(c.merchantName)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}</style></head>
<body><h1>${escapeHtml(title)}</h1><p>${body}</p></body></html>
`;
}

/** The browser's language (Accept-Language, by weight) when we have it, else the merchant's. */
export function pageLocale(acceptLanguage: string | undefined, fallback: Locale): Locale {
  if (!acceptLanguage) return fallback;
  const tags = acceptLanguage.split(',').map((part, i) => {
    const [tag = '', ...params] = part.trim().split(';');
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return { tag: tag.trim(), q: q === undefined ? 1 : Number(q), i };
  });
  const ranked = tags.filter((t) => t.tag !== '' && t.tag !== '*' && t.q > 0).sort((a, b) => b.q - a.q || a.i - b.i);
  return chooseLocale(
    ranked.map((t) => t.tag),
    fallback,
  );
}

import { ApiError } from './billing.ts';
import { errorJson } from './objects.ts';
import type { RouteDeps } from './routes.ts';

/**
 * The customer-facing pages behind `hosted_invoice_url` and portal session urls: just
 * enough for a demo or a browser test to "pay the invoice" or "open the portal".
 */

export interface Page {
  status: number;
  contentType: string;
  body: string;
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

function html(status: number, title: string, inner: string): Page {
  return {
    status,
    contentType: 'text/html; charset=utf-8',
    body: `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${inner}</body></html>`,
  };
}

function notFound(method: string, path: string): Page {
  return {
    status: 404,
    contentType: 'application/json',
    body: JSON.stringify(errorJson('invalid_request_error', `Unrecognized request URL (${method}: ${path}).`)),
  };
}

export function renderHostedPage(deps: RouteDeps, method: string, path: string, _body: string): Page {
  const invoiceMatch = /^\/hosted\/invoices\/([\w]+)(\/pay)?$/.exec(path);
  if (invoiceMatch !== null) {
    const id = invoiceMatch[1] ?? '';
    const inv = deps.store.invoices.get(id);
    if (inv === undefined) return html(404, 'Invoice not found', '');
    if (method === 'POST' && invoiceMatch[2] === '/pay') {
      try {
        deps.billing.payOutOfBand(id);
      } catch (err) {
        if (err instanceof ApiError) return html(400, 'Payment not possible', `<p>${escapeHtml(err.message)}</p>`);
        throw err;
      }
      return html(200, 'Thank you, your payment went through', `<p id="status">paid</p>`);
    }
    if (method === 'GET' && invoiceMatch[2] === undefined) {
      const amount = `${(inv.amount / 100).toFixed(2)} ${inv.currency.toUpperCase()}`;
      const form =
        inv.status === 'open' || inv.status === 'uncollectible'
          ? `<form method="post" action="/hosted/invoices/${inv.id}/pay"><button type="submit" id="pay">Pay ${escapeHtml(amount)}</button></form>`
          : '';
      return html(
        200,
        `Invoice ${inv.number}`,
        `<p>Amount: ${escapeHtml(amount)}</p><p id="status">${inv.status}</p>${form}`,
      );
    }
  }
  const portal = /^\/portal\/([\w]+)$/.exec(path);
  if (portal !== null && method === 'GET') {
    const session = deps.store.portalSessions.get(portal[1] ?? '');
    if (session === undefined) return html(404, 'Portal session not found', '');
    // A deep link opens one page of the portal; the id lets a test see which one it reached.
    if (session.flow === 'payment_method_update') {
      return html(
        200,
        'Update your payment method',
        `<p id="flow">payment_method_update</p><p>Sandbox billing portal: add a new card for ${escapeHtml(session.customer)}.</p>`,
      );
    }
    return html(
      200,
      'Manage your billing',
      `<p id="flow">${escapeHtml(session.flow ?? 'home')}</p><p>Sandbox billing portal: update your card here.</p>`,
    );
  }
  return notFound(method, path);
}

Subject: Ihr Abonnement bei {{merchantName}} ist gefährdet
--- text ---
{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}

wir konnten {{#manyInvoices}}Ihre Zahlungen über insgesamt {{total}}{{/manyInvoices}}{{^manyInvoices}}Ihre Zahlung über {{amount}}{{/manyInvoices}} an {{merchantName}} nicht einziehen und haben die Versuche eingestellt.

{{#hasInvoice}}{{^manyInvoices}}Betrag: {{amount}}
Rechnungsdatum: {{invoiceDate}}
Für: {{invoiceFor}}

{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}Offene Rechnungen:
{{#invoices}}- {{invoiceDate}}, {{invoiceFor}}: {{amount}}
{{/invoices}}Gesamt: {{total}}

{{/manyInvoices}}Ihr Zugang ist gefährdet. Sie können den offenen Betrag weiterhin hier bezahlen:
{{link}}
{{#hasSupport}}
Wenn Sie Hilfe brauchen, schreiben Sie an {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}</p>
<p>wir konnten {{#manyInvoices}}Ihre Zahlungen über insgesamt <strong>{{total}}</strong>{{/manyInvoices}}{{^manyInvoices}}Ihre Zahlung über <strong>{{amount}}</strong>{{/manyInvoices}} an {{merchantName}} nicht einziehen und haben die Versuche eingestellt.</p>
<p>Ihr Zugang ist gefährdet. Sie können den offenen Betrag weiterhin bezahlen.</p>
{{#hasInvoice}}{{^manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Betrag</td><td style="padding:6px 14px"><strong>{{amount}}</strong></td></tr><tr><td style="padding:6px 14px;color:#555555">Rechnungsdatum</td><td style="padding:6px 14px">{{invoiceDate}}</td></tr><tr><td style="padding:6px 14px;color:#555555">Für</td><td style="padding:6px 14px">{{invoiceFor}}</td></tr></table>{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Rechnungsdatum</td><td style="padding:6px 14px;color:#555555">Für</td><td style="padding:6px 14px;color:#555555">Betrag</td></tr>{{#invoices}}<tr><td style="padding:6px 14px">{{invoiceDate}}</td><td style="padding:6px 14px">{{invoiceFor}}</td><td style="padding:6px 14px;text-align:right">{{amount}}</td></tr>{{/invoices}}<tr><td style="padding:6px 14px;color:#555555">Gesamt</td><td></td><td style="padding:6px 14px;text-align:right"><strong>{{total}}</strong></td></tr></table>{{/manyInvoices}}
<p style="margin:24px 0"><a class="button" href="{{link}}" style="display:inline-block;background:#1f5fa8;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 24px;border-radius:6px;min-width:140px;text-align:center">Offenen Betrag bezahlen</a></p>
{{#hasSupport}}<p>Wenn Sie Hilfe brauchen, schreiben Sie an <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

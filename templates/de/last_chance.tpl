Subject: Letzte Gelegenheit: Ihr Abonnement bei {{merchantName}}
--- text ---
{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}

{{#manyInvoices}}Ihre Zahlungen über insgesamt {{total}}{{/manyInvoices}}{{^manyInvoices}}Ihre Zahlung über {{amount}}{{/manyInvoices}}{{#manyInvoices}} an {{merchantName}} sind noch offen.{{/manyInvoices}}{{^manyInvoices}} an {{merchantName}} ist noch offen.{{/manyInvoices}}
{{#deadline}}{{#hasDate}}Bitte aktualisieren Sie Ihre Zahlungsdaten bis zum {{date}}, damit Ihr Abonnement bestehen bleibt.{{/hasDate}}{{^hasDate}}Bitte aktualisieren Sie Ihre Zahlungsdaten bald, damit Ihr Abonnement bestehen bleibt.{{/hasDate}}{{/deadline}}{{^deadline}}{{#hasDate}}Am {{date}} unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{^hasDate}}In Kürze unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{/deadline}}
{{#hardDecline}}Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.{{/hardDecline}}{{^hardDecline}}Bitte stellen Sie sicher, dass Ihre Zahlungsdaten aktuell sind.{{/hardDecline}}

{{#hasInvoice}}{{^manyInvoices}}Betrag: {{amount}}
Rechnungsdatum: {{invoiceDate}}
Für: {{invoiceFor}}

{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}Offene Rechnungen:
{{#invoices}}- {{invoiceDate}}, {{invoiceFor}}: {{amount}}
{{/invoices}}Gesamt: {{total}}

{{/manyInvoices}}
{{link}}
{{#hasSupport}}
Fragen? Schreiben Sie an {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}</p>
<p>{{#manyInvoices}}Ihre Zahlungen über insgesamt <strong>{{total}}</strong>{{/manyInvoices}}{{^manyInvoices}}Ihre Zahlung über <strong>{{amount}}</strong>{{/manyInvoices}}{{#manyInvoices}} an {{merchantName}} sind noch offen.{{/manyInvoices}}{{^manyInvoices}} an {{merchantName}} ist noch offen.{{/manyInvoices}}
{{#deadline}}{{#hasDate}}Bitte aktualisieren Sie Ihre Zahlungsdaten bis zum {{date}}, damit Ihr Abonnement bestehen bleibt.{{/hasDate}}{{^hasDate}}Bitte aktualisieren Sie Ihre Zahlungsdaten bald, damit Ihr Abonnement bestehen bleibt.{{/hasDate}}{{/deadline}}{{^deadline}}{{#hasDate}}Am {{date}} unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{^hasDate}}In Kürze unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{/deadline}}</p>
<p>{{#hardDecline}}Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.{{/hardDecline}}{{^hardDecline}}Bitte stellen Sie sicher, dass Ihre Zahlungsdaten aktuell sind.{{/hardDecline}}</p>
{{#hasInvoice}}{{^manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Betrag</td><td style="padding:6px 14px"><strong>{{amount}}</strong></td></tr><tr><td style="padding:6px 14px;color:#555555">Rechnungsdatum</td><td style="padding:6px 14px">{{invoiceDate}}</td></tr><tr><td style="padding:6px 14px;color:#555555">Für</td><td style="padding:6px 14px">{{invoiceFor}}</td></tr></table>{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Rechnungsdatum</td><td style="padding:6px 14px;color:#555555">Für</td><td style="padding:6px 14px;color:#555555">Betrag</td></tr>{{#invoices}}<tr><td style="padding:6px 14px">{{invoiceDate}}</td><td style="padding:6px 14px">{{invoiceFor}}</td><td style="padding:6px 14px;text-align:right">{{amount}}</td></tr>{{/invoices}}<tr><td style="padding:6px 14px;color:#555555">Gesamt</td><td></td><td style="padding:6px 14px;text-align:right"><strong>{{total}}</strong></td></tr></table>{{/manyInvoices}}
<p style="margin:24px 0"><a class="button" href="{{link}}" style="display:inline-block;background:#1f5fa8;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 24px;border-radius:6px;min-width:140px;text-align:center">Zahlungsdaten aktualisieren</a></p>
{{#hasSupport}}<p>Fragen? Schreiben Sie an <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

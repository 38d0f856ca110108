Subject: Your payment to {{merchantName}} did not go through
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

we could not collect {{#manyInvoices}}your payments of {{total}}{{/manyInvoices}}{{^manyInvoices}}your payment of {{amount}}{{/manyInvoices}} to {{merchantName}}.
{{#hardDecline}}Your bank declined the card; please use another one.{{/hardDecline}}{{^hardDecline}}This is often temporary. Please check your payment details so your subscription continues without interruption.{{/hardDecline}}
{{#hasDate}}
We will try again on {{date}}.{{/hasDate}}

{{#hasInvoice}}{{^manyInvoices}}Amount: {{amount}}
Invoice date: {{invoiceDate}}
For: {{invoiceFor}}

{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}Open invoices:
{{#invoices}}- {{invoiceDate}}, {{invoiceFor}}: {{amount}}
{{/invoices}}Total: {{total}}

{{/manyInvoices}}Update your payment details here:
{{link}}
{{#hasSupport}}
Questions? Write to {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>we could not collect {{#manyInvoices}}your payments of <strong>{{total}}</strong>{{/manyInvoices}}{{^manyInvoices}}your payment of <strong>{{amount}}</strong>{{/manyInvoices}} to {{merchantName}}.</p>
<p>{{#hardDecline}}Your bank declined the card; please use another one.{{/hardDecline}}{{^hardDecline}}This is often temporary. Please check your payment details so your subscription continues without interruption.{{/hardDecline}}</p>
{{#hasDate}}<p>We will try again on {{date}}.</p>{{/hasDate}}
{{#hasInvoice}}{{^manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Amount</td><td style="padding:6px 14px"><strong>{{amount}}</strong></td></tr><tr><td style="padding:6px 14px;color:#555555">Invoice date</td><td style="padding:6px 14px">{{invoiceDate}}</td></tr><tr><td style="padding:6px 14px;color:#555555">For</td><td style="padding:6px 14px">{{invoiceFor}}</td></tr></table>{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Invoice date</td><td style="padding:6px 14px;color:#555555">For</td><td style="padding:6px 14px;color:#555555">Amount</td></tr>{{#invoices}}<tr><td style="padding:6px 14px">{{invoiceDate}}</td><td style="padding:6px 14px">{{invoiceFor}}</td><td style="padding:6px 14px;text-align:right">{{amount}}</td></tr>{{/invoices}}<tr><td style="padding:6px 14px;color:#555555">Total</td><td></td><td style="padding:6px 14px;text-align:right"><strong>{{total}}</strong></td></tr></table>{{/manyInvoices}}
<p style="margin:24px 0"><a class="button" href="{{link}}" style="display:inline-block;background:#1f5fa8;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 24px;border-radius:6px;min-width:140px;text-align:center">Update your payment details</a></p>
{{#hasSupport}}<p>Questions? Write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

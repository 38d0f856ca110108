Subject: Last chance to keep your {{merchantName}} subscription
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

{{#manyInvoices}}your payments of {{total}}{{/manyInvoices}}{{^manyInvoices}}your payment of {{amount}}{{/manyInvoices}}{{#manyInvoices}} to {{merchantName}} are still outstanding.{{/manyInvoices}}{{^manyInvoices}} to {{merchantName}} is still outstanding.{{/manyInvoices}}
{{#deadline}}{{#hasDate}}Please update your payment details by {{date}} to keep your subscription.{{/hasDate}}{{^hasDate}}Please update your payment details soon to keep your subscription.{{/hasDate}}{{/deadline}}{{^deadline}}{{#hasDate}}We will make the final attempt to collect it on {{date}}.{{/hasDate}}{{^hasDate}}We will soon make the final attempt to collect it.{{/hasDate}}{{/deadline}}
{{#hardDecline}}Your bank declined the card; please use another one.{{/hardDecline}}{{^hardDecline}}Please make sure your payment details are up to date.{{/hardDecline}}

{{#hasInvoice}}{{^manyInvoices}}Amount: {{amount}}
Invoice date: {{invoiceDate}}
For: {{invoiceFor}}

{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}Open invoices:
{{#invoices}}- {{invoiceDate}}, {{invoiceFor}}: {{amount}}
{{/invoices}}Total: {{total}}

{{/manyInvoices}}
{{link}}
{{#hasSupport}}
Questions? Write to {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>{{#manyInvoices}}your payments of <strong>{{total}}</strong>{{/manyInvoices}}{{^manyInvoices}}your payment of <strong>{{amount}}</strong>{{/manyInvoices}}{{#manyInvoices}} to {{merchantName}} are still outstanding.{{/manyInvoices}}{{^manyInvoices}} to {{merchantName}} is still outstanding.{{/manyInvoices}}
{{#deadline}}{{#hasDate}}Please update your payment details by {{date}} to keep your subscription.{{/hasDate}}{{^hasDate}}Please update your payment details soon to keep your subscription.{{/hasDate}}{{/deadline}}{{^deadline}}{{#hasDate}}We will make the final attempt to collect it on {{date}}.{{/hasDate}}{{^hasDate}}We will soon make the final attempt to collect it.{{/hasDate}}{{/deadline}}</p>
<p>{{#hardDecline}}Your bank declined the card; please use another one.{{/hardDecline}}{{^hardDecline}}Please make sure your payment details are up to date.{{/hardDecline}}</p>
{{#hasInvoice}}{{^manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Amount</td><td style="padding:6px 14px"><strong>{{amount}}</strong></td></tr><tr><td style="padding:6px 14px;color:#555555">Invoice date</td><td style="padding:6px 14px">{{invoiceDate}}</td></tr><tr><td style="padding:6px 14px;color:#555555">For</td><td style="padding:6px 14px">{{invoiceFor}}</td></tr></table>{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Invoice date</td><td style="padding:6px 14px;color:#555555">For</td><td style="padding:6px 14px;color:#555555">Amount</td></tr>{{#invoices}}<tr><td style="padding:6px 14px">{{invoiceDate}}</td><td style="padding:6px 14px">{{invoiceFor}}</td><td style="padding:6px 14px;text-align:right">{{amount}}</td></tr>{{/invoices}}<tr><td style="padding:6px 14px;color:#555555">Total</td><td></td><td style="padding:6px 14px;text-align:right"><strong>{{total}}</strong></td></tr></table>{{/manyInvoices}}
<p style="margin:24px 0"><a class="button" href="{{link}}" style="display:inline-block;background:#1f5fa8;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 24px;border-radius:6px;min-width:140px;text-align:center">Update your payment details</a></p>
{{#hasSupport}}<p>Questions? Write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

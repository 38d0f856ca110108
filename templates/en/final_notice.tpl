Subject: Your {{merchantName}} subscription is at risk
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

we were unable to collect {{#manyInvoices}}your payments of {{total}}{{/manyInvoices}}{{^manyInvoices}}your payment of {{amount}}{{/manyInvoices}} to {{merchantName}}, and we have stopped trying.

{{#hasInvoice}}{{^manyInvoices}}Amount: {{amount}}
Invoice date: {{invoiceDate}}
For: {{invoiceFor}}

{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}Open invoices:
{{#invoices}}- {{invoiceDate}}, {{invoiceFor}}: {{amount}}
{{/invoices}}Total: {{total}}

{{/manyInvoices}}Your access is at risk. You can still pay the open amount here:
{{link}}
{{#hasSupport}}
If you need help, write to {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>we were unable to collect {{#manyInvoices}}your payments of <strong>{{total}}</strong>{{/manyInvoices}}{{^manyInvoices}}your payment of <strong>{{amount}}</strong>{{/manyInvoices}} to {{merchantName}}, and we have stopped trying.</p>
<p>Your access is at risk. You can still pay the open amount.</p>
{{#hasInvoice}}{{^manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Amount</td><td style="padding:6px 14px"><strong>{{amount}}</strong></td></tr><tr><td style="padding:6px 14px;color:#555555">Invoice date</td><td style="padding:6px 14px">{{invoiceDate}}</td></tr><tr><td style="padding:6px 14px;color:#555555">For</td><td style="padding:6px 14px">{{invoiceFor}}</td></tr></table>{{/manyInvoices}}{{/hasInvoice}}{{#manyInvoices}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Invoice date</td><td style="padding:6px 14px;color:#555555">For</td><td style="padding:6px 14px;color:#555555">Amount</td></tr>{{#invoices}}<tr><td style="padding:6px 14px">{{invoiceDate}}</td><td style="padding:6px 14px">{{invoiceFor}}</td><td style="padding:6px 14px;text-align:right">{{amount}}</td></tr>{{/invoices}}<tr><td style="padding:6px 14px;color:#555555">Total</td><td></td><td style="padding:6px 14px;text-align:right"><strong>{{total}}</strong></td></tr></table>{{/manyInvoices}}
<p style="margin:24px 0"><a class="button" href="{{link}}" style="display:inline-block;background:#1f5fa8;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 24px;border-radius:6px;min-width:140px;text-align:center">Pay the open amount</a></p>
{{#hasSupport}}<p>If you need help, write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

Subject: Please confirm your payment to {{merchantName}}
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

your bank asks you to confirm the payment of {{amount}} to {{merchantName}}. This is a security step (3-D Secure) that only you can complete.

{{#hasInvoice}}Amount: {{amount}}
Invoice date: {{invoiceDate}}
For: {{invoiceFor}}

{{/hasInvoice}}Confirm the payment here:
{{link}}
{{#hasSupport}}
Questions? Write to {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>your bank asks you to confirm the payment of <strong>{{amount}}</strong> to {{merchantName}}. This is a security step (3-D Secure) that only you can complete.</p>
{{#hasInvoice}}<table class="summary" role="presentation" style="border-collapse:collapse;margin:16px 0;background:#f6f7f9;border-radius:6px"><tr><td style="padding:6px 14px;color:#555555">Amount</td><td style="padding:6px 14px"><strong>{{amount}}</strong></td></tr><tr><td style="padding:6px 14px;color:#555555">Invoice date</td><td style="padding:6px 14px">{{invoiceDate}}</td></tr><tr><td style="padding:6px 14px;color:#555555">For</td><td style="padding:6px 14px">{{invoiceFor}}</td></tr></table>{{/hasInvoice}}
<p style="margin:24px 0"><a class="button" href="{{link}}" style="display:inline-block;background:#1f5fa8;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 24px;border-radius:6px;min-width:140px;text-align:center">Confirm the payment</a></p>
{{#hasSupport}}<p>Questions? Write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

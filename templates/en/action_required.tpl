Subject: Please confirm your payment to {{merchantName}}
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

your bank asks you to confirm the payment of {{amount}} to {{merchantName}}. This is a security step (3-D Secure) that only you can complete.

Confirm the payment here:
{{link}}
{{#hasSupport}}
Questions? Write to {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>your bank asks you to confirm the payment of <strong>{{amount}}</strong> to {{merchantName}}. This is a security step (3-D Secure) that only you can complete.</p>
<p><a href="{{link}}">Confirm the payment</a></p>
{{#hasSupport}}<p>Questions? Write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

Subject: Thank you: your payment to {{merchantName}} went through
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

your payment of {{amount}} to {{merchantName}} has been received{{#hasDate}} on {{date}}{{/hasDate}}. Your subscription continues as usual; there is nothing more to do.

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>your payment of <strong>{{amount}}</strong> to {{merchantName}} has been received{{#hasDate}} on {{date}}{{/hasDate}}. Your subscription continues as usual; there is nothing more to do.</p>
<p>{{merchantName}}</p>

Subject: Your payment to {{merchantName}} did not go through
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

we could not collect your payment of {{amount}} to {{merchantName}}.
{{#hardDecline}}Your bank declined the card; please use another one.{{/hardDecline}}{{^hardDecline}}This is often temporary. Please check your payment details so your subscription continues without interruption.{{/hardDecline}}
{{#hasDate}}
We will try again on {{date}}.{{/hasDate}}

Update your payment details here:
{{link}}
{{#hasSupport}}
Questions? Write to {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>we could not collect your payment of <strong>{{amount}}</strong> to {{merchantName}}.</p>
<p>{{#hardDecline}}Your bank declined the card; please use another one.{{/hardDecline}}{{^hardDecline}}This is often temporary. Please check your payment details so your subscription continues without interruption.{{/hardDecline}}</p>
{{#hasDate}}<p>We will try again on {{date}}.</p>{{/hasDate}}
<p><a href="{{link}}">Update your payment details</a></p>
{{#hasSupport}}<p>Questions? Write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

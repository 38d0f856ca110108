Subject: Last chance to keep your {{merchantName}} subscription
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

your payment of {{amount}} to {{merchantName}} is still outstanding.
{{#deadline}}{{#hasDate}}Please update your payment details by {{date}} to keep your subscription.{{/hasDate}}{{^hasDate}}Please update your payment details soon to keep your subscription.{{/hasDate}}{{/deadline}}{{^deadline}}{{#hasDate}}We will make the final attempt to collect it on {{date}}.{{/hasDate}}{{^hasDate}}We will soon make the final attempt to collect it.{{/hasDate}}{{/deadline}}
{{#hardDecline}}Your bank declined the card; please use another one.{{/hardDecline}}{{^hardDecline}}Please make sure your payment details are up to date.{{/hardDecline}}

{{link}}
{{#hasSupport}}
Questions? Write to {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>your payment of <strong>{{amount}}</strong> to {{merchantName}} is still outstanding.
{{#deadline}}{{#hasDate}}Please update your payment details by {{date}} to keep your subscription.{{/hasDate}}{{^hasDate}}Please update your payment details soon to keep your subscription.{{/hasDate}}{{/deadline}}{{^deadline}}{{#hasDate}}We will make the final attempt to collect it on {{date}}.{{/hasDate}}{{^hasDate}}We will soon make the final attempt to collect it.{{/hasDate}}{{/deadline}}</p>
<p>{{#hardDecline}}Your bank declined the card; please use another one.{{/hardDecline}}{{^hardDecline}}Please make sure your payment details are up to date.{{/hardDecline}}</p>
<p><a href="{{link}}">Update your payment details</a></p>
{{#hasSupport}}<p>Questions? Write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

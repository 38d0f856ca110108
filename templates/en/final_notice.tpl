Subject: Your {{merchantName}} subscription is at risk
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

we were unable to collect your payment of {{amount}} to {{merchantName}}, and we have stopped trying.
Your access is at risk. You can still pay the open amount here:
{{link}}
{{#hasSupport}}
If you need help, write to {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>we were unable to collect your payment of <strong>{{amount}}</strong> to {{merchantName}}, and we have stopped trying.</p>
<p>Your access is at risk. <a href="{{link}}">You can still pay the open amount here.</a></p>
{{#hasSupport}}<p>If you need help, write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

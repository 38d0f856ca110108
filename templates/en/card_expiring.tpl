Subject: Your card for {{merchantName}} expires soon
--- text ---
{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}

the card you use for {{merchantName}} expires at the end of {{cardExpiry}}{{#hasDate}} (last valid day: {{date}}){{/hasDate}}. To keep your subscription running without interruption, please add a new card:
{{link}}
{{#hasSupport}}
Questions? Write to {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hello {{customerName}},{{/hasName}}{{^hasName}}Hello,{{/hasName}}</p>
<p>the card you use for {{merchantName}} expires at the end of {{cardExpiry}}{{#hasDate}} (last valid day: {{date}}){{/hasDate}}. To keep your subscription running without interruption, please add a new card.</p>
<p><a href="{{link}}">Add a new card</a></p>
{{#hasSupport}}<p>Questions? Write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

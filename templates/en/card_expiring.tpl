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
<p style="margin:24px 0"><a class="button" href="{{link}}" style="display:inline-block;background:#1f5fa8;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 24px;border-radius:6px;min-width:140px;text-align:center">Add a new card</a></p>
{{#hasSupport}}<p>Questions? Write to <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

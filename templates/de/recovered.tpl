Subject: Vielen Dank: Ihre Zahlung an {{merchantName}} ist eingegangen
--- text ---
{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}

Ihre Zahlung über {{amount}} an {{merchantName}} ist{{#hasDate}} am {{date}}{{/hasDate}} eingegangen. Ihr Abonnement läuft wie gewohnt weiter; Sie müssen nichts weiter tun.

{{merchantName}}
--- html ---
<p>{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}</p>
<p>Ihre Zahlung über <strong>{{amount}}</strong> an {{merchantName}} ist{{#hasDate}} am {{date}}{{/hasDate}} eingegangen. Ihr Abonnement läuft wie gewohnt weiter; Sie müssen nichts weiter tun.</p>
<p>{{merchantName}}</p>

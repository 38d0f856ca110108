Subject: Ihr Abonnement bei {{merchantName}} ist gefährdet
--- text ---
{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}

wir konnten Ihre Zahlung über {{amount}} an {{merchantName}} nicht einziehen und haben die Versuche eingestellt.
Ihr Zugang ist gefährdet. Sie können den offenen Betrag weiterhin hier bezahlen:
{{link}}
{{#hasSupport}}
Wenn Sie Hilfe brauchen, schreiben Sie an {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}</p>
<p>wir konnten Ihre Zahlung über <strong>{{amount}}</strong> an {{merchantName}} nicht einziehen und haben die Versuche eingestellt.</p>
<p>Ihr Zugang ist gefährdet. <a href="{{link}}">Sie können den offenen Betrag weiterhin hier bezahlen.</a></p>
{{#hasSupport}}<p>Wenn Sie Hilfe brauchen, schreiben Sie an <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

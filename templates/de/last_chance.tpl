Subject: Letzte Gelegenheit: Ihr Abonnement bei {{merchantName}}
--- text ---
{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}

Ihre Zahlung über {{amount}} an {{merchantName}} ist noch offen.
{{#hasDate}}Am {{date}} unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{^hasDate}}In Kürze unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}
{{#hardDecline}}Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.{{/hardDecline}}{{^hardDecline}}Bitte stellen Sie sicher, dass Ihre Zahlungsdaten aktuell sind.{{/hardDecline}}

{{link}}
{{#hasSupport}}
Fragen? Schreiben Sie an {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}</p>
<p>Ihre Zahlung über <strong>{{amount}}</strong> an {{merchantName}} ist noch offen.
{{#hasDate}}Am {{date}} unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{^hasDate}}In Kürze unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}</p>
<p>{{#hardDecline}}Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.{{/hardDecline}}{{^hardDecline}}Bitte stellen Sie sicher, dass Ihre Zahlungsdaten aktuell sind.{{/hardDecline}}</p>
<p><a href="{{link}}">Zahlungsdaten aktualisieren</a></p>
{{#hasSupport}}<p>Fragen? Schreiben Sie an <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

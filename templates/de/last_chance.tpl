Subject: Letzte Gelegenheit: Ihr Abonnement bei {{merchantName}}
--- text ---
{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}

Ihre Zahlung über {{amount}} an {{merchantName}} ist noch offen.
{{#deadline}}{{#hasDate}}Bitte aktualisieren Sie Ihre Zahlungsdaten bis zum {{date}}, damit Ihr Abonnement bestehen bleibt.{{/hasDate}}{{^hasDate}}Bitte aktualisieren Sie Ihre Zahlungsdaten bald, damit Ihr Abonnement bestehen bleibt.{{/hasDate}}{{/deadline}}{{^deadline}}{{#hasDate}}Am {{date}} unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{^hasDate}}In Kürze unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{/deadline}}
{{#hardDecline}}Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.{{/hardDecline}}{{^hardDecline}}Bitte stellen Sie sicher, dass Ihre Zahlungsdaten aktuell sind.{{/hardDecline}}

{{link}}
{{#hasSupport}}
Fragen? Schreiben Sie an {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}</p>
<p>Ihre Zahlung über <strong>{{amount}}</strong> an {{merchantName}} ist noch offen.
{{#deadline}}{{#hasDate}}Bitte aktualisieren Sie Ihre Zahlungsdaten bis zum {{date}}, damit Ihr Abonnement bestehen bleibt.{{/hasDate}}{{^hasDate}}Bitte aktualisieren Sie Ihre Zahlungsdaten bald, damit Ihr Abonnement bestehen bleibt.{{/hasDate}}{{/deadline}}{{^deadline}}{{#hasDate}}Am {{date}} unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{^hasDate}}In Kürze unternehmen wir den letzten Versuch, sie einzuziehen.{{/hasDate}}{{/deadline}}</p>
<p>{{#hardDecline}}Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.{{/hardDecline}}{{^hardDecline}}Bitte stellen Sie sicher, dass Ihre Zahlungsdaten aktuell sind.{{/hardDecline}}</p>
<p><a href="{{link}}">Zahlungsdaten aktualisieren</a></p>
{{#hasSupport}}<p>Fragen? Schreiben Sie an <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

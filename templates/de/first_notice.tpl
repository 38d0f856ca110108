Subject: Ihre Zahlung an {{merchantName}} ist fehlgeschlagen
--- text ---
{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}

wir konnten Ihre Zahlung über {{amount}} an {{merchantName}} nicht einziehen.
{{#hardDecline}}Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.{{/hardDecline}}{{^hardDecline}}Das ist oft nur vorübergehend. Bitte prüfen Sie Ihre Zahlungsdaten, damit Ihr Abonnement ohne Unterbrechung weiterläuft.{{/hardDecline}}
{{#hasDate}}
Wir versuchen es am {{date}} erneut.{{/hasDate}}

Hier können Sie Ihre Zahlungsdaten aktualisieren:
{{link}}
{{#hasSupport}}
Fragen? Schreiben Sie an {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}</p>
<p>wir konnten Ihre Zahlung über <strong>{{amount}}</strong> an {{merchantName}} nicht einziehen.</p>
<p>{{#hardDecline}}Ihre Bank hat die Karte abgelehnt; bitte verwenden Sie eine andere.{{/hardDecline}}{{^hardDecline}}Das ist oft nur vorübergehend. Bitte prüfen Sie Ihre Zahlungsdaten, damit Ihr Abonnement ohne Unterbrechung weiterläuft.{{/hardDecline}}</p>
{{#hasDate}}<p>Wir versuchen es am {{date}} erneut.</p>{{/hasDate}}
<p><a href="{{link}}">Zahlungsdaten aktualisieren</a></p>
{{#hasSupport}}<p>Fragen? Schreiben Sie an <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

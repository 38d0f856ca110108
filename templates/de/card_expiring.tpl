Subject: Ihre Karte für {{merchantName}} läuft bald ab
--- text ---
{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}

die Karte, mit der Sie bei {{merchantName}} bezahlen, läuft Ende {{cardExpiry}} ab{{#hasDate}} (letzter gültiger Tag: {{date}}){{/hasDate}}. Damit Ihr Abonnement ohne Unterbrechung weiterläuft, hinterlegen Sie bitte eine neue Karte:
{{link}}
{{#hasSupport}}
Fragen? Schreiben Sie an {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}</p>
<p>die Karte, mit der Sie bei {{merchantName}} bezahlen, läuft Ende {{cardExpiry}} ab{{#hasDate}} (letzter gültiger Tag: {{date}}){{/hasDate}}. Damit Ihr Abonnement ohne Unterbrechung weiterläuft, hinterlegen Sie bitte eine neue Karte.</p>
<p><a href="{{link}}">Neue Karte hinterlegen</a></p>
{{#hasSupport}}<p>Fragen? Schreiben Sie an <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

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
<p style="margin:24px 0"><a class="button" href="{{link}}" style="display:inline-block;background:#1f5fa8;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 24px;border-radius:6px;min-width:140px;text-align:center">Neue Karte hinterlegen</a></p>
{{#hasSupport}}<p>Fragen? Schreiben Sie an <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

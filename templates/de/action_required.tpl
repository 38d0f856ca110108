Subject: Bitte bestätigen Sie Ihre Zahlung an {{merchantName}}
--- text ---
{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}

Ihre Bank bittet Sie, die Zahlung über {{amount}} an {{merchantName}} zu bestätigen. Dieser Sicherheitsschritt (3-D Secure) kann nur von Ihnen abgeschlossen werden.

Hier bestätigen Sie die Zahlung:
{{link}}
{{#hasSupport}}
Fragen? Schreiben Sie an {{supportEmail}}.{{/hasSupport}}

{{merchantName}}
--- html ---
<p>{{#hasName}}Hallo {{customerName}},{{/hasName}}{{^hasName}}Hallo,{{/hasName}}</p>
<p>Ihre Bank bittet Sie, die Zahlung über <strong>{{amount}}</strong> an {{merchantName}} zu bestätigen. Dieser Sicherheitsschritt (3-D Secure) kann nur von Ihnen abgeschlossen werden.</p>
<p><a href="{{link}}">Zahlung bestätigen</a></p>
{{#hasSupport}}<p>Fragen? Schreiben Sie an <a href="mailto:{{supportEmail}}">{{supportEmail}}</a>.</p>{{/hasSupport}}
<p>{{merchantName}}</p>

import { escapeHtml as h } from '../reports/charts.ts';
import { formatMoney } from '../reports/metrics.ts';
import type { Access } from './access.ts';

/** The frame every /ops page shares: inline CSS, no script, nothing from another host. */
export function opsPage(title: string, access: Access, body: string): string {
  const who = access.role === 'ops' ? `signed in as ${h(access.name)} (can act)` : 'read-only access';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${h(title)} · dunning ops</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${CSS}</style></head>
<body>
<nav><a href="/ops">Open cases</a> <a href="/ops/audit.csv">Audit log (CSV)</a> <a href="/reports">Reports</a> <span class="who">${who}</span></nav>
${body}
</body></html>
`;
}

export const money = (minor: number, currency: string): string => formatMoney(minor, currency);

/** `2026-03-03 08:00 UTC`: compact and unambiguous. */
export function when(d: Date | null): string {
  return d ? `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC` : '–';
}

export { h };

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:1.2rem;color:#1a1a1a;max-width:1300px}
nav{display:flex;gap:1rem;align-items:baseline;border-bottom:1px solid #ddd;padding-bottom:.4rem;margin-bottom:.8rem}
nav .who{margin-left:auto;color:#555;font-size:12px}h1{margin:.2rem 0 .6rem;font-size:22px}h2{margin-top:1.6rem;font-size:17px}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem .9rem;align-items:end;background:#f6f7f9;padding:.6rem .8rem;border-radius:6px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#444}
table{border-collapse:collapse;width:100%;margin:.6rem 0}th,td{border-bottom:1px solid #e3e3e3;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{font-size:12px;color:#555;font-weight:600}td.num{text-align:right;white-space:nowrap}td.when{white-space:nowrap}
.tag{display:inline-block;border-radius:3px;padding:0 .35rem;font-size:12px;background:#eef}.tag.paused{background:#ffe9b3}
.tag.needs{background:#ffd0d0}.tag.hard{background:#ffd0d0}.muted{color:#666}.pager{display:flex;gap:1rem;margin:.6rem 0}
.banner{padding:.6rem .8rem;border-radius:6px;margin:.6rem 0}.banner.done{background:#e3f6e3}.banner.refused,.banner.failed{background:#fde2e2}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}.facts dt{color:#555}.facts dd{margin:0}
.actions{display:flex;gap:.6rem;flex-wrap:wrap;margin:.6rem 0}.actions form{margin:0}
button{font:inherit;padding:.3rem .8rem;border-radius:5px;border:1px solid #777;background:#fff;cursor:pointer}
button.primary{background:#1f5fa8;color:#fff;border-color:#1f5fa8}
.timeline{list-style:none;padding:0}.timeline li{border-left:3px solid #ccd;padding:.2rem 0 .5rem .8rem;margin-left:.3rem}
.timeline li.attempt{border-color:#1f5fa8}.timeline li.email{border-color:#4a9a4a}.timeline li.stripe{border-color:#635bff}.timeline li.ops{border-color:#c77700}
.timeline .t{font-size:12px;color:#555}details pre{white-space:pre-wrap;background:#f6f7f9;padding:.5rem;border-radius:4px;max-width:80ch}`;

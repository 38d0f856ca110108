import { DECLINE_CATEGORIES } from '../dunning/declines.ts';
import type { Access } from './access.ts';
import type { CasePage } from './case-list.ts';
import { CASE_STATES, DUE_WINDOWS, filterQuery, type CaseFilters } from './filters.ts';
import { h, money, opsPage, when } from './page.ts';

const STATE_LABELS: Record<(typeof CASE_STATES)[number], string> = {
  open: 'open (all)',
  active: 'open, not paused',
  paused: 'paused',
  needs_ops: 'needs ops (charge outcome unknown)',
  recovered: 'recovered',
  lost: 'lost',
  closed: 'closed otherwise',
};
const DUE_LABELS: Record<(typeof DUE_WINDOWS)[number], string> = {
  overdue: 'overdue',
  '24h': 'within 24 hours',
  '7d': 'within 7 days',
  none: 'none planned',
};

function select(name: string, label: string, value: string | null, options: Array<[string, string]>): string {
  return `<label>${h(label)}<select name="${name}"><option value="">any</option>${options
    .map(([v, l]) => `<option value="${h(v)}"${v === value ? ' selected' : ''}>${h(l)}</option>`)
    .join('')}</select></label>`;
}

/** The case list: filters, then one page of cases, largest amount first. */
export function renderCaseList(
  access: Access,
  f: CaseFilters,
  page: CasePage,
  choices: { policies: string[] },
  error: string | null = null,
): string {
  const states = CASE_STATES.map((s): [string, string] => [s, STATE_LABELS[s]]);
  const form = `<form class="filters" method="get" action="/ops">
<label>Search<input name="q" type="search" size="28" value="${h(f.search ?? '')}" placeholder="email, cus_… or in_…"></label>
<label>Currency<input name="currency" size="4" value="${h(f.currency ?? '')}" placeholder="any"></label>
${select(
  'category',
  'Decline category',
  f.category,
  DECLINE_CATEGORIES.map((c) => [c, c]),
)}
<label>Status<select name="status">${states
    .map(([v, l]) => `<option value="${v}"${v === f.state ? ' selected' : ''}>${h(l)}</option>`)
    .join('')}</select></label>
${select(
  'due',
  'Next attempt',
  f.due,
  DUE_WINDOWS.map((d) => [d, DUE_LABELS[d]]),
)}
${select(
  'policy',
  'Policy',
  f.policy,
  choices.policies.map((p) => [p, p.length > 14 ? `${p.slice(0, 12)}…` : p]),
)}
${select('cohort', 'Cohort', f.cohort, [
  ['smart', 'smart'],
  ['holdout', 'holdout'],
])}
<button class="primary">Filter</button> <a href="/ops">Reset</a></form>`;
  const rows = page.rows.map(
    (r) => `<tr data-invoice="${h(r.invoiceId)}">
<td class="num">${h(money(r.amount, r.currency))}</td>
<td><a href="/ops/case?invoice=${encodeURIComponent(r.invoiceId)}">${h(r.invoiceId)}</a></td>
<td>${h(r.email ?? '')}<div class="muted">${h(r.customerId)}</div></td>
<td>${h(r.status)}${r.paused ? ' <span class="tag paused">paused</span>' : ''}${r.needsOps ? ' <span class="tag needs">needs ops</span>' : ''}</td>
<td>${r.declineCategory ? `<span class="tag ${h(r.declineCategory)}">${h(r.declineCategory)}</span>` : ''}<div class="muted">${h(r.declineCode ?? '')}</div></td>
<td class="num">${r.attempts}</td>
<td class="when">${h(when(r.nextAttemptAt))}<div class="muted">${h(r.nextAttemptReason ?? '')}</div></td>
<td class="when">${h(when(r.openedAt))}</td>
<td class="muted">${h(r.cohort)}</td></tr>`,
  );
  const table =
    page.rows.length === 0
      ? '<p class="empty">No cases match.</p>'
      : `<table id="cases"><thead><tr><th>Amount at risk</th><th>Invoice</th><th>Customer</th><th>Status</th><th>Last decline</th><th>Attempts</th><th>Next attempt</th><th>Opened</th><th>Cohort</th></tr></thead>
<tbody>${rows.join('')}</tbody></table>`;
  const pager = `<div class="pager">${f.after ? `<a href="/ops${h(filterQuery(f, null))}">« First page</a>` : ''}${
    page.next ? `<a rel="next" href="/ops${h(filterQuery(f, page.next))}">Next page »</a>` : ''
  }</div>`;
  return opsPage(
    'Cases',
    access,
    `<h1>Cases</h1>${form}${error ? `<p class="banner refused">${h(error)}</p>` : ''}
<p class="muted">Largest amount first (in the currency's own units: filter by currency to compare like with like). Times are UTC.</p>
${table}${pager}`,
  );
}

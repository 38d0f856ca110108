import { DateTime } from 'luxon';
import type { CurrencyReport, Report } from './build.ts';
import { adaptiveLines } from './adaptive.ts';
import { REMINDER_STEP_COLUMNS, reminderStepRows } from './render-table.ts';
import { columnChart, escapeHtml as h, horizontalBars, trendChart, type Bar, type TrendPoint } from './charts.ts';
import { formatDuration, formatMoney, formatPercent, formatPoints } from './metrics.ts';
import { TREND_MONTHS } from './queries.ts';

/** The dashboard page: server-rendered, self-contained (inline CSS and SVG, no scripts). */
export function renderHtml(report: Report, links: { json: string; csv: string }): string {
  const p = report.period;
  const churn =
    report.churn.activeAtStart === 0
      ? 'n/a'
      : `${formatPercent(report.churn.rate, 2)} (${report.churn.churned} of ${report.churn.activeAtStart} customers)`;
  const sections =
    report.currencies.length === 0
      ? '<p class="empty">No dunning activity in this period.</p>'
      : report.currencies.map((c) => currencySection(c, report)).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dunning recovery ${h(p.from)} to ${h(p.to)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${CSS}</style></head>
<body>
<header><h1>Dunning recovery</h1>
<form method="get" action="/reports"><label>From <input type="date" name="from" value="${h(p.from)}"></label>
<label>To <input type="date" name="to" value="${h(p.to)}"></label>
<label>Currency <input name="currency" size="4" value="${h(report.currency ?? '')}" placeholder="all"></label>
<button>Show</button> <a href="${h(links.json)}">JSON</a> <a href="${h(links.csv)}">CSV</a></form>
<p>Period ${h(p.from)} to ${h(p.to)} (${h(p.timeZone)}); at-risk snapshot ${h(p.snapshotAt)}. Involuntary churn, all currencies: <span id="churn">${h(churn)}</span>.</p>${adaptiveSection(report)}</header>
${churnSection(report)}
<main>${sections}</main>
<section id="definitions"><h2>Definitions</h2><dl>${report.definitions.map((d) => `<dt>${h(d.term)}</dt><dd>${h(d.text)}</dd>`).join('')}</dl></section>
</body></html>
`;
}

/** The learned-timing lines of the text report (adaptiveLines), as a paragraph and a list of policies. */
function adaptiveSection(report: Report): string {
  const a = adaptiveLines(report.adaptive);
  const items = a.policies.map((p) => `<li data-policy="${h(p.name)}">${h(p.text)}</li>`).join('');
  return `<div id="adaptive"><p>${h(a.head)}.</p>${items ? `<ul>${items}</ul>` : ''}</div>`;
}

/** The months of the trend, oldest first, ending with the period's last month; empty months stay. */
function trendPoints(c: CurrencyReport, report: Report): TrendPoint[] {
  const last = DateTime.fromISO(report.period.end, { zone: report.period.timeZone }).minus({ milliseconds: 1 });
  const byMonth = new Map(c.byMonth.map((m) => [m.month, m]));
  return Array.from({ length: TREND_MONTHS }, (_, i) => {
    const label = last.minus({ months: TREND_MONTHS - 1 - i }).toFormat('yyyy-MM');
    const m = byMonth.get(label);
    return {
      label,
      value: m?.recoveredAmount.minor ?? 0,
      display: m?.recoveredAmount.formatted ?? formatMoney(0, c.currency),
      rate: m?.rate ?? null,
      rateDisplay: m ? `${formatPercent(m.rate)} of ${m.opened - m.voided} cases` : 'no cases',
    };
  });
}

/**
 * Churn two ways, side by side: a few lost customers can be a large share of revenue, or many
 * small ones a small share.
 */
function churnSection(report: Report): string {
  const c = report.churn;
  const customers = `<div class="tile" id="churn-customers"><div class="label">Involuntary churn by customers</div><div class="value">${h(formatPercent(c.rate, 2))}</div><div class="sub">${c.churned} of ${c.activeAtStart} customers active at the start</div></div>`;
  const revenue = c.byRevenue.map(
    (r) =>
      `<div class="tile" id="churn-revenue-${h(r.currency)}"><div class="label">By revenue (${h(r.currency.toUpperCase())})</div><div class="value">${h(formatPercent(r.rate, 2))}</div><div class="sub">${h(r.churned.formatted)} of ${h(r.base.formatted)} per billing period</div></div>`,
  );
  return `<section id="churn-section"><h2>Involuntary churn</h2><div class="tiles">${customers}${revenue.join('') || '<div class="tile"><div class="label">By revenue</div><div class="value">n/a</div><div class="sub">no invoices before the period</div></div>'}</div></section>`;
}

function currencySection(c: CurrencyReport, report: Report): string {
  const cur = c.currency;
  const tile = (id: string, label: string, value: string, sub: string) =>
    `<div class="tile" id="${h(cur)}-${id}"><div class="label">${h(label)}</div><div class="value">${h(value)}</div><div class="sub">${h(sub)}</div></div>`;
  const lift = c.policy.lift;
  const pct = (b: { label: string; rate: number | null }): Bar => ({
    label: b.label,
    value: b.rate ?? 0,
    display: formatPercent(b.rate),
  });
  return `<section class="currency" id="currency-${h(cur)}"><h2>${h(cur.toUpperCase())}</h2>
<div class="tiles">
${tile('recovered', 'Recovered in period', c.recovered.amount.formatted, `${c.recovered.count} cases`)}
${tile('at-risk', 'Still at risk', c.atRisk.amount.formatted, `${c.atRisk.count} open cases`)}
${tile('lost', 'Lost in period', c.lost.amount.formatted, `${c.lost.count} cases`)}
${tile('opened', 'Cases opened', c.opened.amount.formatted, `${c.opened.count} cases, ${c.voided.count} voided`)}
${tile('rate', 'Recovery rate', formatPercent(c.cohort.rateByCount), `${formatPercent(c.cohort.rateByRevenue)} by revenue, ${c.cohort.open} still open`)}
${tile('time', 'Time to recover', formatDuration(c.timeToRecover.medianSeconds), `p90 ${formatDuration(c.timeToRecover.p90Seconds)}`)}
${tile('lift', 'Smart vs holdout', lift ? formatPoints(lift.difference) : 'n/a', lift ? `95 % CI ${formatPoints(lift.low)} .. ${formatPoints(lift.high)}` : 'needs both groups')}
</div>
<div class="charts">
${trendChart(`${cur}-chart-trend`, `Last ${TREND_MONTHS} months: recovered revenue (bars) and recovery rate (line), by month of first failure`, trendPoints(c, report))}
${columnChart(`${cur}-chart-timeline`, `Recovered revenue per ${report.period.timelineUnit}`, timelineBars(c, report))}
${horizontalBars(
  `${cur}-chart-attempt`,
  'Success rate by attempt number',
  c.byAttempt.map((a) => pct({ label: `attempt ${a.attemptNo}`, rate: a.rate })),
  1,
)}
${horizontalBars(
  `${cur}-chart-category`,
  'Recovery rate by decline category',
  c.byCategory.map((r) => pct({ label: r.key, rate: r.rate })),
  1,
)}
${horizontalBars(
  `${cur}-chart-path`,
  'Recovered revenue by path (cases opened in the period)',
  c.byPath.map((r) => ({ label: r.path, value: r.amount.minor, display: r.amount.formatted })),
)}
</div>
<div class="tables">
<div>${table(
    'Recovered at attempt N: share of recoveries',
    ['attempt', 'charges', 'succeeded', 'success rate', 'share of recoveries', 'recovered amount'],
    c.byAttempt.map((a) => [
      a.attemptNo,
      a.attempted,
      a.succeeded,
      formatPercent(a.rate),
      formatPercent(a.shareOfRecoveries),
      a.amount.formatted,
    ]),
    `${cur}-table-attempt`,
  )}</div>
<div>${table(
    'By decline category',
    ['category', 'cases', 'recovered', 'rate', 'recovered amount'],
    c.byCategory.map((r) => [r.key, r.cases, r.recovered, formatPercent(r.rate), r.recoveredAmount.formatted]),
    `${cur}-table-category`,
  )}</div>
</div>
${table(
  'Smart policy vs holdout',
  ['group', 'cases', 'recovered', 'rate', 'recovered amount'],
  (['smart', 'holdout'] as const).map((g) => [
    g,
    c.policy[g].cases,
    c.policy[g].recovered,
    formatPercent(c.policy[g].rate),
    c.policy[g].recoveredAmount.formatted,
  ]),
)}
${
  c.policy.byCategory.length > 0
    ? table(
        'Lift by decline category',
        ['category', 'smart', 'holdout', 'lift', '95 % CI'],
        c.policy.byCategory.map((r) => [
          r.category,
          `${r.smart.recovered}/${r.smart.cases}`,
          `${r.holdout.recovered}/${r.holdout.cases}`,
          r.lift ? formatPoints(r.lift.difference) : 'n/a',
          r.lift ? `${formatPoints(r.lift.low)} .. ${formatPoints(r.lift.high)}` : 'needs both groups',
        ]),
      )
    : ''
}
${table(
  'By decline code',
  ['code', 'cases', 'recovered', 'rate', 'recovered amount'],
  c.byCode.map((r) => [r.key, r.cases, r.recovered, formatPercent(r.rate), r.recoveredAmount.formatted]),
)}
${
  c.byPolicy.length > 0
    ? table(
        'By policy (segment rules)',
        ['policy', 'cases', 'recovered', 'rate', 'recovered amount'],
        c.byPolicy.map((r) => [r.key, r.cases, r.recovered, formatPercent(r.rate), r.recoveredAmount.formatted]),
      )
    : ''
}
${table(
  'By recovery path',
  ['path', 'recovered', 'amount', 'share'],
  c.byPath.map((r) => [r.path, r.count, r.amount.formatted, formatPercent(r.share)]),
)}
${
  c.byReminder === null
    ? '<h3>By reminder step</h3><p>Reminders are not set up on this database.</p>'
    : table('By reminder step', REMINDER_STEP_COLUMNS, reminderStepRows(c.byReminder))
}
${table(
  'By cohort (month of first failure)',
  ['month', 'opened', 'recovered', 'lost', 'open', 'rate', 'revenue rate'],
  c.byMonth.map((m) => [
    m.month,
    m.opened,
    m.recovered,
    m.lost,
    m.open,
    formatPercent(m.rate),
    formatPercent(m.revenueRate),
  ]),
)}
</section>`;
}

/** One bar per day (or month) of the period, zero where nothing was recovered. */
function timelineBars(c: CurrencyReport, report: Report): Bar[] {
  const unit = report.period.timelineUnit;
  const byBucket = new Map(c.timeline.map((t) => [t.bucket, t.amount.minor]));
  const bars: Bar[] = [];
  const zone = report.period.timeZone;
  const end = DateTime.fromISO(report.period.to, { zone });
  for (
    let d = DateTime.fromISO(report.period.from, { zone }).startOf(unit);
    d <= end;
    d = d.plus(unit === 'day' ? { days: 1 } : { months: 1 })
  ) {
    const label = unit === 'day' ? d.toISODate()! : d.toFormat('yyyy-MM');
    const value = byBucket.get(label) ?? 0;
    bars.push({ label, value, display: formatMoney(value, c.currency) });
  }
  return bars;
}

function table(title: string, header: string[], rows: Array<Array<string | number>>, id?: string): string {
  const body =
    rows.length === 0
      ? `<tr><td colspan="${header.length}">none</td></tr>`
      : rows
          .map(
            (r) =>
              `<tr>${r.map((v) => `<td${typeof v === 'number' ? ' class="num"' : ''}>${h(String(v))}</td>`).join('')}</tr>`,
          )
          .join('');
  return `<h3>${h(title)}</h3><table${id ? ` id="${h(id)}"` : ''}><thead><tr>${header.map((x) => `<th>${h(x)}</th>`).join('')}</tr></thead><tbody>${body}</tbody></table>`;
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1a1a1a;max-width:1200px}
h1{margin:0 0 .5rem}h2{border-bottom:2px solid #ccc;margin-top:2rem}form label{margin-right:.8rem}
.tiles{display:flex;flex-wrap:wrap;gap:.8rem}.tile{border:1px solid #ccc;border-radius:6px;padding:.6rem .9rem;min-width:150px}
.tile .label{color:#555;font-size:12px}.tile .value{font-size:22px;font-weight:600}.tile .sub{color:#555;font-size:12px}
.charts,.tables{display:flex;flex-wrap:wrap;gap:1.5rem;margin-top:1rem}figure{margin:0}figcaption{font-weight:600;margin-bottom:.3rem}
svg text{font-size:11px;fill:#333}svg rect{fill:#2f6fb0}svg circle.rate{fill:#d9480f}svg .axis{stroke:#999}
table{border-collapse:collapse;margin:.3rem 0 1rem}th,td{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:left}td.num{text-align:right}
dt{font-weight:600;margin-top:.4rem}dd{margin-left:1rem;color:#333}`;

import { adaptiveLines } from './adaptive.ts';
import type { CurrencyReport, Report } from './build.ts';
import { formatDuration, formatPercent, formatPoints } from './metrics.ts';

/** The terminal report: one block per currency, aligned columns, definitions at the end. */
export function renderTable(report: Report, options: { definitions?: boolean } = {}): string {
  const p = report.period;
  const out: string[] = [];
  out.push(
    `Dunning recovery report  ${p.from} .. ${p.to} (${p.timeZone})${report.currency ? `  currency ${report.currency.toUpperCase()}` : ''}`,
  );
  out.push(`At-risk snapshot at ${p.snapshotAt}`);
  const churn = report.churn;
  out.push(
    `Involuntary churn (all currencies): ${churn.activeAtStart === 0 ? 'n/a (no subscriptions active at the start of the period)' : `${churn.churned} of ${churn.activeAtStart} customers = ${formatPercent(churn.rate, 2)}`}`,
  );
  const adaptive = adaptiveLines(report.adaptive);
  out.push(adaptive.head, ...adaptive.policies.map((p) => `  ${p.text}`));
  if (report.currencies.length === 0) out.push('', 'No dunning activity in this period.');
  for (const c of report.currencies) out.push('', ...currencyBlock(c));
  if (options.definitions ?? true) {
    out.push('', 'Definitions');
    for (const d of report.definitions) out.push(`  ${d.term}: ${d.text}`);
  }
  return out.join('\n') + '\n';
}

function currencyBlock(c: CurrencyReport): string[] {
  const out = [`== ${c.currency.toUpperCase()} ==`];
  out.push(
    ...grid(
      ['metric', 'count', 'amount'],
      [
        ['cases opened', c.opened.count, c.opened.amount.formatted],
        ['  of which voided', c.voided.count, c.voided.amount.formatted],
        ['recovered in period', c.recovered.count, c.recovered.amount.formatted],
        ['  of which partly paid', c.recovered.partial, ''],
        ['lost in period', c.lost.count, c.lost.amount.formatted],
        ['still at risk', c.atRisk.count, c.atRisk.amount.formatted],
      ],
    ),
  );
  out.push(
    `recovery rate of cases opened: ${formatPercent(c.cohort.rateByCount)} by count (${c.cohort.recovered}/${c.cohort.eligible}), ` +
      `${formatPercent(c.cohort.rateByRevenue)} by revenue (${c.cohort.recoveredAmount.formatted} of ${c.cohort.eligibleAmount.formatted}); ${c.cohort.open} still open`,
    `time to recover: median ${formatDuration(c.timeToRecover.medianSeconds)}, p90 ${formatDuration(c.timeToRecover.p90Seconds)}`,
  );
  const lift = c.policy.lift;
  out.push('', 'Smart policy vs holdout');
  out.push(
    ...grid(
      ['group', 'cases', 'recovered', 'rate', 'recovered amount'],
      [
        [
          'smart',
          c.policy.smart.cases,
          c.policy.smart.recovered,
          formatPercent(c.policy.smart.rate),
          c.policy.smart.recoveredAmount.formatted,
        ],
        [
          'holdout',
          c.policy.holdout.cases,
          c.policy.holdout.recovered,
          formatPercent(c.policy.holdout.rate),
          c.policy.holdout.recoveredAmount.formatted,
        ],
      ],
    ),
  );
  out.push(
    lift
      ? `lift ${formatPoints(lift.difference)} (95 % CI ${formatPoints(lift.low)} .. ${formatPoints(lift.high)})`
      : 'lift: n/a (needs cases in both groups)',
  );
  if (c.policy.byCategory.length > 0)
    out.push(
      '',
      'Lift by decline category',
      ...grid(
        ['category', 'smart', 'holdout', 'lift', '95 % CI'],
        c.policy.byCategory.map((r) => [
          r.category,
          `${r.smart.recovered}/${r.smart.cases}`,
          `${r.holdout.recovered}/${r.holdout.cases}`,
          r.lift ? formatPoints(r.lift.difference) : 'n/a',
          r.lift ? `${formatPoints(r.lift.low)} .. ${formatPoints(r.lift.high)}` : 'needs both groups',
        ]),
      ),
    );
  const rows = (title: string, b: CurrencyReport['byCategory']) => {
    out.push(
      '',
      title,
      ...grid(
        ['key', 'cases', 'recovered', 'rate', 'recovered amount'],
        b.map((r) => [r.key, r.cases, r.recovered, formatPercent(r.rate), r.recoveredAmount.formatted]),
      ),
    );
  };
  rows('By decline category (first decline)', c.byCategory);
  rows('By decline code (first decline)', c.byCode);
  if (c.byPolicy.length > 0) rows('By policy (segment rules)', c.byPolicy);
  out.push(
    '',
    'By attempt number',
    ...grid(
      ['attempt', 'charged', 'succeeded', 'success rate', 'share of recoveries'],
      c.byAttempt.map((a) => [
        a.attemptNo,
        a.attempted,
        a.succeeded,
        formatPercent(a.rate),
        formatPercent(a.shareOfRecoveries),
      ]),
    ),
  );
  out.push(
    '',
    'By recovery path (cases opened in the period)',
    ...grid(
      ['path', 'recovered', 'amount', 'share'],
      c.byPath.map((p) => [p.path, p.count, p.amount.formatted, formatPercent(p.share)]),
    ),
  );
  out.push('', 'By reminder step');
  if (c.byReminder === null) out.push('  (reminders are not set up on this database)');
  else out.push(...grid(REMINDER_STEP_COLUMNS, reminderStepRows(c.byReminder)));
  out.push(
    '',
    'By cohort (month of first failure)',
    ...grid(
      ['month', 'opened', 'voided', 'recovered', 'lost', 'open', 'rate', 'revenue rate'],
      c.byMonth.map((m) => [
        m.month,
        m.opened,
        m.voided,
        m.recovered,
        m.lost,
        m.open,
        formatPercent(m.rate),
        formatPercent(m.revenueRate),
      ]),
    ),
  );
  return out;
}

/**
 * Names (the first column, identifiers such as first_notice) left-aligned, figures right-aligned;
 * empty tables say so instead of printing a lone header.
 */
export function grid(header: string[], rows: Array<Array<string | number>>): string[] {
  if (rows.length === 0) return ['  (none)'];
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => i > 0 && !rows.some((r) => typeof r[i] === 'string' && /^[a-z_]+$/.test(r[i])));
  return cells.map(
    (r) =>
      '  ' +
      r
        .map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
  );
}

/** The reminder-step breakdown's columns and rows, the same in the text and the HTML report. */
export const REMINDER_STEP_COLUMNS = [
  'step',
  'kind',
  'sent to',
  'recovered after',
  'rate',
  'merged',
  'deferred by cap',
];

export function reminderStepRows(rows: NonNullable<CurrencyReport['byReminder']>): Array<Array<string | number>> {
  return rows.map((r) => [r.step, r.kind, r.reached, r.recoveredAfter, formatPercent(r.rate), r.merged, r.deferred]);
}

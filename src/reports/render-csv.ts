import type { Report } from './build.ts';

/**
 * The report as one long CSV table (currency, section, key, metric, value), which every
 * spreadsheet can pivot. Amounts are in minor units; the currency column says which.
 */
export function renderCsv(report: Report): string {
  const rows: Array<Array<string | number | null>> = [['currency', 'section', 'key', 'metric', 'value']];
  const add = (currency: string, section: string, key: string, metric: string, value: string | number | null) =>
    rows.push([currency, section, key, metric, value]);
  const p = report.period;
  add('', 'period', '', 'from', p.from);
  add('', 'period', '', 'to', p.to);
  add('', 'period', '', 'time_zone', p.timeZone);
  add('', 'period', '', 'at_risk_snapshot_at', p.snapshotAt);
  add('', 'churn', '', 'active_customers_at_start', report.churn.activeAtStart);
  add('', 'churn', '', 'churned_customers', report.churn.churned);
  add('', 'churn', '', 'rate', report.churn.rate);
  const a = report.adaptive;
  add('', 'adaptive', '', 'computed_at', a?.computedAt ?? null);
  if (a) {
    add('', 'adaptive', '', 'in_use', a.inUse ? 1 : 0);
    add('', 'adaptive', '', 'retries', a.retries);
    for (const c of a.categories) add('', 'adaptive', c.category, 'retries', c.retries);
    // Per policy, as the text and HTML reports list them (src/reports/adaptive.ts).
    for (const p of a.policies) {
      add('', 'adaptive_policy', p.name, 'mode', p.mode);
      add('', 'adaptive_policy', p.name, 'cases', p.cases);
      for (const c of a.categories)
        add('', 'adaptive_policy', p.name, `${c.category}_in_use`, p.inUse[c.category] ? 1 : 0);
    }
  }
  for (const c of report.currencies) {
    const cur = c.currency;
    const s = (metric: string, value: number | null) => add(cur, 'summary', '', metric, value);
    s('opened_count', c.opened.count);
    s('opened_amount', c.opened.amount.minor);
    s('voided_count', c.voided.count);
    s('voided_amount', c.voided.amount.minor);
    s('recovered_count', c.recovered.count);
    s('recovered_amount', c.recovered.amount.minor);
    s('recovered_partial_count', c.recovered.partial);
    s('lost_count', c.lost.count);
    s('lost_amount', c.lost.amount.minor);
    s('at_risk_count', c.atRisk.count);
    s('at_risk_amount', c.atRisk.amount.minor);
    s('cohort_eligible_count', c.cohort.eligible);
    s('cohort_recovered_count', c.cohort.recovered);
    s('recovery_rate_by_count', c.cohort.rateByCount);
    s('recovery_rate_by_revenue', c.cohort.rateByRevenue);
    s('time_to_recover_median_seconds', c.timeToRecover.medianSeconds);
    s('time_to_recover_p90_seconds', c.timeToRecover.p90Seconds);
    for (const [section, list] of [
      ['decline_category', c.byCategory],
      ['decline_code', c.byCode],
      ['policy', c.byPolicy],
    ] as const) {
      for (const r of list) {
        add(cur, section, r.key, 'cases', r.cases);
        add(cur, section, r.key, 'recovered', r.recovered);
        add(cur, section, r.key, 'recovered_amount', r.recoveredAmount.minor);
        add(cur, section, r.key, 'rate', r.rate);
      }
    }
    for (const a of c.byAttempt) {
      const k = String(a.attemptNo);
      add(cur, 'attempt', k, 'charged', a.attempted);
      add(cur, 'attempt', k, 'succeeded', a.succeeded);
      add(cur, 'attempt', k, 'success_rate', a.rate);
      add(cur, 'attempt', k, 'share_of_recoveries', a.shareOfRecoveries);
    }
    for (const r of c.byPath) {
      add(cur, 'path', r.path, 'recovered', r.count);
      add(cur, 'path', r.path, 'amount', r.amount.minor);
    }
    for (const r of c.byReminder ?? []) {
      const k = `${r.step}:${r.kind}`;
      add(cur, 'reminder', k, 'sent_to', r.reached);
      add(cur, 'reminder', k, 'recovered_after', r.recoveredAfter);
      add(cur, 'reminder', k, 'merged', r.merged);
      add(cur, 'reminder', k, 'deferred_by_cap', r.deferred);
    }
    for (const m of c.byMonth) {
      add(cur, 'cohort', m.month, 'opened', m.opened);
      add(cur, 'cohort', m.month, 'recovered', m.recovered);
      add(cur, 'cohort', m.month, 'lost', m.lost);
      add(cur, 'cohort', m.month, 'open', m.open);
      add(cur, 'cohort', m.month, 'rate', m.rate);
    }
    for (const arm of ['smart', 'holdout'] as const) {
      const a = c.policy[arm];
      add(cur, 'policy', arm, 'cases', a.cases);
      add(cur, 'policy', arm, 'recovered', a.recovered);
      add(cur, 'policy', arm, 'rate', a.rate);
    }
    const l = c.policy.lift;
    add(cur, 'policy', 'lift', 'difference', l?.difference ?? null);
    add(cur, 'policy', 'lift', 'ci95_low', l?.low ?? null);
    add(cur, 'policy', 'lift', 'ci95_high', l?.high ?? null);
    for (const r of c.policy.byCategory) {
      add(cur, 'lift_by_category', r.category, 'smart_cases', r.smart.cases);
      add(cur, 'lift_by_category', r.category, 'smart_recovered', r.smart.recovered);
      add(cur, 'lift_by_category', r.category, 'holdout_cases', r.holdout.cases);
      add(cur, 'lift_by_category', r.category, 'holdout_recovered', r.holdout.recovered);
      add(cur, 'lift_by_category', r.category, 'difference', r.lift?.difference ?? null);
      add(cur, 'lift_by_category', r.category, 'ci95_low', r.lift?.low ?? null);
      add(cur, 'lift_by_category', r.category, 'ci95_high', r.lift?.high ?? null);
    }
    for (const t of c.timeline) add(cur, 'recovered_over_time', t.bucket, 'amount', t.amount.minor);
  }
  for (const d of report.definitions) add('', 'definition', d.term, 'text', d.text);
  return rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

/**
 * RFC 4180 quoting, plus a guard against spreadsheet formula injection: a text cell that starts
 * with = + - @ or a control character gets a leading apostrophe. Numbers are written as numbers.
 */
export function csvCell(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  let text = value;
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

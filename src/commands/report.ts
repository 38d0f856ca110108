import { parseArgs } from 'node:util';
import { systemClock } from '../clock.ts';
import { loadReport } from '../reports/build.ts';
import { parseCurrency, PeriodError, resolvePeriod } from '../reports/period.ts';
import { renderCsv } from '../reports/render-csv.ts';
import { renderTable } from '../reports/render-table.ts';
import { openRuntime } from '../runtime.ts';
import { UsageError, type Command } from './types.ts';

const FORMATS = ['table', 'csv', 'json'];

export const reportCommand: Command = {
  name: 'report',
  summary: 'recovery report: recovered, at risk, lost, rates and breakdowns for a period',
  help: `Usage: dunning report [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--currency usd] [--format table|csv|json]

Prints how much dunning recovered in a period, what is still at risk, what was lost, recovery
rates, time to recover, and breakdowns by decline category and code, attempt number, recovery
path, reminder step, cohort month, and smart policy vs holdout (lift with 95 % CI).

  --from      first day of the period (inclusive); default: first day of --to's month
  --to        last day of the period (inclusive); default: last day of the current month
  --currency  only this currency (three-letter code); default: every currency, each apart
  --format    table (default, for the terminal), csv (for spreadsheets) or json

Days are calendar days in DEFAULT_TIME_ZONE. Amounts in csv and json are in minor units (cents).
The definitions of every figure are printed with the report. The same report is served at
/reports (HTML), /reports.json and /reports.csv when REPORTS_TOKEN is set.`,
  async run(argv, env) {
    const { values } = parseArgs({
      args: argv,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        currency: { type: 'string' },
        format: { type: 'string', default: 'table' },
      },
      strict: true,
      allowPositionals: false,
    });
    const format = values.format ?? 'table';
    if (!FORMATS.includes(format))
      throw new UsageError(`--format: expected one of ${FORMATS.join(', ')}, got "${format}"`);
    let currency: string | null;
    try {
      currency = parseCurrency(values.currency);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const rt = await openRuntime(env, { logLevel: 'warn', poolSize: 12 });
    try {
      let period;
      try {
        period = resolvePeriod({
          from: values.from,
          to: values.to,
          timeZone: rt.config.defaultTimeZone,
          now: systemClock.now(),
        });
      } catch (err) {
        if (err instanceof PeriodError) throw new UsageError(err.message);
        throw err;
      }
      const report = await loadReport(rt.sql, { period, currency, asOf: systemClock.now() });
      const text =
        format === 'json'
          ? JSON.stringify(report, null, 2) + '\n'
          : format === 'csv'
            ? renderCsv(report)
            : renderTable(report);
      process.stdout.write(text);
      return 0;
    } finally {
      await rt.close();
    }
  },
};

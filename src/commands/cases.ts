import { parseArgs } from 'node:util';
import { listCases } from '../dunning/ops-actions.ts';
import { money, openOps, table, when } from '../dunning/ops-context.ts';
import { UsageError, type Command } from './types.ts';

export const casesCommand: Command = {
  name: 'cases',
  summary: 'list dunning cases: amount, status, attempts, next attempt and why',
  help: `Usage: dunning cases [--open] [--limit N]

Lists dunning cases, open ones first by their next attempt time: invoice, customer, amount,
status, attempts charged so far, and when the next attempt runs and why (the planner's reason).

  --open     only open cases
  --limit N  at most N cases (default 50, at most 10000)

Times are UTC. \`dunning case <invoice>\` shows one case's full history.`,
  async run(argv, env) {
    const { values } = parseArgs({
      args: argv,
      options: { open: { type: 'boolean', default: false }, limit: { type: 'string', default: '50' } },
      strict: true,
    });
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw new UsageError(`--limit: expected an integer from 1 to 10000, got "${values.limit}"`);
    const ops = await openOps(env);
    try {
      const rows = await listCases(ops.rt.sql, { openOnly: values.open ?? false, limit });
      if (rows.length === 0) {
        console.log(values.open ? 'No open dunning cases.' : 'No dunning cases.');
        return 0;
      }
      process.stdout.write(
        table(
          ['INVOICE', 'CUSTOMER', 'AMOUNT', 'STATUS', 'ATTEMPTS', 'NEXT ATTEMPT', 'REASON'],
          rows.map((r) => [
            r.invoiceId,
            r.customerId,
            money(r.amount, r.currency),
            r.paused ? `${r.status} (paused)` : r.status,
            String(r.attempts),
            when(r.nextAttemptAt),
            r.nextAttemptReason ?? '-',
          ]),
        ),
      );
      return 0;
    } finally {
      await ops.close();
    }
  },
};

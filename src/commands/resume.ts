import { parseArgs } from 'node:util';
import { resume } from '../dunning/ops-actions.ts';
import { openOps, when } from '../dunning/ops-context.ts';
import { oneArgument, type Command } from './types.ts';

export const resumeCommand: Command = {
  name: 'resume',
  summary: 'resume paused dunning and plan the next attempt',
  help: `Usage: dunning resume <customer-id|invoice-id>

Lifts a pause set by \`dunning pause\` on an invoice's case (in_...) or every open case of a
customer (cus_...), and asks the planner for the next attempt, printing when and why.`,
  async run(argv, env) {
    const { positionals } = parseArgs({ args: argv, options: {}, strict: true, allowPositionals: true });
    const target = oneArgument(positionals, 'customer id (cus_...) or invoice id (in_...)');
    const ops = await openOps(env);
    try {
      const results = await ops.rt.sql.begin((tx) => resume(tx, ops.scheduler, target, ops.wiring.reminders));
      for (const { caseRow, result } of results) {
        const what =
          result.kind === 'planned'
            ? `next attempt ${when(result.attempt.plannedAt)}: ${result.attempt.planReason ?? ''}`
            : result.kind === 'unchanged'
              ? `no new attempt: ${result.why}`
              : `${result.kind}: ${'reason' in result.plan ? result.plan.reason : ''}`;
        console.log(`Resumed ${caseRow.invoiceId}; ${what}`);
      }
      return 0;
    } finally {
      await ops.close();
    }
  },
};

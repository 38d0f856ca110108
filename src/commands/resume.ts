import { parseArgs } from 'node:util';
import { OpsError, resume } from '../dunning/ops-actions.ts';
import { openOps, when } from '../dunning/ops-context.ts';
import { UsageError, type Command } from './types.ts';

export const resumeCommand: Command = {
  name: 'resume',
  summary: 'resume paused dunning and plan the next attempt',
  help: `Usage: dunning resume <customer-id|invoice-id>

Lifts a pause set by \`dunning pause\` on an invoice's case (in_...) or every open case of a
customer (cus_...), and asks the planner for the next attempt, printing when and why.`,
  async run(argv, env) {
    const { positionals } = parseArgs({ args: argv, options: {}, strict: true, allowPositionals: true });
    const [target, ...extra] = positionals;
    if (!target || extra.length > 0) throw new UsageError('expected exactly one customer id (cus_...) or invoice id (in_...)');
    const ops = await openOps(env);
    try {
      const results = await ops.rt.sql.begin((tx) => resume(tx, ops.scheduler, target));
      for (const { caseRow, result } of results) {
        const what = result.kind === 'planned'
          ? `next attempt ${when(result.attempt.plannedAt)}: ${result.attempt.planReason ?? ''}`
          : result.kind === 'unchanged' ? `no new attempt: ${result.why}` : `${result.kind}: ${'reason' in result.plan ? result.plan.reason : ''}`;
        console.log(`Resumed ${caseRow.invoiceId}; ${what}`);
      }
      return 0;
    } catch (err) {
      if (!(err instanceof OpsError)) throw err;
      console.error(`dunning resume: ${err.message}`);
      return 1;
    } finally {
      await ops.close();
    }
  },
};

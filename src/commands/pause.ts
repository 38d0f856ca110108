import { parseArgs } from 'node:util';
import { pause } from '../dunning/ops-actions.ts';
import { openOps } from '../dunning/ops-context.ts';
import { oneArgument, type Command } from './types.ts';

export const pauseCommand: Command = {
  name: 'pause',
  summary: 'pause dunning for a customer (all open cases) or one invoice',
  help: `Usage: dunning pause <customer-id|invoice-id>

Pauses the open dunning case of an invoice (in_...), or every open case of a customer (cus_...):
planned attempts are cancelled and nothing is charged until \`dunning resume\`. An attempt
already running finishes. Pending reminder emails of the case are cancelled; \`dunning resume\`
plans again what the customer still needs (the first notice, the last chance).`,
  async run(argv, env) {
    const { positionals } = parseArgs({ args: argv, options: {}, strict: true, allowPositionals: true });
    const target = oneArgument(positionals, 'customer id (cus_...) or invoice id (in_...)');
    const ops = await openOps(env);
    try {
      const cases = await ops.rt.sql.begin((tx) => pause(tx, ops.scheduler, target, ops.wiring.reminders));
      for (const c of cases) console.log(`Paused dunning for invoice ${c.invoiceId}.`);
      return 0;
    } finally {
      await ops.close();
    }
  },
};

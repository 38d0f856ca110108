import { parseArgs } from 'node:util';
import { retryNow } from '../dunning/ops-actions.ts';
import { openOps } from '../dunning/ops-context.ts';
import { executeAttempt } from '../dunning/runner.ts';
import { oneArgument, type Command } from './types.ts';

export const retryNowCommand: Command = {
  name: 'retry-now',
  summary: 'charge an open case now (a manual attempt in the ledger)',
  help: `Usage: dunning retry-now <invoice-id> [--queue] [--resolve-unknown]

Records a manual attempt for the invoice's open case and charges it right away through the
Stripe API, with its own idempotency key, then prints the outcome. A planned attempt is
replaced; an attempt that is running or whose outcome is unknown blocks this (it could
otherwise charge twice). A paused case is resumed.

  --queue            only plan the attempt; the running \`dunning start\` workers charge it
  --resolve-unknown  the unresolved attempt (\`dunning case\` shows it, e.g. "needs ops") did
                     not charge: you checked the invoice in the Stripe Dashboard. It is closed
                     as skipped and the manual attempt goes ahead; if Stripe shows the invoice
                     paid after all, the manual attempt is skipped rather than charged

Needs STRIPE_SECRET_KEY unless --queue is given.`,
  async run(argv, env) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { queue: { type: 'boolean', default: false }, 'resolve-unknown': { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: true,
    });
    const invoiceId = oneArgument(positionals, 'invoice id (in_...)');
    const ops = await openOps(env, { stripe: !values.queue });
    try {
      const attemptId = (
        await ops.rt.sql.begin((tx) =>
          retryNow(tx, ops.scheduler, invoiceId, {
            resolveUnknown: values['resolve-unknown'],
            hooks: ops.wiring.reminders,
          }),
        )
      ).id;
      if (!ops.runner) {
        console.log(`Manual attempt planned for ${invoiceId}; the workers will charge it.`);
        return 0;
      }
      const result = await executeAttempt(ops.runner, attemptId);
      const [row] = await ops.rt
        .sql`select status, decline_code, failure_message from payment_attempts where id = ${attemptId}`;
      console.log(
        `Manual attempt on ${invoiceId}: ${result}${row?.decline_code ? ` (${String(row.decline_code)})` : ''}${
          result === 'not_sent' || result === 'unknown' ? ' - it will be repeated with the same idempotency key' : ''
        }`,
      );
      return result === 'succeeded' ? 0 : 1;
    } finally {
      await ops.close();
    }
  },
};

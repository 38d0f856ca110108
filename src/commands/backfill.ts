import { parseArgs } from 'node:util';
import { backfill } from '../dunning/backfill.ts';
import { openOps } from '../dunning/ops-context.ts';
import { backfillRenewalCards } from '../reminders/card-backfill.ts';
import type { Command } from './types.ts';

export const backfillCommand: Command = {
  name: 'backfill',
  summary: 'take over invoices that failed before the worker was installed',
  help: `Usage: dunning backfill

Pages through Stripe's open invoices with collection_method=charge_automatically (100 per
request, paced by STRIPE_REQUESTS_PER_SECOND), copies them and their customers, and opens a
dunning case with a planned next attempt for every invoice Stripe already tried to charge
(attempt_count > 0). Safe to run again: known cases are left alone. Progress goes to stderr.

Then pages through the live subscriptions with their customers' and their own default cards
expanded, so the daily card-expiry scan knows every subscriber's renewal card and its expiry
(Stripe sends no expiry warning for PaymentMethod cards).

Switch off Stripe's Smart Retries first, or both will retry the same invoices.
Needs STRIPE_SECRET_KEY.`,
  async run(argv, env) {
    parseArgs({ args: argv, options: {}, strict: true });
    const ops = await openOps(env, { stripe: true });
    try {
      const totals = await backfill({
        sql: ops.rt.sql,
        gateway: ops.runner!.gateway,
        scheduler: ops.scheduler,
        policy: ops.policy,
        onCaseOpened: ops.wiring.onCaseOpened,
        progress: (p) =>
          process.stderr.write(
            `page ${p.pages}: ${p.seen} open invoices seen, ${p.opened} cases opened, ${p.planned} attempts planned\n`,
          ),
      });
      console.log(
        `Backfill done: ${totals.seen} open invoices, ${totals.opened} new cases, ${totals.planned} attempts planned.`,
      );
      const cards = await backfillRenewalCards({
        sql: ops.rt.sql,
        gateway: ops.runner!.gateway,
        clock: ops.clock,
        progress: (p) =>
          process.stderr.write(`subscriptions page ${p.pages}: ${p.subscriptions} seen, ${p.cards} card expiries\n`),
      });
      console.log(`Cards: ${cards.subscriptions} live subscriptions, ${cards.cards} card expiries copied.`);
      return 0;
    } finally {
      await ops.close();
    }
  },
};

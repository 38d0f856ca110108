import { parseArgs } from 'node:util';
import { caseDetail } from '../dunning/ops-actions.ts';
import { money, openOps, table, when } from '../dunning/ops-context.ts';
import type { AttemptRow } from '../dunning/store.ts';
import { oneArgument, type Command } from './types.ts';

function declineText(a: AttemptRow): string {
  const codes = [
    a.declineCode,
    a.failureCode !== a.declineCode ? a.failureCode : null,
    a.adviceCode && `advice ${a.adviceCode}`,
    a.networkAdviceCode && `network advice ${a.networkAdviceCode}`,
  ].filter(Boolean);
  if (codes.length === 0) return a.failureMessage ?? '-';
  return `${codes.join(', ')}${a.declineCategory ? ` [${a.declineCategory}]` : ''}`;
}

export const caseCommand: Command = {
  name: 'case',
  summary: 'one dunning case in full: every attempt with its reason and decline',
  help: `Usage: dunning case <invoice-id>

Shows one case: status, policy version, cohort, next attempt and why, and the attempt ledger
(Stripe's own attempts, scheduled, card-update and manual retries) with planned and actual
times, the planner's reason and the decline codes with their category; then the customer
emails of the case with their status, and any email problem ops should act on. An email sent
together with the customer's other invoices shows as merged, naming the email that carried it
(SENT is when that went); one the frequency cap held back says why and until when. Times are UTC.`,
  async run(argv, env) {
    const { positionals } = parseArgs({ args: argv, options: {}, strict: true, allowPositionals: true });
    const invoiceId = oneArgument(positionals, 'invoice id (in_...)');
    const ops = await openOps(env);
    try {
      const detail = await caseDetail(ops.rt.sql, invoiceId);
      if (!detail) {
        console.error(`No dunning case for invoice ${invoiceId}.`);
        return 1;
      }
      const c = detail.caseRow;
      const lines = [
        `Invoice ${c.invoiceId}  customer ${c.customerId}  ${money(c.amount, c.currency)}`,
        `Status ${c.status}${c.paused ? ' (paused)' : ''}  opened ${when(c.openedAt)}${c.closedAt ? `  closed ${when(c.closedAt)}: ${c.closeReason ?? ''}` : ''}`,
        `Policy ${c.policyName} ${c.policyVersion} (${c.cohort})${c.recoveryPath ? `  recovered via ${c.recoveryPath}` : ''}${c.finalAction ? `  final action ${c.finalAction} at ${when(c.finalActionAt)}` : ''}`,
        `Next attempt ${when(c.nextAttemptAt)}: ${c.nextAttemptReason ?? '-'}`,
        ...(c.reminderProblem ? [`Email problem: ${c.reminderProblem}`] : []),
        '',
      ];
      process.stdout.write(lines.join('\n') + '\n');
      process.stdout.write(
        table(
          ['#', 'SOURCE', 'STATUS', 'PLANNED', 'RAN', 'DECLINE', 'REASON'],
          detail.attempts.map((a) => [
            String(a.attemptNo),
            a.source,
            a.requestTries > 0 ? `${a.status} (${a.requestTries} resent)` : a.status,
            when(a.plannedAt),
            when(a.startedAt ?? a.finishedAt),
            declineText(a),
            a.planReason ?? '-',
          ]),
        ),
      );
      if (detail.reminders.length > 0) {
        process.stdout.write(
          '\nEmails\n' +
            table(
              ['KIND', 'STEP', 'STATUS', 'SEND AT', 'SENT', 'TRIES', 'NOTE'],
              detail.reminders.map((r) => [
                r.kind,
                String(r.step),
                r.status,
                when(r.sendAt),
                when(r.sentAt),
                String(r.tries),
                r.note ?? '-',
              ]),
            ),
        );
      }
      return 0;
    } finally {
      await ops.close();
    }
  },
};

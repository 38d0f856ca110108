/**
 * What each number means. Printed with every report (table, CSV, JSON, HTML) and mirrored in
 * docs/reports.md, so figures compare across periods and with other tools.
 */
export interface Definition {
  term: string;
  text: string;
}

export const DEFINITIONS: readonly Definition[] = [
  {
    term: 'Period',
    text: 'Whole calendar days from --from to --to inclusive, in the merchant time zone (DEFAULT_TIME_ZONE). Default: the current calendar month.',
  },
  {
    term: 'Case',
    text: 'One failed invoice under dunning, opened at its first failed payment. Amounts are in the minor unit of the invoice currency; currencies are never added together.',
  },
  {
    term: 'Opened',
    text: 'Cases whose first failure falls in the period, with their case amount: what was still due on the invoice at that failure.',
  },
  {
    term: 'Voided',
    text: 'Cases closed because the invoice was voided or otherwise withdrawn: neither recovered nor lost, and excluded from every rate denominator.',
  },
  {
    term: 'Recovered (in period)',
    text: 'Cases whose invoice was paid in the period while the case was open, whatever the path; the amount is what was paid on the invoice while the case was open, at most the case amount (a part paid before the first failure is not counted). This is the money dunning brought back in the period.',
  },
  {
    term: 'Attribution window',
    text: 'A payment counts as recovered when it arrives while the case is open: from the first failure until the policy gives up (lost). A payment after a case is lost does not count as recovered.',
  },
  {
    term: 'Recovery rate',
    text: 'Of the cases opened in the period (voided excluded), the share now recovered: by count, and by revenue (amount recovered / case amount). Rates of recent periods still rise while their cases are open; a period is final once none is open.',
  },
  {
    term: 'At risk',
    text: 'Case amount of cases open at the end of the period (or now, if the period has not ended).',
  },
  {
    term: 'Lost',
    text: "Cases given up on in the period (the policy's final action taken, or the subscription deleted): the case amount minus any part of it paid while the case was open.",
  },
  {
    term: 'Partial payments',
    text: 'A case paid in part and then closed as recovered counts as recovered with the amount actually paid; the unpaid rest is neither recovered nor lost. The number of such cases is shown. A part paid on a case that is then lost is subtracted from Lost, not counted as recovered.',
  },
  {
    term: 'Refunds',
    text: 'Not subtracted: the worker does not track refunds or disputes, so recovered revenue is gross of them.',
  },
  {
    term: 'Time to recover',
    text: 'From the first failure to payment, over cases recovered in the period: median and 90th percentile.',
  },
  {
    term: 'Involuntary churn',
    text: 'Customers with a subscription active at the start of the period that ended in the period because payment failed (Stripe cancellation reason payment_failed, or canceled by the worker as the final action of a lost case), over customers with a subscription active at the start. A customer who still has another subscription active at the end of the period (one kept, or one started since) is not churned. All currencies together: --currency does not filter it.',
  },
  {
    term: 'By attempt',
    text: "Attempt N is a case's Nth charge that reached a result (succeeded or declined), in the order they were made; attempt 1 is Stripe's own first charge. Retries that were planned and then cancelled or skipped, and requests that never reached Stripe, are not attempts. For each attempt number: the charges made, the share that succeeded, and the share of the period's recovered cases recovered by that charge (cases paid through the invoice link or outside the worker have no such charge, so these shares add up to less than 100 %).",
  },
  {
    term: 'Recovery path',
    text: "scheduled_retry: a retry planned by the worker; card_update_retry: a retry after the customer changed card; backup_card_retry: a retry on another of the customer's saved cards after the default card failed (policy retry.backupCards); manual_retry: an operator retry; customer_paid: the customer paid through the invoice link; paid_outside: paid off Stripe (marked paid out of band, e.g. a bank transfer). A charge made in the Stripe dashboard counts as customer_paid.",
  },
  {
    term: 'Breakdowns',
    text: 'By decline category and code, attempt, recovery path, reminder step and holdout: over the cases opened in the period, with their outcome as of now, so they add up to Opened and the recovery rate. The Recovered (in period) figure counts payments in the period instead, including cases opened earlier; the two differ when cases cross the period boundary.',
  },
  {
    term: 'Reminder step',
    text: 'The place of an email in what the customer received (1 = the first email of the case, 2 = the second, ...), by kind: cases that were sent it, and how many of them were recovered after it was sent (the thank-you mail sent after a recovery is left out). A case whose reminder went out in one email with other invoices of the same customer counts as sent to when that email went; "merged" says how many of the cases were reached that way, "deferred by cap" how many of them had that email held back by the frequency cap first (docs/reminders.md). An email still held back is not counted until it is sent.',
  },
  {
    term: 'Cohort',
    text: 'Month of the first failure; shown for at least the six months before the period end, with rates as of now.',
  },
  {
    term: 'Holdout lift',
    text: 'Recovery rate by count of the smart policy minus that of the holdout group (the stickily assigned control), in percentage points, with a 95 % confidence interval for the difference of two proportions (Agresti-Caffo: one success and one failure added to each group, so small groups and rates near 0 or 100 % still get an honest width). The table shows the size of each group.',
  },
  {
    term: 'Lift by decline category',
    text: 'The holdout lift computed separately for the cases of each first decline category (the category of the failure that opened the case), with the same Agresti-Caffo 95 % interval as the overall lift. Each interval holds for its own row; they are not adjusted for comparing several categories at once, so with many small categories one may exclude zero by chance. A category with cases in only one group has no lift.',
  },
];

/**
 * One lock per customer, taken first in every transaction that decides on the customer's money or
 * mail: the event processor applying an event of theirs, the runner writing an attempt's outcome,
 * the mailer deciding a send (merges and the frequency cap), the card-expiry scan planning a
 * warning, the deadline and saved-card jobs closing or re-planning a case, ops' pause, resume and
 * retry-now, and `dunning backfill` (copying a new customer, taking over an invoice; its card half
 * copying a subscriber's customer, cards and subscription). Taken before any row lock, it orders
 * those transactions one after the other: without it the processor (case, then the invoice's
 * attempt rows) and the runner (attempt row, then the case) deadlocked (40P01), and two mailers
 * could both merge the same reminders.
 */
import type { Tx } from './db.ts';

const KEY_PREFIX = 'customer:';

export async function lockCustomer(tx: Tx, customerId: string): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtextextended(${KEY_PREFIX + customerId}, 0))`;
}

/** The lock of the customer of `invoiceId` (none when our copy lacks the invoice). */
export async function lockCustomerOfInvoice(tx: Tx, invoiceId: string): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtextextended(${KEY_PREFIX} || customer_id, 0)) from invoices where id = ${invoiceId}`;
}

/** The lock of the customer of case `caseId` (none when the case is unknown). */
export async function lockCustomerOfCase(tx: Tx, caseId: number): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtextextended(${KEY_PREFIX} || customer_id, 0)) from dunning_cases where id = ${caseId}`;
}

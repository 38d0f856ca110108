import type Stripe from 'stripe';
import type { Clock } from '../clock.ts';
import type { Tx } from '../db.ts';
import type { Classification } from '../dunning/declines.ts';
import type { SegmentFacts } from '../dunning/segments.ts';
import type { Logger } from '../log.ts';
import type { DomainHooks } from './hooks.ts';

/** What the event processor needs from the outside; the CLI builds it from config and the policy. */
export interface ProcessorDeps {
  clock: Clock;
  log: Logger;
  hooks: DomainHooks;
  /** The current policy: a case opened now records this version. */
  policy: { version: string; body: unknown };
  /**
   * Picks the policy a new case opens with from its invoice (the policy file's segment rules).
   * Without it every case opens with `policy`, named `default`.
   */
  choosePolicy?(facts: SegmentFacts): { name: string; version: string; body: unknown; rule: number | null };
  assignCohort(invoiceId: string): 'smart' | 'holdout';
  /**
   * Reads a customer from Stripe (null when deleted), for customers whose `customer.*` events never
   * reached us. Optional: without a Stripe key, and in most tests, customers stay as events left them.
   */
  fetchCustomer?(customerId: string): Promise<Stripe.Customer | null>;
  /**
   * Reads an invoice from Stripe at our API version (null when Stripe has no such invoice), for
   * invoice events rendered at another version. Without it such events are parked (see versions.ts).
   */
  fetchInvoice?(invoiceId: string): Promise<Stripe.Invoice | null>;
  /**
   * Reads an invoice at our API version with every failed charge of its InvoicePayments'
   * PaymentIntents (null when Stripe has no such invoice), so `invoice.payment_failed` puts each
   * failed charge on the ledger by its id, whoever made it. Without it (no Stripe key, most tests)
   * a failure event is matched to the try it reports by time (see `claimFailureRow`).
   */
  fetchInvoiceCharges?(invoiceId: string): Promise<{ invoice: Stripe.Invoice; failedCharges: Stripe.Charge[] } | null>;
  /** Told about every decline that arrives, so unknown codes get logged (once per process). */
  reportUnknownCodes?(classification: Classification): void;
}

export interface HandlerContext {
  tx: Tx;
  event: Stripe.Event;
  /** The event's `created`: the domain time of what it reports. */
  at: Date;
  deps: ProcessorDeps;
  log: Logger;
  /**
   * The invoice's failed charges as Stripe listed them just before this event applied (an
   * `invoice.payment_failed` with `fetchInvoiceCharges`), oldest first; null when not read.
   */
  failedCharges?: readonly Stripe.Charge[] | null;
}

/** `processed` when the event was applied (even as a no-op on newer state), `ignored` when it does not concern us. */
export type Outcome = 'processed' | 'ignored';

/**
 * The event is well formed but makes no sense to act on (a negative amount due, a currency that
 * does not exist): retrying cannot help, so it is parked as failed at once with this reason, for
 * ops to see in `dunning events --failed`.
 */
export class EventUnprocessable extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'EventUnprocessable';
  }
}
export type EventHandler = (ctx: HandlerContext) => Promise<Outcome>;

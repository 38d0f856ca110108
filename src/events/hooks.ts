import type { Tx } from '../db.ts';

/**
 * What the event processor tells the rest of the domain. Every hook runs inside the transaction
 * that applied the event, so a reaction (a planned retry, an outbox row) commits with the event or
 * not at all, and a replayed event cannot half-apply.
 */
export interface DomainHooks {
  paymentFailed?(
    tx: Tx,
    e: { caseId: number; invoiceId: string; attemptId: number; opened: boolean; at: Date },
  ): Promise<void>;
  /**
   * A declined attempt of the case learned decline details it did not have (a `charge.failed`
   * arriving after `invoice.payment_failed`): a plan made without them may be wrong.
   */
  declineLearned?(tx: Tx, e: { caseId: number; invoiceId: string; attemptId: number; at: Date }): Promise<void>;
  /** `opened`: this request opened the case (it can arrive before `invoice.payment_failed`). */
  actionRequired?(tx: Tx, e: { caseId: number; invoiceId: string; opened: boolean; at: Date }): Promise<void>;
  caseClosed?(
    tx: Tx,
    e: { caseId: number; invoiceId: string; status: 'recovered' | 'lost' | 'closed'; reason: string; at: Date },
  ): Promise<void>;
  /** `updated`: the same payment method got new card details from Stripe's card updater. */
  paymentMethodChanged?(
    tx: Tx,
    e: { customerId: string; paymentMethod: string; at: Date; updated?: boolean },
  ): Promise<void>;
  cardExpiring?(
    tx: Tx,
    e: { customerId: string; paymentMethod: string | null; expMonth: number; expYear: number; at: Date },
  ): Promise<void>;
  /** Stripe paused or resumed collection (`pause_collection`) on the subscription; our copy is updated. */
  collectionPauseChanged?(tx: Tx, e: { subscriptionId: string; at: Date }): Promise<void>;
}

type HookName = keyof DomainHooks;
const NAMES: HookName[] = [
  'paymentFailed',
  'declineLearned',
  'actionRequired',
  'caseClosed',
  'paymentMethodChanged',
  'cardExpiring',
  'collectionPauseChanged',
];

/** Calls each set of hooks in the order given; the first one that throws aborts the event (and its transaction). */
export function combineHooks(...hooks: DomainHooks[]): DomainHooks {
  const combined: Record<string, (tx: Tx, e: never) => Promise<void>> = {};
  for (const name of NAMES) {
    const fns = hooks.map((h) => h[name]?.bind(h)).filter((f) => f !== undefined) as Array<
      (tx: Tx, e: never) => Promise<void>
    >;
    if (fns.length === 0) continue;
    combined[name] = async (tx, e) => {
      for (const fn of fns) await fn(tx, e);
    };
  }
  return combined as DomainHooks;
}

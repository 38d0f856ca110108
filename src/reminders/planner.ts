/**
 * Which reminders a domain event calls for, and whether a pending one must be dropped. Pure: the
 * facts and "now" come in, decisions go out; the hooks do the reading and writing.
 */
import type { ReminderKind } from './kinds.ts';
import { DUNNING_KINDS } from './kinds.ts';
import type { ReminderPolicy } from './policy.ts';

export interface CaseFacts {
  caseId: number;
  customerId: string;
  invoiceId: string;
  /** Declined attempts in the ledger for this invoice, Stripe's own first charge included. */
  declinedAttempts: number;
  declineCategory: string | null;
  /** Reminders of this case already sent: a customer who heard nothing gets no "thank you". */
  sentReminders: number;
  /** The customer was asked (or is about to be) to confirm the payment: "update your card" would contradict it. */
  actionRequested: boolean;
}

export interface PlannedReminder {
  kind: ReminderKind;
  step: number;
  dueAt: Date;
  data: Record<string, string | number | null>;
}

/** The bank's problem is ours (e.g. an invalid amount): ops are told, the customer is not. */
const silent = (facts: CaseFacts) => facts.declineCategory === 'merchant_error';

export function planOnPaymentFailed(policy: ReminderPolicy, facts: CaseFacts, at: Date): PlannedReminder[] {
  if (!policy.enabled || silent(facts)) return [];
  if (facts.declineCategory === 'authentication') return planOnActionRequired(policy, facts, at);
  if (!policy.firstNotice.enabled || facts.actionRequested) return [];
  const needed = policy.firstNotice.when === 'first_failure' ? 1 : 2;
  if (facts.declinedAttempts < needed) return [];
  // Step 1 whatever the attempt: a later failure finds the notice already planned and adds nothing.
  return [{ kind: 'first_notice', step: 1, dueAt: at, data: {} }];
}

/**
 * What an authentication request makes wrong: a pending "update your card" notice, when all the
 * customer has to do is confirm the payment on the hosted page.
 */
export const CONFLICTS_WITH_ACTION: readonly ReminderKind[] = ['first_notice'];

export function planOnActionRequired(policy: ReminderPolicy, facts: CaseFacts, at: Date): PlannedReminder[] {
  if (!policy.enabled || !policy.actionRequired.enabled || silent(facts)) return [];
  // One email per failed attempt that needed authentication; a duplicate event for the same
  // attempt lands on the same step and is absorbed by the outbox key.
  return [{ kind: 'action_required', step: Math.max(1, facts.declinedAttempts), dueAt: at, data: {} }];
}

/**
 * Decline details that arrived after the failure was handled (`charge.failed` after
 * `invoice.payment_failed`) can change what the customer should hear: nothing at all for a
 * merchant error, an authentication request rather than an update-card notice.
 */
export function planOnDeclineLearned(
  policy: ReminderPolicy,
  facts: CaseFacts,
  at: Date,
): { cancel: ReminderKind[]; plans: PlannedReminder[] } {
  if (silent(facts)) return { cancel: [...DUNNING_KINDS], plans: [] };
  if (facts.declineCategory === 'authentication')
    return { cancel: [...CONFLICTS_WITH_ACTION], plans: planOnActionRequired(policy, facts, at) };
  return { cancel: [], plans: planOnPaymentFailed(policy, facts, at) };
}

export function planOnAttemptPlanned(
  policy: ReminderPolicy,
  facts: CaseFacts,
  attempt: { at: Date; isLast: boolean; deadline?: boolean },
  now: Date,
): PlannedReminder[] {
  if (!policy.enabled || !policy.lastChance.enabled || !attempt.isLast || silent(facts)) return [];
  const wanted = attempt.at.getTime() - policy.lastChance.hoursBefore * 3_600_000;
  const dueAt = new Date(Math.max(wanted, now.getTime()));
  if (dueAt.getTime() >= attempt.at.getTime()) return [];
  // With `deadline` nothing is charged at `at`: the customer has until then to act.
  return [
    {
      kind: 'last_chance',
      step: 1,
      dueAt,
      data: { attemptAt: attempt.at.toISOString(), ...(attempt.deadline ? { deadline: 1 } : {}) },
    },
  ];
}

export function planOnCaseClosed(
  policy: ReminderPolicy,
  facts: CaseFacts,
  closed: { status: 'recovered' | 'lost' | 'closed'; at: Date },
): PlannedReminder[] {
  if (!policy.enabled || silent(facts)) return [];
  const data = { closedAt: closed.at.toISOString() };
  if (closed.status === 'lost' && policy.finalNotice.enabled)
    return [{ kind: 'final_notice', step: 1, dueAt: closed.at, data }];
  if (closed.status === 'recovered' && policy.recovered.enabled && facts.sentReminders > 0) {
    return [{ kind: 'recovered', step: 1, dueAt: closed.at, data }];
  }
  return [];
}

/**
 * A card that stops working at the end of its expiry month: remind `daysBefore` days earlier, or
 * at once when that moment has passed but the card still works. Only the card renewals charge
 * matters (`customer_renewal_card` in SQL: the subscription's card, else the customer's default
 * payment method, else the default source): another saved card expiring charges nothing. Step = YYYYMM, so each
 * expiry of each customer is announced once.
 */
export function planCardExpiring(
  policy: ReminderPolicy,
  card: {
    expMonth: number;
    expYear: number;
    paymentMethod: string | null;
    expiresAt: Date;
    defaultCard: string | null;
  },
  now: Date,
): PlannedReminder | null {
  if (!policy.enabled || !policy.cardExpiring.enabled) return null;
  if (card.paymentMethod === null || card.paymentMethod !== card.defaultCard) return null;
  if (card.expiresAt.getTime() <= now.getTime()) return null;
  const wanted = card.expiresAt.getTime() - policy.cardExpiring.daysBefore * 86_400_000;
  return {
    kind: 'card_expiring',
    step: card.expYear * 100 + card.expMonth,
    dueAt: new Date(Math.max(wanted, now.getTime())),
    data: {
      expMonth: card.expMonth,
      expYear: card.expYear,
      paymentMethod: card.paymentMethod,
      expiresAt: card.expiresAt.toISOString(),
    },
  };
}

/**
 * The outbox key that makes each reminder happen once. A card-expiry warning is once per card and
 * expiry month: a customer who renews on two cards that run out in the same month hears of both.
 */
export function dedupeKey(
  owner: { caseId: number | null; customerId: string },
  kind: ReminderKind,
  step: number,
  data: PlannedReminder['data'] = {},
): string {
  if (owner.caseId !== null) return `case:${owner.caseId}:${kind}:${step}`;
  const card = kind === 'card_expiring' && typeof data.paymentMethod === 'string' ? `:${data.paymentMethod}` : '';
  return `customer:${owner.customerId}:${kind}:${step}${card}`;
}

export interface SendState {
  kind: ReminderKind;
  caseStatus: string | null;
  casePaused: boolean;
  invoiceStatus: string | null;
  customerDeleted: boolean;
  /** For card reminders: the card the reminder is about, and the customer's card now. */
  reminderPaymentMethod: string | null;
  currentPaymentMethod: string | null;
  /** Whether a live subscription still renews on the reminder's card (a customer can renew on several); null: unknown. */
  reminderCardRenews?: boolean | null;
}

/** Why a pending reminder must not go out any more, or null when it still should. */
export function cancelReason(s: SendState): string | null {
  if (s.customerDeleted) return 'customer deleted';
  const settled = s.invoiceStatus === 'paid' || s.invoiceStatus === 'void';
  if (DUNNING_KINDS.includes(s.kind)) {
    if (settled) return `invoice ${s.invoiceStatus}`;
    if (s.caseStatus !== null && s.caseStatus !== 'open') return `case ${s.caseStatus}`;
    if (s.casePaused) return 'case paused';
  }
  if (s.kind === 'final_notice') {
    if (settled) return `invoice ${s.invoiceStatus}`;
    if (s.caseStatus === 'recovered') return 'case recovered';
  }
  if (s.kind === 'card_expiring' && s.reminderPaymentMethod !== null && s.reminderCardRenews !== true) {
    if (s.currentPaymentMethod !== null && s.reminderPaymentMethod !== s.currentPaymentMethod)
      return 'payment method changed';
    if (s.reminderCardRenews === false) return 'no subscription renews on this card';
  }
  return null;
}

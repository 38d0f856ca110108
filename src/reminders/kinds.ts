/** The reminder emails this worker sends; each has a template per locale. */
export const REMINDER_KINDS = [
  'first_notice',
  'last_chance',
  'final_notice',
  'recovered',
  'action_required',
  'card_expiring',
] as const;
export type ReminderKind = (typeof REMINDER_KINDS)[number];

/** Kinds that ask the customer to act on an unpaid invoice: pointless, even harmful, once it is settled. */
export const DUNNING_KINDS: readonly ReminderKind[] = ['first_notice', 'last_chance', 'action_required'];

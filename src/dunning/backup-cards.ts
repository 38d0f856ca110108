/**
 * Other cards on file: which of the customer's saved cards a backup retry may charge, and in what
 * order. Pure: the caller lists the cards (Stripe's `customers.listPaymentMethods`) and says what
 * the card-network rules allow for each; nothing here reads a clock or the network.
 */

/** One of the customer's saved cards, as Stripe listed it. */
export interface SavedCard {
  paymentMethod: string;
  /** The card as the networks count it: its fingerprint where Stripe gave one, else the payment method id. */
  card: string;
  brand: string | null;
  last4: string | null;
  expMonth: number | null;
  expYear: number | null;
  /** When the customer saved it (the payment method's `created`). */
  createdAt: Date;
}

/** The customer's saved cards as of one listing. */
export interface SavedCards {
  listedAt: Date;
  cards: SavedCard[];
}

/** What the card-network rules say about one more charge of a card now. */
export interface CardRules {
  /** Why the card must never be charged again (a never-retry answer, on any invoice), or null. */
  barred: string | null;
  /** When its network budget (retry-after advice, 30-day and 24-hour counts) allows the next charge; null: now. */
  heldUntil: { at: Date; reason: string } | null;
}

export interface BackupChoiceInput {
  cards: readonly SavedCard[];
  /** Card identities never offered as a backup: the default card itself. */
  exclude: ReadonlySet<string>;
  /** Card identities already declined for this invoice: tried once, not again. */
  declinedHere: ReadonlySet<string>;
  now: Date;
  rules: (card: SavedCard) => CardRules;
  /** When the card last paid (any invoice of the customer), or null. */
  lastSuccess: (card: SavedCard) => Date | null;
}

export type BackupChoice =
  { card: SavedCard; why: string; passedOver: string[] } | { card: null; why: string; passedOver: string[] };

/** "visa ending 4242": enough for ops and the customer to recognise the card, never its number. */
export function describeCard(c: Pick<SavedCard, 'brand' | 'last4'>): string {
  return `${c.brand ?? 'card'}${c.last4 ? ` ending ${c.last4}` : ''}`;
}

/** A card is valid through the last day of its expiry month. */
export function isExpired(c: Pick<SavedCard, 'expMonth' | 'expYear'>, now: Date): boolean {
  if (c.expMonth === null || c.expYear === null) return false;
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth() + 1;
  return c.expYear < y || (c.expYear === y && c.expMonth < m);
}

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/**
 * Orders the cards (most recently used successfully first, then most recently added, then by id
 * so the order is stable) and picks the first one allowed now. `passedOver` says why each card
 * before it, or every card when none is allowed, was not chosen.
 */
export function chooseBackupCard(input: BackupChoiceInput): BackupChoice {
  const others = input.cards.filter((c) => !input.exclude.has(c.card));
  // One entry per card: the same card saved twice (two payment method ids) is one card.
  const seen = new Set<string>();
  const ranked = others
    .map((c) => ({ c, used: input.lastSuccess(c) }))
    .sort(
      (a, b) =>
        (b.used?.getTime() ?? -Infinity) - (a.used?.getTime() ?? -Infinity) ||
        b.c.createdAt.getTime() - a.c.createdAt.getTime() ||
        (a.c.paymentMethod < b.c.paymentMethod ? -1 : a.c.paymentMethod > b.c.paymentMethod ? 1 : 0),
    )
    .filter(({ c }) => (seen.has(c.card) ? false : (seen.add(c.card), true)));
  if (ranked.length === 0) {
    return { card: null, why: 'the customer has no other card on file', passedOver: [] };
  }
  const passedOver: string[] = [];
  for (const { c, used } of ranked) {
    const name = describeCard(c);
    if (input.declinedHere.has(c.card)) {
      passedOver.push(`${name} already declined for this invoice`);
      continue;
    }
    if (isExpired(c, input.now)) {
      passedOver.push(`${name} expired ${String(c.expMonth).padStart(2, '0')}/${c.expYear}`);
      continue;
    }
    const rules = input.rules(c);
    if (rules.barred) {
      passedOver.push(`${name} barred: ${rules.barred}`);
      continue;
    }
    if (rules.heldUntil && rules.heldUntil.at > input.now) {
      passedOver.push(`${name} held back by the ${rules.heldUntil.reason} until ${rules.heldUntil.at.toISOString()}`);
      continue;
    }
    const why = used
      ? `the most recently successfully used of the other cards (paid ${day(used)})`
      : `the most recently added of the other cards not yet used successfully (saved ${day(c.createdAt)})`;
    return { card: c, why, passedOver };
  }
  return { card: null, why: 'no other card on file may be charged now', passedOver };
}

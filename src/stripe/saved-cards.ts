import type Stripe from 'stripe';
import type { SavedCard } from '../dunning/backup-cards.ts';
import { call, type StripeGateway } from './charge.ts';

/**
 * The customer's saved cards, every page: `GET /v1/customers/{id}/payment_methods?type=card`
 * ("Returns a list of PaymentMethods for a given Customer"), paged with `starting_after` while
 * `has_more`. Each page is one request through the shared throttle. Only what a backup retry
 * needs is kept: identity, brand, last4, expiry and when it was saved; never the card number.
 */
export async function listSavedCards(gateway: StripeGateway, customerId: string): Promise<SavedCard[]> {
  const cards: SavedCard[] = [];
  let after: string | undefined;
  for (;;) {
    const params: Stripe.CustomerListPaymentMethodsParams = {
      type: 'card',
      limit: 100,
      ...(after ? { starting_after: after } : {}),
    };
    let page: Stripe.ApiList<Stripe.PaymentMethod>;
    try {
      page = await call(gateway, (s) => s.customers.listPaymentMethods(customerId, params));
    } catch (cause) {
      throw new Error(`cannot list the saved cards of customer ${customerId} from Stripe`, { cause });
    }
    for (const pm of page.data) if (pm.card) cards.push(savedCard(pm, pm.card));
    after = page.data[page.data.length - 1]?.id;
    if (!page.has_more || !after) return cards;
  }
}

function savedCard(pm: Stripe.PaymentMethod, card: Stripe.PaymentMethod.Card): SavedCard {
  return {
    paymentMethod: pm.id,
    card: card.fingerprint ?? pm.id,
    brand: card.brand ?? null,
    last4: card.last4 ?? null,
    expMonth: card.exp_month ?? null,
    expYear: card.exp_year ?? null,
    createdAt: new Date(pm.created * 1000),
  };
}

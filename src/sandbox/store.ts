import type Stripe from 'stripe';
import type { PortalConfigurationRec, WebhookEndpointRec } from './account.ts';
import type { FailureReason } from './issuer-model.ts';

/**
 * In-memory state of the sandbox. Records hold what the simulation needs; `objects.ts`
 * turns them into the JSON shapes the Stripe API answers.
 */

export type Metadata = Record<string, string>;

export interface CardSpec {
  brand: string;
  failure: FailureReason | null;
  expMonth: number;
  expYear: number;
}

export interface PaymentMethodRec {
  id: string;
  customer: string | null;
  card: CardSpec;
  last4: string;
  created: number;
  /** First failed charge on this card: recovery of soft declines counts from here. */
  firstFailedAt: Date | null;
}

export interface CustomerRec {
  id: string;
  email: string;
  name: string;
  country: string;
  preferredLocales: string[];
  timeZone: string | null;
  /** Chance per reminder that this customer puts in a new card; null means the sandbox default. */
  cardUpdateProbability: number | null;
  defaultPaymentMethod: string | null;
  metadata: Metadata;
  created: number;
}

export type SubscriptionStatus = 'active' | 'past_due' | 'canceled' | 'unpaid';

export interface SubscriptionRec {
  id: string;
  customer: string;
  status: SubscriptionStatus;
  pauseCollection: { behavior: string; resumes_at: number | null } | null;
  /** The subscription's own card: Stripe charges it before the customer's default. */
  defaultPaymentMethod: string | null;
  created: number;
  currentPeriodStart: number;
  currentPeriodEnd: number;
  canceledAt: number | null;
  /** Why it was canceled (`cancellation_details.reason`); null: on request, as a DELETE does. */
  cancellationReason?: 'cancellation_requested' | 'payment_disputed' | 'payment_failed' | null;
  amount: number;
  currency: string;
  metadata: Metadata;
}

export type InvoiceStatus = 'open' | 'paid' | 'void' | 'uncollectible';

export interface InvoiceRec {
  id: string;
  number: string;
  customer: string;
  subscription: string | null;
  /** The invoice's own card: Stripe charges it before the subscription's and the customer's. */
  defaultPaymentMethod: string | null;
  amount: number;
  currency: string;
  status: InvoiceStatus;
  attemptCount: number;
  autoAdvance: boolean;
  collectionMethod: 'charge_automatically' | 'send_invoice';
  metadata: Metadata;
  created: number;
  periodStart: number;
  periodEnd: number;
  finalizedAt: number;
  paidAt: number | null;
  voidedAt: number | null;
  uncollectibleAt: number | null;
  /**
   * The invoice's current PaymentIntent (its default InvoicePayment), which Stripe reuses for every
   * attempt until a new payment replaces it; earlier ones are found through their `invoice`.
   */
  paymentIntent: string;
}

export interface ChargeRec {
  id: string;
  invoice: string;
  paymentIntent: string;
  paymentMethod: string;
  customer: string;
  amount: number;
  currency: string;
  status: 'succeeded' | 'failed';
  failure: {
    code: string;
    declineCode: string;
    adviceCode: string | null;
    networkAdviceCode: string | null;
    networkDeclineCode: string | null;
    message: string;
  } | null;
  created: number;
  /** Who asked: Stripe's own first attempt, its automatic retries, the API (our runner), the customer on the hosted page, or someone in the Dashboard. */
  source: 'initial' | 'automatic' | 'api' | 'hosted' | 'dashboard';
}

export interface PaymentIntentRec {
  id: string;
  invoice: string;
  customer: string;
  amount: number;
  currency: string;
  status: 'requires_payment_method' | 'requires_action' | 'succeeded' | 'canceled';
  paymentMethod: string | null;
  latestCharge: string | null;
  created: number;
  /** Set when a newer InvoicePayment of the invoice replaced this one. */
  canceledAt?: number | null;
}

/** Events are the SDK's own: `emit` pairs each type with its object as `Stripe.Event` does. */
export type EventRec = Stripe.Event;

/** A Billing Portal session: whose, and which deep-link flow it opens (null: the portal's home). */
export interface PortalSessionRec {
  customer: string;
  flow: string | null;
}

export interface Store {
  customers: Map<string, CustomerRec>;
  paymentMethods: Map<string, PaymentMethodRec>;
  subscriptions: Map<string, SubscriptionRec>;
  invoices: Map<string, InvoiceRec>;
  charges: Map<string, ChargeRec>;
  paymentIntents: Map<string, PaymentIntentRec>;
  portalSessions: Map<string, PortalSessionRec>;
  webhookEndpoints: Map<string, WebhookEndpointRec>;
  portalConfigurations: Map<string, PortalConfigurationRec>;
  events: EventRec[];
  nextId(prefix: string): string;
  /** What a restored store needs to go on numbering where this one stopped. */
  ids(): { tag: string; counter: number };
}

/**
 * `idTag` keeps ids apart from an earlier sandbox's whose objects a database still holds;
 * `counter` continues the numbering of a restored one.
 */
export function createStore(idTag = '', startCounter = 0): Store {
  let counter = startCounter;
  return {
    customers: new Map(),
    paymentMethods: new Map(),
    subscriptions: new Map(),
    invoices: new Map(),
    charges: new Map(),
    paymentIntents: new Map(),
    portalSessions: new Map(),
    webhookEndpoints: new Map(),
    portalConfigurations: new Map(),
    events: [],
    // Ids sort in creation order, which list pagination relies on.
    nextId(prefix) {
      counter += 1;
      return `${prefix}_sbx${idTag}${counter.toString(36).padStart(10, '0')}`;
    },
    ids: () => ({ tag: idTag, counter }),
  };
}

export function unixSeconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

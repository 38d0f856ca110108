import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import Stripe from 'stripe';
import { addWebhookEndpoint, type WebhookEndpointRec } from './account.ts';
import { createBilling, type Emit, type NewCustomer, type NewInvoice } from './billing.ts';
import { createFaultRegistry, type Fault } from './faults.ts';
import { createIdempotencyCache } from './idempotency.ts';
import { createRng } from './issuer-model.ts';
import { apiVersion, eventAtVersion } from './objects.ts';
import { createSandboxHttp, type ApiRequestRecord, type RateLimitedRequest } from './server.ts';
import { captureState, restoreStore, type SandboxState } from './snapshot.ts';
import { createStore, unixSeconds, type CardSpec, type EventRec } from './store.ts';
import { createWebhookQueue, type Clock, type DeliveryRecord, type WebhookQueue } from './webhooks.ts';

/**
 * A local Stripe-compatible server for tests, the demo and benchmarks: the real SDK talks
 * to it over HTTP, it keeps its state in memory and sends signed webhooks.
 */

export type { Fault, FaultKind } from './faults.ts';
export type { FailureReason } from './issuer-model.ts';
export type { CardSpec, EventRec } from './store.ts';
export type { DeliveryRecord } from './webhooks.ts';
export type { ApiRequestRecord, RateLimitedRequest } from './server.ts';
export { parseState, parseWithDates, stringifyState, stringifyWithDates, type SandboxState } from './snapshot.ts';

export interface SandboxOptions {
  clock: Clock;
  seed?: number;
  webhookUrl?: string;
  webhookSecret?: string;
  /** Requests per second over all endpoints before answering 429 (default: no limit), as a token bucket. */
  rateLimitPerSecond?: number;
  /** Requests let through at once after a quiet spell (default: rateLimitPerSecond). */
  rateLimitBurst?: number;
  /** The same for each endpoint on its own (Stripe's is 25/s), on top of the account's (default: none). */
  endpointRateLimit?: { perSecond: number; burst?: number };
  /**
   * Milliseconds the rate limiter's buckets refill by (default: real time, `performance.now()`).
   * Tests pass their own so a refill is a step of the clock, not a wait.
   */
  rateLimitNow?: () => number;
  latencyMs?: number;
  /** Share (0..1) of deliveries sent twice. */
  duplicateShare?: number;
  /** Deliver the events of one operation in shuffled order. */
  reorder?: boolean;
  /**
   * Share (0..1) of API requests whose deliveries are held back together, and of duplicates held
   * back on their own, for a random time between `lateMinMs` (default 0) and `lateMaxMs` (default
   * 1000) real milliseconds, so they cross the events of later operations.
   */
  lateShare?: number;
  lateMinMs?: number;
  lateMaxMs?: number;
  /** Chance that one reminder makes the customer put in a working card (default 0.3). */
  cardUpdateProbability?: number;
  /** Clock for webhook signature timestamps (default: `clock`); receivers compare it with theirs. */
  webhookSigningClock?: Clock;
  /**
   * Clock idempotency keys age by (default: `clock`). Stripe keeps a key at least 24 hours, far
   * longer than a worker waits before repeating a request (seconds of real time). Under a scaled
   * clock those seconds are simulated days: keys aging on it would be gone by the repeat, which
   * would then run as a new request. The demo passes real time.
   */
  idempotencyClock?: Clock;
  /** Record every API request, see `requests()` (tests; a long demo would keep them all). */
  recordRequests?: boolean;
  /** Delivery attempts per event on non-2xx (default 4) and the first backoff (default 50 ms, doubling). */
  webhookMaxAttempts?: number;
  webhookBackoffMs?: number;
  /** Deliveries in flight to the webhook endpoint at most (default 16). */
  webhookConcurrency?: number;
  port?: number;
  log?: Logger;
  /** Put into every id, so objects differ from an earlier sandbox's kept in a database (demo --keep). */
  idTag?: string;
  /**
   * The webhook endpoint's API version (default: the SDK's). Stripe renders each event at it; one
   * older than 2025-03-31.basil gets invoices with top-level `subscription` and no `parent`.
   */
  webhookApiVersion?: string;
  /** Go on from an earlier sandbox's `saveState()` (its objects and id numbering; not its random draws). */
  state?: SandboxState;
}

export type SandboxCustomer = NewCustomer;

export interface ExecutedCharge {
  id: string;
  invoice: string;
  paymentMethod: string;
  amount: number;
  currency: string;
  status: 'succeeded' | 'failed';
  declineCode: string | null;
  source: 'initial' | 'automatic' | 'api' | 'hosted' | 'dashboard';
  created: number;
}

export interface Sandbox {
  url: string;
  host: string;
  port: number;
  apiKey: string;
  /** An SDK client pointed at the sandbox, with automatic retries off. */
  stripe(): Stripe;
  createCustomer(input: SandboxCustomer): Promise<{ id: string; paymentMethodId: string }>;
  /** Creates an open invoice and runs Stripe's first charge attempt, which fails for any failing card. */
  createFailingInvoice(
    customerId: string,
    input: NewInvoice,
  ): Promise<{ id: string; subscriptionId: string | null; chargeId: string }>;
  /** An open invoice of a customer without any card: Stripe's first attempt fails with no charge. */
  createUnpayableInvoice(customerId: string, input: NewInvoice): Promise<{ id: string; subscriptionId: string | null }>;
  updateCard(customerId: string, card: CardSpec): Promise<{ paymentMethodId: string }>;
  /** Another saved card for the customer, not made the default (a card saved in the portal). */
  saveCard(customerId: string, card: CardSpec): Promise<{ paymentMethodId: string }>;
  /** The customer removes a saved card: it can no longer be charged for them. */
  detachCard(paymentMethodId: string): Promise<void>;
  /** The card updater: new expiry for the same payment method id, which works again. */
  updateCardAutomatically(paymentMethodId: string, card: Pick<CardSpec, 'expMonth' | 'expYear'>): Promise<void>;
  payInvoiceOutOfBand(invoiceId: string): Promise<void>;
  /**
   * A declined try made outside the worker with the customer's failing default card: `hosted` (the
   * customer on the hosted invoice page) or `dashboard` (the Dashboard, another tool). A manual try: it
   * does not move `attempt_count` after the first attempt. `newPayment`: with a new InvoicePayment.
   */
  failedTry(
    invoiceId: string,
    source?: 'hosted' | 'dashboard',
    options?: { newPayment?: boolean },
  ): Promise<{ chargeId: string; paymentIntentId: string }>;
  /** Stripe's own automatic retry (Smart Retries): it counts in `attempt_count`. */
  automaticRetry(invoiceId: string): Promise<{ chargeId: string; status: 'succeeded' | 'failed' }>;
  /** Lets the card model decide whether this reminder makes the customer update their card. */
  reminderSent(customerId: string): Promise<{ updated: boolean; paymentMethodId: string | null }>;
  /** A webhook endpoint made as in the Dashboard, which can be a live-mode one (the API only makes test ones). */
  addWebhookEndpoint(input: Parameters<typeof addWebhookEndpoint>[1]): WebhookEndpointRec;
  inject(fault: Fault): void;
  clearFaults(): void;
  charges(invoiceId?: string): ExecutedCharge[];
  events(): EventRec[];
  deliveries(): DeliveryRecord[];
  /** Every customer's id and email, restored ones included. */
  customers(): Array<{ id: string; email: string }>;
  /** Everything needed to go on later: pass it as `state` to a new sandbox. */
  saveState(): SandboxState;
  /** Requests the rate limiter turned away with 429, in arrival order. */
  rateLimited(): RateLimitedRequest[];
  /** Every API request in arrival order, with what became of it; empty unless `recordRequests`. */
  requests(): ApiRequestRecord[];
  flushWebhooks(): Promise<void>;
  /**
   * The API version of events emitted from now on: as replacing the endpoint with one created at
   * another version (an endpoint's own version cannot be changed).
   */
  setWebhookApiVersion(version: string): void;
  stop(): Promise<void>;
}

export const sandboxApiKey = 'sk_test_sandbox';

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const log = opts.log ?? pino({ level: 'silent' });
  const rng = createRng(opts.seed ?? 1);
  const store = opts.state ? restoreStore(opts.state) : createStore(opts.idTag);
  const render = { store, baseUrl: '' };
  let queue: WebhookQueue | null = null;
  if (opts.webhookUrl !== undefined) {
    if (opts.webhookSecret === undefined) throw new Error('sandbox webhookUrl needs a webhookSecret');
    queue = createWebhookQueue({
      url: opts.webhookUrl,
      secret: opts.webhookSecret,
      // A separate stream so delivery shuffles do not change the card model's draws.
      rng: createRng((opts.seed ?? 1) ^ 0x5eed),
      signingClock: opts.webhookSigningClock ?? opts.clock,
      duplicateShare: opts.duplicateShare ?? 0,
      reorder: opts.reorder ?? false,
      lateShare: opts.lateShare ?? 0,
      lateMinMs: opts.lateMinMs ?? 0,
      lateMaxMs: opts.lateMaxMs ?? 1000,
      maxAttempts: opts.webhookMaxAttempts ?? 4,
      backoffMs: opts.webhookBackoffMs ?? 50,
      ...(opts.webhookConcurrency ? { concurrency: opts.webhookConcurrency } : {}),
      timeoutMs: 5000,
    });
  }

  let endpointVersion = opts.webhookApiVersion ?? apiVersion;
  const emit: Emit = (type, object, previous, request, at) => {
    const envelope = {
      id: store.nextId('evt'),
      object: 'event',
      api_version: apiVersion,
      created: unixSeconds(at ?? opts.clock.now()),
      livemode: false,
      pending_webhooks: queue === null ? 0 : 1,
      request: { id: request?.id ?? null, idempotency_key: request?.idempotencyKey ?? null },
    } satisfies Omit<Stripe.Event, 'type' | 'data'>;
    const data = previous === undefined ? { object } : { object, previous_attributes: previous };
    // `Emit` pairs `type` with its object; TypeScript cannot see that a generic `Extract<>` of the
    // union is one of its members, so the pair is asserted here, and only the pair: the envelope
    // is checked above and the object by `Emit`'s parameters.
    const event = { ...envelope, type, data } as EventRec;
    store.events.push(event);
    queue?.enqueue(eventAtVersion(render, event, endpointVersion));
  };

  const billing = createBilling({
    store,
    clock: opts.clock,
    rng,
    render,
    emit,
    cardUpdateProbability: opts.cardUpdateProbability ?? 0.3,
  });
  const faults = createFaultRegistry();
  const http = createSandboxHttp({
    deps: { store, billing, render, emit, clock: opts.clock },
    faults,
    idempotency: createIdempotencyCache(opts.idempotencyClock ?? opts.clock),
    log,
    rateLimit: {
      account:
        opts.rateLimitPerSecond === undefined
          ? null
          : { perSecond: opts.rateLimitPerSecond, burst: opts.rateLimitBurst },
      endpoint: opts.endpointRateLimit ?? null,
      ...(opts.rateLimitNow ? { now: opts.rateLimitNow } : {}),
    },
    latencyMs: opts.latencyMs ?? 0,
    recordRequests: opts.recordRequests ?? false,
  });
  await new Promise<void>((resolve, reject) => {
    http.server.once('error', reject);
    http.server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const host = '127.0.0.1';
  const port = (http.server.address() as AddressInfo).port;
  const url = `http://${host}:${port}`;
  render.baseUrl = url;
  log.info({ port }, 'stripe sandbox listening');

  return {
    url,
    host,
    port,
    apiKey: sandboxApiKey,
    stripe: () => new Stripe(sandboxApiKey, { host, port, protocol: 'http', maxNetworkRetries: 0 }),
    async createCustomer(input) {
      const c = billing.createCustomer(input);
      return { id: c.id, paymentMethodId: c.defaultPaymentMethod ?? '' };
    },
    async createFailingInvoice(customerId, input) {
      const { invoice, charge } = billing.createFailingInvoice(customerId, input);
      return { id: invoice.id, subscriptionId: invoice.subscription, chargeId: charge.id };
    },
    async createUnpayableInvoice(customerId, input) {
      const invoice = billing.createUnpayableInvoice(customerId, input);
      return { id: invoice.id, subscriptionId: invoice.subscription };
    },
    async updateCard(customerId, card) {
      return { paymentMethodId: billing.updateCard(customerId, card).id };
    },
    async saveCard(customerId, card) {
      return { paymentMethodId: billing.saveCard(customerId, card).id };
    },
    async detachCard(paymentMethodId) {
      billing.detachCard(paymentMethodId);
    },
    async updateCardAutomatically(paymentMethodId, card) {
      billing.updateCardAutomatically(paymentMethodId, card);
    },
    async payInvoiceOutOfBand(invoiceId) {
      billing.payOutOfBand(invoiceId);
    },
    failedTry(invoiceId, source = 'hosted', options = {}) {
      const ch = billing.failedTry(invoiceId, source, options.newPayment ?? false);
      return Promise.resolve({ chargeId: ch.id, paymentIntentId: ch.paymentIntent });
    },
    automaticRetry(invoiceId) {
      const ch = billing.automaticRetry(invoiceId);
      return Promise.resolve({ chargeId: ch.id, status: ch.status });
    },
    async reminderSent(customerId) {
      const pm = billing.reminderSent(customerId);
      return { updated: pm !== null, paymentMethodId: pm?.id ?? null };
    },
    addWebhookEndpoint: (input) => addWebhookEndpoint({ store, clock: opts.clock }, input),
    inject: (fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    charges(invoiceId) {
      return [...store.charges.values()]
        .filter((c) => invoiceId === undefined || c.invoice === invoiceId)
        .map((c) => ({
          id: c.id,
          invoice: c.invoice,
          paymentMethod: c.paymentMethod,
          amount: c.amount,
          currency: c.currency,
          status: c.status,
          declineCode: c.failure?.declineCode ?? null,
          source: c.source,
          created: c.created,
        }));
    },
    events: () => [...store.events],
    deliveries: () => queue?.deliveries() ?? [],
    customers: () => [...store.customers.values()].map((c) => ({ id: c.id, email: c.email })),
    saveState: () => captureState(store),
    rateLimited: () => http.rateLimited(),
    requests: () => http.requests(),
    setWebhookApiVersion(version) {
      endpointVersion = version;
    },
    flushWebhooks: async () => {
      await queue?.flush();
    },
    async stop() {
      queue?.stop();
      await queue?.flush();
      http.dropHeld();
      http.server.closeAllConnections();
      await new Promise<void>((resolve) => http.server.close(() => resolve()));
    },
  };
}

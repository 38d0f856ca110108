import Stripe from 'stripe';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { versionWarner } from '../../src/events/versions.ts';
import { retrieveInvoiceCharges } from '../../src/stripe/charge.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { manualClock, startReceiver } from '../sandbox/helpers.ts';
import { apply, recordingHooks, testDeps } from './helpers.ts';

/**
 * Stripe, WebhookEndpoint.api_version: "The API version that events are rendered as for this
 * webhook endpoint. You can't change this value after you create the endpoint." Not the version of
 * the SDK that reads them. Before 2025-03-31.basil an invoice names its subscription at
 * top level and has no `parent`: read as ours, a deleted subscription would no longer close its
 * cases and a Stripe pause would not be followed, silently.
 */

const LEGACY = '2024-06-20';
let db: TestDatabase;
let sandbox: Sandbox;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  db = await createTestDatabase();
  receiver = await startReceiver();
  sandbox = await startSandbox({
    clock: manualClock('2026-06-01T08:00:00Z'),
    seed: 3,
    webhookUrl: receiver.url,
    webhookSecret: 'whsec_versions',
    webhookApiVersion: LEGACY,
  });
});
afterAll(async () => {
  await sandbox?.stop();
  await receiver?.close();
  await db?.drop();
});

/** A failed subscription invoice, as the legacy endpoint received its events. */
async function legacyFailure(): Promise<{ invoiceId: string; subscriptionId: string; events: Stripe.Event[] }> {
  const c = await sandbox.createCustomer({
    email: 'v@example.test',
    name: 'V',
    country: 'DE',
    card: { brand: 'visa', failure: 'insufficient_funds', expMonth: 9, expYear: 2030 },
  });
  const inv = await sandbox.createFailingInvoice(c.id, { amount: 3_000, currency: 'eur', subscription: true });
  await sandbox.flushWebhooks();
  const events = receiver.received
    .map((r) => JSON.parse(r.body) as Stripe.Event)
    .filter((e) => (e.data.object as { id?: string }).id === inv.id && e.type === 'invoice.payment_failed');
  return { invoiceId: inv.id, subscriptionId: inv.subscriptionId!, events };
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('debug', {
    write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>),
  });
  return { log, lines };
}

test('an invoice event at an older API version is read again at ours: its subscription is known', async () => {
  const { invoiceId, subscriptionId, events } = await legacyFailure();
  expect(events).toHaveLength(1);
  expect(events[0]!.api_version).toBe(LEGACY);
  const stripe = sandbox.stripe();
  const deps = {
    ...testDeps(recordingHooks().hooks),
    fetchInvoice: (id: string) => stripe.invoices.retrieve(id),
  };
  expect(await apply(db.sql, deps, ...events)).toEqual(['processed']);
  const [row] = await db.sql`select subscription_id from invoices where id = ${invoiceId}`;
  expect(row!.subscription_id).toBe(subscriptionId);
  const [c] = await db.sql`select status from dunning_cases where invoice_id = ${invoiceId}`;
  expect(c!.status).toBe('open');
});

test('without a way to read it again the event is parked with a reason naming the version: nothing lost, nothing applied', async () => {
  const { invoiceId, events } = await legacyFailure();
  const { log, lines } = capture();
  const deps = { ...testDeps(recordingHooks().hooks), log };
  expect(await apply(db.sql, deps, ...events)).toEqual(['done']);
  const [ev] = await db.sql`select status, last_error from stripe_events where id = ${events[0]!.id}`;
  expect(ev!.status).toBe('failed');
  expect(ev!.last_error).toContain(`rendered at Stripe API version ${LEGACY}, not ${Stripe.API_VERSION}`);
  expect(await db.sql`select 1 from dunning_cases where invoice_id = ${invoiceId}`).toHaveLength(0);
  expect(lines.some((l) => String(l.msg).startsWith('event parked: invoice.payment_failed rendered at'))).toBe(true);
});

test('an event at an unknown API version gets a clear log line; its invoice is read at ours, and applying it twice charges nothing twice', async () => {
  const { invoiceId, subscriptionId, events } = await legacyFailure();
  const odd = { ...events[0]!, id: `${events[0]!.id}_odd`, api_version: 'not-a-version' } as Stripe.Event;
  const { log, lines } = capture();
  const stripe = sandbox.stripe();
  const deps = { ...testDeps(recordingHooks().hooks), log, fetchInvoice: (id: string) => stripe.invoices.retrieve(id) };
  expect(await apply(db.sql, deps, odd, odd)).toEqual(['processed', 'done']);
  const unknown = lines.filter((l) => String(l.msg).startsWith('event at an unknown Stripe API version'));
  expect(unknown).toHaveLength(1);
  expect(unknown[0]).toMatchObject({ apiVersion: 'not-a-version', ours: Stripe.API_VERSION });
  const [row] = await db.sql`select subscription_id from invoices where id = ${invoiceId}`;
  expect(row!.subscription_id).toBe(subscriptionId);
  expect(await db.sql`select 1 from payment_attempts where invoice_id = ${invoiceId}`).toHaveLength(1);
});

test("an older-version failure with the invoice's charges read: one invoice read serves both, the charge is on the ledger by id", async () => {
  const { invoiceId, subscriptionId, events } = await legacyFailure();
  let requests = 0;
  const gateway = { stripe: sandbox.stripe(), throttle: { take: async () => void (requests += 1), waiting: () => 0 } };
  const deps = {
    ...testDeps(recordingHooks().hooks),
    fetchInvoice: () => Promise.reject(new Error('not asked: the charges read brings the invoice')),
    fetchInvoiceCharges: (id: string) => retrieveInvoiceCharges(gateway, id),
  };
  expect(await apply(db.sql, deps, ...events, ...events)).toEqual(['processed', 'done']);
  // The invoice at our version, then the charges of its one PaymentIntent; the copy reads nothing.
  expect(requests).toBe(2);
  const [row] = await db.sql`select subscription_id from invoices where id = ${invoiceId}`;
  expect(row!.subscription_id).toBe(subscriptionId);
  const attempts = await db.sql`select charge_id from payment_attempts where invoice_id = ${invoiceId}`;
  expect(attempts.map((a) => a.charge_id)).toEqual(sandbox.charges(invoiceId).map((c) => c.id));
});

test('the receiver side warns once per endpoint API version other than ours', () => {
  const { log, lines } = capture();
  const warn = versionWarner();
  for (const v of [Stripe.API_VERSION, LEGACY, LEGACY, '2025-01-27.acacia', LEGACY]) warn(log, v);
  expect(lines.map((l) => l.apiVersion)).toEqual([LEGACY, '2025-01-27.acacia']);
  expect(String(lines[0]!.msg)).toContain(`create the endpoint anew at API version ${Stripe.API_VERSION}`);
});

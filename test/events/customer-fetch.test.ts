import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import type { ProcessorDeps } from '../../src/events/context.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { retrieveCustomer } from '../../src/stripe/charge.ts';
import { createStripeClient } from '../../src/stripe/client.ts';
import { createThrottle } from '../../src/stripe/throttle.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { customer, event, invoice, T0 } from '../fixtures/events/stripe-objects.ts';
import { apply, recordingHooks, testDeps } from './helpers.ts';

/**
 * Customers whose `customer.*` events predate the install: the processor reads them from Stripe
 * (here the local sandbox, over real HTTP) the first time an event names them.
 */

let db: TestDatabase;
let sandbox: Sandbox;
let deps: ProcessorDeps;
let reads: string[];

beforeAll(async () => {
  db = await createTestDatabase();
  sandbox = await startSandbox({ clock: new FixedClock(new Date(T0 * 1000)), seed: 1 });
  const stripe = createStripeClient(
    { stripeSecretKey: sandbox.apiKey, stripeApiBase: { protocol: 'http', host: sandbox.host, port: sandbox.port } },
    { timeoutMs: 2_000 },
  );
  const gateway = { stripe, throttle: createThrottle(100) };
  reads = [];
  deps = {
    ...testDeps(recordingHooks().hooks),
    fetchCustomer: async (id) => {
      reads.push(id);
      return retrieveCustomer(gateway, id);
    },
  };
});
afterAll(async () => {
  await sandbox?.stop();
  await db?.drop();
});

const customerRow = async (id: string) => (await db.sql`select * from customers where id = ${id}`)[0];

describe('customers the worker never heard about', () => {
  test('the first event naming an unknown customer reads it from Stripe once: locale, zone and country follow', async () => {
    const c = await sandbox.createCustomer({
      email: 'kunde@example.de',
      name: 'Eine Kundin',
      country: 'AT',
      preferredLocales: ['de'],
      timeZone: 'Europe/Vienna',
      card: { brand: 'visa', failure: 'insufficient_funds', expMonth: 12, expYear: 2030 },
    });
    await apply(
      db.sql,
      deps,
      event('invoice.payment_failed', invoice({ id: 'in_f1', customer: c.id })),
      event('invoice.updated', invoice({ id: 'in_f1', customer: c.id }), { created: T0 + 5 }),
    );
    expect(await customerRow(c.id)).toMatchObject({
      email: 'kunde@example.de',
      preferred_locales: ['de'],
      time_zone: 'Europe/Vienna',
      country: 'AT',
      stripe_updated_at: new Date(T0 * 1000),
    });
    expect(reads).toEqual([c.id]);
  });

  test('a customer known from its own events is not read again, and a newer customer.updated wins over the read', async () => {
    const c = await sandbox.createCustomer({
      email: 'a@example.com',
      name: 'A',
      country: 'GB',
      timeZone: 'Europe/London',
      card: { brand: 'visa', failure: null, expMonth: 1, expYear: 2031 },
    });
    reads.length = 0;
    await apply(
      db.sql,
      deps,
      event('customer.updated', customer({ id: c.id, metadata: { time_zone: 'America/New_York' } }), {
        created: T0 - 10,
      }),
      event('invoice.payment_failed', invoice({ id: 'in_f2', customer: c.id })),
    );
    expect(reads).toEqual([]);
    expect((await customerRow(c.id))!.time_zone).toBe('America/New_York');
  });

  test('a read Stripe answers 429 is asked again, so the customer still gets their zone and language', async () => {
    const c = await sandbox.createCustomer({
      email: 'busy@example.de',
      name: 'B',
      country: 'DE',
      preferredLocales: ['de'],
      timeZone: 'Europe/Berlin',
      card: { brand: 'visa', failure: 'insufficient_funds', expMonth: 12, expYear: 2030 },
    });
    sandbox.inject({ kind: 'http_429', route: 'GET /v1/customers/:id', objectId: c.id, times: 2 });
    await apply(db.sql, deps, event('invoice.payment_failed', invoice({ id: 'in_f4', customer: c.id })));
    expect(await customerRow(c.id)).toMatchObject({ preferred_locales: ['de'], time_zone: 'Europe/Berlin' });
  });

  test('a read that keeps failing gives up after its tries; an answer that will not change is not asked again', async () => {
    const stripe = createStripeClient(
      { stripeSecretKey: sandbox.apiKey, stripeApiBase: { protocol: 'http', host: sandbox.host, port: sandbox.port } },
      { timeoutMs: 2_000 },
    );
    const gateway = { stripe, throttle: createThrottle(100) };
    const c = await sandbox.createCustomer({
      email: 'x@example.com',
      name: 'X',
      country: 'DE',
      card: { brand: 'visa', failure: null, expMonth: 12, expYear: 2030 },
    });
    sandbox.inject({ kind: 'http_500', route: 'GET /v1/customers/:id', objectId: c.id, times: 5 });
    await expect(retrieveCustomer(gateway, c.id, { tries: 3, firstDelayMs: 10 })).rejects.toThrow(
      /cannot read customer/,
    );
    // Two of the five faults are left: exactly three tries were made.
    await expect(retrieveCustomer(gateway, c.id, { tries: 2, firstDelayMs: 10 })).rejects.toThrow(
      /cannot read customer/,
    );
    expect(await retrieveCustomer(gateway, c.id, { tries: 1, firstDelayMs: 10 })).toMatchObject({ id: c.id });
    // 404 is final: one try only, even with tries to spare.
    const started = Date.now();
    await expect(retrieveCustomer(gateway, 'cus_nobody', { tries: 3, firstDelayMs: 1_000 })).rejects.toThrow(
      /cannot read customer/,
    );
    expect(Date.now() - started).toBeLessThan(900);
  });

  test('when Stripe cannot be read the event still applies, with what the invoice says about the customer', async () => {
    const failing: ProcessorDeps = {
      ...deps,
      fetchCustomer: async () => {
        throw new Error('connection refused');
      },
    };
    await apply(
      db.sql,
      failing,
      event(
        'invoice.payment_failed',
        invoice({
          id: 'in_f3',
          customer: 'cus_gone',
          customer_address: { city: null, country: 'FR', line1: null, line2: null, postal_code: null, state: null },
        }),
      ),
    );
    expect(await customerRow('cus_gone')).toMatchObject({
      email: 'jane@example.com',
      name: 'Jane Doe',
      country: 'FR',
      time_zone: null,
    });
    const [ev] = await db.sql`select status from stripe_events where payload -> 'data' -> 'object' ->> 'id' = 'in_f3'`;
    expect(ev!.status).toBe('processed');
  });
});

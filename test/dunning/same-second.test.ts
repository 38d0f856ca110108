import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import type { ProcessorDeps } from '../../src/events/context.ts';
import { customer, event } from '../fixtures/events/stripe-objects.ts';
import { apply, testDeps } from '../events/helpers.ts';
import { seedFailedInvoice, startWorld, type RunnerWorld } from './runner-helpers.ts';

/**
 * Stripe's `created` is "Time at which the object was created. Measured in seconds since the Unix
 * epoch": two customer.updated events of one second cannot be ordered by it. Their
 * `previous_attributes` ("the previous values of any fields that changed") can: the event that
 * changed the default from A to B precedes the one that changed it from B to C.
 */

let w: RunnerWorld;
let processor: ProcessorDeps;
beforeAll(async () => {
  w = await startWorld();
  processor = testDeps(createDunningHooks(w.deps));
});
afterAll(async () => {
  await w?.close();
});

describe('two customer.updated events of the same second, delivered in reverse', () => {
  it('A->B then B->C ends with C as the default, and the card-update retry charges C', async () => {
    const s = await seedFailedInvoice(w, 'stolen_card');
    await w.db.sql.begin((tx) =>
      createDunningHooks(w.deps).paymentFailed(tx, {
        caseId: s.caseId,
        invoiceId: s.invoiceId,
        opened: true,
        at: w.clock.now(),
      }),
    );
    const A = s.paymentMethod;
    const second = Math.floor(w.clock.now().getTime() / 1000) + 10;
    const settings = (pm: string) => ({
      custom_fields: null,
      default_payment_method: pm,
      footer: null,
      rendering_options: null,
    });
    const toB = event('customer.updated', customer({ id: s.customerId, invoice_settings: settings('pm_B') }), {
      created: second,
      previous: { invoice_settings: { default_payment_method: A } },
    });
    const toC = event('customer.updated', customer({ id: s.customerId, invoice_settings: settings('pm_C') }), {
      created: second,
      previous: { invoice_settings: { default_payment_method: 'pm_B' } },
    });
    // Delivered in reverse: B->C first, then A->B.
    await apply(w.db.sql, processor, toC);
    await apply(w.db.sql, processor, toB);

    const [row] = await w.db.sql`select default_payment_method from customers where id = ${s.customerId}`;
    expect(row!.default_payment_method).toBe('pm_C');
    const planned = await w.db.sql`
      select payment_method, source from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(planned.map((r) => String(r.payment_method))).toEqual(['pm_C']);
  });

  it('in order, both apply and C wins', async () => {
    const s = await seedFailedInvoice(w, 'stolen_card');
    const second = Math.floor(w.clock.now().getTime() / 1000) + 10;
    const settings = (pm: string) => ({
      custom_fields: null,
      default_payment_method: pm,
      footer: null,
      rendering_options: null,
    });
    await apply(
      w.db.sql,
      processor,
      event('customer.updated', customer({ id: s.customerId, invoice_settings: settings('pm_B2') }), {
        created: second,
        previous: { invoice_settings: { default_payment_method: s.paymentMethod } },
      }),
    );
    await apply(
      w.db.sql,
      processor,
      event('customer.updated', customer({ id: s.customerId, invoice_settings: settings('pm_C2') }), {
        created: second,
        previous: { invoice_settings: { default_payment_method: 'pm_B2' } },
      }),
    );
    const [row] = await w.db.sql`select default_payment_method from customers where id = ${s.customerId}`;
    expect(row!.default_payment_method).toBe('pm_C2');
  });
});

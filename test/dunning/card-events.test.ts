import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import { waitFor } from '../helpers/db.ts';
import type { ProcessorDeps } from '../../src/events/context.ts';
import { event, paymentMethod } from '../fixtures/events/stripe-objects.ts';
import { apply, testDeps } from '../events/helpers.ts';
import {
  apiCharges,
  caseRow,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
  type SeededCase,
  startWorldWorkers,
} from './runner-helpers.ts';

let w: RunnerWorld;
let processor: ProcessorDeps;
beforeAll(async () => {
  w = await startWorld();
  processor = testDeps(createDunningHooks(w.deps));
});
afterAll(async () => {
  await w?.close();
});

/** Stripe's `created` (seconds) this many seconds after the customer row was written. */
const at = (seconds: number) => Math.floor(w.clock.now().getTime() / 1000) + seconds;

async function awaitingCase(): Promise<SeededCase> {
  const s = await seedFailedInvoice(w, 'stolen_card');
  await w.db.sql.begin((tx) =>
    createDunningHooks(w.deps).paymentFailed(tx, {
      caseId: s.caseId,
      invoiceId: s.invoiceId,
      opened: true,
      at: w.clock.now(),
    }),
  );
  return s;
}

async function planned(invoiceId: string) {
  return w.db
    .sql`select id, source, payment_method from payment_attempts where invoice_id = ${invoiceId} and status = 'planned'`;
}

const attached = (pm: string, customer: string, created: number) =>
  event('payment_method.attached', paymentMethod({ id: pm, customer }), { created });

describe('late card events', () => {
  it('a late event for an older card does not replace the retry planned on the newer card; a newer one does', async () => {
    const s = await awaitingCase();
    await apply(w.db.sql, processor, attached('pm_newer', s.customerId, at(60)));
    const [onNewer] = await planned(s.invoiceId);
    expect(onNewer).toMatchObject({ source: 'card_update', payment_method: 'pm_newer' });

    await apply(w.db.sql, processor, attached('pm_older', s.customerId, at(30)));
    expect(await planned(s.invoiceId)).toEqual([onNewer]);

    await apply(w.db.sql, processor, attached('pm_newest', s.customerId, at(90)));
    expect((await planned(s.invoiceId)).map((r) => r.payment_method)).toEqual(['pm_newest']);
  });

  it('a card event older than the customer row, for a card other than its default, plans nothing', async () => {
    const s = await awaitingCase();
    await apply(w.db.sql, processor, attached('pm_stale', s.customerId, at(-60)));
    expect(await planned(s.invoiceId)).toHaveLength(0);
    // Same second as the row: both apply (Stripe's created has one-second precision).
    await apply(w.db.sql, processor, attached('pm_same_second', s.customerId, at(0)));
    expect((await planned(s.invoiceId)).map((r) => r.payment_method)).toEqual(['pm_same_second']);
  });

  it("customer.updated naming a new default card, as Stripe sends it, is applied by the processor and the worker's retry pays", async () => {
    const s = await awaitingCase();
    // The customer puts in a card on the hosted page: Stripe attaches it and makes it the default.
    const { paymentMethodId } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 1,
      expYear: 2031,
    });
    const updated = w.sandbox
      .events()
      .filter((e) => e.type === 'customer.updated' && (e.data.object as { id: string }).id === s.customerId)
      .at(-1);
    expect(updated?.data.previous_attributes).toHaveProperty('invoice_settings');
    // Only that event: the payment_method.attached that came with it would plan the same retry.
    await apply(w.db.sql, processor, updated as unknown as Stripe.Event);
    const [customer] = await w.db.sql`select default_payment_method from customers where id = ${s.customerId}`;
    expect(customer!.default_payment_method).toBe(paymentMethodId);
    const [retry] = await planned(s.invoiceId);
    expect(retry).toMatchObject({ source: 'card_update', payment_method: paymentMethodId });

    const stop = await startWorldWorkers(w);
    try {
      const c = await waitFor('case recovered by the retry on the new card', async () => {
        const row = await caseRow(w.db.sql, s.caseId);
        return row.status === 'recovered' ? row : null;
      });
      expect(c.recovery_path).toBe('card_update_retry');
    } finally {
      await stop();
    }
    expect(apiCharges(w.sandbox, s.invoiceId).map((ch) => [ch.paymentMethod, ch.status])).toEqual([
      [paymentMethodId, 'succeeded'],
    ]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import { retryNow } from '../../src/dunning/ops-actions.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import { event, paymentMethod } from '../fixtures/events/stripe-objects.ts';
import { apply, testDeps } from '../events/helpers.ts';
import {
  apiCharges,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
} from './runner-helpers.ts';

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

async function plannedRow(invoiceId: string) {
  const [row] = await w.db.sql`select * from payment_attempts where invoice_id = ${invoiceId} and status = 'planned'`;
  return row;
}

describe("Stripe's card updater", () => {
  it('renews an expired card under the same id: the waiting case retries that card at once and recovers', async () => {
    const s = await seedFailedInvoice(w, 'expired_card');
    const hooks = createDunningHooks(w.deps);
    await w.db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: true, at: w.clock.now() }),
    );
    // An expired card is never retried blindly: the case waits for the customer.
    expect(await plannedRow(s.invoiceId)).toBeUndefined();

    // Two days later the network sends the new expiry; Stripe announces it for the same pm_ id.
    w.clock.advance(2 * 86_400_000);
    w.sandboxClock.set(w.clock.now());
    try {
      await w.sandbox.updateCardAutomatically(s.paymentMethod, { expMonth: 12, expYear: 2031 });
      const updated = event(
        'payment_method.automatically_updated',
        paymentMethod({ id: s.paymentMethod, customer: s.customerId }),
        {
          created: Math.floor(w.clock.now().getTime() / 1000),
        },
      );
      expect(await apply(w.db.sql, { ...testDeps(hooks), clock: w.clock }, updated)).toEqual(['processed']);

      const retry = await plannedRow(s.invoiceId);
      expect(retry).toMatchObject({ attempt_no: 2, source: 'card_update', payment_method: s.paymentMethod });
      expect(retry!.plan_reason).toContain('payment method changed');
      expect(await executeAttempt(w.deps, Number(retry!.id))).toBe('succeeded');
      expect((await caseRow(w.db.sql, s.caseId)).recovery_path).toBe('card_update_retry');
    } finally {
      w.clock.advance(-2 * 86_400_000);
      w.sandboxClock.set(w.clock.now());
    }
  });
});

describe('every attempt charges the card it was planned and checked for', () => {
  it('a card attached without becoming the default: retries stay on it and the barred default is never charged again', async () => {
    // Stripe's first charge on card A answered stolen_card; A stays the customer's default.
    const s = await seedFailedInvoice(w, 'stolen_card');
    const cardA = s.paymentMethod;
    const hooks = createDunningHooks(w.deps);
    await w.db.sql.begin((tx) =>
      hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: true, at: w.clock.now() }),
    );
    expect(await plannedRow(s.invoiceId)).toBeUndefined();

    // The customer attaches card B but leaves A as the default at Stripe.
    const { paymentMethodId: cardB } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: 'insufficient_funds',
      expMonth: 1,
      expYear: 2031,
    });
    await w.deps.gateway.stripe.customers.update(s.customerId, { invoice_settings: { default_payment_method: cardA } });
    await w.db.sql.begin((tx) =>
      hooks.paymentMethodChanged(tx, { customerId: s.customerId, paymentMethod: cardB, at: w.clock.now() }),
    );
    const second = await plannedRow(s.invoiceId);
    expect(second).toMatchObject({ attempt_no: 2, source: 'card_update', payment_method: cardB });
    expect(await executeAttempt(w.deps, Number(second!.id))).toBe('declined');

    // Retry #3 is planned for B, the card the planner checked, and names it.
    const third = await plannedRow(s.invoiceId);
    expect(third).toMatchObject({ attempt_no: 3, source: 'scheduled', payment_method: cardB });
    expect(third!.plan_reason).toContain('insufficient_funds');
    await executeAttempt(w.deps, Number(third!.id));

    const charged = apiCharges(w.sandbox, s.invoiceId).map((c) => c.paymentMethod);
    expect(charged).toEqual([cardB, cardB]);
    expect(w.sandbox.charges(s.invoiceId).filter((c) => c.paymentMethod === cardA)).toHaveLength(1); // Stripe's own first charge only
  });

  it('a manual retry names the card too: the customer default the case has not tried, else the last card tried', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    const manual = await w.db.sql.begin((tx) => retryNow(tx, w.deps, s.invoiceId));
    expect(manual.paymentMethod).toBe(s.paymentMethod);

    const { paymentMethodId: cardC } = await w.sandbox.updateCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 1,
      expYear: 2031,
    });
    await w.db.sql`update customers set default_payment_method = ${cardC} where id = ${s.customerId}`;
    const again = await w.db.sql.begin((tx) => retryNow(tx, w.deps, s.invoiceId));
    expect(again.paymentMethod).toBe(cardC);
    expect(await executeAttempt(w.deps, again.id)).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId).map((c) => c.paymentMethod)).toEqual([cardC]);
  });

  it('a new default card set while an attempt runs is used when that attempt declines, not waited for', async () => {
    const s = await seedFailedInvoice(w, 'expired_card');
    // Stripe's first decline reached the ledger without its code, so a retry on A was planned.
    await w.db
      .sql`update payment_attempts set decline_code = null, failure_code = 'card_declined' where invoice_id = ${s.invoiceId} and attempt_no = 1`;
    const running = await planDueAttempt(w.db.sql, s, w.clock.now());
    const hooks = createDunningHooks(w.deps);
    let cardC = '';
    let hookResult = '';
    const deps = {
      ...w.deps,
      // While the charge on A is running, the customer sets card C as the default.
      afterCharge: async () => {
        cardC = (await w.sandbox.updateCard(s.customerId, { brand: 'visa', failure: null, expMonth: 1, expYear: 2031 }))
          .paymentMethodId;
        await w.db.sql`update customers set default_payment_method = ${cardC} where id = ${s.customerId}`;
        await w.db.sql.begin(async (tx) => {
          await hooks.paymentMethodChanged(tx, { customerId: s.customerId, paymentMethod: cardC, at: w.clock.now() });
          const [active] =
            await tx`select status from payment_attempts where invoice_id = ${s.invoiceId} and status <> 'declined'`;
          hookResult = String(active?.status);
        });
      },
    };
    expect(await executeAttempt(deps, running)).toBe('declined');
    expect(hookResult).toBe('in_flight'); // the card event could not plan anything then

    const next = await plannedRow(s.invoiceId);
    expect(next).toMatchObject({ attempt_no: 3, source: 'card_update', payment_method: cardC });
    expect(next!.plan_reason).toContain('payment method changed');
    expect((await caseRow(w.db.sql, s.caseId)).next_attempt_reason).not.toMatch(/^awaiting customer/);
    expect(await executeAttempt(w.deps, Number(next!.id))).toBe('succeeded');
    expect((await caseRow(w.db.sql, s.caseId)).recovery_path).toBe('card_update_retry');
    expect(apiCharges(w.sandbox, s.invoiceId).map((c) => c.paymentMethod)).toEqual([s.paymentMethod, cardC]);
  });
});

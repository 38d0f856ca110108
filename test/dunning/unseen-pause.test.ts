import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleDeadline } from '../../src/dunning/final-action.ts';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import type { ProcessorDeps } from '../../src/events/context.ts';
import { apply, testDeps } from '../events/helpers.ts';
import {
  apiCharges,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
  type SeededCase,
} from './runner-helpers.ts';

/**
 * A Stripe pause_collection our copy never saw (its event is late, or it predates the install).
 * Stripe: "If you want to pause payment collection on a subscription, set pause_collection ... To
 * resume collection, unset pause_collection" (Subscriptions API, pause_collection).
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

async function setPause(
  s: SeededCase,
  pauseCollection: Stripe.SubscriptionUpdateParams['pause_collection'],
): Promise<Stripe.Event> {
  await w.deps.gateway.stripe.subscriptions.update(s.subscriptionId!, { pause_collection: pauseCollection });
  const ev = w.sandbox
    .events()
    .filter(
      (e) => e.type === 'customer.subscription.updated' && (e.data.object as { id: string }).id === s.subscriptionId,
    )
    .at(-1);
  return ev as unknown as Stripe.Event;
}

describe('a pause learnt from the runner’s Stripe read', () => {
  it('is written into our subscription row, so the event that lifts it plans the case again', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    // Paused at Stripe; its event never reached us.
    await setPause(s, { behavior: 'void' });
    const id = await planDueAttempt(w.db.sql, s, w.clock.now());
    expect(await executeAttempt(w.deps, id)).toBe('skipped');
    const [sub] = await w.db.sql`select pause_collection_behavior from subscriptions where id = ${s.subscriptionId}`;
    expect(sub?.pause_collection_behavior).toBe('void');

    // The merchant lifts the pause: that event must plan the case again.
    await apply(w.db.sql, processor, await setPause(s, ''));
    const planned = await w.db.sql`
      select id from payment_attempts where invoice_id = ${s.invoiceId} and status = 'planned'`;
    expect(planned).toHaveLength(1);
    expect(await executeAttempt(w.deps, Number(planned[0]!.id))).not.toBe('skipped');
    expect(apiCharges(w.sandbox, s.invoiceId).length).toBeGreaterThan(0);
  });

  it('a pause still holding when the dunning window ends closes the case without a final action', async () => {
    const s = await seedFailedInvoice(w, 'generic_decline');
    await setPause(s, { behavior: 'keep_as_draft' });
    const start = w.clock.now();
    w.clock.set(new Date(start.getTime() + (w.policy.retry.windowDays + 1) * 86_400_000));
    try {
      expect(await handleDeadline(w.deps, { caseId: s.caseId, kind: 'await', reason: 'test', attemptsSeen: 1 })).toBe(
        'stood_down',
      );
      const c = await caseRow(w.db.sql, s.caseId);
      expect(c).toMatchObject({ status: 'closed', final_action: null });
      expect(c.close_reason).toContain('dunning window ended while collection is paused at Stripe');
      const sub = await w.deps.gateway.stripe.subscriptions.retrieve(s.subscriptionId!);
      expect(sub.status).not.toBe('canceled');
    } finally {
      w.clock.set(start);
    }
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';

let sandbox: Sandbox | null = null;
afterEach(async () => {
  await sandbox?.stop();
  sandbox = null;
});

/**
 * A scaled clock on a busy machine: every reading is minutes of simulated time after the last
 * (the demo's clock turns each real millisecond into about 90 simulated seconds).
 */
function racingClock(startIso: string, stepMs: number) {
  let t = new Date(startIso).getTime();
  return {
    now: () => {
      t += stepMs;
      return new Date(t);
    },
  };
}

describe('sandbox event times', () => {
  it("stamps a charge's events with the charge's own time, however far the clock runs meanwhile", async () => {
    // Stripe sends them as the charge is made: the worker matches an invoice.payment_failed to its
    // charge by time, within a minute (STRIPE_CLOCK_SKEW_MS). Stamped minutes apart, the failure
    // was recorded twice, once without its decline, and a retry was planned blind on a lost card.
    sandbox = await startSandbox({ clock: racingClock('2026-05-15T06:00:00Z', 5 * 60_000), seed: 3 });
    const customer = await sandbox.createCustomer({
      email: 'c@example.test',
      name: 'C',
      country: 'US',
      card: { brand: 'visa', failure: 'lost_card', expMonth: 1, expYear: 2031 },
    });
    const invoice = await sandbox.createFailingInvoice(customer.id, {
      amount: 900,
      currency: 'usd',
      subscription: true,
    });
    const [charge] = sandbox.charges(invoice.id);
    const ofCharge = sandbox
      .events()
      .filter((e) => ['charge.failed', 'payment_intent.payment_failed', 'invoice.payment_failed'].includes(e.type));
    expect(ofCharge.map((e) => e.type).sort()).toEqual([
      'charge.failed',
      'invoice.payment_failed',
      'payment_intent.payment_failed',
    ]);
    for (const e of ofCharge) expect(e.created, e.type).toBe(charge!.created);
  });
});

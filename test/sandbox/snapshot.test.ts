import { afterEach, describe, expect, it } from 'vitest';
import { parseState, startSandbox, stringifyState, type Sandbox } from '../../src/sandbox/index.ts';
import { manualClock } from './helpers.ts';

let running: Sandbox[] = [];
afterEach(async () => {
  for (const sb of running) await sb.stop();
  running = [];
});

async function start(o: Parameters<typeof startSandbox>[0]) {
  const sb = await startSandbox(o);
  running.push(sb);
  return sb;
}

describe('sandbox state', () => {
  it('goes on in a new sandbox from the JSON of the old one: same objects, new ids after the old ones', async () => {
    const clock = manualClock('2026-05-12T07:30:00Z');
    const a = await start({ clock, seed: 2 });
    const customer = await a.createCustomer({
      email: 'k@example.test',
      name: 'K',
      country: 'DE',
      timeZone: 'Europe/Berlin',
      card: { brand: 'visa', failure: 'generic_decline', expMonth: 3, expYear: 2030 },
    });
    const invoice = await a.createFailingInvoice(customer.id, { amount: 1990, currency: 'eur', subscription: true });
    const text = stringifyState(a.saveState());
    await a.stop();
    running = [];

    clock.advance(86_400_000);
    const b = await start({ clock, seed: 2, state: parseState(text) });
    const stripe = b.stripe();
    const read = await stripe.invoices.retrieve(invoice.id);
    expect(read).toMatchObject({
      id: invoice.id,
      status: 'open',
      customer: customer.id,
      amount_due: 1990,
      attempt_count: 1,
    });
    expect((await stripe.customers.retrieve(customer.id)) as { email: string }).toMatchObject({
      email: 'k@example.test',
    });
    expect(b.charges(invoice.id)).toHaveLength(1);
    expect(b.events().some((e) => e.type === 'invoice.payment_failed')).toBe(true);
    // The card's first failure survives as a date: the issuer model counts recovery from it.
    const pm = (
      JSON.parse(text) as { paymentMethods: Array<{ id: string; firstFailedAt: unknown }> }
    ).paymentMethods.find((p) => p.id === customer.paymentMethodId);
    expect(pm?.firstFailedAt).toEqual({ $date: '2026-05-12T07:30:00.000Z' });
    expect(stringifyState(b.saveState())).toBe(text);
    // New objects number on after the old ones, so ids never collide and still sort by creation.
    const next = await b.createCustomer({
      email: 'n@example.test',
      name: 'N',
      country: 'DE',
      card: { brand: 'visa', failure: null, expMonth: 3, expYear: 2030 },
    });
    expect(next.id > customer.id).toBe(true);
    expect(b.customers().map((c) => c.email)).toEqual(['k@example.test', 'n@example.test']);
    // Charging the restored card works off its restored first failure (a 402 decline, not a 500).
    clock.set('2026-05-13T07:30:00Z');
    const declined = await stripe.invoices.pay(invoice.id, {}, { idempotencyKey: 'old-card' }).then(
      () => null,
      (e: { statusCode?: number }) => e.statusCode,
    );
    expect(declined).toBe(402);
    const restoredPm = b
      .saveState()
      .paymentMethods.find((p) => (p as { id: string }).id === customer.paymentMethodId) as { firstFailedAt: unknown };
    expect(restoredPm.firstFailedAt).toBeInstanceOf(Date);
    await b.updateCard(customer.id, { brand: 'visa', failure: null, expMonth: 1, expYear: 2031 });
    expect((await stripe.invoices.pay(invoice.id, {}, { idempotencyKey: 'after-restore' })).status).toBe('paid');
  });
});

import type Stripe from 'stripe';
import { expect, test } from 'vitest';
import { intentsOf, lastIntentError } from '../../src/stripe/read.ts';
import { invoice, paymentIntent, T0 } from '../fixtures/events/stripe-objects.ts';

function payment(pi: Stripe.PaymentIntent, created: number, invoiceId: string): Stripe.InvoicePayment {
  return {
    id: `inpay_${pi.id}`,
    object: 'invoice_payment',
    amount_paid: null,
    amount_requested: 4_900,
    created,
    currency: 'usd',
    invoice: invoiceId,
    is_default: false,
    livemode: false,
    payment: { type: 'payment_intent', payment_intent: pi },
    status: 'canceled',
    status_transitions: { canceled_at: null, paid_at: null },
  };
}

test('the latest PaymentIntent of an invoice is the newest payment, not the last entry of the list', () => {
  // Stripe lists newest first (charges: "returned in sorted order, with the most recent charges
  // appearing first"; invoice payments are listed the same way), so the last entry of a page is the
  // oldest payment on it.
  const older = paymentIntent({ id: 'pi_old', customer: 'cus_1', chargeId: 'ch_old', declineCode: 'generic_decline' });
  const newer = paymentIntent({ id: 'pi_new', customer: 'cus_1', chargeId: 'ch_new', declineCode: 'stolen_card' });
  const inv = invoice({
    id: 'in_1',
    customer: 'cus_1',
    payments: {
      object: 'list',
      data: [payment(newer, T0 + 60, 'in_1'), payment(older, T0, 'in_1')],
      has_more: false,
      url: '/v1/invoice_payments?invoice=in_1',
    },
  });
  expect(intentsOf(inv).map((pi) => pi.id)).toEqual(['pi_old', 'pi_new']);
  expect(lastIntentError(inv)).toMatchObject({ chargeId: 'ch_new', declineCode: 'stolen_card' });
});

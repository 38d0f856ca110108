import path from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.ts';
import { manualClock } from './helpers.ts';

/**
 * Every object the sandbox serves carries every field the SDK's type of it requires (the
 * non-optional properties of `Stripe.Customer`, `Stripe.Subscription`, ...: the fields Stripe's API
 * reference lists without "expandable"/"includable" qualifiers). The serializers are typed with the
 * same types, so `tsc` already refuses a forgotten field; this test reads the JSON as it goes over
 * the wire, so a cast or a spread that drops one fails here too.
 */

const root = path.resolve(import.meta.dirname, '../..');

/** The names of the required properties of each SDK type, asked of the TypeScript compiler. */
function requiredKeys(typeNames: readonly string[]): Map<string, string[]> {
  const probe = path.join(root, 'test/sandbox/__shape_probe__.ts');
  const text = `import Stripe from 'stripe';\n${typeNames.map((n, i) => `export type T${i} = ${n};`).join('\n')}\n`;
  const options: ts.CompilerOptions = {
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    noEmit: true,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === probe ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === probe || fileExists(name);
  const program = ts.createProgram([probe], options, host);
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(probe)!;
  const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(sf)!);
  const out = new Map<string, string[]>();
  typeNames.forEach((name, i) => {
    const sym = exports.find((s) => s.name === `T${i}`)!;
    const type = checker.getDeclaredTypeOfSymbol(sym);
    const keys = type
      .getProperties()
      .filter((p) => (p.flags & ts.SymbolFlags.Optional) === 0)
      .map((p) => p.name);
    expect(keys.length, `${name} resolves to a type with required fields`).toBeGreaterThan(2);
    out.set(name, keys);
  });
  return out;
}

const TYPES = [
  'Stripe.Customer',
  'Stripe.PaymentMethod',
  'Stripe.PaymentMethod.Card',
  'Stripe.Subscription',
  'Stripe.SubscriptionItem',
  'Stripe.Price',
  'Stripe.Plan',
  'Stripe.Invoice',
  'Stripe.InvoicePayment',
  'Stripe.PaymentIntent',
  'Stripe.Charge',
  'Stripe.Charge.Outcome',
  'Stripe.EventBase',
  'Stripe.WebhookEndpoint',
  'Stripe.BillingPortal.Configuration',
  'Stripe.BillingPortal.Session',
  'Stripe.ApiList<unknown>',
] as const;

const clock = manualClock('2026-05-12T09:00:00Z');
let sandbox: Sandbox;
let required: Map<string, string[]>;

beforeAll(async () => {
  required = requiredKeys(TYPES);
  sandbox = await startSandbox({ clock, seed: 5 });
}, 60_000);
afterAll(async () => {
  await sandbox?.stop();
});

type Json = Record<string, unknown>;

async function get(url: string, init: RequestInit = {}): Promise<Json> {
  const res = await fetch(`${sandbox.url}${url}`, {
    ...init,
    headers: { authorization: `Bearer ${sandbox.apiKey}`, ...(init.headers ?? {}) },
  });
  expect(res.status, url).toBe(200);
  return (await res.json()) as Json;
}

function missing(typeName: (typeof TYPES)[number], json: unknown): string[] {
  const keys = required.get(typeName)!;
  const present = new Set(Object.keys(json as Json));
  return keys.filter((k) => !present.has(k));
}

function first(list: Json): Json {
  expect(missing('Stripe.ApiList<unknown>', list)).toEqual([]);
  const data = list.data as Json[];
  expect(data.length).toBeGreaterThan(0);
  return data[0]!;
}

describe('every served object has every field its SDK type requires', () => {
  it('customers, cards, subscriptions, invoices, payments, intents, charges, events, account settings', async () => {
    const customer = await sandbox.createCustomer({
      email: 'ana@example.test',
      name: 'Ana',
      country: 'DE',
      card: { brand: 'visa', failure: 'insufficient_funds', expMonth: 4, expYear: 2030 },
    });
    const invoice = await sandbox.createFailingInvoice(customer.id, {
      amount: 2500,
      currency: 'eur',
      subscription: true,
    });
    await sandbox.failedTry(invoice.id, 'hosted', { newPayment: true });
    sandbox.addWebhookEndpoint({ url: 'https://example.test/hooks', enabledEvents: ['invoice.payment_failed'] });

    const served: Array<[(typeof TYPES)[number], Json]> = [];
    const cus = await get(`/v1/customers/${customer.id}`);
    served.push(['Stripe.Customer', cus]);
    const pm = await get(`/v1/payment_methods/${customer.paymentMethodId}`);
    served.push(['Stripe.PaymentMethod', pm], ['Stripe.PaymentMethod.Card', pm.card as Json]);
    const sub = await get(`/v1/subscriptions/${invoice.subscriptionId}`);
    const item = first(sub.items as Json);
    served.push(
      ['Stripe.Subscription', sub],
      ['Stripe.SubscriptionItem', item],
      ['Stripe.Price', item.price as Json],
      ['Stripe.Plan', item.plan as Json],
    );
    const inv = await get(`/v1/invoices/${invoice.id}?expand[]=payments.data.payment.payment_intent`);
    served.push(['Stripe.Invoice', inv]);
    const payment = first(inv.payments as Json);
    served.push(
      ['Stripe.InvoicePayment', payment],
      ['Stripe.PaymentIntent', (payment.payment as Json).payment_intent as Json],
    );
    const payments = await get(`/v1/invoice_payments?invoice=${invoice.id}`);
    expect((payments.data as Json[]).length).toBe(2);
    for (const p of payments.data as Json[]) served.push(['Stripe.InvoicePayment', p]);
    const pi = await get(
      `/v1/payment_intents/${String((payment.payment as Json & { payment_intent: Json }).payment_intent.id)}`,
    );
    served.push(['Stripe.PaymentIntent', pi]);
    const charge = first(await get(`/v1/charges?customer=${customer.id}`));
    served.push(['Stripe.Charge', charge], ['Stripe.Charge.Outcome', charge.outcome as Json]);
    const event = sandbox.events().find((e) => e.type === 'invoice.payment_failed')!;
    served.push(['Stripe.EventBase', await get(`/v1/events/${event.id}`)]);
    served.push(['Stripe.WebhookEndpoint', first(await get('/v1/webhook_endpoints'))]);
    served.push(['Stripe.BillingPortal.Configuration', first(await get('/v1/billing_portal/configurations'))]);
    served.push([
      'Stripe.BillingPortal.Session',
      await get('/v1/billing_portal/sessions', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `customer=${customer.id}&flow_data[type]=payment_method_update`,
      }),
    ]);

    const gaps = served.map(([type, json]) => [type, missing(type, json)] as const).filter(([, m]) => m.length > 0);
    expect(gaps).toEqual([]);
    // Every type was served at least once.
    expect(new Set(served.map(([t]) => t))).toEqual(new Set(TYPES.filter((t) => t !== 'Stripe.ApiList<unknown>')));
  });

  it('the check itself notices a dropped field', () => {
    const { balance: _dropped, ...withoutBalance } = {
      balance: 0,
      ...Object.fromEntries(required.get('Stripe.Customer')!.map((k) => [k, null])),
    };
    expect(missing('Stripe.Customer', withoutBalance)).toEqual(['balance']);
  });
});

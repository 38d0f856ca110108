import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import { handleDeadline } from '../../src/dunning/final-action.ts';
import { parsePolicy } from '../../src/dunning/policy.ts';
import { executeAttempt } from '../../src/dunning/runner.ts';
import { savePolicy, type DeadlineJob } from '../../src/dunning/scheduler.ts';
import { listSavedCards } from '../../src/stripe/saved-cards.ts';
import { refreshCaseDeclines } from '../../src/ledger.ts';
import { loadReport } from '../../src/reports/build.ts';
import { resolvePeriod } from '../../src/reports/period.ts';
import {
  apiCharges,
  caseRow,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
  type SeededCase,
} from './runner-helpers.ts';

/**
 * Backup retries on other cards on file, through the sandbox and the real SDK.
 *
 * Stripe's API reference, "List a Customer's PaymentMethods" (GET /v1/customers/{customer}/payment_methods):
 * "Returns a list of PaymentMethods for a given Customer". `type`: "An optional filter on the list,
 * based on the object type field. ... If your integration expects only one type of payment method
 * in the response, make sure to provide a type value in the request." Returns "A dictionary with a
 * data property that contains an array of up to limit PaymentMethods of type type, starting after
 * PaymentMethods starting_after."
 *
 * "Pay an invoice" (POST /v1/invoices/{id}/pay), `payment_method`: "A PaymentMethod to be charged.
 * The PaymentMethod must be the ID of a PaymentMethod belonging to the customer associated with the
 * invoice being paid."
 *
 * "Update a customer", `invoice_settings.default_payment_method`: "ID of a payment method that's
 * attached to the customer, to be used as the customer's default payment method for subscriptions
 * and invoices."
 */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

const withBackup = (promote: boolean) =>
  parsePolicy({ retry: { backupCards: { enabled: true, afterSoftDeclines: 2, promote } } });

/** A failed invoice whose case runs under a policy with backup cards on, as the event processor leaves it. */
async function seeded(failure: Parameters<typeof seedFailedInvoice>[1], promote: boolean): Promise<SeededCase> {
  const s = await seedFailedInvoice(w, failure);
  const policy = withBackup(promote);
  await savePolicy(w.db.sql, policy);
  await w.db.sql`update dunning_cases set policy_version = ${policy.version} where id = ${s.caseId}`;
  return s;
}

/** Stripe's failure reaches the hooks; returns the `cards` job the plan asked for. */
async function failAndFindCardsJob(s: SeededCase): Promise<DeadlineJob> {
  const hooks = createDunningHooks(w.deps);
  await w.db.sql.begin((tx) =>
    hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: true, at: w.clock.now() }),
  );
  const [job] = await w.db.sql<{ data: DeadlineJob }[]>`
    select data from pgboss.job where name = 'dunning-deadlines' and data->>'kind' = 'cards'
       and (data->>'caseId')::bigint = ${s.caseId}`;
  if (!job) throw new Error('no cards job was sent');
  return job.data;
}

/** A do_not_honor case whose policy tries a backup card after one soft decline, as the processor leaves it. */
async function softDeclined(): Promise<SeededCase> {
  const s = await seedFailedInvoice(w, 'do_not_honor');
  const policy = parsePolicy({ retry: { backupCards: { enabled: true, afterSoftDeclines: 1 } } });
  await savePolicy(w.db.sql, policy);
  // As the event processor records Stripe's own decline.
  await w.db.sql`update dunning_cases set policy_version = ${policy.version}, last_decline_code = 'do_not_honor',
                   last_decline_category = 'generic' where id = ${s.caseId}`;
  return s;
}

async function plannedRow(invoiceId: string) {
  const [row] = await w.db.sql`select * from payment_attempts where invoice_id = ${invoiceId} and status = 'planned'`;
  return row;
}

async function defaultOf(customerId: string): Promise<string | null> {
  const c = await w.deps.gateway.stripe.customers.retrieve(customerId);
  if (c.deleted) throw new Error('customer deleted');
  const pm = c.invoice_settings.default_payment_method;
  return typeof pm === 'string' ? pm : (pm?.id ?? null);
}

describe('the sandbox lists saved cards as Stripe does', () => {
  it('pages newest first through GET /v1/customers/{id}/payment_methods', async () => {
    const customer = await w.sandbox.createCustomer({
      email: 'many@example.com',
      name: 'Many Cards',
      country: 'DE',
      card: { brand: 'visa', failure: null, expMonth: 1, expYear: 2030 },
    });
    const more = [];
    for (let i = 0; i < 3; i += 1)
      more.push(
        (await w.sandbox.saveCard(customer.id, { brand: 'mastercard', failure: null, expMonth: 2, expYear: 2031 }))
          .paymentMethodId,
      );
    const stripe = w.deps.gateway.stripe;
    const first = await stripe.customers.listPaymentMethods(customer.id, { type: 'card', limit: 2 });
    expect(first.has_more).toBe(true);
    expect(first.data.map((p) => p.id)).toEqual([more[2], more[1]]);
    expect(first.data[0]).toMatchObject({ type: 'card', customer: customer.id, card: { brand: 'mastercard' } });
    const rest = await stripe.customers.listPaymentMethods(customer.id, {
      type: 'card',
      limit: 2,
      starting_after: first.data[1]!.id,
    });
    expect(rest.data.map((p) => p.id)).toEqual([more[0], customer.paymentMethodId]);
    expect(rest.has_more).toBe(false);
    // The worker's listing follows every page.
    const cards = await listSavedCards(w.deps.gateway, customer.id);
    expect(cards.map((c) => c.paymentMethod).sort()).toEqual([...more, customer.paymentMethodId].sort());
    expect(cards[0]).toMatchObject({ brand: 'mastercard', expMonth: 2, expYear: 2031 });
    expect(cards[0]!.last4).toMatch(/^\d{4}$/);
  });
});

describe('backup retry on another saved card', () => {
  it('default card hard-declined: a second saved card pays, counted as backup_card_retry; default kept', async () => {
    const s = await seeded('lost_card', false);
    const backup = await w.sandbox.saveCard(s.customerId, {
      brand: 'mastercard',
      failure: null,
      expMonth: 12,
      expYear: 2031,
    });
    const job = await failAndFindCardsJob(s);
    // No blind retry of a lost card: the case waits, and lists the other cards first.
    expect(await plannedRow(s.invoiceId)).toBeUndefined();
    expect((await caseRow(w.db.sql, s.caseId)).next_attempt_reason).toContain(
      "listing the customer's other cards on file",
    );

    expect(await handleDeadline(w.deps, job)).toBe('done');
    const retry = await plannedRow(s.invoiceId);
    expect(retry).toMatchObject({ source: 'backup_card', payment_method: backup.paymentMethodId });
    expect(retry!.plan_reason).toMatch(
      new RegExp(
        `lost_card on the default card: retrying with backup card mastercard ending \\d{4} \\(${backup.paymentMethodId}\\)`,
      ),
    );

    expect(await executeAttempt(w.deps, Number(retry!.id))).toBe('succeeded');
    // The runner named the backup card to Stripe: the default card was not charged again.
    expect(apiCharges(w.sandbox, s.invoiceId).map((c) => c.paymentMethod)).toEqual([backup.paymentMethodId]);
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c).toMatchObject({ status: 'recovered', recovery_path: 'backup_card_retry' });
    expect(Number(c.recovered_amount)).toBe(4_900);
    // promote off: the customer's default stays the card they chose.
    expect(await defaultOf(s.customerId)).toBe(s.paymentMethod);

    const at = w.clock.now();
    const report = await loadReport(w.db.sql, {
      period: resolvePeriod({ from: '2026-03-01', to: '2026-03-31', timeZone: 'UTC', now: at }),
      currency: 'eur',
      asOf: at,
    });
    const eur = report.currencies.find((x) => x.currency === 'eur');
    expect(eur?.byPath.find((p) => p.path === 'backup_card_retry')).toMatchObject({
      count: 1,
      amount: expect.objectContaining({ minor: 4_900 }),
    });
  });

  it('promote on: the backup card that paid becomes the default payment method', async () => {
    const s = await seeded('expired_card', true);
    const backup = await w.sandbox.saveCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 12,
      expYear: 2031,
    });
    expect(await handleDeadline(w.deps, await failAndFindCardsJob(s))).toBe('done');
    const retry = await plannedRow(s.invoiceId);
    expect(retry).toMatchObject({ source: 'backup_card', payment_method: backup.paymentMethodId });
    expect(await executeAttempt(w.deps, Number(retry!.id))).toBe('succeeded');
    expect(await defaultOf(s.customerId)).toBe(backup.paymentMethodId);
  });

  it('promote on, with a subscription that has its own card: the subscription charges the backup card next', async () => {
    const s = await seeded('expired_card', true);
    // Stripe charges "the subscription's default_payment_method" before the customer's default.
    await w.deps.gateway.stripe.subscriptions.update(s.subscriptionId!, { default_payment_method: s.paymentMethod });
    await w.db.sql`insert into subscriptions (id, customer_id, status, default_payment_method, stripe_updated_at)
                   values (${s.subscriptionId}, ${s.customerId}, 'past_due', ${s.paymentMethod}, ${w.clock.now()})
                   on conflict (id) do update set default_payment_method = excluded.default_payment_method`;
    const backup = await w.sandbox.saveCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 12,
      expYear: 2031,
    });
    expect(await handleDeadline(w.deps, await failAndFindCardsJob(s))).toBe('done');
    const retry = await plannedRow(s.invoiceId);
    expect(retry).toMatchObject({ source: 'backup_card', payment_method: backup.paymentMethodId });
    expect(await executeAttempt(w.deps, Number(retry!.id))).toBe('succeeded');
    const sub = await w.deps.gateway.stripe.subscriptions.retrieve(s.subscriptionId!);
    expect(sub.default_payment_method).toBe(backup.paymentMethodId);
  });

  it('a backup card barred by a never-retry answer on another invoice is not charged', async () => {
    const s = await seeded('lost_card', false);
    const backup = await w.sandbox.saveCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 12,
      expYear: 2031,
    });
    // The same customer's other invoice: our retry with that card got stolen_card.
    const now = w.clock.now();
    await w.db
      .sql`insert into invoices (id, customer_id, status, currency, amount_due, amount_remaining, stripe_attempt_count, stripe_created, stripe_updated_at)
                   values ('in_other_barred', ${s.customerId}, 'open', 'eur', 1000, 1000, 1, ${now}, ${now})`;
    await w.db
      .sql`insert into payment_attempts (invoice_id, attempt_no, source, status, started_at, finished_at, payment_method, card_brand, decline_code, failure_code)
                   values ('in_other_barred', 2, 'scheduled', 'declined', ${now}, ${now}, ${backup.paymentMethodId}, 'visa', 'stolen_card', 'card_declined')`;

    expect(await handleDeadline(w.deps, await failAndFindCardsJob(s))).toBe('done');
    expect(await plannedRow(s.invoiceId)).toBeUndefined();
    const c = await caseRow(w.db.sql, s.caseId);
    expect(c.next_attempt_reason).toContain('no backup card: no other card on file may be charged now');
    expect(c.next_attempt_reason).toContain('visa ending');
    expect(c.next_attempt_reason).toContain('barred: stolen_card: this card must never be retried');
    expect(apiCharges(w.sandbox, s.invoiceId)).toEqual([]);
  });

  it('a customer without other cards gets no backup retry, and the reason says so', async () => {
    const s = await seeded('lost_card', false);
    expect(await handleDeadline(w.deps, await failAndFindCardsJob(s))).toBe('done');
    expect(await plannedRow(s.invoiceId)).toBeUndefined();
    expect((await caseRow(w.db.sql, s.caseId)).next_attempt_reason).toContain(
      'no backup card: the customer has no other card on file',
    );
  });
});

describe('backup retries after soft declines, one card at a time', () => {
  it('replaces the scheduled retry on the default card, then moves to the next card when one declines', async () => {
    const s = await softDeclined();
    const older = await w.sandbox.saveCard(s.customerId, { brand: 'visa', failure: null, expMonth: 12, expYear: 2031 });
    // Saved a second later (`created` has one-second precision), so tried first (none of them has
    // paid yet); the issuer says stolen.
    w.sandboxClock.advance(1000);
    const newer = await w.sandbox.saveCard(s.customerId, {
      brand: 'visa',
      failure: 'stolen_card',
      expMonth: 12,
      expYear: 2031,
    });

    w.sandboxClock.set(w.clock.now());
    const job = await failAndFindCardsJob(s);
    // Until the cards are listed, the default card's own schedule stands.
    expect(await plannedRow(s.invoiceId)).toMatchObject({ source: 'scheduled', payment_method: s.paymentMethod });
    expect(await handleDeadline(w.deps, job)).toBe('done');
    const first = await plannedRow(s.invoiceId);
    expect(first).toMatchObject({ source: 'backup_card', payment_method: newer.paymentMethodId });
    expect(first!.plan_reason).toContain('1 soft declines on the default card');
    expect(first!.plan_reason).toContain('the most recently added of the other cards');

    expect(await executeAttempt(w.deps, Number(first!.id))).toBe('declined');
    // The backup card's decline does not rewrite the case's story about the default card: not from
    // the runner, nor when its charge.failed arrives and the case's declines are worked out again.
    expect((await caseRow(w.db.sql, s.caseId)).last_decline_code).toBe('do_not_honor');
    await refreshCaseDeclines(w.db.sql, s.caseId);
    expect((await caseRow(w.db.sql, s.caseId)).last_decline_code).toBe('do_not_honor');
    const second = await plannedRow(s.invoiceId);
    expect(second).toMatchObject({ source: 'backup_card', payment_method: older.paymentMethodId });
    expect(second!.plan_reason).toContain('already declined for this invoice');
    expect(await executeAttempt(w.deps, Number(second!.id))).toBe('succeeded');
    expect(apiCharges(w.sandbox, s.invoiceId).map((c) => c.paymentMethod)).toEqual([
      newer.paymentMethodId,
      older.paymentMethodId,
    ]);
    expect(await caseRow(w.db.sql, s.caseId)).toMatchObject({
      status: 'recovered',
      recovery_path: 'backup_card_retry',
    });
  });

  it('a backup card the customer removed before the charge is forgotten, and the default card is planned again', async () => {
    const s = await softDeclined();
    const backup = await w.sandbox.saveCard(s.customerId, {
      brand: 'visa',
      failure: null,
      expMonth: 12,
      expYear: 2031,
    });
    w.sandboxClock.set(w.clock.now());
    expect(await handleDeadline(w.deps, await failAndFindCardsJob(s))).toBe('done');
    const planned = await plannedRow(s.invoiceId);
    expect(planned).toMatchObject({ source: 'backup_card', payment_method: backup.paymentMethodId });

    // "The PaymentMethod must be the ID of a PaymentMethod belonging to the customer associated
    // with the invoice being paid": once removed, Stripe refuses it.
    await w.sandbox.detachCard(backup.paymentMethodId);
    expect(await executeAttempt(w.deps, Number(planned!.id))).toBe('skipped');
    expect(apiCharges(w.sandbox, s.invoiceId)).toEqual([]);
    const [kept] = await w.db
      .sql`select count(*)::int as n from saved_cards where payment_method = ${backup.paymentMethodId}`;
    expect(kept!.n).toBe(0);
    // Not left idle until the window ends: the default card's own schedule goes on.
    expect(await plannedRow(s.invoiceId)).toMatchObject({ source: 'scheduled', payment_method: s.paymentMethod });
  });
});

import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  executeAttempt,
  KEY_LIFE_MARGIN_MS,
  keyLifeStart,
  keyMayHaveExpired,
  lostChargeWindow,
  STRIPE_KEY_LIFE_MS,
  type RunnerDeps,
} from '../../src/dunning/runner.ts';
import { STRIPE_CLOCK_SKEW_MS } from '../../src/ledger.ts';
import type { FaultKind } from '../../src/sandbox/index.ts';
import { retrieveInvoiceCharges } from '../../src/stripe/charge.ts';
import { STRIPE_REQUEST_TIMEOUT_MS } from '../../src/stripe/client.ts';
import { apply, recordingHooks, testDeps } from '../events/helpers.ts';
import {
  apiCharges,
  attemptRow,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  START,
  startWorld,
  type RunnerWorld,
} from './runner-helpers.ts';

/**
 * An attempt whose charge outcome is unknown is asked again with the same idempotency key, and
 * Stripe replays the first answer. Stripe (https://docs.stripe.com/idempotency): "You can remove
 * keys from the system automatically after they're at least 24 hours old. We generate a new request
 * if a key is reused after the original is pruned." So once the workers were away longer than that,
 * the same key could charge the card again: the runner reconciles from Stripe's state instead and
 * never sends that request.
 *
 * The sandbox ages its keys on its own clock, which here is also the runner's real clock
 * (`wallNow`): moving it moves Stripe's time and ours together. The sandbox records every request.
 */

const HOUR = 3_600_000;
const PAY = 'POST /v1/invoices/:id/pay';
let w: RunnerWorld;
let deps: RunnerDeps;
beforeAll(async () => {
  w = await startWorld({ recordRequests: true });
  // The worker's clock reads real time, as in production (a FixedClock puts any past instant at
  // real now): a claim's time is then the real time of the claim.
  deps = {
    ...w.deps,
    clock: { now: () => w.clock.now(), wallTimeOf: (d) => d, realDurationMs: (ms) => ms },
    wallNow: () => w.sandboxClock.now(),
  };
});
afterAll(async () => {
  await w?.close();
});

/** Stripe's time and the worker's move on together (the workers were down meanwhile). */
function advance(ms: number): void {
  w.clock.advance(ms);
  w.sandboxClock.advance(ms);
}

/** Every charge request that reached the sandbox with this key, replays and refusals included. */
function payRequests(invoiceId: string, key: string) {
  return w.sandbox
    .requests()
    .filter((r) => r.method === 'POST' && r.path === `/v1/invoices/${invoiceId}/pay` && r.idempotencyKey === key);
}

/** A card the sandbox approves: the customer's default becomes a working card. */
async function payableCase() {
  const s = await seedFailedInvoice(w, 'generic_decline');
  await w.sandbox.updateCard(s.customerId, { brand: 'visa', failure: null, expMonth: 1, expYear: 2031 });
  return s;
}

/** A failed invoice with its second attempt due at START on both clocks; `fault` plays on its first charge request. */
async function dueAttempt(o: { payable?: boolean; fault?: FaultKind } = {}) {
  w.clock.set(START);
  w.sandboxClock.set(START);
  const s = o.payable ? await payableCase() : await seedFailedInvoice(w, 'generic_decline');
  const id = await planDueAttempt(w.db.sql, s, w.clock.now());
  if (o.fault) w.sandbox.inject({ kind: o.fault, route: PAY, objectId: s.invoiceId });
  return { s, id, key: `dunning:${s.invoiceId}:2` };
}

/**
 * What the planner counts (attempts that reached Stripe or may have) against every charge Stripe
 * made on the invoice: each charge is on the ledger exactly once, and no counted row lacks one.
 */
async function ledgerMatchesStripe(invoiceId: string): Promise<void> {
  const counted = await w.db.sql`
    select charge_id from payment_attempts
     where invoice_id = ${invoiceId} and status in ('declined', 'succeeded', 'unknown', 'in_flight')`;
  const atStripe = w.sandbox.charges(invoiceId).map((c) => c.id);
  expect(counted.map((r) => r.charge_id as string | null).sort()).toEqual([...atStripe].sort());
}

/** The invoice's `invoice.payment_failed` events the sandbox emitted from `since` on. */
function failureEvents(invoiceId: string, since: number): Stripe.Event[] {
  return w.sandbox
    .events()
    .slice(since)
    .filter((e) => e.type === 'invoice.payment_failed' && (e.data.object as { id?: string }).id === invoiceId);
}

/** Applies events as the event worker does, reading the invoice's failed charges from the sandbox. */
function applyEvents(...events: Stripe.Event[]): Promise<string[]> {
  return apply(
    w.db.sql,
    {
      ...testDeps(recordingHooks().hooks),
      clock: w.clock,
      policy: { version: w.policy.version, body: w.policy },
      fetchInvoiceCharges: (id) => retrieveInvoiceCharges(w.deps.gateway, id),
    },
    ...events,
  );
}

async function plannedNos(invoiceId: string): Promise<number[]> {
  const rows = await w.db.sql`
    select attempt_no, idempotency_key from payment_attempts where invoice_id = ${invoiceId} and status = 'planned'`;
  for (const r of rows) expect(r.idempotency_key).toBe(`dunning:${invoiceId}:${r.attempt_no as number}`);
  return rows.map((r) => Number(r.attempt_no));
}

describe('an unknown attempt past the idempotency key life', () => {
  it('declined at the bank, answer lost, workers away 25 h: no second request with the key; the decline is read from Stripe, counted once, and a new attempt with a new key is planned', async () => {
    const { s, id, key } = await dueAttempt({ fault: 'execute_then_500' });
    expect(await executeAttempt(deps, id)).toBe('unknown');
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    expect((await attemptRow(w.db.sql, id)).first_sent_at).toEqual(new Date(START));

    advance(25 * HOUR);
    expect(await executeAttempt(deps, id)).toBe('declined');

    expect(payRequests(s.invoiceId, key).map((r) => r.handled)).toEqual(['executed']);
    const charges = apiCharges(w.sandbox, s.invoiceId);
    expect(charges).toHaveLength(1);
    const a = await attemptRow(w.db.sql, id);
    expect(a).toMatchObject({ status: 'declined', charge_id: charges[0]!.id, first_sent_at: new Date(START) });
    expect(a.failure_message).toMatch(/idempotency key/);
    await ledgerMatchesStripe(s.invoiceId);
    expect(await plannedNos(s.invoiceId)).toEqual([3]);
  });

  it('paid by the lost request, workers away 25 h: no second request; the case closes as paid, the attempt is not credited with it', async () => {
    const { s, id, key } = await dueAttempt({ payable: true, fault: 'execute_then_500' });
    expect(await executeAttempt(deps, id)).toBe('unknown');

    advance(25 * HOUR);
    expect(await executeAttempt(deps, id)).toBe('skipped');

    expect(payRequests(s.invoiceId, key).map((r) => r.handled)).toEqual(['executed']);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    const a = await attemptRow(w.db.sql, id);
    expect(a.status).toBe('skipped');
    expect(a.failure_message).toMatch(/invoice is paid at Stripe.*idempotency key/);
    // Not credited to dunning: the customer paying on the hosted page would look the same.
    expect(await caseRow(w.db.sql, s.caseId)).toMatchObject({ status: 'recovered', recovery_path: 'customer_paid' });
    expect(await plannedNos(s.invoiceId)).toEqual([]);
  });

  it('never executed (500 before the endpoint), workers away 25 h: not repeated, nothing counted; the next attempt has a new key and is a new request', async () => {
    const { s, id, key } = await dueAttempt({ fault: 'http_500' });
    expect(await executeAttempt(deps, id)).toBe('unknown');

    advance(25 * HOUR);
    expect(await executeAttempt(deps, id)).toBe('skipped');

    expect(payRequests(s.invoiceId, key).map((r) => r.handled)).toEqual(['fault']);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);
    expect((await attemptRow(w.db.sql, id)).failure_message).toMatch(/no charge of it at Stripe/);
    await ledgerMatchesStripe(s.invoiceId);
    expect(await plannedNos(s.invoiceId)).toEqual([3]);

    const [next] = await w.db.sql`select id from payment_attempts where invoice_id = ${s.invoiceId} and attempt_no = 3`;
    expect(await executeAttempt(deps, Number(next!.id))).toBe('declined');
    expect(payRequests(s.invoiceId, `dunning:${s.invoiceId}:3`).map((r) => r.handled)).toEqual(['executed']);
    await ledgerMatchesStripe(s.invoiceId);
  });

  it('a worker killed after sending, taken over 25 h later: the takeover reconciles and keeps the first send time', async () => {
    const { s, id, key } = await dueAttempt();
    let charged!: () => void;
    const reached = new Promise<void>((resolve) => (charged = resolve));
    // A killed worker runs nothing more: this one stops for good after the charge.
    void executeAttempt(
      {
        ...deps,
        afterCharge: () => {
          charged();
          return new Promise<void>(() => {});
        },
      },
      id,
    );
    await reached;
    advance(25 * HOUR);
    await w.db.sql`update payment_attempts set lease_until = now() - interval '1 second' where id = ${id}`;
    expect(await executeAttempt(deps, id)).toBe('declined');

    expect(payRequests(s.invoiceId, key)).toHaveLength(1);
    expect(await attemptRow(w.db.sql, id)).toMatchObject({ status: 'declined', first_sent_at: new Date(START) });
    await ledgerMatchesStripe(s.invoiceId);
  });
  it("timed out before reaching Stripe, the customer declined on the hosted page 2 h later, workers back after 25 h: the customer's charge is not taken for ours, and its waiting event puts it on the ledger once, as the customer's", async () => {
    // The request never reaches the charge: the client gives up after its timeout.
    const { s, id, key } = await dueAttempt({ fault: 'hang' });
    expect(await executeAttempt(deps, id)).toBe('unknown');

    advance(2 * HOUR);
    const since = w.sandbox.events().length;
    const hosted = await w.sandbox.failedTry(s.invoiceId, 'hosted');
    const hostedEvents = failureEvents(s.invoiceId, since);
    expect(hostedEvents).toHaveLength(1);
    advance(23 * HOUR);

    // Delivered when the workers are back, the customer's failure waits while our attempt is unresolved.
    await expect(applyEvents(...hostedEvents)).rejects.toThrow(/may be our attempt #2/);
    expect(await executeAttempt(deps, id)).toBe('skipped');
    const a = await attemptRow(w.db.sql, id);
    expect(a).toMatchObject({ status: 'skipped', charge_id: null });
    expect(a.failure_message).toMatch(/no charge of it at Stripe/);
    expect(payRequests(s.invoiceId, key).map((r) => r.handled)).toEqual(['fault']);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(0);

    // The event's retry applies it: the customer's charge is on the ledger once, under its own source.
    expect(await applyEvents(...hostedEvents)).toEqual(['processed']);
    const rows = await w.db.sql`select source, status from payment_attempts where charge_id = ${hosted.chargeId}`;
    expect(rows.map((r) => [r.source, r.status])).toEqual([['stripe', 'declined']]);
    await ledgerMatchesStripe(s.invoiceId);
  });
});

describe('an attempt sent by an older worker, which does not record the send', () => {
  /** What a worker from before migration 024 leaves on the row it sent: no send time. */
  async function sentByOlderWorker(id: number): Promise<void> {
    await w.db.sql`update payment_attempts set first_sent_at = null, last_sent_at = null where id = ${id}`;
  }

  it("workers away 25 h: its first claim's time stands in for the send, and the key is not asked again", async () => {
    const { s, id, key } = await dueAttempt({ fault: 'execute_then_500' });
    expect(await executeAttempt(deps, id)).toBe('unknown');
    await sentByOlderWorker(id);
    expect((await attemptRow(w.db.sql, id)).started_at).toEqual(new Date(START));

    advance(25 * HOUR);
    expect(await executeAttempt(deps, id)).toBe('declined');

    expect(payRequests(s.invoiceId, key).map((r) => r.handled)).toEqual(['executed']);
    const charges = apiCharges(w.sandbox, s.invoiceId);
    expect(charges).toHaveLength(1);
    expect(await attemptRow(w.db.sql, id)).toMatchObject({ status: 'declined', charge_id: charges[0]!.id });
    await ledgerMatchesStripe(s.invoiceId);
  });

  it("repeated by a new worker 2 h later: the first claim's time is recorded as the first send, so 24.5 h after the older worker's request the key is not asked again", async () => {
    const { s, id, key } = await dueAttempt({ fault: 'execute_then_500' });
    expect(await executeAttempt(deps, id)).toBe('unknown');
    await sentByOlderWorker(id);

    advance(2 * HOUR);
    w.sandbox.inject({ kind: 'http_500', route: PAY, objectId: s.invoiceId });
    expect(await executeAttempt(deps, id)).toBe('unknown');
    expect(await attemptRow(w.db.sql, id)).toMatchObject({
      first_sent_at: new Date(START),
      last_sent_at: new Date(new Date(START).getTime() + 2 * HOUR),
    });

    advance(22.5 * HOUR);
    expect(await executeAttempt(deps, id)).toBe('declined');
    expect(payRequests(s.invoiceId, key).map((r) => r.handled)).toEqual(['executed', 'fault']);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    await ledgerMatchesStripe(s.invoiceId);
  });
});

describe('an unknown attempt within the key life', () => {
  it('22 h later the same key is asked again and Stripe replays the decline: one charge, first send time kept', async () => {
    const { s, id, key } = await dueAttempt({ fault: 'execute_then_500' });
    expect(await executeAttempt(deps, id)).toBe('unknown');

    advance(22 * HOUR);
    expect(await executeAttempt(deps, id)).toBe('declined');

    expect(payRequests(s.invoiceId, key).map((r) => r.handled)).toEqual(['executed', 'replayed']);
    expect(apiCharges(w.sandbox, s.invoiceId)).toHaveLength(1);
    expect(await attemptRow(w.db.sql, id)).toMatchObject({
      status: 'declined',
      first_sent_at: new Date(START),
      last_sent_at: new Date(new Date(START).getTime() + 22 * HOUR),
    });
    await ledgerMatchesStripe(s.invoiceId);
    expect(await plannedNos(s.invoiceId)).toEqual([3]);
  });
});

describe('keyMayHaveExpired (pure)', () => {
  const sent = new Date(START);
  const at = (ms: number) => new Date(sent.getTime() + ms);

  it('is 24 hours, as Stripe documents, less a margin for the clocks', () => {
    expect(STRIPE_KEY_LIFE_MS).toBe(24 * HOUR);
    expect(KEY_LIFE_MARGIN_MS).toBeGreaterThan(0);
    expect(KEY_LIFE_MARGIN_MS).toBeLessThanOrEqual(HOUR);
  });

  it('holds from the key life less the margin on, never before', () => {
    const limit = STRIPE_KEY_LIFE_MS - KEY_LIFE_MARGIN_MS;
    expect(keyMayHaveExpired(sent, at(limit - 1))).toBe(false);
    expect(keyMayHaveExpired(sent, at(limit))).toBe(true);
    expect(keyMayHaveExpired(sent, at(25 * HOUR))).toBe(true);
    expect(keyMayHaveExpired(sent, at(-HOUR))).toBe(false);
  });

  it('a request never sent has no key to lose', () => {
    expect(keyMayHaveExpired(null, at(30 * 24 * HOUR))).toBe(false);
  });
});

describe('lostChargeWindow (pure)', () => {
  const first = new Date(START);
  const at = (ms: number) => new Date(first.getTime() + ms);

  it("from the first request less the skew to the latest request plus the SDK's timeout and the skew", () => {
    expect(STRIPE_REQUEST_TIMEOUT_MS).toBe(20_000);
    expect(lostChargeWindow(first, at(10 * 60_000))).toEqual({
      from: first.getTime() - STRIPE_CLOCK_SKEW_MS,
      to: at(10 * 60_000).getTime() + STRIPE_REQUEST_TIMEOUT_MS + STRIPE_CLOCK_SKEW_MS,
    });
  });

  it('without a latest request recorded, ends after the first', () => {
    expect(lostChargeWindow(first, null)).toEqual({
      from: first.getTime() - STRIPE_CLOCK_SKEW_MS,
      to: first.getTime() + STRIPE_REQUEST_TIMEOUT_MS + STRIPE_CLOCK_SKEW_MS,
    });
    expect(lostChargeWindow(null, null)).toBeNull();
  });
});

describe('keyLifeStart (pure)', () => {
  const claimed = new Date(START);
  const created = new Date(claimed.getTime() - 3 * 24 * HOUR);
  const now = new Date(claimed.getTime() + 25 * HOUR);
  const same = (d: Date) => d;

  it('is the recorded first send when there is one', () => {
    const sent = new Date(claimed.getTime() + 1_000);
    expect(keyLifeStart({ firstSentAt: sent, startedAt: claimed, createdAt: created }, true, same, now)).toEqual(sent);
  });

  it('is none for an attempt that cannot have been sent', () => {
    expect(keyLifeStart({ firstSentAt: null, startedAt: claimed, createdAt: created }, false, same, now)).toBeNull();
  });

  it("without a recorded send, is the first claim's time in real time, never later than now", () => {
    const row = { firstSentAt: null, startedAt: claimed, createdAt: created };
    expect(keyLifeStart(row, true, same, now)).toEqual(claimed);
    // A scaled clock: the claim's reading maps back to the real instant.
    const real = new Date(claimed.getTime() - 10 * HOUR);
    expect(keyLifeStart(row, true, () => real, now)).toEqual(real);
    expect(keyLifeStart(row, true, () => new Date(now.getTime() + HOUR), now)).toEqual(now);
  });

  it("without a claim either, is the row's creation", () => {
    expect(keyLifeStart({ firstSentAt: null, startedAt: null, createdAt: created }, true, same, now)).toEqual(created);
  });
});

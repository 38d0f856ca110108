import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockCustomer } from '../../src/customer-lock.ts';
import { backfill } from '../../src/dunning/backfill.ts';
import { backfillRenewalCards } from '../../src/reminders/card-backfill.ts';
import { waitFor } from '../helpers/db.ts';
import { startWorld, type RunnerWorld } from './runner-helpers.ts';

/**
 * `dunning backfill` runs beside live workers (install, then take over): its invoice copy, the case
 * it opens, Stripe's tries and the planned attempt, and the card half's customer, cards and
 * subscription (with its `pause_collection`) are what the event processor, the mailer and the
 * card-expiry scan decide on under the customer's lock. So each of its transactions takes that lock
 * first. A transaction holding the lock stands in for any of them; the backfill must queue for the
 * very same advisory lock, behind that holder (pg_locks, pg_blocking_pids), having written nothing
 * (no transaction id yet), and finish only once the holder commits. Polled state, never time.
 */

let w: RunnerWorld;
beforeAll(async () => {
  w = await startWorld();
});
afterAll(async () => {
  await w?.close();
});

interface Waiter {
  pid: number;
  query: string;
  /** Null while the waiting transaction has written nothing. */
  xid: string | null;
}

/**
 * The backend waiting for the advisory lock `holderPid` holds (its only one: the customer's), if any.
 */
async function waiterBehind(holderPid: number): Promise<Waiter | undefined> {
  const [row] = await w.db.sql<Waiter[]>`
    select a.pid, a.query, a.backend_xid::text as xid
      from pg_stat_activity a
      join pg_locks wl on wl.pid = a.pid and wl.locktype = 'advisory' and not wl.granted
      join pg_locks hl on hl.pid = ${holderPid} and hl.locktype = 'advisory' and hl.granted
                      and hl.classid = wl.classid and hl.objid = wl.objid and hl.objsubid = wl.objsubid
     where a.datname = current_database() and a.wait_event_type = 'Lock' and a.wait_event = 'advisory'
       and ${holderPid} = any(pg_blocking_pids(a.pid))`;
  return row;
}

/**
 * Holds `customerId`'s lock in a transaction of its own while `run` goes, and returns what `whileHeld`
 * saw once `run` queued for that lock, or `finished` when `run` got through without waiting.
 */
async function underHeldLock<T>(
  customerId: string,
  run: () => Promise<unknown>,
  whileHeld: () => Promise<T>,
): Promise<{ waiter: Waiter | 'finished'; seen: T }> {
  const holder = await w.db.sql.reserve();
  try {
    await holder`begin`;
    await lockCustomer(holder, customerId);
    const [me] = await holder<{ pid: number }[]>`select pg_backend_pid() as pid`;
    let settled = false;
    const ran = run().finally(() => (settled = true));
    ran.catch(() => undefined);
    const waiter = await waitFor('the backfill queued for the held customer lock, or finished', async () =>
      settled ? ('finished' as const) : await waiterBehind(me!.pid),
    );
    const seen = await whileHeld();
    if (waiter !== 'finished') expect(settled, 'the backfill finished while the lock was held').toBe(false);
    await holder`commit`;
    await ran;
    return { waiter, seen };
  } finally {
    await holder`rollback`.catch(() => undefined);
    holder.release();
  }
}

async function customerOf(customerId: string): Promise<number> {
  const [r] = await w.db.sql`select count(*)::int as n from customers where id = ${customerId}`;
  return r!.n as number;
}

describe("dunning backfill and the customer's lock", () => {
  it.each([
    ['a customer our copy already holds', true],
    ['a customer new to our copy', false],
  ])('taking over an invoice of %s waits for the lock before it writes', async (_, known) => {
    const c = await w.sandbox.createCustomer({
      email: 'held@example.com',
      name: 'Held',
      country: 'DE',
      card: { brand: 'visa', failure: 'insufficient_funds', expMonth: 1, expYear: 2030 },
    });
    const inv = await w.sandbox.createFailingInvoice(c.id, { amount: 2_000, currency: 'eur', subscription: true });
    if (known)
      await w.db.sql`insert into customers (id, email, stripe_updated_at) values (${c.id}, 'held@example.com', now())`;

    const { waiter, seen } = await underHeldLock(
      c.id,
      () => backfill({ sql: w.db.sql, gateway: w.deps.gateway, scheduler: w.deps, policy: w.policy }),
      async () => {
        const [inv_] = await w.db.sql`select count(*)::int as n from invoices where id = ${inv.id}`;
        const [case_] = await w.db.sql`select count(*)::int as n from dunning_cases where invoice_id = ${inv.id}`;
        return { customer: await customerOf(c.id), invoice: inv_!.n as number, case: case_!.n as number };
      },
    );
    expect(waiter, 'the backfill wrote without waiting for the customer lock').not.toBe('finished');
    expect(waiter).toMatchObject({ xid: null, query: expect.stringContaining('pg_advisory_xact_lock') });
    expect(seen).toEqual({ customer: known ? 1 : 0, invoice: 0, case: 0 });

    // Once the holder committed, the takeover went on as ever.
    const [row] = await w.db.sql`select status from dunning_cases where invoice_id = ${inv.id}`;
    expect(row!.status).toBe('open');
    const [planned] = await w.db.sql`
      select count(*)::int as n from payment_attempts where invoice_id = ${inv.id} and status = 'planned'`;
    expect(planned!.n).toBe(1);
    expect(await customerOf(c.id)).toBe(1);
  });
});

describe("the card backfill and the customer's lock", () => {
  it("copying a subscriber's customer, card and subscription waits for the lock before it writes", async () => {
    const c = await w.sandbox.createCustomer({
      email: 'cards@example.com',
      name: 'Cards',
      country: 'DE',
      card: { brand: 'visa', failure: null, expMonth: 6, expYear: 2026 },
    });
    const inv = await w.sandbox.createFailingInvoice(c.id, { amount: 1_000, currency: 'eur', subscription: true });
    const copied = async () => {
      const [sub] = await w.db.sql`select count(*)::int as n from subscriptions where id = ${inv.subscriptionId}`;
      const [card] = await w.db
        .sql`select count(*)::int as n from card_expiries where payment_method = ${c.paymentMethodId}`;
      return { customer: await customerOf(c.id), subscription: sub!.n as number, card: card!.n as number };
    };

    const { waiter, seen } = await underHeldLock(
      c.id,
      () => backfillRenewalCards({ sql: w.db.sql, gateway: w.deps.gateway, clock: w.clock }),
      copied,
    );
    expect(waiter, 'the card backfill wrote without waiting for the customer lock').not.toBe('finished');
    expect(waiter).toMatchObject({ xid: null, query: expect.stringContaining('pg_advisory_xact_lock') });
    expect(seen).toEqual({ customer: 0, subscription: 0, card: 0 });

    expect(await copied()).toEqual({ customer: 1, subscription: 1, card: 1 });
  });
});

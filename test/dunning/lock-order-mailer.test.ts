import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { lockCustomer } from '../../src/customer-lock.ts';
import { handleDeadline } from '../../src/dunning/final-action.ts';
import { pause, resume, retryNow } from '../../src/dunning/ops-actions.ts';
import { executeAttempt, type RunnerDeps, type RunResult } from '../../src/dunning/runner.ts';
import { createReminderHooks, type ReminderHooks } from '../../src/reminders/hooks.ts';
import { sendOne, type MailerDeps } from '../../src/reminders/mailer.ts';
import { defaultReminderPolicy } from '../../src/reminders/policy.ts';
import { loadTemplates } from '../../src/reminders/templates.ts';
import type { OutgoingEmail } from '../../src/reminders/transport.ts';
import { waitForLockWait } from '../helpers/db.ts';
import {
  apiCharges,
  attemptRow,
  caseRow,
  planDueAttempt,
  seedFailedInvoice,
  startWorld,
  type RunnerWorld,
  type SeededCase,
} from './runner-helpers.ts';

/**
 * The mailer and the runner on one customer's two invoices. The mailer decides under the customer's
 * lock to send A's first notice, taking B's along and listing both invoices; the runner settles B.
 * Whichever comes second must see the other's outcome: either B is paid before the decision (and is
 * not listed), or the decision stands and B is paid after it (the customer then gets the thank-you).
 * An email recorded as going out (`sending`, which the cap already counts as sent) must never list
 * an invoice our copy already holds as paid.
 *
 * The runner's repeat of an attempt whose outcome was unknown reads the invoice from Stripe first
 * and copies its status (`paid`: the lost answer was our success) into our copy of the invoice;
 * that write is what this test watches. The steps are driven through locks, waiting on
 * pg_stat_activity, never on time:
 *
 * 1. a third transaction holds B's pending reminder row, so the mailer, having decided to merge it
 *    (under the customer's lock), stops at the merge;
 * 2. an observer asks for the customer's lock and queues behind the mailer;
 * 3. the runner repeats B's attempt and queues for the customer's lock (or, without it, writes B
 *    as paid meanwhile and queues only for its outcome);
 * 4. the third transaction ends: the mailer records its email and commits; the observer, first in
 *    the queue, reads B's status as the mailer's commit left it, then lets the runner go.
 */

const PAY = 'POST /v1/invoices/:id/pay';

let w: RunnerWorld;
let hooks: ReminderHooks;
let mailer: MailerDeps;
const outgoing: OutgoingEmail[] = [];
/** Holds the SMTP step until the observer has read, so the email is still `sending` then. */
let smtpHeld: Promise<void> = Promise.resolve();

beforeAll(async () => {
  w = await startWorld();
  const config = loadConfig({
    DEFAULT_TIME_ZONE: 'Europe/Berlin',
    DEFAULT_LOCALE: 'en',
    MERCHANT_NAME: 'Acme GmbH',
    MAIL_FROM: 'billing@acme.test',
  });
  hooks = createReminderHooks({ boss: w.boss, clock: w.clock, log: w.deps.log, config });
  mailer = {
    sql: w.db.sql,
    boss: w.boss,
    clock: w.clock,
    log: w.deps.log,
    config,
    transport: {
      send: async (email) => {
        outgoing.push(email);
        await smtpHeld;
        return { messageId: null };
      },
      close: () => undefined,
    },
    templates: loadTemplates(null),
    portalLink: async (customerId) => `https://acme.test/update-card?c=${customerId}`,
    policy: defaultReminderPolicy(),
  };
});
afterAll(async () => {
  await w?.close();
});

/** A second failed invoice of the same customer, seeded as `seedFailedInvoice` seeds the first. */
async function seedAnotherInvoice(first: SeededCase, amount: number): Promise<SeededCase> {
  const inv = await w.sandbox.createFailingInvoice(first.customerId, { amount, currency: 'eur', subscription: true });
  const now = w.clock.now();
  const sql = w.db.sql;
  await sql`insert into invoices (id, customer_id, subscription_id, status, currency, amount_due, amount_remaining, stripe_attempt_count, stripe_created, stripe_updated_at)
            values (${inv.id}, ${first.customerId}, ${inv.subscriptionId}, 'open', 'eur', ${amount}, ${amount}, 1, ${now}, ${now})`;
  const [c] =
    await sql`insert into dunning_cases (invoice_id, customer_id, currency, amount, policy_version, cohort, opened_at)
            values (${inv.id}, ${first.customerId}, 'eur', ${amount}, ${w.policy.version}, 'smart', ${now}) returning id`;
  await sql`insert into payment_attempts (case_id, invoice_id, attempt_no, source, status, started_at, finished_at, payment_method, card_brand, charge_id, decline_code, failure_code)
            values (${c!.id}, ${inv.id}, 1, 'stripe', 'declined', ${now}, ${now}, ${first.paymentMethod}, 'visa', ${inv.chargeId}, 'generic_decline', 'card_declined')`;
  return {
    customerId: first.customerId,
    invoiceId: inv.id,
    caseId: Number(c!.id),
    paymentMethod: first.paymentMethod,
    subscriptionId: inv.subscriptionId,
  };
}

async function firstNoticeOf(caseId: number): Promise<number> {
  const [row] = await w.db.sql<{ id: number }[]>`
    select id::float8 as id from reminder_outbox where case_id = ${caseId} and kind = 'first_notice' and status = 'pending'`;
  expect(row, `case ${caseId} has a pending first notice`).toBeDefined();
  return row!.id;
}

describe('mailer and runner on two invoices of one customer', () => {
  it("the runner's repeat that finds B paid at Stripe and the mailer listing B in A's email: B is never paid when the email is recorded", async () => {
    const a = await seedFailedInvoice(w, 'generic_decline', 4_900);
    const b = await seedAnotherInvoice(a, 12_345);
    await w.db.sql`update customers set email = 'two@example.com', name = 'Two Invoices' where id = ${a.customerId}`;
    // Both failures told: two first notices, due now, that one email can carry.
    await w.db.sql.begin(async (tx) => {
      for (const s of [a, b])
        await hooks.paymentFailed(tx, { caseId: s.caseId, invoiceId: s.invoiceId, opened: true, at: w.clock.now() });
    });
    const reminderA = await firstNoticeOf(a.caseId);
    const reminderB = await firstNoticeOf(b.caseId);

    // B's retry charged a working card, but its answer was lost: the attempt is unknown, B is paid at Stripe.
    await w.sandbox.updateCard(a.customerId, { brand: 'visa', failure: null, expMonth: 1, expYear: 2031 });
    const attemptB = await planDueAttempt(w.db.sql, b, w.clock.now());
    w.sandbox.inject({ kind: 'execute_then_500', route: PAY, objectId: b.invoiceId });
    expect(await executeAttempt(w.deps, attemptB)).toBe<RunResult>('unknown');
    expect(apiCharges(w.sandbox, b.invoiceId)).toHaveLength(1);
    const [before] = await w.db.sql`select status from invoices where id = ${b.invoiceId}`;
    expect(before!.status).toBe('open');

    const holder = await w.db.sql.reserve();
    const observer = await w.db.sql.reserve();
    let releaseSmtp!: () => void;
    smtpHeld = new Promise<void>((resolve) => (releaseSmtp = resolve));
    let sawB: string | undefined;
    let sawEmail: string | undefined;
    try {
      // 1. The mailer decides to take B's reminder along and stops at the merge.
      await holder`begin`;
      await holder`select id from reminder_outbox where id = ${reminderB} for update`;
      const mailed = sendOne(mailer, reminderA);
      mailed.catch(() => undefined);
      await waitForLockWait(w.db.sql, "status = 'merged'");

      // 2. The observer queues for the customer's lock behind the mailer.
      await observer`begin`;
      const observed = lockCustomer(observer, a.customerId);
      observed.catch(() => undefined);
      await waitForLockWait(w.db.sql, 'pg_advisory_xact_lock(hashtextextended($1, 0))');

      // 3. The runner repeats B's attempt and queues for the customer's lock behind the observer.
      const runner: RunnerDeps = { ...w.deps, onCaseClosed: (tx, e) => hooks.caseClosed(tx, e) };
      const ran = executeAttempt(runner, attemptB);
      ran.catch(() => undefined);
      await waitForLockWait(w.db.sql, 'from invoices where id');

      // 4. The mailer goes on and commits; the observer reads what its commit left.
      await holder`commit`;
      await observed;
      const [inv] = await observer`select status from invoices where id = ${b.invoiceId}`;
      const [row] = await observer`select status from reminder_outbox where id = ${reminderA}`;
      sawB = inv!.status as string;
      sawEmail = row!.status as string;
      await observer`commit`;
      releaseSmtp();

      await mailed;
      expect(await ran).toBe<RunResult>('succeeded');
    } finally {
      releaseSmtp();
      await holder`rollback`.catch(() => undefined);
      await observer`rollback`.catch(() => undefined);
      holder.release();
      observer.release();
    }

    // The email was recorded as going out, carrying B and listing both invoices.
    expect(sawEmail).toBe('sending');
    const reminders = await w.db.sql<{ id: number; status: string; mergedInto: number | null }[]>`
      select id::float8 as id, status, merged_into::float8 as "mergedInto" from reminder_outbox
       where id in (${reminderA}, ${reminderB}) order by id`;
    expect(reminders).toEqual([
      { id: reminderA, status: 'sent', mergedInto: null },
      { id: reminderB, status: 'merged', mergedInto: reminderA },
    ]);
    expect(outgoing).toHaveLength(1);
    expect(outgoing[0]!.text).toContain('€49.00');
    expect(outgoing[0]!.text).toContain('€123.45');
    // The point: B was still open when that email was recorded; its payment came after.
    expect(sawB, 'an invoice the email lists was already paid when the email was recorded').toBe('open');

    // The payment then closed B's case; the customer, told of B in A's email, hears it was paid.
    expect(await attemptRow(w.db.sql, attemptB)).toMatchObject({ status: 'succeeded' });
    expect(await caseRow(w.db.sql, b.caseId)).toMatchObject({ status: 'recovered' });
    const [thanks] = await w.db.sql`
      select count(*)::int as n from reminder_outbox where case_id = ${b.caseId} and kind = 'recovered'`;
    expect(thanks!.n).toBe(1);
    expect(apiCharges(w.sandbox, b.invoiceId)).toHaveLength(1);
  });
});

/**
 * The deadline job reads the invoice from Stripe too, and closes a case whose invoice turns out paid
 * (cancelling its reminders). Before the fix it did so with no customer lock, so it could land
 * inside the mailer's decision. A transaction holding the customer's lock stands in for that
 * decision: the deadline must queue for the lock (seen in pg_stat_activity) and write nothing first.
 */
describe("the deadline and the customer's lock", () => {
  it('the deadline that finds the invoice paid at Stripe writes it paid and closes its case only once it holds the lock the mailer decides under', async () => {
    const a = await seedFailedInvoice(w, 'generic_decline', 4_900);
    const b = await seedAnotherInvoice(a, 12_345);
    // The customer paid B on the hosted page; its invoice.paid has not been applied here.
    await w.sandbox.payInvoiceOutOfBand(b.invoiceId);
    const job = { caseId: b.caseId, kind: 'await' as const, reason: 'test', attemptsSeen: 1 };

    // A mailer deciding for the customer holds their lock.
    const mailerTx = await w.db.sql.reserve();
    let whileHeld: { invoice: string; case: string } | undefined;
    try {
      await mailerTx`begin`;
      await lockCustomer(mailerTx, a.customerId);
      const deadline = handleDeadline({ ...w.deps, onCaseClosed: (tx, e) => hooks.caseClosed(tx, e) }, job);
      deadline.catch(() => undefined);
      // Either the deadline queues for the lock, or (before the fix) it got through without it.
      await Promise.race([deadline, waitForLockWait(w.db.sql, 'from dunning_cases where id')]);
      const [inv] = await w.db.sql`select status from invoices where id = ${b.invoiceId}`;
      whileHeld = { invoice: inv!.status as string, case: (await caseRow(w.db.sql, b.caseId)).status as string };
      await mailerTx`commit`;
      expect(await deadline).toBe('stood_down');
    } finally {
      await mailerTx`rollback`.catch(() => undefined);
      mailerTx.release();
    }
    expect(whileHeld, 'B was written paid while the mailer held the customer lock').toEqual({
      invoice: 'open',
      case: 'open',
    });
    expect(await caseRow(w.db.sql, b.caseId)).toMatchObject({ status: 'recovered' });
    const [inv] = await w.db.sql`select status from invoices where id = ${b.invoiceId}`;
    expect(inv!.status).toBe('paid');
  });
});

/**
 * Ops acting on a case (`dunning pause`, `resume`, `retry-now`, the /ops buttons) lock the case and
 * then its attempt rows and reminders; a paused case leaves the mailer's list and its reminders are
 * cancelled. The same stand-in for the mailer's decision holds the customer's lock: the action must
 * queue for it before it writes anything.
 */
describe("ops actions and the customer's lock", () => {
  it.each(['pause', 'retry-now', 'resume'] as const)(
    '%s waits for the lock the mailer decides under before it writes',
    async (action) => {
      const a = await seedFailedInvoice(w, 'generic_decline', 4_900);
      if (action === 'resume') await pause(w.db.sql, w.deps, a.invoiceId);
      const before = await w.db.sql`select paused, updated_at from dunning_cases where id = ${a.caseId}`;
      const planned = async () =>
        (
          await w.db
            .sql`select count(*)::int as n from payment_attempts where invoice_id = ${a.invoiceId} and status = 'planned'`
        )[0]!.n as number;
      const plannedBefore = await planned();
      const hooksOf = { casePaused: hooks.casePaused.bind(hooks), caseResumed: hooks.caseResumed.bind(hooks) };
      const mailerTx = await w.db.sql.reserve();
      let whileHeld: unknown;
      try {
        await mailerTx`begin`;
        await lockCustomer(mailerTx, a.customerId);
        const acted = w.db.sql.begin(async (tx) => {
          if (action === 'pause') await pause(tx, w.deps, a.invoiceId, hooksOf);
          else if (action === 'resume') await resume(tx, w.deps, a.invoiceId, hooksOf);
          else await retryNow(tx, w.deps, a.invoiceId, { hooks: hooksOf });
        });
        acted.catch(() => undefined);
        await Promise.race([acted, waitForLockWait(w.db.sql, 'from invoices where id')]);
        whileHeld = {
          case: await w.db.sql`select paused, updated_at from dunning_cases where id = ${a.caseId}`,
          planned: await planned(),
        };
        await mailerTx`commit`;
        await acted;
      } finally {
        await mailerTx`rollback`.catch(() => undefined);
        mailerTx.release();
      }
      expect(whileHeld, `${action} wrote while the mailer held the customer lock`).toEqual({
        case: before,
        planned: plannedBefore,
      });
      const [after] = await w.db.sql`select paused from dunning_cases where id = ${a.caseId}`;
      expect(after!.paused).toBe(action === 'pause');
    },
  );
});

import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FixedClock } from '../../src/clock.ts';
import { createDunningHooks } from '../../src/dunning/hooks.ts';
import { defaultPolicy } from '../../src/dunning/policy.ts';
import { createPolicySource, savePolicy } from '../../src/dunning/scheduler.ts';
import type { ProcessorDeps } from '../../src/events/context.ts';
import { combineHooks } from '../../src/events/hooks.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { charge, event, invoice, paymentIntent, T0 } from '../fixtures/events/stripe-objects.ts';
import { apply, attemptsOf, caseOf, recordingHooks } from './helpers.ts';

/**
 * Stripe sends `invoice.payment_failed` and the `charge.failed` that explains it in any order.
 * When the explanation comes second, the retry planned without it must be planned again.
 */

let db: TestDatabase;
let boss: PgBoss;
let deps: ProcessorDeps;
const recorded = recordingHooks();
const policy = defaultPolicy();

beforeAll(async () => {
  db = await createTestDatabase();
  const log = createLogger('silent');
  boss = await startQueue(db.url, log);
  await savePolicy(db.sql, policy);
  const clock = new FixedClock(new Date((T0 + 60) * 1000));
  const dunning = createDunningHooks({
    boss,
    clock,
    log,
    merchantTimeZone: 'UTC',
    policies: createPolicySource(policy),
  });
  const { version, ...body } = policy;
  deps = {
    clock,
    log,
    hooks: combineHooks(dunning, recorded.hooks),
    policy: { version, body },
    assignCohort: () => 'smart',
  };
});
afterAll(async () => {
  await boss?.stop({ graceful: false, close: true });
  await db?.drop();
});

let n = 0;
function ids() {
  n += 1;
  return { inv: `in_late${n}`, cus: `cus_late${n}`, ch: `ch_late${n}`, pi: `pi_late${n}` };
}

const planned = async (invoiceId: string) =>
  db.sql`select id, attempt_no, plan_reason from payment_attempts where invoice_id = ${invoiceId} and status = 'planned'`;
const jobsOf = async (queue: string, key: string) =>
  db.sql`select data from pgboss.job where name = ${queue} and singleton_key = ${key}`;

describe('decline details that arrive after planning', () => {
  test('charge.failed with lost_card after the plan: the planned retry is cancelled and the case waits for a new card', async () => {
    const id = ids();
    await apply(db.sql, deps, event('invoice.payment_failed', invoice({ id: id.inv, customer: id.cus })));
    const [first] = await planned(id.inv);
    expect(first?.plan_reason).toMatch(/^no_decline_code: retry/);

    const late = charge({ id: id.ch, customer: id.cus, paymentIntent: id.pi, declineCode: 'lost_card' });
    await apply(db.sql, deps, event('charge.failed', late, { created: T0 + 2 }));

    expect(await planned(id.inv)).toHaveLength(0);
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(attempts.map((a) => [a.attempt_no, a.status, a.decline_code])).toEqual([
      [1, 'declined', 'lost_card'],
      [2, 'cancelled', null],
    ]);
    expect(attempts[1]!.failure_message).toBe('replaced: decline details arrived');
    const c = await caseOf(db.sql, id.inv);
    expect(c).toMatchObject({ status: 'open', next_attempt_at: null, last_decline_category: 'hard' });
    expect(c!.next_attempt_reason).toMatch(/^awaiting customer: lost_card: this card must never be retried/);
    expect(await jobsOf('dunning-deadlines', String(c!.id))).toHaveLength(1);
    // The cancelled attempt's job is still queued; the runner finds nothing to claim for it.
    expect((await jobsOf('dunning-attempts', id.inv)).map((j) => j.data.attemptId)).toEqual([Number(first!.id)]);

    // A redelivery (another event id, same charge) learns nothing new and changes nothing.
    const learned = recorded.calls.filter((x) => x.hook === 'declineLearned').length;
    await apply(
      db.sql,
      deps,
      event('charge.failed', late, { created: T0 + 2 }),
      event(
        'payment_intent.payment_failed',
        paymentIntent({ id: id.pi, customer: id.cus, chargeId: id.ch, declineCode: 'lost_card' }),
        { created: T0 + 2 },
      ),
    );
    expect(recorded.calls.filter((x) => x.hook === 'declineLearned')).toHaveLength(learned);
    expect(await attemptsOf(db.sql, id.inv)).toHaveLength(2);
    expect(await jobsOf('dunning-deadlines', String(c!.id))).toHaveLength(1);
  });

  test('a late soft decline replaces the blind plan with one for its category', async () => {
    const id = ids();
    await apply(db.sql, deps, event('invoice.payment_failed', invoice({ id: id.inv, customer: id.cus })));
    await apply(
      db.sql,
      deps,
      event(
        'charge.failed',
        charge({ id: id.ch, customer: id.cus, paymentIntent: id.pi, declineCode: 'insufficient_funds' }),
        { created: T0 + 1 },
      ),
    );
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(attempts.map((a) => [a.attempt_no, a.status])).toEqual([
      [1, 'declined'],
      [2, 'cancelled'],
      [3, 'planned'],
    ]);
    expect(attempts[2]!.plan_reason).toMatch(/^insufficient_funds: next /);
    expect((await caseOf(db.sql, id.inv))!.next_attempt_reason).toBe(attempts[2]!.plan_reason);
    expect(recorded.calls.filter((x) => x.hook === 'declineLearned' && x.e.invoiceId === id.inv)).toEqual([
      {
        hook: 'declineLearned',
        e: {
          caseId: Number(attempts[0]!.case_id),
          invoiceId: id.inv,
          attemptId: Number(attempts[0]!.id),
          at: new Date((T0 + 1) * 1000),
        },
      },
    ]);
  });

  test('details that arrive before the invoice event plan right the first time, with no replacement', async () => {
    const id = ids();
    await apply(
      db.sql,
      deps,
      event('charge.failed', charge({ id: id.ch, customer: id.cus, paymentIntent: id.pi, declineCode: 'stolen_card' })),
      event('invoice.payment_failed', invoice({ id: id.inv, customer: id.cus })),
    );
    const attempts = await attemptsOf(db.sql, id.inv);
    expect(attempts.map((a) => [a.attempt_no, a.status, a.decline_code])).toEqual([[1, 'declined', 'stolen_card']]);
    expect((await caseOf(db.sql, id.inv))!.next_attempt_reason).toMatch(/^awaiting customer: stolen_card/);
  });
});

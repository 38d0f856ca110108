/**
 * Benchmark: how fast the event worker drains a backlog of stored Stripe events, with the real
 * handlers and the real dunning hooks (cases opened, ledger written, retries planned and queued).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/events.ts [--events 2000] [--concurrency 4]
 *
 * Uses a fresh database `dunning_bench_events` (dropped at the start of each run). Half the events
 * are `charge.failed`, half the `invoice.payment_failed` they explain, one pair per customer.
 */
import { parseArgs } from 'node:util';
import { FixedClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { connect, databaseServer, withDatabase } from '../src/db.ts';
import { createDunningHooks } from '../src/dunning/hooks.ts';
import { defaultPolicy } from '../src/dunning/policy.ts';
import { createPolicySource, savePolicy } from '../src/dunning/scheduler.ts';
import { startEventWorker } from '../src/events/processor.ts';
import { storeEvents } from '../src/http/event-writer.ts';
import { createLogger } from '../src/log.ts';
import { migrate } from '../src/migrate.ts';
import { QUEUES, startQueue } from '../src/queue.ts';
import { processorDeps } from '../src/worker.ts';
import { charge, event, invoice, T0 } from '../test/fixtures/events/stripe-objects.ts';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '2000' }, concurrency: { type: 'string', default: '4' } },
});
const total = Number(values.events);
const concurrency = Number(values.concurrency);

const quiet = createLogger('silent');
const config = loadConfig(process.env, []);
const { url: adminUrl, stop: stopEmbedded } = await databaseServer(config, quiet);
const admin = connect(adminUrl, { max: 1 });
await admin.unsafe('drop database if exists dunning_bench_events with (force)');
await admin.unsafe('create database dunning_bench_events');
await admin.end();
const url = withDatabase(adminUrl, 'dunning_bench_events');
const sql = connect(url, { max: 10 });
await migrate(sql, quiet);
const boss = await startQueue(url, quiet);
const policy = defaultPolicy();
await savePolicy(sql, policy);

const items = [];
for (let i = 0; i < total / 2; i += 1) {
  const ids = { inv: `in_b${i}`, cus: `cus_b${i}`, ch: `ch_b${i}`, pi: `pi_b${i}` };
  for (const ev of [
    event(
      'charge.failed',
      charge({ id: ids.ch, customer: ids.cus, paymentIntent: ids.pi, declineCode: 'insufficient_funds' }),
      { created: T0 },
    ),
    event('invoice.payment_failed', invoice({ id: ids.inv, customer: ids.cus }), { created: T0 }),
  ])
    items.push({ event: ev, raw: JSON.stringify(ev) });
}
for (let i = 0; i < items.length; i += 500) await storeEvents(sql, boss, items.slice(i, i + 500));

const clock = new FixedClock(new Date((T0 + 60) * 1000));
const hooks = createDunningHooks({
  boss,
  clock,
  log: quiet,
  merchantTimeZone: 'UTC',
  policies: createPolicySource(policy),
});
const started = performance.now();
await startEventWorker(boss, sql, processorDeps({ clock, log: quiet, policy }, hooks), { maxTries: 8, concurrency });
for (;;) {
  const [row] = await sql`select count(*)::int as n from stripe_events where status = 'pending'`;
  if (row?.n === 0) break;
  await new Promise((r) => setTimeout(r, 50));
}
const seconds = (performance.now() - started) / 1000;
const [cases] = await sql`select count(*)::int as n from dunning_cases`;
const [planned] = await sql`select count(*)::int as n from payment_attempts where status = 'planned'`;
console.log(
  `events ${total}  concurrency ${concurrency}  drained in ${seconds.toFixed(2)} s  = ${Math.round(total / seconds)} events/s  (cases ${cases?.n}, planned ${planned?.n})`,
);

await boss.offWork(QUEUES.stripeEvents);
await boss.stop({ graceful: false, close: true });
await sql.end({ timeout: 5 });
await stopEmbedded();

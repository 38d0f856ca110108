import net from 'node:net';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { connect, type Sql } from '../../src/db.ts';
import { startEventWorker } from '../../src/events/processor.ts';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { event, invoice } from '../fixtures/events/stripe-objects.ts';
import { recordingHooks, testDeps } from '../events/helpers.ts';
import { deliver, request, startIntake, type Intake } from './harness.ts';

/**
 * A TCP proxy on loopback between the receiver's pool and Postgres. Closing it (and cutting its
 * open connections) is a real outage as the receiver sees it: refused connections, dead sockets.
 */
class Proxy {
  readonly target: { host: string; port: number };
  port = 0;
  #server: net.Server | null = null;
  #sockets = new Set<net.Socket>();
  constructor(target: { host: string; port: number }) {
    this.target = target;
  }
  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.#server = server;
  }
  /** Traffic stops flowing but sockets stay open: a database that hangs instead of refusing. */
  stall(stalled: boolean): void {
    for (const s of this.#sockets) {
      if (stalled) s.pause();
      else s.resume();
    }
  }
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

let db: TestDatabase;
let proxy: Proxy;
let viaProxy: Sql;
let boss: PgBoss;
let intake: Intake;

beforeAll(async () => {
  db = await createTestDatabase();
  const direct = new URL(db.url);
  proxy = new Proxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  await proxy.start();
  const proxied = new URL(db.url);
  proxied.port = String(proxy.port);
  viaProxy = connect(proxied.toString(), { max: 4 });
  boss = await startQueue(db.url, createLogger('silent'));
  intake = await startIntake({ sql: viaProxy, boss, log: createLogger('silent'), storeTimeoutMs: 500 });
});
afterAll(async () => {
  await intake?.close();
  await boss?.stop({ graceful: false, close: true });
  await viaProxy?.end({ timeout: 1 });
  await proxy?.stop();
  await db?.drop();
});

function events(prefix: string, count: number): Array<{ id: string; text: string }> {
  return Array.from({ length: count }, (_, i) => {
    const ev = event('invoice.payment_failed', invoice({ id: `in_${prefix}${i}`, customer: `cus_${prefix}${i}` }), {
      created: Math.floor(Date.now() / 1000),
    });
    return { id: ev.id, text: JSON.stringify(ev) };
  });
}

test('Postgres unreachable: deliveries get 503 fast; every event answered 200 is processed exactly once when it is back', async () => {
  const before = events('ok', 4);
  const during = events('down', 4);
  const accepted: string[] = [];

  for (const e of before) {
    expect((await deliver(intake.url, e.text)).status).toBe(200);
    accepted.push(e.id);
  }

  await proxy.stop();
  const refused = await Promise.all(during.map((e) => deliver(intake.url, e.text)));
  expect(refused.map((a) => a.status)).toEqual([503, 503, 503, 503]);
  expect(Math.max(...refused.map((a) => a.ms))).toBeLessThan(1_000);
  expect(await request(intake.url, { method: 'GET', path: '/healthz' })).toMatchObject({
    status: 503,
    body: { db: 'down' },
  });
  const [{ n: storedDuringOutage }] =
    (await db.sql`select count(*)::int as n from stripe_events where id in ${db.sql(during.map((e) => e.id))}`) as unknown as [
      { n: number },
    ];
  expect(storedDuringOutage).toBe(0);

  await proxy.start();
  // Stripe redelivers what we refused; one of the earlier ones comes again too.
  for (const e of [...during, before[0]!]) {
    const a = await deliver(intake.url, e.text);
    expect(a.status).toBe(200);
    if (!accepted.includes(e.id)) accepted.push(e.id);
  }

  // A database that hangs (sockets open, nothing flows) gets the same answer once the store times out.
  await deliver(intake.url, events('warm', 1)[0]!.text).then((a) => {
    expect(a.status).toBe(200);
  });
  const hung = events('hung', 1)[0]!;
  proxy.stall(true);
  const slow = await deliver(intake.url, hung.text);
  proxy.stall(false);
  expect(slow.status).toBe(503);
  expect(slow.ms).toBeLessThan(1_000);
  // Its transaction may still commit after the 503: Stripe's redelivery is then a harmless duplicate.
  expect((await deliver(intake.url, hung.text)).status).toBe(200);
  const [{ n: warmAndHung }] =
    (await db.sql`select count(*)::int as n from stripe_events where payload->'data'->'object'->>'id' in ('in_warm0', 'in_hung0')`) as unknown as [
      { n: number },
    ];
  expect(warmAndHung).toBe(2);
  accepted.push(
    ...(
      await db.sql`select id from stripe_events where payload->'data'->'object'->>'id' in ('in_warm0', 'in_hung0')`
    ).map((r) => r.id as string),
  );

  await startEventWorker(boss, db.sql, testDeps(recordingHooks().hooks), { maxTries: 3, concurrency: 2 });
  await waitFor(
    'every accepted event processed',
    async () => {
      const [r] = await db.sql`select count(*)::int as n from stripe_events where status = 'processed'`;
      return r!.n === accepted.length;
    },
    15_000,
  );
  const rows = await db.sql`select id, tries from stripe_events order by id`;
  expect(rows.map((r) => r.id).sort()).toEqual([...accepted].sort());
  expect(rows.every((r) => r.tries === 1)).toBe(true);
  const [cases] = await db.sql`select count(*)::int as n from dunning_cases`;
  expect(cases!.n).toBe(accepted.length);
});

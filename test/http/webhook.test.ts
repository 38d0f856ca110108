import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { startQueue } from '../../src/queue.ts';
import { sendJson } from '../../src/http/server.ts';
import { createTestDatabase, jobsNaming, type TestDatabase } from '../helpers/db.ts';
import { event, invoice } from '../fixtures/events/stripe-objects.ts';
import { capturingLogger, deliver, request, SECRET_A, SECRET_B, sign, startIntake, type Intake } from './harness.ts';

let db: TestDatabase;
let boss: PgBoss;
let intake: Intake;
const { log, lines } = capturingLogger();

beforeAll(async () => {
  db = await createTestDatabase();
  boss = await startQueue(db.url, createLogger('silent'));
  intake = await startIntake({
    sql: db.sql,
    boss,
    log,
    extraRoutes: { '/extra': async (_req, res) => sendJson(res, 200, { mounted: true }) },
  });
});
afterAll(async () => {
  await intake?.close();
  await boss?.stop({ graceful: false, close: true });
  await db?.drop();
});

let n = 0;
function payload(): { id: string; text: string } {
  n += 1;
  const ev = event('invoice.payment_failed', invoice({ id: `in_h${n}`, customer: `cus_h${n}` }), {
    created: Math.floor(Date.now() / 1000),
  });
  return { id: ev.id, text: JSON.stringify(ev) };
}

const stored = async (id: string) =>
  Number((await db.sql`select count(*)::int as n from stripe_events where id = ${id}`)[0]!.n);
const jobs = async (id: string) => jobsNaming(db.sql, id);

describe('signatures', () => {
  test('a delivery signed with the current secret is stored with one job, and answered 200', async () => {
    const p = payload();
    const a = await deliver(intake.url, p.text);
    expect(a.status).toBe(200);
    expect(a.body).toEqual({ received: true, duplicate: false });
    expect(await stored(p.id)).toBe(1);
    expect(await jobs(p.id)).toBe(1);
    const [row] =
      await db.sql`select type, livemode, api_version, payload->>'id' as pid, status from stripe_events where id = ${p.id}`;
    expect(row).toMatchObject({
      type: 'invoice.payment_failed',
      livemode: false,
      api_version: '2026-10-28.endive',
      pid: p.id,
      status: 'pending',
    });
  });

  test('a delivery signed with the second (rotated) secret is accepted', async () => {
    const p = payload();
    expect((await deliver(intake.url, p.text, sign(p.text, SECRET_B))).status).toBe(200);
    expect(await stored(p.id)).toBe(1);
  });

  test.each([
    ['a wrong secret', (t: string) => ({ body: t, header: sign(t, 'whsec_someone_else') }), 'signature does not match'],
    [
      'a tampered body',
      (t: string) => ({ body: t.replace('"usd"', '"eur"'), header: sign(t) }),
      'signature does not match',
    ],
    ['no signature header', (t: string) => ({ body: t, header: null }), 'missing Stripe-Signature header'],
    [
      'an expired timestamp',
      (t: string) => ({ body: t, header: sign(t, SECRET_A, Math.floor(Date.now() / 1000) - 301) }),
      'timestamp outside the tolerance',
    ],
    ['a garbled header', (t: string) => ({ body: t, header: 'nonsense' }), 'malformed Stripe-Signature header'],
  ])('%s is refused with 400 and nothing is stored', async (_what, make, reason) => {
    const p = payload();
    const { body, header } = make(p.text);
    const a = await deliver(intake.url, body, header);
    expect(a.status).toBe(400);
    expect(a.body).toEqual({ error: reason });
    expect(await stored(p.id)).toBe(0);
    expect(await jobs(p.id)).toBe(0);
  });

  test.each([
    ['not JSON', '{"id": "evt_broken", ', 'body is not valid JSON'],
    ['JSON but not an event', JSON.stringify({ id: 'evt_not_event', object: 'charge' }), 'body is not a Stripe event'],
  ])('a validly signed body that is %s is refused with 400', async (_what, body, reason) => {
    const a = await deliver(intake.url, body, sign(body));
    expect(a).toMatchObject({ status: 400, body: { error: reason } });
  });

  test('logs carry the request id and never the signature or the secrets', async () => {
    const p = payload();
    const header = sign(p.text);
    const a = await request(intake.url, {
      body: p.text,
      headers: { 'stripe-signature': header, 'x-request-id': 'req-from-stripe-1' },
    });
    expect(a.headers['x-request-id']).toBe('req-from-stripe-1');
    await deliver(intake.url, p.text, sign(p.text, 'whsec_leaky_secret_value'));
    const all = lines.join('\n');
    expect(all).toContain('req-from-stripe-1');
    // One line per delivery: the request line, carrying the request id and the event it stored.
    const line = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'request' && l.eventId === p.id);
    expect(line).toMatchObject({
      requestId: 'req-from-stripe-1',
      status: 200,
      path: '/webhooks/stripe',
      type: 'invoice.payment_failed',
      duplicate: false,
    });
    for (const secret of [SECRET_A, SECRET_B, 'whsec_leaky_secret_value']) expect(all).not.toContain(secret);
    expect(all).not.toContain(header.split(',')[1]!);
  });
});

describe('duplicates', () => {
  test('a redelivered event is answered 200 and stored and queued once', async () => {
    const p = payload();
    expect((await deliver(intake.url, p.text)).body).toEqual({ received: true, duplicate: false });
    expect((await deliver(intake.url, p.text)).body).toEqual({ received: true, duplicate: true });
    expect(await jobs(p.id)).toBe(1);
  });

  test('simultaneous deliveries of one event: all answered 200, exactly one stored row and one job', async () => {
    const p = payload();
    const answers = await Promise.all(Array.from({ length: 12 }, () => deliver(intake.url, p.text)));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(200));
    expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(1);
    expect(await stored(p.id)).toBe(1);
    expect(await jobs(p.id)).toBe(1);
  });
});

describe('limits and routes', () => {
  const big = (size: number) => JSON.stringify({ id: 'evt_big', object: 'event', pad: 'x'.repeat(size) });

  test.each([
    ['announced by content-length', false],
    ['streamed without a length', true],
  ])('a body over 1 MiB %s is refused with 413', async (_how, chunked) => {
    const body = big(1024 * 1024 + 10);
    const a = await request(intake.url, { body, headers: { 'stripe-signature': sign(body) }, chunked });
    expect(a.status).toBe(413);
    expect(await stored('evt_big')).toBe(0);
  });

  test('GET /healthz reports the database and the queue', async () => {
    const ok = await request(intake.url, { method: 'GET', path: '/healthz' });
    expect(ok).toMatchObject({ status: 200, body: { ok: true, db: 'ok', queue: 'ok' } });
    expect(ok.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    intake.queueUp.value = false;
    try {
      expect(await request(intake.url, { method: 'GET', path: '/healthz' })).toMatchObject({
        status: 503,
        body: { ok: false, db: 'ok', queue: 'down' },
      });
    } finally {
      intake.queueUp.value = true;
    }
  });

  test('unknown paths are 404, wrong methods 405, mounted routes answer', async () => {
    expect((await request(intake.url, { method: 'GET', path: '/nope' })).status).toBe(404);
    expect((await request(intake.url, { method: 'GET' })).status).toBe(405);
    expect(await request(intake.url, { method: 'GET', path: '/extra' })).toMatchObject({
      status: 200,
      body: { mounted: true },
    });
  });
});

import net from 'node:net';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startQueue } from '../../src/queue.ts';
import { createLogger } from '../../src/log.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.ts';
import { customer, event } from '../fixtures/events/stripe-objects.ts';
import { capturingLogger, deliver, sign, startIntake, type Intake } from './harness.ts';

let db: TestDatabase;
let boss: PgBoss;
let intake: Intake;
const captured = capturingLogger();

beforeAll(async () => {
  db = await createTestDatabase();
  boss = await startQueue(db.url, createLogger('silent'));
  intake = await startIntake({ sql: db.sql, boss, log: captured.log });
});
afterAll(async () => {
  await intake?.close();
  await boss?.stop({ graceful: false, close: true });
  await db?.drop();
});

/** Opens a raw connection and sends headers announcing `length` bytes, then `sent` of them. */
function partialPost(length: number, sent: string): net.Socket {
  const { port } = new URL(intake.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.write(
    `POST /webhooks/stripe HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nstripe-signature: t=1,v1=x\r\ncontent-length: ${length}\r\n\r\n${sent}`,
  );
  return socket;
}

test('a signature timestamp further in the future than the tolerance is refused like one too old', async () => {
  // Stripe: "the tolerance ... between the current time and the timestamp" (verifying signatures
  // manually, https://docs.stripe.com/webhooks#verify-manually); the SDK checks only the past side.
  const text = JSON.stringify(event('customer.updated', customer({ id: 'cus_future' })));
  const future = Math.floor(Date.now() / 1000) + 3_600;
  const answer = await deliver(intake.url, text, sign(text, undefined, future));
  expect(answer.status).toBe(400);
  expect(answer.body.error).toBe('timestamp outside the tolerance');
});

test('a body that never completes is cut off with 408 after a few seconds', async () => {
  const socket = partialPost(100, '{"id":');
  const reply = await new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('close', () => resolve(text));
  });
  expect(reply).toMatch(/^HTTP\/1\.1 408/);
});

test('a client that disconnects mid-body is logged at debug, not as an error', async () => {
  const before = captured.lines.length;
  const { port } = new URL(intake.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  // With Expect: 100-continue the server answers "100 Continue" as it hands the request to the
  // handler: from then on the handler is reading the body.
  socket.write(
    'POST /webhooks/stripe HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\nstripe-signature: t=1,v1=x\r\ncontent-length: 100\r\n\r\n',
  );
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.write('{"id":');
  socket.destroy();
  await waitFor('the disconnect to be logged', () =>
    captured.lines.slice(before).some((l) => l.includes('"msg":"webhook client disconnected"')),
  );
  const lines = captured.lines.slice(before).map((l) => JSON.parse(l) as { level: number; msg: string });
  expect(lines.find((l) => l.msg === 'webhook client disconnected')).toMatchObject({ level: 20 });
  expect(lines.filter((l) => l.level >= 50)).toEqual([]);
});

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A clock tests move by hand. */
export function manualClock(startIso: string) {
  let t = new Date(startIso).getTime();
  return {
    now: () => new Date(t),
    set(iso: string) {
      t = new Date(iso).getTime();
    },
    advance(ms: number) {
      t += ms;
    },
  };
}

/**
 * Bounded poll: resolves with the first truthy value, fails with `what` after `timeoutMs`. The
 * deadline is generous on purpose: on a busy machine state takes its time, and a passing test
 * never waits it out.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | null | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Received {
  body: string;
  signature: string;
}

/** A real webhook receiver on loopback; `statusFor` decides each answer. */
export async function startReceiver(statusFor: (n: number, r: Received) => number = () => 200) {
  const received: Received[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = {
        body: Buffer.concat(chunks).toString('utf8'),
        signature: String(req.headers['stripe-signature'] ?? ''),
      };
      received.push(r);
      res.writeHead(statusFor(received.length, r));
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

import type { IncomingMessage } from 'node:http';

export class BodyTooLarge extends Error {
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.name = 'BodyTooLarge';
  }
}

/** The body did not arrive in time: a slow or stuck client. */
export class BodyTimeout extends Error {
  constructor(ms: number) {
    super(`request body not received within ${ms} ms`);
    this.name = 'BodyTimeout';
  }
}

/** The client went away before sending the whole body: nothing to answer, nothing wrong on our side. */
export class ClientGone extends Error {
  constructor(options?: { cause?: unknown }) {
    super('client disconnected before sending the whole body', options);
    this.name = 'ClientGone';
  }
}

/**
 * Stripe sends a webhook body at once; Node's own requestTimeout is only checked every 30 s, so a
 * body that never completes held a socket for up to a minute.
 */
export const BODY_TIMEOUT_MS = 5_000;

/**
 * Reads the raw body as bytes (signatures are computed over the exact bytes), stopping as soon as
 * it passes `limit`, whether or not a content-length announced it.
 */
export function readRawBody(req: IncomingMessage, limit: number, timeoutMs = BODY_TIMEOUT_MS): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.pause();
      reject(new BodyTimeout(timeoutMs));
    }, timeoutMs);
    const settle = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      fn();
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.pause();
      settle(() => reject(new BodyTooLarge(limit)));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        settle(() => reject(new BodyTooLarge(limit)));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => settle(() => resolve(Buffer.concat(chunks, size))));
    req.on('error', (err) => settle(() => reject(new ClientGone({ cause: err }))));
    req.on('close', () => settle(() => reject(new ClientGone())));
  });
}

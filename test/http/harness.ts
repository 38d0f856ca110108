import http from 'node:http';
import { Writable } from 'node:stream';
import type { PgBoss } from 'pg-boss';
import Stripe from 'stripe';
import type { Sql } from '../../src/db.ts';
import { healthRoutes } from '../../src/http/health.ts';
import { closeServer, createServer, listen, type Routes } from '../../src/http/server.ts';
import { webhookRoutes } from '../../src/http/webhook.ts';
import { createLogger, type Logger } from '../../src/log.ts';

export const SECRET_A = 'whsec_test_primary_0123456789abcdef';
export const SECRET_B = 'whsec_test_rotated_fedcba9876543210';

/** A logger whose JSON lines the test can read. */
export function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger('debug', sink), lines };
}

export interface Intake {
  url: string;
  queueUp: { value: boolean };
  close(): Promise<void>;
}

export async function startIntake(o: {
  sql: Sql;
  boss: Pick<PgBoss, 'insert'>;
  log: Logger;
  secrets?: string[];
  extraRoutes?: Routes;
  storeTimeoutMs?: number;
}): Promise<Intake> {
  const queueUp = { value: true };
  const server = createServer({
    log: o.log,
    routes: {
      ...webhookRoutes({
        sql: o.sql,
        boss: o.boss,
        secrets: o.secrets ?? [SECRET_A, SECRET_B],
        toleranceSeconds: 300,
        ...(o.storeTimeoutMs ? { storeTimeoutMs: o.storeTimeoutMs } : {}),
      }),
      ...healthRoutes({ sql: o.sql, queueRunning: () => queueUp.value, timeoutMs: 1_000 }),
      ...(o.extraRoutes ?? {}),
    },
  });
  const port = await listen(server, 0, '127.0.0.1');
  return { url: `http://127.0.0.1:${port}`, queueUp, close: () => closeServer(server) };
}

export function sign(payload: string, secret = SECRET_A, timestamp?: number): string {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) });
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

/**
 * One request over a fresh connection. Written with node:http rather than fetch so that a server
 * that answers before reading the whole body (413) still yields its answer.
 */
export function request(
  url: string,
  o: {
    method?: string;
    path?: string;
    body?: string | Buffer;
    headers?: Record<string, string>;
    chunked?: boolean;
  } = {},
): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : Buffer.from(o.body);
    const req = http.request(`${url}${o.path ?? '/webhooks/stripe'}`, {
      method: o.method ?? 'POST',
      agent: false,
      headers: {
        'content-type': 'application/json',
        ...(body && !o.chunked ? { 'content-length': String(body.length) } : {}),
        ...o.headers,
      },
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown>;
        try {
          parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
        } catch {
          parsed = { text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers, ms: performance.now() - started });
      });
    });
    // The server may close the socket on a body it refused; that is only an error with no answer.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (body && o.chunked) {
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

export function deliver(url: string, payload: string, header: string | null = sign(payload)): Promise<Answer> {
  return request(url, { body: payload, headers: header === null ? {} : { 'stripe-signature': header } });
}

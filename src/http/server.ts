import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';

/** A route handler. `ctx` carries the request id and a logger bound to it; handlers may ignore it. */
export type Handler = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => Promise<void>;

export interface RequestContext {
  requestId: string;
  /** A logger bound to the request id (made on first use: most requests log only their request line). */
  readonly log: Logger;
  /** Adds fields to the request's one closing log line (e.g. the event id a delivery carried). */
  annotate(fields: Record<string, unknown>): void;
}

/**
 * Routes keyed by exact path; a key ending in `/*` also takes every path under it (for ids in the
 * path, such as /api/v1/customers/{id}/...; the handler parses the rest). Each handler checks its
 * own methods.
 */
export type Routes = Record<string, Handler>;

export interface ServerDeps {
  log: Logger;
  routes: Routes;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * The HTTP server: dispatch by path, a request id on every request (taken from `x-request-id`
 * when it looks sane, else generated) in the response and in the logs, and a 500 for any handler
 * that throws. Listening is the caller's business.
 */
export function createServer(deps: ServerDeps): http.Server {
  const routes: Routes = { ...deps.routes };
  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', requestId);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    let log: Logger | undefined;
    let fields: Record<string, unknown> = {};
    const ctx: RequestContext = {
      requestId,
      get log() {
        return (log ??= deps.log.child({ requestId }));
      },
      annotate(more) {
        fields = { ...fields, ...more };
      },
    };
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      deps.log.info(
        { requestId, method: req.method, path, status: res.statusCode, ms: Math.round(ms * 10) / 10, ...fields },
        'request',
      );
    });
    const handler = Object.hasOwn(routes, path) ? routes[path] : underPrefix(routes, path);
    if (!handler) {
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    handler(req, res, ctx).catch((err: unknown) => {
      ctx.log.error({ err, path }, 'request handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  // Stripe waits at most a few seconds; a slow client must not hold a socket for minutes.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  mounted.set(server, routes);
  return server;
}

function underPrefix(routes: Routes, path: string): Handler | undefined {
  const key = Object.keys(routes).find((k) => k.endsWith('/*') && path.startsWith(k.slice(0, -1)));
  return key === undefined ? undefined : routes[key];
}

const mounted = new WeakMap<http.Server, Routes>();

/**
 * Adds routes to a running server, for routes whose dependencies exist only once it listens (the
 * demo's Stripe sandbox needs the server's port before the update-card route can talk to it).
 */
export function mountRoutes(server: http.Server, more: Routes): void {
  const routes = mounted.get(server);
  if (!routes) throw new Error('mountRoutes: not a server made by createServer');
  for (const path of Object.keys(more)) {
    if (Object.hasOwn(routes, path)) throw new Error(`mountRoutes: ${path} is already mounted`);
  }
  Object.assign(routes, more);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Listens on host:port (0 = ephemeral) and resolves with the bound port. */
export function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/** Stops accepting, lets in-flight requests finish, then drops idle keep-alive sockets. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

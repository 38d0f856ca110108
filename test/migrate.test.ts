import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { connect, withDatabase } from '../src/db.ts';
import { createLogger } from '../src/log.ts';
import { migrate, MIGRATION_LOCK, readMigrations } from '../src/migrate.ts';
import { waitFor } from './helpers/db.ts';

const log = createLogger('silent');
const stamp = `${process.pid}_${Date.now().toString(36)}`;
const name = `dunning_t_mig_${stamp}`;
/** Empty until two `dunning migrate` processes race on it. */
const racedName = `dunning_t_migp_${stamp}`;
let url: string;

beforeAll(async () => {
  const admin = connect(inject('adminUrl'), { max: 1 });
  await admin.unsafe(`create database "${name}"`);
  await admin.unsafe(`create database "${racedName}"`);
  await admin.end();
  url = withDatabase(inject('adminUrl'), name);
});

afterAll(async () => {
  const admin = connect(inject('adminUrl'), { max: 1 });
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.unsafe(`drop database if exists "${racedName}" with (force)`);
  await admin.end();
});

/** `node src/cli.ts migrate` as its own process; resolves with its exit code and JSON log lines. */
function migrateProcess(databaseUrl: string): Promise<{ code: number | null; lines: Array<Record<string, unknown>> }> {
  const cli = path.resolve(import.meta.dirname, '../src/cli.ts');
  const child = spawn(process.execPath, [cli, 'migrate'], {
    env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      const lines = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, lines });
    }),
  );
}

describe('migrations', () => {
  it('apply from several processes at once, each exactly once, and a second run is a no-op', async () => {
    const all = readMigrations();
    const pools = [connect(url, { max: 1 }), connect(url, { max: 1 }), connect(url, { max: 1 })];
    try {
      const results = await Promise.all(pools.map((sql) => migrate(sql, log)));
      const applied = results.flat().sort((a, b) => a - b);
      expect(applied).toEqual(all.map((m) => m.version));
      expect(await migrate(pools[0]!, log)).toEqual([]);
      const rows = await pools[0]!`select version from schema_migrations order by version`;
      expect(rows.map((r) => r.version)).toEqual(all.map((m) => m.version));
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('apply exactly once when two `dunning migrate` processes start at the same moment', async () => {
    const all = readMigrations();
    const racedUrl = withDatabase(inject('adminUrl'), racedName);
    const sql = connect(racedUrl, { max: 2 });
    try {
      // Hold the migration lock until both processes wait for it, so they really contend for it
      // rather than one finishing before the other has loaded.
      let runs!: Promise<Array<Awaited<ReturnType<typeof migrateProcess>>>>;
      await sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`;
        runs = Promise.all([migrateProcess(racedUrl), migrateProcess(racedUrl)]);
        await waitFor(
          'both processes waiting for the migration lock',
          async () => {
            const [r] = await sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`;
            return r!.n === 2;
          },
          25_000,
        );
      });
      const results = await runs;
      expect(results.map((r) => r.code)).toEqual([0, 0]);
      const appliedBy = results.map((r) =>
        r.lines.filter((l) => l.msg === 'migration applied').map((l) => l.migration),
      );
      // One process applied every migration, the other found nothing left to do.
      expect(appliedBy.map((a) => a.length).sort()).toEqual([0, all.length]);
      expect(appliedBy.flat()).toEqual(all.map((m) => m.name));
      const rows =
        await sql`select version, count(*)::int as n from schema_migrations group by version order by version`;
      expect(rows).toEqual(all.map((m) => ({ version: m.version, n: 1 })));
    } finally {
      await sql.end();
    }
  }, 40_000);

  it('refuses a database migrated by newer code', async () => {
    const sql = connect(url, { max: 1 });
    try {
      await sql`insert into schema_migrations (version, name) values (999, '999_future.sql')`;
      await expect(migrate(sql, log)).rejects.toThrow(/version 999/);
      await sql`delete from schema_migrations where version = 999`;
    } finally {
      await sql.end();
    }
  });

  it('rolls back a failing migration completely', async () => {
    const sql = connect(url, { max: 1 });
    try {
      const broken = [
        ...readMigrations(),
        {
          version: readMigrations().length + 1,
          name: 'x_broken.sql',
          text: 'create table half_done (id int); select 1/0;',
        },
      ];
      await expect(migrate(sql, log, broken)).rejects.toThrow(/x_broken.sql failed/);
      const [row] = await sql`select to_regclass('half_done') as t`;
      expect(row!.t).toBeNull();
    } finally {
      await sql.end();
    }
  });
});

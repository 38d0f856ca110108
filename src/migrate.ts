import fs from 'node:fs';
import path from 'node:path';
import type { Sql } from './db.ts';
import type { Logger } from './log.ts';
import { sqlDir } from './paths.ts';

export interface Migration {
  version: number;
  name: string;
  text: string;
}

/** Reads `NNN_name.sql` files; numbering must start at 1 and have no gaps or duplicates. */
export function readMigrations(dir: string = sqlDir): Migration[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const migrations = files.map((file) => {
    const match = /^(\d+)_([\w-]+)\.sql$/.exec(file);
    if (!match) throw new Error(`Migration file ${file} in ${dir} is not named NNN_name.sql`);
    return { version: Number(match[1]), name: file, text: fs.readFileSync(path.join(dir, file), 'utf8') };
  });
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(
        `Migrations in ${dir} must be numbered 1, 2, 3... without gaps; ${m.name} should be number ${i + 1}`,
      );
    }
  });
  return migrations;
}

// Any constant works as long as every process uses the same one.
export const MIGRATION_LOCK = 7_311_204_411;

/**
 * Applies pending migrations in order under an advisory lock, so that processes starting together
 * apply each migration exactly once. All pending migrations commit together or not at all: a crash
 * never leaves a half-migrated schema. Refuses a database migrated by newer code than this.
 */
export async function migrate(sql: Sql, log: Logger, migrations: Migration[] = readMigrations()): Promise<number[]> {
  const applied: number[] = [];
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`;
    const done = new Set(
      (await tx<{ version: number }[]>`select version from schema_migrations`).map((r) => r.version),
    );
    const newest = Math.max(0, ...done);
    if (newest > migrations.length) {
      throw new Error(
        `Database schema is at version ${newest} but this build knows only ${migrations.length} migrations; deploy the newer code`,
      );
    }
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await tx
        .savepoint(async (sp) => {
          await sp.unsafe(m.text);
          await sp`insert into schema_migrations (version, name) values (${m.version}, ${m.name})`;
        })
        .catch((err: unknown) => {
          throw new Error(`Migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
        });
      applied.push(m.version);
      log.info({ migration: m.name }, 'migration applied');
    }
  });
  return applied;
}

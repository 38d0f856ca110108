import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { connect, withDatabase } from '../src/db.ts';
import { createLogger } from '../src/log.ts';
import { migrate, readMigrations } from '../src/migrate.ts';

const log = createLogger('silent');
const name = `dunning_t_mig_${process.pid}_${Date.now().toString(36)}`;
let url: string;

beforeAll(async () => {
  const admin = connect(inject('adminUrl'), { max: 1 });
  await admin.unsafe(`create database "${name}"`);
  await admin.end();
  url = withDatabase(inject('adminUrl'), name);
});

afterAll(async () => {
  const admin = connect(inject('adminUrl'), { max: 1 });
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
});

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
      const broken = [...readMigrations(), { version: readMigrations().length + 1, name: 'x_broken.sql', text: 'create table half_done (id int); select 1/0;' }];
      await expect(migrate(sql, log, broken)).rejects.toThrow(/x_broken.sql failed/);
      const [row] = await sql`select to_regclass('half_done') as t`;
      expect(row!.t).toBeNull();
    } finally {
      await sql.end();
    }
  });
});

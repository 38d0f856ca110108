import type { Config } from '../config.ts';
import { connect, databaseServer, withDatabase, type Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import { migrate } from '../migrate.ts';

export interface DemoDatabase {
  url: string;
  sql: Sql;
  /** True when an earlier demo's data was kept (`--keep`). */
  kept: boolean;
  close(): Promise<void>;
}

/** Database names we create and drop ourselves: nothing that needs quoting beyond double quotes. */
export const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The demo's own database on DATABASE_URL's server (or embedded Postgres): dropped and created
 * afresh unless `keep`, so a second run starts clean without touching the merchant's database.
 */
export async function openDemoDatabase(
  config: Config,
  log: Logger,
  name: string,
  keep: boolean,
): Promise<DemoDatabase> {
  if (!DATABASE_NAME.test(name))
    throw new Error(`demo database name must match ${DATABASE_NAME.source}, got "${name}"`);
  const { url: serverUrl, stop: stopEmbedded } = await databaseServer(config, log);
  const admin = connect(serverUrl, { max: 1 });
  let kept: boolean;
  try {
    const [existing] = await admin`select 1 as found from pg_database where datname = ${name}`;
    if (existing && !keep) await admin.unsafe(`drop database "${name}" with (force)`);
    if (!existing || !keep) await admin.unsafe(`create database "${name}"`);
    kept = Boolean(existing) && keep;
  } catch (cause) {
    await stopEmbedded();
    throw new Error(`cannot prepare the demo database "${name}"`, { cause });
  } finally {
    await admin.end({ timeout: 2 });
  }
  const url = withDatabase(serverUrl, name);
  const sql = connect(url, { max: 10 });
  await migrate(sql, log);
  return {
    url,
    sql,
    kept,
    async close() {
      await sql.end({ timeout: 5 });
      await stopEmbedded();
    },
  };
}

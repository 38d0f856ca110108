import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { connect, reachable, startEmbeddedPostgres, withDatabase } from '../../src/db.ts';
import { createLogger } from '../../src/log.ts';
import { migrate } from '../../src/migrate.ts';
import { ensureQueues, startQueue } from '../../src/queue.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
  }
}

/**
 * One Postgres for the whole run: the server named by DATABASE_URL, else a throwaway embedded
 * cluster. Migrations and the pg-boss schema are applied once into a template database; each test
 * file then clones it (CREATE DATABASE ... TEMPLATE), which takes milliseconds.
 */
export default async function setup(project: TestProject) {
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  let adminUrl = process.env.DATABASE_URL;
  let stopEmbedded = async () => {};
  let tmpDir: string | null = null;
  if (adminUrl) {
    if (!(await reachable(adminUrl))) {
      throw new Error(
        `Tests need Postgres: DATABASE_URL is set but the server does not answer. Start it, or unset DATABASE_URL to use an embedded one.`,
      );
    }
  } else {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dunning-test-pg-'));
    fs.chmodSync(tmpDir, 0o777);
    const port = 55_000 + (process.pid % 5_000);
    const embedded = await startEmbeddedPostgres(path.join(tmpDir, 'data'), port, log);
    adminUrl = embedded.url;
    stopEmbedded = embedded.stop;
  }

  const templateDb = `dunning_tpl_${process.pid}_${Date.now().toString(36)}`;
  const admin = connect(adminUrl, { max: 1 });
  await admin.unsafe(`create database "${templateDb}"`);
  const templateUrl = withDatabase(adminUrl, templateDb);
  const sql = connect(templateUrl, { max: 2 });
  await migrate(sql, log);
  await sql.end();
  const boss = await startQueue(templateUrl, log);
  await ensureQueues(boss);
  await boss.stop({ graceful: false });

  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', templateDb);

  return async () => {
    const leftovers = await admin<{ datname: string }[]>`
      select datname from pg_database where datname like ${`dunning_t_${process.pid}_%`} or datname = ${templateDb}`;
    for (const { datname } of leftovers) {
      if (process.env.KEEP_TEST_DB && datname !== templateDb) continue;
      await admin.unsafe(`drop database if exists "${datname}" with (force)`);
    }
    await admin.end();
    await stopEmbedded();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  };
}

import { loadConfig, type Config, type Requirement } from './config.ts';
import { connect, databaseServer, type Sql } from './db.ts';
import { createLogger, type Logger } from './log.ts';
import { migrate } from './migrate.ts';

/** What every long-lived command needs: validated config, a logger and a migrated database. */
export interface Runtime {
  config: Config;
  log: Logger;
  sql: Sql;
  /** For pg-boss, which opens its own pool. */
  databaseUrl: string;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  require?: Requirement[];
  migrate?: boolean;
  /** Overrides LOG_LEVEL, e.g. quieter logs for reporting commands. */
  logLevel?: string;
  poolSize?: number;
}

export async function openRuntime(env: NodeJS.ProcessEnv, options: RuntimeOptions = {}): Promise<Runtime> {
  const config = loadConfig(env, options.require ?? []);
  const log = createLogger(options.logLevel ?? config.logLevel);
  const { url: databaseUrl, stop: stopEmbedded } = await databaseServer(config, log);
  const sql = connect(databaseUrl, { max: options.poolSize ?? 10 });
  try {
    if (options.migrate ?? true) await migrate(sql, log);
  } catch (err) {
    await sql.end({ timeout: 1 });
    await stopEmbedded();
    throw err;
  }
  return {
    config,
    log,
    sql,
    databaseUrl,
    async close() {
      await sql.end({ timeout: 5 });
      await stopEmbedded();
    },
  };
}

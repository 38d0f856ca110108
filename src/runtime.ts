import { ConfigError, loadConfig, type Config, type Requirement } from './config.ts';
import { connect, databaseServer, type Sql } from './db.ts';
import { allPolicies, defaultPolicy, loadPolicyFile, type Policy } from './dunning/policy.ts';
import { DEFAULT_POLICY_NAME } from './dunning/segments.ts';
import { customerWideFieldsIn, parseReminderPolicy } from './reminders/policy.ts';
import { loadTemplates, TemplateError } from './reminders/templates.ts';
import { checkOutboxDir } from './reminders/transport.ts';
import { createLogger, type Logger } from './log.ts';
import { migrate } from './migrate.ts';
import { postgresDriverGuard } from './postgres-guard.ts';
import { databaseUnavailable } from './unavailable.ts';

/** What every long-lived command needs: validated config, a logger and a migrated database. */
export interface Runtime {
  config: Config;
  log: Logger;
  sql: Sql;
  /** The pool for report queries: its own when `reportPoolSize` was asked for, else `sql`. */
  reportSql: Sql;
  /** For pg-boss, which opens its own pool. */
  databaseUrl: string;
  /** The retry policy (DUNNING_POLICY_FILE, else the default); loaded when `policy` was asked for. */
  policy: Policy;
  close(): Promise<void>;
}

/**
 * The policy file and the email templates are configuration too: a broken one is reported like a
 * bad variable (one line naming it, exit 78) before the database or the queue is touched.
 */
export function checkedPolicy(config: Config): Policy {
  let policy: Policy;
  try {
    policy = config.policyFile ? loadPolicyFile(config.policyFile) : defaultPolicy();
    for (const named of allPolicies(policy)) {
      try {
        parseReminderPolicy(named.policy.reminders);
        const wide =
          named.name === DEFAULT_POLICY_NAME ? [] : customerWideFieldsIn(named.policy.reminders, policy.reminders);
        if (wide.length > 0)
          throw new Error(
            `Invalid policy: reminders.${wide[0]}: holds for the customer across all their cases, so only the default policy may set it`,
          );
      } catch (err) {
        if (named.name === DEFAULT_POLICY_NAME) throw err;
        throw new Error(`policies.${named.name}: ${(err as Error).message}`, { cause: err });
      }
    }
  } catch (err) {
    throw new ConfigError([`DUNNING_POLICY_FILE: ${(err as Error).message}`]);
  }
  try {
    loadTemplates(config.templatesDir);
  } catch (err) {
    throw new ConfigError(
      err instanceof TemplateError
        ? err.problems.map((p) => `TEMPLATES_DIR: ${p}`)
        : [`TEMPLATES_DIR: ${(err as Error).message}`],
    );
  }
  if (!config.smtpUrl) {
    try {
      checkOutboxDir(config.outboxDir);
    } catch (err) {
      throw new ConfigError([`OUTBOX_DIR: ${(err as Error).message}`]);
    }
  }
  return policy;
}

export interface RuntimeOptions {
  require?: Requirement[];
  /** Also load and check DUNNING_POLICY_FILE and TEMPLATES_DIR, with the rest of the configuration. */
  policy?: boolean;
  migrate?: boolean;
  /** Overrides LOG_LEVEL, e.g. quieter logs for reporting commands. */
  logLevel?: string;
  poolSize?: number;
  /**
   * Gives report queries a pool of their own with this many connections, so a dashboard refresh
   * (eleven queries at once) never takes the connections webhooks and workers need.
   */
  reportPoolSize?: number;
}

export async function openRuntime(env: NodeJS.ProcessEnv, options: RuntimeOptions = {}): Promise<Runtime> {
  const config = loadConfig(env, options.require ?? []);
  const policy = options.policy ? checkedPolicy(config) : defaultPolicy();
  const log = createLogger(options.logLevel ?? config.logLevel);
  const guard = postgresDriverGuard();
  if (guard === 'unknown source')
    log.warn(
      {},
      'postgres.js changed: its guard against writes to closed connections is not installed (src/postgres-guard.ts)',
    );
  if (guard === 'no load hooks')
    log.warn(
      { node: process.version },
      'Node before 22.15 has no module.registerHooks: a database restart may end this process; use Node 22.15 or newer',
    );
  const { url: databaseUrl, stop: stopEmbedded } = await databaseServer(config, log);
  const sql = connect(databaseUrl, { max: options.poolSize ?? 10 });
  // Connections open on first use: an unused report pool costs nothing.
  const reportSql = options.reportPoolSize
    ? connect(databaseUrl, { max: options.reportPoolSize, applicationName: 'dunning-reports' })
    : sql;
  const endPools = async (timeout: number) => {
    if (reportSql !== sql) await reportSql.end({ timeout });
    await sql.end({ timeout });
  };
  try {
    // The first statement: a database that cannot be reached is reported here, naming DATABASE_URL.
    if (options.migrate ?? true) await migrate(sql, log);
    else await sql`select 1`;
  } catch (err) {
    await endPools(1);
    await stopEmbedded();
    throw databaseUnavailable(databaseUrl, err) ?? err;
  }
  return {
    config,
    log,
    sql,
    reportSql,
    databaseUrl,
    policy,
    async close() {
      await endPools(5);
      await stopEmbedded();
    },
  };
}

import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultPolicy, loadPolicyFile, type Policy } from '../dunning/policy.ts';
import { DATABASE_NAME } from '../demo/database.ts';
import { renderTable } from '../reports/render-table.ts';
import { intFlag, joinNegativeNumbers } from './simulate.ts';
import { loadDevModule, UsageError, type Command } from './types.ts';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'watch a whole dunning cycle in about two minutes: sandbox Stripe, real worker, report',
  help: `Usage: dunning demo [--customers N] [--days N] [--seconds N] [--seed N] [--keep] [--exit] [...]

Runs the real worker (webhook receiver, event processor, retry planner and runner, reminder
mailer) in this process against a local Stripe sandbox and a local mail catcher, on a clock that
runs weeks of dunning in under two minutes. About a thousand subscriptions in EUR, USD, GBP and
JPY, in several time zones and in English and German, fail their renewal with realistic decline
reasons; you watch retries, reminders and recoveries, then get the recovery report, the folder
with every email sent, and the dashboard's URL and token.

Needs nothing but Node: without DATABASE_URL an embedded Postgres starts under .data/postgres.
The demo uses its own database (dunning_demo), dropped and created afresh on each run; its files
(emails, and the Stripe sandbox's state for --keep) go to .data/demo/<database>/.

  --customers  failing renewals (default 1000)
  --days       simulated days (default 28: a week of failures, then a 21-day dunning window)
  --seconds    real seconds for those days (default 75)
  --seed       random seed for the population and the card issuer (default 1)
  --policy     dunning policy JSON file (default: the built-in policy)
  --keep       keep the earlier demo's data and continue it (open cases go on), instead of
               starting clean
  --database   database name for the demo (default dunning_demo)
  --mail-dir   folder for the .eml copies of the emails (default .data/demo/<database>/mail);
               a clean run deletes the .eml files in it, nothing else
  --port       port for the webhook receiver and the dashboard (default: any free port)
  --workers    worker instances sharing the queues, like worker processes (default 4)
  --exit       exit after the report instead of serving the dashboard until Ctrl-C

Logs go to stderr at LOG_LEVEL (default error).`,
  async run(argv, env) {
    const { values } = parseArgs({
      args: joinNegativeNumbers(argv),
      options: {
        customers: { type: 'string' },
        days: { type: 'string' },
        seconds: { type: 'string' },
        seed: { type: 'string' },
        policy: { type: 'string' },
        keep: { type: 'boolean', default: false },
        database: { type: 'string', default: 'dunning_demo' },
        port: { type: 'string' },
        workers: { type: 'string' },
        exit: { type: 'boolean', default: false },
        'mail-dir': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
    const database = values.database ?? 'dunning_demo';
    if (!DATABASE_NAME.test(database))
      throw new UsageError(`--database: expected lower-case letters, digits and _, got "${database}"`);
    // The demo drops its database on every run: never one that holds something else.
    const configured = env.DATABASE_URL ? safeDatabaseName(env.DATABASE_URL) : null;
    if (database === configured || RESERVED_DATABASES.has(database)) {
      throw new UsageError(
        `--database: "${database}" is ${database === configured ? "DATABASE_URL's own database" : 'a system database'}; the demo drops and recreates its database, so pick another name`,
      );
    }
    let policy: Policy;
    try {
      policy = values.policy === undefined ? defaultPolicy() : loadPolicyFile(values.policy);
    } catch (err) {
      throw new UsageError(`--policy: ${(err as Error).message}`);
    }
    const { demoDataDir, runDemo } = await loadDevModule('dunning demo', () => import('../demo/run.ts'));
    const options = {
      customers: intFlag(values.customers, '--customers', 1000, 1, 20_000),
      days: intFlag(values.days, '--days', 28, 1, 120),
      seconds: intFlag(values.seconds, '--seconds', 75, 5, 3600),
      seed: intFlag(values.seed, '--seed', 1, 0, 2 ** 32 - 1),
      port: intFlag(values.port, '--port', 0, 0, 65_535),
      workers: intFlag(values.workers, '--workers', 4, 1, 16),
      keep: values.keep ?? false,
      database,
      mailDir: path.resolve(values['mail-dir'] ?? path.join(demoDataDir(database), 'mail')),
      stateFile: path.join(demoDataDir(database), 'sandbox.json'),
      policy,
    };
    const print = (line: string) => process.stdout.write(`${line}\n`);
    const demo = await runDemo(env, options, print);
    try {
      print('');
      print(renderTable(demo.report).trimEnd());
      print('');
      print(`Emails: ${demo.emails} caught by the local mail catcher; .eml copies in ${shortPath(demo.mailDir)}/`);
      // The dashboard takes the token as a basic-auth password, which a URL can carry.
      print(`Dashboard: ${withPassword(demo.dashboardUrl, demo.token)}`);
      print(`  token ${demo.token} (as a bearer token, or as the password with any user name)`);
      if (values.exit) return 0;
      print('The dashboard stays up until Ctrl-C.');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
        process.once('SIGHUP', () => resolve());
      });
      return 0;
    } finally {
      await demo.stop();
    }
  },
};

/** Relative to the working directory when inside it, else absolute. */
function shortPath(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? dir : rel;
}

function withPassword(url: string, token: string): string {
  const u = new URL(url);
  u.username = 'demo';
  u.password = token;
  return u.toString();
}

const RESERVED_DATABASES = new Set(['postgres', 'template0', 'template1']);

function safeDatabaseName(url: string): string | null {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1)) || null;
  } catch {
    return null; // loadConfig reports a malformed URL
  }
}

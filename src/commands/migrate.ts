import { parseArgs } from 'node:util';
import { openRuntime } from '../runtime.ts';
import type { Command } from './types.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply pending database migrations (sql/NNN_*.sql) and exit',
  help: `Usage: dunning migrate

Applies the numbered SQL migrations in sql/ that the database has not seen yet, in order, under
an advisory lock (safe to run from several processes at once). \`dunning start\` does the same.
Uses DATABASE_URL, or the embedded Postgres when it is not set.`,
  async run(argv, env) {
    parseArgs({ args: argv, options: {}, strict: true });
    const rt = await openRuntime(env, { migrate: true });
    rt.log.info('database is up to date');
    await rt.close();
    return 0;
  },
};

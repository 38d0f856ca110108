/** A `dunning <name>` subcommand. `help` is printed for `dunning <name> --help`. */
export interface Command {
  name: string;
  summary: string;
  help: string;
  /** Returns the process exit code. */
  run(argv: string[], env: NodeJS.ProcessEnv): Promise<number>;
}

/** The single positional argument a command takes, or a UsageError saying what was expected. */
export function oneArgument(positionals: string[], expected: string): string {
  const [only, ...extra] = positionals;
  if (!only || extra.length > 0) throw new UsageError(`expected exactly one ${expected}`);
  return only;
}

/** Thrown for bad command-line input: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Imports the module behind a command that needs development dependencies (the demo and the mail
 * catcher run an SMTP server and parse mail with smtp-server and mailparser). The Docker image
 * installs production dependencies only, so the CLI loads such a module only when its command
 * runs, and says what is missing instead of failing at start for every command.
 */
export async function loadDevModule<T>(command: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new UsageError(
      `${command} needs the development dependencies, which this installation leaves out (the Docker image does): ${(err as Error).message.split('\n')[0]}`,
    );
  }
}

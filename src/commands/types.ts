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

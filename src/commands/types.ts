/** A `dunning <name>` subcommand. `help` is printed for `dunning <name> --help`. */
export interface Command {
  name: string;
  summary: string;
  help: string;
  /** Returns the process exit code. */
  run(argv: string[], env: NodeJS.ProcessEnv): Promise<number>;
}

/** Thrown for bad command-line input: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { waitFor } from './db.ts';

const cli = path.resolve(import.meta.dirname, '../../src/cli.ts');

/** `node src/cli.ts ...` as its own process, its output collected line by line. */
export interface CliProcess {
  child: ChildProcess;
  lines: string[];
  exit: Promise<number | null>;
  /** Resolves with the first output line containing `text`. */
  line(text: string, timeoutMs?: number): Promise<string>;
  running(): boolean;
}

export function runCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [cli, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  const collect = (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop()!;
    lines.push(...parts.filter(Boolean));
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exit,
    line: (text, timeoutMs = 30_000) =>
      waitFor(`"${text}" from dunning ${args.join(' ')}`, () => lines.find((l) => l.includes(text)), timeoutMs),
    running: () => child.exitCode === null && child.signalCode === null,
  };
}

/** The port a `start` process with a web role listens on. */
export async function listeningPort(p: CliProcess): Promise<number> {
  return (JSON.parse(await p.line('"msg":"listening"')) as { port: number }).port;
}

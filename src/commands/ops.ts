import { backfillCommand } from './backfill.ts';
import { caseCommand } from './case.ts';
import { casesCommand } from './cases.ts';
import { pauseCommand } from './pause.ts';
import { resumeCommand } from './resume.ts';
import { retryNowCommand } from './retry-now.ts';
import type { Command } from './types.ts';

/** The retry engine's ops commands, in the order `dunning --help` lists them. */
export const opsCommands: Command[] = [
  casesCommand,
  caseCommand,
  retryNowCommand,
  pauseCommand,
  resumeCommand,
  backfillCommand,
];

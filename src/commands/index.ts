import type { Command } from './types.ts';
import { migrateCommand } from './migrate.ts';
import { reportCommand } from './report.ts';
import { mailCatcherCommand } from './mail-catcher.ts';
import { opsCommands } from './ops.ts';
import { simulateCommand } from './simulate.ts';
import { demoCommand } from './demo.ts';
import { eventsCommand } from './events.ts';
import { startCommand } from './start.ts';
import { setupCommand } from './setup.ts';
import { doctorCommand } from './doctor.ts';

/** Every subcommand; `dunning --help` lists them in this order. */
export const commands: Command[] = [
  startCommand,
  setupCommand,
  doctorCommand,
  eventsCommand,
  migrateCommand,
  reportCommand,
  mailCatcherCommand,
  ...opsCommands,
  simulateCommand,
  demoCommand,
];

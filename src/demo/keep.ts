/**
 * What `dunning demo --keep` needs beyond the kept database: the sandbox's objects (the kept cases
 * point at its invoices), the simulated time the last run stopped at, and the jobs pg-boss holds
 * for later simulated times, moved so they still fire at those simulated times.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Tx } from '../db.ts';
import { parseWithDates, stringifyWithDates, type SandboxState } from '../sandbox/index.ts';

export const DEMO_STATE_FORMAT = 1;

export interface DemoState {
  format: typeof DEMO_STATE_FORMAT;
  /** Runs of the demo on this database so far, this one included. */
  runs: number;
  /** How the run's scaled clock mapped to real time, and where it stopped. */
  clock: { simStart: number; realStart: number; scale: number; frozenAt: number };
  sandbox: SandboxState;
}

export function loadDemoState(file: string): DemoState | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read the demo's sandbox state ${file}`, { cause: err });
  }
  const state = parseWithDates<DemoState>(text);
  // The file may hold anything, whatever the type says.
  const format: unknown = state.format;
  if (format !== DEMO_STATE_FORMAT)
    throw new Error(
      `demo state ${file} has format ${String(format)}, expected ${DEMO_STATE_FORMAT}; run without --keep`,
    );
  return state;
}

/** Written whole to a temporary file first, so an interrupted save leaves the previous state. */
export function saveDemoState(file: string, state: DemoState): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, stringifyWithDates(state));
  fs.renameSync(tmp, file);
}

export function removeDemoState(file: string): void {
  fs.rmSync(file, { force: true });
}

/**
 * Open cases whose invoice the saved sandbox does not hold would be closed as "invoice not found
 * at Stripe" within seconds: refuse to continue instead (no state because the last run was
 * interrupted, or a state file from another database).
 */
export async function checkContinuity(sql: Tx, state: DemoState | null, file: string): Promise<void> {
  const open = await sql<{ invoice_id: string }[]>`select invoice_id from dunning_cases where status = 'open'`;
  if (open.length === 0) return;
  const known = new Set((state?.sandbox.invoices ?? []).map((i) => (i as { id: string }).id));
  const missing = open.filter((r) => !known.has(r.invoice_id)).length;
  if (missing === 0) return;
  const why =
    state === null
      ? `there is no saved sandbox state at ${file} (was the last run interrupted?)`
      : `the sandbox state at ${file} does not hold ${missing} of them`;
  throw new Error(
    `--keep: the kept database has ${open.length} open cases, but ${why}; run without --keep to start clean`,
  );
}

/**
 * pg-boss schedules jobs in real time, computed from the last run's clock. The new run's clock
 * resumes at the simulated instant the last one stopped at, so each queued job moves to the real
 * time at which the new clock reaches the simulated time it was planned for; jobs already due
 * then run at once.
 */
export async function moveQueuedJobs(
  sql: Tx,
  last: DemoState['clock'],
  next: { simStart: number; realStart: number; scale: number },
): Promise<number> {
  const moved = await sql`
    update pgboss.job
       set start_after = to_timestamp((
             ${next.realStart}::float8 + greatest(0,
               ${last.simStart}::float8 + (extract(epoch from start_after) * 1000 - ${last.realStart}::float8) * ${last.scale}::float8
               - ${next.simStart}::float8) / ${next.scale}::float8
           ) / 1000)
     where state in ('created', 'retry')`;
  return moved.count;
}

import { parseArgs } from 'node:util';
import type { PgBoss } from 'pg-boss';
import type { Sql } from '../db.ts';
import type { EventJob } from '../events/processor.ts';
import { eventById, listEvents, resetForReplay, type EventStatus, type ReplayResult } from '../events/store.ts';
import { jobDb, QUEUES, startQueue } from '../queue.ts';
import { openRuntime } from '../runtime.ts';
import { UsageError, type Command } from './types.ts';

const STATUSES: EventStatus[] = ['pending', 'processed', 'ignored', 'failed'];

export const eventsCommand: Command = {
  name: 'events',
  summary: 'list stored Stripe events, show one, replay a failed one',
  help: `Usage: dunning events [--failed | --status pending|processed|ignored|failed] [--limit N]
       dunning events show <event-id>
       dunning events replay <event-id> [--force]

Every Stripe event the webhook accepted is stored with its processing status. An event whose
handler kept failing is parked as "failed" after EVENT_MAX_TRIES tries, with its last error.

  (no subcommand)  list the newest events: id, type, status, tries, last error
  --failed         only failed events (same as --status failed)
  --limit N        at most N events (default 50)
  show <id>        the event's status, tries, last error and its raw payload (JSON)
  replay <id>      reset a failed event to pending and queue it again (after fixing the cause)
  --force          replay an event that is not failed (processed, ignored, or pending with its
                   job lost): its effects run again, e.g. a card update retries open invoices`,
  async run(argv, env) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        failed: { type: 'boolean', default: false },
        status: { type: 'string' },
        limit: { type: 'string', default: '50' },
        force: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: true,
    });
    const [sub, id, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    if ((sub === 'show' || sub === 'replay') && !id) throw new UsageError(`${sub}: missing <event-id>`);
    if (sub !== undefined && sub !== 'show' && sub !== 'replay') throw new UsageError(`unknown subcommand "${sub}"`);
    if (values.force && sub !== 'replay') throw new UsageError('--force goes with replay');
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw new UsageError(`--limit: expected a whole number from 1 to 10000, got "${values.limit}"`);
    const status = values.failed ? 'failed' : values.status;
    if (status !== undefined && !STATUSES.includes(status as EventStatus)) {
      throw new UsageError(`--status: expected one of ${STATUSES.join(', ')}, got "${status}"`);
    }

    const rt = await openRuntime(env, { logLevel: 'warn' });
    try {
      if (sub === 'show') return await show(rt.sql, id!);
      if (sub === 'replay') {
        const boss = await startQueue(rt.databaseUrl, rt.log);
        try {
          return await replay(rt.sql, boss, id!, values.force);
        } finally {
          await boss.stop({ graceful: true, timeout: 5_000 });
        }
      }
      const rows = await listEvents(rt.sql, { ...(status ? { status: status as EventStatus } : {}), limit });
      if (rows.length === 0) {
        console.log(status ? `No ${status} events.` : 'No events stored yet.');
        return 0;
      }
      for (const r of rows) {
        const error = r.lastError ? `  ${r.lastError.split('\n')[0]!.slice(0, 120)}` : '';
        console.log(`${r.id}  ${r.type}  ${r.status}  tries=${r.tries}  ${r.created.toISOString()}${error}`);
      }
      return 0;
    } finally {
      await rt.close();
    }
  },
};

async function show(sql: Sql, id: string): Promise<number> {
  const ev = await eventById(sql, id);
  if (!ev) {
    console.error(`No stored event ${id}.`);
    return 1;
  }
  console.log(`id:          ${ev.id}
type:        ${ev.type}
created:     ${ev.created.toISOString()}
received:    ${ev.receivedAt.toISOString()}
status:      ${ev.status}
tries:       ${ev.tries}
processed:   ${ev.processedAt?.toISOString() ?? '-'}
last error:  ${ev.lastError ?? '-'}
payload:
${JSON.stringify(ev.payload, null, 2)}`);
  return 0;
}

/** Reset and enqueue commit together: a replayed event always has exactly one new job. */
export async function replayEvent(
  sql: Sql,
  boss: Pick<PgBoss, 'send'>,
  id: string,
  force = false,
): Promise<ReplayResult> {
  return await sql.begin<ReplayResult>(async (tx) => {
    const result = await resetForReplay(tx, id, force);
    if (result === 'reset')
      await boss.send(QUEUES.stripeEvents, { eventIds: [id] } satisfies EventJob, { db: jobDb(tx) });
    return result;
  });
}

async function replay(sql: Sql, boss: PgBoss, id: string, force: boolean): Promise<number> {
  const result = await replayEvent(sql, boss, id, force);
  if (result === 'missing') {
    console.error(`No stored event ${id}.`);
    return 1;
  }
  if (result !== 'reset') {
    console.error(
      `Event ${id} is ${result.refused}, not failed: replaying it applies it again. Add --force if that is what you want.`,
    );
    return 1;
  }
  console.log(`Event ${id} queued again; a running worker will process it.`);
  return 0;
}

import { randomUUID } from 'node:crypto';
import type { Db as IDatabase, PgBoss } from 'pg-boss';
import type Stripe from 'stripe';
import type { Sql } from '../db.ts';
import { eventInsertStatement, uniqueById, type Statement } from '../events/store.ts';
import { QUEUES } from '../queue.ts';
import type { EventJob } from '../events/processor.ts';

/**
 * Stores verified events and enqueues their jobs, committing concurrent deliveries together (group
 * commit): while some transactions are in flight, new arrivals wait and go into the next one. Each
 * caller hears back only after the commit that holds its event.
 */
export interface EventWriter {
  /** Resolves true when the event was new, false for a duplicate id; rejects when nothing was committed. */
  write(event: Stripe.Event, raw: string): Promise<boolean>;
  /** What it holds now: deliveries waiting, transactions in flight, and those given up on that have not answered. */
  load(): { queued: number; inFlight: number; abandoned: number };
}

interface Pending {
  event: Stripe.Event;
  raw: string;
  resolve(inserted: boolean): void;
  reject(err: unknown): void;
}

export interface EventWriterOptions {
  /** Events per transaction at most. */
  maxBatch?: number;
  /** Transactions in flight at once; keep it below the pool size. */
  maxInFlight?: number;
  /**
   * While a transaction is in flight, another one starts only with at least this many events;
   * fewer wait for the commit in flight (one statement, ~2 ms). Without it, the first delivery of
   * each burst takes the free slot alone, and the rest queue behind two transactions.
   */
  minBatchWhileBusy?: number;
  /**
   * A caller hears "not stored" after this long, and its event leaves the queue if no transaction
   * has taken it yet (nobody waits for it any more; Stripe redelivers). A transaction that has not
   * answered by then gives up its slot: a connection hung on a dead server must not hold back every
   * later delivery until TCP gives up on it, minutes later.
   */
  timeoutMs?: number;
  /** Deliveries waiting at most; more are refused at once, so memory stays bounded while the database is away. */
  maxQueued?: number;
  /**
   * Transactions given up on (past `timeoutMs`) that have not answered yet, at most; beyond it
   * deliveries are refused at once. Each holds a pooled connection and its batch's bodies until
   * the database answers or TCP gives up, so without a bound a hung database would take every
   * connection and the memory of every batch sent to it meanwhile.
   */
  maxAbandoned?: number;
}

export class EventNotStored extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventNotStored';
  }
}

/** Where pg-boss's job insert reads its jobs (one JSON array parameter); checked, not assumed. */
const JOBS_PARAM = '$1::text::json';

/**
 * A pg-boss `Db` that runs the job insert pg-boss hands it as ONE statement together with the event
 * insert:
 *
 *   with new_events as (insert into stripe_events ... returning id),
 *        jobs as (<pg-boss's insert>, its one job given the new ids as data.eventIds)
 *   select id from new_events
 *
 * One statement is one transaction: the events and the job that names them commit together or not
 * at all, and a batch of duplicates gets no job. One round trip instead of four (begin, events,
 * job, commit), and one job row per batch instead of one per event: the job table's four indexes
 * were half of what a delivery cost the database. The statement answers the ids of the new events
 * (in the `id` column pg-boss hands back), which is what the writer needs to tell duplicates apart.
 * Prepared: the text never changes and planning it costs more than running it.
 */
function withEventsDb(sql: Sql, events: Statement): IDatabase {
  return {
    executeSql: async (text: string, values: unknown[] = []) => {
      const insertJobs = text.trimStart();
      const at = insertJobs.indexOf(JOBS_PARAM);
      if (
        !/^insert\s/i.test(insertJobs) ||
        !/\sreturning\s+id\s*$/i.test(insertJobs) ||
        at < 0 ||
        insertJobs.indexOf(JOBS_PARAM, at + 1) >= 0 ||
        /\$(?!1\b)\d/.test(insertJobs) ||
        values.length !== 1
      ) {
        throw new Error(
          'pg-boss job insert no longer has the shape the webhook writer embeds (one INSERT ... RETURNING id over one $1 job array)',
        );
      }
      const p = events.values.length + 1;
      const jobs = `(select coalesce(json_agg(jsonb_set(j::jsonb, '{data,eventIds}', n.ids)), '[]')
                       from json_array_elements($${p}::text::json) j,
                            (select jsonb_agg(id) as ids from new_events) n
                      where n.ids is not null)::text::json`;
      const statement = `with new_events as (${events.text}),
        jobs as (${insertJobs.slice(0, at)}${jobs}${insertJobs.slice(at + JOBS_PARAM.length)})
        select id from new_events`;
      const rows = await sql.unsafe(statement, [...events.values, values[0]] as never[], { prepare: true });
      return { rows: [...rows] };
    },
  };
}

/**
 * Stores the events that are new and one job naming all of them, atomically (one statement);
 * returns the ids that were new. Ids repeated within `items` are stored once.
 */
export async function storeEvents(
  sql: Sql,
  boss: Pick<PgBoss, 'insert'>,
  items: ReadonlyArray<{ event: Stripe.Event; raw: string }>,
): Promise<Set<string>> {
  const unique = uniqueById(items);
  if (unique.length === 0) return new Set();
  // The statement fills in data.eventIds with the ids that turn out to be new.
  const job: { id: string; data: EventJob } = { id: randomUUID(), data: { eventIds: [] } };
  const newIds = await boss.insert(QUEUES.stripeEvents, [job], {
    db: withEventsDb(sql, eventInsertStatement(unique)),
    returnId: true,
  });
  return new Set(newIds ?? []);
}

export function createEventWriter(
  sql: Sql,
  boss: Pick<PgBoss, 'insert'>,
  options: EventWriterOptions = {},
): EventWriter {
  const maxBatch = options.maxBatch ?? 64;
  const maxInFlight = options.maxInFlight ?? 2;
  const minBatchWhileBusy = options.minBatchWhileBusy ?? 4;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const maxQueued = options.maxQueued ?? 10_000;
  const maxAbandoned = options.maxAbandoned ?? 2 * maxInFlight;
  const queue: Pending[] = [];
  let inFlight = 0;
  let abandoned = 0;

  const settle = (batch: Pending[], inserted: Set<string>) => {
    // Within one batch a repeated id is new only for its first delivery.
    const claimed = new Set<string>();
    for (const p of batch) {
      const isNew = inserted.has(p.event.id) && !claimed.has(p.event.id);
      if (isNew) claimed.add(p.event.id);
      p.resolve(isNew);
    }
  };

  const flush = async (batch: Pending[]) => {
    try {
      settle(batch, await storeEvents(sql, boss, batch));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // One bad event must not fail its neighbours: retry each alone.
      await Promise.all(
        batch.map(async (p) => {
          try {
            settle([p], await storeEvents(sql, boss, [p]));
          } catch (e) {
            p.reject(e);
          }
        }),
      );
    }
  };

  const pump = () => {
    while (inFlight < maxInFlight && queue.length > 0 && (inFlight === 0 || queue.length >= minBatchWhileBusy)) {
      const batch = queue.splice(0, maxBatch);
      inFlight += 1;
      let released = false;
      let settled = false;
      const release = () => {
        if (released) return;
        released = true;
        clearTimeout(slotTimer);
        inFlight -= 1;
        if (!settled) abandoned += 1;
        pump();
      };
      // Its callers have all been told "not stored" by then; whatever the statement does later is
      // harmless (committed: a redelivery is a duplicate; failed: Stripe redelivers).
      const slotTimer = setTimeout(release, timeoutMs);
      void flush(batch).finally(() => {
        settled = true;
        if (released) abandoned -= 1;
        else release();
      });
    }
  };

  return {
    load: () => ({ queued: queue.length, inFlight, abandoned }),
    write(event, raw) {
      if (queue.length >= maxQueued) {
        return Promise.reject(new EventNotStored(`${queue.length} deliveries already wait for the database`));
      }
      if (abandoned >= maxAbandoned) {
        return Promise.reject(new EventNotStored(`${abandoned} transactions are still waiting for the database`));
      }
      return new Promise<boolean>((resolve, reject) => {
        const timer = setTimeout(() => {
          const at = queue.indexOf(pending);
          if (at >= 0) queue.splice(at, 1);
          reject(new EventNotStored(`storing the event took over ${timeoutMs} ms`));
        }, timeoutMs);
        const pending: Pending = {
          event,
          raw,
          resolve: (inserted) => {
            clearTimeout(timer);
            resolve(inserted);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err instanceof Error ? err : new Error('storing the event failed', { cause: err }));
          },
        };
        queue.push(pending);
        pump();
      });
    },
  };
}

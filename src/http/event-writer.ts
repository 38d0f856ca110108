import type { Db as IDatabase, PgBoss } from 'pg-boss';
import type Stripe from 'stripe';
import type { Sql, Tx } from '../db.ts';
import { insertEvents } from '../events/store.ts';
import { QUEUES } from '../queue.ts';

/**
 * Stores verified events and enqueues their jobs, committing concurrent deliveries together (group
 * commit): while some transactions are in flight, new arrivals wait and go into the next one. Each
 * caller hears back only after the commit that holds its event.
 */
export interface EventWriter {
  /** Resolves true when the event was new, false for a duplicate id; rejects when nothing was committed. */
  write(event: Stripe.Event, raw: string): Promise<boolean>;
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
}

/**
 * Like `jobDb` in src/queue.ts, but as a prepared statement: pg-boss's insert is a large query
 * whose planning cost more than its execution on the hot webhook path, and its text never changes.
 */
function preparedJobDb(tx: Tx): IDatabase {
  return {
    executeSql: async (text: string, values: unknown[] = []) => {
      const rows = await tx.unsafe(text, values.map((v) => (v === undefined ? null : v)) as never[], { prepare: true });
      return { rows: [...rows] };
    },
  };
}

/** One transaction: the events that are new, and exactly one job for each of them. */
export async function storeEvents(sql: Sql, boss: Pick<PgBoss, 'insert'>, items: ReadonlyArray<{ event: Stripe.Event; raw: string }>): Promise<Set<string>> {
  return (await sql.begin(async (tx) => {
    const inserted = await insertEvents(tx, items);
    if (inserted.size > 0) {
      await boss.insert(QUEUES.stripeEvents, [...inserted].map((eventId) => ({ data: { eventId } })), { db: preparedJobDb(tx) });
    }
    return inserted;
  })) as Set<string>;
}

export function createEventWriter(sql: Sql, boss: Pick<PgBoss, 'insert'>, options: EventWriterOptions = {}): EventWriter {
  const maxBatch = options.maxBatch ?? 64;
  const maxInFlight = options.maxInFlight ?? 2;
  const queue: Pending[] = [];
  let inFlight = 0;

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
      await Promise.all(batch.map(async (p) => {
        try {
          settle([p], await storeEvents(sql, boss, [p]));
        } catch (e) {
          p.reject(e);
        }
      }));
    }
  };

  const pump = () => {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, maxBatch);
      inFlight += 1;
      void flush(batch).finally(() => {
        inFlight -= 1;
        pump();
      });
    }
  };

  return {
    write(event, raw) {
      return new Promise<boolean>((resolve, reject) => {
        queue.push({ event, raw, resolve, reject });
        pump();
      });
    },
  };
}

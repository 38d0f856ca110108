import type Stripe from 'stripe';
import type { Tx } from '../db.ts';

/** SQL for the raw event store. Every function takes the connection first. */

export type EventStatus = 'pending' | 'processed' | 'ignored' | 'failed';

export interface StoredEvent {
  id: string;
  type: string;
  created: Date;
  status: EventStatus;
  tries: number;
  receivedAt: Date;
  processedAt: Date | null;
  lastError: string | null;
  payload: Stripe.Event;
}

type Row = Record<string, unknown>;

function toEvent(r: Row): StoredEvent {
  return {
    id: r.id as string,
    type: r.type as string,
    created: r.created as Date,
    status: r.status as EventStatus,
    tries: Number(r.tries),
    receivedAt: r.received_at as Date,
    processedAt: (r.processed_at as Date | null) ?? null,
    lastError: (r.last_error as string | null) ?? null,
    payload: r.payload as Stripe.Event,
  };
}

/** Stores the event once; returns false for a duplicate id (a redelivery: nothing more to do). */
export async function insertEvent(tx: Tx, event: Stripe.Event): Promise<boolean> {
  const account = typeof event.account === 'string' ? event.account : null;
  const rows = await tx`
    insert into stripe_events (id, type, created, livemode, account, api_version, payload)
    values (${event.id}, ${event.type}, ${new Date(event.created * 1000)}, ${event.livemode}, ${account},
            ${event.api_version ?? null}, ${tx.json(event as never)})
    on conflict (id) do nothing
    returning id`;
  return rows.length > 0;
}

/** One statement's text (placeholders $1..$n) and its values, for callers that run it inside a larger one. */
export interface Statement {
  text: string;
  values: unknown[];
}

/**
 * A JSON `\u0000` escape that is not itself escaped (an even run of backslashes before it). jsonb has
 * no NUL character and refuses the whole document, so Stripe would redeliver such an event for
 * three days to no avail; U+FFFD keeps the rest of it.
 */
const JSON_NUL = /(?<=(?:^|[^\\])(?:\\\\)*)\\u0000/g;

/** The body as jsonb will take it: unchanged unless it holds an escaped NUL. */
export function storableJson(raw: string): string {
  return raw.includes('\\u0000') ? raw.replace(JSON_NUL, '\\ufffd') : raw;
}

/**
 * The multi-row insert of raw events, `returning id` of the rows that were new. The bodies travel
 * exactly as Stripe sent them, joined into ONE json array parameter, and the columns are read from
 * it by Postgres: no per-field arrays to escape and no second serialisation on the receiver, whose
 * CPU is the webhook's bottleneck. Ids repeated within `items` must have been removed by the
 * caller (see `uniqueById`).
 */
export function eventInsertStatement(items: ReadonlyArray<{ raw: string }>): Statement {
  return {
    text: `insert into stripe_events (id, type, created, livemode, account, api_version, payload)
      select e->>'id', e->>'type', to_timestamp((e->>'created')::float8), (e->>'livemode')::boolean,
             case when jsonb_typeof(e->'account') = 'string' then e->>'account' end, e->>'api_version', e
        from jsonb_array_elements($1::text::jsonb) e
      on conflict (id) do nothing
      returning id`,
    values: [`[${items.map((x) => storableJson(x.raw)).join(',')}]`],
  };
}

/** The first item of each id, in order. */
export function uniqueById<T extends { event: Stripe.Event }>(items: ReadonlyArray<T>): T[] {
  const seen = new Set<string>();
  return items.filter((x) => !seen.has(x.event.id) && seen.add(x.event.id));
}

export async function eventById(tx: Tx, id: string, lock = false): Promise<StoredEvent | null> {
  const rows = lock
    ? await tx`select * from stripe_events where id = ${id} for update`
    : await tx`select * from stripe_events where id = ${id}`;
  return rows[0] ? toEvent(rows[0]) : null;
}

export async function markDone(tx: Tx, id: string, status: 'processed' | 'ignored', at: Date): Promise<void> {
  await tx`
    update stripe_events set status = ${status}, tries = tries + 1, processed_at = ${at}, last_error = null
     where id = ${id}`;
}

/** Counts a failed try in its own statement (the handler's transaction was rolled back). */
export async function recordFailure(tx: Tx, id: string, message: string, parked: boolean): Promise<number> {
  const rows = await tx`
    update stripe_events set tries = tries + 1, last_error = ${message.slice(0, 2000)},
           status = case when ${parked} then 'failed' else status end
     where id = ${id}
    returning tries`;
  return Number(rows[0]?.tries ?? 0);
}

export interface EventSummary {
  id: string;
  type: string;
  created: Date;
  status: EventStatus;
  tries: number;
  lastError: string | null;
}

export async function listEvents(tx: Tx, filter: { status?: EventStatus; limit: number }): Promise<EventSummary[]> {
  const rows = filter.status
    ? await tx`select id, type, created, status, tries, last_error from stripe_events
                where status = ${filter.status} order by received_at desc limit ${filter.limit}`
    : await tx`select id, type, created, status, tries, last_error from stripe_events
                order by received_at desc limit ${filter.limit}`;
  return rows.map((r) => ({
    id: r.id as string,
    type: r.type as string,
    created: r.created as Date,
    status: r.status as EventStatus,
    tries: Number(r.tries),
    lastError: (r.last_error as string | null) ?? null,
  }));
}

export type ReplayResult = 'reset' | 'missing' | { refused: EventStatus };

/**
 * Puts an event back to `pending` with a fresh try budget. Only a failed event, unless `force`:
 * replaying an applied one runs its effects again (a card-update retry, a reminder plan).
 */
export async function resetForReplay(tx: Tx, id: string, force = false): Promise<ReplayResult> {
  const rows = await tx`
    with target as (select id, status from stripe_events where id = ${id} for update)
    update stripe_events e set status = 'pending', tries = 0, last_error = null, processed_at = null
      from target t
     where e.id = t.id and (t.status = 'failed' or ${force})
    returning e.id`;
  if (rows.length > 0) return 'reset';
  const [current] = await tx`select status from stripe_events where id = ${id}`;
  return current ? { refused: current.status as EventStatus } : 'missing';
}

/**
 * Parks pending events older than `graceSeconds` that no live job will ever apply: their job
 * ended without them (a worker killed mid-event until pg-boss ran out of tries, a job deleted by
 * hand). Without this they would stay `pending` forever, out of `dunning events --failed`.
 * Returns the parked ids. One hashed anti-join over the live jobs, so a backlog costs one scan.
 */
export async function parkOrphans(tx: Tx, graceSeconds: number, limit = 500): Promise<string[]> {
  // NOT EXISTS, not NOT IN: the planner makes it a hash anti-join whatever the backlog, where NOT IN
  // over a big id list stops hashing and rescans the list for every pending event.
  const rows = await tx`
    update stripe_events set status = 'failed', last_error = 'its processing job ended without applying it (worker killed or job removed); replay it'
     where id in (
       select s.id from stripe_events s
        where s.status = 'pending' and s.received_at < now() - make_interval(secs => ${graceSeconds})
          and not exists (
            select 1 from pgboss.job j,
                   jsonb_array_elements_text(coalesce(j.data->'eventIds', jsonb_build_array(j.data->'eventId'))) e(id)
             where j.name = 'stripe-events' and j.state < 'completed' and e.id = s.id)
        limit ${limit})
       and status = 'pending'
    returning id`;
  return rows.map((r) => r.id as string);
}

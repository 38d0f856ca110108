import { inject } from 'vitest';
import { connect, withDatabase, type Sql } from '../../src/db.ts';

export interface TestDatabase {
  url: string;
  sql: Sql;
  drop(): Promise<void>;
}

let counter = 0;

/**
 * A fresh, migrated database (pg-boss schema included) for one test file. Set KEEP_TEST_DB=1 to keep
 * it after the run for a look.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('adminUrl');
  const template = inject('templateDb');
  const parentPid = template.split('_')[2];
  const name = `dunning_t_${parentPid}_${process.pid}_${counter++}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = connect(adminUrl, { max: 1 });
  try {
    await admin.unsafe(`create database "${name}" template "${template}"`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const sql = connect(url, { max: 5 });
  return {
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      if (process.env.KEEP_TEST_DB) return;
      const a = connect(adminUrl, { max: 1 });
      try {
        await a.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** Polls `check` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
}

/** How many stripe-events jobs name this event (a job names the events of one webhook batch). */
export async function jobsNaming(
  sql: Sql,
  eventId: string,
  states: readonly string[] = ['created', 'retry', 'active', 'completed', 'cancelled', 'failed'],
): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pgboss.job
     where name = 'stripe-events' and state::text in ${sql(states)}
       and (data->'eventIds' ? ${eventId} or data->>'eventId' = ${eventId})`;
  return row?.n ?? 0;
}

/**
 * Resolves once a backend of this database waits for a lock: the point a test must reach before it
 * lets the lock holder go (a sleep is not enough on a busy machine). Pass `query` to wait for one
 * statement in particular.
 */
export async function waitForLockWait(sql: Sql, query = '', timeoutMs = 10_000): Promise<void> {
  await waitFor(
    `a backend waiting for a lock${query ? ` in "${query}"` : ''}`,
    async () => {
      const [row] = await sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock' and query ilike ${`%${query}%`}`;
      return row!.n > 0;
    },
    timeoutMs,
  );
}

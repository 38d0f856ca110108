import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';

/**
 * postgres.js 3.4.9 (porsager/postgres#1189, #823; the fix proposed in #1218, unreleased in 3.4.10)
 * writes a transaction's BEGIN and only then, at the end of an `&&` chain that also asks whether
 * the connection's pipeline has room, reserves the connection for it. When the pipeline is full or
 * the socket's buffer is (the demo hit it under a burst of webhooks: "UNSAFE_TRANSACTION: Only use
 * sql.begin, sql.reserved or max: 1" on an event), the reservation is skipped: `sql.begin` throws,
 * the server stays inside the transaction, and the connection goes back to the pool, where other
 * queries then run inside it, their writes held uncommitted (or rolled back) and their locks kept.
 * scripts/patch-postgres.cjs reserves the connection whenever BEGIN was written.
 */
const adminUrl = inject('adminUrl');
const pools: postgres.Sql[] = [];
const pool = (options: postgres.Options<Record<string, never>>) => {
  const sql = postgres(adminUrl, { onnotice: () => {}, ...options });
  pools.push(sql);
  return sql;
};
afterAll(async () => {
  for (const sql of pools) await sql.end({ timeout: 5 });
});

describe('sql.begin at a full pipeline (postgres.js, patched)', () => {
  it('reserves the connection even when BEGIN fills the pipeline: the transaction runs and commits', async () => {
    // No room at all: every BEGIN is written into a full pipeline, the deterministic form of the race.
    const sql = pool({ max: 2, max_pipeline: 0 });
    const answer = await sql.begin(async (tx) => {
      const [row] = await tx<{ inside: boolean }[]>`select now() = statement_timestamp() as inside`;
      return row?.inside;
    });
    // Inside a transaction now() is its start, earlier than the statement's own timestamp.
    expect(answer).toBe(false);
  });
});

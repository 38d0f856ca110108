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
// max_pipeline is read by the driver (src/index.js) but absent from its README and its types.
const noPipelineRoom: postgres.Options<Record<string, never>> & { max_pipeline: number } = {
  max: 2,
  // No room at all: every BEGIN is written into a full pipeline, the deterministic form of the race.
  max_pipeline: 0,
  onnotice: () => {},
};
const sql = postgres(adminUrl, noPipelineRoom);
afterAll(async () => {
  await sql.end({ timeout: 5 });
});

describe('sql.begin at a full pipeline (postgres.js, patched)', () => {
  it('reserves the connection even when BEGIN fills the pipeline: both statements run in one transaction', async () => {
    const ids = await sql.begin(async (tx) => {
      const [first] = await tx<{ id: string }[]>`select pg_current_xact_id()::text as id`;
      const [second] = await tx<{ id: string }[]>`select pg_current_xact_id()::text as id`;
      return [first?.id, second?.id];
    });
    expect(ids[0]).toBeDefined();
    expect(ids[1]).toBe(ids[0]);
  });
});

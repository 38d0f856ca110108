/**
 * The shell around the learned timing (src/dunning/adaptive.ts): a scheduled job counts the
 * merchant's own retries from the ledger and stores the counts as a snapshot; the planner's shell
 * reads the newest snapshot, cached for a minute, and hands it to the pure planner. The report
 * reads the same row, so "in use, computed when, learned from how many" costs one indexed read.
 */
import { performance } from 'node:perf_hooks';
import type { PgBoss } from 'pg-boss';
import type { Clock } from '../clock.ts';
import type { Sql, Tx } from '../db.ts';
import type { Logger } from '../log.ts';
import { QUEUES } from '../queue.ts';
import {
  ADAPTIVE_DEFAULTS,
  addObservation,
  categoryInUse,
  DELAY_BUCKETS_HOURS,
  emptyCounts,
  PAYDAY_BUCKETS,
  LEARNED_CATEGORIES,
  retriesByCategory,
  tableFromCounts,
  type AdaptiveMode,
  type LearnedCategory,
  type LearnedTable,
  type TableCounts,
} from './adaptive.ts';
import { classifyDecline } from './declines.ts';

/** Retries of the last 180 days are learned from: recent enough to follow issuers, long enough for a small merchant. */
export const LEARN_DAYS = 180;
/** Snapshots kept, newest first: a month of daily refreshes, for a look back. */
const KEEP_SNAPSHOTS = 30;
const DAY_MS = 86_400_000;

export interface Snapshot {
  id: number;
  computedAt: Date;
  since: Date;
  mode: AdaptiveMode;
  retries: Record<LearnedCategory, number>;
  inUse: Record<LearnedCategory, boolean>;
  counts: TableCounts;
}

interface PairRow {
  declineCode: string | null;
  failureCode: string | null;
  adviceCode: string | null;
  networkAdviceCode: string | null;
  networkDeclineCode: string | null;
  cardBrand: string | null;
  declines: number;
  bucket: number;
  hour: number;
  fromPayday: number | null;
  won: boolean;
  n: number;
}

/**
 * Every scheduled retry since `since` of the card that was just declined, grouped by that
 * decline's codes, the declines of the invoice so far, the delay bucket since it and the local hour of the retry (the customer's zone,
 * else the merchant's), as `observationsFromLedger` defines them. A retry after a card change, a
 * backup-card or manual charge is not timing evidence. Both cohorts count: the holdout's fixed days
 * are timing evidence too. One pass over the attempts of the period (`payment_attempts_finished`).
 */
export async function countRetries(sql: Sql, since: Date, merchantTimeZone: string): Promise<TableCounts> {
  const rows = await sql.begin(async (tx) => {
    // The window's sort and the grouping run in memory instead of spilling to disk (measured in
    // docs/benchmarks.md); local to this transaction only.
    await tx`set local work_mem = '64MB'`;
    return tx<PairRow[]>`
    with zones as materialized (select name from pg_timezone_names),
    counted as (
      select a.case_id, a.invoice_id, a.attempt_no, a.source, a.status, a.payment_method, a.decline_category,
             c.customer_id, c.opened_at,
             coalesce(a.started_at, a.finished_at, a.planned_at, a.created_at) as at,
             coalesce(z.name, ${merchantTimeZone}) as zone,
             a.decline_code, a.failure_code, a.advice_code, a.network_advice_code, a.network_decline_code, a.card_brand
        from payment_attempts a
        join dunning_cases c on c.id = a.case_id
        left join customers cu on cu.id = c.customer_id
        left join zones z on z.name = cu.time_zone
       where a.status in ('succeeded', 'declined') and a.finished_at >= ${since}
    ), paired as (
      select k.*,
             lag(status) over w as p_status, lag(payment_method) over w as p_pm, lag(at) over w as p_at,
             lag(decline_code) over w as p_decline, lag(failure_code) over w as p_failure,
             lag(advice_code) over w as p_advice, lag(network_advice_code) over w as p_nadvice,
             lag(network_decline_code) over w as p_ndecline, lag(card_brand) over w as p_brand,
             lag(decline_category) over w as p_category,
             count(*) filter (where status = 'declined' and source <> 'backup_card')
               over (w rows between unbounded preceding and 1 preceding) as p_declines
        from counted k
      window w as (partition by invoice_id order by at, attempt_no)
    ), retries as materialized (
      select * from paired p
       where p.source = 'scheduled' and p.p_status = 'declined'
         and coalesce(p.p_pm, '') = coalesce(p.payment_method, '')
         and coalesce(p.p_decline, p.p_failure, p.p_advice, p.p_nadvice, p.p_ndecline) is not null
    ), case_paydays as materialized (
      -- The customer's payday as it was known when the case opened: looked up once per case with a
      -- funds retry, not per retry (a lookup per retry made the refresh over three times slower).
      select f.case_id, o.paid_at
        from (select distinct case_id, customer_id, opened_at from retries where p_category = 'funds') f
        cross join lateral customer_observed_payday(f.customer_id, f.opened_at) o
    )
    select r.p_decline as "declineCode", r.p_failure as "failureCode", r.p_advice as "adviceCode",
           r.p_nadvice as "networkAdviceCode", r.p_ndecline as "networkDeclineCode", r.p_brand as "cardBrand",
           r.p_declines::int as declines,
           greatest(width_bucket(extract(epoch from r.at - r.p_at)::float8 / 3600, ${DELAY_BUCKETS_HOURS as number[]}::float8[]) - 1, 0)::int as bucket,
           extract(hour from r.at at time zone r.zone)::int as hour,
           -- least() skips nulls: an unknown payday must stay null, not become the last bucket.
           case when pd.paid_at is not null and r.p_category = 'funds'
                then least(days_since_payday((r.at at time zone r.zone)::date,
                                             extract(day from pd.paid_at at time zone r.zone)::int), ${PAYDAY_BUCKETS - 1})
           end as "fromPayday",
           r.status = 'succeeded' as won, count(*)::int as n
      from retries r
      left join case_paydays pd on pd.case_id = r.case_id
     group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11`;
  });
  const counts = emptyCounts();
  for (const r of rows) {
    const { category } = classifyDecline(r);
    if (!(LEARNED_CATEGORIES as readonly string[]).includes(category)) continue;
    addObservation(
      counts,
      {
        category: category as LearnedCategory,
        hoursSinceDecline: DELAY_BUCKETS_HOURS[r.bucket] ?? 0,
        declinesSoFar: r.declines,
        localHour: r.hour,
        daysFromPayday: r.fromPayday,
      },
      r.won ? r.n : 0,
      r.n,
    );
  }
  return counts;
}

export interface RefreshDeps {
  sql: Sql;
  clock: Clock;
  log: Logger;
  /**
   * The default policy's `retry.adaptive`, stored with the snapshot (and its `in_use` under it). The
   * report decides "in use" per policy at read time (src/reports/adaptive.ts) and takes this mode
   * only for a default policy that had no case in the report's period.
   */
  mode: AdaptiveMode;
  merchantTimeZone: string;
  /** Told after a refresh, so this process plans with the new table at once. */
  source?: Pick<LearnedSource, 'invalidate'>;
}

/** Counts the ledger and stores a new snapshot; older ones beyond the newest 30 are dropped. */
export async function refreshAdaptive(deps: RefreshDeps): Promise<Snapshot> {
  const computedAt = deps.clock.now();
  const since = new Date(computedAt.getTime() - LEARN_DAYS * DAY_MS);
  const started = performance.now();
  const counts = await countRetries(deps.sql, since, deps.merchantTimeZone);
  const table = tableFromCounts(counts, computedAt);
  const retries = retriesByCategory(counts);
  const inUse = Object.fromEntries(LEARNED_CATEGORIES.map((c) => [c, categoryInUse(table, c, deps.mode)])) as Record<
    LearnedCategory,
    boolean
  >;
  const [row] = await deps.sql<{ id: string }[]>`
    insert into adaptive_snapshots (computed_at, since, mode, retries, in_use, counts)
    values (${computedAt}, ${since}, ${deps.mode}, ${deps.sql.json(retries)}, ${deps.sql.json(inUse)},
            ${deps.sql.json(counts as never)})
    returning id`;
  await deps.sql`
    delete from adaptive_snapshots where id not in
      (select id from adaptive_snapshots order by computed_at desc, id desc limit ${KEEP_SNAPSHOTS})`;
  deps.source?.invalidate();
  deps.log
    .child({ component: 'adaptive-refresh' })
    .info({ retries, inUse, mode: deps.mode, ms: Math.round(performance.now() - started) }, 'learned timing refreshed');
  return { id: Number(row?.id), computedAt, since, mode: deps.mode, retries, inUse, counts };
}

interface SnapshotRow {
  id: string;
  computed_at: Date;
  since: Date;
  mode: AdaptiveMode;
  retries: Record<LearnedCategory, number>;
  in_use: Record<LearnedCategory, boolean>;
  counts: TableCounts;
}

/** The newest snapshot, or null before the first refresh: one row through `adaptive_snapshots_newest`. */
export async function latestSnapshot(tx: Tx): Promise<Snapshot | null> {
  const [r] = await tx<SnapshotRow[]>`
    select id, computed_at, since, mode, retries, in_use, counts
      from adaptive_snapshots order by computed_at desc, id desc limit 1`;
  if (!r) return null;
  return {
    id: Number(r.id),
    computedAt: r.computed_at,
    since: r.since,
    mode: r.mode,
    retries: r.retries,
    inUse: r.in_use,
    counts: r.counts,
  };
}

/** The learned table the planner gets: the newest snapshot's counts under the stated prior. */
export interface LearnedSource {
  get(tx: Tx): Promise<LearnedTable | null>;
  /** Drops the cached table: the next plan reads the newest snapshot. */
  invalidate(): void;
}

/**
 * One read per `ttlMs` (default a minute) per process, on the planning transaction: a refresh
 * reaches every worker within the minute, and a burst of plans costs one read. The cache runs on
 * the process's monotonic clock, not the (possibly simulated) business clock.
 */
export function createLearnedSource(o: { ttlMs?: number } = {}): LearnedSource {
  const ttl = o.ttlMs ?? 60_000;
  let cached: { until: number; table: LearnedTable | null } | null = null;
  return {
    async get(tx) {
      if (cached && performance.now() < cached.until) return cached.table;
      const snap = await latestSnapshot(tx);
      const table = snap ? tableFromCounts(snap.counts, snap.computedAt, ADAPTIVE_DEFAULTS) : null;
      cached = { until: performance.now() + ttl, table };
      return table;
    },
    invalidate() {
      cached = null;
    },
  };
}

/**
 * The refresh as a pg-boss schedule: once a day (one job across all workers, in the merchant's
 * zone, early morning before the local retry window); a day missed while no worker ran is made up
 * once at start. A database without any snapshot gets one at start, so a new install does not wait
 * a day to say how many retries it has.
 */
export async function startAdaptiveRefresh(
  deps: RefreshDeps & { boss: PgBoss; cron?: string },
): Promise<() => Promise<void>> {
  await deps.boss.schedule(QUEUES.adaptiveRefresh, deps.cron ?? '30 4 * * *', null, {
    tz: deps.merchantTimeZone,
    missed: 'once',
  });
  await deps.boss.work(QUEUES.adaptiveRefresh, async () => {
    await refreshAdaptive(deps);
  });
  if (!(await latestSnapshot(deps.sql))) await deps.boss.send(QUEUES.adaptiveRefresh, null, { singletonKey: 'first' });
  return () => deps.boss.offWork(QUEUES.adaptiveRefresh, { wait: true });
}

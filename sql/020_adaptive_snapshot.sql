-- Learned retry timing (docs/policy.md, "Learned timing"): the scheduled refresh job counts the
-- merchant's own retries from the ledger and stores them here; the planner reads the newest row
-- (cached briefly), the report shows when it was computed and how much it learned from.
create table adaptive_snapshots (
  id                  bigint generated always as identity primary key,
  computed_at         timestamptz not null,
  -- Retries started from here on were counted.
  since               timestamptz not null,
  -- The default policy's retry.adaptive when computed: auto, on or off.
  mode                text not null check (mode in ('auto', 'on', 'off')),
  -- Learned retries per category, e.g. {"generic": 512, "funds": 80, "temporary": 0}.
  retries             jsonb not null,
  -- Per category: whether the table moves its retries under that mode.
  in_use              jsonb not null,
  -- Raw success/trial counts (src/dunning/adaptive.ts TableCounts); the prior is applied on reading.
  counts              jsonb not null
);
create index adaptive_snapshots_newest on adaptive_snapshots (computed_at desc, id desc);

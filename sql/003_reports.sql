-- Indexes for the recovery reports (src/reports/queries.ts). The period's cases are found through
-- dunning_cases_opened / dunning_cases_closed from 001; these cover the two remaining access paths.

-- "At risk at instant T" = cases whose open span [opened_at, closed_at) contains T. A btree on
-- either column would scan every case opened before T; the GiST range index reads only the
-- cases open at T. An open case's span has no upper bound.
create index dunning_cases_open_span on dunning_cases using gist (tstzrange(opened_at, closed_at));

-- The by-attempt breakdown joins a period's cases to their attempts; carrying attempt_no and
-- status in the index lets that join run as an index-only scan instead of fetching 5 attempts
-- per case from the heap.
create index payment_attempts_case_outcome on payment_attempts (case_id) include (attempt_no, status);

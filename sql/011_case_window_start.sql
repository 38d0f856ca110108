-- Where a case's dunning window starts, when that is not its first failure: an invoice taken over
-- by `dunning backfill` long after it failed gets a few days of dunning from the import
-- (policy retry.takeoverDays) instead of meeting its final action the moment it is seen.
-- Null for every other case: the window starts at opened_at. Reports keep counting from opened_at.
alter table dunning_cases add column window_starts_at timestamptz;

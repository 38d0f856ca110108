-- Runner leases: a worker that claims an attempt holds it until `lease_until` (database wall time,
-- not the domain clock, because it measures process liveness). A worker that crashed between the
-- charge and the write leaves an expired lease, and the next claim reconciles with Stripe first.
alter table payment_attempts add column lease_until timestamptz;
-- Requests repeated with the same idempotency key (429, connection refused, unknown outcome):
-- they never use up a dunning attempt, but ops should see them.
alter table payment_attempts add column request_tries integer not null default 0;

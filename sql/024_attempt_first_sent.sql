-- When, in real time, an attempt's charge request first left for Stripe. Stripe keeps an
-- idempotency key at least 24 hours and may prune it after that; a request repeated later with the
-- same key can run as a new charge. The runner compares this with its real clock before repeating
-- an unresolved attempt (src/dunning/runner.ts, "key life"). Set once, just before the first
-- request, and never moved by a takeover or a replay: the key's life starts with that request.
-- `started_at` cannot serve: it is on the worker's clock, which the demo scales (a simulated day
-- in real seconds), and it is set by a claim that may never send.
alter table payment_attempts add column first_sent_at timestamptz;
-- When, in real time, its latest request left (the first, a replay, or a repeat of one that never
-- reached Stripe: any of them may be the one that charged). With the first, it bounds the time of
-- the charge the attempt can have made when it is resolved from the invoice's charges.
alter table payment_attempts add column last_sent_at timestamptz;
-- Attempts unresolved when this migration runs may have sent their request. Their first send is
-- taken as the row's creation: stamped by the database in real time when the attempt was planned,
-- before any claim or request, so their key looks older, never younger, than it is (the safe side:
-- such an attempt is resolved from Stripe's state rather than asked again). `started_at` is nearer
-- but on the worker's clock (above); `least(started_at, now())` is real time but can be later than
-- the request. Their latest send is the migration's time, no earlier than any request before it.
update payment_attempts set first_sent_at = created_at, last_sent_at = now()
 where status in ('unknown', 'in_flight');

-- Which `invoice.payment_failed` event reported each failed try. Stripe sends one such event for
-- every failed payment attempt, whoever made it, while `attempt_count` counts only the first try and
-- Stripe's automatic retries: the events, matched one to one with the ledger, are what counts.
alter table payment_attempts add column failure_event_id text;
update payment_attempts set failure_event_id = stripe_event_id where source = 'stripe' and stripe_event_id is not null;
create unique index payment_attempts_failure_event on payment_attempts (failure_event_id) where failure_event_id is not null;

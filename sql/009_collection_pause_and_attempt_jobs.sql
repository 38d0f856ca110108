-- Stripe pauses collection on the subscription (`pause_collection`), not on the invoice. Our copy
-- lives on the subscription row, written from customer.subscription.created/updated events like
-- the rest of the row (the newest event wins). A pause with `resumes_at` ends by itself then.
alter table subscriptions add column pause_collection_behavior text;
alter table subscriptions add column pause_collection_resumes_at timestamptz;
-- Never written by anything: the runner's "collection paused" check now reads the subscription.
alter table invoices drop column collection_paused;

-- The pg-boss job that runs an attempt (the latest one sent for it). When a planned attempt is
-- replaced or cancelled its job is cancelled in the same transaction, so an invoice has one waiting
-- attempt job at a time; the dunning-attempts queue's policy (standard, and a queue's policy cannot
-- change) does not enforce it.
alter table payment_attempts add column job_id uuid;

-- Decline details that arrived (charge.failed, payment_intent.payment_failed) before we knew which
-- invoice attempt they belong to. Webhook invoices carry no charge or PaymentIntent id, and Stripe
-- sends the charge event first, so the details wait here until invoice.payment_failed claims them.
create table charge_failures (
  charge_id            text primary key,
  payment_intent_id    text,
  customer_id          text,
  created              timestamptz not null,
  details              jsonb not null,
  claimed_by           bigint references payment_attempts (id),
  received_at          timestamptz not null default now()
);
create index charge_failures_unclaimed on charge_failures (customer_id, created) where claimed_by is null;
create index charge_failures_intent on charge_failures (payment_intent_id) where payment_intent_id is not null;
create index payment_attempts_intent on payment_attempts (payment_intent_id) where payment_intent_id is not null;

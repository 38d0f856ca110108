-- Other cards on file (policy `retry.backupCards`): after the default card fails, a retry may charge
-- another of the customer's saved cards. Such an attempt has its own source, and a case it recovers
-- its own recovery path, so the report can tell what backup cards brought in.
alter table payment_attempts drop constraint payment_attempts_source_check;
alter table payment_attempts add constraint payment_attempts_source_check
  check (source in ('stripe', 'scheduled', 'card_update', 'manual', 'backup_card'));
alter table dunning_cases drop constraint dunning_cases_recovery_path_check;
alter table dunning_cases add constraint dunning_cases_recovery_path_check
  check (recovery_path in
    ('scheduled_retry', 'card_update_retry', 'backup_card_retry', 'manual_retry', 'customer_paid', 'paid_outside'));

-- The customer's saved cards as Stripe listed them last (`GET /v1/customers/{id}/payment_methods`,
-- type card): the planner's candidates for a backup retry. A listing replaces the customer's rows,
-- so a card the customer removed is gone. Brand and last4 only: never the card number.
create table saved_cards (
  payment_method text primary key,
  customer_id    text not null,
  fingerprint    text,
  brand          text,
  last4          text,
  exp_month      int,
  exp_year       int,
  created_at     timestamptz not null
);
create index saved_cards_customer on saved_cards (customer_id);
-- When the customer's cards were listed last: a listing older than the latest decline on the
-- default card is listed again before a backup retry is chosen.
create table saved_card_listings (
  customer_id text primary key,
  listed_at   timestamptz not null
);

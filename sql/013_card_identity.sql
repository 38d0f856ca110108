-- Card-network rules (never-retry answers, 15 attempts in 30 days, 10 declines in 24 hours) are per
-- card, not per invoice or payment method id: the same card number re-added by the customer gets a
-- new pm_ id but keeps its `card.fingerprint`. Each attempt records the fingerprint of the card it
-- charged when Stripe told us; `card_key` is the identity the ledger counts by (fingerprint, else
-- the payment method id).
alter table payment_attempts add column card_fingerprint text;
alter table payment_attempts add column card_key text generated always as (coalesce(card_fingerprint, payment_method)) stored;
-- What we know of each payment method's card (from payment_method.* events, charges, declines,
-- backfill): its fingerprint and brand, newest report wins. The card updater may change both
-- behind the same id.
create table payment_method_cards (
  payment_method text primary key,
  customer_id    text,
  fingerprint    text,
  brand          text,
  updated_at     timestamptz not null
);
create index payment_method_cards_customer on payment_method_cards (customer_id);
-- Fencing: each claim of an attempt gets a fresh token. A worker whose lease ran out and was taken
-- over writes its result only while the token is still its own, so a stalled worker cannot
-- overwrite what the worker that took over recorded.
alter table payment_attempts add column lease_token uuid;
-- The customer's default payment method before the change our row last applied, as the event's
-- previous_attributes said. Two customer.updated events of the same second (A to B, then B to C)
-- can arrive in reverse: the one whose new default is this "before" value is the older one.
alter table customers add column default_payment_method_before text;
-- Which card Stripe charges for an invoice: the invoice's default_payment_method, else its
-- subscription's, else the customer's invoice_settings.default_payment_method (else default
-- source). Our copies of the first two.
alter table invoices add column default_payment_method text;
alter table subscriptions add column default_payment_method text;

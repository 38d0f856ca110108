-- The customer's default card when it is a legacy source (`card_...`, `default_source`) rather than
-- invoice_settings.default_payment_method: card-expiry reminders are only for the card Stripe
-- charges, and Stripe charges the default payment method first, else the default source.
alter table customers add column default_source text;

-- When a reminder's per-message temporary failures began (4xx replies): the retry horizon is
-- measured from here. Failures of our own transport (SMTP down, bad credentials) do not start it,
-- so an outage of our mail server never turns into permanent per-customer failures.
alter table reminder_outbox add column first_failed_at timestamptz;

-- The merchant's own error on a case (invalid amount...): ops must fix the invoice; the customer
-- is never told.
alter table ops_alerts drop constraint ops_alerts_kind_check;
alter table ops_alerts add constraint ops_alerts_kind_check
  check (kind in ('case_opened_large', 'case_lost', 'email_failed', 'merchant_error'));

-- Pre-dunning for PaymentMethod cards. Stripe's customer.source.expiring "only works with legacy
-- integrations using Card or Source objects. If you use the PaymentMethod API, this event won't
-- occur." So the worker keeps each card's expiry itself and a daily scan finds the ones running out.

create table card_expiries (
  payment_method     text primary key,
  customer_id        text,
  exp_month          int not null check (exp_month between 1 and 12),
  exp_year           int not null,
  -- `created` of the event (or the time of the read) that wrote the row: older news never wins.
  stripe_updated_at  timestamptz not null
);
create index card_expiries_customer on card_expiries (customer_id);

-- A subscription's own card is charged before the customer's default (Stripe's order).
alter table subscriptions add column if not exists default_payment_method text;

-- The card Stripe charges for a customer's renewals: a live subscription's default payment
-- method, else the customer's invoice_settings.default_payment_method, else the default source.
-- One definition for the scan, the reminder hook and the mailer's last check.
create function customer_renewal_card(customer text) returns text language sql stable as $$
  select coalesce(
    (select s.default_payment_method from subscriptions s
      where s.customer_id = customer and s.status not in ('canceled', 'incomplete_expired')
        and s.default_payment_method is not null
      order by s.stripe_updated_at desc, s.id
      limit 1),
    (select coalesce(c.default_payment_method, c.default_source) from customers c where c.id = customer))
$$;

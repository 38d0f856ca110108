-- When Stripe's card updater gave a payment method new card details (number or expiry) under the
-- same id (`payment_method.automatically_updated`). Declines on that id from before this moment
-- were answers about the old card: they neither bar the updated one nor count against it.
create table payment_method_updates (
  payment_method text primary key,
  customer_id    text not null,
  updated_at     timestamptz not null
);
create index payment_method_updates_customer on payment_method_updates (customer_id);

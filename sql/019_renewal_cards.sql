-- A customer renews on as many cards as it has subscriptions with cards of their own: Stripe
-- charges a subscription's default_payment_method, else the customer's default. The expiry scan
-- and the mailer's last check must watch each of them, not the one customer_renewal_card picks.

create function customer_renewal_cards(customer text) returns setof text language sql stable as $$
  select distinct coalesce(s.default_payment_method, c.default_payment_method, c.default_source)
    from customers c join subscriptions s on s.customer_id = c.id
   where c.id = customer and s.status not in ('canceled', 'incomplete_expired')
     and coalesce(s.default_payment_method, c.default_payment_method, c.default_source) is not null
$$;

create function is_renewal_card(customer text, card text) returns boolean language sql stable as $$
  select card is not null and exists (select 1 from customer_renewal_cards(customer) r where r = card)
$$;

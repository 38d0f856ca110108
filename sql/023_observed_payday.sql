-- The customer's observed payday (src/dunning/observed-payday.ts), defined once for the planner's
-- read and the learned-timing refresh: the newest of their cases recovered after a funds decline,
-- paid before `before`, by any path but another card (a new card or a backup card says nothing
-- about when money arrives on the failing one). A customer who paid on the hosted page may have
-- used another card too; that cannot be told apart and is counted.
create function customer_observed_payday(p_customer text, p_before timestamptz)
returns table (invoice_id text, paid_at timestamptz)
language sql stable as $$
  select c.invoice_id, coalesce(i.paid_at, c.closed_at)
    from dunning_cases c
    left join invoices i on i.id = c.invoice_id
   where c.customer_id = p_customer and c.status = 'recovered' and c.last_decline_category = 'funds'
     and c.recovery_path is distinct from 'card_update_retry'
     and c.recovery_path is distinct from 'backup_card_retry'
     and coalesce(i.paid_at, c.closed_at) < p_before
   order by coalesce(i.paid_at, c.closed_at) desc
   limit 1
$$;

-- Whole days from the last payday on `payday` (a day of month; the 31st falls on the last day of a
-- shorter month) to the local date `d`: daysSincePayday in src/dunning/observed-payday.ts, which a
-- test checks it against day by day.
create function days_since_payday(d date, payday int)
returns int
language sql immutable as $$
  select case when this_month <= d then d - this_month else d - last_month end
    from (select make_date(extract(year from d)::int, extract(month from d)::int,
                           least(payday, extract(day from date_trunc('month', d) + interval '1 month - 1 day')::int))
                   as this_month,
                 make_date(extract(year from date_trunc('month', d) - interval '1 day')::int,
                           extract(month from date_trunc('month', d) - interval '1 day')::int,
                           least(payday, extract(day from date_trunc('month', d) - interval '1 day')::int))
                   as last_month) m
$$;

-- A card-expiry warning is once per card and expiry month (a customer can renew on two cards that
-- run out in the same month). Existing warnings take the card into their key, so none is sent twice.
update reminder_outbox
   set dedupe_key = dedupe_key || ':' || (data->>'paymentMethod')
 where kind = 'card_expiring' and case_id is null and data->>'paymentMethod' is not null
   and dedupe_key not like '%#released-%' and dedupe_key = 'customer:' || customer_id || ':card_expiring:' || step;

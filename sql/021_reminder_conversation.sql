-- One conversation per customer. A reminder another email of the same customer already covered is
-- `merged` into that email's row (merged_into) rather than sent again; one the frequency cap held
-- back keeps its row, moved later, with how often and why (cap_deferrals, cap_note) so ops see it
-- in `dunning case` and the report counts it.
alter table reminder_outbox drop constraint reminder_outbox_status_check;
alter table reminder_outbox add constraint reminder_outbox_status_check
  check (status in ('pending', 'sending', 'sent', 'cancelled', 'failed', 'merged'));
alter table reminder_outbox
  add column merged_into   bigint references reminder_outbox (id),
  -- When the host email took this one along (the row's own send time stays what was planned).
  add column merged_at     timestamptz,
  add column cap_deferrals integer not null default 0,
  add column cap_note      text;
create index reminder_outbox_merged_into on reminder_outbox (merged_into) where merged_into is not null;
-- The cap reads a customer's recent emails on every send.
create index reminder_outbox_customer_contact on reminder_outbox (customer_id, coalesce(sent_at, claimed_at))
  where status in ('sent', 'sending');

-- What ops read next to a reminder (`dunning case`, the ops case page): the email that carried a
-- merged row, how often and why the cap held it back, and any error or cancel reason.
create function reminder_outbox_note(row_id bigint) returns text language sql stable as $$
  select nullif(concat_ws('; ',
           case when o.status = 'merged' then
             format('in one email with %s (%s #%s, %s)', coalesce(h.invoice_id, 'no invoice'), h.kind, h.id, h.status) end,
           case when o.cap_deferrals > 0 then
             format('deferred %s: %s', case when o.cap_deferrals = 1 then 'once' else o.cap_deferrals || ' times' end, o.cap_note) end,
           coalesce(o.last_error, o.cancel_reason)), '')
    from reminder_outbox o left join reminder_outbox h on h.id = o.merged_into
   where o.id = row_id
$$;

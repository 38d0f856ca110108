-- The ops pages (/ops): the open-case list, its search, the case timeline and the audit log.

-- The list pages open cases by amount at risk with keyset paging on (amount, id): each page is an
-- index range scan, however deep. The currency variant serves the currency filter without scanning
-- other currencies' cases.
create index dunning_cases_by_amount on dunning_cases (status, amount desc, id desc);
create index dunning_cases_by_currency_amount on dunning_cases (currency, status, amount desc, id desc);

-- Search by email prefix (case-insensitive).
create index customers_email_prefix on customers (lower(email) text_pattern_ops);

-- The case timeline: the Stripe events about an invoice, whether the invoice is the event's object
-- or the object (a charge, a payment intent) names it.
create index stripe_events_object on stripe_events ((payload -> 'data' -> 'object' ->> 'id'));
create index stripe_events_object_invoice on stripe_events ((payload -> 'data' -> 'object' ->> 'invoice'))
  where payload -> 'data' -> 'object' ->> 'invoice' is not null;

-- Every action an operator takes from /ops, refused ones too: who (the OPS_TOKENS name), when,
-- what, on which case, and what came of it.
create table ops_audit (
  id          bigint generated always as identity primary key,
  at          timestamptz not null,
  actor       text not null,
  action      text not null check (action in ('retry-now', 'pause', 'resume')),
  invoice_id  text not null,
  case_id     bigint references dunning_cases (id),
  outcome     text not null check (outcome in ('done', 'refused', 'failed')),
  detail      text not null
);
create index ops_audit_invoice on ops_audit (invoice_id, at);
create index ops_audit_at on ops_audit (at);

-- Narrow filters get an index of their own, so a filter that matches few (or no) cases does not
-- walk every open case to find them: by decline category, the paused cases, and the cases whose
-- charge outcome is unknown ("needs ops").
create index dunning_cases_by_category_amount on dunning_cases (last_decline_category, status, amount desc, id desc);
create index dunning_cases_paused_by_amount on dunning_cases (amount desc, id desc) where status = 'open' and paused;
create index payment_attempts_unknown on payment_attempts (invoice_id) where status = 'unknown';

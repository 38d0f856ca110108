-- Policies per segment (docs/policy.md, "Policies per segment"): what the rules match on, kept from
-- events and backfill, and the named policy each case opened with.
-- The invoice's own lines: `lines.data[].pricing.price_details.price` and `.product`.
alter table invoices add column line_prices text[] not null default '{}';
alter table invoices add column line_products text[] not null default '{}';
-- The subscription's items: `items.data[].price.id`, `.price.product`, `.price.recurring.interval`.
alter table subscriptions add column item_prices text[] not null default '{}';
alter table subscriptions add column item_products text[] not null default '{}';
alter table subscriptions add column item_intervals text[] not null default '{}';
-- Cases opened before segments existed ran the file's top-level policy: `default`.
alter table dunning_cases add column policy_name text not null default 'default';

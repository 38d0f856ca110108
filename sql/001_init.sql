-- Core schema: the raw Stripe event store, our copies of Stripe objects, dunning cases and the
-- attempt ledger. Instants are timestamptz; money is an integer in the currency's minor unit,
-- always next to its currency.

-- Every Stripe event exactly once (primary key = Stripe's event id); the raw payload is kept so a
-- handler bug can be fixed and the event replayed.
create table stripe_events (
  id            text primary key,
  type          text not null,
  created       timestamptz not null,
  livemode      boolean not null,
  account       text,
  api_version   text,
  payload       jsonb not null,
  received_at   timestamptz not null default now(),
  status        text not null default 'pending'
                check (status in ('pending', 'processed', 'ignored', 'failed')),
  tries         integer not null default 0,
  processed_at  timestamptz,
  last_error    text
);
create index stripe_events_unfinished on stripe_events (received_at) where status in ('pending', 'failed');

-- `stripe_updated_at` is the `created` of the newest event applied to the row: an older event
-- never overwrites newer state.
create table customers (
  id                      text primary key,
  email                   text,
  name                    text,
  preferred_locales       text[] not null default '{}',
  country                 text,
  time_zone               text,
  default_payment_method  text,
  metadata                jsonb not null default '{}',
  deleted                 boolean not null default false,
  stripe_updated_at       timestamptz not null
);

create table subscriptions (
  id                 text primary key,
  customer_id        text not null,
  status             text not null,
  started_at         timestamptz,
  ended_at           timestamptz,
  cancellation_reason text,
  stripe_updated_at  timestamptz not null
);
create index subscriptions_customer on subscriptions (customer_id);

create table invoices (
  id                  text primary key,
  customer_id         text not null,
  subscription_id     text,
  status              text not null check (status in ('draft', 'open', 'paid', 'void', 'uncollectible')),
  currency            text not null,
  amount_due          bigint not null,
  amount_paid         bigint not null default 0,
  amount_remaining    bigint not null,
  hosted_invoice_url  text,
  stripe_attempt_count integer not null default 0,
  collection_paused   boolean not null default false,
  stripe_created      timestamptz not null,
  paid_at             timestamptz,
  stripe_updated_at   timestamptz not null
);
create index invoices_customer on invoices (customer_id);

-- Policies are stored by content hash so a case keeps the policy it opened with.
create table policies (
  version     text primary key,
  body        jsonb not null,
  created_at  timestamptz not null default now()
);

-- One dunning case per failed invoice. `cohort` is the sticky holdout assignment that lets the
-- reports measure the lift of the smart policy.
create table dunning_cases (
  id                   bigint generated always as identity primary key,
  invoice_id           text not null unique references invoices (id),
  customer_id          text not null,
  currency             text not null,
  amount               bigint not null,
  status               text not null default 'open'
                       check (status in ('open', 'recovered', 'lost', 'closed')),
  policy_version       text not null references policies (version),
  cohort               text not null check (cohort in ('smart', 'holdout')),
  opened_at            timestamptz not null,
  closed_at            timestamptz,
  close_reason         text,
  recovery_path        text check (recovery_path in
                        ('scheduled_retry', 'card_update_retry', 'manual_retry', 'customer_paid', 'paid_outside')),
  recovered_amount     bigint,
  paused               boolean not null default false,
  first_decline_code   text,
  first_decline_category text,
  last_decline_code    text,
  last_decline_category text,
  next_attempt_at      timestamptz,
  next_attempt_reason  text,
  final_action         text,
  final_action_at      timestamptz,
  updated_at           timestamptz not null default now(),
  check ((status = 'open') = (closed_at is null))
);
create index dunning_cases_open on dunning_cases (next_attempt_at) where status = 'open';
create index dunning_cases_customer on dunning_cases (customer_id);
create index dunning_cases_opened on dunning_cases (opened_at);
create index dunning_cases_closed on dunning_cases (closed_at);

-- The attempt ledger: one row per charge attempt, whoever made it. Caps and counts are computed
-- from here and nowhere else.
create table payment_attempts (
  id                   bigint generated always as identity primary key,
  case_id              bigint references dunning_cases (id),
  invoice_id           text not null,
  attempt_no           integer not null,
  source               text not null check (source in ('stripe', 'scheduled', 'card_update', 'manual')),
  status               text not null check (status in
                        ('planned', 'in_flight', 'succeeded', 'declined', 'not_sent', 'unknown', 'skipped', 'cancelled')),
  planned_at           timestamptz,
  plan_reason          text,
  started_at           timestamptz,
  finished_at          timestamptz,
  payment_method       text,
  card_brand           text,
  charge_id            text,
  payment_intent_id    text,
  decline_code         text,
  failure_code         text,
  advice_code          text,
  network_advice_code  text,
  network_decline_code text,
  decline_category     text,
  failure_message      text,
  idempotency_key      text unique,
  stripe_event_id      text,
  created_at           timestamptz not null default now(),
  unique (invoice_id, attempt_no)
);
-- At most one attempt per invoice is planned, running or unresolved at any moment, across all
-- processes: the database enforces it, not the code.
create unique index payment_attempts_one_active on payment_attempts (invoice_id)
  where status in ('planned', 'in_flight', 'unknown');
create unique index payment_attempts_charge on payment_attempts (charge_id) where charge_id is not null;
create index payment_attempts_case on payment_attempts (case_id);
create index payment_attempts_finished on payment_attempts (finished_at);

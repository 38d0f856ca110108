-- Reminder emails and ops alerts. Both are outboxes: a row is written in the same transaction as
-- the domain change that causes it, and its unique key makes every duplicate a no-op, so a
-- redelivered webhook, a retried job or a second worker can never send the same thing twice.

create table reminder_outbox (
  id          bigint generated always as identity primary key,
  -- Null for pre-dunning reminders (card expiring), which belong to a customer, not a case.
  case_id     bigint references dunning_cases (id),
  customer_id text not null,
  invoice_id  text,
  kind        text not null check (kind in
               ('first_notice', 'last_chance', 'final_notice', 'recovered', 'action_required', 'card_expiring')),
  step        integer not null,
  -- (case or customer, kind, step): the one identity of a reminder.
  dedupe_key  text not null unique,
  status      text not null default 'pending'
              check (status in ('pending', 'sending', 'sent', 'cancelled', 'failed')),
  due_at      timestamptz not null,
  -- due_at moved out of the customer's quiet hours; retries move it further.
  send_at     timestamptz not null,
  sent_at     timestamptz,
  locale      text not null,
  time_zone   text not null,
  -- Facts known when planned that the template needs (planned attempt time, card expiry...).
  data        jsonb not null default '{}',
  tries       integer not null default 0,
  last_error  text,
  cancel_reason text,
  message_id  text,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);
create index reminder_outbox_case on reminder_outbox (case_id);
create index reminder_outbox_customer on reminder_outbox (customer_id);
create index reminder_outbox_pending on reminder_outbox (send_at) where status = 'pending';
create index reminder_outbox_sent on reminder_outbox (sent_at);

-- A permanent email failure is recorded on the case itself, where ops look first.
alter table dunning_cases
  add column reminder_problem    text,
  add column reminder_problem_at timestamptz;

create table ops_alerts (
  id          bigint generated always as identity primary key,
  case_id     bigint not null references dunning_cases (id),
  kind        text not null check (kind in ('case_opened_large', 'case_lost', 'email_failed')),
  status      text not null default 'pending' check (status in ('pending', 'sent', 'skipped', 'failed')),
  payload     jsonb not null,
  tries       integer not null default 0,
  last_error  text,
  created_at  timestamptz not null,
  sent_at     timestamptz,
  unique (case_id, kind)
);
create index ops_alerts_pending on ops_alerts (created_at) where status = 'pending';

-- When a mailer decided to send a reminder (pending -> sending). The send itself follows a moment
-- later over SMTP; "no reminder after payment" is about what the worker knew when it decided.
alter table reminder_outbox add column claimed_at timestamptz;

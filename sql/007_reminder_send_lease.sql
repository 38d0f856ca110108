-- How long a mailer may take to finish a send it claimed, in the database's real time (the
-- worker's clock may be scaled). A row still in 'sending' after its lease means the worker died
-- mid-send: whether the email left is unknown, so it is failed and shown to ops, never resent.
alter table reminder_outbox add column send_lease_until timestamptz;
update reminder_outbox set send_lease_until = now() + interval '15 minutes' where status = 'sending';
create index reminder_outbox_sending on reminder_outbox (send_lease_until) where status = 'sending';

-- Involuntary churn reads the subscriptions that ended in the report's period: through this index
-- instead of a second pass over every subscription.
create index subscriptions_ended on subscriptions (ended_at) where ended_at is not null;

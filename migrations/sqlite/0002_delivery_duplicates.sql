-- Sentry retries with a new Request-ID and the same body; such a retry is
-- answered 200 and counted on the delivery it repeats, not stored again.
alter table delivery add column duplicate_count bigint not null default 0;
alter table delivery add column last_duplicate_at bigint;

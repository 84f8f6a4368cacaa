-- An account's failures are forgotten after a quiet day (last_failure), and
-- its member is told of an attack at most once a day (alerted_at), however
-- often the pause starts again. Both in µs since the epoch, 0 for never.
ALTER TABLE auth_failures ADD COLUMN last_failure BIGINT NOT NULL DEFAULT 0;
ALTER TABLE auth_failures ADD COLUMN alerted_at BIGINT NOT NULL DEFAULT 0;

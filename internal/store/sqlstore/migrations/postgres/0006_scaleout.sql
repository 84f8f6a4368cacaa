-- Per-IP-block login penalties shared by every node (auth.SharedThrottle).
-- Only blocks with a recent failure have a row: a login from a clean
-- address costs one primary-key lookup that finds nothing.
--
-- UNLOGGED: no WAL, no fsync per failed login. After a PostgreSQL crash the
-- table comes back empty and standbys do not have it; both only forget
-- delays (the per-account failure counter, which pauses an account, is in
-- auth_failures and durable).
CREATE UNLOGGED TABLE auth_ip_penalties (
	ip_key       TEXT PRIMARY KEY,        -- auth.IPKey: IPv4 /32 or IPv6 /56
	failures     INTEGER NOT NULL,        -- penalised failures
	inflight     INTEGER NOT NULL,        -- attempts admitted and not ended
	next_at      BIGINT NOT NULL,         -- µs: start of the last admitted attempt
	last_failure BIGINT NOT NULL,         -- µs
	recent_tags  BYTEA[] NOT NULL         -- last failed user+secret tags (keyed HMAC, 8 bytes)
);
CREATE INDEX auth_ip_penalties_last_failure ON auth_ip_penalties(last_failure);

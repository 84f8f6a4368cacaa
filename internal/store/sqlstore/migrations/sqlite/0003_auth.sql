-- Per-account failed third-party logins, shared by every process on the
-- database. recent_tags holds the last failed secrets as 8-byte keyed tags
-- (HMAC-SHA-256 under the server key, truncated), never the secrets.
CREATE TABLE auth_failures (
	member_id    INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
	failures     INTEGER NOT NULL DEFAULT 0,
	paused_until INTEGER NOT NULL DEFAULT 0,
	recent_tags  BLOB NOT NULL DEFAULT x''
);

-- Third-party login attempts, kept 30 days. member_id is 0 for unknown users,
-- so it is no foreign key; username is clipped and stripped of control
-- characters before it gets here.
CREATE TABLE login_records (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	at              INTEGER NOT NULL,
	member_id       INTEGER NOT NULL,
	username        TEXT NOT NULL,
	protocol        TEXT NOT NULL,
	mechanism       TEXT NOT NULL,
	ip              TEXT NOT NULL,
	tls             INTEGER NOT NULL,
	result          TEXT NOT NULL,
	reason          TEXT NOT NULL,
	app_password_id TEXT NOT NULL
);
CREATE INDEX login_records_at ON login_records(at);
CREATE INDEX login_records_member ON login_records(member_id, at);

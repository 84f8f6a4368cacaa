-- Times are INTEGER microseconds since the Unix epoch, UTC, on both engines,
-- so that the shared SQL and scanning code need no per-engine time handling.
CREATE TABLE domains (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);

CREATE TABLE members (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	domain_id         INTEGER NOT NULL REFERENCES domains(id),
	email             TEXT NOT NULL UNIQUE,
	name              TEXT NOT NULL,
	password_hash     TEXT NOT NULL,
	use_app_passwords INTEGER NOT NULL DEFAULT 0,
	state             TEXT NOT NULL DEFAULT 'active',
	created_at        INTEGER NOT NULL
);
CREATE INDEX members_domain ON members(domain_id);

CREATE TABLE app_passwords (
	id                 TEXT PRIMARY KEY,
	member_id          INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	name               TEXT NOT NULL,
	name_key           TEXT NOT NULL, -- lower-cased name: unique per member ignoring case
	hash               BLOB NOT NULL,
	created_at         INTEGER NOT NULL,
	last_used_at       INTEGER,
	last_used_protocol TEXT NOT NULL DEFAULT '',
	last_used_ip       TEXT NOT NULL DEFAULT '',
	UNIQUE (member_id, name_key)
);
CREATE INDEX app_passwords_member ON app_passwords(member_id);

CREATE TABLE messages (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	member_id  INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	kind       TEXT NOT NULL,
	subject    TEXT NOT NULL,
	body       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	read       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_member ON messages(member_id, id);

-- The outbox: every change that other nodes or processes must react to.
CREATE TABLE events (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	kind            TEXT NOT NULL,
	member_id       INTEGER NOT NULL,
	app_password_id TEXT NOT NULL DEFAULT '',
	mailbox_id      INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL
);
CREATE INDEX events_created ON events(created_at);

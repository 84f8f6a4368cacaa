-- Times are BIGINT microseconds since the Unix epoch, UTC, on both engines,
-- so that the shared SQL and scanning code need no per-engine time handling.
CREATE TABLE domains (
	id         BIGSERIAL PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL
);

CREATE TABLE members (
	id                BIGSERIAL PRIMARY KEY,
	domain_id         BIGINT NOT NULL REFERENCES domains(id),
	email             TEXT NOT NULL UNIQUE,
	name              TEXT NOT NULL,
	password_hash     TEXT NOT NULL,
	use_app_passwords BOOLEAN NOT NULL DEFAULT FALSE,
	state             TEXT NOT NULL DEFAULT 'active',
	created_at        BIGINT NOT NULL
);
CREATE INDEX members_domain ON members(domain_id);

CREATE TABLE app_passwords (
	id                 TEXT PRIMARY KEY,
	member_id          BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	name               TEXT NOT NULL,
	name_key           TEXT NOT NULL,
	hash               BYTEA NOT NULL,
	created_at         BIGINT NOT NULL,
	last_used_at       BIGINT,
	last_used_protocol TEXT NOT NULL DEFAULT '',
	last_used_ip       TEXT NOT NULL DEFAULT '',
	UNIQUE (member_id, name_key)
);
CREATE INDEX app_passwords_member ON app_passwords(member_id);

CREATE TABLE messages (
	id         BIGSERIAL PRIMARY KEY,
	member_id  BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	kind       TEXT NOT NULL,
	subject    TEXT NOT NULL,
	body       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	read       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX messages_member ON messages(member_id, id);

-- The outbox: every change that other nodes or processes must react to.
-- seq comes from a sequence, so a transaction that commits late could carry a
-- lower seq than one already read; writeEffects (effects.go) holds an advisory
-- lock to commit, so event transactions commit in seq order.
CREATE TABLE events (
	seq             BIGSERIAL PRIMARY KEY,
	kind            TEXT NOT NULL,
	member_id       BIGINT NOT NULL,
	app_password_id TEXT NOT NULL DEFAULT '',
	mailbox_id      BIGINT NOT NULL DEFAULT 0,
	created_at      BIGINT NOT NULL
);
CREATE INDEX events_created ON events(created_at);

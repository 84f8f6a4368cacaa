-- The mail store (internal/mailstore). Notifications own the table name
-- "messages", so mail lives in mail_* tables. Times are BIGINT microseconds.

-- One row per member whose mailboxes exist: it records that the default
-- mailboxes were created (so a deleted Junk is not brought back) and the last
-- UIDVALIDITY handed out, so that a mailbox deleted and created again under
-- the same name never gets the same UIDVALIDITY (RFC 3501 §2.3.1.1). Its row
-- lock also serialises a member's mailbox creations, renames and deletions.
CREATE TABLE mail_accounts (
	member_id         BIGINT PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
	last_uid_validity BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE mailboxes (
	id           BIGSERIAL PRIMARY KEY,
	member_id    BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	name_key     TEXT NOT NULL, -- the name under IMAP's case rules: INBOX folded, the rest as is
	special_use  TEXT NOT NULL DEFAULT '',
	uid_validity BIGINT NOT NULL,
	uid_next     BIGINT NOT NULL DEFAULT 1,
	subscribed   BOOLEAN NOT NULL DEFAULT FALSE,
	UNIQUE (member_id, name_key)
);

-- Bodies apart from the metadata: listing a mailbox never reads them, and a
-- copy shares its original's body. member_id lets a member's deletion take
-- the bodies with it.
CREATE TABLE mail_bodies (
	id        BIGSERIAL PRIMARY KEY,
	member_id BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	body      BYTEA NOT NULL
);

CREATE TABLE mail_messages (
	id            BIGSERIAL PRIMARY KEY,
	mailbox_id    BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           BIGINT NOT NULL,
	flags         TEXT NOT NULL DEFAULT '', -- space-separated, sorted
	internal_date BIGINT NOT NULL,
	size          BIGINT NOT NULL,
	body_id       BIGINT NOT NULL REFERENCES mail_bodies(id),
	UNIQUE (mailbox_id, uid)
);
CREATE INDEX mail_messages_body ON mail_messages(body_id);
CREATE INDEX mail_bodies_member ON mail_bodies(member_id);

-- The mail store (internal/mailstore). Notifications own the table name
-- "messages", so mail lives in mail_* tables. Times are INTEGER microseconds.

-- One row per member whose mailboxes exist: it records that the default
-- mailboxes were created (so a deleted Junk is not brought back) and the last
-- UIDVALIDITY handed out, so that a mailbox deleted and created again under
-- the same name never gets the same UIDVALIDITY (RFC 3501 §2.3.1.1).
CREATE TABLE mail_accounts (
	member_id         INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
	last_uid_validity INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE mailboxes (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	member_id    INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	name_key     TEXT NOT NULL, -- the name under IMAP's case rules: INBOX folded, the rest as is
	special_use  TEXT NOT NULL DEFAULT '',
	uid_validity INTEGER NOT NULL,
	uid_next     INTEGER NOT NULL DEFAULT 1,
	subscribed   INTEGER NOT NULL DEFAULT 0,
	UNIQUE (member_id, name_key)
);

-- Bodies apart from the metadata: listing a mailbox never reads them, and a
-- copy shares its original's body. member_id lets a member's deletion take
-- the bodies with it.
CREATE TABLE mail_bodies (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	body      BLOB NOT NULL
);

CREATE TABLE mail_messages (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           INTEGER NOT NULL,
	flags         TEXT NOT NULL DEFAULT '', -- space-separated, sorted
	internal_date INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	body_id       INTEGER NOT NULL REFERENCES mail_bodies(id),
	UNIQUE (mailbox_id, uid)
);
CREATE INDEX mail_messages_body ON mail_messages(body_id);
CREATE INDEX mail_bodies_member ON mail_bodies(member_id);

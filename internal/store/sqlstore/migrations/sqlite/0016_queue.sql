-- The outbound queue: mail members submitted to other domains, written in
-- the transaction that delivers the message's local copies and accepted
-- with 250 only after it commits. A recipient row lives until it is
-- delivered, bounced (its DSN goes to the sender's INBOX in the same
-- transaction) or deleted by an administrator. Claims are leases: a node
-- that dies mid-delivery loses its claim when lease_until passes.
CREATE TABLE queue_messages (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	member_id       INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	app_password_id TEXT NOT NULL DEFAULT '',
	mail_from       TEXT NOT NULL,
	body            BLOB NOT NULL,
	smtputf8        INTEGER NOT NULL DEFAULT 0,
	eightbit        INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL
);

CREATE TABLE queue_recipients (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id     INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
	address        TEXT NOT NULL,
	domain         TEXT NOT NULL,
	held           INTEGER NOT NULL DEFAULT 0,
	attempts       INTEGER NOT NULL DEFAULT 0,
	next_attempt   INTEGER NOT NULL,
	last_error     TEXT NOT NULL DEFAULT '',
	delay_notified INTEGER NOT NULL DEFAULT 0,
	lease_owner    TEXT NOT NULL DEFAULT '',
	lease_until    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_recipients_due ON queue_recipients(next_attempt) WHERE NOT held;
CREATE INDEX queue_recipients_message ON queue_recipients(message_id);

-- A member's preferences that are not about security: the language of the
-- mail Postern writes to them (delivery reports), set by the web UI.
CREATE TABLE member_prefs (
	member_id INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
	language  TEXT NOT NULL DEFAULT ''
);

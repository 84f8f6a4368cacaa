-- The live third-party sessions (IMAP, POP3, SMTP, CalDAV, CardDAV) of
-- every node, which each node publishes so that an administrator sees a
-- member's sessions whichever node holds them. A node writes its sessions
-- opened and closed about once a second, in one transaction with its
-- heartbeat; readers ignore the rows of a node whose heartbeat stopped (it
-- crashed), and the next heartbeat of any node deletes them.
CREATE TABLE live_nodes (
	node         TEXT PRIMARY KEY, -- random, new at every start
	heartbeat_at INTEGER NOT NULL
);

CREATE TABLE live_sessions (
	node            TEXT NOT NULL,
	id              INTEGER NOT NULL, -- the session's number on its node
	member_id       INTEGER NOT NULL, -- no reference: the member's deletion closes the session
	protocol        TEXT NOT NULL,
	ip              TEXT NOT NULL,
	client          TEXT NOT NULL,    -- what the client said it is (IMAP ID, User-Agent), '' when nothing
	app_password_id TEXT NOT NULL,    -- '' for the main password
	started_at      INTEGER NOT NULL,
	PRIMARY KEY (node, id)
);
CREATE INDEX live_sessions_member ON live_sessions(member_id);

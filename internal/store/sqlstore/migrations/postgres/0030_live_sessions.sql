-- The live third-party sessions (IMAP, POP3, SMTP, CalDAV, CardDAV) of
-- every node, which each node publishes so that an administrator sees a
-- member's sessions whichever node holds them. A node writes its sessions
-- opened and closed about once a second, in one transaction with its
-- heartbeat; readers ignore the rows of a node whose heartbeat stopped (it
-- crashed), and the next heartbeat of any node deletes them.
--
-- UNLOGGED: no WAL for rows that live as long as a connection. After a
-- PostgreSQL crash the tables come back empty, and every node publishes
-- its sessions again (a node whose heartbeat row is gone republishes all).
CREATE UNLOGGED TABLE live_nodes (
	node         TEXT PRIMARY KEY, -- random, new at every start
	heartbeat_at BIGINT NOT NULL
);

CREATE UNLOGGED TABLE live_sessions (
	node            TEXT NOT NULL,
	id              BIGINT NOT NULL, -- the session's number on its node
	member_id       BIGINT NOT NULL, -- no reference: the member's deletion closes the session
	protocol        TEXT NOT NULL,
	ip              TEXT NOT NULL,
	client          TEXT NOT NULL,   -- what the client said it is (IMAP ID, User-Agent), '' when nothing
	app_password_id TEXT NOT NULL,   -- '' for the main password
	started_at      BIGINT NOT NULL,
	PRIMARY KEY (node, id)
);
CREATE INDEX live_sessions_member ON live_sessions(member_id);

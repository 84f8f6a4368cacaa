-- A message's index (internal/msgindex): what IMAP's FETCH ENVELOPE and
-- BODYSTRUCTURE, SEARCH on address and subject fields, SORT, THREAD and
-- PREVIEW need of its content, computed once when the message is stored.
-- One row per body, so copies share it as they share the body. Messages
-- stored before this table existed get theirs on first use (the store
-- builds any missing or older-version row when a command needs it), so no
-- migration has to parse every message.
CREATE TABLE mail_index (
	body_id            BIGINT PRIMARY KEY REFERENCES mail_bodies(id) ON DELETE CASCADE,
	version            INTEGER NOT NULL, -- msgindex.Version that built it
	envelope          BYTEA NOT NULL,     -- ENVELOPE as written to a connection without UTF-8 quoted strings
	envelope_utf8      BYTEA,             -- the same for one with them, NULL when identical
	body_plain        BYTEA NOT NULL,     -- BODY
	body_plain_utf8    BYTEA,
	bodystructure     BYTEA NOT NULL,     -- BODYSTRUCTURE
	bodystructure_utf8 BYTEA,
	-- search texts: the fields decoded and lowercased; NULL when absent
	from_text          BYTEA,
	to_text            BYTEA,
	cc_text            BYTEA,
	bcc_text           BYTEA,
	subject_text       BYTEA,
	-- SEARCH BODY and TEXT: the decoded text parts, and the header fields of
	-- the message and its parts, lowercased; a substring scan of these in
	-- the database is exactly the unindexed search's match (full-text
	-- indexes split words, which IMAP's substring match does not); NULL for
	-- a message that does not parse
	body_text          BYTEA,
	header_text        BYTEA,
	-- sort and thread keys (RFC 5256, RFC 5957)
	sort_from          TEXT NOT NULL,
	sort_to            TEXT NOT NULL,
	sort_cc            TEXT NOT NULL,
	display_from       TEXT NOT NULL,
	display_to         TEXT NOT NULL,
	base_subject       TEXT NOT NULL,
	sent_date          BIGINT,          -- the Date field, microseconds; NULL when none
	sent_offset        BIGINT NOT NULL,  -- its zone, seconds east of UTC: SENTBEFORE and SENTSINCE compare its own date
	message_id         TEXT NOT NULL,
	in_reply_to        TEXT NOT NULL,
	refs               TEXT NOT NULL,    -- References' message ids, space-separated
	preview            TEXT NOT NULL,    -- RFC 8970
	has_attachment     BOOLEAN NOT NULL
);

-- The message index in two tables by how it is read. mail_index keeps the
-- version and the small columns that SEARCH on address and subject fields,
-- SORT and THREAD read for every message of a mailbox; mail_index_bulk
-- holds the large ones, read for the messages a FETCH names (the encoded
-- items, the preview) or by SEARCH BODY and TEXT. One table made those
-- scans read every row's encoded items and texts: a row larger than a page
-- spreads over overflow pages, and a column after the large ones is reached
-- only through them. The store writes a body's two rows together; each
-- has the version that built it, so that each is read without the other.
ALTER TABLE mail_index RENAME TO mail_index_0019;
ALTER INDEX mail_index_pkey RENAME TO mail_index_0019_pkey;

CREATE TABLE mail_index (
	body_id        BIGINT PRIMARY KEY REFERENCES mail_bodies(id) ON DELETE CASCADE,
	version        INTEGER NOT NULL, -- msgindex.Version that built it
	-- search texts: the fields decoded and lowercased; NULL when absent
	from_text      BYTEA,
	to_text        BYTEA,
	cc_text        BYTEA,
	bcc_text       BYTEA,
	subject_text   BYTEA,
	-- sort and thread keys (RFC 5256, RFC 5957)
	sort_from      TEXT NOT NULL,
	sort_to        TEXT NOT NULL,
	sort_cc        TEXT NOT NULL,
	display_from   TEXT NOT NULL,
	display_to     TEXT NOT NULL,
	base_subject   TEXT NOT NULL,
	sent_date      BIGINT,           -- the Date field, microseconds; NULL when none
	sent_offset    BIGINT NOT NULL,  -- its zone, seconds east of UTC: SENTBEFORE and SENTSINCE compare its own date
	message_id     TEXT NOT NULL,
	in_reply_to    TEXT NOT NULL,
	refs           TEXT NOT NULL,    -- References' message ids, space-separated
	has_attachment BOOLEAN NOT NULL
);

CREATE TABLE mail_index_bulk (
	body_id            BIGINT PRIMARY KEY REFERENCES mail_bodies(id) ON DELETE CASCADE,
	version            INTEGER NOT NULL, -- msgindex.Version that built it
	preview            TEXT NOT NULL,    -- RFC 8970
	envelope           BYTEA NOT NULL, -- ENVELOPE as written to a connection without UTF-8 quoted strings
	envelope_utf8      BYTEA,          -- the same for one with them, NULL when identical
	body_plain         BYTEA NOT NULL, -- BODY
	body_plain_utf8    BYTEA,
	bodystructure      BYTEA NOT NULL, -- BODYSTRUCTURE
	bodystructure_utf8 BYTEA,
	-- SEARCH BODY and TEXT: the decoded text parts, and the header fields of
	-- the message and its parts, lowercased; a substring scan of these in
	-- the database is exactly the unindexed search's match; NULL for a
	-- message that does not parse
	body_text          BYTEA,
	header_text        BYTEA
);

INSERT INTO mail_index (body_id, version, from_text, to_text, cc_text, bcc_text, subject_text, sort_from, sort_to, sort_cc,
		display_from, display_to, base_subject, sent_date, sent_offset, message_id, in_reply_to, refs, has_attachment)
	SELECT body_id, version, from_text, to_text, cc_text, bcc_text, subject_text, sort_from, sort_to, sort_cc,
		display_from, display_to, base_subject, sent_date, sent_offset, message_id, in_reply_to, refs, has_attachment
	FROM mail_index_0019;

INSERT INTO mail_index_bulk (body_id, version, preview, envelope, envelope_utf8, body_plain, body_plain_utf8, bodystructure, bodystructure_utf8,
		body_text, header_text)
	SELECT body_id, version, preview, envelope, envelope_utf8, body_plain, body_plain_utf8, bodystructure, bodystructure_utf8,
		body_text, header_text
	FROM mail_index_0019;

DROP TABLE mail_index_0019;

-- Mail storage quotas (RFC 9208's STORAGE). A member's limit, else the
-- domain's default, else the server's --mailbox-quota applies; octets, 0
-- for none, NULL for "not set here".
ALTER TABLE members ADD COLUMN mail_quota BIGINT;
ALTER TABLE domains ADD COLUMN mail_quota BIGINT;

-- What a member's messages take, every mailbox together, kept by the
-- transactions that add or remove messages: every delivery and APPEND reads
-- it, and one row by key costs the same at any mailbox size, where the sum
-- over the messages grew with them. Its own table, so that adding to it
-- locks neither the member's row nor mail_accounts (see the store's Locking).
CREATE TABLE mail_usage (
	member_id BIGINT PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
	bytes     BIGINT NOT NULL DEFAULT 0
);
INSERT INTO mail_usage (member_id, bytes)
	SELECT a.member_id, COALESCE((SELECT SUM(m.size) FROM mailboxes b JOIN mail_messages m ON m.mailbox_id = b.id WHERE b.member_id = a.member_id), 0)
	FROM mail_accounts a;

-- The sum's index has nothing left to serve.
DROP INDEX mail_messages_usage;

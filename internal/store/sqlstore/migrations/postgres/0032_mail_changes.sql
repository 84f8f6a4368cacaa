-- A change of flags rewrites its messages in place on PostgreSQL. An
-- index holding mail_messages.modseq, which every STORE changes, made each
-- updated row a new entry in every index of the table (no HOT update): a
-- STORE on 1,000 messages wrote some 6,000 WAL records, one heap record and
-- four index entries per message. Without such an index, and with room on
-- the pages for the rows' new versions (a STORE on every message of a page
-- needs as much again as the page holds; the rows are small next to their
-- bodies), PostgreSQL writes each new version on its page and touches no
-- index. SQLite updates rows in place anyway and keeps its index.
DROP INDEX mail_messages_modseq;
ALTER TABLE mail_messages SET (fillfactor = 50);

-- What the index served: which messages of a mailbox changed after a
-- mod-sequence, for the view cache's re-read (viewcache.go). Arrivals
-- (APPEND, COPY, MOVE) take UIDs at or above the UIDNEXT of any view read
-- before them, so the re-read finds them by UID; what else changes a
-- message is an UPDATE, logged here by a trigger (as mailbox_counts: no way
-- of updating a message can leave it out): one row per statement, mailbox
-- and mod-sequence, with the UIDs updated. A mailbox keeps the rows of its
-- last mail_changes_kept() mod-sequences, pruned by the statements that add
-- rows; the re-read of a view older than that reads the mailbox whole, as
-- when the tombstones it needs were pruned. A statement that updates more
-- than mail_changes_max_uids() messages of a mailbox logs no UIDs but sets
-- the mailbox's changes_from to its mod-sequence, which bounds the log (a
-- client flagging 100,000 messages again and again would otherwise add
-- 800 KB each time): a view older than that is read whole too, about what
-- reading so many changes costs.
CREATE TABLE mail_changes (
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	modseq     BIGINT NOT NULL,
	uids       BIGINT[] NOT NULL
);
CREATE INDEX mail_changes_modseq ON mail_changes(mailbox_id, modseq);
-- Not compressed: pglz took some 3 ms on the 8 KB of a STORE on 1,000
-- messages, more than the update itself.
ALTER TABLE mail_changes ALTER COLUMN uids SET STORAGE EXTERNAL;
ALTER TABLE mailboxes ADD COLUMN changes_from BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION mail_changes_kept() RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT 1000::bigint';
CREATE FUNCTION mail_changes_max_uids() RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT 10000::bigint';

CREATE FUNCTION mail_changes_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	WITH n AS (
		SELECT mailbox_id, modseq, array_agg(uid) AS uids FROM new_rows GROUP BY mailbox_id, modseq
	), i AS (
		INSERT INTO mail_changes (mailbox_id, modseq, uids)
		SELECT mailbox_id, modseq, uids FROM n WHERE cardinality(uids) <= mail_changes_max_uids()
	), w AS (
		UPDATE mailboxes b SET changes_from = x.m
		FROM (SELECT mailbox_id, max(modseq) AS m FROM n WHERE cardinality(uids) > mail_changes_max_uids() GROUP BY mailbox_id) x
		WHERE b.id = x.mailbox_id AND b.changes_from < x.m
	)
	DELETE FROM mail_changes c USING (SELECT mailbox_id, max(modseq) AS m FROM n GROUP BY mailbox_id) d
	WHERE c.mailbox_id = d.mailbox_id AND c.modseq <= d.m - mail_changes_kept();
	RETURN NULL;
END $$;
CREATE TRIGGER mail_changes_log AFTER UPDATE ON mail_messages
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mail_changes_log();

-- IMAP's \Recent horizon apart from the mailbox row. Every change to a
-- mailbox's messages locks its row (UIDs and mod-sequences are handed out
-- under that lock) and, on PostgreSQL, holds it until its commit is on disk;
-- a session claiming \Recent on the same row waited for each of those
-- flushes. Here a claim writes a row of its own, and takes uid_next as the
-- last committed change left it: every UID below it is committed, so the
-- claim needs no lock on the mailbox. A mailbox without a row has claimed
-- nothing yet (its horizon is 1, every message recent).
CREATE TABLE mailbox_recent (
	mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
	recent_uid INTEGER NOT NULL
);
INSERT INTO mailbox_recent (mailbox_id, recent_uid) SELECT id, recent_uid FROM mailboxes WHERE recent_uid > 1;
ALTER TABLE mailboxes DROP COLUMN recent_uid;

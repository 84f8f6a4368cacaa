-- CONDSTORE and QRESYNC (RFC 7162). Every change to a mailbox's messages
-- (flags, arrival by append, copy or move) takes the mailbox's next
-- mod-sequence, one per transaction, under the mailbox lock, so they only
-- grow and are never reused; highest_modseq is the last one handed out
-- (HIGHESTMODSEQ), expunges included. Rows already here start at 1.
ALTER TABLE mailboxes ADD COLUMN highest_modseq BIGINT NOT NULL DEFAULT 1;
-- Tombstones below this mod-sequence were pruned (see mail_vanished).
ALTER TABLE mailboxes ADD COLUMN pruned_modseq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mail_messages ADD COLUMN modseq BIGINT NOT NULL DEFAULT 1;
-- FETCH (CHANGEDSINCE n) and SEARCH MODSEQ read a mailbox's messages by
-- mod-sequence.
CREATE INDEX mail_messages_modseq ON mail_messages(mailbox_id, modseq);

-- Expunged UIDs with the mod-sequence of their expunge, so that QRESYNC's
-- VANISHED (EARLIER) names what went since a client's mod-sequence. At
-- most a bounded number are kept per mailbox (sqlstore's maxTombstones);
-- the oldest go first and pruned_modseq records the highest one dropped: a
-- client whose mod-sequence is older is told every UID it may know that is
-- not present (RFC 7162 §3.2.5.2 allows more UIDs than vanished).
CREATE TABLE mail_vanished (
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid        BIGINT NOT NULL,
	modseq     BIGINT NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX mail_vanished_modseq ON mail_vanished(mailbox_id, modseq);

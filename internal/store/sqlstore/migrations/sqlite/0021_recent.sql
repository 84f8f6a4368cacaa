-- IMAP's \Recent (RFC 3501 §2.3.2): a message is recent in exactly one
-- session, the first to select its mailbox read-write after it arrived. The
-- mailbox keeps the first UID that no session has claimed as recent; the
-- claiming session moves it to uid_next under the mailbox's row lock, so two
-- sessions on any nodes never claim the same message. Mail that was there
-- before this column is not recent.
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;
UPDATE mailboxes SET recent_uid = uid_next;

-- A mailbox quota sums a member's message sizes on every delivery; with
-- the size in the index the sum reads the index alone.
CREATE INDEX mail_messages_usage ON mail_messages(mailbox_id, size);

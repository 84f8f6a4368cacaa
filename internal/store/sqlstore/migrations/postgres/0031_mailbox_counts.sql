-- What STATUS answers (MESSAGES, UNSEEN, and with them the \Deleted count
-- and the sizes of STATUS=SIZE and DELETED-STORAGE), per mailbox, kept by
-- triggers on mail_messages: a row by key costs the same at any mailbox
-- size, where counting the messages grew with them (10,000 messages: a
-- scan of every row on each STATUS). Triggers rather than the statements
-- that change messages, so that no way of adding, moving, flagging or
-- removing one (an import, a cascade from a deleted mailbox) can leave
-- the counts behind. They run once per statement over its transition
-- tables: a STORE on 1,000 messages writes each mailbox's row once. Every
-- statement that changes a mailbox's messages already holds the
-- mailbox's row (UIDs and mod-sequences are handed out under it), so the
-- counts' row adds no wait of its own. Flags are stored canonical and
-- keywords hold no backslash, so a system flag's name inside the flags
-- column is that flag (as the scan this replaces tested it).
CREATE TABLE mailbox_counts (
	mailbox_id   BIGINT PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
	messages     BIGINT NOT NULL DEFAULT 0,
	unseen       BIGINT NOT NULL DEFAULT 0,
	deleted      BIGINT NOT NULL DEFAULT 0,
	size         BIGINT NOT NULL DEFAULT 0,
	deleted_size BIGINT NOT NULL DEFAULT 0
);
INSERT INTO mailbox_counts (mailbox_id, messages, unseen, deleted, size, deleted_size)
	SELECT b.id, COUNT(m.id),
		COUNT(m.id) FILTER (WHERE strpos(m.flags, '\Seen') = 0),
		COUNT(m.id) FILTER (WHERE strpos(m.flags, '\Deleted') > 0),
		COALESCE(SUM(m.size), 0),
		COALESCE(SUM(m.size) FILTER (WHERE strpos(m.flags, '\Deleted') > 0), 0)
	FROM mailboxes b LEFT JOIN mail_messages m ON m.mailbox_id = b.id GROUP BY b.id;

CREATE FUNCTION mailbox_counts_new_mailbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO mailbox_counts (mailbox_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
	RETURN NULL;
END $$;
CREATE TRIGGER mailbox_counts_new_mailbox AFTER INSERT ON mailboxes
	FOR EACH ROW EXECUTE FUNCTION mailbox_counts_new_mailbox();

CREATE FUNCTION mailbox_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE mailbox_counts c SET messages = c.messages + d.messages, unseen = c.unseen + d.unseen,
		deleted = c.deleted + d.deleted, size = c.size + d.size, deleted_size = c.deleted_size + d.deleted_size
	FROM (SELECT mailbox_id, COUNT(*) AS messages, COUNT(*) FILTER (WHERE strpos(flags, '\Seen') = 0) AS unseen,
			COUNT(*) FILTER (WHERE strpos(flags, '\Deleted') > 0) AS deleted, SUM(size) AS size,
			COALESCE(SUM(size) FILTER (WHERE strpos(flags, '\Deleted') > 0), 0) AS deleted_size
		FROM new_rows GROUP BY mailbox_id) d
	WHERE c.mailbox_id = d.mailbox_id;
	RETURN NULL;
END $$;
CREATE TRIGGER mailbox_counts_insert AFTER INSERT ON mail_messages
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mailbox_counts_insert();

CREATE FUNCTION mailbox_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE mailbox_counts c SET messages = c.messages - d.messages, unseen = c.unseen - d.unseen,
		deleted = c.deleted - d.deleted, size = c.size - d.size, deleted_size = c.deleted_size - d.deleted_size
	FROM (SELECT mailbox_id, COUNT(*) AS messages, COUNT(*) FILTER (WHERE strpos(flags, '\Seen') = 0) AS unseen,
			COUNT(*) FILTER (WHERE strpos(flags, '\Deleted') > 0) AS deleted, SUM(size) AS size,
			COALESCE(SUM(size) FILTER (WHERE strpos(flags, '\Deleted') > 0), 0) AS deleted_size
		FROM old_rows GROUP BY mailbox_id) d
	WHERE c.mailbox_id = d.mailbox_id;
	RETURN NULL;
END $$;
CREATE TRIGGER mailbox_counts_delete AFTER DELETE ON mail_messages
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mailbox_counts_delete();

-- An update's change per mailbox: its new rows counted in, its old rows
-- out; mailboxes whose counts come out unchanged (a change of flags that
-- leaves \Seen and \Deleted as they were) are not written.
CREATE FUNCTION mailbox_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE mailbox_counts c SET messages = c.messages + d.messages, unseen = c.unseen + d.unseen,
		deleted = c.deleted + d.deleted, size = c.size + d.size, deleted_size = c.deleted_size + d.deleted_size
	FROM (SELECT mailbox_id, SUM(s) AS messages, COALESCE(SUM(s) FILTER (WHERE strpos(flags, '\Seen') = 0), 0) AS unseen,
			COALESCE(SUM(s) FILTER (WHERE strpos(flags, '\Deleted') > 0), 0) AS deleted, SUM(s * size) AS size,
			COALESCE(SUM(s * size) FILTER (WHERE strpos(flags, '\Deleted') > 0), 0) AS deleted_size
		FROM (SELECT mailbox_id, flags, size, 1 AS s FROM new_rows
			UNION ALL SELECT mailbox_id, flags, size, -1 FROM old_rows) x
		GROUP BY mailbox_id) d
	WHERE c.mailbox_id = d.mailbox_id
		AND (d.messages, d.unseen, d.deleted, d.size, d.deleted_size) <> (0, 0, 0, 0, 0);
	RETURN NULL;
END $$;
CREATE TRIGGER mailbox_counts_update AFTER UPDATE ON mail_messages
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mailbox_counts_update();

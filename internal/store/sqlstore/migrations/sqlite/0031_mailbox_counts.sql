-- What STATUS answers (MESSAGES, UNSEEN, and with them the \Deleted count
-- and the sizes of STATUS=SIZE and DELETED-STORAGE), per mailbox, kept by
-- triggers on mail_messages: a row by key costs the same at any mailbox
-- size, where counting the messages grew with them (10,000 messages: a
-- scan of every row on each STATUS). Triggers rather than the statements
-- that change messages, so that no way of adding, moving, flagging or
-- removing one (an import, a cascade from a deleted mailbox) can leave
-- the counts behind. Flags are stored canonical and keywords hold no
-- backslash, so a system flag's name inside the flags column is that flag
-- (as the scan this replaces tested it).
CREATE TABLE mailbox_counts (
	mailbox_id   INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
	messages     INTEGER NOT NULL DEFAULT 0,
	unseen       INTEGER NOT NULL DEFAULT 0,
	deleted      INTEGER NOT NULL DEFAULT 0,
	size         INTEGER NOT NULL DEFAULT 0,
	deleted_size INTEGER NOT NULL DEFAULT 0
);
INSERT INTO mailbox_counts (mailbox_id, messages, unseen, deleted, size, deleted_size)
	SELECT b.id, COUNT(m.id),
		COALESCE(SUM(CASE WHEN m.id IS NOT NULL AND instr(m.flags, '\Seen') = 0 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN instr(m.flags, '\Deleted') > 0 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(m.size), 0),
		COALESCE(SUM(CASE WHEN instr(m.flags, '\Deleted') > 0 THEN m.size ELSE 0 END), 0)
	FROM mailboxes b LEFT JOIN mail_messages m ON m.mailbox_id = b.id GROUP BY b.id;

CREATE TRIGGER mailbox_counts_new_mailbox AFTER INSERT ON mailboxes BEGIN
	INSERT OR IGNORE INTO mailbox_counts (mailbox_id) VALUES (new.id);
END;

CREATE TRIGGER mailbox_counts_insert AFTER INSERT ON mail_messages BEGIN
	UPDATE mailbox_counts SET messages = messages + 1,
		unseen = unseen + (instr(new.flags, '\Seen') = 0),
		deleted = deleted + (instr(new.flags, '\Deleted') > 0),
		size = size + new.size,
		deleted_size = deleted_size + (instr(new.flags, '\Deleted') > 0) * new.size
	WHERE mailbox_id = new.mailbox_id;
END;

CREATE TRIGGER mailbox_counts_delete AFTER DELETE ON mail_messages BEGIN
	UPDATE mailbox_counts SET messages = messages - 1,
		unseen = unseen - (instr(old.flags, '\Seen') = 0),
		deleted = deleted - (instr(old.flags, '\Deleted') > 0),
		size = size - old.size,
		deleted_size = deleted_size - (instr(old.flags, '\Deleted') > 0) * old.size
	WHERE mailbox_id = old.mailbox_id;
END;

-- A flag change (the common update) is one statement on one row.
CREATE TRIGGER mailbox_counts_update AFTER UPDATE OF flags, size ON mail_messages
	WHEN old.mailbox_id = new.mailbox_id AND (old.flags <> new.flags OR old.size <> new.size) BEGIN
	UPDATE mailbox_counts SET
		unseen = unseen - (instr(old.flags, '\Seen') = 0) + (instr(new.flags, '\Seen') = 0),
		deleted = deleted - (instr(old.flags, '\Deleted') > 0) + (instr(new.flags, '\Deleted') > 0),
		size = size - old.size + new.size,
		deleted_size = deleted_size - (instr(old.flags, '\Deleted') > 0) * old.size + (instr(new.flags, '\Deleted') > 0) * new.size
	WHERE mailbox_id = new.mailbox_id;
END;

CREATE TRIGGER mailbox_counts_move AFTER UPDATE OF mailbox_id ON mail_messages
	WHEN old.mailbox_id <> new.mailbox_id BEGIN
	UPDATE mailbox_counts SET messages = messages - 1,
		unseen = unseen - (instr(old.flags, '\Seen') = 0),
		deleted = deleted - (instr(old.flags, '\Deleted') > 0),
		size = size - old.size,
		deleted_size = deleted_size - (instr(old.flags, '\Deleted') > 0) * old.size
	WHERE mailbox_id = old.mailbox_id;
	UPDATE mailbox_counts SET messages = messages + 1,
		unseen = unseen + (instr(new.flags, '\Seen') = 0),
		deleted = deleted + (instr(new.flags, '\Deleted') > 0),
		size = size + new.size,
		deleted_size = deleted_size + (instr(new.flags, '\Deleted') > 0) * new.size
	WHERE mailbox_id = new.mailbox_id;
END;

-- The audit log: who did what to which account, from where and with which
-- client, written in the transaction of the change it records (writeEffects).
-- Members, admins, the CLI and the system (the throttle's pauses) act.
-- member_id is no foreign key and member_email and domain are copied, so that
-- the trail outlives the member and the domain it is about. Rows are only
-- ever inserted, and deleted by retention pruning: the trigger below refuses
-- every UPDATE, whoever sends it.
CREATE TABLE audit_log (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	at           INTEGER NOT NULL,
	action       TEXT NOT NULL,
	actor        TEXT NOT NULL,
	actor_email  TEXT NOT NULL DEFAULT '',
	member_id    INTEGER NOT NULL DEFAULT 0,
	member_email TEXT NOT NULL DEFAULT '',
	domain       TEXT NOT NULL DEFAULT '',
	ip           TEXT NOT NULL DEFAULT '',
	client       TEXT NOT NULL DEFAULT '',
	detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_member ON audit_log(member_email, at);
CREATE INDEX audit_log_domain ON audit_log(domain, at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Login records join the audit log as they are: append-only too, and with
-- the client that made the attempt (the browser's User-Agent for the web).
ALTER TABLE login_records ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE TRIGGER login_records_no_update BEFORE UPDATE ON login_records
BEGIN
	SELECT RAISE(ABORT, 'login_records is append-only');
END;

-- How many days audit entries are kept; no row: the server's default.
CREATE TABLE audit_settings (
	id             INTEGER PRIMARY KEY CHECK (id = 1),
	retention_days INTEGER NOT NULL
);

-- The audit log: who did what to which account, from where and with which
-- client, written in the transaction of the change it records (writeEffects).
-- Members, admins, the CLI and the system (the throttle's pauses) act.
-- member_id is no foreign key and member_email and domain are copied, so that
-- the trail outlives the member and the domain it is about. Rows are only
-- ever inserted, and deleted by retention pruning: the trigger below refuses
-- every UPDATE and TRUNCATE, whoever sends it.
CREATE TABLE audit_log (
	id           BIGSERIAL PRIMARY KEY,
	at           BIGINT NOT NULL,
	action       TEXT NOT NULL,
	actor        TEXT NOT NULL,
	actor_email  TEXT NOT NULL DEFAULT '',
	member_id    BIGINT NOT NULL DEFAULT 0,
	member_email TEXT NOT NULL DEFAULT '',
	domain       TEXT NOT NULL DEFAULT '',
	ip           TEXT NOT NULL DEFAULT '',
	client       TEXT NOT NULL DEFAULT '',
	detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_member ON audit_log(member_email, at);
CREATE INDEX audit_log_domain ON audit_log(domain, at);

CREATE FUNCTION postern_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION postern_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION postern_append_only();

-- Login records join the audit log as they are: append-only too, and with
-- the client that made the attempt (the browser's User-Agent for the web).
-- A constant default adds the column without rewriting the table.
ALTER TABLE login_records ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE TRIGGER login_records_no_update BEFORE UPDATE ON login_records
	FOR EACH ROW EXECUTE FUNCTION postern_append_only();

-- How many days audit entries are kept; no row: the server's default.
CREATE TABLE audit_settings (
	id             INTEGER PRIMARY KEY CHECK (id = 1),
	retention_days INTEGER NOT NULL
);

-- app_passwords_member is redundant: the unique (member_id, name_key) index
-- starts with member_id and serves those lookups, one index less to update
-- when app passwords are created and deleted. (PostgreSQL's migration also
-- leaves room on its pages for the last-use updates; SQLite updates in place.)
DROP INDEX IF EXISTS app_passwords_member;

-- Administrators: a member is an organisation admin (domain_id NULL: every
-- domain) or the admin of the domains listed, one row each.
CREATE TABLE admin_roles (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	member_id  INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	domain_id  INTEGER REFERENCES domains(id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL
);
-- NULLs are distinct in a unique index: COALESCE makes the organisation
-- role unique per member too.
CREATE UNIQUE INDEX admin_roles_one ON admin_roles (member_id, COALESCE(domain_id, 0));
CREATE INDEX admin_roles_domain ON admin_roles (domain_id);

-- A domain's security policy for third-party logins, read with the member
-- on every login. policy_protocols: the protocols apps may use, comma-
-- separated, NULL for every one; policy_allow_cidrs: the client networks
-- allowed, comma-separated, '' for any; policy_expire_unused_days: app
-- passwords unused that long are deleted, 0 for never; policy_force_setting:
-- "Use a third-party app password" on for every member of an optional domain.
ALTER TABLE domains ADD COLUMN policy_protocols TEXT;
ALTER TABLE domains ADD COLUMN policy_allow_cidrs TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN policy_expire_unused_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN policy_force_setting INTEGER NOT NULL DEFAULT 0;

-- When the member was told that this app password expires soon unused: the
-- warning is sent once.
ALTER TABLE app_passwords ADD COLUMN expiry_warned_at INTEGER;

-- Events about a whole domain (a policy change) name it; 0 otherwise.
ALTER TABLE events ADD COLUMN domain_id INTEGER NOT NULL DEFAULT 0;

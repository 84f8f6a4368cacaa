-- Aliases and distribution lists: an address of a local domain whose mail
-- goes to one or more members (alias_targets). An alias never shares its
-- address with a member: both inserts check the other table in a
-- transaction that holds the write lock (SQLite transactions begin
-- IMMEDIATE; PostgreSQL locks the domain's row, see sqlstore/alias.go).
-- A member's deletion removes it from every alias (ON DELETE CASCADE); an
-- alias left with no target stays, and mail to it is refused.
CREATE TABLE aliases (
	id         BIGSERIAL PRIMARY KEY,
	domain_id  BIGINT NOT NULL REFERENCES domains(id),
	address    TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL
);
CREATE INDEX aliases_domain ON aliases(domain_id);

CREATE TABLE alias_targets (
	alias_id  BIGINT NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,
	member_id BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	PRIMARY KEY (alias_id, member_id)
);
CREATE INDEX alias_targets_member ON alias_targets(member_id);

-- The member who gets the domain's mail to addresses nobody has; NULL for
-- none (unknown addresses are refused).
ALTER TABLE domains ADD COLUMN catchall_member_id BIGINT REFERENCES members(id) ON DELETE SET NULL;

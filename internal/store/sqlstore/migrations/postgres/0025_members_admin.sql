-- Administrators page through and search every member: by address (keyset
-- pagination, ordered by address, within a domain or across all), and by a
-- prefix of the address or of the display name, in every domain or
-- within the administrator's. The search compares bytes
-- (COLLATE "C"), as SQLite does, so that a prefix is a range of the index
-- whatever the database's collation. name_key is the name as searched
-- (NFKC, lower case; written by the store, filled in for existing rows by
-- the Go migration that follows).
ALTER TABLE members ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
CREATE INDEX members_email_c ON members(email COLLATE "C");
CREATE INDEX members_domain_email_c ON members(domain_id, email COLLATE "C");
CREATE INDEX members_name_key_c ON members(name_key COLLATE "C", email COLLATE "C");
CREATE INDEX members_domain_name_key_c ON members(domain_id, name_key COLLATE "C", email COLLATE "C");
-- members_domain is a prefix of members_domain_email_c.
DROP INDEX IF EXISTS members_domain;

-- An administrator's reset leaves a one-time main password: it opens only
-- the web sign-in, which then asks for a new one before anything else.
ALTER TABLE members ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;

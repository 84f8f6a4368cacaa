-- Administrators page through and search every member: by address (keyset
-- pagination, ordered by address, within a domain or across all), and by a
-- prefix of the address or of the display name, in every domain or
-- within the administrator's. name_key is the name as
-- searched (NFKC, lower case; written by the store, filled in for existing
-- rows by the Go migration that follows), since SQLite's lower() folds
-- ASCII only.
ALTER TABLE members ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
CREATE INDEX members_domain_email ON members(domain_id, email);
CREATE INDEX members_name_key ON members(name_key, email);
CREATE INDEX members_domain_name_key ON members(domain_id, name_key, email);
-- members_domain is a prefix of members_domain_email.
DROP INDEX IF EXISTS members_domain;

-- An administrator's reset leaves a one-time main password: it opens only
-- the web sign-in, which then asks for a new one before anything else.
ALTER TABLE members ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;

-- Automatic certificates (ACME): the account keys, certificates, private
-- keys and their metadata that the ACME client keeps, by its slash-separated
-- key ("certificates/CA/NAME/NAME.crt"). In the database rather than the data
-- folder so that every node of a PostgreSQL cluster uses the certificate one
-- of them obtained, and answers the challenges of another's order.
CREATE TABLE acme_objects (
	name        TEXT PRIMARY KEY,
	value       BLOB NOT NULL,
	modified_at INTEGER NOT NULL
);

-- Named leases that keep two nodes from ordering the same certificate at
-- once: a lease is taken when none exists or the existing one has expired
-- (its node died), and its holder extends it while it works.
CREATE TABLE acme_locks (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);

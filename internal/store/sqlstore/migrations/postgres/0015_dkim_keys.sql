-- DKIM signing keys (RFC 6376): per domain an Ed25519 and an RSA key made
-- together and active together. A rotation makes a new pair active; the
-- old pair stays published (its DNS records still needed by mail in
-- flight) until retired, which erases its private key. A selector is never
-- reused by its domain.
-- private_sealed is the PKCS #8 private key sealed with AES-256-GCM under a
-- key derived from the secret key file (internal/dkim): the database alone
-- does not give the keys.
CREATE TABLE dkim_keys (
	id             BIGSERIAL PRIMARY KEY,
	domain_id      BIGINT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
	selector       TEXT NOT NULL,
	algorithm      TEXT NOT NULL, -- 'ed25519' or 'rsa'
	private_sealed BYTEA,         -- NULL once retired
	public         TEXT NOT NULL, -- the TXT value "v=DKIM1; k=…; p=…"
	created_at     BIGINT NOT NULL,
	active         BOOLEAN NOT NULL DEFAULT FALSE,
	retired_at     BIGINT,
	UNIQUE (domain_id, selector)
);

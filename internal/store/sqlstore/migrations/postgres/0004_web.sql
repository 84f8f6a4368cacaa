-- Web UI and API sessions. id is the SHA-256 of the 256-bit random token
-- held in the cookie; the token itself is never stored.
CREATE TABLE web_sessions (
	id           BYTEA PRIMARY KEY,
	member_id    BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	created_at   BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL,
	reauth_at    BIGINT NOT NULL,
	csrf         TEXT NOT NULL,
	user_agent   TEXT NOT NULL DEFAULT '',
	ip           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_member ON web_sessions(member_id);
CREATE INDEX web_sessions_last_seen ON web_sessions(last_seen_at);
CREATE INDEX web_sessions_created ON web_sessions(created_at);

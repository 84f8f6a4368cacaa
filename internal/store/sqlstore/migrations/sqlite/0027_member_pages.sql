-- The member's time zone (IANA name, '' until the browser or the member
-- sets it): times in the web UI and in the notices to the member.
ALTER TABLE member_prefs ADD COLUMN time_zone TEXT NOT NULL DEFAULT '';

-- Server-wide settings that every command must find without being told
-- again, such as the public base URL that links in notices point to.
CREATE TABLE server_settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- One-time views of a just-created third-party app password, for the page a
-- browser is redirected to after the form (POST-redirect-GET). sealed is the
-- password encrypted under a key derived from the session's cookie token,
-- which the database never holds, so a copy of this table reveals nothing;
-- a view ends when it is shown, when it expires, or with its session.
CREATE TABLE web_reveals (
	id         TEXT PRIMARY KEY,
	session_id BLOB NOT NULL REFERENCES web_sessions(id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL,
	sealed     BLOB NOT NULL
);
CREATE INDEX web_reveals_session ON web_reveals(session_id);

-- Notifications in the member's language: the kind (already stored) and its
-- parameters (app name, time, IP, browser, via, links) as a JSON object, so
-- that the web UI and the API can render a message in Japanese. subject and
-- body stay the English rendering, the fallback and the INBOX mail.
ALTER TABLE messages ADD COLUMN params TEXT NOT NULL DEFAULT '{}';

-- The sessions list ("Where you're signed in"): a random public id names a
-- session in pages and the API. The primary key is the SHA-256 of the cookie
-- token; showing it would not let anyone sign in, but a separate id keeps
-- anything derived from the token out of HTML and JSON altogether.
ALTER TABLE web_sessions ADD COLUMN public_id TEXT NOT NULL DEFAULT '';
UPDATE web_sessions SET public_id = lower(hex(randomblob(16))) WHERE public_id = '';
CREATE UNIQUE INDEX web_sessions_public ON web_sessions(public_id);

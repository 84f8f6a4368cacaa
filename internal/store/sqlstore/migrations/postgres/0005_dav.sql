-- Calendars and address books (internal/davserver). Times are BIGINT
-- microseconds since the Unix epoch, UTC.

-- One row per member whose default calendar and address book were created,
-- so that a deleted default is not brought back.
CREATE TABLE dav_accounts (
	member_id BIGINT PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE
);

CREATE TABLE dav_collections (
	id          BIGSERIAL PRIMARY KEY,
	member_id   BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	kind        TEXT NOT NULL, -- calendar | addressbook
	name        TEXT NOT NULL, -- URL path segment
	displayname TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	color       TEXT NOT NULL DEFAULT '',
	components  TEXT NOT NULL DEFAULT '',
	seq         BIGINT NOT NULL DEFAULT 0, -- getctag and sync token (RFC 6578)
	created_at  BIGINT NOT NULL,
	UNIQUE (member_id, kind, name)
);

-- start_at/end_at bound every instance of a calendar object for time-range
-- queries; NULL is unbounded.
CREATE TABLE dav_objects (
	id            BIGSERIAL PRIMARY KEY,
	collection_id BIGINT NOT NULL REFERENCES dav_collections(id) ON DELETE CASCADE,
	name          TEXT NOT NULL,
	etag          TEXT NOT NULL,
	uid           TEXT NOT NULL DEFAULT '',
	component     TEXT NOT NULL DEFAULT '',
	start_at      BIGINT,
	end_at        BIGINT,
	modified_at   BIGINT NOT NULL,
	size          BIGINT NOT NULL,
	data          BYTEA NOT NULL,
	UNIQUE (collection_id, name)
);
-- One UID per collection (RFC 4791 §5.3.2.1 no-uid-conflict).
CREATE UNIQUE INDEX dav_objects_uid ON dav_objects(collection_id, uid) WHERE uid <> '';
CREATE INDEX dav_objects_range ON dav_objects(collection_id, component, start_at);

-- The latest change of each object name, deletions included (tombstones),
-- for sync-collection (RFC 6578).
CREATE TABLE dav_changes (
	collection_id BIGINT NOT NULL REFERENCES dav_collections(id) ON DELETE CASCADE,
	name          TEXT NOT NULL,
	seq           BIGINT NOT NULL,
	deleted       BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (collection_id, name)
);
CREATE INDEX dav_changes_seq ON dav_changes(collection_id, seq);

-- Each event carries the id of the transaction that wrote it, so tailers can
-- read only events of transactions that have ended (EventsAfter) instead of
-- writers committing one at a time. Rows already here belong to ended
-- transactions: 0 places them first.
ALTER TABLE events ADD COLUMN xid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ALTER COLUMN xid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_xid ON events(xid, seq);

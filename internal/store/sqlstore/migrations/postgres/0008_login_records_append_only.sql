-- Login records are written in batches as fast as members log in and read
-- rarely. The (member_id, at) index put each record of a batch on a page of
-- its own, scattered over the index, so that every batch rewrote (and on
-- SQLite checkpointed) about one page per record: most of the cost of
-- recording logins (docs/benchmarks.md). Without it, a batch appends to the
-- table and to the at index. A member's records are found through the at
-- index, newest first, which is how they are read.
DROP INDEX IF EXISTS login_records_member;

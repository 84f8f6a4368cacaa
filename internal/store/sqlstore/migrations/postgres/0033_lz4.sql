-- Message bodies and the large index rows (mail_index_bulk) are compressed
-- with LZ4 instead of PostgreSQL's default, pglz, where the server has it
-- (PostgreSQL 14 or later, built with lz4; elsewhere this changes nothing).
-- A value over about 2 kB is compressed as it is stored, in the statement
-- that stores a message, before the APPEND or the delivery is answered:
-- pglz took a tenth of the server's time for an APPEND of a message of a
-- few kilobytes, LZ4 a fraction of that, and it reads back faster too. The
-- values already stored keep their compression, which PostgreSQL reads
-- either way.
DO $$
BEGIN
	EXECUTE 'ALTER TABLE mail_bodies ALTER COLUMN body SET COMPRESSION lz4';
	EXECUTE 'ALTER TABLE mail_index_bulk ALTER COLUMN preview SET COMPRESSION lz4,
		ALTER COLUMN envelope SET COMPRESSION lz4, ALTER COLUMN envelope_utf8 SET COMPRESSION lz4,
		ALTER COLUMN body_plain SET COMPRESSION lz4, ALTER COLUMN body_plain_utf8 SET COMPRESSION lz4,
		ALTER COLUMN bodystructure SET COMPRESSION lz4, ALTER COLUMN bodystructure_utf8 SET COMPRESSION lz4,
		ALTER COLUMN body_text SET COMPRESSION lz4, ALTER COLUMN header_text SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
	-- No LZ4 in this server, or no SET COMPRESSION (PostgreSQL 13).
	NULL;
END $$;

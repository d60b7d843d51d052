-- 004_fetch: raw messages compressed with lz4 instead of pglz.
--
-- mail_blobs.data is read whole by every FETCH of a body (BODY[], RFC822,
-- any section): PostgreSQL decompresses the stored value each time. pglz
-- decompresses several times slower than lz4 and compresses far slower at
-- APPEND, for about the same ratio on mail. The setting applies to values
-- written from now on; existing ones stay pglz (PostgreSQL reads both),
-- so this changes no row and takes no time on a big store (rewriting the
-- old values would rewrite the whole table for a small gain on old mail).
--
-- A server built without lz4 support keeps pglz (the migration still
-- succeeds). Needs no extension.
DO $$
BEGIN
	ALTER TABLE mail_blobs ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
	RAISE NOTICE 'lz4 is not available: mail_blobs.data stays pglz-compressed';
END $$;

-- 003_search.sql - SEARCH and SORT without reading the wide message rows.
--
-- A mail_messages row carries the MIME structure, preview, addresses and
-- references (about 1.3 KB each), so a SEARCH UNSEEN or a SORT over a whole
-- folder used to read and deform every row of the folder. Here:
--
-- * the lower-cased sort keys of SORT SUBJECT and SORT FROM (RFC 5256,
--   compared as octets) are stored generated columns, computed once when a
--   row is written instead of lower() per row at every SORT. They hold the
--   first 200 characters of lower(base_subject) / lower(from_sort), the
--   expressions mail_search.c sorts on: a prefix orders like the whole
--   string except between two keys of 200 characters with the same
--   prefix, and mail_search.c sorts again on the whole expressions when a
--   result has such a tie (the cut keeps index entries far below the
--   btree size limit: fields may be up to 64 KB);
-- * the primary key index (UID order) also carries what the common criteria
--   and sort keys read (flags, size, dates, header length, the two keys),
--   so those run as index-only scans, already in UID order. It is the
--   primary key rather than a second index on the same columns because a
--   flag change can never be a HOT update (modseq is indexed): every
--   index of the table gets a new entry per changed message, and STORE
--   1:* on a big folder pays for each one. mail_seen's foreign key
--   depends on that index and is re-created with it.
--
-- Adding the generated columns rewrites mail_messages once (this fills them
-- for existing messages); until the next vacuum marks the pages all-visible
-- the planner keeps using the table as before.
-- Never edit this file once it has landed: add a new migration instead.

ALTER TABLE mail_messages
	ADD COLUMN subject_key text COLLATE "C"
		GENERATED ALWAYS AS (left(lower(base_subject), 200)) STORED,
	ADD COLUMN from_key text COLLATE "C"
		GENERATED ALWAYS AS (left(lower(from_sort), 200)) STORED;

ALTER TABLE mail_seen DROP CONSTRAINT mail_seen_account_id_collection_id_uid_fkey;
ALTER TABLE mail_messages DROP CONSTRAINT mail_messages_pkey;
ALTER TABLE mail_messages ADD CONSTRAINT mail_messages_pkey
	PRIMARY KEY (account_id, collection_id, uid)
	INCLUDE (flags, size, internaldate, sent_date, hdr_len, subject_key, from_key);
ALTER TABLE mail_seen ADD CONSTRAINT mail_seen_account_id_collection_id_uid_fkey
	FOREIGN KEY (account_id, collection_id, uid)
	REFERENCES mail_messages (account_id, collection_id, uid)
	ON UPDATE CASCADE ON DELETE CASCADE;

-- Index-only scans need the visibility map: vacuum a folder's new rows soon
-- after they come (a bulk import, a sync), and the rows a flag change
-- rewrote, instead of after a fifth of the table (the defaults).
ALTER TABLE mail_messages SET (autovacuum_vacuum_insert_threshold = 1000,
                               autovacuum_vacuum_insert_scale_factor = 0.01,
                               autovacuum_vacuum_scale_factor = 0.05);

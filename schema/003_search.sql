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
-- * one narrow covering index in UID order holds what the common criteria
--   and sort keys read (flags, size, dates, header length, the two keys),
--   so those run as index-only scans, already in UID order.
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

CREATE INDEX mail_messages_search ON mail_messages (account_id, collection_id, uid)
	INCLUDE (flags, size, internaldate, sent_date, hdr_len, subject_key, from_key);

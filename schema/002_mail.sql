-- 002_mail: the mail store (groupware/mailstore.c, mail_*.c; docs/MAILSTORE.md).
--
-- Raw messages are stored once per account, content-addressed by SHA-256
-- (mail_blobs, with the message's search text); a message row per (account,
-- folder, UID) refers to its blob and carries everything parsed once at
-- delivery, so FETCH, SEARCH, SORT and THREAD never re-parse. Quota usage (accounts.used_storage/used_messages)
-- and blob garbage collection are kept right by triggers on mail_messages,
-- so every path that adds or removes messages (the mail store, a folder
-- deleted with its content, an account removed) keeps them exact, in the
-- same transaction.
-- Never edit this file once it has landed: add a new migration instead.

CREATE TABLE mail_blobs (
	account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	sha256     bytea NOT NULL,
	size       bigint NOT NULL,
	data       bytea NOT NULL,
	-- search text, a function of the content: kept here rather than on
	-- mail_messages so that flag changes (STORE) never touch the trigram
	-- indexes. Decoded UTF-8, as mime.c's search text produces it.
	header_text text NOT NULL DEFAULT '',         -- decoded header values (TEXT)
	body_text   text NOT NULL DEFAULT '',         -- decoded text bodies (BODY, TEXT)
	PRIMARY KEY (account_id, sha256)
);
-- substring search (SEARCH TEXT/BODY): ILIKE '%needle%' uses these
CREATE INDEX mail_blobs_header_trgm ON mail_blobs USING gin (header_text gin_trgm_ops);
CREATE INDEX mail_blobs_body_trgm ON mail_blobs USING gin (body_text gin_trgm_ops);

-- Dates are unix seconds. Text columns hold decoded UTF-8 (what mime.c's
-- summary produces); NULL means the header is absent.
CREATE TABLE mail_messages (
	account_id    bigint NOT NULL,
	collection_id bigint NOT NULL,
	uid           bigint NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),
	modseq        bigint NOT NULL,
	flags         integer NOT NULL DEFAULT 0,        -- MF_* of the owner
	keywords      text[] NOT NULL DEFAULT '{}',
	internaldate  bigint NOT NULL,
	savedate      bigint,                            -- RFC 8514 SAVEDATE
	size          bigint NOT NULL,                   -- RFC822.SIZE
	blob          bytea NOT NULL,                    -- mail_blobs.sha256
	hdr_len       integer NOT NULL,                  -- raw header block length
	structure     bytea NOT NULL,                    -- mime_serialize()
	subject       text,
	base_subject  text NOT NULL DEFAULT '',          -- RFC 5256
	from_         text,
	from_sort     text NOT NULL DEFAULT '',
	from_display  text NOT NULL DEFAULT '',          -- RFC 5957
	to_           text,
	to_sort       text NOT NULL DEFAULT '',
	to_display    text NOT NULL DEFAULT '',
	cc            text,
	cc_sort       text NOT NULL DEFAULT '',
	bcc           text,
	sent_date     bigint,                            -- Date:
	message_id    text,                              -- without <>
	in_reply_to   text,
	references_   text,                              -- space-separated, without <>
	preview       text,                              -- RFC 8970
	emailid       text NOT NULL,                     -- RFC 8474
	threadid      text NOT NULL,
	PRIMARY KEY (account_id, collection_id, uid),
	FOREIGN KEY (account_id, collection_id) REFERENCES collections(account_id, id)
		ON DELETE CASCADE ON UPDATE CASCADE
);
-- CONDSTORE/QRESYNC: what changed since a modseq
CREATE INDEX mail_messages_modseq ON mail_messages(account_id, collection_id, modseq);
-- blob garbage collection, EMAILID
CREATE INDEX mail_messages_blob ON mail_messages(account_id, blob);

-- \Seen of viewers who are not the owner (shared folders, shared
-- mailboxes): one row per message a user has seen.
CREATE TABLE mail_seen (
	account_id    bigint NOT NULL,
	collection_id bigint NOT NULL,
	uid           bigint NOT NULL,
	user_id       bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	PRIMARY KEY (account_id, collection_id, uid, user_id),
	FOREIGN KEY (account_id, collection_id, uid)
		REFERENCES mail_messages(account_id, collection_id, uid)
		ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX mail_seen_user ON mail_seen(user_id);

-- Keywords ever used in a folder (the FLAGS response): grows only, as in
-- other servers, so a client never sees a keyword vanish from FLAGS.
CREATE TABLE mail_keywords (
	account_id    bigint NOT NULL,
	collection_id bigint NOT NULL,
	keyword       text NOT NULL,
	PRIMARY KEY (account_id, collection_id, keyword),
	FOREIGN KEY (account_id, collection_id) REFERENCES collections(account_id, id)
		ON DELETE CASCADE
);

-- RFC 5464 METADATA. collection_id 0 = server (account-level) entries;
-- owner_user 0 = /shared entries, else the user whose /private entry it is.
-- entry is the full lower-case name ("/shared/comment").
CREATE TABLE mail_metadata (
	account_id    bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	collection_id bigint NOT NULL,
	owner_user    bigint NOT NULL,
	entry         text NOT NULL,
	value         bytea NOT NULL,
	PRIMARY KEY (account_id, collection_id, owner_user, entry)
);

-- ---- triggers ------------------------------------------------------------

-- Quota usage follows the message rows (every copy counts, as RFC 9208
-- STORAGE is the sum of the messages' sizes).
CREATE FUNCTION mail_messages_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE accounts a
	   SET used_storage = a.used_storage + n.bytes,
	       used_messages = a.used_messages + n.msgs
	  FROM (SELECT account_id, sum(size) AS bytes, count(*) AS msgs
		  FROM new_rows GROUP BY account_id) n
	 WHERE a.id = n.account_id;
	RETURN NULL;
END $$;

-- Usage goes down, and a blob no message of its account refers to any more
-- is deleted in the same transaction.
CREATE FUNCTION mail_messages_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE accounts a
	   SET used_storage = greatest(a.used_storage - o.bytes, 0),
	       used_messages = greatest(a.used_messages - o.msgs, 0)
	  FROM (SELECT account_id, sum(size) AS bytes, count(*) AS msgs
		  FROM old_rows GROUP BY account_id) o
	 WHERE a.id = o.account_id;
	DELETE FROM mail_blobs b
	 USING (SELECT DISTINCT account_id, blob FROM old_rows) o
	 WHERE b.account_id = o.account_id AND b.sha256 = o.blob
	   AND NOT EXISTS (SELECT 1 FROM mail_messages m
			    WHERE m.account_id = o.account_id AND m.blob = o.blob);
	RETURN NULL;
END $$;

CREATE TRIGGER mail_messages_added AFTER INSERT ON mail_messages
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION mail_messages_added();
CREATE TRIGGER mail_messages_removed AFTER DELETE ON mail_messages
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION mail_messages_removed();

-- A deleted folder takes its METADATA with it (RFC 5464 4.1 SHOULD);
-- server entries (collection 0) stay.
CREATE FUNCTION mail_collection_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM mail_metadata m
	 USING old_rows o
	 WHERE m.account_id = o.account_id AND m.collection_id = o.id
	   AND o.kind = 'mail';
	RETURN NULL;
END $$;
CREATE TRIGGER mail_collection_deleted AFTER DELETE ON collections
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION mail_collection_deleted();

-- Mailboxes grow in bursts (an import, a sync): keep the planner's statistics
-- fresh, or SEARCH TEXT/BODY plans a scan instead of the trigram index once
-- a folder has grown since the last ANALYZE.
ALTER TABLE mail_messages SET (autovacuum_analyze_scale_factor = 0.01,
                               autovacuum_analyze_threshold = 1000);
ALTER TABLE mail_blobs SET (autovacuum_analyze_scale_factor = 0.01,
                            autovacuum_analyze_threshold = 1000);

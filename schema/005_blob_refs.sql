-- 005_blob_refs: count the messages that refer to a blob instead of
-- indexing mail_messages by blob.
--
-- A flag change (STORE) is never a HOT update (modseq is indexed), so every
-- index of mail_messages gets a new entry for every changed message; the
-- (account_id, blob) index was there only so that the last EXPUNGE of a
-- blob's messages could tell the blob is no longer used, and it cost about
-- a fifth of a STORE 1:* on a big folder. mail_blob_refs keeps that count,
-- maintained by the same statement-level triggers that keep the quota
-- usage: one small upsert per APPEND/COPY, one update per EXPUNGE, nothing
-- per STORE. (It is a table of its own rather than a column of mail_blobs
-- so that counting never writes a new version of a blob row, whose search
-- text sits in trigram indexes.)
-- Never edit this file once it has landed: add a new migration instead.

CREATE TABLE mail_blob_refs (
	account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	sha256     bytea NOT NULL,
	refs       integer NOT NULL,
	PRIMARY KEY (account_id, sha256)
);

INSERT INTO mail_blob_refs (account_id, sha256, refs)
	SELECT account_id, blob, count(*) FROM mail_messages GROUP BY account_id, blob;

CREATE OR REPLACE FUNCTION mail_messages_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE accounts a
	   SET used_storage = a.used_storage + n.bytes,
	       used_messages = a.used_messages + n.msgs
	  FROM (SELECT account_id, sum(size) AS bytes, count(*) AS msgs
		  FROM new_rows GROUP BY account_id) n
	 WHERE a.id = n.account_id;
	INSERT INTO mail_blob_refs AS r (account_id, sha256, refs)
		SELECT account_id, blob, count(*) FROM new_rows GROUP BY account_id, blob
		ON CONFLICT (account_id, sha256) DO UPDATE SET refs = r.refs + EXCLUDED.refs;
	RETURN NULL;
END $$;

-- Usage goes down, and a blob no message of its account refers to any more
-- is deleted in the same transaction.
CREATE OR REPLACE FUNCTION mail_messages_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE accounts a
	   SET used_storage = greatest(a.used_storage - o.bytes, 0),
	       used_messages = greatest(a.used_messages - o.msgs, 0)
	  FROM (SELECT account_id, sum(size) AS bytes, count(*) AS msgs
		  FROM old_rows GROUP BY account_id) o
	 WHERE a.id = o.account_id;
	WITH dec AS (
		UPDATE mail_blob_refs r SET refs = r.refs - o.n
		  FROM (SELECT account_id, blob, count(*) AS n
			  FROM old_rows GROUP BY account_id, blob) o
		 WHERE r.account_id = o.account_id AND r.sha256 = o.blob
		RETURNING r.account_id, r.sha256, r.refs)
	DELETE FROM mail_blobs b USING dec d
	 WHERE b.account_id = d.account_id AND b.sha256 = d.sha256 AND d.refs <= 0;
	DELETE FROM mail_blob_refs r
	 USING (SELECT DISTINCT account_id, blob FROM old_rows) o
	 WHERE r.account_id = o.account_id AND r.sha256 = o.blob AND r.refs <= 0;
	RETURN NULL;
END $$;

DROP INDEX mail_messages_blob;

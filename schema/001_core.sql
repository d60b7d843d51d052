-- 001_core: principals, collections, the change log, ACLs, throttling.
--
-- Every account-owned table's primary key starts with account_id (so the
-- schema can be distributed by account). Never edit this file once it has
-- landed: add a new numbered migration instead.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE domains (
	id          bigserial PRIMARY KEY,
	name        text NOT NULL UNIQUE CHECK (name = lower(name)),
	catchall_id bigint,                       -- account receiving unknown localparts
	created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per principal: user, shared mailbox, resource, group.
-- modseq is the account's change counter (ARCHITECTURE.md: the change log).
CREATE TABLE accounts (
	id             bigserial PRIMARY KEY,
	domain_id      bigint NOT NULL REFERENCES domains(id),
	localpart      text NOT NULL CHECK (localpart = lower(localpart)),
	kind           text NOT NULL CHECK (kind IN ('user', 'shared', 'resource', 'group')),
	display_name   text NOT NULL DEFAULT '',
	password_hash  text,                      -- NULL: no password login
	disabled       boolean NOT NULL DEFAULT false,
	quota_storage  bigint NOT NULL DEFAULT 0, -- bytes, 0 = unlimited
	quota_messages bigint NOT NULL DEFAULT 0,
	modseq         bigint NOT NULL DEFAULT 1,
	-- last UIDVALIDITY handed to one of its collections: the next one is
	-- GREATEST(this + 1, epoch seconds), so a folder deleted and created
	-- again under the same name never shows a client an old UIDVALIDITY.
	last_uidvalidity bigint NOT NULL DEFAULT 0,
	used_storage   bigint NOT NULL DEFAULT 0, -- maintained by the mail store
	used_messages  bigint NOT NULL DEFAULT 0,
	created_at     timestamptz NOT NULL DEFAULT now(),
	UNIQUE (domain_id, localpart)
);
ALTER TABLE domains ADD FOREIGN KEY (catchall_id) REFERENCES accounts(id) ON DELETE SET NULL;

-- Extra addresses of an account (lower-case, full address).
CREATE TABLE aliases (
	address    text PRIMARY KEY CHECK (address = lower(address)),
	account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE
);
CREATE INDEX aliases_account ON aliases(account_id);

-- Members of groups (and of shared mailboxes, for listing).
CREATE TABLE members (
	account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, -- the group / shared
	member_id  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	PRIMARY KEY (account_id, member_id),
	CHECK (account_id <> member_id)
);
CREATE INDEX members_member ON members(member_id);

CREATE TABLE app_passwords (
	account_id    bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	id            bigserial,
	name          text NOT NULL,
	password_hash text NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now(),
	last_used     timestamptz,
	PRIMARY KEY (account_id, id)
);

-- Every folder-like thing. Mail folder names are full '/'-separated paths.
CREATE TABLE collections (
	account_id     bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	id             bigserial,
	kind           text NOT NULL CHECK (kind IN ('mail', 'calendar', 'addressbook', 'tasks')),
	name           text NOT NULL,
	special_use    text,
	uidvalidity    bigint NOT NULL CHECK (uidvalidity BETWEEN 1 AND 4294967295),
	uidnext        bigint NOT NULL DEFAULT 1,
	modseq         bigint NOT NULL DEFAULT 1,   -- highest modseq of anything in it
	created_modseq bigint NOT NULL DEFAULT 1,
	subscribed     boolean NOT NULL DEFAULT true,
	color          text,
	description    text,
	PRIMARY KEY (account_id, id),
	UNIQUE (account_id, kind, name)
);

-- Deleted things, stamped with the change counter value of the delete.
-- kind: 'message' (collection_id, item_uid), 'event'/'contact' (name),
-- 'collection' (collection_id, name). A surrogate id is the key because one
-- change (one modseq) may delete several events or contacts of a collection.
CREATE TABLE tombstones (
	account_id    bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	id            bigserial,
	collection_id bigint NOT NULL,
	modseq        bigint NOT NULL,
	kind          text NOT NULL,
	item_uid      bigint NOT NULL DEFAULT 0,
	name          text,
	PRIMARY KEY (account_id, id)
);
CREATE INDEX tombstones_coll ON tombstones(account_id, collection_id, modseq);
CREATE INDEX tombstones_kind ON tombstones(account_id, kind, modseq);

-- ACLs: (owner account, collection or 0 = whole account, grantee) -> rights
-- (RFC 4314 letters). grantee_id: an account id, or -1 anyone, -2 authenticated.
CREATE TABLE acl (
	account_id    bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	collection_id bigint NOT NULL DEFAULT 0,
	grantee_id    bigint NOT NULL,
	rights        text NOT NULL,
	PRIMARY KEY (account_id, collection_id, grantee_id),
	CHECK (grantee_id > 0 OR grantee_id IN (-1, -2))
);
CREATE INDEX acl_grantee ON acl(grantee_id);

-- Failed-login throttle: key is 'ip:1.2.3.4' or 'acct:alice@example.test'.
CREATE TABLE auth_failures (
	key          text PRIMARY KEY,
	failures     integer NOT NULL DEFAULT 0,
	window_start timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_failures_window ON auth_failures(window_start);

/*
 * collection.c - mail folders, calendars, address books and task lists.
 *
 * Mail folder names are full '/'-separated UTF-8 paths; "INBOX" is matched
 * case-insensitively (also as the first component of a child, "inbox/x")
 * and always stored as "INBOX" (RFC 3501 section 5.1). Creating or renaming
 * to "A/B/C" creates missing superiors "A" and "A/B" (RFC 3501 6.3.3, 6.3.5
 * SHOULD). Renaming a mail folder moves its children with it; deleting one
 * leaves its children alone (they simply have no superior any more).
 *
 * Every change takes the account's next counter value (changelog_next),
 * stamps the collections it touched with it and notifies. A collection's
 * UIDVALIDITY comes from accounts.last_uidvalidity: GREATEST(previous + 1,
 * epoch seconds), so a folder deleted and created again under the same
 * name never gets a value a client may have cached.
 *
 * Return values (the header leaves them open; principal.h's convention):
 *   1  done / found;
 *   0  refused for a reason the caller reports as is (*error_r): no such
 *      collection, name exists, bad name, INBOX may not be deleted;
 *  -1  database or internal error (temporary; details are in the log).
 * List functions return 1 (their count in *n_r) or -1.
 * *error_r points to a thread-local buffer valid until the next call of a
 * collection_* function on the same thread.
 *
 * Left out: renaming INBOX (moving its messages belongs to the mail store:
 * it returns -1 with an error saying so), \Noselect placeholders.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "groupware/collection.h"
#include "server/core/db.h"

#define MAIL_NAME_MAX 1000
#define OTHER_NAME_MAX 255


static __thread char coll_err[320];

static const char *errf(const char *fmt, ...) BU_PRINTF(1, 2);
static const char *errf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(coll_err, sizeof(coll_err), fmt, ap);
	va_end(ap);
	return coll_err;
}

static void set_err(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
}

#define DB_ERROR "internal database error"

struct i64str {
	char s[24];
};

static struct i64str i64s(int64_t v)
{
	struct i64str r;

	snprintf(r.s, sizeof(r.s), "%" PRId64, v);
	return r;
}

static const char *const kind_names[] = {
	[COLL_MAIL] = "mail",
	[COLL_CALENDAR] = "calendar",
	[COLL_ADDRESSBOOK] = "addressbook",
	[COLL_TASKS] = "tasks",
};

const char *collection_kind_name(enum collection_kind k)
{
	if ((unsigned)k < BU_N_ELEMENTS(kind_names))
		return kind_names[k];
	return "unknown";
}

static enum collection_kind kind_parse(const char *s)
{
	for (size_t i = 0; i < BU_N_ELEMENTS(kind_names); i++) {
		if (strcmp(s, kind_names[i]) == 0)
			return (enum collection_kind)i;
	}
	return COLL_MAIL;
}

/* ---- names ---------------------------------------------------------- */

/* Valid UTF-8 without control characters? */
static bool utf8_text_ok(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;

	while (*p != '\0') {
		uint32_t c = *p;
		size_t n;

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			c &= 0x07;
		} else {
			return false;
		}
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			c = (c << 6) | (p[i] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF, C1 controls */
		if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) ||
		    (n == 3 && c < 0x10000) || c > 0x10ffff ||
		    (c >= 0xd800 && c <= 0xdfff) || (c >= 0x80 && c < 0xa0))
			return false;
		p += n + 1;
	}
	return true;
}

/* Checks a name and returns its stored form (heap), or NULL with *error_r. */
static char *name_normalize(enum collection_kind kind, const char *name,
			    const char **error_r)
{
	size_t len;
	char *out;

	if (name == NULL || *name == '\0') {
		set_err(error_r, "the name is empty");
		return NULL;
	}
	len = strlen(name);
	if (len > (kind == COLL_MAIL ? MAIL_NAME_MAX : OTHER_NAME_MAX)) {
		set_err(error_r, "the name is too long");
		return NULL;
	}
	if (!utf8_text_ok(name)) {
		set_err(error_r, "the name is not valid UTF-8 text");
		return NULL;
	}
	out = bu_strdup(name);
	if (kind != COLL_MAIL)
		return out;
	if (name[0] == '/' || name[len - 1] == '/' || strstr(name, "//") != NULL) {
		set_err(error_r, "a folder name may not start or end with '/' or contain '//'");
		free(out);
		return NULL;
	}
	if (strpbrk(name, "*%") != NULL) {
		set_err(error_r, "a folder name may not contain '*' or '%'");
		free(out);
		return NULL;
	}
	/* INBOX is case-insensitive, also as the superior of a child */
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return out;
}

static bool is_special_use(const char *s)
{
	static const char *const uses[] = {
		"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent",
		"\\Trash", "\\Important",
	};

	for (size_t i = 0; i < BU_N_ELEMENTS(uses); i++) {
		if (strcasecmp(s, uses[i]) == 0)
			return true;
	}
	return false;
}

/* ---- rows ----------------------------------------------------------- */

#define COLL_COLS "account_id, id, kind, name, special_use, uidvalidity, uidnext," \
	" modseq, created_modseq, subscribed, color, description"

static char *dupv(struct bu_arena *a, const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return bu_arena_strdup(a, PQgetvalue(res, row, col));
}

static int64_t i64v(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void row_to_coll(struct bu_arena *a, const PGresult *res, int row,
			struct collection *c)
{
	c->account_id = i64v(res, row, 0);
	c->id = i64v(res, row, 1);
	c->kind = kind_parse(PQgetvalue(res, row, 2));
	c->name = dupv(a, res, row, 3);
	c->special_use = dupv(a, res, row, 4);
	c->uidvalidity = (uint32_t)i64v(res, row, 5);
	c->uidnext = (uint32_t)i64v(res, row, 6);
	c->modseq = i64v(res, row, 7);
	c->created_modseq = i64v(res, row, 8);
	c->subscribed = PQgetvalue(res, row, 9)[0] == 't';
	c->color = dupv(a, res, row, 10);
	c->description = dupv(a, res, row, 11);
}

static int one_coll(struct bu_db *db, struct bu_arena *a, const char *sql, int n,
		    const char *const *params, struct collection **c_r)
{
	PGresult *res = bu_db_query(db, sql, n, params);

	*c_r = NULL;
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	*c_r = bu_arena_alloc(a, sizeof(**c_r));
	row_to_coll(a, res, 0, *c_r);
	PQclear(res);
	return 1;
}

int collection_get(struct bu_db *db, struct bu_arena *a, int64_t account_id,
		   int64_t id, struct collection **c_r)
{
	struct i64str ac = i64s(account_id), cid = i64s(id);
	const char *params[2] = { ac.s, cid.s };

	return one_coll(db, a, "SELECT " COLL_COLS " FROM collections"
			" WHERE account_id = $1 AND id = $2", 2, params, c_r);
}

int collection_get_by_name(struct bu_db *db, struct bu_arena *a, int64_t account_id,
			   enum collection_kind kind, const char *name,
			   struct collection **c_r)
{
	struct i64str ac = i64s(account_id);
	const char *err;
	char *norm = name_normalize(kind, name, &err);
	int ret;

	*c_r = NULL;
	if (norm == NULL)
		return 0;
	const char *params[3] = { ac.s, collection_kind_name(kind), norm };
	ret = one_coll(db, a, "SELECT " COLL_COLS " FROM collections"
		       " WHERE account_id = $1 AND kind = $2 AND name = $3",
		       3, params, c_r);
	free(norm);
	return ret;
}

int collection_list(struct bu_db *db, struct bu_arena *a, int64_t account_id, int kind,
		    struct collection **list_r, size_t *n_r)
{
	struct i64str ac = i64s(account_id);
	const char *params[2] = {
		ac.s, kind < 0 ? NULL : collection_kind_name((enum collection_kind)kind)
	};
	PGresult *res;
	int n;

	*list_r = NULL;
	*n_r = 0;
	res = bu_db_query(db, "SELECT " COLL_COLS " FROM collections"
			  " WHERE account_id = $1 AND ($2::text IS NULL OR kind = $2)"
			  " ORDER BY kind, name <> 'INBOX', name COLLATE \"C\"",
			  2, params);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	if (n > 0) {
		*list_r = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(**list_r)));
		for (int i = 0; i < n; i++)
			row_to_coll(a, res, i, &(*list_r)[i]);
	}
	*n_r = (size_t)n;
	PQclear(res);
	return 1;
}

/* ---- create --------------------------------------------------------- */

int collection_insert_tx(struct bu_db *db, int64_t account_id, enum collection_kind kind,
			 const char *name, const char *special_use, int64_t modseq,
			 int64_t *id_r)
{
	struct i64str ac = i64s(account_id), m = i64s(modseq);
	const char *params[5] = { ac.s, collection_kind_name(kind), name, special_use, m.s };
	PGresult *res;
	int ret;

	/* The UPDATE hands out the next UIDVALIDITY of the account (1 ..
	 * 2^32-1; the counter itself only grows). */
	res = bu_db_query(db,
		"WITH u AS (UPDATE accounts SET last_uidvalidity ="
		"   GREATEST(last_uidvalidity + 1,"
		"            floor(extract(epoch FROM clock_timestamp()))::bigint)"
		"   WHERE id = $1 RETURNING last_uidvalidity)"
		" INSERT INTO collections (account_id, kind, name, special_use,"
		"   uidvalidity, modseq, created_modseq)"
		" SELECT $1, $2, $3, $4, (u.last_uidvalidity - 1) % 4294967295 + 1, $5, $5"
		"   FROM u"
		" ON CONFLICT (account_id, kind, name) DO NOTHING"
		" RETURNING id", 5, params);
	if (res == NULL)
		return -1;
	ret = PQntuples(res) == 1 ? 1 : 0;
	if (ret == 1 && id_r != NULL)
		*id_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return ret;
}

/* Creates the missing superiors of mail folder `name` ("A", "A/B" for
 * "A/B/C"). 0 / -1. */
static int create_superiors(struct bu_db *db, int64_t account_id, const char *name,
			    int64_t modseq)
{
	char *buf = bu_strdup(name);
	int ret = 0;

	for (char *p = strchr(buf, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (collection_insert_tx(db, account_id, COLL_MAIL, buf, NULL, modseq,
					 NULL) < 0) {
			ret = -1;
			break;
		}
		*p = '/';
	}
	free(buf);
	return ret;
}

int collection_create(struct bu_db *db, int64_t account_id, enum collection_kind kind,
		      const char *name, const char *special_use, int64_t *id_r,
		      const char **error_r)
{
	const char *err = NULL;
	char *norm = name_normalize(kind, name, &err);
	int64_t modseq, id = 0;
	int ret;

	if (id_r != NULL)
		*id_r = 0;
	if (norm == NULL) {
		set_err(error_r, errf("%s", err));
		return 0;
	}
	if (special_use != NULL && (kind != COLL_MAIL || !is_special_use(special_use))) {
		set_err(error_r, "unknown special-use attribute");
		free(norm);
		return 0;
	}
	if (bu_db_begin(db) < 0)
		goto db_error;
	modseq = changelog_next(db, account_id);
	if (modseq < 0)
		goto db_error_rollback;
	if (kind == COLL_MAIL && create_superiors(db, account_id, norm, modseq) < 0)
		goto db_error_rollback;
	ret = collection_insert_tx(db, account_id, kind, norm, special_use, modseq, &id);
	if (ret < 0)
		goto db_error_rollback;
	if (ret == 0) {
		bu_db_rollback(db);
		set_err(error_r, errf("%s already exists", norm));
		free(norm);
		return 0;
	}
	if (changelog_notify(db, account_id, id) < 0)
		goto db_error_rollback;
	if (bu_db_commit(db) < 0)
		goto db_error;
	if (id_r != NULL)
		*id_r = id;
	free(norm);
	return 1;

db_error_rollback:
	bu_db_rollback(db);
db_error:
	set_err(error_r, DB_ERROR);
	free(norm);
	return -1;
}

/* ---- rename --------------------------------------------------------- */

/* The collection's kind and name, locked until the end of the transaction.
 * 1 / 0 / -1. */
static int lock_collection(struct bu_db *db, int64_t account_id, int64_t id,
			   enum collection_kind *kind_r, char **name_r)
{
	struct i64str ac = i64s(account_id), cid = i64s(id);
	const char *params[2] = { ac.s, cid.s };
	PGresult *res = bu_db_query(db, "SELECT kind, name FROM collections"
				    " WHERE account_id = $1 AND id = $2 FOR UPDATE",
				    2, params);

	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	*kind_r = kind_parse(PQgetvalue(res, 0, 0));
	*name_r = bu_strdup(PQgetvalue(res, 0, 1));
	PQclear(res);
	return 1;
}

/* Mail: does any target of renaming old (and its children) to new collide
 * with a folder that is not itself being renamed? 1 yes / 0 no / -1. */
static int mail_rename_collides(struct bu_db *db, const char *account,
				const char *old_name, const char *new_name)
{
	const char *params[3] = { account, old_name, new_name };
	PGresult *res = bu_db_query(db,
		"SELECT 1 FROM collections s JOIN collections t"
		"  ON t.account_id = s.account_id AND t.kind = 'mail'"
		"  AND t.name = $3::text || substr(s.name, length($2::text) + 1)"
		" WHERE s.account_id = $1 AND s.kind = 'mail'"
		"  AND (s.name = $2::text OR left(s.name, length($2::text) + 1) = $2::text || '/')"
		"  AND NOT (t.name = $2::text OR left(t.name, length($2::text) + 1) = $2::text || '/')"
		" LIMIT 1", 3, params);
	int ret;

	if (res == NULL)
		return -1;
	ret = PQntuples(res) > 0 ? 1 : 0;
	PQclear(res);
	return ret;
}

static int rename_mail(struct bu_db *db, int64_t account_id, const char *old_name,
		       const char *new_name, int64_t modseq)
{
	struct i64str ac = i64s(account_id), m = i64s(modseq);
	const char *params[4] = { ac.s, old_name, new_name, m.s };

	/* Two steps so that no intermediate state trips the unique key while
	 * a folder moves onto a name another renamed folder is leaving; names
	 * never contain control characters, so chr(1) marks the moved ones. */
	if (bu_db_exec(db,
		       "UPDATE collections SET name = chr(1) || $3::text || substr(name, length($2::text) + 1),"
		       "  modseq = $4"
		       " WHERE account_id = $1 AND kind = 'mail'"
		       "  AND (name = $2::text OR left(name, length($2::text) + 1) = $2::text || '/')",
		       4, params) < 0)
		return -1;
	if (bu_db_exec(db,
		       "UPDATE collections SET name = substr(name, 2)"
		       " WHERE account_id = $1 AND kind = 'mail' AND left(name, 1) = chr(1)",
		       1, params) < 0)
		return -1;
	return create_superiors(db, account_id, new_name, modseq);
}

int collection_rename(struct bu_db *db, int64_t account_id, int64_t id,
		      const char *new_name, const char **error_r)
{
	const char *err = NULL;
	enum collection_kind kind = COLL_MAIL;
	char *old_name = NULL, *norm = NULL;
	struct i64str ac = i64s(account_id), cid = i64s(id);
	int64_t modseq;
	int ret;

	if (bu_db_begin(db) < 0)
		goto db_error;
	/* account lock first (changelog_next), then the folder row: the same
	 * order as every mail write, so the two cannot deadlock */
	modseq = changelog_next(db, account_id);
	if (modseq < 0) {
		bu_db_rollback(db);
		goto db_error;
	}
	ret = lock_collection(db, account_id, id, &kind, &old_name);
	if (ret <= 0) {
		bu_db_rollback(db);
		if (ret < 0)
			goto db_error;
		set_err(error_r, "no such collection");
		return 0;
	}
	norm = name_normalize(kind, new_name, &err);
	if (norm == NULL) {
		set_err(error_r, errf("%s", err));
		goto refuse;
	}
	if (kind == COLL_MAIL && strcmp(old_name, "INBOX") == 0) {
		bu_db_rollback(db);
		set_err(error_r, "renaming INBOX is handled by the mail store");
		free(old_name);
		free(norm);
		return -1;
	}
	if (strcmp(old_name, norm) == 0) {
		set_err(error_r, errf("%s already exists", norm));
		goto refuse;
	}
	if (kind == COLL_MAIL) {
		size_t ol = strlen(old_name);

		if (strncmp(norm, old_name, ol) == 0 && norm[ol] == '/') {
			set_err(error_r, "a folder cannot be moved into itself");
			goto refuse;
		}
		if (strcmp(norm, "INBOX") == 0) {
			set_err(error_r, "INBOX already exists");
			goto refuse;
		}
		ret = mail_rename_collides(db, ac.s, old_name, norm);
		if (ret < 0)
			goto db_error_rollback;
		if (ret > 0) {
			set_err(error_r, errf("%s already exists", norm));
			goto refuse;
		}
	}
	if (kind == COLL_MAIL) {
		bu_db_expect(db, BU_DB_ERR_UNIQUE);
		if (rename_mail(db, account_id, old_name, norm, modseq) < 0)
			goto unique_or_error;
	} else {
		struct i64str m = i64s(modseq);
		const char *params[4] = { ac.s, cid.s, norm, m.s };

		bu_db_expect(db, BU_DB_ERR_UNIQUE);
		if (bu_db_exec(db, "UPDATE collections SET name = $3, modseq = $4"
			       " WHERE account_id = $1 AND id = $2", 4, params) < 0)
			goto unique_or_error;
	}
	if (changelog_notify(db, account_id, id) < 0)
		goto db_error_rollback;
	if (bu_db_commit(db) < 0)
		goto db_error;
	free(old_name);
	free(norm);
	return 1;

unique_or_error:
	if (bu_db_errcode(db) == BU_DB_ERR_UNIQUE) {
		set_err(error_r, errf("%s already exists", norm));
		goto refuse;
	}
	goto db_error_rollback;
refuse:
	bu_db_rollback(db);
	free(old_name);
	free(norm);
	return 0;
db_error_rollback:
	bu_db_rollback(db);
db_error:
	set_err(error_r, DB_ERROR);
	free(old_name);
	free(norm);
	return -1;
}

/* ---- delete --------------------------------------------------------- */

int collection_delete(struct bu_db *db, int64_t account_id, int64_t id,
		      const char **error_r)
{
	enum collection_kind kind = COLL_MAIL;
	char *name = NULL;
	struct i64str ac = i64s(account_id), cid = i64s(id);
	const char *params[2] = { ac.s, cid.s };
	int64_t modseq;
	int ret;

	if (bu_db_begin(db) < 0)
		goto db_error;
	/* account lock first (changelog_next), then the folder row: the same
	 * order as every mail write, so the two cannot deadlock */
	modseq = changelog_next(db, account_id);
	if (modseq < 0) {
		bu_db_rollback(db);
		goto db_error;
	}
	ret = lock_collection(db, account_id, id, &kind, &name);
	if (ret <= 0) {
		bu_db_rollback(db);
		if (ret < 0)
			goto db_error;
		set_err(error_r, "no such collection");
		return 0;
	}
	if (kind == COLL_MAIL && strcmp(name, "INBOX") == 0) {
		bu_db_rollback(db);
		set_err(error_r, "INBOX cannot be deleted");
		free(name);
		return 0;
	}
	/* the content goes with the row (ON DELETE CASCADE in the mail,
	 * calendar and contact tables); ACL entries and the item tombstones of
	 * the collection mean nothing any more */
	if (bu_db_exec(db, "DELETE FROM collections WHERE account_id = $1 AND id = $2",
		       2, params) < 0 ||
	    bu_db_exec(db, "DELETE FROM acl WHERE account_id = $1 AND collection_id = $2",
		       2, params) < 0 ||
	    bu_db_exec(db, "DELETE FROM tombstones WHERE account_id = $1"
		       " AND collection_id = $2 AND kind <> 'collection'", 2, params) < 0)
		goto db_error_rollback;
	if (changelog_tombstone(db, account_id, id, "collection", 0, name, modseq) < 0 ||
	    changelog_notify(db, account_id, id) < 0)
		goto db_error_rollback;
	if (bu_db_commit(db) < 0)
		goto db_error;
	free(name);
	return 1;

db_error_rollback:
	bu_db_rollback(db);
db_error:
	set_err(error_r, DB_ERROR);
	free(name);
	return -1;
}

/* ---- attributes ----------------------------------------------------- */

int collection_set_subscribed(struct bu_db *db, int64_t account_id, int64_t id, bool on)
{
	struct i64str ac = i64s(account_id), cid = i64s(id);
	const char *params[3] = { ac.s, cid.s, on ? "true" : "false" };
	PGresult *res = bu_db_query(db, "UPDATE collections SET subscribed = $3"
				    " WHERE account_id = $1 AND id = $2", 3, params);
	int ret;

	if (res == NULL)
		return -1;
	ret = strcmp(PQcmdTuples(res), "0") == 0 ? 0 : 1;
	PQclear(res);
	return ret;
}

int collection_set_special_use(struct bu_db *db, int64_t account_id, int64_t id,
			       const char *special_use)
{
	struct i64str ac = i64s(account_id), cid = i64s(id);
	int64_t modseq;
	PGresult *res;
	int ret;

	if (special_use != NULL && !is_special_use(special_use))
		return -1;
	if (bu_db_begin(db) < 0)
		return -1;
	modseq = changelog_next(db, account_id);
	if (modseq < 0) {
		bu_db_rollback(db);
		return -1;
	}
	struct i64str m = i64s(modseq);
	const char *params[4] = { ac.s, cid.s, special_use, m.s };
	res = bu_db_query(db, "UPDATE collections SET special_use = $3, modseq = $4"
			  " WHERE account_id = $1 AND id = $2 AND kind = 'mail'", 4, params);
	if (res == NULL) {
		bu_db_rollback(db);
		return -1;
	}
	ret = strcmp(PQcmdTuples(res), "0") == 0 ? 0 : 1;
	PQclear(res);
	if (ret == 0) {
		bu_db_rollback(db);
		return 0;
	}
	if (changelog_notify(db, account_id, id) < 0) {
		bu_db_rollback(db);
		return -1;
	}
	return bu_db_commit(db) < 0 ? -1 : 1;
}

int collection_deleted_since(struct bu_db *db, struct bu_arena *a, int64_t account_id,
			     int64_t since, int64_t **ids_r, char ***names_r, size_t *n_r)
{
	struct i64str ac = i64s(account_id), s = i64s(since);
	const char *params[2] = { ac.s, s.s };
	PGresult *res;
	int n;

	*ids_r = NULL;
	*names_r = NULL;
	*n_r = 0;
	res = bu_db_query(db, "SELECT collection_id, coalesce(name, '') FROM tombstones"
			  " WHERE account_id = $1 AND kind = 'collection' AND modseq > $2"
			  " ORDER BY modseq, collection_id", 2, params);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	if (n > 0) {
		*ids_r = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(**ids_r)));
		*names_r = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(**names_r)));
		for (int i = 0; i < n; i++) {
			(*ids_r)[i] = i64v(res, i, 0);
			(*names_r)[i] = bu_arena_strdup(a, PQgetvalue(res, i, 1));
		}
	}
	*n_r = (size_t)n;
	PQclear(res);
	return 1;
}

/*
 * acl.c - the one authorization check (RFC 4314 rights) every protocol asks.
 *
 * Effective rights of a principal on (owner, collection): the owner has
 * every right on its own account; anybody else gets the union of the rows
 * for the owner with collection_id = the collection or 0 (whole account)
 * whose grantee is the principal, a group it belongs to (transitively, via
 * members rows whose account is of kind group), "authenticated" (-2, any
 * logged-in principal) or "anyone" (-1). One SQL query, recursive over the
 * group nesting (UNION, so a membership cycle ends).
 *
 * Rights are stored as canonical letters ("lrswipkxtea" order). Negative
 * rights (RFC 4314 "-" identifiers) are not supported.
 *
 * Return values follow acl.h: acl_rights/acl_list/acl_shared_with 0 ok,
 * -1 error; acl_check 1/0/-1; acl_set 1 done, 0 no such grantee or
 * collection (*error_r says which), -1 error. *error_r points to a
 * thread-local buffer valid until the next acl_set() on the thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "groupware/acl.h"
#include "groupware/collection.h"
#include "server/core/db.h"

/* canonical order: bit i is letter i */
static const char acl_letters[] = "lrswipkxtea";

int acl_parse(const char *letters, uint32_t *rights_r)
{
	uint32_t r = 0;

	*rights_r = 0;
	if (letters == NULL)
		return -1;
	for (const char *p = letters; *p != '\0'; p++) {
		const char *hit = strchr(acl_letters, *p);

		if (hit != NULL) {
			r |= 1u << (hit - acl_letters);
		} else if (*p == 'c') {
			/* RFC 4314 2.1.1: obsolete "create" */
			r |= ACL_CREATE | ACL_DELETE_MBOX;
		} else if (*p == 'd') {
			/* obsolete "delete" */
			r |= ACL_DELETE_MBOX | ACL_DELETE_MSG | ACL_EXPUNGE;
		} else {
			return -1;
		}
	}
	*rights_r = r;
	return 0;
}

char *acl_format(uint32_t rights, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(acl_letters) - 1; i++) {
		if ((rights & (1u << i)) != 0)
			out[n++] = acl_letters[i];
	}
	out[n] = '\0';
	return out;
}

struct i64str {
	char s[24];
};

static struct i64str i64s(int64_t v)
{
	struct i64str r;

	snprintf(r.s, sizeof(r.s), "%" PRId64, v);
	return r;
}

static __thread char acl_err[320];

static const char *errf(const char *fmt, ...) BU_PRINTF(1, 2);
static const char *errf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(acl_err, sizeof(acl_err), fmt, ap);
	va_end(ap);
	return acl_err;
}

static void set_err(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
}

/* ---- the check ------------------------------------------------------ */

int acl_rights(struct bu_db *db, int64_t principal_id, int64_t owner_id,
	       int64_t collection_id, uint32_t *rights_r)
{
	struct i64str p = i64s(principal_id), o = i64s(owner_id), c = i64s(collection_id);
	const char *params[3] = { p.s, o.s, c.s };
	PGresult *res;
	uint32_t r = 0;

	*rights_r = 0;
	if (principal_id > 0 && principal_id == owner_id) {
		*rights_r = ACL_ALL;
		return 0;
	}
	/* principal_id <= 0: not logged in, only "anyone" applies */
	res = bu_db_query(db,
		"WITH RECURSIVE g(id) AS ("
		"   SELECT $1::bigint WHERE $1::bigint > 0"
		"   UNION"
		"   SELECT m.account_id FROM members m"
		"     JOIN g ON m.member_id = g.id"
		"     JOIN accounts ga ON ga.id = m.account_id AND ga.kind = 'group')"
		" SELECT rights FROM acl"
		" WHERE account_id = $2 AND collection_id IN (0, $3)"
		"   AND (grantee_id IN (SELECT id FROM g) OR grantee_id = -1"
		"        OR (grantee_id = -2 AND $1::bigint > 0))",
		3, params);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		uint32_t row;

		/* rows are written by acl_set in canonical form; a bad one
		 * grants nothing rather than failing every check */
		if (acl_parse(PQgetvalue(res, i, 0), &row) == 0)
			r |= row;
	}
	PQclear(res);
	*rights_r = r;
	return 0;
}

int acl_check(struct bu_db *db, int64_t principal_id, int64_t owner_id,
	      int64_t collection_id, uint32_t required)
{
	uint32_t r;

	if (acl_rights(db, principal_id, owner_id, collection_id, &r) < 0)
		return -1;
	return (r & required) == required ? 1 : 0;
}

/* ---- changes -------------------------------------------------------- */

/* grantee name -> id; 1 found / 0 no such principal / -1 error */
static int grantee_resolve(struct bu_db *db, const char *grantee, int64_t *id_r)
{
	const char *at;
	char *lower;
	PGresult *res;
	int ret;

	if (strcasecmp(grantee, "anyone") == 0) {
		*id_r = ACL_GRANTEE_ANYONE;
		return 1;
	}
	if (strcasecmp(grantee, "authenticated") == 0) {
		*id_r = ACL_GRANTEE_AUTHENTICATED;
		return 1;
	}
	/* addresses are printable ASCII; anything else names nobody */
	for (const char *p = grantee; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	}
	at = strrchr(grantee, '@');
	if (at == NULL || at == grantee || at[1] == '\0' || strlen(grantee) > 320)
		return 0;
	lower = bu_strdup(grantee);
	for (char *p = lower; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	{
		char *lat = lower + (at - grantee);
		const char *params[3];

		*lat = '\0';
		params[0] = lower;
		params[1] = lat + 1;
		res = bu_db_query(db,
			"SELECT a.id FROM accounts a JOIN domains d ON d.id = a.domain_id"
			" WHERE d.name = $2 AND a.localpart = $1"
			" UNION ALL"
			" SELECT account_id FROM aliases WHERE address = $1::text || '@' || $2::text"
			" LIMIT 1", 2, params);
	}
	free(lower);
	if (res == NULL)
		return -1;
	ret = PQntuples(res) > 0 ? 1 : 0;
	if (ret == 1)
		*id_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return ret;
}

int acl_set(struct bu_db *db, int64_t owner_id, int64_t collection_id,
	    const char *grantee, uint32_t rights, const char **error_r)
{
	struct i64str o = i64s(owner_id), c = i64s(collection_id);
	struct i64str g;
	char letters[16];
	int64_t grantee_id = 0, modseq;
	PGresult *res;
	int ret;

	if (grantee == NULL || *grantee == '\0') {
		set_err(error_r, "no grantee given");
		return 0;
	}
	rights &= ACL_ALL;
	if (bu_db_begin(db) < 0)
		goto db_error;
	ret = grantee_resolve(db, grantee, &grantee_id);
	if (ret <= 0) {
		bu_db_rollback(db);
		if (ret < 0)
			goto db_error;
		/* echoed only when it is harmless in a protocol reply */
		if (strlen(grantee) <= 100 && strspn(grantee, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_+@") == strlen(grantee))
			set_err(error_r, errf("no such principal: %s", grantee));
		else
			set_err(error_r, "no such principal");
		return 0;
	}
	g = i64s(grantee_id);
	/* locks the owner: concurrent acl_set calls on one account serialize */
	modseq = changelog_next(db, owner_id);
	if (modseq < 0) {
		/* no row: no such owner, or a database error */
		bu_db_rollback(db);
		if (bu_db_errcode(db) != BU_DB_OK)
			goto db_error;
		set_err(error_r, "no such account");
		return 0;
	}
	if (collection_id != 0) {
		struct i64str m = i64s(modseq);
		const char *params[3] = { o.s, c.s, m.s };

		/* the collection's ACL is part of it (DAV sync, getctag) */
		res = bu_db_query(db, "UPDATE collections SET modseq = $3"
				  " WHERE account_id = $1 AND id = $2", 3, params);
		if (res == NULL)
			goto db_error_rollback;
		ret = strcmp(PQcmdTuples(res), "0") != 0;
		PQclear(res);
		if (!ret) {
			bu_db_rollback(db);
			set_err(error_r, "no such collection");
			return 0;
		}
	}
	if (rights == 0) {
		const char *params[3] = { o.s, c.s, g.s };

		if (bu_db_exec(db, "DELETE FROM acl WHERE account_id = $1"
			       " AND collection_id = $2 AND grantee_id = $3", 3, params) < 0)
			goto db_error_rollback;
	} else {
		const char *params[4] = { o.s, c.s, g.s, acl_format(rights, letters) };

		if (bu_db_exec(db, "INSERT INTO acl (account_id, collection_id, grantee_id, rights)"
			       " VALUES ($1, $2, $3, $4)"
			       " ON CONFLICT (account_id, collection_id, grantee_id)"
			       " DO UPDATE SET rights = EXCLUDED.rights", 4, params) < 0)
			goto db_error_rollback;
	}
	if (changelog_notify(db, owner_id, collection_id) < 0)
		goto db_error_rollback;
	if (bu_db_commit(db) < 0)
		goto db_error;
	return 1;

db_error_rollback:
	bu_db_rollback(db);
db_error:
	set_err(error_r, "internal database error");
	return -1;
}

/* ---- listings ------------------------------------------------------- */

int acl_list(struct bu_db *db, struct bu_arena *a, int64_t owner_id,
	     int64_t collection_id, struct acl_entry **list_r, size_t *n_r)
{
	struct i64str o = i64s(owner_id), c = i64s(collection_id);
	const char *params[2] = { o.s, c.s };
	PGresult *res;
	int n;

	*list_r = NULL;
	*n_r = 0;
	res = bu_db_query(db,
		"SELECT x.grantee_id, CASE x.grantee_id WHEN -1 THEN 'anyone'"
		"   WHEN -2 THEN 'authenticated'"
		"   ELSE coalesce(ga.localpart || '@' || d.name, '#' || x.grantee_id) END,"
		"   x.rights"
		" FROM acl x"
		" LEFT JOIN accounts ga ON ga.id = x.grantee_id"
		" LEFT JOIN domains d ON d.id = ga.domain_id"
		" WHERE x.account_id = $1 AND x.collection_id = $2"
		" ORDER BY x.grantee_id < 0, 2", 2, params);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	if (n > 0) {
		*list_r = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(**list_r)));
		for (int i = 0; i < n; i++) {
			struct acl_entry *e = &(*list_r)[i];

			e->grantee_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
			e->grantee = bu_arena_strdup(a, PQgetvalue(res, i, 1));
			if (acl_parse(PQgetvalue(res, i, 2), &e->rights) < 0)
				e->rights = 0;
		}
	}
	*n_r = (size_t)n;
	PQclear(res);
	return 0;
}

int acl_shared_with(struct bu_db *db, struct bu_arena *a, int64_t principal_id,
		    int64_t **owner_ids_r, size_t *n_r)
{
	struct i64str p = i64s(principal_id);
	const char *params[1] = { p.s };
	PGresult *res;
	int n;

	*owner_ids_r = NULL;
	*n_r = 0;
	/* any row that gives the principal (directly, through a group,
	 * "authenticated" or "anyone") the lookup right */
	res = bu_db_query(db,
		"WITH RECURSIVE g(id) AS ("
		"   SELECT $1::bigint WHERE $1::bigint > 0"
		"   UNION"
		"   SELECT m.account_id FROM members m"
		"     JOIN g ON m.member_id = g.id"
		"     JOIN accounts ga ON ga.id = m.account_id AND ga.kind = 'group')"
		" SELECT DISTINCT x.account_id FROM acl x"
		" WHERE x.account_id <> $1 AND strpos(x.rights, 'l') > 0"
		"   AND (x.grantee_id IN (SELECT id FROM g) OR x.grantee_id = -1"
		"        OR (x.grantee_id = -2 AND $1::bigint > 0))"
		" ORDER BY x.account_id", 1, params);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	if (n > 0) {
		*owner_ids_r = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(**owner_ids_r)));
		for (int i = 0; i < n; i++)
			(*owner_ids_r)[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	}
	*n_r = (size_t)n;
	PQclear(res);
	return 0;
}

/*
 * principal.c - domains, accounts, aliases, group and shared-mailbox
 * members, app passwords.
 *
 * Addresses are ASCII "localpart@domain", lower-cased. A localpart is
 * RFC 5322 atext with dots (no leading, trailing or double dot), without
 * '/', '%' and '*' (they would clash with IMAP folder paths and LIST
 * wildcards in the shared namespaces) and without '+', which is kept for
 * plus-addressing: "alice+lists@example.test" is delivered to alice.
 * Internationalized domains are entered in their ASCII (punycode) form.
 *
 * A new account and its default collections are created in one
 * transaction; every change to a domain's set of addresses locks the
 * domain row so that an account and an alias cannot take the same address
 * at once. Password hashing happens before the transaction starts (it is
 * slow on purpose).
 *
 * Return values follow principal.h: 1 done/found, 0 not found ("no such
 * ..."), -1 error. List functions return 1 (count in *n_r) or -1.
 * *error_r is a one-line message for an operator; it points to a
 * thread-local buffer valid until the next call into this file on the same
 * thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/principal.h"
#include "groupware/auth.h"
#include "groupware/acl.h"
#include "groupware/collection.h"
#include "server/core/db.h"


#define LOCAL_MAX 64
#define DOMAIN_MAX 253
#define DISPLAY_MAX 200
#define APP_PASSWORD_LEN 19      /* "abcd-efgh-jkmn-pqrs": 16 random chars */
#define SHARED_DEFAULT_RIGHTS "lrswipkxtecd"
#define DB_ERROR "internal database error (see the server log)"

/* ---- errors and small helpers -------------------------------------- */

static __thread char pr_err[512];

static const char *errf(const char *fmt, ...) BU_PRINTF(1, 2);
static const char *errf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pr_err, sizeof(pr_err), fmt, ap);
	va_end(ap);
	return pr_err;
}

static void set_err(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
}

/* Database failure: the operator needs to know if it is a connection. */
static int db_fail(struct bu_db *db, const char **error_r)
{
	if (bu_db_errcode(db) == BU_DB_ERR_CONN)
		set_err(error_r, "the database is unreachable");
	else
		set_err(error_r, DB_ERROR);
	return -1;
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

static int64_t i64v(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* rows affected by a command */
static bool affected(PGresult *res)
{
	const char *n = PQcmdTuples(res);

	return n[0] != '\0' && strcmp(n, "0") != 0;
}

/* Printable ASCII (for echoing input in an error) */
static bool printable(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	}
	return true;
}

static bool text_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return n <= max;
}

static const char *const kind_names[] = {
	[PRINCIPAL_USER] = "user",
	[PRINCIPAL_SHARED] = "shared",
	[PRINCIPAL_RESOURCE] = "resource",
	[PRINCIPAL_GROUP] = "group",
};

const char *principal_kind_name(enum principal_kind k)
{
	if ((unsigned)k < BU_N_ELEMENTS(kind_names))
		return kind_names[k];
	return "unknown";
}

int principal_kind_parse(const char *s, enum principal_kind *k_r)
{
	for (size_t i = 0; i < BU_N_ELEMENTS(kind_names); i++) {
		if (s != NULL && strcmp(s, kind_names[i]) == 0) {
			*k_r = (enum principal_kind)i;
			return 0;
		}
	}
	return -1;
}

/* ---- address syntax ------------------------------------------------- */

struct addr {
	char local[LOCAL_MAX + 1];
	char domain[DOMAIN_MAX + 1];
	char full[LOCAL_MAX + DOMAIN_MAX + 2];
};

static bool domain_syntax_ok(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = d[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (label == 0 && c == '-')
			return false;
		label++;
	}
	return true;
}

static void lower_copy(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	dst[n] = '\0';
}

/* Split and lower-case without judging the syntax (lookups). false when it
 * cannot be an address at all. */
static bool addr_split(const char *in, struct addr *a)
{
	const char *at;
	size_t ll, dl;

	if (in == NULL)
		return false;
	/* every stored address is printable ASCII: anything else cannot match
	 * (and must not reach the database as invalid UTF-8) */
	for (const char *p = in; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	}
	at = strrchr(in, '@');
	if (at == NULL)
		return false;
	ll = (size_t)(at - in);
	dl = strlen(at + 1);
	if (ll == 0 || ll > LOCAL_MAX || dl == 0 || dl > DOMAIN_MAX)
		return false;
	lower_copy(a->local, in, ll);
	lower_copy(a->domain, at + 1, dl);
	snprintf(a->full, sizeof(a->full), "%s@%s", a->local, a->domain);
	return true;
}

/* Strict syntax for a new address. */
static bool addr_parse(const char *in, struct addr *a, const char **error_r)
{
	static const char atext_extra[] = "!#$&'-=?^_`{|}~.";
	const char *p;

	if (in == NULL || *in == '\0') {
		set_err(error_r, "no address given");
		return false;
	}
	if (!printable(in)) {
		set_err(error_r, "the address contains characters other than printable ASCII"
			" (enter internationalized domains in punycode, xn--...)");
		return false;
	}
	if (!addr_split(in, a) || strchr(a->local, '@') != NULL) {
		set_err(error_r, errf("invalid address %s: expected localpart@domain", in));
		return false;
	}
	for (p = a->local; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr(atext_extra, *p) != NULL)
			continue;
		if (*p == '+') {
			set_err(error_r, errf("invalid address %s: '+' is reserved for"
					      " plus-addressing", in));
			return false;
		}
		set_err(error_r, errf("invalid address %s: '%c' is not allowed in a localpart",
				      in, *p));
		return false;
	}
	if (a->local[0] == '.' || a->local[strlen(a->local) - 1] == '.' ||
	    strstr(a->local, "..") != NULL) {
		set_err(error_r, errf("invalid address %s: a localpart may not start or end"
				      " with a dot or contain two dots in a row", in));
		return false;
	}
	if (!domain_syntax_ok(a->domain)) {
		set_err(error_r, errf("invalid address %s: %s is not a valid domain name",
				      in, a->domain));
		return false;
	}
	return true;
}

static const char *no_domain_msg(const char *domain)
{
	return errf("domain %s does not exist; add it with: bureauctl domain add %s",
		    domain, domain);
}

/* ---- principal rows ------------------------------------------------- */

#define P_COLS "a.id, a.kind, a.localpart, d.name, a.display_name, a.disabled," \
	" a.quota_storage, a.quota_messages," \
	" floor(extract(epoch FROM a.created_at))::bigint"
#define P_FROM " FROM accounts a JOIN domains d ON d.id = a.domain_id"

static void row_to_principal(struct bu_arena *ar, const PGresult *res, int row,
			     struct principal *p)
{
	enum principal_kind k = PRINCIPAL_USER;

	p->id = i64v(res, row, 0);
	(void)principal_kind_parse(PQgetvalue(res, row, 1), &k);
	p->kind = k;
	p->localpart = bu_arena_strdup(ar, PQgetvalue(res, row, 2));
	p->domain = bu_arena_strdup(ar, PQgetvalue(res, row, 3));
	p->address = bu_arena_printf(ar, "%s@%s", p->localpart, p->domain);
	p->display_name = bu_arena_strdup(ar, PQgetvalue(res, row, 4));
	p->disabled = PQgetvalue(res, row, 5)[0] == 't';
	p->quota_storage = i64v(res, row, 6);
	p->quota_messages = i64v(res, row, 7);
	p->created = i64v(res, row, 8);
}

static int one_principal(struct bu_db *db, struct bu_arena *ar, const char *sql,
			 int n, const char *const *params, struct principal **p_r)
{
	PGresult *res = bu_db_query(db, sql, n, params);

	*p_r = NULL;
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	*p_r = bu_arena_alloc(ar, sizeof(**p_r));
	row_to_principal(ar, res, 0, *p_r);
	PQclear(res);
	return 1;
}

/* By primary address or alias; the primary address wins (there should
 * never be both). 1 / 0 / -1. */
static int lookup_addr(struct bu_db *db, struct bu_arena *ar,
			       const struct addr *ad, struct principal **p_r)
{
	const char *params[3] = { ad->local, ad->domain, ad->full };
	PGresult *res;

	*p_r = NULL;
	res = bu_db_query(db,
		"SELECT " P_COLS ", 0 AS pri" P_FROM
		"  WHERE d.name = $2 AND a.localpart = $1"
		" UNION ALL"
		" SELECT " P_COLS ", 1" P_FROM
		"  JOIN aliases al ON al.account_id = a.id WHERE al.address = $3"
		" ORDER BY 10 LIMIT 1", 3, params);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	*p_r = bu_arena_alloc(ar, sizeof(**p_r));
	row_to_principal(ar, res, 0, *p_r);
	PQclear(res);
	return 1;
}

int principal_lookup(struct bu_db *db, struct bu_arena *a, const char *address,
		     struct principal **p_r)
{
	struct addr ad;

	*p_r = NULL;
	if (!addr_split(address, &ad))
		return 0;
	return lookup_addr(db, a, &ad, p_r);
}

int principal_get(struct bu_db *db, struct bu_arena *a, int64_t id, struct principal **p_r)
{
	struct i64str s = i64s(id);
	const char *params[1] = { s.s };

	return one_principal(db, a, "SELECT " P_COLS P_FROM " WHERE a.id = $1",
			     1, params, p_r);
}

int principal_list(struct bu_db *db, struct bu_arena *a, const char *domain, int kind,
		   struct principal **list_r, size_t *n_r, const char **error_r)
{
	char dom[DOMAIN_MAX + 1];
	const char *params[2] = {
		NULL, kind < 0 ? NULL : principal_kind_name((enum principal_kind)kind)
	};
	PGresult *res;
	int n;

	*list_r = NULL;
	*n_r = 0;
	if (domain != NULL) {
		size_t dl = strlen(domain);

		if (dl == 0 || dl > DOMAIN_MAX || !printable(domain)) {
			set_err(error_r, "invalid domain name");
			return -1;
		}
		lower_copy(dom, domain, dl);
		params[0] = dom;
		const char *p1[1] = { dom };
		res = bu_db_query(db, "SELECT 1 FROM domains WHERE name = $1", 1, p1);
		if (res == NULL)
			return db_fail(db, error_r);
		n = PQntuples(res);
		PQclear(res);
		if (n == 0) {
			set_err(error_r, no_domain_msg(dom));
			return 0;
		}
	}
	res = bu_db_query(db, "SELECT " P_COLS P_FROM
			  " WHERE ($1::text IS NULL OR d.name = $1)"
			  "   AND ($2::text IS NULL OR a.kind = $2)"
			  " ORDER BY d.name, a.localpart", 2, params);
	if (res == NULL)
		return db_fail(db, error_r);
	n = PQntuples(res);
	if (n > 0) {
		*list_r = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(**list_r)));
		for (int i = 0; i < n; i++)
			row_to_principal(a, res, i, &(*list_r)[i]);
	}
	*n_r = (size_t)n;
	PQclear(res);
	return 1;
}

/* ---- domains -------------------------------------------------------- */

int domain_add(struct bu_db *db, const char *name, const char **error_r)
{
	char dom[DOMAIN_MAX + 1];
	size_t len = name != NULL ? strlen(name) : 0;
	const char *params[1] = { dom };
	PGresult *res;
	bool added;

	if (len == 0 || len > DOMAIN_MAX || !printable(name)) {
		set_err(error_r, "invalid domain name (use ASCII; internationalized names"
			" in punycode, xn--...)");
		return -1;
	}
	lower_copy(dom, name, len);
	if (!domain_syntax_ok(dom)) {
		set_err(error_r, errf("invalid domain name %s: letters, digits, '-' and"
				      " dots between labels only", dom));
		return -1;
	}
	res = bu_db_query(db, "INSERT INTO domains (name) VALUES ($1)"
			  " ON CONFLICT (name) DO NOTHING RETURNING id", 1, params);
	if (res == NULL)
		return db_fail(db, error_r);
	added = PQntuples(res) == 1;
	PQclear(res);
	if (!added) {
		set_err(error_r, errf("domain %s already exists", dom));
		return -1;
	}
	return 1;
}

/* Locks the domain row (until the end of the transaction): 1 / 0 / -1 */
static int lock_domain(struct bu_db *db, const char *domain, int64_t *id_r)
{
	const char *params[1] = { domain };
	PGresult *res = bu_db_query(db, "SELECT id FROM domains WHERE name = $1 FOR UPDATE",
				    1, params);
	int ret;

	if (res == NULL)
		return -1;
	ret = PQntuples(res) == 1 ? 1 : 0;
	if (ret == 1)
		*id_r = i64v(res, 0, 0);
	PQclear(res);
	return ret;
}

int domain_remove(struct bu_db *db, const char *name, bool force, const char **error_r)
{
	char dom[DOMAIN_MAX + 1];
	size_t len = name != NULL ? strlen(name) : 0;
	int64_t did = 0, naccounts;
	struct i64str ds;
	PGresult *res;
	int ret;

	if (len == 0 || len > DOMAIN_MAX || !printable(name)) {
		set_err(error_r, "invalid domain name");
		return -1;
	}
	lower_copy(dom, name, len);
	if (bu_db_begin(db) < 0)
		return db_fail(db, error_r);
	ret = lock_domain(db, dom, &did);
	if (ret <= 0) {
		bu_db_rollback(db);
		if (ret < 0)
			return db_fail(db, error_r);
		set_err(error_r, errf("domain %s does not exist", dom));
		return 0;
	}
	ds = i64s(did);
	const char *params[2] = { ds.s, dom };
	res = bu_db_query(db, "SELECT count(*) FROM accounts WHERE domain_id = $1", 1, params);
	if (res == NULL)
		goto fail;
	naccounts = i64v(res, 0, 0);
	PQclear(res);
	if (naccounts > 0 && !force) {
		bu_db_rollback(db);
		set_err(error_r, errf("domain %s still has %" PRId64 " account%s; remove %s"
				      " first or use: bureauctl domain remove %s --force",
				      dom, naccounts, naccounts == 1 ? "" : "s",
				      naccounts == 1 ? "it" : "them", dom));
		return -1;
	}
	/* --force: the accounts and everything they own go with it; aliases
	 * in the domain pointing elsewhere too; ACL entries naming them */
	if (bu_db_exec(db, "DELETE FROM acl WHERE grantee_id IN"
		       " (SELECT id FROM accounts WHERE domain_id = $1)", 1, params) < 0 ||
	    bu_db_exec(db, "DELETE FROM auth_failures WHERE key IN"
		       " (SELECT 'acct:' || localpart || '@' || $2::text FROM accounts"
		       "  WHERE domain_id = $1)", 2, params) < 0 ||
	    bu_db_exec(db, "DELETE FROM aliases WHERE right(address, length($1::text) + 1)"
		       " = '@' || $1::text", 1, params + 1) < 0 ||
	    bu_db_exec(db, "UPDATE domains SET catchall_id = NULL WHERE id = $1", 1, params) < 0 ||
	    /* wake whoever waits on them (changelog_notify, for many) */
	    bu_db_exec(db, "SELECT pg_notify('bureau', id::text || ' 0') FROM accounts"
		       " WHERE domain_id = $1", 1, params) < 0 ||
	    bu_db_exec(db, "DELETE FROM accounts WHERE domain_id = $1", 1, params) < 0 ||
	    bu_db_exec(db, "DELETE FROM domains WHERE id = $1", 1, params) < 0)
		goto fail;
	/* every account of the domain changes: re-check everything */
	bu_db_note_change(db, 0, 0);
	if (bu_db_commit(db) < 0)
		return db_fail(db, error_r);
	return 1;
fail:
	ret = db_fail(db, error_r);
	bu_db_rollback(db);
	return ret;
}

int domain_list(struct bu_db *db, struct bu_arena *a, struct domain_info **list_r,
		size_t *n_r, const char **error_r)
{
	PGresult *res;
	int n;

	*list_r = NULL;
	*n_r = 0;
	res = bu_db_query(db,
		"SELECT d.id, d.name, ca.localpart || '@' || cd.name,"
		"  (SELECT count(*) FROM accounts x WHERE x.domain_id = d.id)"
		" FROM domains d"
		" LEFT JOIN accounts ca ON ca.id = d.catchall_id"
		" LEFT JOIN domains cd ON cd.id = ca.domain_id"
		" ORDER BY d.name", 0, NULL);
	if (res == NULL)
		return db_fail(db, error_r);
	n = PQntuples(res);
	if (n > 0) {
		*list_r = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(**list_r)));
		for (int i = 0; i < n; i++) {
			struct domain_info *d = &(*list_r)[i];

			d->id = i64v(res, i, 0);
			d->name = bu_arena_strdup(a, PQgetvalue(res, i, 1));
			d->catchall = PQgetisnull(res, i, 2) ? NULL
				: bu_arena_strdup(a, PQgetvalue(res, i, 2));
			d->accounts = i64v(res, i, 3);
		}
	}
	*n_r = (size_t)n;
	PQclear(res);
	return 1;
}

int domain_set_catchall(struct bu_db *db, const char *domain, const char *address,
			const char **error_r)
{
	char dom[DOMAIN_MAX + 1];
	size_t len = domain != NULL ? strlen(domain) : 0;
	struct bu_arena *ar;
	struct principal *p = NULL;
	struct i64str ids = i64s(0);
	PGresult *res;
	int ret;

	if (len == 0 || len > DOMAIN_MAX || !printable(domain)) {
		set_err(error_r, "invalid domain name");
		return -1;
	}
	lower_copy(dom, domain, len);
	if (address != NULL) {
		ar = bu_arena_create(0);
		ret = principal_lookup(db, ar, address, &p);
		if (ret > 0)
			ids = i64s(p->id);
		bu_arena_destroy(&ar);
		if (ret < 0)
			return db_fail(db, error_r);
		if (ret == 0) {
			set_err(error_r, printable(address)
				? errf("no such account: %s", address) : "no such account");
			return 0;
		}
	}
	const char *params[2] = { dom, address != NULL ? ids.s : NULL };
	res = bu_db_query(db, "UPDATE domains SET catchall_id = $2 WHERE name = $1",
			  2, params);
	if (res == NULL)
		return db_fail(db, error_r);
	ret = affected(res) ? 1 : 0;
	PQclear(res);
	if (ret == 0)
		set_err(error_r, no_domain_msg(dom));
	return ret;
}

/* ---- accounts ------------------------------------------------------- */

/* Is the address (locked domain id) taken by an account or an alias?
 * 1 taken (*error_r says by what), 0 free, -1 error. */
static int address_taken(struct bu_db *db, int64_t domain_id, const struct addr *ad,
			 const char **error_r)
{
	struct i64str ds = i64s(domain_id);
	const char *params[3] = { ds.s, ad->local, ad->full };
	PGresult *res = bu_db_query(db,
		"SELECT 0, '' FROM accounts WHERE domain_id = $1 AND localpart = $2"
		" UNION ALL"
		" SELECT 1, a.localpart || '@' || d.name FROM aliases al"
		"  JOIN accounts a ON a.id = al.account_id"
		"  JOIN domains d ON d.id = a.domain_id WHERE al.address = $3",
		3, params);
	int ret;

	if (res == NULL)
		return db_fail(db, error_r);
	ret = PQntuples(res) > 0 ? 1 : 0;
	if (ret == 1) {
		if (strcmp(PQgetvalue(res, 0, 0), "0") == 0)
			set_err(error_r, errf("%s already exists", ad->full));
		else
			set_err(error_r, errf("%s is already an alias of %s", ad->full,
					      PQgetvalue(res, 0, 1)));
	}
	PQclear(res);
	return ret;
}

static int check_password(const char *password, int min_length, const char **error_r)
{
	size_t len = strlen(password);

	if (min_length > 0 && len < (size_t)min_length) {
		set_err(error_r, errf("password too short: at least %d characters", min_length));
		return -1;
	}
	if (len > 1024) {
		set_err(error_r, "password too long (at most 1024 characters)");
		return -1;
	}
	for (const char *p = password; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			set_err(error_r, "the password contains control characters");
			return -1;
		}
	}
	return 0;
}

static char *hash_or_error(const char *password, const char *scheme, const char **error_r)
{
	char *hash = password_hash(password, scheme);

	if (hash == NULL)
		set_err(error_r, errf("cannot hash with password scheme %s (known: yescrypt,"
				      " sha512, bcrypt)", scheme != NULL ? scheme : "yescrypt"));
	return hash;
}

struct default_coll {
	enum collection_kind kind;
	const char *name;
	const char *special_use;
};

static const struct default_coll mailbox_defaults[] = {
	{ COLL_MAIL, "INBOX", NULL },
	{ COLL_MAIL, "Drafts", "\\Drafts" },
	{ COLL_MAIL, "Sent", "\\Sent" },
	{ COLL_MAIL, "Trash", "\\Trash" },
	{ COLL_MAIL, "Junk", "\\Junk" },
	{ COLL_MAIL, "Archive", "\\Archive" },
	{ COLL_CALENDAR, "Calendar", NULL },
	{ COLL_TASKS, "Tasks", NULL },
	{ COLL_ADDRESSBOOK, "Contacts", NULL },
};
static const struct default_coll resource_defaults[] = {
	{ COLL_CALENDAR, "Calendar", NULL },
};

int principal_add(struct bu_db *db, const struct principal_new *p, int64_t *id_r,
		  const char **error_r)
{
	struct addr ad;
	char *hash = NULL;
	const char *display = p->display_name != NULL ? p->display_name : "";
	const struct default_coll *defs = NULL;
	size_t ndefs = 0;
	int64_t domain_id = 0, id = 0, modseq;
	PGresult *res;
	int ret;

	if (id_r != NULL)
		*id_r = 0;
	if (!addr_parse(p->address, &ad, error_r))
		return -1;
	switch (p->kind) {
	case PRINCIPAL_USER:
		defs = mailbox_defaults;
		ndefs = BU_N_ELEMENTS(mailbox_defaults);
		break;
	case PRINCIPAL_SHARED:
		defs = mailbox_defaults;
		ndefs = BU_N_ELEMENTS(mailbox_defaults);
		if (p->password != NULL) {
			set_err(error_r, "a shared mailbox has no password: its members"
				" reach it with their own login");
			return -1;
		}
		break;
	case PRINCIPAL_RESOURCE:
		defs = resource_defaults;
		ndefs = BU_N_ELEMENTS(resource_defaults);
		break;
	case PRINCIPAL_GROUP:
		if (p->password != NULL) {
			set_err(error_r, "a group has no password: its members log in"
				" with their own");
			return -1;
		}
		break;
	default:
		set_err(error_r, "unknown kind of principal");
		return -1;
	}
	if (!text_ok(display, DISPLAY_MAX)) {
		set_err(error_r, "the display name is too long or contains control characters");
		return -1;
	}
	if (p->quota_storage < 0 || p->quota_messages < 0) {
		set_err(error_r, "a quota cannot be negative (0 = unlimited)");
		return -1;
	}
	if (p->password != NULL) {
		if (check_password(p->password, p->min_password_length, error_r) < 0)
			return -1;
		hash = hash_or_error(p->password, p->scheme, error_r);
		if (hash == NULL)
			return -1;
	}

	if (bu_db_begin(db) < 0) {
		free(hash);
		return db_fail(db, error_r);
	}
	ret = lock_domain(db, ad.domain, &domain_id);
	if (ret <= 0) {
		if (ret < 0)
			goto fail;
		bu_db_rollback(db);
		set_err(error_r, no_domain_msg(ad.domain));
		free(hash);
		return 0;
	}
	ret = address_taken(db, domain_id, &ad, error_r);
	if (ret != 0) {
		bu_db_rollback(db);
		free(hash);
		return -1;
	}
	{
		struct i64str ds = i64s(domain_id), qs = i64s(p->quota_storage),
			qm = i64s(p->quota_messages);
		const char *params[7] = {
			ds.s, ad.local, principal_kind_name(p->kind), display, hash, qs.s, qm.s
		};

		res = bu_db_query(db, "INSERT INTO accounts (domain_id, localpart, kind,"
				  " display_name, password_hash, quota_storage, quota_messages)"
				  " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
				  7, params);
	}
	if (res == NULL)
		goto fail;
	id = i64v(res, 0, 0);
	PQclear(res);
	modseq = changelog_next(db, id);
	if (modseq < 0)
		goto fail;
	for (size_t i = 0; i < ndefs; i++) {
		if (collection_insert_tx(db, id, defs[i].kind, defs[i].name,
					 defs[i].special_use, modseq, NULL) <= 0)
			goto fail;
	}
	if (changelog_notify(db, id, 0) < 0)
		goto fail;
	if (bu_db_commit(db) < 0) {
		free(hash);
		return db_fail(db, error_r);
	}
	free(hash);
	if (id_r != NULL)
		*id_r = id;
	return 1;
fail:
	ret = db_fail(db, error_r);
	bu_db_rollback(db);
	free(hash);
	return ret;
}

/* Primary-address lookup for changes: the principal, or 0 with a message
 * that says when the address is only an alias. */
static int lookup_primary(struct bu_db *db, struct bu_arena *ar, const char *address,
			  struct principal **p_r, const char **error_r)
{
	int ret = principal_lookup(db, ar, address, p_r);

	if (ret < 0)
		return db_fail(db, error_r);
	if (ret == 0) {
		set_err(error_r, address != NULL && printable(address)
			? errf("no such account: %s", address) : "no such account");
		return 0;
	}
	return 1;
}

int principal_remove(struct bu_db *db, const char *address, const char **error_r)
{
	struct bu_arena *ar = bu_arena_create(0);
	struct principal *p;
	struct addr ad;
	struct i64str ids;
	int ret;

	ret = lookup_primary(db, ar, address, &p, error_r);
	if (ret <= 0)
		goto out;
	if (addr_split(address, &ad) && strcmp(ad.full, p->address) != 0) {
		set_err(error_r, errf("%s is an alias of %s; remove the alias with:"
				      " bureauctl alias remove %s", ad.full, p->address,
				      ad.full));
		ret = -1;
		goto out;
	}
	ids = i64s(p->id);
	{
		const char *params[2] = { ids.s, p->address };

		if (bu_db_begin(db) < 0) {
			ret = db_fail(db, error_r);
			goto out;
		}
		/* everything the account owns goes by ON DELETE CASCADE; ACL
		 * entries naming it as grantee have no foreign key */
		if (bu_db_exec(db, "DELETE FROM acl WHERE grantee_id = $1", 1, params) < 0 ||
		    bu_db_exec(db, "DELETE FROM auth_failures WHERE key = 'acct:' || $1::text",
			       1, params + 1) < 0 ||
		    bu_db_exec(db, "DELETE FROM accounts WHERE id = $1", 1, params) < 0 ||
		    changelog_notify(db, p->id, 0) < 0) {
			ret = db_fail(db, error_r);
			bu_db_rollback(db);
			goto out;
		}
		if (bu_db_commit(db) < 0) {
			ret = db_fail(db, error_r);
			goto out;
		}
	}
	ret = 1;
out:
	bu_arena_destroy(&ar);
	return ret;
}

/* UPDATE accounts ... WHERE id = $1 for the principal at address */
static int update_account(struct bu_db *db, const char *address, const char *sql,
			  const char *p2, const char *p3, const char **error_r)
{
	struct bu_arena *ar = bu_arena_create(0);
	struct principal *p;
	int ret = lookup_primary(db, ar, address, &p, error_r);

	if (ret > 0) {
		struct i64str ids = i64s(p->id);
		const char *params[3] = { ids.s, p2, p3 };
		int n = p3 != NULL ? 3 : 2;
		PGresult *res = bu_db_query(db, sql, n, params);

		if (res == NULL) {
			ret = db_fail(db, error_r);
		} else {
			ret = affected(res) ? 1 : 0;
			if (ret == 0)
				set_err(error_r, "no such account");
			PQclear(res);
		}
	}
	bu_arena_destroy(&ar);
	return ret;
}

int principal_set_password(struct bu_db *db, const char *address, const char *password,
			   const char *scheme, int min_length, const char **error_r)
{
	struct bu_arena *ar = bu_arena_create(0);
	struct principal *p;
	char *hash;
	int ret;

	ret = lookup_primary(db, ar, address, &p, error_r);
	if (ret <= 0)
		goto out;
	if (p->kind == PRINCIPAL_SHARED || p->kind == PRINCIPAL_GROUP) {
		set_err(error_r, errf("%s is a %s and has no password", p->address,
				      p->kind == PRINCIPAL_GROUP ? "group" : "shared mailbox"));
		ret = -1;
		goto out;
	}
	if (password == NULL) {
		set_err(error_r, "no password given");
		ret = -1;
		goto out;
	}
	if (check_password(password, min_length, error_r) < 0) {
		ret = -1;
		goto out;
	}
	hash = hash_or_error(password, scheme, error_r);
	if (hash == NULL) {
		ret = -1;
		goto out;
	}
	ret = update_account(db, p->address, "UPDATE accounts SET password_hash = $2"
			     " WHERE id = $1", hash, NULL, error_r);
	free(hash);
out:
	bu_arena_destroy(&ar);
	return ret;
}

int principal_set_disabled(struct bu_db *db, const char *address, bool disabled,
			   const char **error_r)
{
	return update_account(db, address, "UPDATE accounts SET disabled = $2 WHERE id = $1",
			      disabled ? "true" : "false", NULL, error_r);
}

int principal_set_quota(struct bu_db *db, const char *address, int64_t storage,
			int64_t messages, const char **error_r)
{
	struct i64str s = i64s(storage), m = i64s(messages);

	if (storage < 0 || messages < 0) {
		set_err(error_r, "a quota cannot be negative (0 = unlimited)");
		return -1;
	}
	return update_account(db, address, "UPDATE accounts SET quota_storage = $2,"
			      " quota_messages = $3 WHERE id = $1", s.s, m.s, error_r);
}

int principal_resolve_rcpt(struct bu_db *db, struct bu_arena *a, const char *address,
			   struct principal **p_r)
{
	struct addr ad;
	char *plus;
	int ret;

	*p_r = NULL;
	if (!addr_split(address, &ad))
		return 0;
	/* 1. the address itself or an alias */
	ret = lookup_addr(db, a, &ad, p_r);
	if (ret != 0)
		return ret;
	/* 2. plus-addressing: alice+tag@x is alice@x (or her alias) */
	plus = strchr(ad.local, '+');
	if (plus != NULL && plus != ad.local) {
		*plus = '\0';
		snprintf(ad.full, sizeof(ad.full), "%s@%s", ad.local, ad.domain);
		ret = lookup_addr(db, a, &ad, p_r);
		if (ret != 0)
			return ret;
	}
	/* 3. the domain's catch-all */
	{
		const char *params[1] = { ad.domain };

		return one_principal(db, a, "SELECT " P_COLS P_FROM
				     " WHERE a.id = (SELECT catchall_id FROM domains"
				     "  WHERE name = $1)", 1, params, p_r);
	}
}

/* ---- aliases -------------------------------------------------------- */

int alias_add(struct bu_db *db, const char *alias, const char *target,
	      const char **error_r)
{
	struct bu_arena *ar = bu_arena_create(0);
	struct principal *t = NULL;
	struct addr ad;
	int64_t domain_id = 0;
	int ret;

	if (!addr_parse(alias, &ad, error_r)) {
		ret = -1;
		goto out;
	}
	if (bu_db_begin(db) < 0) {
		ret = db_fail(db, error_r);
		goto out;
	}
	ret = lock_domain(db, ad.domain, &domain_id);
	if (ret <= 0) {
		if (ret < 0)
			goto fail;
		bu_db_rollback(db);
		set_err(error_r, no_domain_msg(ad.domain));
		goto out;
	}
	ret = address_taken(db, domain_id, &ad, error_r);
	if (ret != 0) {
		bu_db_rollback(db);
		ret = -1;
		goto out;
	}
	ret = principal_lookup(db, ar, target, &t);
	if (ret <= 0) {
		if (ret < 0)
			goto fail;
		bu_db_rollback(db);
		set_err(error_r, target != NULL && printable(target)
			? errf("no such account: %s", target) : "no such account");
		goto out;
	}
	{
		struct i64str ids = i64s(t->id);
		const char *params[2] = { ad.full, ids.s };

		if (bu_db_exec(db, "INSERT INTO aliases (address, account_id) VALUES ($1, $2)",
			       2, params) < 0)
			goto fail;
	}
	if (bu_db_commit(db) < 0) {
		ret = db_fail(db, error_r);
		goto out;
	}
	ret = 1;
	goto out;
fail:
	ret = db_fail(db, error_r);
	bu_db_rollback(db);
out:
	bu_arena_destroy(&ar);
	return ret;
}

int alias_remove(struct bu_db *db, const char *alias, const char **error_r)
{
	struct addr ad;
	PGresult *res;
	int ret;

	if (!addr_split(alias, &ad)) {
		set_err(error_r, "invalid address: expected localpart@domain");
		return -1;
	}
	const char *params[1] = { ad.full };
	res = bu_db_query(db, "DELETE FROM aliases WHERE address = $1", 1, params);
	if (res == NULL)
		return db_fail(db, error_r);
	ret = affected(res) ? 1 : 0;
	PQclear(res);
	if (ret == 0)
		set_err(error_r, printable(ad.full) ? errf("no such alias: %s", ad.full)
			: "no such alias");
	return ret;
}

static int string_list(struct bu_db *db, struct bu_arena *a, const char *sql, int n,
		       const char *const *params, char ***list_r, size_t *n_r,
		       const char **error_r)
{
	PGresult *res = bu_db_query(db, sql, n, params);
	int rows;

	*list_r = NULL;
	*n_r = 0;
	if (res == NULL)
		return db_fail(db, error_r);
	rows = PQntuples(res);
	*list_r = bu_arena_alloc(a, bu_size_mul((size_t)rows + 1, sizeof(char *)));
	for (int i = 0; i < rows; i++)
		(*list_r)[i] = bu_arena_strdup(a, PQgetvalue(res, i, 0));
	*n_r = (size_t)rows;
	PQclear(res);
	return 1;
}

int alias_list(struct bu_db *db, struct bu_arena *a, const char *target, char ***list_r,
	       size_t *n_r, const char **error_r)
{
	struct principal *t;
	int ret;

	*list_r = NULL;
	*n_r = 0;
	if (target == NULL)
		return string_list(db, a, "SELECT address FROM aliases ORDER BY address",
				   0, NULL, list_r, n_r, error_r);
	ret = lookup_primary(db, a, target, &t, error_r);
	if (ret <= 0)
		return ret;
	struct i64str ids = i64s(t->id);
	const char *params[1] = { ids.s };
	return string_list(db, a, "SELECT address FROM aliases WHERE account_id = $1"
			   " ORDER BY address", 1, params, list_r, n_r, error_r);
}

/* ---- members -------------------------------------------------------- */

int member_add(struct bu_db *db, const char *group, const char *member,
	       const char *rights, const char **error_r)
{
	struct bu_arena *ar = bu_arena_create(0);
	struct principal *g, *m;
	uint32_t bits = 0;
	char letters[16];
	PGresult *res;
	int ret;

	ret = lookup_primary(db, ar, group, &g, error_r);
	if (ret <= 0)
		goto out;
	if (g->kind != PRINCIPAL_GROUP && g->kind != PRINCIPAL_SHARED) {
		set_err(error_r, errf("%s is a %s, not a group or shared mailbox", g->address,
				      principal_kind_name(g->kind)));
		ret = -1;
		goto out;
	}
	ret = lookup_primary(db, ar, member, &m, error_r);
	if (ret <= 0)
		goto out;
	if (m->kind != PRINCIPAL_USER && m->kind != PRINCIPAL_GROUP) {
		set_err(error_r, errf("%s is a %s; members are users or groups", m->address,
				      principal_kind_name(m->kind)));
		ret = -1;
		goto out;
	}
	if (m->id == g->id) {
		set_err(error_r, "a group cannot be a member of itself");
		ret = -1;
		goto out;
	}
	if (g->kind == PRINCIPAL_GROUP && rights != NULL) {
		set_err(error_r, "rights apply to members of shared mailboxes only; grant"
			" rights to the group with: bureauctl grant");
		ret = -1;
		goto out;
	}
	if (g->kind == PRINCIPAL_SHARED) {
		if (acl_parse(rights != NULL ? rights : SHARED_DEFAULT_RIGHTS, &bits) < 0 ||
		    bits == 0) {
			set_err(error_r, "bad rights: use the letters lrswipkxtea");
			ret = -1;
			goto out;
		}
	}

	struct i64str gs = i64s(g->id), ms = i64s(m->id);
	const char *params[3] = { gs.s, ms.s, acl_format(bits, letters) };
	if (bu_db_begin(db) < 0) {
		ret = db_fail(db, error_r);
		goto out;
	}
	if (g->kind == PRINCIPAL_GROUP && m->kind == PRINCIPAL_GROUP) {
		/* would the group end up inside itself? */
		res = bu_db_query(db,
			"WITH RECURSIVE up(id) AS (SELECT $1::bigint UNION"
			"  SELECT x.account_id FROM members x JOIN up ON x.member_id = up.id)"
			" SELECT 1 FROM up WHERE id = $2", 2, params);
		if (res == NULL)
			goto fail;
		ret = PQntuples(res);
		PQclear(res);
		if (ret > 0) {
			bu_db_rollback(db);
			set_err(error_r, errf("%s already contains %s: groups cannot form a"
					      " cycle", m->address, g->address));
			ret = -1;
			goto out;
		}
	}
	if (bu_db_exec(db, "INSERT INTO members (account_id, member_id) VALUES ($1, $2)"
		       " ON CONFLICT DO NOTHING", 2, params) < 0)
		goto fail;
	if (g->kind == PRINCIPAL_SHARED) {
		if (changelog_next(db, g->id) < 0 ||
		    bu_db_exec(db, "INSERT INTO acl (account_id, collection_id, grantee_id,"
			       " rights) VALUES ($1, 0, $2, $3)"
			       " ON CONFLICT (account_id, collection_id, grantee_id)"
			       " DO UPDATE SET rights = EXCLUDED.rights", 3, params) < 0 ||
		    changelog_notify(db, g->id, 0) < 0)
			goto fail;
	}
	if (bu_db_commit(db) < 0) {
		ret = db_fail(db, error_r);
		goto out;
	}
	ret = 1;
	goto out;
fail:
	ret = db_fail(db, error_r);
	bu_db_rollback(db);
out:
	bu_arena_destroy(&ar);
	return ret;
}

int member_remove(struct bu_db *db, const char *group, const char *member,
		  const char **error_r)
{
	struct bu_arena *ar = bu_arena_create(0);
	struct principal *g, *m;
	PGresult *res;
	int ret;

	ret = lookup_primary(db, ar, group, &g, error_r);
	if (ret <= 0)
		goto out;
	ret = lookup_primary(db, ar, member, &m, error_r);
	if (ret <= 0)
		goto out;

	struct i64str gs = i64s(g->id), ms = i64s(m->id);
	const char *params[2] = { gs.s, ms.s };
	if (bu_db_begin(db) < 0) {
		ret = db_fail(db, error_r);
		goto out;
	}
	res = bu_db_query(db, "DELETE FROM members WHERE account_id = $1 AND member_id = $2",
			  2, params);
	if (res == NULL)
		goto fail;
	ret = affected(res) ? 1 : 0;
	PQclear(res);
	if (ret == 0) {
		bu_db_rollback(db);
		set_err(error_r, errf("%s is not a member of %s", m->address, g->address));
		goto out;
	}
	if (g->kind == PRINCIPAL_SHARED) {
		if (changelog_next(db, g->id) < 0 ||
		    bu_db_exec(db, "DELETE FROM acl WHERE account_id = $1 AND collection_id = 0"
			       " AND grantee_id = $2", 2, params) < 0 ||
		    changelog_notify(db, g->id, 0) < 0)
			goto fail;
	}
	if (bu_db_commit(db) < 0) {
		ret = db_fail(db, error_r);
		goto out;
	}
	ret = 1;
	goto out;
fail:
	ret = db_fail(db, error_r);
	bu_db_rollback(db);
out:
	bu_arena_destroy(&ar);
	return ret;
}

int member_list(struct bu_db *db, struct bu_arena *a, const char *group,
		char ***list_r, size_t *n_r, const char **error_r)
{
	struct principal *g;
	int ret;

	*list_r = NULL;
	*n_r = 0;
	ret = lookup_primary(db, a, group, &g, error_r);
	if (ret <= 0)
		return ret;
	struct i64str gs = i64s(g->id);
	const char *params[1] = { gs.s };
	return string_list(db, a, "SELECT a.localpart || '@' || d.name FROM members m"
			   " JOIN accounts a ON a.id = m.member_id"
			   " JOIN domains d ON d.id = a.domain_id"
			   " WHERE m.account_id = $1 ORDER BY 1", 1, params,
			   list_r, n_r, error_r);
}

int principal_groups(struct bu_db *db, struct bu_arena *a, int64_t principal_id,
		     int64_t **ids_r, size_t *n_r)
{
	struct i64str ps = i64s(principal_id);
	const char *params[1] = { ps.s };
	PGresult *res;
	int n;

	*ids_r = NULL;
	*n_r = 0;
	res = bu_db_query(db,
		"WITH RECURSIVE g(id) AS ("
		"   SELECT $1::bigint"
		"   UNION"
		"   SELECT m.account_id FROM members m"
		"     JOIN g ON m.member_id = g.id"
		"     JOIN accounts ga ON ga.id = m.account_id AND ga.kind = 'group')"
		" SELECT id FROM g WHERE id <> $1 ORDER BY id", 1, params);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	if (n > 0) {
		*ids_r = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(**ids_r)));
		for (int i = 0; i < n; i++)
			(*ids_r)[i] = i64v(res, i, 0);
	}
	*n_r = (size_t)n;
	PQclear(res);
	return 1;
}

/* ---- app passwords -------------------------------------------------- */

int app_password_add(struct bu_db *db, struct bu_arena *a, const char *address,
		     const char *name, int64_t *id_r, char **password_r,
		     const char **error_r)
{
	struct bu_arena *ar = bu_arena_create(0);
	struct principal *p;
	char *pw = NULL, *hash = NULL;
	PGresult *res;
	int ret;

	*password_r = NULL;
	if (id_r != NULL)
		*id_r = 0;
	ret = lookup_primary(db, ar, address, &p, error_r);
	if (ret <= 0)
		goto out;
	if (p->kind == PRINCIPAL_SHARED || p->kind == PRINCIPAL_GROUP) {
		set_err(error_r, errf("%s is a %s and cannot log in", p->address,
				      principal_kind_name(p->kind)));
		ret = -1;
		goto out;
	}
	if (name == NULL || *name == '\0' || !text_ok(name, 100)) {
		set_err(error_r, "an app password needs a name of at most 100 characters"
			" (e.g. \"Alice's phone\")");
		ret = -1;
		goto out;
	}
	pw = password_random(APP_PASSWORD_LEN);
	hash = password_hash(pw, NULL);
	if (hash == NULL) {
		set_err(error_r, "cannot hash the password");
		ret = -1;
		goto out;
	}
	struct i64str ids = i64s(p->id);
	const char *params[3] = { ids.s, name, hash };
	res = bu_db_query(db, "INSERT INTO app_passwords (account_id, name, password_hash)"
			  " VALUES ($1, $2, $3) RETURNING id", 3, params);
	if (res == NULL) {
		ret = db_fail(db, error_r);
		goto out;
	}
	if (id_r != NULL)
		*id_r = i64v(res, 0, 0);
	PQclear(res);
	*password_r = bu_arena_strdup(a, pw);
	ret = 1;
out:
	if (pw != NULL) {
		bu_wipe(pw, strlen(pw));
		free(pw);
	}
	free(hash);
	bu_arena_destroy(&ar);
	return ret;
}

int app_password_list(struct bu_db *db, struct bu_arena *a, const char *address,
		      struct app_password **list_r, size_t *n_r, const char **error_r)
{
	struct principal *p;
	PGresult *res;
	int ret, n;

	*list_r = NULL;
	*n_r = 0;
	ret = lookup_primary(db, a, address, &p, error_r);
	if (ret <= 0)
		return ret;
	struct i64str ids = i64s(p->id);
	const char *params[1] = { ids.s };
	res = bu_db_query(db, "SELECT id, name, floor(extract(epoch FROM created_at))::bigint,"
			  " floor(extract(epoch FROM last_used))::bigint"
			  " FROM app_passwords WHERE account_id = $1 ORDER BY id", 1, params);
	if (res == NULL)
		return db_fail(db, error_r);
	n = PQntuples(res);
	if (n > 0) {
		*list_r = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(**list_r)));
		for (int i = 0; i < n; i++) {
			struct app_password *ap = &(*list_r)[i];

			ap->id = i64v(res, i, 0);
			ap->name = bu_arena_strdup(a, PQgetvalue(res, i, 1));
			ap->created = i64v(res, i, 2);
			ap->last_used = i64v(res, i, 3);
		}
	}
	*n_r = (size_t)n;
	PQclear(res);
	return 1;
}

int app_password_revoke(struct bu_db *db, const char *address, int64_t id,
			const char **error_r)
{
	struct bu_arena *ar = bu_arena_create(0);
	struct principal *p;
	PGresult *res;
	int ret;

	ret = lookup_primary(db, ar, address, &p, error_r);
	if (ret <= 0)
		goto out;
	struct i64str ps = i64s(p->id), is = i64s(id);
	const char *params[2] = { ps.s, is.s };
	res = bu_db_query(db, "DELETE FROM app_passwords WHERE account_id = $1 AND id = $2",
			  2, params);
	if (res == NULL) {
		ret = db_fail(db, error_r);
		goto out;
	}
	ret = affected(res) ? 1 : 0;
	PQclear(res);
	if (ret == 0)
		set_err(error_r, errf("%s has no app password with id %" PRId64, p->address, id));
out:
	bu_arena_destroy(&ar);
	return ret;
}

/*
 * mailstore.c - messages in mail collections: open, changes, status,
 * append, fetch, store, copy/move, expunge, quota (mailstore.h).
 *
 * Storage (schema/002_mail.sql, docs/MAILSTORE.md): raw bytes once per
 * account in mail_blobs (SHA-256 addressed), one mail_messages row per
 * (account, folder, UID) with what mime_parse() found at delivery. Quota
 * usage and blob garbage collection follow the message rows by trigger.
 *
 * Every write is one transaction: changelog_next() first (it row-locks the
 * owner's account, which serialises all writers of one account, so the
 * modseq order is the commit order), then the rows are stamped with it,
 * the folder's modseq is bumped, and changelog_notify() is sent. A write
 * that changes nothing rolls back, so no modseq is spent on a no-op.
 *
 * \Seen is per user (RFC 4314 "s"): the owner's is the flag bit, a viewer
 * who is not the owner has a mail_seen row instead; every read merges it.
 *
 * Statements are parameterised; SQL text is only ever built from constant
 * pieces and $n placeholders. Lists of UIDs travel as one bigint[]
 * parameter, so a FETCH or STORE of many messages is one statement.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>

#include "groupware/acl.h"
#include "groupware/mailstore_private.h"
#include "groupware/mime.h"
#include "groupware/msgcache.h"
#include "server/core/db.h"
#include "server/core/log.h"

/* Messages per INSERT statement of one append (PostgreSQL allows 65535
 * parameters; a message takes about 32), and bytes per statement. */
#define MS_APPEND_CHUNK 400
#define MS_APPEND_CHUNK_BYTES ((size_t)64 * 1024 * 1024)
/* Summary fields (subject, addresses, references) kept per message. */
#define MS_FIELD_MAX ((size_t)64 * 1024)

/* ---- parameters --------------------------------------------------------- */

void ms_params_init(struct ms_params *p, struct bu_arena *a)
{
	memset(p, 0, sizeof(*p));
	p->a = a;
}

static int ms_param_add(struct ms_params *p, const char *v, int len, int fmt)
{
	if (p->n == p->cap) {
		int cap = p->cap == 0 ? 16 : p->cap * 2;
		const char **nv = bu_arena_alloc(p->a, bu_size_mul((size_t)cap, sizeof(*nv)));
		int *nl = bu_arena_alloc(p->a, bu_size_mul((size_t)cap, sizeof(*nl)));
		int *nf = bu_arena_alloc(p->a, bu_size_mul((size_t)cap, sizeof(*nf)));

		if (p->n > 0) {
			memcpy(nv, p->v, (size_t)p->n * sizeof(*nv));
			memcpy(nl, p->len, (size_t)p->n * sizeof(*nl));
			memcpy(nf, p->fmt, (size_t)p->n * sizeof(*nf));
		}
		p->v = nv;
		p->len = nl;
		p->fmt = nf;
		p->cap = cap;
	}
	p->v[p->n] = v;
	p->len[p->n] = len;
	p->fmt[p->n] = fmt;
	return ++p->n;
}

int ms_param(struct ms_params *p, const char *text)
{
	return ms_param_add(p, text == NULL ? NULL : bu_arena_strdup(p->a, text), 0, 0);
}

int ms_param_i64(struct ms_params *p, int64_t v)
{
	return ms_param_add(p, bu_arena_printf(p->a, "%" PRId64, v), 0, 0);
}

int ms_param_bin(struct ms_params *p, const void *data, size_t len)
{
	bu_assert(len <= INT32_MAX);
	/* a zero-length binary value still needs a non-NULL pointer */
	return ms_param_add(p, len == 0 ? "" : (const char *)data, (int)len, 1);
}

int ms_param_uids(struct ms_params *p, const uint32_t *uids, size_t n)
{
	struct bu_buf b;
	int idx;

	bu_buf_init(&b, 0);
	bu_buf_append_byte(&b, '{');
	for (size_t i = 0; i < n; i++)
		bu_buf_printf(&b, i == 0 ? "%" PRIu32 : ",%" PRIu32, uids[i]);
	bu_buf_append_byte(&b, '}');
	idx = ms_param(p, bu_buf_cstr(&b));
	bu_buf_deinit(&b);
	return idx;
}

PGresult *ms_query(struct bu_db *db, const char *sql, const struct ms_params *p)
{
	return bu_db_query_bin(db, sql, p->n, p->v, p->len, p->fmt);
}

/* Raw messages in text format would travel hex-encoded (twice the bytes,
 * plus decoding): these queries ask for binary results. */
PGresult *ms_query_binres(struct bu_db *db, const char *sql, const struct ms_params *p)
{
	return bu_db_query_fmt(db, sql, p->n, p->v, p->len, p->fmt, 1);
}

/* ---- results ------------------------------------------------------------ */

int64_t ms_val_i64(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

char *ms_val_str(struct bu_arena *a, const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return bu_arena_strndup(a, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

int64_t ms_bin_i64(const PGresult *r, int row, int col)
{
	const uint8_t *p;
	uint64_t v = 0;

	if (PQgetisnull(r, row, col))
		return 0;
	bu_assert(PQgetlength(r, row, col) == 8);
	p = (const uint8_t *)PQgetvalue(r, row, col);
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

char **ms_split_keywords(struct bu_arena *a, const char *s)
{
	size_t n = 0, i = 0;
	char **list;
	const char *p;

	if (s == NULL || *s == '\0')
		return bu_arena_alloc(a, sizeof(char *));
	n = 1;
	for (p = s; *p != '\0'; p++) {
		if (*p == MS_KW_SEP[0])
			n++;
	}
	list = bu_arena_alloc(a, bu_size_mul(n + 1, sizeof(char *)));
	for (p = s;;) {
		const char *e = strchr(p, MS_KW_SEP[0]);
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		if (len > 0)
			list[i++] = bu_arena_strndup(a, p, len);
		if (e == NULL)
			break;
		p = e + 1;
	}
	list[i] = NULL;
	return list;
}

static void ms_pqclear(void *r)
{
	PQclear(r);
}

void ms_arena_own_result(struct bu_arena *a, PGresult *r)
{
	bu_arena_cleanup(a, ms_pqclear, r);
}

/* ---- helpers ------------------------------------------------------------ */

int ms_rights(struct bu_db *db, int64_t viewer, int64_t owner_id, int64_t collection_id,
	      uint32_t *rights_r)
{
	if (viewer == owner_id) {
		*rights_r = ACL_ALL;
		return 0;
	}
	if (acl_rights(db, viewer, owner_id, collection_id, rights_r) < 0)
		return MS_ERR;
	return 0;
}

int ms_collection_exists(struct bu_db *db, int64_t owner_id, int64_t collection_id)
{
	struct bu_arena *a = bu_arena_create(0);
	struct ms_params p;
	PGresult *r;
	int ret;

	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	r = ms_query(db, "SELECT 1 FROM collections WHERE account_id = $1 AND id = $2"
		     " AND kind = 'mail'", &p);
	ret = r == NULL ? MS_ERR : PQntuples(r) > 0 ? 1 : 0;
	PQclear(r);
	bu_arena_destroy(&a);
	return ret;
}

char *ms_utf8_clean(struct bu_arena *a, const char *s, size_t len, size_t max)
{
	static const uint8_t repl[3] = { 0xef, 0xbf, 0xbd };
	const uint8_t *p = (const uint8_t *)s;
	struct bu_buf b;
	char *out;
	size_t i = 0;

	if (s == NULL)
		return NULL;
	bu_buf_init(&b, 0);
	bu_buf_reserve(&b, len < 4096 ? len : 4096);
	while (i < len) {
		uint32_t c = p[i];
		size_t n = 0;
		bool ok = true;

		if (c == 0) {
			i++;
			continue;
		}
		if (c < 0x80) {
			/* a run of ASCII goes in one piece */
			size_t j = i + 1;

			while (j < len && p[j] != 0 && p[j] < 0x80)
				j++;
			if (max > 0 && b.len + (j - i) > max)
				j = i + (max - b.len);
			if (j == i)
				break;
			bu_buf_append(&b, p + i, j - i);
			i = j;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			c &= 0x07;
		} else {
			ok = false;
		}
		for (size_t k = 1; ok && k <= n; k++) {
			if (i + k >= len || (p[i + k] & 0xc0) != 0x80)
				ok = false;
			else
				c = (c << 6) | (p[i + k] & 0x3f);
		}
		if (ok && n > 0 &&
		    ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) ||
		     (n == 3 && c < 0x10000) || c > 0x10ffff ||
		     (c >= 0xd800 && c <= 0xdfff)))
			ok = false;
		if (ok) {
			if (max > 0 && b.len + n + 1 > max)
				break;
			bu_buf_append(&b, p + i, n + 1);
			i += n + 1;
		} else {
			if (max > 0 && b.len + sizeof(repl) > max)
				break;
			bu_buf_append(&b, repl, sizeof(repl));
			i++;
		}
	}
	out = bu_arena_strndup(a, (const char *)b.data != NULL ? (const char *)b.data : "", b.len);
	bu_buf_deinit(&b);
	return out;
}

char *ms_like_pattern(struct bu_arena *a, const char *needle)
{
	struct bu_buf b;
	char *out;

	bu_buf_init(&b, 0);
	bu_buf_append_byte(&b, '%');
	for (const char *s = needle; *s != '\0'; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			bu_buf_append_byte(&b, '\\');
		bu_buf_append_byte(&b, (uint8_t)*s);
	}
	bu_buf_append_byte(&b, '%');
	out = ms_utf8_clean(a, (const char *)b.data, b.len, 0);
	bu_buf_deinit(&b);
	return out;
}

bool ms_kw_has(char *const *list, const char *kw)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
		if (strcasecmp(list[i], kw) == 0)
			return true;
	}
	return false;
}

/* keyword without control characters (the separators among them) */
static char *ms_kw_clean(struct bu_arena *a, const char *kw)
{
	size_t len = strlen(kw), j = 0;
	char *out = bu_arena_alloc(a, len + 1);

	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)kw[i];

		if (c >= 0x20 && c != 0x7f)
			out[j++] = (char)c;
	}
	out[j] = '\0';
	return out;
}

size_t ms_kw_join(struct bu_buf *b, const char *const *kw)
{
	struct bu_arena *a;
	char **seen;
	size_t n = 0, cnt = 0;

	if (kw == NULL)
		return 0;
	while (kw[cnt] != NULL)
		cnt++;
	if (cnt == 0)
		return 0;
	a = bu_arena_create(0);
	seen = bu_arena_alloc(a, bu_size_mul(cnt + 1, sizeof(char *)));
	for (size_t i = 0; i < cnt; i++) {
		char *k = ms_kw_clean(a, kw[i]);

		if (*k == '\0' || ms_kw_has(seen, k))
			continue;
		seen[n] = k;
		if (n > 0)
			bu_buf_append_str(b, MS_KW_SEP);
		bu_buf_append_str(b, k);
		n++;
	}
	bu_arena_destroy(&a);
	return n;
}

/* the flags a viewer with these rights may set or clear (RFC 4314 4) */
static uint32_t ms_flag_mask(uint32_t rights)
{
	uint32_t m = 0;

	if (rights & ACL_SEEN)
		m |= MF_SEEN;
	if (rights & ACL_DELETE_MSG)
		m |= MF_DELETED;
	if (rights & ACL_WRITE)
		m |= MF_ANSWERED | MF_FLAGGED | MF_DRAFT;
	return m;
}

void ms_flags_expr(struct bu_buf *sql, bool is_owner, int p_viewer)
{
	if (is_owner) {
		bu_buf_append_str(sql, "m.flags");
		return;
	}
	bu_buf_printf(sql, "((m.flags & ~1) | (EXISTS (SELECT 1 FROM mail_seen s"
		      " WHERE s.account_id = m.account_id AND s.collection_id = m.collection_id"
		      " AND s.uid = m.uid AND s.user_id = $%d))::int)", p_viewer);
}

static void ms_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 32;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
		bu_panic("EVP_Digest(sha256) failed");
}

static void ms_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- folder lookup ------------------------------------------------------ */

int ms_folder_resolve(struct bu_db *db, struct bu_arena *a, int64_t viewer,
		      int64_t owner_id, const char *name, struct collection **c_r)
{
	struct collection *c = NULL;
	uint32_t rights;
	int ret;

	*c_r = NULL;
	ret = collection_get_by_name(db, a, owner_id, COLL_MAIL, name, &c);
	if (ret < 0)
		return MS_ERR;
	if (viewer != owner_id) {
		/* a stranger learns nothing, not even whether it exists */
		if (ms_rights(db, viewer, owner_id, ret > 0 ? c->id : 0, &rights) < 0)
			return MS_ERR;
		if (!(rights & ACL_LOOKUP))
			return MS_NOPERM;
	}
	if (ret == 0)
		return MS_NOTFOUND;
	*c_r = c;
	return 0;
}

/* ---- open / changes / status ------------------------------------------- */

struct ms_coll_info {
	char *name;
	uint32_t uidvalidity, uidnext;
	int64_t modseq;
	char **keywords;
};

/*
 * One statement, one snapshot: the folder row (kind 0: its name,
 * UIDVALIDITY, UIDNEXT, modseq, keyword set), the messages (kind 1: uid,
 * modseq, the viewer's flags, keywords) with modseq > since, and with
 * tombstones the UIDs expunged after since (kind 2). Ordered by kind, uid.
 */
static PGresult *ms_view_query(struct bu_db *db, struct bu_arena *a, int64_t viewer,
			       int64_t owner_id, int64_t collection_id, int64_t since,
			       bool tombstones)
{
	struct ms_params p;
	struct bu_buf sql;
	PGresult *r;

	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	ms_param_i64(&p, since < 0 ? 0 : since);
	bu_buf_init(&sql, 0);
	bu_buf_append_str(&sql,
		"SELECT * FROM ("
		"SELECT 0 AS k, 0::bigint AS uid, c.modseq, 0 AS flags,"
		" (SELECT string_agg(w.keyword, chr(1) ORDER BY w.keyword) FROM mail_keywords w"
		"   WHERE w.account_id = c.account_id AND w.collection_id = c.id) AS kw,"
		" c.name, c.uidvalidity, c.uidnext"
		" FROM collections c WHERE c.account_id = $1 AND c.id = $2 AND c.kind = 'mail'"
		" UNION ALL ");
	if (viewer == owner_id) {
		bu_buf_append_str(&sql, "SELECT 1, m.uid, m.modseq, m.flags,"
				  " array_to_string(m.keywords, chr(1)), NULL, NULL, NULL"
				  " FROM mail_messages m");
	} else {
		bu_buf_printf(&sql, "SELECT 1, m.uid, m.modseq, (m.flags & ~1) | (s.uid IS NOT NULL)::int,"
			      " array_to_string(m.keywords, chr(1)), NULL, NULL, NULL"
			      " FROM mail_messages m LEFT JOIN mail_seen s ON s.account_id = m.account_id"
			      " AND s.collection_id = m.collection_id AND s.uid = m.uid"
			      " AND s.user_id = $%d", ms_param_i64(&p, viewer));
	}
	bu_buf_append_str(&sql, " WHERE m.account_id = $1 AND m.collection_id = $2 AND m.modseq > $3");
	if (tombstones)
		bu_buf_append_str(&sql, " UNION ALL SELECT DISTINCT 2, t.item_uid, 0::bigint, 0, '',"
				  " NULL, NULL::bigint, NULL::bigint FROM tombstones t"
				  " WHERE t.account_id = $1 AND t.collection_id = $2"
				  " AND t.kind = 'message' AND t.modseq > $3");
	bu_buf_append_str(&sql, ") AS x ORDER BY x.k, x.uid");
	r = ms_query(db, bu_buf_cstr(&sql), &p);
	bu_buf_deinit(&sql);
	return r;
}

/* the folder's keyword set ("a\001b" or NULL) into ci; keywords
 * differing only in case are one keyword */
static void ms_kw_set(struct bu_arena *a, struct ms_coll_info *ci, const char *joined)
{
	char **all, **kw;
	size_t n = 0;

	all = ms_split_keywords(a, joined);
	while (all[n] != NULL)
		n++;
	kw = bu_arena_alloc(a, bu_size_mul(n + 1, sizeof(char *)));
	n = 0;
	for (size_t i = 0; all[i] != NULL; i++) {
		if (!ms_kw_has(kw, all[i]))
			kw[n++] = all[i];
	}
	ci->keywords = kw;
}

/* kind-0 row into ci */
static void ms_coll_row(struct bu_arena *a, const PGresult *r, struct ms_coll_info *ci)
{
	ci->modseq = ms_val_i64(r, 0, 2);
	ci->name = ms_val_str(a, r, 0, 5);
	ci->uidvalidity = (uint32_t)ms_val_i64(r, 0, 6);
	ci->uidnext = (uint32_t)ms_val_i64(r, 0, 7);
	ms_kw_set(a, ci, PQgetisnull(r, 0, 4) ? NULL : PQgetvalue(r, 0, 4));
}

static uint32_t ms_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rows (uid, modseq, flags, keywords in columns 1..4) into msgs. */
static void ms_rows_to_msgs(struct bu_arena *a, const PGresult *r, int first, int count,
			    struct ms_msg *msgs)
{
	char **empty = bu_arena_alloc(a, sizeof(char *));

	for (int i = 0; i < count; i++) {
		int row = first + i;
		const char *kw = PQgetvalue(r, row, 4);

		msgs[i].uid = (uint32_t)ms_val_i64(r, row, 1);
		msgs[i].modseq = ms_val_i64(r, row, 2);
		msgs[i].flags = (uint32_t)ms_val_i64(r, row, 3);
		msgs[i].keywords = *kw == '\0' ? empty : ms_split_keywords(a, kw);
	}
}

/* A one-dimensional binary int4[] or int8[] without NULLs (PostgreSQL's
 * array send format); SQL NULL is the empty array. Values into out[cap];
 * returns the count, or -1 when the value is not such an array. */
static ssize_t ms_bin_array(const PGresult *r, int row, int col, int64_t *out, size_t cap)
{
	const uint8_t *p, *end;
	uint32_t ndim, dim;
	size_t n;

	if (PQgetisnull(r, row, col))
		return 0;
	p = (const uint8_t *)PQgetvalue(r, row, col);
	end = p + PQgetlength(r, row, col);
	if (end - p < 12)
		return -1;
	ndim = ms_be32(p);
	if (ndim == 0)
		return 0;
	if (ndim != 1 || end - p < 20)
		return -1;
	dim = ms_be32(p + 12);
	p += 20;
	if (dim > cap)
		return -1;
	for (n = 0; n < dim; n++) {
		uint32_t len;
		uint64_t v = 0;

		if (end - p < 4)
			return -1;
		len = ms_be32(p);
		p += 4;
		if ((len != 4 && len != 8) || (size_t)(end - p) < len)
			return -1;
		for (uint32_t k = 0; k < len; k++)
			v = (v << 8) | p[k];
		out[n] = len == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
		p += len;
	}
	return (ssize_t)n;
}

static int ms_msg_cmp(const void *x, const void *y)
{
	const struct ms_msg *a = x, *b = y;

	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

/*
 * SELECT reads the whole folder: one row with the folder's fields and the
 * messages' UIDs, modseqs and flags as binary arrays (keywords only for
 * the messages that have any), rather than a text row per message. The
 * arrays come in the same (unspecified) row order; sorted here by UID.
 */
int ms_mailbox_open(struct bu_db *db, struct bu_arena *a, int64_t viewer,
		    int64_t owner_id, int64_t collection_id, struct ms_mailbox **mb_r)
{
	struct ms_coll_info ci;
	struct ms_mailbox *mb;
	struct ms_params p;
	struct bu_buf sql;
	uint32_t rights;
	PGresult *r;
	int64_t *uids = NULL, *modseqs = NULL, *flags = NULL, *kwuids = NULL;
	ssize_t n = 0, n2, n3, n_kw;
	size_t cap;
	char **empty, **kwl = NULL;
	bool sorted = true;
	int ret = 0;

	*mb_r = NULL;
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	if (!(rights & ACL_READ))
		return MS_NOPERM;
	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	if (viewer != owner_id)
		ms_param_i64(&p, viewer);
	bu_buf_init(&sql, 0);
	bu_buf_append_str(&sql,
		"SELECT c.modseq, (SELECT string_agg(w.keyword, chr(1) ORDER BY w.keyword)"
		"  FROM mail_keywords w WHERE w.account_id = c.account_id AND w.collection_id = c.id),"
		" c.name, c.uidvalidity, c.uidnext, x.n, x.uids, x.modseqs, x.flags, x.kwuids, x.kws"
		" FROM collections c CROSS JOIN LATERAL (SELECT count(*) AS n,"
		"  array_agg(m.uid) AS uids, array_agg(m.modseq) AS modseqs,");
	/* another viewer's \Seen: one join, not a lookup per message */
	bu_buf_append_str(&sql, viewer == owner_id ? "  array_agg(m.flags) AS flags," :
			  "  array_agg((m.flags & ~1) | (s.uid IS NOT NULL)::int) AS flags,");
	bu_buf_append_str(&sql,
		"  array_agg(m.uid) FILTER (WHERE cardinality(m.keywords) > 0) AS kwuids,"
		"  string_agg(array_to_string(m.keywords, chr(1)), chr(2))"
		"   FILTER (WHERE cardinality(m.keywords) > 0) AS kws"
		"  FROM mail_messages m");
	if (viewer != owner_id)
		bu_buf_append_str(&sql, " LEFT JOIN mail_seen s ON s.account_id = m.account_id"
				  " AND s.collection_id = m.collection_id AND s.uid = m.uid"
				  " AND s.user_id = $3");
	bu_buf_append_str(&sql,
		"  WHERE m.account_id = c.account_id AND m.collection_id = c.id) x"
		" WHERE c.account_id = $1 AND c.id = $2 AND c.kind = 'mail'");
	r = ms_query_binres(db, bu_buf_cstr(&sql), &p);
	bu_buf_deinit(&sql);
	if (r == NULL)
		return MS_ERR;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return MS_NOTFOUND;
	}
	ci.modseq = ms_bin_i64(r, 0, 0);
	ms_kw_set(a, &ci, PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1));
	ci.name = ms_val_str(a, r, 0, 2);
	ci.uidvalidity = (uint32_t)ms_bin_i64(r, 0, 3);
	ci.uidnext = (uint32_t)ms_bin_i64(r, 0, 4);
	cap = (size_t)ms_bin_i64(r, 0, 5);
	if (cap > 0) {
		uids = bu_arena_alloc(a, bu_size_mul(cap, sizeof(int64_t)));
		modseqs = bu_arena_alloc(a, bu_size_mul(cap, sizeof(int64_t)));
		flags = bu_arena_alloc(a, bu_size_mul(cap, sizeof(int64_t)));
		kwuids = bu_arena_alloc(a, bu_size_mul(cap, sizeof(int64_t)));
	}
	n = ms_bin_array(r, 0, 6, uids, cap);
	n2 = ms_bin_array(r, 0, 7, modseqs, cap);
	n3 = ms_bin_array(r, 0, 8, flags, cap);
	n_kw = ms_bin_array(r, 0, 9, kwuids, cap);
	if (n < 0 || n2 != n || n3 != n || n_kw < 0 || (size_t)n != cap) {
		bu_error("event=mailstore.open_bad_arrays collection=%" PRId64, collection_id);
		PQclear(r);
		return MS_ERR;
	}
	if (n_kw > 0) {
		char *all = ms_val_str(a, r, 0, 10);
		ssize_t k = 0;

		/* one MS_LIST_SEP-separated entry per message with keywords */
		kwl = bu_arena_alloc(a, bu_size_mul((size_t)n_kw, sizeof(char *)));
		for (char *s = all != NULL ? all : (char *)""; k < n_kw;) {
			char *e = strchr(s, MS_LIST_SEP[0]);

			if (e != NULL)
				*e = '\0';
			kwl[k++] = s;
			if (e == NULL)
				break;
			s = e + 1;
		}
		if (k != n_kw) {
			bu_error("event=mailstore.open_bad_keywords collection=%" PRId64, collection_id);
			ret = MS_ERR;
		}
	}
	PQclear(r);
	if (ret < 0)
		return ret;

	mb = bu_arena_alloc(a, sizeof(*mb));
	mb->account_id = owner_id;
	mb->collection_id = collection_id;
	mb->name = ci.name;
	mb->uidvalidity = ci.uidvalidity;
	mb->uidnext = ci.uidnext;
	mb->highestmodseq = ci.modseq;
	mb->rights = rights;
	mb->keywords = ci.keywords;
	mb->n_msgs = (size_t)n;
	mb->msgs = bu_arena_alloc(a, bu_size_mul((size_t)n + 1, sizeof(*mb->msgs)));
	empty = bu_arena_alloc(a, sizeof(char *));
	for (ssize_t i = 0, k = 0; i < n; i++) {
		struct ms_msg *m = &mb->msgs[i];

		m->uid = (uint32_t)uids[i];
		m->modseq = modseqs[i];
		m->flags = (uint32_t)flags[i];
		m->keywords = empty;
		/* kwuids is the subsequence of uids (same order) with keywords */
		if (k < n_kw && kwuids[k] == uids[i])
			m->keywords = ms_split_keywords(a, kwl[k++]);
		if (i > 0 && m->uid <= mb->msgs[i - 1].uid)
			sorted = false;
		/* a safety net: the folder row is stamped in the same
		 * transaction as its messages, so these never move */
		if (m->uid >= mb->uidnext)
			mb->uidnext = m->uid + 1;
		if (m->modseq > mb->highestmodseq)
			mb->highestmodseq = m->modseq;
	}
	if (!sorted)
		qsort(mb->msgs, (size_t)n, sizeof(*mb->msgs), ms_msg_cmp);
	*mb_r = mb;
	return 0;
}

int ms_mailbox_changes(struct bu_db *db, struct bu_arena *a, int64_t viewer,
		       int64_t owner_id, int64_t collection_id, int64_t since,
		       struct ms_changes *ch_r)
{
	struct ms_coll_info ci;
	uint32_t rights;
	PGresult *r;
	int n, n_changed = 0;

	memset(ch_r, 0, sizeof(*ch_r));
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	if (!(rights & ACL_READ))
		return MS_NOPERM;
	r = ms_view_query(db, a, viewer, owner_id, collection_id, since, true);
	if (r == NULL)
		return MS_ERR;
	n = PQntuples(r);
	if (n == 0 || strcmp(PQgetvalue(r, 0, 0), "0") != 0) {
		PQclear(r);
		return MS_NOTFOUND;
	}
	ms_coll_row(a, r, &ci);
	while (1 + n_changed < n && strcmp(PQgetvalue(r, 1 + n_changed, 0), "1") == 0)
		n_changed++;
	ch_r->changed = bu_arena_alloc(a, bu_size_mul((size_t)n_changed + 1, sizeof(struct ms_msg)));
	ch_r->n_changed = (size_t)n_changed;
	ms_rows_to_msgs(a, r, 1, n_changed, ch_r->changed);
	ch_r->expunged = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(uint32_t)));
	for (int i = 1 + n_changed; i < n; i++)
		ch_r->expunged[ch_r->n_expunged++] = (uint32_t)ms_val_i64(r, i, 1);
	PQclear(r);
	ch_r->uidnext = ci.uidnext;
	ch_r->highestmodseq = ci.modseq;
	ch_r->uidvalidity = ci.uidvalidity;
	ch_r->keywords = ci.keywords;
	for (size_t i = 0; i < ch_r->n_changed; i++) {
		if (ch_r->changed[i].uid >= ch_r->uidnext)
			ch_r->uidnext = ch_r->changed[i].uid + 1;
		if (ch_r->changed[i].modseq > ch_r->highestmodseq)
			ch_r->highestmodseq = ch_r->changed[i].modseq;
	}
	return 0;
}

int ms_mailbox_status(struct bu_db *db, int64_t viewer, int64_t owner_id,
		      int64_t collection_id, struct ms_status *st_r)
{
	struct bu_arena *a;
	struct ms_params p;
	struct bu_buf sql;
	uint32_t rights;
	PGresult *r;
	int ret = 0;

	memset(st_r, 0, sizeof(*st_r));
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	if (!(rights & ACL_READ))
		return MS_NOPERM;
	a = bu_arena_create(0);
	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	if (viewer != owner_id)
		ms_param_i64(&p, viewer);
	bu_buf_init(&sql, 0);
	bu_buf_append_str(&sql, "SELECT c.uidnext, c.uidvalidity, c.modseq, s.n, s.unseen,"
			  " s.size, s.deleted, s.maxuid, s.maxmodseq FROM collections c"
			  " CROSS JOIN LATERAL (SELECT count(*) AS n,"
			  " count(*) FILTER (WHERE (");
	ms_flags_expr(&sql, viewer == owner_id, 3);
	bu_buf_append_str(&sql, " & 1) = 0) AS unseen,"
			  " coalesce(sum(m.size), 0) AS size,"
			  " count(*) FILTER (WHERE (m.flags & 8) <> 0) AS deleted,"
			  " coalesce(max(m.uid), 0) AS maxuid,"
			  " coalesce(max(m.modseq), 0) AS maxmodseq"
			  " FROM mail_messages m"
			  " WHERE m.account_id = c.account_id AND m.collection_id = c.id) s"
			  " WHERE c.account_id = $1 AND c.id = $2 AND c.kind = 'mail'");
	r = ms_query(db, bu_buf_cstr(&sql), &p);
	bu_buf_deinit(&sql);
	if (r == NULL) {
		ret = MS_ERR;
	} else if (PQntuples(r) == 0) {
		ret = MS_NOTFOUND;
	} else {
		int64_t maxuid = ms_val_i64(r, 0, 7), maxmodseq = ms_val_i64(r, 0, 8);

		st_r->uidnext = (uint32_t)ms_val_i64(r, 0, 0);
		st_r->uidvalidity = (uint32_t)ms_val_i64(r, 0, 1);
		st_r->highestmodseq = ms_val_i64(r, 0, 2);
		st_r->messages = (uint32_t)ms_val_i64(r, 0, 3);
		st_r->unseen = (uint32_t)ms_val_i64(r, 0, 4);
		st_r->size = ms_val_i64(r, 0, 5);
		st_r->deleted = (uint32_t)ms_val_i64(r, 0, 6);
		st_r->recent = 0;
		if (maxuid >= st_r->uidnext)
			st_r->uidnext = (uint32_t)(maxuid + 1);
		if (maxmodseq > st_r->highestmodseq)
			st_r->highestmodseq = maxmodseq;
	}
	PQclear(r);
	bu_arena_destroy(&a);
	return ret;
}

/* ---- append ------------------------------------------------------------- */

/* One message, parsed and summarised, ready for the INSERT. */
struct ms_prep {
	const struct ms_append *in;
	uint8_t sha[32];
	bool blob_first;          /* first of this content in the call */
	char *structure;
	size_t structure_len;
	size_t hdr_len;
	struct mime_summary sum;  /* cleaned copies */
	char *header_text, *body_text;
	char emailid[26], threadid[26];
	uint32_t flags;           /* stored flags */
	bool private_seen;        /* \Seen of a viewer who is not the owner */
	char *keywords;           /* joined with MS_KW_SEP */
	int64_t internaldate;
};

static char *ms_clean_field(struct bu_arena *a, const char *s)
{
	if (s == NULL)
		return NULL;
	return ms_utf8_clean(a, s, strlen(s), MS_FIELD_MAX);
}

static void ms_prepare(struct bu_arena *a, struct ms_prep *m, uint32_t flag_mask,
		       bool keywords_ok, bool is_owner, int64_t now)
{
	const struct ms_append *in = m->in;
	struct mime_summary s;
	struct mime_part *root;
	struct bu_buf b;
	const char *root_id = NULL;
	size_t root_len = 0;
	char hex[65];
	uint8_t h[32];

	ms_sha256(in->data, in->len, m->sha);
	ms_hex(m->sha, 32, hex);
	m->emailid[0] = 'M';
	memcpy(m->emailid + 1, hex, 24);
	m->emailid[25] = '\0';

	root = mime_parse(a, in->data, in->len);
	m->hdr_len = root->hdr_len;
	m->structure = mime_serialize(a, root, &m->structure_len);
	memset(&s, 0, sizeof(s));
	mime_summarize(a, root, in->data, in->len, &s);
	m->sum.subject = ms_clean_field(a, s.subject);
	m->sum.base_subject = ms_clean_field(a, s.base_subject);
	m->sum.from = ms_clean_field(a, s.from);
	m->sum.from_sort = ms_clean_field(a, s.from_sort);
	m->sum.from_display = ms_clean_field(a, s.from_display);
	m->sum.to = ms_clean_field(a, s.to);
	m->sum.to_sort = ms_clean_field(a, s.to_sort);
	m->sum.to_display = ms_clean_field(a, s.to_display);
	m->sum.cc = ms_clean_field(a, s.cc);
	m->sum.cc_sort = ms_clean_field(a, s.cc_sort);
	m->sum.bcc = ms_clean_field(a, s.bcc);
	m->sum.date = s.date;
	m->sum.message_id = ms_clean_field(a, s.message_id);
	m->sum.in_reply_to = ms_clean_field(a, s.in_reply_to);
	m->sum.references = ms_clean_field(a, s.references);
	m->sum.preview = ms_clean_field(a, s.preview);

	bu_buf_init(&b, 0);
	mime_search_text(&b, root, in->data, in->len, true, false);
	m->header_text = ms_utf8_clean(a, (const char *)b.data, b.len, MS_HEADER_TEXT_MAX);
	bu_buf_reset(&b);
	mime_search_text(&b, root, in->data, in->len, false, true);
	m->body_text = ms_utf8_clean(a, (const char *)b.data, b.len, MS_BODY_TEXT_MAX);
	bu_buf_deinit(&b);

	/* THREADID: the thread's root message-id (first References entry,
	 * else In-Reply-To, else the message's own id): stable, needs no
	 * lookup, and replies share it even when the root is not stored */
	if (m->sum.references != NULL && m->sum.references[0] != '\0') {
		root_id = m->sum.references;
		root_len = strcspn(root_id, " \t");
	} else if (m->sum.in_reply_to != NULL && m->sum.in_reply_to[0] != '\0') {
		root_id = m->sum.in_reply_to;
		root_len = strlen(root_id);
	} else if (m->sum.message_id != NULL && m->sum.message_id[0] != '\0') {
		root_id = m->sum.message_id;
		root_len = strlen(root_id);
	}
	/* without any message-id the thread is the message alone: hex still
	 * holds the content hash, so THREADID follows EMAILID */
	if (root_id != NULL && root_len > 0) {
		ms_sha256(root_id, root_len, h);
		ms_hex(h, 12, hex);
	}
	m->threadid[0] = 'T';
	memcpy(m->threadid + 1, hex, 24);
	m->threadid[25] = '\0';

	m->flags = in->flags & MS_STORED_FLAGS & flag_mask;
	if (!is_owner) {
		m->private_seen = (m->flags & MF_SEEN) != 0;
		m->flags &= ~(uint32_t)MF_SEEN;
	}
	m->keywords = "";
	if (keywords_ok && in->keywords != NULL) {
		bu_buf_init(&b, 0);
		if (ms_kw_join(&b, in->keywords) > 0)
			m->keywords = bu_arena_strdup(a, bu_buf_cstr(&b));
		bu_buf_deinit(&b);
	}
	m->internaldate = in->internaldate > 0 ? in->internaldate : now;
}

/* Reserve n UIDs in the folder (COPY/MOVE target), stamp its modseq, and
 * check the owner's quota for n more messages of `bytes`. 0 ok, MS_*. */
static int ms_reserve_uids(struct bu_db *db, struct bu_arena *a, int64_t owner_id,
			   int64_t collection_id, size_t n, int64_t bytes, int64_t modseq,
			   bool check_quota, uint32_t *first_uid_r, uint32_t *uidvalidity_r)
{
	struct ms_params p;
	PGresult *r;
	int64_t q_sto, q_msg, u_sto, u_msg;
	int ret = 0;

	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	ms_param_i64(&p, (int64_t)n);
	ms_param_i64(&p, modseq);
	r = ms_query(db, "UPDATE collections c SET uidnext = c.uidnext + $3, modseq = $4"
		     " FROM accounts a"
		     " WHERE c.account_id = $1 AND c.id = $2 AND c.kind = 'mail'"
		     " AND a.id = c.account_id"
		     " RETURNING c.uidnext - $3, c.uidvalidity, a.quota_storage,"
		     " a.quota_messages, a.used_storage, a.used_messages", &p);
	if (r == NULL)
		return MS_ERR;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return MS_NOTFOUND;
	}
	if (ms_val_i64(r, 0, 0) + (int64_t)n > 4294967296LL) {
		/* UIDs exhausted: needs a new UIDVALIDITY (never in practice) */
		bu_error("event=mailstore.uid_exhausted account=%" PRId64 " collection=%" PRId64,
			 owner_id, collection_id);
		PQclear(r);
		return MS_ERR;
	}
	*first_uid_r = (uint32_t)ms_val_i64(r, 0, 0);
	*uidvalidity_r = (uint32_t)ms_val_i64(r, 0, 1);
	q_sto = ms_val_i64(r, 0, 2);
	q_msg = ms_val_i64(r, 0, 3);
	u_sto = ms_val_i64(r, 0, 4);
	u_msg = ms_val_i64(r, 0, 5);
	PQclear(r);
	if (check_quota && ((q_msg > 0 && u_msg + (int64_t)n > q_msg) ||
			    (q_sto > 0 && u_sto + bytes > q_sto)))
		ret = MS_OVERQUOTA;
	return ret;
}

/* Where an append goes; the first INSERT statement reserves the UIDs of
 * all n messages and reports the quota state. */
struct ms_target {
	int64_t owner_id;
	int64_t collection_id;   /* 0: by folder name, falling back to INBOX */
	const char *folder;
	size_t n_total;
	int64_t modseq, now;
	/* from the first chunk */
	bool reserved;
	uint32_t first_uid, uidvalidity;
	int64_t q_sto, q_msg, u_sto, u_msg;
};

/* Insert prepared messages m[0..count), the first of which gets UID
 * t->first_uid + offset (offset 0: this chunk also reserves the UIDs and
 * resolves the folder, in the same statement). 0, MS_NOTFOUND, MS_ERR. */
static int ms_insert_chunk(struct bu_db *db, struct bu_arena *a, struct ms_target *t,
			   struct ms_prep *m, size_t count, size_t offset)
{
	struct ms_params p;
	struct bu_buf sql, kw;
	size_t blobs = 0;
	PGresult *r;
	int ret = 0;

	ms_params_init(&p, a);
	ms_param_i64(&p, t->owner_id);                        /* $1 */
	ms_param_i64(&p, t->collection_id);                   /* $2 */
	ms_param_i64(&p, t->modseq);                          /* $3 */
	ms_param_i64(&p, t->now);                             /* $4 */
	bu_buf_init(&sql, 0);
	bu_buf_init(&kw, 0);
	if (!t->reserved) {
		ms_param_i64(&p, (int64_t)t->n_total);        /* $5 */
		ms_param(&p, t->folder != NULL ? t->folder : "INBOX"); /* $6 */
		bu_buf_append_str(&sql,
			"WITH c AS (UPDATE collections c SET uidnext = c.uidnext + $5, modseq = $3"
			" FROM accounts a"
			" WHERE c.account_id = $1 AND c.kind = 'mail' AND a.id = c.account_id"
			" AND c.id = CASE WHEN $2::bigint <> 0 THEN $2::bigint ELSE"
			"  (SELECT f.id FROM collections f WHERE f.account_id = $1"
			"    AND f.kind = 'mail' AND f.name IN ($6, 'INBOX')"
			"    ORDER BY f.name = 'INBOX' LIMIT 1) END"
			" RETURNING c.uidnext - $5 AS first, c.uidvalidity, c.id,"
			" a.quota_storage AS qs, a.quota_messages AS qm,"
			" a.used_storage AS us, a.used_messages AS um)");
	} else {
		int f = ms_param_i64(&p, (int64_t)t->first_uid + (int64_t)offset);

		bu_buf_printf(&sql, "WITH c AS (SELECT $%d::bigint AS first,"
			      " 0::bigint AS uidvalidity, $2::bigint AS id, 0::bigint AS qs,"
			      " 0::bigint AS qm, 0::bigint AS us, 0::bigint AS um)", f);
	}
	for (size_t i = 0; i < count; i++) {
		if (!m[i].blob_first)
			continue;
		int h = ms_param_bin(&p, m[i].sha, 32);
		int s = ms_param_i64(&p, (int64_t)m[i].in->len);
		int d = ms_param_bin(&p, m[i].in->data, m[i].in->len);
		int ht = ms_param(&p, m[i].header_text);
		int bt = ms_param(&p, m[i].body_text);

		/* the search text lives with the content, written once: flag
		 * changes never touch its trigram indexes */
		bu_buf_append_str(&sql, blobs == 0 ?
				  ", b AS (INSERT INTO mail_blobs (account_id, sha256, size, data,"
				  " header_text, body_text) VALUES " :
				  ", ");
		bu_buf_printf(&sql, "($1, $%d, $%d, $%d, $%d, $%d)", h, s, d, ht, bt);
		blobs++;
	}
	if (blobs > 0)
		bu_buf_append_str(&sql, " ON CONFLICT DO NOTHING)");
	for (size_t i = 0; i < count; i++) {
		if (m[i].keywords[0] == '\0')
			continue;
		if (kw.len > 0)
			bu_buf_append_str(&kw, MS_KW_SEP);
		bu_buf_append_str(&kw, m[i].keywords);
	}
	if (kw.len > 0) {
		int k = ms_param(&p, bu_buf_cstr(&kw));

		bu_buf_printf(&sql, ", k AS (INSERT INTO mail_keywords (account_id, collection_id, keyword)"
			      " SELECT DISTINCT $1::bigint, c.id, x"
			      " FROM c, unnest(string_to_array($%d::text, chr(1))) AS x"
			      " ON CONFLICT DO NOTHING)", k);
	}
	bu_buf_deinit(&kw);
	bu_buf_append_str(&sql, ", i AS (INSERT INTO mail_messages (account_id, collection_id, uid,"
			  " modseq, flags, keywords, internaldate, savedate, size, blob, hdr_len,"
			  " structure, subject, base_subject, from_, from_sort, from_display,"
			  " to_, to_sort, to_display, cc, cc_sort, bcc, sent_date, message_id,"
			  " in_reply_to, references_, preview,"
			  " emailid, threadid)"
			  " SELECT $1, c.id, c.first + v.o, $3, v.flags,"
			  " coalesce(string_to_array(v.kw, chr(1)), '{}'), v.idate, $4, v.size,"
			  " v.blob, v.hdr_len, v.structure, v.subject, v.base_subject, v.from_,"
			  " v.from_sort, v.from_display, v.to_, v.to_sort, v.to_display, v.cc,"
			  " v.cc_sort, v.bcc, v.sent_date, v.message_id, v.in_reply_to,"
			  " v.references_, v.preview, v.emailid,"
			  " v.threadid FROM c, (VALUES ");
	for (size_t i = 0; i < count; i++) {
		/* the value types, in the order of v's columns below */
		static const char *const types[] = {
			"int", "text", "bigint", "bigint", "bytea", "int", "bytea",
			"text", "text", "text", "text", "text", "text", "text", "text",
			"text", "text", "text", "bigint", "text", "text", "text", "text",
			"text", "text",
		};
		const struct mime_summary *s = &m[i].sum;
		int base = ms_param_i64(&p, m[i].flags);

		ms_param(&p, m[i].keywords);
		ms_param_i64(&p, m[i].internaldate);
		ms_param_i64(&p, (int64_t)m[i].in->len);
		ms_param_bin(&p, m[i].sha, 32);
		ms_param_i64(&p, (int64_t)m[i].hdr_len);
		ms_param_bin(&p, m[i].structure, m[i].structure_len);
		ms_param(&p, s->subject);
		ms_param(&p, s->base_subject != NULL ? s->base_subject : "");
		ms_param(&p, s->from);
		ms_param(&p, s->from_sort != NULL ? s->from_sort : "");
		ms_param(&p, s->from_display != NULL ? s->from_display : "");
		ms_param(&p, s->to);
		ms_param(&p, s->to_sort != NULL ? s->to_sort : "");
		ms_param(&p, s->to_display != NULL ? s->to_display : "");
		ms_param(&p, s->cc);
		ms_param(&p, s->cc_sort != NULL ? s->cc_sort : "");
		ms_param(&p, s->bcc);
		if (s->date != 0)
			ms_param_i64(&p, s->date);
		else
			ms_param(&p, NULL);
		ms_param(&p, s->message_id);
		ms_param(&p, s->in_reply_to);
		ms_param(&p, s->references);
		ms_param(&p, s->preview);
		ms_param(&p, m[i].emailid);
		ms_param(&p, m[i].threadid);
		/* the ordinal is our loop counter, not input */
		bu_buf_printf(&sql, "%s(%zu", i == 0 ? "" : ", ", i);
		for (size_t k = 0; k < BU_N_ELEMENTS(types); k++)
			bu_buf_printf(&sql, ", $%d::%s", base + (int)k, types[k]);
		bu_buf_append_byte(&sql, ')');
	}
	bu_buf_append_str(&sql, ") AS v(o, flags, kw, idate, size, blob, hdr_len, structure,"
			  " subject, base_subject, from_, from_sort, from_display, to_, to_sort,"
			  " to_display, cc, cc_sort, bcc, sent_date, message_id, in_reply_to,"
			  " references_, preview, emailid, threadid)"
			  " RETURNING 1)"
			  " SELECT c.first, c.uidvalidity, c.id, c.qs, c.qm, c.us, c.um,"
			  " (SELECT count(*) FROM i) FROM c");
	r = ms_query(db, bu_buf_cstr(&sql), &p);
	bu_buf_deinit(&sql);
	if (r == NULL)
		return MS_ERR;
	if (PQntuples(r) == 0) {
		ret = MS_NOTFOUND;            /* no such folder (and no INBOX) */
	} else if (ms_val_i64(r, 0, 7) != (int64_t)count) {
		bu_error("event=mailstore.append_mismatch expected=%zu got=%s", count,
			 PQgetvalue(r, 0, 7));
		ret = MS_ERR;
	} else if (!t->reserved) {
		int64_t first = ms_val_i64(r, 0, 0);

		if (first < 1 || first + (int64_t)t->n_total > 4294967296LL) {
			/* UIDs exhausted: needs a new UIDVALIDITY (never in practice) */
			bu_error("event=mailstore.uid_exhausted account=%" PRId64, t->owner_id);
			ret = MS_ERR;
		} else {
			t->reserved = true;
			t->first_uid = (uint32_t)first;
			t->uidvalidity = (uint32_t)ms_val_i64(r, 0, 1);
			t->collection_id = ms_val_i64(r, 0, 2);
			t->q_sto = ms_val_i64(r, 0, 3);
			t->q_msg = ms_val_i64(r, 0, 4);
			t->u_sto = ms_val_i64(r, 0, 5);
			t->u_msg = ms_val_i64(r, 0, 6);
		}
	}
	PQclear(r);
	return ret;
}

int ms_append_internal(struct bu_db *db, int64_t viewer, int64_t owner_id,
		       int64_t collection_id, const char *folder,
		       const struct ms_append *msgs, size_t n,
		       uint32_t *uidvalidity_r, uint32_t *uids_r)
{
	struct bu_arena *a;
	struct ms_prep *m;
	struct ms_params p;
	struct ms_target t;
	uint32_t rights = ACL_ALL, uidvalidity = 0;
	int64_t now = (int64_t)time(NULL), modseq, bytes = 0;
	bool is_owner = viewer == owner_id;
	int ret;

	if (n == 0)
		return 0;
	if (!is_owner) {
		bu_assert(collection_id != 0);
		if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
			return MS_ERR;
		if (!(rights & ACL_INSERT))
			return MS_NOPERM;
	}
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].len > MS_MESSAGE_MAX)
			return MS_TOOBIG;
		bytes += (int64_t)msgs[i].len;
	}

	/* parse outside the transaction: the account lock is held briefly */
	a = bu_arena_create(0);
	m = bu_arena_alloc(a, bu_size_mul(n, sizeof(*m)));
	for (size_t i = 0; i < n; i++) {
		m[i].in = &msgs[i];
		ms_prepare(a, &m[i], ms_flag_mask(rights), (rights & ACL_WRITE) != 0,
			   is_owner, now);
		m[i].blob_first = true;
		for (size_t j = 0; j < i; j++) {
			if (memcmp(m[j].sha, m[i].sha, 32) == 0) {
				m[i].blob_first = false;
				break;
			}
		}
	}

	if (bu_db_begin(db) < 0) {
		ret = MS_ERR;
		goto out;
	}
	modseq = changelog_next(db, owner_id);
	if (modseq < 0) {
		ret = MS_ERR;
		goto rollback;
	}
	memset(&t, 0, sizeof(t));
	t.owner_id = owner_id;
	t.collection_id = collection_id;
	t.folder = folder;
	t.n_total = n;
	t.modseq = modseq;
	t.now = now;
	for (size_t i = 0; i < n;) {
		size_t cnt = 0, chunk_bytes = 0;

		while (i + cnt < n && cnt < MS_APPEND_CHUNK &&
		       (cnt == 0 || chunk_bytes + m[i + cnt].in->len <= MS_APPEND_CHUNK_BYTES)) {
			chunk_bytes += m[i + cnt].in->len;
			cnt++;
		}
		ret = ms_insert_chunk(db, a, &t, m + i, cnt, i);
		if (ret < 0)
			goto rollback;
		/* the owner's quota, as it was before this append */
		if (i == 0 && ((t.q_msg > 0 && t.u_msg + (int64_t)n > t.q_msg) ||
			       (t.q_sto > 0 && t.u_sto + bytes > t.q_sto))) {
			ret = MS_OVERQUOTA;
			goto rollback;
		}
		i += cnt;
	}
	collection_id = t.collection_id;
	uidvalidity = t.uidvalidity;
	for (size_t i = 0; i < n; i++)
		uids_r[i] = t.first_uid + (uint32_t)i;
	if (!is_owner) {
		uint32_t *seen = bu_arena_alloc(a, bu_size_mul(n, sizeof(uint32_t)));
		size_t n_seen = 0;

		for (size_t i = 0; i < n; i++) {
			if (m[i].private_seen)
				seen[n_seen++] = uids_r[i];
		}
		if (n_seen > 0) {
			PGresult *r;

			ms_params_init(&p, a);
			ms_param_i64(&p, owner_id);
			ms_param_i64(&p, collection_id);
			ms_param_uids(&p, seen, n_seen);
			ms_param_i64(&p, viewer);
			r = ms_query(db, "INSERT INTO mail_seen (account_id, collection_id, uid, user_id)"
				     " SELECT $1, $2, unnest($3::bigint[]), $4", &p);
			if (r == NULL) {
				ret = MS_ERR;
				goto rollback;
			}
			PQclear(r);
		}
	}
	if (changelog_notify(db, owner_id, collection_id) < 0 || bu_db_commit(db) < 0) {
		ret = MS_ERR;
		goto rollback;
	}
	/* new mail is what gets read next: keep what never changes of it */
	for (size_t i = 0; i < n && mc_enabled(); i++) {
		struct ms_fetch f;

		memset(&f, 0, sizeof(f));
		f.uid = uids_r[i];
		f.internaldate = m[i].internaldate;
		f.savedate = now;
		f.size = (int64_t)m[i].in->len;
		f.emailid = m[i].emailid;
		f.threadid = m[i].threadid;
		f.preview = m[i].sum.preview;
		f.structure = m[i].structure;
		f.structure_len = m[i].structure_len;
		f.raw = m[i].in->data;
		f.raw_len = m[i].in->len;
		mc_put(owner_id, collection_id, &f);
	}
	if (uidvalidity_r != NULL)
		*uidvalidity_r = uidvalidity;
	ret = 0;
	goto out;

rollback:
	bu_db_rollback(db);
out:
	bu_arena_destroy(&a);
	return ret;
}

int ms_append(struct bu_db *db, int64_t viewer, int64_t owner_id, int64_t collection_id,
	      const struct ms_append *msgs, size_t n, uint32_t *uidvalidity_r,
	      uint32_t *uids_r)
{
	if (collection_id <= 0)
		return MS_NOTFOUND;
	return ms_append_internal(db, viewer, owner_id, collection_id, NULL, msgs, n,
				  uidvalidity_r, uids_r);
}

/* ---- fetch -------------------------------------------------------------- */

int ms_fetch(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	     int64_t collection_id, const uint32_t *uids, size_t n, unsigned what,
	     struct ms_fetch **res_r, size_t *n_r)
{
	struct ms_params p;
	struct bu_buf sql;
	struct ms_fetch *res;
	uint32_t rights;
	PGresult *r;
	int rows, col_structure = -1, col_raw = -1, col_preview = -1, col = 9;
	int n_fixed, p_viewer;
	uint32_t lo, hi;
	bool contiguous;
	char **empty;

	*res_r = NULL;
	*n_r = 0;
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	if (!(rights & ACL_READ))
		return MS_NOPERM;
	if (n == 0)
		return 0;
	/* The UIDs as one value, one range or a list: the first two have
	 * generic plans as good as custom ones (an index lookup or range
	 * scan in UID order), so the prepared statement is planned once; a
	 * list is bounded by its first and last UID for the same reason. */
	contiguous = true;
	lo = hi = uids[0];
	for (size_t i = 1; i < n; i++) {
		if (uids[i] != uids[0] + i)
			contiguous = false;
		if (uids[i] < lo)
			lo = uids[i];
		if (uids[i] > hi)
			hi = uids[i];
	}
	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	if (n == 1) {
		ms_param_i64(&p, uids[0]);
	} else if (contiguous) {
		ms_param_i64(&p, uids[0]);
		ms_param_i64(&p, uids[n - 1]);
	} else {
		ms_param_i64(&p, lo);
		ms_param_i64(&p, hi);
		ms_param_uids(&p, uids, n);
	}
	n_fixed = p.n;
	p_viewer = ms_param_i64(&p, viewer);
	bu_buf_init(&sql, 0);
	bu_buf_append_str(&sql, "SELECT m.uid, m.modseq, (");
	ms_flags_expr(&sql, viewer == owner_id, p_viewer);
	bu_buf_append_str(&sql, ")::int8, array_to_string(m.keywords, chr(1)),");
	/* the META columns only when asked for: FETCH 1:* (FLAGS ENVELOPE
	 * BODYSTRUCTURE) sends thousands of rows */
	bu_buf_append_str(&sql, (what & MSF_META) ?
			  " m.internaldate, coalesce(m.savedate, 0), m.size, m.emailid, m.threadid" :
			  " 0::int8, 0::int8, m.size, NULL::text, NULL::text");
	if (what & MSF_STRUCTURE) {
		bu_buf_append_str(&sql, ", m.structure");
		col_structure = col++;
	}
	if (what & MSF_RAW) {
		bu_buf_append_str(&sql, ", b.data");
		col_raw = col++;
	} else if (what & MSF_RAW_FIRST) {
		/* the rows come in UID order (an index scan): the running sum
		 * needs no sort; only the values returned are read */
		bu_buf_printf(&sql, ", CASE WHEN sum(m.size) OVER (ORDER BY m.uid ROWS UNBOUNDED"
			      " PRECEDING) - m.size < %" PRId64 " THEN b.data END",
			      MS_FETCH_RAW_FIRST);
		col_raw = col++;
	}
	if (what & MSF_PREVIEW) {
		bu_buf_append_str(&sql, ", coalesce(m.preview, '')");
		col_preview = col++;
	}
	bu_buf_append_str(&sql, " FROM mail_messages m");
	if (what & (MSF_RAW | MSF_RAW_FIRST))
		bu_buf_append_str(&sql, " JOIN mail_blobs b ON b.account_id = m.account_id"
				  " AND b.sha256 = m.blob");
	bu_buf_append_str(&sql, " WHERE m.account_id = $1 AND m.collection_id = $2");
	if (n == 1)
		bu_buf_append_str(&sql, " AND m.uid = $3");
	else if (contiguous)
		bu_buf_append_str(&sql, " AND m.uid BETWEEN $3 AND $4");
	else
		bu_buf_append_str(&sql, " AND m.uid BETWEEN $3 AND $4 AND m.uid = ANY ($5::bigint[])");
	bu_buf_append_str(&sql, " ORDER BY m.uid");
	if (viewer == owner_id)
		p.n = n_fixed;
	r = ms_query_binres(db, bu_buf_cstr(&sql), &p);
	bu_buf_deinit(&sql);
	if (r == NULL)
		return MS_ERR;
	/* the values stay in the result, which lives as long as the arena */
	ms_arena_own_result(a, r);
	rows = PQntuples(r);
	res = bu_arena_alloc(a, bu_size_mul((size_t)rows + 1, sizeof(*res)));
	empty = bu_arena_alloc(a, sizeof(char *));
	for (int i = 0; i < rows; i++) {
		struct ms_fetch *f = &res[i];
		const char *kw = PQgetvalue(r, i, 3);

		f->uid = (uint32_t)ms_bin_i64(r, i, 0);
		f->modseq = ms_bin_i64(r, i, 1);
		f->flags = (uint32_t)ms_bin_i64(r, i, 2);
		f->keywords = *kw == '\0' ? empty : ms_split_keywords(a, kw);
		f->internaldate = ms_bin_i64(r, i, 4);
		f->savedate = ms_bin_i64(r, i, 5);
		f->size = ms_bin_i64(r, i, 6);
		f->emailid = PQgetisnull(r, i, 7) ? NULL : PQgetvalue(r, i, 7);
		f->threadid = PQgetisnull(r, i, 8) ? NULL : PQgetvalue(r, i, 8);
		if (col_structure >= 0) {
			f->structure = PQgetvalue(r, i, col_structure);
			f->structure_len = (size_t)PQgetlength(r, i, col_structure);
		}
		if (col_raw >= 0 && !PQgetisnull(r, i, col_raw)) {
			f->raw = (const uint8_t *)PQgetvalue(r, i, col_raw);
			f->raw_len = (size_t)PQgetlength(r, i, col_raw);
		}
		if (col_preview >= 0)
			f->preview = PQgetvalue(r, i, col_preview);
	}
	*res_r = res;
	*n_r = (size_t)rows;
	return 0;
}

/* ---- store -------------------------------------------------------------- */

/* keywords after the operation, or NULL when they do not change */
static char **ms_kw_apply(struct bu_arena *a, char **cur, enum ms_store_mode mode,
			  char *const *kw)
{
	size_t n_cur = 0, n_kw = 0, n = 0;
	char **out;
	bool changed = false;

	while (cur[n_cur] != NULL)
		n_cur++;
	while (kw != NULL && kw[n_kw] != NULL)
		n_kw++;
	out = bu_arena_alloc(a, bu_size_mul(n_cur + n_kw + 1, sizeof(char *)));
	switch (mode) {
	case MS_STORE_ADD:
		for (size_t i = 0; i < n_cur; i++)
			out[n++] = cur[i];
		for (size_t i = 0; i < n_kw; i++) {
			if (!ms_kw_has(out, kw[i])) {
				out[n++] = kw[i];
				changed = true;
			}
		}
		break;
	case MS_STORE_REMOVE:
		for (size_t i = 0; i < n_cur; i++) {
			if (ms_kw_has(kw, cur[i]))
				changed = true;
			else
				out[n++] = cur[i];
		}
		break;
	case MS_STORE_REPLACE:
		for (size_t i = 0; i < n_kw; i++) {
			if (!ms_kw_has(out, kw[i]))
				out[n++] = kw[i];
		}
		/* the same set, compared without case, is no change */
		if (n != n_cur)
			changed = true;
		for (size_t i = 0; !changed && i < n_cur; i++) {
			if (!ms_kw_has(out, cur[i]))
				changed = true;
		}
		break;
	}
	out[n] = NULL;
	return changed ? out : NULL;
}

/*
 * The common STORE: the owner adds or removes system flags, no keywords, no
 * UNCHANGEDSINCE. One statement, run on its own (its own transaction, one
 * round trip): it takes the account's next modseq (the row lock that
 * orders the account's writers, held only for this statement) if some
 * message's flags will move, changes exactly those rows and returns them,
 * stamps the folder and sends the notification. A contiguous UID set (1:*
 * on a folder without gaps) is a range the primary key scans in order.
 * Nothing to change spends no modseq. Returns what ms_store returns.
 */
static int ms_store_fast(struct bu_db *db, struct bu_arena *a, int64_t owner_id,
			 int64_t collection_id, const uint32_t *uids, size_t n, bool add,
			 uint32_t flags, struct ms_store_result *res_r)
{
	struct ms_params p;
	struct bu_buf sql, cond;
	int64_t modseq;
	PGresult *r;
	char **empty;
	size_t i;
	int rows;

	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);                 /* $1 */
	ms_param_i64(&p, collection_id);            /* $2 */
	ms_param_i64(&p, (int64_t)flags);           /* $3 */
	bu_buf_init(&cond, 0);
	bu_buf_append_str(&cond, "m.account_id = $1 AND m.collection_id = $2");
	for (i = 1; i < n && uids[i] == uids[i - 1] + 1; i++)
		;
	if (n == 1) {
		ms_param_i64(&p, uids[0]);
		bu_buf_append_str(&cond, " AND m.uid = $4");
	} else if (i == n) {
		ms_param_i64(&p, uids[0]);
		ms_param_i64(&p, uids[n - 1]);
		bu_buf_append_str(&cond, " AND m.uid BETWEEN $4 AND $5");
	} else {
		ms_param_uids(&p, uids, n);
		bu_buf_append_str(&cond, " AND m.uid = ANY ($4::bigint[])");
	}
	bu_buf_append_str(&cond, add ? " AND (m.flags & $3::int) <> $3::int" :
			  " AND (m.flags & $3::int) <> 0");
	bu_buf_init(&sql, 0);
	bu_buf_printf(&sql,
		"WITH a AS (UPDATE accounts SET modseq = modseq + 1 WHERE id = $1"
		"  AND EXISTS (SELECT 1 FROM mail_messages m WHERE %s) RETURNING modseq),"
		" u AS (UPDATE mail_messages m SET flags = m.flags %s $3::int,"
		"  modseq = (SELECT modseq FROM a)"
		"  WHERE %s AND (SELECT modseq FROM a) IS NOT NULL"
		"  RETURNING m.uid, m.flags, array_to_string(m.keywords, chr(1)) AS kw),"
		" c AS (UPDATE collections SET modseq = (SELECT modseq FROM a)"
		"  WHERE account_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM u)),"
		" n AS (SELECT pg_notify('bureau', $1::text || ' ' || $2::text)"
		"  WHERE EXISTS (SELECT 1 FROM u))"
		" SELECT u.uid, u.flags::int8, u.kw, (SELECT modseq FROM a), (SELECT count(*) FROM n)"
		" FROM u ORDER BY u.uid",
		bu_buf_cstr(&cond), add ? "|" : "& ~", bu_buf_cstr(&cond));
	bu_buf_deinit(&cond);
	r = ms_query_binres(db, bu_buf_cstr(&sql), &p);
	bu_buf_deinit(&sql);
	if (r == NULL)
		return MS_ERR;
	rows = PQntuples(r);
	if (rows == 0) {
		/* nothing moved (and no modseq was spent) */
		PQclear(r);
		rows = ms_collection_exists(db, owner_id, collection_id);
		if (rows <= 0)
			return rows < 0 ? MS_ERR : MS_NOTFOUND;
		return 0;
	}
	modseq = ms_bin_i64(r, 0, 3);
	res_r->changed = bu_arena_alloc(a, bu_size_mul((size_t)rows + 1, sizeof(struct ms_msg)));
	res_r->modified = bu_arena_alloc(a, sizeof(uint32_t));
	empty = bu_arena_alloc(a, sizeof(char *));
	for (int k = 0; k < rows; k++) {
		struct ms_msg *c = &res_r->changed[k];
		const char *kw = PQgetvalue(r, k, 2);

		c->uid = (uint32_t)ms_bin_i64(r, k, 0);
		c->modseq = modseq;
		c->flags = (uint32_t)ms_bin_i64(r, k, 1);
		c->keywords = *kw == '\0' ? empty : ms_split_keywords(a, kw);
	}
	res_r->n_changed = (size_t)rows;
	PQclear(r);
	/* committed: the change generation moves now (changelog_notify's
	 * part, the NOTIFY itself went out with the statement) */
	bu_db_note_change(db, owner_id, collection_id);
	return rows;
}

int ms_store(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	     int64_t collection_id, const uint32_t *uids, size_t n,
	     enum ms_store_mode mode, uint32_t flags, const char *const *keywords,
	     int64_t unchangedsince, struct ms_store_result *res_r)
{
	struct ms_params p;
	struct bu_buf upd_uids, upd_flags, upd_kw, new_kw, seen_add, seen_del;
	bool is_owner = viewer == owner_id, kw_ok, have_kw;
	uint32_t rights, mask, specified;
	char **kw_clean = NULL;
	size_t n_upd = 0, n_add = 0, n_del = 0, n_kw = 0;
	int64_t modseq;
	PGresult *r = NULL;
	int rows, ret;

	memset(res_r, 0, sizeof(*res_r));
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	if (!(rights & ACL_READ))
		return MS_NOPERM;
	mask = ms_flag_mask(rights);
	kw_ok = (rights & ACL_WRITE) != 0;
	flags &= MS_STORED_FLAGS;

	/* keywords, cleaned and without duplicates */
	if (keywords != NULL) {
		struct bu_buf b;

		bu_buf_init(&b, 0);
		n_kw = ms_kw_join(&b, keywords);
		kw_clean = ms_split_keywords(a, bu_buf_cstr(&b));
		bu_buf_deinit(&b);
	}
	have_kw = n_kw > 0;
	if (mode != MS_STORE_REPLACE && flags == 0 && !have_kw)
		return 0;
	/* RFC 4314 4: a STORE fails only if the viewer may change none of the
	 * flags it names; the others are left alone silently */
	specified = mode == MS_STORE_REPLACE ? MS_STORED_FLAGS : flags;
	if ((specified != 0 || have_kw || mode == MS_STORE_REPLACE) &&
	    (specified & mask) == 0 && !((have_kw || mode == MS_STORE_REPLACE) && kw_ok))
		return MS_NOPERM;
	if (n == 0)
		return 0;
	if (is_owner && !have_kw && unchangedsince < 0 && mode != MS_STORE_REPLACE)
		return ms_store_fast(db, a, owner_id, collection_id, uids, n,
				     mode == MS_STORE_ADD, flags, res_r);

	if (bu_db_begin(db) < 0)
		return MS_ERR;
	modseq = changelog_next(db, owner_id);
	if (modseq < 0)
		goto db_error;
	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	ms_param_uids(&p, uids, n);
	if (is_owner) {
		r = ms_query(db, "SELECT m.uid, m.modseq, m.flags, array_to_string(m.keywords, chr(1)),"
			     " false FROM mail_messages m WHERE m.account_id = $1"
			     " AND m.collection_id = $2 AND m.uid = ANY ($3::bigint[]) ORDER BY m.uid", &p);
	} else {
		ms_param_i64(&p, viewer);
		r = ms_query(db, "SELECT m.uid, m.modseq, m.flags, array_to_string(m.keywords, chr(1)),"
			     " EXISTS (SELECT 1 FROM mail_seen s WHERE s.account_id = m.account_id"
			     "  AND s.collection_id = m.collection_id AND s.uid = m.uid"
			     "  AND s.user_id = $4)"
			     " FROM mail_messages m WHERE m.account_id = $1"
			     " AND m.collection_id = $2 AND m.uid = ANY ($3::bigint[]) ORDER BY m.uid", &p);
	}
	if (r == NULL)
		goto db_error;
	rows = PQntuples(r);
	res_r->changed = bu_arena_alloc(a, bu_size_mul((size_t)rows + 1, sizeof(struct ms_msg)));
	res_r->modified = bu_arena_alloc(a, bu_size_mul((size_t)rows + 1, sizeof(uint32_t)));
	bu_buf_init(&upd_uids, 0);
	bu_buf_init(&upd_flags, 0);
	bu_buf_init(&upd_kw, 0);
	bu_buf_init(&new_kw, 0);
	bu_buf_init(&seen_add, 0);
	bu_buf_init(&seen_del, 0);
	for (int i = 0; i < rows; i++) {
		uint32_t uid = (uint32_t)ms_val_i64(r, i, 0);
		int64_t cur_modseq = ms_val_i64(r, i, 1);
		uint32_t stored = (uint32_t)ms_val_i64(r, i, 2);
		char **cur_kw = ms_split_keywords(a, PQgetvalue(r, i, 3));
		bool pseen = PQgetvalue(r, i, 4)[0] == 't';
		uint32_t view = is_owner ? stored : ((stored & ~(uint32_t)MF_SEEN) | (pseen ? MF_SEEN : 0));
		uint32_t nview = view;
		char **nkw = NULL;

		switch (mode) {
		case MS_STORE_ADD:
			nview = view | (flags & mask);
			break;
		case MS_STORE_REMOVE:
			nview = view & ~(flags & mask);
			break;
		case MS_STORE_REPLACE:
			nview = (view & ~mask) | (flags & mask);
			break;
		}
		if (kw_ok && (have_kw || mode == MS_STORE_REPLACE))
			nkw = ms_kw_apply(a, cur_kw, mode, kw_clean);
		if (unchangedsince >= 0 && cur_modseq > unchangedsince) {
			/* RFC 7162 3.1.3: not applied, reported MODIFIED */
			res_r->modified[res_r->n_modified++] = uid;
			continue;
		}
		if (nview == view && nkw == NULL)
			continue;

		struct ms_msg *c = &res_r->changed[res_r->n_changed++];
		uint32_t nstored = is_owner ? nview :
			((nview & ~(uint32_t)MF_SEEN) | (stored & MF_SEEN));

		c->uid = uid;
		c->modseq = modseq;
		c->flags = nview;
		c->keywords = nkw != NULL ? nkw : cur_kw;
		bu_buf_printf(&upd_uids, n_upd == 0 ? "{%" PRIu32 : ",%" PRIu32, uid);
		bu_buf_printf(&upd_flags, n_upd == 0 ? "{%" PRIu32 : ",%" PRIu32, nstored);
		if (n_upd > 0)
			bu_buf_append_str(&upd_kw, MS_LIST_SEP);
		for (size_t k = 0; c->keywords[k] != NULL; k++) {
			if (k > 0)
				bu_buf_append_str(&upd_kw, MS_KW_SEP);
			bu_buf_append_str(&upd_kw, c->keywords[k]);
		}
		n_upd++;
		if (!is_owner && ((nview ^ view) & MF_SEEN)) {
			if (nview & MF_SEEN)
				bu_buf_printf(&seen_add, n_add++ == 0 ? "{%" PRIu32 : ",%" PRIu32, uid);
			else
				bu_buf_printf(&seen_del, n_del++ == 0 ? "{%" PRIu32 : ",%" PRIu32, uid);
		}
	}
	PQclear(r);
	r = NULL;
	if (kw_ok && have_kw && mode != MS_STORE_REMOVE) {
		for (size_t k = 0; kw_clean[k] != NULL; k++) {
			if (k > 0)
				bu_buf_append_str(&new_kw, MS_KW_SEP);
			bu_buf_append_str(&new_kw, kw_clean[k]);
		}
	}
	if (n_upd > 0) {
		bu_buf_append_byte(&upd_uids, '}');
		bu_buf_append_byte(&upd_flags, '}');
		bu_buf_append_str(&seen_add, n_add > 0 ? "}" : "{}");
		bu_buf_append_str(&seen_del, n_del > 0 ? "}" : "{}");
		ms_params_init(&p, a);
		ms_param_i64(&p, owner_id);                 /* $1 */
		ms_param_i64(&p, collection_id);            /* $2 */
		ms_param_i64(&p, modseq);                   /* $3 */
		ms_param(&p, bu_buf_cstr(&upd_uids));       /* $4 */
		ms_param(&p, bu_buf_cstr(&upd_flags));      /* $5 */
		ms_param(&p, bu_buf_cstr(&upd_kw));         /* $6 */
		ms_param(&p, bu_buf_cstr(&new_kw));         /* $7 */
		ms_param(&p, bu_buf_cstr(&seen_add));       /* $8 */
		ms_param(&p, bu_buf_cstr(&seen_del));       /* $9 */
		ms_param_i64(&p, viewer);                   /* $10 */
		/* one statement: the flags, the viewer's \Seen rows, the
		 * folder's keyword set and modseq */
		r = ms_query(db,
			     "WITH u AS (UPDATE mail_messages m SET flags = v.flags,"
			     "   keywords = coalesce(string_to_array(v.kw, chr(1)), '{}'), modseq = $3"
			     "  FROM unnest($4::bigint[], $5::int[], string_to_array($6, chr(2)))"
			     "   AS v(uid, flags, kw)"
			     "  WHERE m.account_id = $1 AND m.collection_id = $2 AND m.uid = v.uid"
			     "  RETURNING 1),"
			     " sa AS (INSERT INTO mail_seen (account_id, collection_id, uid, user_id)"
			     "  SELECT $1, $2, x, $10 FROM unnest($8::bigint[]) AS x"
			     "  ON CONFLICT DO NOTHING),"
			     " sd AS (DELETE FROM mail_seen WHERE account_id = $1 AND collection_id = $2"
			     "  AND user_id = $10 AND uid = ANY ($9::bigint[])),"
			     " k AS (INSERT INTO mail_keywords (account_id, collection_id, keyword)"
			     "  SELECT DISTINCT $1::bigint, $2::bigint, x"
			     "  FROM unnest(string_to_array($7, chr(1))) AS x ON CONFLICT DO NOTHING),"
			     " c AS (UPDATE collections SET modseq = $3"
			     "  WHERE account_id = $1 AND id = $2)"
			     " SELECT count(*) FROM u", &p);
	}
	bu_buf_deinit(&upd_uids);
	bu_buf_deinit(&upd_flags);
	bu_buf_deinit(&upd_kw);
	bu_buf_deinit(&new_kw);
	bu_buf_deinit(&seen_add);
	bu_buf_deinit(&seen_del);
	if (n_upd == 0) {
		/* nothing to change: no modseq spent */
		bu_db_rollback(db);
		if (rows == 0) {
			ret = ms_collection_exists(db, owner_id, collection_id);
			if (ret <= 0)
				return ret < 0 ? MS_ERR : MS_NOTFOUND;
		}
		return 0;
	}
	if (r == NULL)
		goto db_error;
	PQclear(r);
	if (changelog_notify(db, owner_id, collection_id) < 0 || bu_db_commit(db) < 0)
		goto db_error;
	return (int)res_r->n_changed;

db_error:
	bu_db_rollback(db);
	res_r->n_changed = 0;
	res_r->n_modified = 0;
	return MS_ERR;
}

/* ---- copy / move -------------------------------------------------------- */

int ms_copy(struct bu_db *db, struct bu_arena *a, int64_t viewer,
	    int64_t src_owner, int64_t src_coll, const uint32_t *uids, size_t n,
	    int64_t dst_owner, int64_t dst_coll, bool move,
	    uint32_t **src_uids_r, uint32_t **dst_uids_r, size_t *n_r,
	    uint32_t *dst_uidvalidity_r)
{
	struct ms_params p;
	struct bu_buf sql;
	uint32_t src_rights, dst_rights, mask, first_uid = 0, uidvalidity = 0;
	uint32_t *src_uids, *dst_uids, *seen;
	bool same_account = src_owner == dst_owner, kw_ok, dst_is_owner = viewer == dst_owner;
	int64_t dst_modseq, src_modseq, bytes = 0;
	size_t found, n_seen = 0;
	PGresult *r;
	int ret;

	*src_uids_r = NULL;
	*dst_uids_r = NULL;
	*n_r = 0;
	if (ms_rights(db, viewer, src_owner, src_coll, &src_rights) < 0 ||
	    ms_rights(db, viewer, dst_owner, dst_coll, &dst_rights) < 0)
		return MS_ERR;
	if (!(src_rights & ACL_READ) || !(dst_rights & ACL_INSERT))
		return MS_NOPERM;
	if (move && (src_rights & (ACL_DELETE_MSG | ACL_EXPUNGE)) !=
	    (ACL_DELETE_MSG | ACL_EXPUNGE))
		return MS_NOPERM;
	if (dst_coll <= 0)
		return MS_NOTFOUND;
	/* RFC 4314 4: flags the viewer may not set in the target are dropped;
	 * \Seen of a viewer who is not the target's owner is a mail_seen row */
	mask = ms_flag_mask(dst_rights);
	kw_ok = (dst_rights & ACL_WRITE) != 0;
	if (n == 0)
		return 0;

	if (bu_db_begin(db) < 0)
		return MS_ERR;
	/* account locks in id order, so two moves in opposite directions
	 * cannot deadlock */
	if (move && !same_account && src_owner < dst_owner) {
		src_modseq = changelog_next(db, src_owner);
		dst_modseq = src_modseq < 0 ? -1 : changelog_next(db, dst_owner);
	} else {
		dst_modseq = changelog_next(db, dst_owner);
		src_modseq = dst_modseq;
		if (move && !same_account && dst_modseq >= 0)
			src_modseq = changelog_next(db, src_owner);
	}
	if (dst_modseq < 0 || src_modseq < 0)
		goto db_error;

	/* the source messages; from another account whose lock we do not
	 * hold, row-locked against a concurrent expunge */
	ms_params_init(&p, a);
	ms_param_i64(&p, src_owner);
	ms_param_i64(&p, src_coll);
	ms_param_uids(&p, uids, n);
	bu_buf_init(&sql, 0);
	if (viewer == src_owner) {
		bu_buf_append_str(&sql, "SELECT m.uid, m.size, m.flags & 1");
	} else {
		bu_buf_printf(&sql, "SELECT m.uid, m.size, EXISTS (SELECT 1 FROM mail_seen s"
			      "  WHERE s.account_id = m.account_id AND s.collection_id = m.collection_id"
			      "  AND s.uid = m.uid AND s.user_id = $%d)::int", ms_param_i64(&p, viewer));
	}
	bu_buf_append_str(&sql, " FROM mail_messages m WHERE m.account_id = $1"
			  " AND m.collection_id = $2 AND m.uid = ANY ($3::bigint[]) ORDER BY m.uid");
	if (!same_account && !move)
		bu_buf_append_str(&sql, " FOR SHARE OF m");
	r = ms_query(db, bu_buf_cstr(&sql), &p);
	bu_buf_deinit(&sql);
	if (r == NULL)
		goto db_error;
	found = (size_t)PQntuples(r);
	if (found == 0) {
		PQclear(r);
		bu_db_rollback(db);
		ret = ms_collection_exists(db, src_owner, src_coll);
		return ret < 0 ? MS_ERR : ret == 0 ? MS_NOTFOUND : 0;
	}
	src_uids = bu_arena_alloc(a, bu_size_mul(found, sizeof(uint32_t)));
	dst_uids = bu_arena_alloc(a, bu_size_mul(found, sizeof(uint32_t)));
	seen = bu_arena_alloc(a, bu_size_mul(found, sizeof(uint32_t)));
	for (size_t i = 0; i < found; i++) {
		src_uids[i] = (uint32_t)ms_val_i64(r, (int)i, 0);
		bytes += ms_val_i64(r, (int)i, 1);
	}
	ret = ms_reserve_uids(db, a, dst_owner, dst_coll, found, bytes, dst_modseq,
			      !(move && same_account), &first_uid, &uidvalidity);
	if (ret < 0) {
		PQclear(r);
		bu_db_rollback(db);
		return ret;
	}
	for (size_t i = 0; i < found; i++) {
		dst_uids[i] = first_uid + (uint32_t)i;
		if (!dst_is_owner && (mask & MF_SEEN) && ms_val_i64(r, (int)i, 2) != 0)
			seen[n_seen++] = dst_uids[i];
	}
	PQclear(r);

	/* the rows themselves never pass through here: INSERT ... SELECT, the
	 * blob shared (or copied once into another account) */
	ms_params_init(&p, a);
	ms_param_i64(&p, src_owner);                  /* $1 */
	ms_param_i64(&p, src_coll);                   /* $2 */
	ms_param_uids(&p, src_uids, found);           /* $3 */
	ms_param_i64(&p, viewer);                     /* $4 */
	ms_param_i64(&p, dst_owner);                  /* $5 */
	ms_param_i64(&p, dst_coll);                      /* $6 */
	ms_param_i64(&p, first_uid);                  /* $7 */
	ms_param_i64(&p, dst_modseq);                 /* $8 */
	ms_param_i64(&p, mask & (dst_is_owner ? MS_STORED_FLAGS :
				 MS_STORED_FLAGS & ~(uint32_t)MF_SEEN)); /* $9 */
	ms_param(&p, kw_ok ? "t" : "f");              /* $10 */
	ms_param_i64(&p, (int64_t)time(NULL));        /* $11 */
	ms_param(&p, viewer == src_owner ? "t" : "f"); /* $12 */
	r = ms_query(db,
		     "WITH src AS (SELECT m.*, row_number() OVER (ORDER BY m.uid) AS rn,"
		     "   CASE WHEN $12::bool THEN m.flags & 1 ELSE"
		     "    (EXISTS (SELECT 1 FROM mail_seen s WHERE s.account_id = m.account_id"
		     "     AND s.collection_id = m.collection_id AND s.uid = m.uid"
		     "     AND s.user_id = $4))::int END AS vseen"
		     "  FROM mail_messages m WHERE m.account_id = $1 AND m.collection_id = $2"
		     "  AND m.uid = ANY ($3::bigint[])),"
		     " b AS (INSERT INTO mail_blobs (account_id, sha256, size, data,"
		     "  header_text, body_text)"
		     "  SELECT $5::bigint, x.sha256, x.size, x.data, x.header_text, x.body_text"
		     "  FROM mail_blobs x"
		     "  WHERE $5::bigint <> $1::bigint AND x.account_id = $1"
		     "  AND x.sha256 IN (SELECT blob FROM src) ON CONFLICT DO NOTHING),"
		     " k AS (INSERT INTO mail_keywords (account_id, collection_id, keyword)"
		     "  SELECT DISTINCT $5::bigint, $6::bigint, unnest(keywords) FROM src WHERE $10::bool"
		     "  ON CONFLICT DO NOTHING),"
		     " ins AS (INSERT INTO mail_messages (account_id, collection_id, uid, modseq,"
		     "  flags, keywords, internaldate, savedate, size, blob, hdr_len, structure,"
		     "  subject, base_subject, from_, from_sort, from_display, to_, to_sort,"
		     "  to_display, cc, cc_sort, bcc, sent_date, message_id, in_reply_to,"
		     "  references_, preview, emailid, threadid)"
		     "  SELECT $5::bigint, $6::bigint, $7::bigint + rn - 1, $8::bigint,"
		     "  ((flags & ~1) | vseen) & $9::int,"
		     "  CASE WHEN $10::bool THEN keywords ELSE '{}' END, internaldate, $11::bigint, size,"
		     "  blob, hdr_len, structure, subject, base_subject, from_, from_sort,"
		     "  from_display, to_, to_sort, to_display, cc, cc_sort, bcc, sent_date,"
		     "  message_id, in_reply_to, references_, preview,"
		     "  emailid, threadid FROM src RETURNING 1)"
		     " SELECT count(*) FROM ins", &p);
	if (r == NULL)
		goto db_error;
	if (ms_val_i64(r, 0, 0) != (int64_t)found) {
		bu_error("event=mailstore.copy_mismatch expected=%zu got=%s", found,
			 PQgetvalue(r, 0, 0));
		PQclear(r);
		goto db_error;
	}
	PQclear(r);
	if (n_seen > 0) {
		ms_params_init(&p, a);
		ms_param_i64(&p, dst_owner);
		ms_param_i64(&p, dst_coll);
		ms_param_uids(&p, seen, n_seen);
		ms_param_i64(&p, viewer);
		r = ms_query(db, "INSERT INTO mail_seen (account_id, collection_id, uid, user_id)"
			     " SELECT $1, $2, unnest($3::bigint[]), $4", &p);
		if (r == NULL)
			goto db_error;
		PQclear(r);
	}
	if (move) {
		ms_params_init(&p, a);
		ms_param_i64(&p, src_owner);
		ms_param_i64(&p, src_coll);
		ms_param_uids(&p, src_uids, found);
		ms_param_i64(&p, src_modseq);
		r = ms_query(db,
			     "WITH d AS (DELETE FROM mail_messages WHERE account_id = $1"
			     "  AND collection_id = $2 AND uid = ANY ($3::bigint[]) RETURNING uid),"
			     " t AS (INSERT INTO tombstones (account_id, collection_id, modseq, kind,"
			     "  item_uid) SELECT $1, $2, $4, 'message', uid FROM d),"
			     " c AS (UPDATE collections SET modseq = $4"
			     "  WHERE account_id = $1 AND id = $2)"
			     " SELECT count(*) FROM d", &p);
		if (r == NULL)
			goto db_error;
		PQclear(r);
		if ((src_owner != dst_owner || src_coll != dst_coll) &&
		    changelog_notify(db, src_owner, src_coll) < 0)
			goto db_error;
	}
	if (changelog_notify(db, dst_owner, dst_coll) < 0 || bu_db_commit(db) < 0)
		goto db_error;
	*src_uids_r = src_uids;
	*dst_uids_r = dst_uids;
	*n_r = found;
	if (dst_uidvalidity_r != NULL)
		*dst_uidvalidity_r = uidvalidity;
	return (int)found;

db_error:
	bu_db_rollback(db);
	return MS_ERR;
}

/* ---- expunge ------------------------------------------------------------ */

int ms_expunge(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	       int64_t collection_id, const uint32_t *uids, size_t n,
	       uint32_t **expunged_r, size_t *n_r)
{
	struct ms_params p;
	uint32_t rights, *list;
	int64_t modseq;
	PGresult *r;
	int rows, ret;

	*expunged_r = NULL;
	*n_r = 0;
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	if (!(rights & ACL_EXPUNGE))
		return MS_NOPERM;
	if (uids != NULL && n == 0)
		return 0;
	if (bu_db_begin(db) < 0)
		return MS_ERR;
	modseq = changelog_next(db, owner_id);
	if (modseq < 0)
		goto db_error;
	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	ms_param_i64(&p, modseq);
	if (uids != NULL)
		ms_param_uids(&p, uids, n);
	else
		ms_param(&p, NULL);
	r = ms_query(db,
		     "WITH d AS (DELETE FROM mail_messages WHERE account_id = $1"
		     "  AND collection_id = $2 AND (flags & 8) <> 0"
		     "  AND ($4::bigint[] IS NULL OR uid = ANY ($4::bigint[])) RETURNING uid),"
		     " t AS (INSERT INTO tombstones (account_id, collection_id, modseq, kind, item_uid)"
		     "  SELECT $1, $2, $3, 'message', uid FROM d),"
		     " c AS (UPDATE collections SET modseq = $3 WHERE account_id = $1 AND id = $2"
		     "  AND EXISTS (SELECT 1 FROM d))"
		     " SELECT uid FROM d ORDER BY uid", &p);
	if (r == NULL)
		goto db_error;
	rows = PQntuples(r);
	if (rows == 0) {
		PQclear(r);
		bu_db_rollback(db);
		ret = ms_collection_exists(db, owner_id, collection_id);
		return ret < 0 ? MS_ERR : ret == 0 ? MS_NOTFOUND : 0;
	}
	list = bu_arena_alloc(a, bu_size_mul((size_t)rows, sizeof(uint32_t)));
	for (int i = 0; i < rows; i++)
		list[i] = (uint32_t)ms_val_i64(r, i, 0);
	PQclear(r);
	if (changelog_notify(db, owner_id, collection_id) < 0 || bu_db_commit(db) < 0)
		goto db_error;
	*expunged_r = list;
	*n_r = (size_t)rows;
	return rows;

db_error:
	bu_db_rollback(db);
	return MS_ERR;
}

/* ---- quota -------------------------------------------------------------- */

int ms_quota_get(struct bu_db *db, int64_t account_id, struct ms_quota *q_r)
{
	struct bu_arena *a = bu_arena_create(0);
	struct ms_params p;
	PGresult *r;
	int ret = 0;

	memset(q_r, 0, sizeof(*q_r));
	ms_params_init(&p, a);
	ms_param_i64(&p, account_id);
	r = ms_query(db, "SELECT used_storage, quota_storage, used_messages, quota_messages"
		     " FROM accounts WHERE id = $1", &p);
	if (r == NULL) {
		ret = MS_ERR;
	} else if (PQntuples(r) == 0) {
		ret = MS_NOTFOUND;
	} else {
		q_r->storage_used = ms_val_i64(r, 0, 0);
		q_r->storage_limit = ms_val_i64(r, 0, 1);
		q_r->messages_used = ms_val_i64(r, 0, 2);
		q_r->messages_limit = ms_val_i64(r, 0, 3);
	}
	PQclear(r);
	bu_arena_destroy(&a);
	return ret;
}

/* ---- RENAME INBOX ------------------------------------------------------- */

/*
 * RFC 3501 6.3.5 / RFC 9051 6.3.6: renaming INBOX moves all its messages
 * to a new folder of that name and leaves INBOX (empty) in place.
 * collection_rename() leaves this to the mail store. The new folder is
 * created first (collection_create: name checks, superiors); the move is
 * one transaction: the messages keep their UIDs (the new folder has a new
 * UIDVALIDITY) and their per-user \Seen, INBOX gets tombstones for them.
 * Owner only. 0, MS_EXISTS (name taken or invalid: *error_r), MS_ERR.
 */
int ms_rename_inbox(struct bu_db *db, int64_t account_id, const char *new_name,
		    int64_t *new_id_r, const char **error_r)
{
	struct bu_arena *a;
	struct collection *inbox = NULL;
	struct ms_params p;
	int64_t new_id = 0, modseq;
	PGresult *r;
	int ret;

	*error_r = NULL;
	a = bu_arena_create(0);
	ret = collection_get_by_name(db, a, account_id, COLL_MAIL, "INBOX", &inbox);
	if (ret <= 0) {
		bu_arena_destroy(&a);
		return ret < 0 ? MS_ERR : MS_NOTFOUND;
	}
	ret = collection_create(db, account_id, COLL_MAIL, new_name, NULL, &new_id, error_r);
	if (ret <= 0) {
		bu_arena_destroy(&a);
		return ret < 0 ? MS_ERR : MS_EXISTS;
	}
	if (bu_db_begin(db) < 0)
		goto fail;
	modseq = changelog_next(db, account_id);
	if (modseq < 0)
		goto fail_rollback;
	ms_params_init(&p, a);
	ms_param_i64(&p, account_id);
	ms_param_i64(&p, inbox->id);
	ms_param_i64(&p, new_id);
	ms_param_i64(&p, modseq);
	r = ms_query(db,
		     "WITH mv AS (UPDATE mail_messages SET collection_id = $3, modseq = $4"
		     "  WHERE account_id = $1 AND collection_id = $2 RETURNING uid),"
		     " t AS (INSERT INTO tombstones (account_id, collection_id, modseq, kind, item_uid)"
		     "  SELECT $1, $2, $4, 'message', uid FROM mv),"
		     " k AS (INSERT INTO mail_keywords (account_id, collection_id, keyword)"
		     "  SELECT $1, $3, keyword FROM mail_keywords"
		     "  WHERE account_id = $1 AND collection_id = $2 ON CONFLICT DO NOTHING),"
		     " n AS (UPDATE collections SET modseq = $4, uidnext = greatest(uidnext,"
		     "  (SELECT uidnext FROM collections WHERE account_id = $1 AND id = $2))"
		     "  WHERE account_id = $1 AND id = $3),"
		     " i AS (UPDATE collections SET modseq = $4 WHERE account_id = $1 AND id = $2)"
		     " SELECT count(*) FROM mv", &p);
	if (r == NULL)
		goto fail_rollback;
	PQclear(r);
	if (changelog_notify(db, account_id, inbox->id) < 0 ||
	    changelog_notify(db, account_id, new_id) < 0 || bu_db_commit(db) < 0)
		goto fail_rollback;
	if (new_id_r != NULL)
		*new_id_r = new_id;
	bu_arena_destroy(&a);
	return 0;

fail_rollback:
	bu_db_rollback(db);
fail:
	/* the new folder stays, empty; the client may retry the move */
	*error_r = "database error";
	bu_arena_destroy(&a);
	return MS_ERR;
}

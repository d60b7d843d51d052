/*
 * mail_search.c - SEARCH and SORT over a folder (RFC 3501 6.4.4, RFC 9051
 * 6.4.4, RFC 5256 SORT, RFC 5957 DISPLAYFROM/DISPLAYTO, RFC 7162 MODSEQ,
 * RFC 5032 OLDER/YOUNGER, RFC 8514 SAVEDATE, RFC 8474 EMAILID/THREADID).
 *
 * A search tree becomes one parameterised WHERE clause: the SQL text is
 * built from constant pieces and $n placeholders only, every value goes in
 * as a parameter. Substring criteria are ILIKE '%needle%' with % _ \
 * escaped. TEXT and BODY match the search text kept with the content
 * (mail_blobs.header_text/body_text, trigram-indexed), reached through the
 * message's blob. HEADER on a field that is not kept as a column (anything but
 * Subject, From, To, Cc, Bcc) reads the raw header blocks of the folder
 * once and matches them here, which is fine for such rare searches.
 *
 * Dates: the caller gives the start of an IMAP day as unix seconds; BEFORE
 * is "< day", ON is "[day, day + 86400)", SINCE is ">= day". Sent dates
 * fall back to the internal date when the Date: header is missing.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "groupware/acl.h"
#include "groupware/mailstore_private.h"
#include "groupware/mime.h"
#include "server/core/db.h"
#include "server/core/log.h"

static int ms_viewer_param(struct ms_search_ctx *ctx, struct ms_params *p)
{
	if (ctx->p_viewer == 0)
		ctx->p_viewer = ms_param_i64(p, ctx->viewer);
	return ctx->p_viewer;
}

static void ms_search_flags(struct ms_search_ctx *ctx, struct bu_buf *sql,
			    struct ms_params *p)
{
	ms_flags_expr(sql, ctx->is_owner, ctx->is_owner ? 0 : ms_viewer_param(ctx, p));
}

/* ---- HEADER on fields that are not stored ----------------------------- */

/* A header block whose search text may have been cut at
 * MS_HEADER_TEXT_MAX: decoding and UTF-8 repair make the text at most about
 * three times the raw block (an invalid byte becomes U+FFFD), so blocks of
 * a quarter of that limit or longer are always read. */
#define MS_HDR_PREFILTER_MAX ((int64_t)(MS_HEADER_TEXT_MAX / 4))

/* Can mail_blobs.header_text (the root's decoded header values, folds
 * removed as in ms_header_match) rule a message out for this needle? Only
 * for printable ASCII without spaces, so that unfolding, UTF-8 repair and
 * encoded-word decoding cannot make the two texts differ around a match,
 * and of three characters or more, the least the trigram index can use. */
static bool ms_header_prefilter_ok(const char *needle)
{
	size_t n = 0;

	for (; *needle != '\0'; needle++, n++) {
		if ((unsigned char)*needle <= 0x20 || (unsigned char)*needle >= 0x7f)
			return false;
	}
	return n >= 3;
}

/* Root header blocks of the folder (uid, block; binary), all of them or,
 * with a needle, those whose search text contains it (plus any long block,
 * see MS_HDR_PREFILTER_MAX). The unfiltered set is kept for later HEADER
 * criteria of the same search. */
static PGresult *ms_load_headers(struct ms_search_ctx *ctx, const char *needle)
{
	struct ms_params p;
	PGresult *r;

	if (needle == NULL && ctx->hdrs_loaded)
		return ctx->hdrs;
	ms_params_init(&p, ctx->a);
	ms_param_i64(&p, ctx->owner_id);
	ms_param_i64(&p, ctx->collection_id);
	if (needle == NULL) {
		r = ms_query_binres(ctx->db,
				    "SELECT m.uid, substring(b.data from 1 for m.hdr_len)"
				    " FROM mail_messages m JOIN mail_blobs b"
				    " ON b.account_id = m.account_id AND b.sha256 = m.blob"
				    " WHERE m.account_id = $1 AND m.collection_id = $2", &p);
	} else {
		ms_param(&p, ms_like_pattern(ctx->a, needle));
		ms_param_i64(&p, MS_HDR_PREFILTER_MAX);
		/* the trigram index finds the candidates; the long blocks come
		 * from the covering primary key (schema 003) */
		r = ms_query_binres(ctx->db,
				    "SELECT m.uid, substring(b.data from 1 for m.hdr_len)"
				    " FROM mail_blobs b JOIN mail_messages m"
				    " ON m.account_id = b.account_id AND m.blob = b.sha256"
				    " WHERE b.account_id = $1 AND m.collection_id = $2"
				    " AND b.header_text ILIKE $3"
				    " UNION ALL"
				    " SELECT m.uid, substring(b.data from 1 for m.hdr_len)"
				    " FROM mail_messages m JOIN mail_blobs b"
				    " ON b.account_id = m.account_id AND b.sha256 = m.blob"
				    " WHERE m.account_id = $1 AND m.collection_id = $2"
				    " AND m.hdr_len >= $4 AND NOT b.header_text ILIKE $3", &p);
	}
	if (r == NULL)
		return NULL;
	ms_arena_own_result(ctx->a, r);
	if (needle == NULL) {
		ctx->hdrs = r;
		ctx->hdrs_loaded = true;
	}
	return r;
}

/* case-insensitive (ASCII) substring */
static bool ms_contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0)
		return true;
	for (; *hay != '\0'; hay++) {
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	}
	return false;
}

/* Does a header block have field `name` (whose decoded value contains
 * needle; "" = any value)? */
static bool ms_header_match(struct bu_arena *a, const uint8_t *h, size_t len,
			    const char *name, const char *needle)
{
	size_t nlen = strlen(name), i = 0;

	while (i < len) {
		size_t start = i, end = i, colon;

		/* the field with its continuation lines */
		for (;;) {
			while (end < len && h[end] != '\n')
				end++;
			if (end < len)
				end++;
			if (end < len && (h[end] == ' ' || h[end] == '\t'))
				continue;
			break;
		}
		i = end;
		if (h[start] == '\r' || h[start] == '\n')
			break;            /* the blank line: end of the header */
		colon = start;
		while (colon < end && h[colon] != ':')
			colon++;
		if (colon == end)
			continue;
		/* "Name :" (obsolete syntax) counts too */
		size_t nend = colon;

		while (nend > start && (h[nend - 1] == ' ' || h[nend - 1] == '\t'))
			nend--;
		if (nend - start != nlen || strncasecmp((const char *)h + start, name, nlen) != 0)
			continue;
		if (*needle == '\0')
			return true;

		/* unfold, decode encoded words, compare */
		struct bu_buf v;
		char *val, *dec;
		bool hit;

		bu_buf_init(&v, 0);
		for (size_t k = colon + 1; k < end; k++) {
			if (h[k] != '\r' && h[k] != '\n')
				bu_buf_append_byte(&v, h[k]);
		}
		val = ms_utf8_clean(a, (const char *)v.data, v.len, 0);
		bu_buf_deinit(&v);
		dec = mime_decode_words(a, val);
		hit = ms_contains(dec != NULL ? dec : val, needle);
		if (hit)
			return true;
	}
	return false;
}

/* uid = ANY($n) for the messages whose header matches */
static int ms_header_fallback(struct ms_search_ctx *ctx, const char *name,
			      const char *needle, struct bu_buf *sql, struct ms_params *p)
{
	PGresult *hdrs;
	uint32_t *uids;
	size_t n = 0;
	int rows;

	hdrs = ms_load_headers(ctx, ms_header_prefilter_ok(needle) ? needle : NULL);
	if (hdrs == NULL)
		return MS_ERR;
	rows = PQntuples(hdrs);
	uids = bu_arena_alloc(ctx->a, bu_size_mul((size_t)rows + 1, sizeof(uint32_t)));
	for (int i = 0; i < rows; i++) {
		const uint8_t *h = (const uint8_t *)PQgetvalue(hdrs, i, 1);
		size_t len = (size_t)PQgetlength(hdrs, i, 1);

		if (ms_header_match(ctx->a, h, len, name, needle))
			uids[n++] = (uint32_t)ms_bin_i64(hdrs, i, 0);
	}
	bu_buf_printf(sql, "m.uid = ANY ($%d::bigint[])", ms_param_uids(p, uids, n));
	return 0;
}

/* ---- the tree ---------------------------------------------------------- */

static void ms_like(struct ms_search_ctx *ctx, struct bu_buf *sql, struct ms_params *p,
		    const char *column, const char *needle)
{
	int n = ms_param(p, ms_like_pattern(ctx->a, needle != NULL ? needle : ""));

	bu_buf_printf(sql, "coalesce(%s, '') ILIKE $%d", column, n);
}

/* date criteria: BEFORE / ON / SINCE on an expression */
static void ms_day(struct bu_buf *sql, struct ms_params *p, const char *expr, int which,
		   int64_t day)
{
	if (which == 0) {
		bu_buf_printf(sql, "%s < $%d", expr, ms_param_i64(p, day));
	} else if (which == 1) {
		int a = ms_param_i64(p, day);
		int b = ms_param_i64(p, day + 86400);

		bu_buf_printf(sql, "(%s >= $%d AND %s < $%d)", expr, a, expr, b);
	} else {
		bu_buf_printf(sql, "%s >= $%d", expr, ms_param_i64(p, day));
	}
}

static const char *ms_header_column(const char *name)
{
	static const char *const map[][2] = {
		{ "subject", "m.subject" }, { "from", "m.from_" }, { "to", "m.to_" },
		{ "cc", "m.cc" }, { "bcc", "m.bcc" },
	};

	for (size_t i = 0; i < BU_N_ELEMENTS(map); i++) {
		if (strcasecmp(name, map[i][0]) == 0)
			return map[i][1];
	}
	return NULL;
}

static int ms_node(struct ms_search_ctx *ctx, const struct ms_search *q,
		   struct bu_buf *sql, struct ms_params *p, int depth)
{
	int ret = 0, n;

	if (depth > MS_SEARCH_DEPTH_MAX)
		return MS_ERR;
	switch (q->op) {
	case MSS_ALL:
	case MSS_SAVEDATESUPPORTED:
		bu_buf_append_str(sql, "TRUE");
		break;
	case MSS_AND:
	case MSS_OR:
		if (q->n_kids == 0) {
			bu_buf_append_str(sql, q->op == MSS_AND ? "TRUE" : "FALSE");
			break;
		}
		bu_buf_append_byte(sql, '(');
		for (size_t i = 0; i < q->n_kids && ret == 0; i++) {
			if (i > 0)
				bu_buf_append_str(sql, q->op == MSS_AND ? " AND " : " OR ");
			ret = ms_node(ctx, &q->kids[i], sql, p, depth + 1);
		}
		bu_buf_append_byte(sql, ')');
		break;
	case MSS_NOT:
		if (q->n_kids < 1)
			return MS_ERR;
		bu_buf_append_str(sql, "NOT (");
		ret = ms_node(ctx, &q->kids[0], sql, p, depth + 1);
		bu_buf_append_byte(sql, ')');
		break;
	case MSS_UIDSET:
		if (q->n_uids == 0) {
			bu_buf_append_str(sql, "FALSE");
			break;
		}
		bu_buf_printf(sql, "m.uid = ANY ($%d::bigint[])",
			      ms_param_uids(p, q->uids, q->n_uids));
		break;
	case MSS_FLAG:
	case MSS_NOFLAG: {
		uint32_t mask = (uint32_t)q->num & MS_STORED_FLAGS;
		bool recent = ((uint32_t)q->num & MF_RECENT) != 0;

		/* \Recent is never stored: nothing has it */
		if (q->op == MSS_FLAG && recent) {
			bu_buf_append_str(sql, "FALSE");
			break;
		}
		if (mask == 0) {
			bu_buf_append_str(sql, "TRUE");
			break;
		}
		n = ms_param_i64(p, mask);
		bu_buf_append_str(sql, "((");
		ms_search_flags(ctx, sql, p);
		if (q->op == MSS_FLAG)
			bu_buf_printf(sql, ") & $%d) = $%d", n, n);
		else
			bu_buf_printf(sql, ") & $%d) = 0", n);
		break;
	}
	case MSS_KEYWORD:
	case MSS_UNKEYWORD:
		n = ms_param(p, q->str != NULL ? q->str : "");
		bu_buf_printf(sql, "%sEXISTS (SELECT 1 FROM unnest(m.keywords) AS k"
			      " WHERE lower(k) = lower($%d))",
			      q->op == MSS_UNKEYWORD ? "NOT " : "", n);
		break;
	case MSS_BEFORE:
	case MSS_ON:
	case MSS_SINCE:
		ms_day(sql, p, "m.internaldate", (int)(q->op - MSS_BEFORE), q->num);
		break;
	case MSS_SENTBEFORE:
	case MSS_SENTON:
	case MSS_SENTSINCE:
		ms_day(sql, p, "coalesce(m.sent_date, m.internaldate)",
		       (int)(q->op - MSS_SENTBEFORE), q->num);
		break;
	case MSS_SAVEDBEFORE:
	case MSS_SAVEDON:
	case MSS_SAVEDSINCE:
		ms_day(sql, p, "coalesce(m.savedate, m.internaldate)",
		       (int)(q->op - MSS_SAVEDBEFORE), q->num);
		break;
	case MSS_OLDER:
	case MSS_YOUNGER:
		n = ms_param_i64(p, (int64_t)time(NULL) - q->num);
		bu_buf_printf(sql, q->op == MSS_OLDER ? "m.internaldate < $%d" :
			      "m.internaldate >= $%d", n);
		break;
	case MSS_LARGER:
		bu_buf_printf(sql, "m.size > $%d", ms_param_i64(p, q->num));
		break;
	case MSS_SMALLER:
		bu_buf_printf(sql, "m.size < $%d", ms_param_i64(p, q->num));
		break;
	case MSS_MODSEQ:
		bu_buf_printf(sql, "m.modseq >= $%d", ms_param_i64(p, q->num));
		break;
	case MSS_HEADER: {
		const char *name = q->str != NULL ? q->str : "";
		const char *needle = q->str2 != NULL ? q->str2 : "";
		const char *col = ms_header_column(name);

		if (col != NULL && *needle != '\0')
			ms_like(ctx, sql, p, col, needle);
		else
			ret = ms_header_fallback(ctx, name, needle, sql, p);
		break;
	}
	case MSS_FROM:
		ms_like(ctx, sql, p, "m.from_", q->str);
		break;
	case MSS_TO:
		ms_like(ctx, sql, p, "m.to_", q->str);
		break;
	case MSS_CC:
		ms_like(ctx, sql, p, "m.cc", q->str);
		break;
	case MSS_BCC:
		ms_like(ctx, sql, p, "m.bcc", q->str);
		break;
	case MSS_SUBJECT:
		ms_like(ctx, sql, p, "m.subject", q->str);
		break;
	case MSS_BODY:
		n = ms_param(p, ms_like_pattern(ctx->a, q->str != NULL ? q->str : ""));
		bu_buf_printf(sql, "EXISTS (SELECT 1 FROM mail_blobs b WHERE b.account_id"
			      " = m.account_id AND b.sha256 = m.blob AND b.body_text ILIKE $%d)", n);
		break;
	case MSS_TEXT:
		n = ms_param(p, ms_like_pattern(ctx->a, q->str != NULL ? q->str : ""));
		bu_buf_printf(sql, "EXISTS (SELECT 1 FROM mail_blobs b WHERE b.account_id"
			      " = m.account_id AND b.sha256 = m.blob"
			      " AND (b.header_text ILIKE $%d OR b.body_text ILIKE $%d))", n, n);
		break;
	case MSS_EMAILID:
		bu_buf_printf(sql, "m.emailid = $%d", ms_param(p, q->str != NULL ? q->str : ""));
		break;
	case MSS_THREADID:
		bu_buf_printf(sql, "m.threadid = $%d", ms_param(p, q->str != NULL ? q->str : ""));
		break;
	default:
		return MS_ERR;
	}
	return ret;
}

int ms_search_where(struct ms_search_ctx *ctx, const struct ms_search *q,
		    struct bu_buf *sql, struct ms_params *p)
{
	if (q == NULL) {
		bu_buf_append_str(sql, "TRUE");
		return 0;
	}
	return ms_node(ctx, q, sql, p, 0);
}

/* ---- SEARCH / SORT ------------------------------------------------------ */

/* Characters of the stored sort keys m.subject_key and m.from_key
 * (schema/003_search.sql). */
#define MS_SORT_KEY_CHARS 200

/* The ORDER BY expression of a key. exact: the whole lower-cased value
 * instead of the stored prefix (see ms_sort_prefix_ties). */
static const char *ms_sort_expr(enum ms_sort_key key, bool exact)
{
	switch (key) {
	case MSK_ARRIVAL:
		return "m.internaldate";
	case MSK_CC:
		return "lower(m.cc_sort) COLLATE \"C\"";
	case MSK_DATE:
		return "coalesce(m.sent_date, m.internaldate)";
	case MSK_FROM:
		return exact ? "lower(m.from_sort) COLLATE \"C\"" : "m.from_key";
	case MSK_SIZE:
		return "m.size";
	case MSK_SUBJECT:
		return exact ? "lower(m.base_subject) COLLATE \"C\"" : "m.subject_key";
	case MSK_TO:
		return "lower(m.to_sort) COLLATE \"C\"";
	case MSK_DISPLAYFROM:
		return "lower(m.from_display) COLLATE \"C\"";
	case MSK_DISPLAYTO:
		return "lower(m.to_display) COLLATE \"C\"";
	}
	return NULL;
}

static bool ms_sort_is_prefix(enum ms_sort_key key)
{
	return key == MSK_SUBJECT || key == MSK_FROM;
}

static int ms_cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* characters of UTF-8 text, up to max */
static size_t ms_utf8_chars(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s != '\0' && n < max; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* A stored key of MS_SORT_KEY_CHARS characters may be cut, and two such
 * keys with the same prefix may order differently as whole values: does
 * column col (text, binary or not; NULL = short key) hold a tie? */
static bool ms_sort_prefix_ties(struct bu_arena *a, const PGresult *r, int col)
{
	int rows = PQntuples(r), n = 0;
	char **v;

	for (int i = 0; i < rows; i++)
		n += !PQgetisnull(r, i, col) && PQgetlength(r, i, col) >= MS_SORT_KEY_CHARS;
	if (n < 2)
		return false;
	v = bu_arena_alloc(a, bu_size_mul((size_t)n, sizeof(*v)));
	n = 0;
	for (int i = 0; i < rows; i++) {
		const char *k;

		if (PQgetisnull(r, i, col) || PQgetlength(r, i, col) < MS_SORT_KEY_CHARS)
			continue;
		k = PQgetvalue(r, i, col);
		if (ms_utf8_chars(k, MS_SORT_KEY_CHARS) >= MS_SORT_KEY_CHARS)
			v[n++] = (char *)k;
	}
	qsort(v, (size_t)n, sizeof(*v), ms_cstr_cmp);
	for (int i = 1; i < n; i++) {
		if (strcmp(v[i - 1], v[i]) == 0)
			return true;
	}
	return false;
}

/* " FROM" the folder's messages ($1, $2) " WHERE" the condition in where */
static void ms_sql_from_folder(struct bu_buf *sql, const char *where)
{
	bu_buf_append_str(sql, " FROM mail_messages m"
			  " WHERE m.account_id = $1 AND m.collection_id = $2 AND ");
	bu_buf_append_str(sql, where);
}

/* SELECT for the condition in where and the sort keys; with !exact, one
 * more column per prefix key (ms_sort_prefix_ties). */
static int ms_search_sql(struct bu_buf *sql, const char *where, const struct ms_sort *sort,
			 size_t n_sort, bool exact)
{
	bu_buf_append_str(sql, "SELECT m.uid");
	for (size_t i = 0; i < n_sort && !exact; i++) {
		if (ms_sort_is_prefix(sort[i].key))
			bu_buf_printf(sql, ", CASE WHEN octet_length(%s) >= %d THEN %s END",
				      ms_sort_expr(sort[i].key, false), MS_SORT_KEY_CHARS,
				      ms_sort_expr(sort[i].key, false));
	}
	ms_sql_from_folder(sql, where);
	bu_buf_append_str(sql, " ORDER BY ");
	for (size_t i = 0; i < n_sort; i++) {
		const char *e = ms_sort_expr(sort[i].key, exact);

		if (e == NULL)
			return MS_ERR;
		bu_buf_printf(sql, "%s%s, ", e, sort[i].reverse ? " DESC" : "");
	}
	/* RFC 5256: ties are broken by sequence number, i.e. UID ascending */
	bu_buf_append_str(sql, "m.uid");
	return 0;
}

/* binary int8 without the NULL check of ms_bin_i64 (uid is NOT NULL) */
static uint32_t ms_bin_uid(const PGresult *r, int row)
{
	const uint8_t *v = (const uint8_t *)PQgetvalue(r, row, 0);

	return (uint32_t)v[4] << 24 | (uint32_t)v[5] << 16 | (uint32_t)v[6] << 8 | v[7];
}

/* ---- sorting here ---------------------------------------------------------
 * Sorting 10,000 rows costs PostgreSQL more than reading them from the
 * covering index, so for the keys that index holds the rows come unsorted
 * and are sorted here, with the same order: numbers as signed integers,
 * text keys (the stored "C"-collated prefixes) bytewise, DESC for REVERSE
 * (none of these keys can be NULL), then UID ascending. */

#define MS_CSORT_MAX 4

struct ms_csort {
	size_t n;
	bool text[MS_CSORT_MAX], reverse[MS_CSORT_MAX];
};

struct ms_crow {
	const struct ms_csort *cs;
	uint32_t uid;
	union {
		int64_t i;
		const char *s;
	} k[MS_CSORT_MAX];
};

static const char *ms_csort_expr(enum ms_sort_key key)
{
	switch (key) {
	case MSK_ARRIVAL:
	case MSK_DATE:
	case MSK_SIZE:
	case MSK_SUBJECT:
	case MSK_FROM:
		return ms_sort_expr(key, false);
	default:
		return NULL;
	}
}

static int ms_crow_cmp(const void *pa, const void *pb)
{
	const struct ms_crow *a = *(const struct ms_crow *const *)pa;
	const struct ms_crow *b = *(const struct ms_crow *const *)pb;
	const struct ms_csort *cs = a->cs;

	for (size_t i = 0; i < cs->n; i++) {
		int c;

		if (cs->text[i])
			c = strcmp(a->k[i].s, b->k[i].s);
		else
			c = a->k[i].i < b->k[i].i ? -1 : a->k[i].i > b->k[i].i ? 1 : 0;
		if (c != 0)
			return cs->reverse[i] ? (c < 0 ? 1 : -1) : c;
	}
	return a->uid < b->uid ? -1 : a->uid > b->uid ? 1 : 0;
}

/* 1 sorted (*uids_r, *n_r), 0 not possible here (keys not held by the
 * index, or prefix ties: sort in SQL on the whole values), MS_ERR. */
static int ms_search_csort(struct bu_db *db, struct bu_arena *a, const char *where,
			   const struct ms_params *p, const struct ms_sort *sort, size_t n_sort,
			   uint32_t **uids_r, size_t *n_r)
{
	struct ms_csort *cs;
	struct ms_crow *rows, **order;
	struct bu_buf sql;
	PGresult *r;
	int n;

	if (n_sort == 0 || n_sort > MS_CSORT_MAX)
		return 0;
	for (size_t i = 0; i < n_sort; i++) {
		if (ms_csort_expr(sort[i].key) == NULL)
			return 0;
	}
	bu_buf_init(&sql, 0);
	bu_buf_append_str(&sql, "SELECT m.uid");
	for (size_t i = 0; i < n_sort; i++)
		bu_buf_printf(&sql, ", %s", ms_csort_expr(sort[i].key));
	ms_sql_from_folder(&sql, where);
	r = ms_query_binres(db, bu_buf_cstr(&sql), p);
	bu_buf_deinit(&sql);
	if (r == NULL)
		return MS_ERR;
	ms_arena_own_result(a, r);
	cs = bu_arena_alloc(a, sizeof(*cs));
	cs->n = n_sort;
	for (size_t i = 0; i < n_sort; i++) {
		cs->text[i] = ms_sort_is_prefix(sort[i].key);
		cs->reverse[i] = sort[i].reverse;
		if (cs->text[i] && ms_sort_prefix_ties(a, r, (int)i + 1))
			return 0;
	}
	n = PQntuples(r);
	rows = bu_arena_alloc(a, bu_size_mul((size_t)n + 1, sizeof(*rows)));
	order = bu_arena_alloc(a, bu_size_mul((size_t)n + 1, sizeof(*order)));
	for (int i = 0; i < n; i++) {
		struct ms_crow *w = &rows[i];

		w->cs = cs;
		w->uid = ms_bin_uid(r, i);
		for (size_t k = 0; k < n_sort; k++) {
			if (cs->text[k])
				w->k[k].s = PQgetvalue(r, i, (int)k + 1);
			else
				w->k[k].i = ms_bin_i64(r, i, (int)k + 1);
		}
		order[i] = w;
	}
	qsort(order, (size_t)n, sizeof(*order), ms_crow_cmp);
	*uids_r = bu_arena_alloc(a, bu_size_mul((size_t)n + 1, sizeof(uint32_t)));
	for (int i = 0; i < n; i++)
		(*uids_r)[i] = order[i]->uid;
	*n_r = (size_t)n;
	return 1;
}

static uint32_t ms_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A binary int8[] value (one dimension, no NULLs) into UIDs; -1 if it is
 * not that. */
static int ms_bin_uid_array(struct bu_arena *a, const PGresult *r, uint32_t **uids_r,
			    size_t *n_r)
{
	const uint8_t *v = (const uint8_t *)PQgetvalue(r, 0, 0);
	size_t len = (size_t)PQgetlength(r, 0, 0), n, i;
	uint32_t *uids;

	*uids_r = bu_arena_alloc(a, sizeof(uint32_t));
	*n_r = 0;
	if (PQgetisnull(r, 0, 0))
		return 0;           /* no rows: array_agg of nothing */
	if (len < 12)
		return -1;
	if (ms_be32(v) == 0)
		return 0;           /* an empty array */
	if (ms_be32(v) != 1 || ms_be32(v + 4) != 0 || len < 20)
		return -1;
	n = ms_be32(v + 12);
	if (len != 20 + n * 12)
		return -1;
	uids = bu_arena_alloc(a, bu_size_mul(n + 1, sizeof(uint32_t)));
	for (i = 0; i < n; i++) {
		const uint8_t *e = v + 20 + i * 12;

		if (ms_be32(e) != 8)
			return -1;
		uids[i] = ms_be32(e + 8);   /* low half of the int8 */
	}
	*uids_r = uids;
	*n_r = n;
	return 0;
}

static int ms_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* SEARCH without SORT: the matching UIDs in one array value rather than a
 * row each (10,000 rows cost PostgreSQL and libpq more than the scan). */
static int ms_search_plain(struct bu_db *db, struct bu_arena *a, const char *where,
			   const struct ms_params *p, uint32_t **uids_r, size_t *n_r)
{
	struct bu_buf sql;
	PGresult *r;
	int ret;

	bu_buf_init(&sql, 0);
	/* unordered: the primary key's order, sorted here if it was not */
	bu_buf_append_str(&sql, "SELECT array_agg(m.uid)");
	ms_sql_from_folder(&sql, where);
	r = ms_query_binres(db, bu_buf_cstr(&sql), p);
	bu_buf_deinit(&sql);
	if (r == NULL)
		return MS_ERR;
	ret = PQntuples(r) == 1 && PQnfields(r) == 1 ? ms_bin_uid_array(a, r, uids_r, n_r) : -1;
	PQclear(r);
	for (size_t i = 1; ret == 0 && i < *n_r; i++) {
		if ((*uids_r)[i - 1] >= (*uids_r)[i]) {
			qsort(*uids_r, *n_r, sizeof(uint32_t), ms_u32_cmp);
			break;
		}
	}
	if (ret < 0) {
		bu_error("event=ms_search_bad_array");
		return MS_ERR;
	}
	return 1;
}

int ms_search(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	      int64_t collection_id, const struct ms_search *q,
	      const struct ms_sort *sort, size_t n_sort, uint32_t **uids_r, size_t *n_r)
{
	struct ms_search_ctx ctx;
	struct ms_params p;
	struct bu_buf where, sql;
	uint32_t rights, *uids;
	PGresult *r = NULL;
	int rows, ret;

	*uids_r = NULL;
	*n_r = 0;
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	if (!(rights & ACL_READ))
		return MS_NOPERM;
	memset(&ctx, 0, sizeof(ctx));
	ctx.db = db;
	ctx.a = a;
	ctx.owner_id = owner_id;
	ctx.collection_id = collection_id;
	ctx.viewer = viewer;
	ctx.is_owner = viewer == owner_id;
	ms_params_init(&p, a);
	ctx.p_account = ms_param_i64(&p, owner_id);
	ctx.p_collection = ms_param_i64(&p, collection_id);
	bu_buf_init(&where, 0);
	ret = ms_search_where(&ctx, q, &where, &p);
	if (ret < 0) {
		bu_buf_deinit(&where);
		return ret;
	}
	/* sorted here when the covering index holds the keys; else in SQL
	 * first on the stored (prefix) sort keys, and again on the whole
	 * values in the rare case that matters */
	if (n_sort == 0)
		ret = ms_search_plain(db, a, bu_buf_cstr(&where), &p, &uids, n_r);
	else
		ret = ms_search_csort(db, a, bu_buf_cstr(&where), &p, sort, n_sort, &uids, n_r);
	if (ret != 0) {
		bu_buf_deinit(&where);
		if (ret < 0)
			return ret;
		rows = (int)*n_r;
		*n_r = 0;
		goto done;
	}
	for (int pass = 0; pass < 2 && ret == 0; pass++) {
		bool exact = pass == 1, ties = false;

		bu_buf_init(&sql, 0);
		ret = ms_search_sql(&sql, bu_buf_cstr(&where), sort, n_sort, exact);
		if (ret == 0) {
			r = ms_query_binres(db, bu_buf_cstr(&sql), &p);
			if (r == NULL)
				ret = MS_ERR;
		}
		bu_buf_deinit(&sql);
		if (ret < 0 || exact)
			break;
		for (int c = 1; c < PQnfields(r) && !ties; c++)
			ties = ms_sort_prefix_ties(a, r, c);
		if (!ties)
			break;
		PQclear(r);
		r = NULL;
	}
	bu_buf_deinit(&where);
	if (ret < 0)
		return ret;
	rows = PQntuples(r);
	uids = bu_arena_alloc(a, bu_size_mul((size_t)rows + 1, sizeof(uint32_t)));
	for (int i = 0; i < rows; i++)
		uids[i] = ms_bin_uid(r, i);
	PQclear(r);
done:
	if (rows == 0) {
		ret = ms_collection_exists(db, owner_id, collection_id);
		if (ret <= 0)
			return ret < 0 ? MS_ERR : MS_NOTFOUND;
	}
	*uids_r = uids;
	*n_r = (size_t)rows;
	return rows;
}

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

static int ms_load_headers(struct ms_search_ctx *ctx)
{
	struct ms_params p;

	if (ctx->hdrs_loaded)
		return 0;
	ms_params_init(&p, ctx->a);
	ms_param_i64(&p, ctx->owner_id);
	ms_param_i64(&p, ctx->collection_id);
	ctx->hdrs = ms_query_binres(ctx->db,
				    "SELECT m.uid, substring(b.data from 1 for m.hdr_len)"
				    " FROM mail_messages m JOIN mail_blobs b"
				    " ON b.account_id = m.account_id AND b.sha256 = m.blob"
				    " WHERE m.account_id = $1 AND m.collection_id = $2"
				    " ORDER BY m.uid", &p);
	if (ctx->hdrs == NULL)
		return MS_ERR;
	ms_arena_own_result(ctx->a, ctx->hdrs);
	ctx->hdrs_loaded = true;
	return 0;
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
	uint32_t *uids;
	size_t n = 0;
	int rows;

	if (ms_load_headers(ctx) < 0)
		return MS_ERR;
	rows = PQntuples(ctx->hdrs);
	uids = bu_arena_alloc(ctx->a, bu_size_mul((size_t)rows + 1, sizeof(uint32_t)));
	for (int i = 0; i < rows; i++) {
		const uint8_t *h = (const uint8_t *)PQgetvalue(ctx->hdrs, i, 1);
		size_t len = (size_t)PQgetlength(ctx->hdrs, i, 1);

		if (ms_header_match(ctx->a, h, len, name, needle))
			uids[n++] = (uint32_t)ms_bin_i64(ctx->hdrs, i, 0);
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

static const char *ms_sort_expr(enum ms_sort_key key)
{
	switch (key) {
	case MSK_ARRIVAL:
		return "m.internaldate";
	case MSK_CC:
		return "lower(m.cc_sort) COLLATE \"C\"";
	case MSK_DATE:
		return "coalesce(m.sent_date, m.internaldate)";
	case MSK_FROM:
		return "lower(m.from_sort) COLLATE \"C\"";
	case MSK_SIZE:
		return "m.size";
	case MSK_SUBJECT:
		return "lower(m.base_subject) COLLATE \"C\"";
	case MSK_TO:
		return "lower(m.to_sort) COLLATE \"C\"";
	case MSK_DISPLAYFROM:
		return "lower(m.from_display) COLLATE \"C\"";
	case MSK_DISPLAYTO:
		return "lower(m.to_display) COLLATE \"C\"";
	}
	return NULL;
}

int ms_search(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	      int64_t collection_id, const struct ms_search *q,
	      const struct ms_sort *sort, size_t n_sort, uint32_t **uids_r, size_t *n_r)
{
	struct ms_search_ctx ctx;
	struct ms_params p;
	struct bu_buf sql;
	uint32_t rights, *uids;
	PGresult *r;
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
	bu_buf_init(&sql, 0);
	bu_buf_append_str(&sql, "SELECT m.uid FROM mail_messages m"
			  " WHERE m.account_id = $1 AND m.collection_id = $2 AND ");
	ret = ms_search_where(&ctx, q, &sql, &p);
	if (ret < 0) {
		bu_buf_deinit(&sql);
		return ret;
	}
	bu_buf_append_str(&sql, " ORDER BY ");
	for (size_t i = 0; i < n_sort; i++) {
		const char *e = ms_sort_expr(sort[i].key);

		if (e == NULL) {
			bu_buf_deinit(&sql);
			return MS_ERR;
		}
		bu_buf_printf(&sql, "%s%s, ", e, sort[i].reverse ? " DESC" : "");
	}
	/* RFC 5256: ties are broken by sequence number, i.e. UID ascending */
	bu_buf_append_str(&sql, "m.uid");
	r = ms_query(db, bu_buf_cstr(&sql), &p);
	bu_buf_deinit(&sql);
	if (r == NULL)
		return MS_ERR;
	rows = PQntuples(r);
	uids = bu_arena_alloc(a, bu_size_mul((size_t)rows + 1, sizeof(uint32_t)));
	for (int i = 0; i < rows; i++)
		uids[i] = (uint32_t)ms_val_i64(r, i, 0);
	PQclear(r);
	if (rows == 0) {
		ret = ms_collection_exists(db, owner_id, collection_id);
		if (ret <= 0)
			return ret < 0 ? MS_ERR : MS_NOTFOUND;
	}
	*uids_r = uids;
	*n_r = (size_t)rows;
	return rows;
}

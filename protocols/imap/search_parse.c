/*
 * search_parse.c - SEARCH keys (RFC 3501 6.4.4, RFC 9051 6.4.4) into a
 * struct ms_search tree for mail_search.c, with the extensions' keys:
 * MODSEQ (RFC 7162 3.1.5), OLDER/YOUNGER (RFC 5032 WITHIN),
 * SAVEDBEFORE/SAVEDON/SAVEDSINCE/SAVEDATESUPPORTED (RFC 8514),
 * EMAILID/THREADID (RFC 8474), "$" (RFC 5182 SEARCHRES); the RETURN
 * options of ESEARCH (RFC 4731) and ESORT (RFC 5267); and CHARSET
 * (UTF-8 and US-ASCII; anything else is NO [BADCHARSET]).
 *
 * Session state is resolved here, on the I/O thread: sequence numbers
 * become UID sets from the session's map, "$" the saved UIDs, and
 * RECENT/NEW/OLD the UIDs this session reports as \Recent (the store
 * keeps no \Recent). A sequence set in SEARCH that reaches past the
 * mailbox simply matches nothing there (it is a criterion, not a
 * reference to a message).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch.h"
#include "groupware/mailstore.h"
#include "search.h"

/* nesting of NOT/OR/parentheses we accept (the store takes 64) */
#define SEARCH_MAX_DEPTH 48

struct sp {
	struct imap_cmd *cmd;
	const char *err;
	struct search_req *r;
};

/* ---- RETURN and CHARSET ------------------------------------------------ */

int imap_search_return_parse(const struct imap_arg *args, size_t n, size_t *i,
			     struct search_req *r, const char **err_r)
{
	const struct imap_arg *l;
	size_t k;

	if (*i >= n || !imap_arg_atom_eq(&args[*i], "RETURN"))
		return 0;
	if (*i + 1 >= n || args[*i + 1].type != IMAP_ARG_LIST) {
		*err_r = "RETURN needs a list of options";
		return -1;
	}
	l = &args[*i + 1];
	r->esearch = true;
	r->ret = 0;
	for (k = 0; k < l->n_list; k++) {
		const struct imap_arg *o = &l->list[k];

		if (imap_arg_atom_eq(o, "MIN"))
			r->ret |= SR_MIN;
		else if (imap_arg_atom_eq(o, "MAX"))
			r->ret |= SR_MAX;
		else if (imap_arg_atom_eq(o, "ALL"))
			r->ret |= SR_ALL;
		else if (imap_arg_atom_eq(o, "COUNT"))
			r->ret |= SR_COUNT;
		else if (imap_arg_atom_eq(o, "SAVE"))
			r->ret |= SR_SAVE;
		else {
			*err_r = "Unknown RETURN option";
			return -1;
		}
	}
	/* RFC 4731 3.1: "RETURN ()" is RETURN (ALL) */
	if (r->ret == 0)
		r->ret = SR_ALL;
	*i += 2;
	return 0;
}

bool imap_search_charset_ok(const char *name)
{
	return name != NULL && (strcasecmp(name, "UTF-8") == 0 ||
				strcasecmp(name, "US-ASCII") == 0 ||
				strcasecmp(name, "UTF8") == 0);
}

int imap_search_charset(const struct imap_arg *args, size_t n, size_t *i, bool required,
			const char **err_r)
{
	if (*i >= n || !imap_arg_atom_eq(&args[*i], "CHARSET")) {
		if (required) {
			*err_r = "CHARSET expected";
			return -1;
		}
		return 1;
	}
	if (*i + 1 >= n || !imap_arg_is_string(&args[*i + 1])) {
		*err_r = "CHARSET needs a name";
		return -1;
	}
	if (!imap_search_charset_ok(args[*i + 1].str))
		return 0;
	*i += 2;
	return 1;
}

/* ---- keys ---------------------------------------------------------------- */

static struct ms_search *node_new(struct sp *p, enum ms_search_op op)
{
	struct ms_search *q = bu_arena_alloc(p->cmd->a, sizeof(*q));

	q->op = op;
	return q;
}

static bool is_seqset(const struct imap_arg *a)
{
	size_t i;

	if (a->type != IMAP_ARG_ATOM || a->len == 0)
		return false;
	if (strcmp(a->str, "$") == 0)
		return true;
	for (i = 0; i < a->len; i++) {
		char c = a->str[i];

		if (!((c >= '0' && c <= '9') || c == ':' || c == ',' || c == '*'))
			return false;
	}
	return true;
}

/* sequence numbers -> UIDs in the map, leniently */
static int seq_to_uids(struct sp *p, const char *set, struct ms_search *q)
{
	struct imap_mailbox *mb = p->cmd->s->sel;
	struct imap_range *rg;
	size_t nr, k, o = 0;
	uint32_t *out;

	if (imap_seqset_ranges(p->cmd->a, set, (uint32_t)mb->n, &rg, &nr) < 0)
		return -1;
	out = bu_arena_alloc(p->cmd->a, (mb->n + 1) * sizeof(*out));
	for (k = 0; k < nr; k++) {
		uint64_t lo = rg[k].lo < 1 ? 1 : rg[k].lo, hi = rg[k].hi, x;

		if (hi > mb->n)
			hi = mb->n;
		for (x = lo; x <= hi; x++) {
			/* ranges are merged and sorted: no duplicates */
			out[o++] = mb->uids[x - 1];
		}
	}
	q->op = MSS_UIDSET;
	q->uids = out;
	q->n_uids = o;
	return 0;
}

static int uid_set(struct sp *p, const char *set, bool uid, struct ms_search *q)
{
	uint32_t *u;
	size_t n;

	if (strcmp(set, "$") == 0)
		p->r->uses_searchres = true;
	if (!uid && strcmp(set, "$") != 0)
		return seq_to_uids(p, set, q);
	if (imap_mailbox_set_uids(p->cmd, set, true, &u, &n) < 0)
		return -1;
	q->op = MSS_UIDSET;
	q->uids = u;
	q->n_uids = n;
	return 0;
}

static const char *arg_string(const struct imap_arg *a)
{
	if (a == NULL || a->type == IMAP_ARG_LIST || a->type == IMAP_ARG_NIL)
		return a != NULL && a->type == IMAP_ARG_NIL ? "NIL" : NULL;
	/* a literal with NUL in it is cut at the NUL: fine for a substring */
	return a->str;
}

static int arg_number(const struct imap_arg *a, uint64_t max, int64_t *v)
{
	uint64_t x;

	if (a == NULL || a->type != IMAP_ARG_ATOM || bu_parse_u64(a->str, a->len, max, &x) < 0)
		return -1;
	*v = (int64_t)x;
	return 0;
}

static char *lower_dup(struct bu_arena *a, const char *s)
{
	char *r = bu_arena_strdup(a, s), *p;

	for (p = r; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	}
	return r;
}

static const struct {
	const char *name;
	enum ms_search_op op;
	uint32_t flag;
} flag_keys[] = {
	{ "ANSWERED", MSS_FLAG, MF_ANSWERED },
	{ "DELETED", MSS_FLAG, MF_DELETED },
	{ "DRAFT", MSS_FLAG, MF_DRAFT },
	{ "FLAGGED", MSS_FLAG, MF_FLAGGED },
	{ "SEEN", MSS_FLAG, MF_SEEN },
	{ "UNANSWERED", MSS_NOFLAG, MF_ANSWERED },
	{ "UNDELETED", MSS_NOFLAG, MF_DELETED },
	{ "UNDRAFT", MSS_NOFLAG, MF_DRAFT },
	{ "UNFLAGGED", MSS_NOFLAG, MF_FLAGGED },
	{ "UNSEEN", MSS_NOFLAG, MF_SEEN },
};

static const struct {
	const char *name;
	enum ms_search_op op;
} str_keys[] = {
	{ "BCC", MSS_BCC }, { "BODY", MSS_BODY }, { "CC", MSS_CC }, { "FROM", MSS_FROM },
	{ "SUBJECT", MSS_SUBJECT }, { "TEXT", MSS_TEXT }, { "TO", MSS_TO },
	{ "KEYWORD", MSS_KEYWORD }, { "UNKEYWORD", MSS_UNKEYWORD },
	{ "EMAILID", MSS_EMAILID }, { "THREADID", MSS_THREADID },
};

static const struct {
	const char *name;
	enum ms_search_op op;
} date_keys[] = {
	{ "BEFORE", MSS_BEFORE }, { "ON", MSS_ON }, { "SINCE", MSS_SINCE },
	{ "SENTBEFORE", MSS_SENTBEFORE }, { "SENTON", MSS_SENTON }, { "SENTSINCE", MSS_SENTSINCE },
	{ "SAVEDBEFORE", MSS_SAVEDBEFORE }, { "SAVEDON", MSS_SAVEDON },
	{ "SAVEDSINCE", MSS_SAVEDSINCE },
};

static int parse_key(struct sp *p, const struct imap_arg *args, size_t n, size_t *i,
		     struct ms_search *q, int depth);

/* keys args[0..n) ANDed into q */
static int parse_and(struct sp *p, const struct imap_arg *args, size_t n, struct ms_search *q,
		     int depth)
{
	size_t i = 0, k = 0;

	q->op = MSS_AND;
	q->kids = bu_arena_alloc(p->cmd->a, (n + 1) * sizeof(*q->kids));
	while (i < n) {
		if (parse_key(p, args, n, &i, &q->kids[k], depth) < 0)
			return -1;
		k++;
	}
	q->n_kids = k;
	if (k == 0) {
		p->err = "Empty search key list";
		return -1;
	}
	return 0;
}

static int parse_key(struct sp *p, const struct imap_arg *args, size_t n, size_t *i,
		     struct ms_search *q, int depth)
{
	struct imap_session *s = p->cmd->s;
	struct imap_mailbox *mb = s->sel;
	const struct imap_arg *a = &args[*i];
	const struct imap_arg *next = *i + 1 < n ? &args[*i + 1] : NULL;
	const char *k;
	size_t t;

	if (depth > SEARCH_MAX_DEPTH) {
		p->err = "Search keys nested too deeply";
		return -1;
	}
	memset(q, 0, sizeof(*q));
	if (a->type == IMAP_ARG_LIST) {
		(*i)++;
		return parse_and(p, a->list, a->n_list, q, depth + 1);
	}
	if (a->type != IMAP_ARG_ATOM) {
		p->err = "Invalid search key";
		return -1;
	}
	if (is_seqset(a)) {
		(*i)++;
		if (uid_set(p, a->str, false, q) < 0) {
			p->err = "Invalid sequence set";
			return -1;
		}
		return 0;
	}
	k = a->str;
	(*i)++;
	if (strcasecmp(k, "ALL") == 0) {
		q->op = MSS_ALL;
		return 0;
	}
	for (t = 0; t < BU_N_ELEMENTS(flag_keys); t++) {
		if (strcasecmp(k, flag_keys[t].name) == 0) {
			q->op = flag_keys[t].op;
			q->num = flag_keys[t].flag;
			return 0;
		}
	}
	for (t = 0; t < BU_N_ELEMENTS(str_keys); t++) {
		if (strcasecmp(k, str_keys[t].name) != 0)
			continue;
		q->op = str_keys[t].op;
		q->str = arg_string(next);
		if (q->str == NULL) {
			p->err = "Search key needs a string";
			return -1;
		}
		(*i)++;
		return 0;
	}
	for (t = 0; t < BU_N_ELEMENTS(date_keys); t++) {
		int64_t day;

		if (strcasecmp(k, date_keys[t].name) != 0)
			continue;
		day = imap_parse_date(arg_string(next));
		if (day == -1) {
			p->err = "Invalid date (d-Mon-yyyy)";
			return -1;
		}
		q->op = date_keys[t].op;
		q->num = day;
		(*i)++;
		return 0;
	}
	if (strcasecmp(k, "NOT") == 0) {
		if (next == NULL) {
			p->err = "NOT needs a key";
			return -1;
		}
		q->op = MSS_NOT;
		q->kids = bu_arena_alloc(p->cmd->a, sizeof(*q->kids));
		q->n_kids = 1;
		return parse_key(p, args, n, i, &q->kids[0], depth + 1);
	}
	if (strcasecmp(k, "OR") == 0) {
		q->op = MSS_OR;
		q->kids = bu_arena_alloc(p->cmd->a, 2 * sizeof(*q->kids));
		q->n_kids = 2;
		if (*i >= n || parse_key(p, args, n, i, &q->kids[0], depth + 1) < 0 ||
		    *i >= n || parse_key(p, args, n, i, &q->kids[1], depth + 1) < 0) {
			if (p->err == NULL)
				p->err = "OR needs two keys";
			return -1;
		}
		return 0;
	}
	if (strcasecmp(k, "HEADER") == 0) {
		const char *name = arg_string(next);
		const char *value = *i + 1 < n ? arg_string(&args[*i + 1]) : NULL;

		if (name == NULL || value == NULL || *name == '\0') {
			p->err = "HEADER needs a field name and a string";
			return -1;
		}
		q->op = MSS_HEADER;
		q->str = lower_dup(p->cmd->a, name);
		q->str2 = value;
		*i += 2;
		return 0;
	}
	if (strcasecmp(k, "LARGER") == 0 || strcasecmp(k, "SMALLER") == 0 ||
	    strcasecmp(k, "OLDER") == 0 || strcasecmp(k, "YOUNGER") == 0) {
		if (arg_number(next, INT64_MAX, &q->num) < 0) {
			p->err = "Search key needs a number";
			return -1;
		}
		q->op = strcasecmp(k, "LARGER") == 0 ? MSS_LARGER :
			strcasecmp(k, "SMALLER") == 0 ? MSS_SMALLER :
			strcasecmp(k, "OLDER") == 0 ? MSS_OLDER : MSS_YOUNGER;
		/* RFC 5032: the interval is a positive number of seconds */
		if ((q->op == MSS_OLDER || q->op == MSS_YOUNGER) && q->num == 0) {
			p->err = "OLDER/YOUNGER need a positive interval";
			return -1;
		}
		(*i)++;
		return 0;
	}
	if (strcasecmp(k, "UID") == 0) {
		if (next == NULL || !is_seqset(next) || uid_set(p, next->str, true, q) < 0) {
			p->err = "UID needs a valid UID set";
			return -1;
		}
		(*i)++;
		return 0;
	}
	if (strcasecmp(k, "MODSEQ") == 0) {
		/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer */
		int64_t dummy;

		if (next != NULL && arg_number(next, INT64_MAX, &dummy) < 0) {
			const struct imap_arg *type = *i + 1 < n ? &args[*i + 1] : NULL;

			if (!imap_arg_is_string(next) || type == NULL ||
			    !(imap_arg_atom_eq(type, "priv") || imap_arg_atom_eq(type, "shared") ||
			      imap_arg_atom_eq(type, "all"))) {
				p->err = "Invalid MODSEQ entry";
				return -1;
			}
			*i += 2;
			next = *i < n ? &args[*i] : NULL;
		}
		if (arg_number(next, INT64_MAX, &q->num) < 0) {
			p->err = "MODSEQ needs a mod-sequence";
			return -1;
		}
		q->op = MSS_MODSEQ;
		p->r->has_modseq = true;
		(*i)++;
		return 0;
	}
	if (strcasecmp(k, "SAVEDATESUPPORTED") == 0) {
		q->op = MSS_SAVEDATESUPPORTED;
		return 0;
	}
	/* \Recent is this session's (RFC 3501 2.3.2); IMAP4rev2 dropped it
	 * but the keys stay valid */
	if (strcasecmp(k, "RECENT") == 0 || strcasecmp(k, "NEW") == 0 ||
	    strcasecmp(k, "OLD") == 0) {
		struct ms_search *rec = node_new(p, MSS_UIDSET);

		rec->uids = mb->recent;
		rec->n_uids = mb->n_recent;
		if (strcasecmp(k, "RECENT") == 0) {
			*q = *rec;
		} else if (strcasecmp(k, "OLD") == 0) {
			q->op = MSS_NOT;
			q->kids = rec;
			q->n_kids = 1;
		} else {
			q->op = MSS_AND;
			q->kids = bu_arena_alloc(p->cmd->a, 2 * sizeof(*q->kids));
			q->kids[0] = *rec;
			q->kids[1].op = MSS_NOFLAG;
			q->kids[1].num = MF_SEEN;
			q->n_kids = 2;
		}
		return 0;
	}
	p->err = "Unknown search key";
	return -1;
}

int imap_search_keys_parse(struct imap_cmd *cmd, const struct imap_arg *args, size_t n,
			   struct search_req *r, const char **err_r)
{
	struct sp p = { cmd, NULL, r };
	struct ms_search *q = bu_arena_alloc(cmd->a, sizeof(*q));

	if (n == 0) {
		*err_r = "Missing search keys";
		return -1;
	}
	if (parse_and(&p, args, n, q, 0) < 0) {
		*err_r = p.err != NULL ? p.err : "Invalid search keys";
		return -1;
	}
	if (q->n_kids == 1) {
		struct ms_search *one = &q->kids[0];

		q = one;
	}
	r->q = q;
	return 0;
}

/* decimal digits of v at p (at least 10 bytes); returns the length */
static size_t num_fmt(char *p, uint32_t v)
{
	char tmp[10];
	size_t n = 0, k;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (k = 0; k < n; k++)
		p[k] = tmp[n - 1 - k];
	return n;
}

void imap_write_num_list(struct bu_buf *out, const uint32_t *v, size_t n)
{
	size_t i = 0;

	/* at most "4294967295:4294967295," per run */
	if (n == 0 || bu_buf_reserve(out, bu_size_mul(n, 22)) < 0) {
		for (; i < n; i++)
			bu_buf_printf(out, i == 0 ? "%u" : ",%u", v[i]);
		return;
	}
	while (i < n) {
		char *p = (char *)out->data + out->len;
		size_t j = i, w = 0;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (i > 0)
			p[w++] = ',';
		w += num_fmt(p + w, v[i]);
		if (j > i) {
			p[w++] = ':';
			w += num_fmt(p + w, v[j]);
		}
		out->len += w;
		i = j + 1;
	}
	out->data[out->len] = '\0';
}

void imap_write_num_seq(struct bu_buf *out, const uint32_t *v, size_t n)
{
	size_t i;

	if (n == 0)
		return;
	if (bu_buf_reserve(out, bu_size_mul(n, 11)) < 0) {
		for (i = 0; i < n; i++)
			bu_buf_printf(out, " %u", v[i]);
		return;
	}
	for (i = 0; i < n; i++) {
		char *p = (char *)out->data + out->len;

		p[0] = ' ';
		out->len += 1 + num_fmt(p + 1, v[i]);
	}
	out->data[out->len] = '\0';
}

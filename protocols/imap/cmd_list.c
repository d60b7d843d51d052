/*
 * cmd_list.c - LIST and LSUB (RFC 3501 6.3.8-9) with LIST-EXTENDED (RFC
 * 5258: selection options SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE;
 * return options SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS), LIST-STATUS
 * (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348).
 *
 * The universe of names is: the user's mail folders; for every account
 * that shares something with the user (acl_shared_with), its folders on
 * which the user has the l right, as "Other Users/<address>/<folder>" for
 * users and "Shared/<address>/<folder>" for shared mailboxes; and every
 * superior of those that is not itself a folder ("Other Users",
 * "Other Users/<address>", "Archive" of a lone "Archive/2026"): those are
 * listed as \Noselect (\NonExistent in extended LIST) with \HasChildren.
 *
 * Attributes: \HasChildren / \HasNoChildren always, special-use
 * attributes always (RFC 6154 allows it, and clients that never ask still
 * find their Sent folder), \Subscribed when asked. Folders of other
 * accounts count as subscribed: a grantee's subscription to someone
 * else's folder is not stored.
 *
 * Patterns: '*' matches anything, '%' anything but the separator; the
 * reference is prepended as is; "INBOX" matches case-insensitively.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "groupware/acl.h"
#include "groupware/collection.h"
#include "groupware/mailstore.h"
#include "groupware/principal.h"
#include "imap_int.h"
#include "server/core/log.h"

struct lentry {
	char *name; /* client-visible, UTF-8 */
	int64_t owner;
	int64_t coll; /* 0: not a folder (a superior or namespace node) */
	const char *special;
	bool subscribed;
	bool children;
	bool sub_child; /* a descendant is subscribed */
};

struct entries {
	struct lentry *v;
	size_t n, cap;
};

static struct lentry *entry_add(struct bu_arena *a, struct entries *e)
{
	if (e->n == e->cap) {
		size_t ncap = e->cap ? e->cap * 2 : 64;
		struct lentry *nv = bu_arena_alloc(a, bu_size_mul(ncap, sizeof(*nv)));

		if (e->n > 0)
			memcpy(nv, e->v, e->n * sizeof(*nv));
		e->v = nv;
		e->cap = ncap;
	}
	return &e->v[e->n++];
}

/* INBOX first, then byte order */
static int entry_cmp(const void *x, const void *y)
{
	const struct lentry *a = x, *b = y;
	bool ai = strcmp(a->name, "INBOX") == 0, bi = strcmp(b->name, "INBOX") == 0;

	if (ai != bi)
		return ai ? -1 : 1;
	if (a->coll != 0 && b->coll == 0 && strcmp(a->name, b->name) == 0)
		return -1;
	if (a->coll == 0 && b->coll != 0 && strcmp(a->name, b->name) == 0)
		return 1;
	return strcmp(a->name, b->name);
}

static int name_cmp(const void *key, const void *elem)
{
	const struct lentry *e = elem;
	const char *k = key;
	bool ki = strcmp(k, "INBOX") == 0, ei = strcmp(e->name, "INBOX") == 0;

	if (ki != ei)
		return ki ? -1 : 1;
	return strcmp(k, e->name);
}

static struct lentry *entry_find(struct entries *e, const char *name)
{
	return bsearch(name, e->v, e->n, sizeof(*e->v), name_cmp);
}

static bool is_descendant(const char *name, const char *anc, size_t alen)
{
	return strncmp(name, anc, alen) == 0 && name[alen] == IMAP_SEP;
}

/* Every folder the user may see, with superiors; sorted, unique.
 * 0 or a negative ms_err. */
static int collect(struct imap_cmd *cmd, struct bu_db *db, struct entries *e)
{
	struct imap_session *s = cmd->s;
	struct bu_arena *a = cmd->a;
	struct collection *cl;
	size_t ncl, i, o, base;
	int64_t *owners;
	size_t n_owners;

	memset(e, 0, sizeof(*e));
	if (collection_list(db, a, s->user_id, COLL_MAIL, &cl, &ncl) < 0)
		return MS_ERR;
	for (i = 0; i < ncl; i++) {
		struct lentry *le = entry_add(a, e);

		le->name = cl[i].name;
		le->owner = s->user_id;
		le->coll = cl[i].id;
		le->special = cl[i].special_use;
		le->subscribed = cl[i].subscribed;
	}
	if (acl_shared_with(db, a, s->user_id, &owners, &n_owners) < 0)
		return MS_ERR;
	for (i = 0; i < n_owners; i++) {
		struct principal *p = NULL;
		size_t k;
		int ret = principal_get(db, a, owners[i], &p);

		if (ret < 0)
			return MS_ERR;
		if (ret == 0 || p->id == s->user_id ||
		    (p->kind != PRINCIPAL_USER && p->kind != PRINCIPAL_SHARED))
			continue;
		if (collection_list(db, a, p->id, COLL_MAIL, &cl, &ncl) < 0)
			return MS_ERR;
		for (k = 0; k < ncl; k++) {
			uint32_t rights = 0;
			struct lentry *le;

			if (acl_rights(db, s->user_id, p->id, cl[k].id, &rights) < 0)
				return MS_ERR;
			if (!(rights & ACL_LOOKUP))
				continue;
			le = entry_add(a, e);
			le->name = imap_mailbox_full_name(s, a, p->id, p, cl[k].name);
			le->owner = p->id;
			le->coll = cl[k].id;
			le->special = NULL;
			le->subscribed = true;
		}
	}
	/* superiors that are not folders themselves */
	base = e->n;
	for (i = 0; i < base; i++) {
		const char *nm = e->v[i].name, *sl;

		for (sl = strchr(nm, IMAP_SEP); sl != NULL; sl = strchr(sl + 1, IMAP_SEP)) {
			struct lentry *le = entry_add(a, e);

			le->name = bu_arena_strndup(a, nm, (size_t)(sl - nm));
			le->owner = 0;
			le->coll = 0;
		}
	}
	if (e->n > 1)
		qsort(e->v, e->n, sizeof(*e->v), entry_cmp);
	/* unique by name; a folder wins over a superior of the same name */
	o = 0;
	for (i = 0; i < e->n; i++) {
		if (o > 0 && strcmp(e->v[o - 1].name, e->v[i].name) == 0)
			continue;
		e->v[o++] = e->v[i];
	}
	e->n = o;
	/* children and subscribed descendants */
	for (i = 0; i < e->n; i++) {
		const char *nm = e->v[i].name, *sl;
		char *buf;

		if (!e->v[i].subscribed || e->v[i].coll == 0)
			continue;
		buf = bu_arena_strdup(a, nm);
		for (sl = strchr(nm, IMAP_SEP); sl != NULL; sl = strchr(sl + 1, IMAP_SEP)) {
			struct lentry *anc;

			buf[sl - nm] = '\0';
			anc = entry_find(e, buf);
			if (anc != NULL)
				anc->sub_child = true;
			buf[sl - nm] = IMAP_SEP;
		}
	}
	for (i = 0; i < e->n; i++) {
		const char *nm = e->v[i].name, *sl;
		char *buf = bu_arena_strdup(a, nm);

		for (sl = strchr(nm, IMAP_SEP); sl != NULL; sl = strchr(sl + 1, IMAP_SEP)) {
			struct lentry *anc;

			buf[sl - nm] = '\0';
			anc = entry_find(e, buf);
			if (anc != NULL)
				anc->children = true;
			buf[sl - nm] = IMAP_SEP;
		}
	}
	return 0;
}

/* ---- matching ----------------------------------------------------------- */

static bool char_eq(unsigned char pc, unsigned char nc, bool ci)
{
	if (ci && pc >= 'a' && pc <= 'z')
		pc = (unsigned char)(pc - 'a' + 'A');
	return pc == nc;
}

/* Does name n match pattern p? The first ci bytes of n compare
 * case-insensitively. One pass over the pattern keeps the set of name
 * positions reachable so far, so the cost is O(|p| * |n|) whatever the
 * pattern: "*a*a*a...b" cannot make it backtrack. */
static bool match_name(const char *p, const char *n, size_t ci)
{
	size_t nlen = strlen(n), lits = 0, j;
	bool stack[2 * 256], *heap = NULL, *cur, *nxt, *t, ok = false;
	const char *q;

	for (q = p; *q != '\0'; q++) {
		if (*q != '*' && *q != '%')
			lits++;
	}
	if (lits > nlen)
		return false; /* every other pattern byte takes a name byte */
	if (nlen + 1 <= 256) {
		cur = stack;
	} else {
		heap = bu_calloc(2 * (nlen + 1), sizeof(*heap));
		cur = heap;
	}
	nxt = cur + nlen + 1;
	memset(cur, 0, (nlen + 1) * sizeof(*cur));
	cur[0] = true;
	while (*p != '\0') {
		bool any = false;

		if (*p == '*' || *p == '%') {
			/* a run of wildcards is one; '*' if it has one */
			bool star = false, active = false;

			for (; *p == '*' || *p == '%'; p++)
				star = star || *p == '*';
			for (j = 0; j <= nlen; j++) {
				active = cur[j] ||
					 (active && j > 0 && (star || n[j - 1] != IMAP_SEP));
				nxt[j] = active;
				any = any || active;
			}
		} else {
			nxt[0] = false;
			for (j = 0; j < nlen; j++) {
				nxt[j + 1] = cur[j] && char_eq((unsigned char)*p,
							       (unsigned char)n[j], j < ci);
				any = any || nxt[j + 1];
			}
			p++;
		}
		t = cur;
		cur = nxt;
		nxt = t;
		if (!any)
			goto out;
	}
	ok = cur[nlen];
out:
	free(heap);
	return ok;
}

static bool pattern_match(const char *pattern, const char *name)
{
	size_t ci = 0;

	/* "INBOX" (and the INBOX part of "INBOX/x") is case-insensitive */
	if (strncmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == IMAP_SEP))
		ci = 5;
	return match_name(pattern, name, ci);
}

/* ---- the command ---------------------------------------------------------- */

enum {
	SEL_SUBSCRIBED = 1 << 0,
	SEL_RECURSIVE = 1 << 1,
	SEL_SPECIAL = 1 << 2,
	RET_SUBSCRIBED = 1 << 3,
	RET_CHILDREN = 1 << 4,
	RET_SPECIAL = 1 << 5,
	RET_STATUS = 1 << 6,
};

struct list_req {
	bool lsub;
	bool extended;
	unsigned opts;
	unsigned status_mask;
	char **patterns; /* UTF-8, reference prepended */
	size_t n_patterns;
	bool empty_pattern; /* LIST "" "" */
};

static bool any_match(const struct list_req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n_patterns; i++) {
		if (pattern_match(r->patterns[i], name))
			return true;
	}
	return false;
}

/* a subscribed descendant of e that the patterns do not match */
static bool hidden_sub_child(const struct list_req *r, const struct entries *e, size_t idx)
{
	const char *nm = e->v[idx].name;
	size_t len = strlen(nm), i;

	for (i = 0; i < e->n; i++) {
		if (e->v[i].coll != 0 && e->v[i].subscribed &&
		    is_descendant(e->v[i].name, nm, len) && !any_match(r, e->v[i].name))
			return true;
	}
	return false;
}

static void write_line(struct imap_cmd *cmd, const char *what, const char *attrs, const char *name,
		       const char *ext)
{
	struct bu_buf *out = &cmd->out;

	bu_buf_printf(out, "* %s (%s) \"/\" ", what, attrs);
	imap_write_mailbox(cmd->s, out, name);
	if (ext != NULL)
		bu_buf_printf(out, " %s", ext);
	bu_buf_append_str(out, "\r\n");
}

static void list_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct list_req *r = cmd->priv;
	struct entries e;
	size_t i;
	int ret;

	if (r->empty_pattern) {
		/* RFC 3501 6.3.8: the hierarchy delimiter and root */
		imap_untagged(cmd, "LIST (\\Noselect) \"/\" \"\"");
		imap_reply_ok(cmd, "List completed");
		return;
	}
	ret = collect(cmd, db, &e);
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	for (i = 0; i < e.n; i++) {
		struct lentry *le = &e.v[i];
		struct bu_buf attrs;
		const char *ext = NULL;
		bool match = any_match(r, le->name);

		if (!match)
			continue;
		bu_buf_init(&attrs, 0);
		if (r->lsub) {
			if (le->coll != 0 && le->subscribed)
				write_line(cmd, "LSUB", "", le->name, NULL);
			else if (le->sub_child && hidden_sub_child(r, &e, i))
				write_line(cmd, "LSUB", "\\Noselect", le->name, NULL);
			bu_buf_deinit(&attrs);
			continue;
		}
		if (r->opts & SEL_SUBSCRIBED) {
			bool sub = le->coll != 0 && le->subscribed;
			bool info = (r->opts & SEL_RECURSIVE) && le->sub_child &&
				    hidden_sub_child(r, &e, i);

			if (!sub && !info) {
				bu_buf_deinit(&attrs);
				continue;
			}
			if (info)
				ext = "(\"CHILDINFO\" (\"SUBSCRIBED\"))";
		}
		if ((r->opts & SEL_SPECIAL) && le->special == NULL) {
			bu_buf_deinit(&attrs);
			continue;
		}
		if (le->coll == 0)
			bu_buf_append_str(&attrs, r->extended ? "\\NonExistent" : "\\Noselect");
		if (attrs.len > 0)
			bu_buf_append_byte(&attrs, ' ');
		bu_buf_append_str(&attrs, le->children ? "\\HasChildren" : "\\HasNoChildren");
		if (le->coll != 0 && le->subscribed &&
		    (r->opts & (SEL_SUBSCRIBED | RET_SUBSCRIBED)))
			bu_buf_append_str(&attrs, " \\Subscribed");
		if (le->special != NULL)
			bu_buf_printf(&attrs, " %s", le->special);
		write_line(cmd, "LIST", bu_buf_cstr(&attrs), le->name, ext);
		bu_buf_deinit(&attrs);
		if ((r->opts & RET_STATUS) && le->coll != 0)
			(void)imap_status_write(cmd, db, le->name, le->owner, le->coll,
						r->status_mask);
	}
	imap_reply_ok(cmd, "%s completed", r->lsub ? "Lsub" : "List");
}

static char *pattern_in(struct imap_cmd *cmd, const char *ref, const struct imap_arg *arg)
{
	const char *raw;
	char *p;

	if (!imap_arg_is_string(arg))
		return NULL;
	raw = arg->str;
	p = bu_arena_printf(cmd->a, "%s%s", ref, raw);
	if (!cmd->s->utf8_accept) {
		char *d = imap_utf7_to_utf8(cmd->a, p);

		if (d != NULL)
			p = d;
	}
	return p;
}

static void list_common(struct imap_cmd *cmd, bool lsub)
{
	struct list_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	size_t ai = 0, i;
	const struct imap_arg *pat;
	char *ref;

	r->lsub = lsub;
	/* LIST (selection-options) */
	if (!lsub && cmd->n_args > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *so = &cmd->args[0];

		r->extended = true;
		for (i = 0; i < so->n_list; i++) {
			const struct imap_arg *o = &so->list[i];

			if (imap_arg_atom_eq(o, "SUBSCRIBED"))
				r->opts |= SEL_SUBSCRIBED;
			else if (imap_arg_atom_eq(o, "RECURSIVEMATCH"))
				r->opts |= SEL_RECURSIVE;
			else if (imap_arg_atom_eq(o, "SPECIAL-USE"))
				r->opts |= SEL_SPECIAL;
			else if (imap_arg_atom_eq(o, "REMOTE"))
				continue;
			else {
				imap_reply_bad(cmd, "Unknown LIST selection option");
				return;
			}
		}
		/* RFC 5258 3.1: RECURSIVEMATCH alone is an error */
		if ((r->opts & SEL_RECURSIVE) && !(r->opts & SEL_SUBSCRIBED)) {
			imap_reply_bad(cmd, "RECURSIVEMATCH needs another selection option");
			return;
		}
		ai = 1;
	}
	if (cmd->n_args < ai + 2) {
		imap_reply_bad(cmd, "%s needs a reference and a mailbox pattern", cmd->name);
		return;
	}
	if (!imap_arg_is_string(&cmd->args[ai])) {
		imap_reply_bad(cmd, "Invalid reference");
		return;
	}
	ref = (char *)cmd->args[ai].str;
	pat = &cmd->args[ai + 1];
	/* RETURN (return-options) */
	if (cmd->n_args > ai + 2) {
		const struct imap_arg *ro;

		if (lsub || cmd->n_args != ai + 4 ||
		    !imap_arg_atom_eq(&cmd->args[ai + 2], "RETURN") ||
		    cmd->args[ai + 3].type != IMAP_ARG_LIST) {
			imap_reply_bad(cmd, "Invalid %s arguments", cmd->name);
			return;
		}
		r->extended = true;
		ro = &cmd->args[ai + 3];
		for (i = 0; i < ro->n_list; i++) {
			const struct imap_arg *o = &ro->list[i];

			if (imap_arg_atom_eq(o, "SUBSCRIBED")) {
				r->opts |= RET_SUBSCRIBED;
			} else if (imap_arg_atom_eq(o, "CHILDREN")) {
				r->opts |= RET_CHILDREN;
			} else if (imap_arg_atom_eq(o, "SPECIAL-USE")) {
				r->opts |= RET_SPECIAL;
			} else if (imap_arg_atom_eq(o, "STATUS") && i + 1 < ro->n_list &&
				   imap_status_items_parse(&ro->list[i + 1], &r->status_mask) ==
					   0) {
				r->opts |= RET_STATUS;
				i++;
			} else {
				imap_reply_bad(cmd, "Invalid LIST return option");
				return;
			}
		}
	}
	if (pat->type == IMAP_ARG_LIST) {
		if (lsub || pat->n_list == 0) {
			imap_reply_bad(cmd, "Invalid mailbox pattern");
			return;
		}
		r->extended = true;
		r->patterns = bu_arena_alloc(cmd->a, pat->n_list * sizeof(char *));
		for (i = 0; i < pat->n_list; i++) {
			r->patterns[i] = pattern_in(cmd, ref, &pat->list[i]);
			if (r->patterns[i] == NULL) {
				imap_reply_bad(cmd, "Invalid mailbox pattern");
				return;
			}
		}
		r->n_patterns = pat->n_list;
	} else {
		if (!imap_arg_is_string(pat)) {
			imap_reply_bad(cmd, "Invalid mailbox pattern");
			return;
		}
		if (pat->len == 0 && !lsub) {
			r->empty_pattern = true;
		} else {
			r->patterns = bu_arena_alloc(cmd->a, sizeof(char *));
			r->patterns[0] = pattern_in(cmd, ref, pat);
			r->n_patterns = 1;
		}
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, list_run);
}

void imap_cmd_list(struct imap_cmd *cmd)
{
	list_common(cmd, false);
}

void imap_cmd_lsub(struct imap_cmd *cmd)
{
	list_common(cmd, true);
}

/*
 * cmd_append.c - APPEND (RFC 3501 6.3.11, RFC 9051 6.3.12) with flags and
 * date-time, MULTIAPPEND (RFC 3502: several messages in one command, all
 * or none), CATENATE (RFC 4469: TEXT literals and URLs of messages or
 * sections in the user's mailboxes), literal8 / BINARY append (RFC 3516:
 * the bytes are stored as sent), UTF8 (RFC 6855 "UTF8 (~{n}...)"),
 * APPENDUID (RFC 4315), and REPLACE / UID REPLACE (RFC 8508).
 *
 * Errors: a missing target is NO [TRYCREATE]; over the message size or
 * the quota NO [TOOBIG] / NO [OVERQUOTA] (literals over the limit never
 * get here: the parser answers BAD [TOOBIG]); a CATENATE URL that does
 * not resolve NO [BADURL url].
 *
 * CATENATE URLs: "/mailbox[;UIDVALIDITY=v]/;UID=u[/;SECTION=s]
 * [/;PARTIAL=o[.n]]", mailbox percent-encoded UTF-8 (RFC 5092), also with
 * an "imap://user@host" prefix, or relative to the selected mailbox
 * (";UID=u..." / "/;UID=u..."). Only this user's view of the store is
 * reachable, with the r right checked as for FETCH; URLAUTH is not
 * supported.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch.h"
#include "groupware/acl.h"
#include "groupware/collection.h"
#include "groupware/mailstore.h"
#include "groupware/mime.h"
#include "server/core/config.h"
#include "server/core/log.h"

/* parts of one CATENATE */
struct cat_part {
	bool url;
	const char *data;         /* TEXT literal bytes, or the URL (C string) */
	size_t len;
};

struct append_msg {
	uint32_t flags;
	char **keywords;
	int64_t internaldate;      /* 0 = now */
	const uint8_t *data;
	size_t len;
	struct cat_part *parts;    /* CATENATE, or NULL */
	size_t n_parts;
};

struct append_req {
	char *target;              /* UTF-8 */
	struct append_msg *msgs;
	size_t n_msgs;
	/* REPLACE */
	bool replace;
	uint32_t replace_uid;
};

/* ---- parsing (I/O thread) ------------------------------------------------ */

static const char *parse_catenate(struct imap_cmd *cmd, const struct imap_arg *l,
				  struct append_msg *m)
{
	size_t i, k = 0;

	if (l->type != IMAP_ARG_LIST || l->n_list == 0 || l->n_list % 2 != 0)
		return "CATENATE needs a list of TEXT and URL parts";
	m->parts = bu_arena_alloc(cmd->a, (l->n_list / 2) * sizeof(*m->parts));
	for (i = 0; i < l->n_list; i += 2) {
		const struct imap_arg *kind = &l->list[i], *v = &l->list[i + 1];
		struct cat_part *p = &m->parts[k++];

		if (imap_arg_atom_eq(kind, "TEXT")) {
			if (v->type != IMAP_ARG_LITERAL)
				return "CATENATE TEXT needs a literal";
			p->data = v->str;
			p->len = v->len;
		} else if (imap_arg_atom_eq(kind, "URL")) {
			if (!imap_arg_is_string(v))
				return "CATENATE URL needs a string";
			p->url = true;
			p->data = v->str;
			p->len = v->len;
		} else {
			return "Unknown CATENATE part";
		}
	}
	m->n_parts = k;
	return NULL;
}

/* [flags] [date-time] (literal | CATENATE (...) | UTF8 (literal8)), from
 * args[*i]; advances *i. NULL or the BAD text. */
static const char *parse_one(struct imap_cmd *cmd, const struct imap_arg *args, size_t n,
			     size_t *i, struct append_msg *m)
{
	const struct imap_arg *a;

	memset(m, 0, sizeof(*m));
	if (*i < n && args[*i].type == IMAP_ARG_LIST) {
		if (imap_parse_flags(cmd->a, &args[*i], &m->flags, &m->keywords) < 0)
			return "Invalid flag list";
		(*i)++;
	}
	if (*i < n && args[*i].type == IMAP_ARG_STRING) {
		m->internaldate = imap_parse_datetime(args[*i].str);
		if (m->internaldate == -1)
			return "Invalid date-time";
		/* "the date of the message is now" is our 0 */
		if (m->internaldate == 0)
			m->internaldate = 1;
		(*i)++;
	}
	if (*i >= n)
		return "Missing message literal";
	a = &args[*i];
	if (a->type == IMAP_ARG_LITERAL) {
		m->data = (const uint8_t *)a->str;
		m->len = a->len;
		(*i)++;
		return NULL;
	}
	if (imap_arg_atom_eq(a, "CATENATE") && *i + 1 < n) {
		const char *err = parse_catenate(cmd, &args[*i + 1], m);

		*i += 2;
		return err;
	}
	if (imap_arg_atom_eq(a, "UTF8") && *i + 1 < n && args[*i + 1].type == IMAP_ARG_LIST &&
	    args[*i + 1].n_list == 1 && args[*i + 1].list[0].type == IMAP_ARG_LITERAL) {
		m->data = (const uint8_t *)args[*i + 1].list[0].str;
		m->len = args[*i + 1].list[0].len;
		*i += 2;
		return NULL;
	}
	return "Message must be a literal";
}

static const char *parse_messages(struct imap_cmd *cmd, size_t i, struct append_req *r,
				  bool one)
{
	size_t cap = 4;

	r->msgs = bu_arena_alloc(cmd->a, cap * sizeof(*r->msgs));
	while (i < cmd->n_args) {
		const char *err;

		if (r->n_msgs == cap) {
			struct append_msg *nv = bu_arena_alloc(cmd->a, cap * 2 * sizeof(*nv));

			memcpy(nv, r->msgs, cap * sizeof(*nv));
			r->msgs = nv;
			cap *= 2;
		}
		err = parse_one(cmd, cmd->args, cmd->n_args, &i, &r->msgs[r->n_msgs]);
		if (err != NULL)
			return err;
		r->n_msgs++;
		if (one && i < cmd->n_args)
			return "REPLACE takes one message";
	}
	if (r->n_msgs == 0)
		return "Missing message";
	return NULL;
}

/* ---- CATENATE URLs (worker) ------------------------------------------------ */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* percent-decode s[0..n) into the arena; NULL on a bad escape or NUL */
static char *pct_decode(struct bu_arena *a, const char *s, size_t n)
{
	char *out = bu_arena_alloc(a, n + 1);
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h, l;

			if (i + 2 >= n)
				return NULL;
			h = hexval(s[i + 1]);
			l = hexval(s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return NULL;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static bool kw_prefix(const char *s, const char *kw)
{
	return strncasecmp(s, kw, strlen(kw)) == 0;
}

/* number up to the next '/' or end */
static int url_num(const char **p, uint64_t max, uint64_t *v)
{
	const char *s = *p, *e = s;

	while (*e >= '0' && *e <= '9')
		e++;
	if (e == s || bu_parse_u64(s, (size_t)(e - s), max, v) < 0)
		return -1;
	*p = e;
	return 0;
}

/* Resolve one URL to bytes appended to out. 0 ok, -1 BADURL, or a
 * negative ms_err other than NOTFOUND/NOPERM for database trouble. */
static int url_fetch(struct imap_cmd *cmd, struct bu_db *db, const char *url, struct bu_buf *out)
{
	struct imap_session *s = cmd->s;
	struct bu_arena *a = cmd->a;
	const char *p = url, *mstart, *mend;
	char *mbox = NULL, *sect_txt = NULL;
	uint64_t uidvalidity = 0, uid = 0, p_off = 0, p_len = 0;
	bool partial = false;
	int64_t owner, coll;
	struct ms_fetch *f;
	size_t nf;
	int ret;

	if (kw_prefix(p, "imap://")) {
		p += 7;
		p = strchr(p, '/');
		if (p == NULL)
			return -1;
	}
	if (*p == '/' && p[1] == ';') {
		p++;                 /* "/;UID=" relative to the selected mailbox */
	}
	if (*p == ';') {
		if (s->sel == NULL)
			return -1;
		owner = s->sel->owner_id;
		coll = s->sel->collection_id;
	} else {
		if (*p != '/')
			return -1;
		mstart = ++p;
		while (*p != '\0' && *p != ';' && !(p[0] == '/' && p[1] == ';'))
			p++;
		mend = p;
		mbox = pct_decode(a, mstart, (size_t)(mend - mstart));
		if (mbox == NULL || *mbox == '\0')
			return -1;
		if (strncasecmp(mbox, "INBOX", 5) == 0 && (mbox[5] == '\0' || mbox[5] == '/'))
			memcpy(mbox, "INBOX", 5);
		ret = imap_mailbox_resolve(s, db, a, mbox, &owner, &coll, NULL);
		if (ret == 0 || ret == MS_NOPERM)
			return -1;
		if (ret < 0)
			return ret;
		if (kw_prefix(p, ";UIDVALIDITY=")) {
			p += 13;
			if (url_num(&p, UINT32_MAX, &uidvalidity) < 0 || uidvalidity == 0)
				return -1;
		}
		if (*p != '/')
			return -1;
		p++;
	}
	if (!kw_prefix(p, ";UID="))
		return -1;
	p += 5;
	if (url_num(&p, UINT32_MAX, &uid) < 0 || uid == 0)
		return -1;
	if (kw_prefix(p, "/;SECTION=")) {
		const char *e;

		p += 10;
		e = p;
		while (*e != '\0' && !(e[0] == '/' && e[1] == ';'))
			e++;
		sect_txt = pct_decode(a, p, (size_t)(e - p));
		if (sect_txt == NULL)
			return -1;
		p = e;
	}
	if (kw_prefix(p, "/;PARTIAL=")) {
		p += 10;
		if (url_num(&p, INT64_MAX, &p_off) < 0)
			return -1;
		if (*p == '.') {
			p++;
			if (url_num(&p, INT64_MAX, &p_len) < 0 || p_len == 0)
				return -1;
		}
		partial = true;
	}
	if (*p != '\0')
		return -1;
	if (uidvalidity != 0) {
		struct collection *c;

		if (collection_get(db, a, owner, coll, &c) <= 0 || c->uidvalidity != uidvalidity)
			return -1;
	}
	{
		uint32_t u = (uint32_t)uid;
		const struct mime_part *root = NULL;
		struct fetch_section sect;
		const uint8_t *bytes;
		size_t n;
		struct bu_buf tmp;

		memset(&sect, 0, sizeof(sect));
		sect.path = (char *)"";
		if (sect_txt != NULL &&
		    imap_fetch_section_parse(a, sect_txt, strlen(sect_txt), false, &sect) < 0)
			return -1;
		ret = ms_fetch(db, a, s->user_id, owner, coll, &u, 1,
			       MSF_RAW | (sect_txt != NULL ? MSF_STRUCTURE : 0), &f, &nf);
		if (ret == MS_NOPERM || ret == MS_NOTFOUND)
			return -1;
		if (ret < 0)
			return ret;
		if (nf != 1)
			return -1;
		if (sect_txt != NULL) {
			root = mime_deserialize(a, f->structure, f->structure_len);
			if (root == NULL)
				root = mime_parse(a, f->raw, f->raw_len);
		}
		bu_buf_init(&tmp, 0);
		if (!imap_section_bytes(root, f->raw, f->raw_len, &sect, &tmp, &bytes, &n)) {
			bu_buf_deinit(&tmp);
			return -1;
		}
		if (partial) {
			if (p_off >= n) {
				n = 0;
			} else {
				bytes += p_off;
				n -= (size_t)p_off;
				if (p_len > 0 && n > p_len)
					n = (size_t)p_len;
			}
		}
		ret = bu_buf_append(out, bytes, n);
		bu_buf_deinit(&tmp);
		return ret < 0 ? MS_TOOBIG : 0;
	}
}

/* Build the CATENATE messages. 1 ok; 0 when a tagged NO was written. */
static int build_catenate(struct imap_cmd *cmd, struct bu_db *db, struct append_req *r)
{
	const struct bu_config *cfg = imap_sess_of(cmd->s)->cfg;
	size_t max = cfg->max_literal > 0 ? (size_t)cfg->max_literal : 0, i, k;

	for (i = 0; i < r->n_msgs; i++) {
		struct append_msg *m = &r->msgs[i];
		struct bu_buf b;

		if (m->parts == NULL)
			continue;
		bu_buf_init(&b, max);
		for (k = 0; k < m->n_parts; k++) {
			const struct cat_part *p = &m->parts[k];
			int ret;

			if (!p->url) {
				ret = bu_buf_append(&b, p->data, p->len) < 0 ? MS_TOOBIG : 0;
			} else {
				ret = url_fetch(cmd, db, p->data, &b);
				if (ret == -1) {
					struct bu_buf code;

					bu_buf_deinit(&b);
					bu_buf_init(&code, 0);
					imap_write_string(&code, p->data, p->len);
					imap_reply_no(cmd, "[BADURL %s] CATENATE URL cannot be "
						      "resolved", bu_buf_cstr(&code));
					bu_buf_deinit(&code);
					return 0;
				}
			}
			if (ret < 0) {
				bu_buf_deinit(&b);
				imap_reply_ms_err(cmd, ret, NULL);
				return 0;
			}
		}
		m->len = b.len;
		m->data = bu_arena_memdup(cmd->a, b.data != NULL ? b.data : (const uint8_t *)"",
					  b.len + 1);
		bu_buf_deinit(&b);
	}
	return 1;
}

/* ---- APPEND ------------------------------------------------------------ */

/* Store the messages; 1 ok (uids_r, *uidvalidity_r), 0 when the tagged
 * NO was written. */
static int do_append(struct imap_cmd *cmd, struct bu_db *db, struct append_req *r,
		     uint32_t **uids_r, uint32_t *uidvalidity_r, int64_t *owner_r,
		     int64_t *coll_r)
{
	struct imap_session *s = cmd->s;
	struct ms_append *v;
	uint32_t *uids;
	size_t i;
	int ret;

	if (!imap_target_resolve(cmd, db, r->target, owner_r, coll_r))
		return 0;
	if (!build_catenate(cmd, db, r))
		return 0;
	v = bu_arena_alloc(cmd->a, r->n_msgs * sizeof(*v));
	uids = bu_arena_alloc(cmd->a, r->n_msgs * sizeof(*uids));
	for (i = 0; i < r->n_msgs; i++) {
		/* as Dovecot: a message of no bytes is no message (and no
		 * client sends one on purpose) */
		if (r->msgs[i].len == 0) {
			imap_reply_no(cmd, "Cannot store an empty message");
			return 0;
		}
		v[i].data = r->msgs[i].data;
		v[i].len = r->msgs[i].len;
		v[i].flags = r->msgs[i].flags;
		v[i].keywords = (const char *const *)r->msgs[i].keywords;
		v[i].internaldate = r->msgs[i].internaldate;
	}
	ret = ms_append(db, s->user_id, *owner_r, *coll_r, v, r->n_msgs, uidvalidity_r, uids);
	if (ret < 0) {
		if (ret == MS_NOTFOUND)
			imap_reply_no(cmd, "[TRYCREATE] Mailbox does not exist");
		else
			imap_reply_ms_err(cmd, ret, NULL);
		return 0;
	}
	*uids_r = uids;
	return 1;
}

static void append_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct append_req *r = cmd->priv;
	uint32_t *uids, uidvalidity = 0;
	int64_t owner, coll;
	struct bu_buf set;

	if (!do_append(cmd, db, r, &uids, &uidvalidity, &owner, &coll))
		return;
	bu_buf_init(&set, 0);
	/* UIDs of one append are consecutive and ascending */
	imap_seqset_write(&set, uids, r->n_msgs);
	imap_reply_ok(cmd, "[APPENDUID %u %s] Append completed", uidvalidity, bu_buf_cstr(&set));
	bu_buf_deinit(&set);
}

void imap_cmd_append(struct imap_cmd *cmd)
{
	struct append_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	const char *err;

	if (cmd->n_args < 2) {
		imap_reply_bad(cmd, "APPEND needs a mailbox and a message");
		return;
	}
	r->target = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (r->target == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	err = parse_messages(cmd, 1, r, false);
	if (err != NULL) {
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, append_run);
}

/* ---- REPLACE (RFC 8508) -------------------------------------------------- */

static void replace_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct append_req *r = cmd->priv;
	uint32_t *uids, uidvalidity = 0, *gone;
	struct ms_store_result sr;
	size_t n_gone = 0;
	int64_t owner, coll;
	int ret;

	if (mb == NULL) {
		imap_reply_bad(cmd, "No mailbox selected");
		return;
	}
	if (imap_mailbox_seq(mb, r->replace_uid) == 0) {
		imap_reply_no(cmd, "[NONEXISTENT] Message to replace does not exist");
		return;
	}
	if (!do_append(cmd, db, r, &uids, &uidvalidity, &owner, &coll))
		return;
	imap_untagged(cmd, "OK [APPENDUID %u %u] Replacement message ready", uidvalidity, uids[0]);
	/* the old message goes as with MOVE: flagged and expunged alone */
	ret = ms_store(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id, &r->replace_uid, 1,
		       MS_STORE_ADD, MF_DELETED, NULL, -1, &sr);
	if (ret >= 0)
		ret = ms_expunge(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id,
				 &r->replace_uid, 1, &gone, &n_gone);
	if (ret < 0) {
		bu_warn("event=imap_replace_expunge_failed err=%d", ret);
		imap_reply_no(cmd, "[EXPUNGEISSUED] The new message was stored but the old one "
			      "could not be removed");
		return;
	}
	imap_mailbox_expunged(cmd, gone, n_gone);
	imap_reply_ok(cmd, "Replace completed");
}

void imap_cmd_replace(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct append_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	const char *err;
	uint64_t v;

	if (cmd->n_args < 3 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    bu_parse_u64(cmd->args[0].str, cmd->args[0].len, UINT32_MAX, &v) < 0 || v == 0) {
		imap_reply_bad(cmd, "REPLACE needs a message number, a mailbox and a message");
		return;
	}
	if (cmd->uid) {
		r->replace_uid = (uint32_t)v;
	} else {
		if (v > mb->n) {
			imap_reply_bad(cmd, "Invalid message sequence number");
			return;
		}
		r->replace_uid = mb->uids[v - 1];
	}
	r->replace = true;
	r->target = imap_mailbox_name_in(s, cmd->a, &cmd->args[1]);
	if (r->target == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	err = parse_messages(cmd, 2, r, true);
	if (err != NULL) {
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	if (mb->readonly) {
		imap_reply_no(cmd, "Mailbox is read-only");
		return;
	}
	/* RFC 8508 3.3: the rights of MOVE on the selected mailbox */
	if ((mb->rights & (ACL_DELETE_MSG | ACL_EXPUNGE)) != (ACL_DELETE_MSG | ACL_EXPUNGE)) {
		imap_reply_no(cmd, "[NOPERM] Permission denied");
		return;
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, replace_run);
}

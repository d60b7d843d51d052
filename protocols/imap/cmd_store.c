/*
 * cmd_store.c - STORE and UID STORE (RFC 3501 6.4.6, RFC 9051 6.4.6) with
 * .SILENT, and the CONDSTORE UNCHANGEDSINCE modifier (RFC 7162 3.1.3):
 * messages changed since the given mod-sequence are left alone and named
 * in "OK [MODIFIED set]"; under CONDSTORE every FETCH response carries
 * MODSEQ, and .SILENT still reports the new MODSEQ (RFC 7162 3.1.3,
 * example 3).
 *
 * Rights (RFC 4314 4): \Seen needs s, \Deleted t, other flags and keywords
 * w; flags the user may not change are skipped silently and STORE fails
 * with NO [NOPERM] only when none of the named flags may be changed. A
 * read-only mailbox (EXAMINE) refuses STORE with NO.
 *
 * Also here: the helper that keeps the session's own flag changes from
 * being reported twice (once as the STORE's reply, once more by the
 * framework's sync of changes "by others").
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch.h"
#include "groupware/acl.h"
#include "groupware/mailstore.h"
#include "server/core/db.h"
#include "server/core/log.h"

bool imap_uid_in(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] == uid)
			return true;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* before and v (STORE 1:* writes one line per message: no printf) */
static void put_u64(struct bu_buf *out, const char *before, uint64_t v)
{
	char d[20];
	size_t n = bu_u64_dec(v, d);

	bu_buf_append_str(out, before);
	bu_buf_append(out, d, n);
}

void imap_write_flags_fetch(struct imap_cmd *cmd, uint32_t seq, const struct ms_msg *m,
			    bool with_flags, bool with_uid)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct bu_buf *out = &cmd->out;
	bool sp = false;

	put_u64(out, "* ", seq);
	bu_buf_append_str(out, " FETCH (");
	if (with_uid) {
		put_u64(out, "UID ", m->uid);
		sp = true;
	}
	if (with_flags) {
		bu_buf_append_str(out, sp ? " FLAGS " : "FLAGS ");
		imap_write_flags(out, m->flags & ~(uint32_t)MF_RECENT, m->keywords,
				 !s->imap4rev2 && mb != NULL &&
				 imap_uid_in(mb->recent, mb->n_recent, m->uid));
		sp = true;
	}
	if (s->condstore) {
		put_u64(out, sp ? " MODSEQ (" : "MODSEQ (", (uint64_t)m->modseq);
		bu_buf_append_byte(out, ')');
		sp = true;
	}
	bu_buf_append_str(out, ")\r\n");
}

/* ---- not reporting our own changes twice ----------------------------- */

static const struct ms_msg *mine_find(const struct ms_msg *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].uid == uid)
			return &v[mid];
		if (v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool kw_known(char *const *list, const char *kw)
{
	for (; list != NULL && *list != NULL; list++) {
		if (strcasecmp(*list, kw) == 0)
			return true;
	}
	return false;
}

/* New keywords in the mailbox: "* FLAGS" and PERMANENTFLAGS now, before
 * the FETCH responses that carry them (RFC 3501 7.2.6). */
static void announce_keywords(struct imap_cmd *cmd, char *const *kw)
{
	struct imap_mailbox *mb = cmd->s->sel;
	struct bu_buf *out = &cmd->out;
	size_t n_old = 0, n_new = 0, i;
	char **nk;

	while (mb->keywords != NULL && mb->keywords[n_old] != NULL)
		n_old++;
	for (i = 0; kw != NULL && kw[i] != NULL; i++) {
		if (!kw_known(mb->keywords, kw[i]))
			n_new++;
	}
	if (n_new == 0)
		return;
	nk = bu_arena_alloc(mb->arena, (n_old + n_new + 1) * sizeof(*nk));
	for (i = 0; i < n_old; i++)
		nk[i] = mb->keywords[i];
	for (i = 0; kw[i] != NULL; i++) {
		if (!kw_known(nk, kw[i]))
			nk[n_old++] = bu_arena_strdup(mb->arena, kw[i]);
	}
	nk[n_old] = NULL;
	mb->keywords = nk;
	bu_buf_append_str(out, "* FLAGS ");
	imap_write_flags(out, MF_ANSWERED | MF_FLAGGED | MF_DELETED | MF_SEEN | MF_DRAFT,
			 mb->keywords, false);
	bu_buf_append_str(out, "\r\n* OK [PERMANENTFLAGS ");
	imap_write_permanentflags(out, mb->keywords, mb->rights, mb->readonly);
	bu_buf_append_str(out, "] Flags permitted\r\n");
}

static int msg_uid_cmp(const void *a, const void *b)
{
	const struct ms_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid ? 1 : 0;
}

void imap_absorb_own_changes(struct imap_cmd *cmd, struct bu_db *db,
			     const struct ms_msg *mine, size_t n_mine)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct ms_changes ch;
	struct ms_msg *sorted;
	uint64_t gen;
	size_t i;

	if (mb == NULL || n_mine == 0)
		return;
	/* loaded before the snapshot: see sync_mailbox() in session.c */
	gen = bu_changes_gen(mb->owner_id);
	if (ms_mailbox_changes(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id,
			       mb->highestmodseq, &ch) < 0)
		return;
	if (ch.uidvalidity != mb->uidvalidity)
		return;
	announce_keywords(cmd, ch.keywords);
	/* tombstones of messages we still show: the sync must report them */
	for (i = 0; i < ch.n_expunged; i++) {
		if (imap_mailbox_seq(mb, ch.expunged[i]) != 0)
			return;
	}
	sorted = bu_arena_memdup(cmd->a, mine, n_mine * sizeof(*mine));
	qsort(sorted, n_mine, sizeof(*sorted), msg_uid_cmp);
	for (i = 0; i < ch.n_changed; i++) {
		const struct ms_msg *c = &ch.changed[i];
		const struct ms_msg *m;

		if (imap_mailbox_seq(mb, c->uid) == 0)
			return;         /* a new message: EXISTS is due */
		m = mine_find(sorted, n_mine, c->uid);
		if (m == NULL || m->modseq != c->modseq)
			return;         /* changed by someone else */
	}
	if (ch.highestmodseq > mb->highestmodseq)
		mb->highestmodseq = ch.highestmodseq;
	if (ch.uidnext > mb->uidnext)
		mb->uidnext = ch.uidnext;
	/* everything up to that snapshot is ours and reported: the sync
	 * after the command has nothing to add unless more changes come */
	imap_sess_of(s)->gen = gen;
	imap_sess_of(s)->gen_valid = true;
}

/* ---- STORE ------------------------------------------------------------- */

struct store_req {
	uint32_t *uids;
	size_t n_uids;
	enum ms_store_mode mode;
	bool silent;
	uint32_t flags;
	char **keywords;
	int64_t unchangedsince;     /* -1 = none */
};

static void store_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct store_req *r = cmd->priv;
	struct imap_sess *x = imap_sess_of(s);
	struct ms_store_result res;
	uint64_t gen_before;
	size_t i;
	int ret;

	if (mb == NULL) {
		imap_reply_bad(cmd, "No mailbox selected");
		return;
	}
	gen_before = bu_changes_gen(mb->owner_id);
	ret = ms_store(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id, r->uids,
		       r->n_uids, r->mode, r->flags, (const char *const *)r->keywords,
		       r->unchangedsince, &res);
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	if (res.n_changed > 0 && (r->keywords == NULL || r->keywords[0] == NULL) &&
	    res.changed[0].modseq == mb->highestmodseq + 1) {
		/* the account's modseq moved from what we last saw straight to
		 * ours: nothing else happened in between, and what ms_store
		 * returned is all there is to absorb (no query) */
		mb->highestmodseq = res.changed[0].modseq;
		if (x->gen_valid && x->gen == gen_before &&
		    bu_changes_gen(mb->owner_id) == gen_before + 1)
			x->gen = gen_before + 1;
	} else {
		/* first, so that new keywords are announced before they are used */
		imap_absorb_own_changes(cmd, db, res.changed, res.n_changed);
	}
	for (i = 0; i < res.n_changed; i++) {
		const struct ms_msg *m = &res.changed[i];
		uint32_t seq = imap_mailbox_seq(mb, m->uid);

		if (seq == 0)
			continue;
		if (r->silent && !s->condstore)
			continue;
		imap_write_flags_fetch(cmd, seq, m, !r->silent,
				       cmd->uid || cmd->s->condstore);   /* RFC 7162 3.1 */
	}
	if (res.n_modified > 0) {
		uint32_t *set = bu_arena_alloc(cmd->a, res.n_modified * sizeof(uint32_t));
		size_t n = 0;
		struct bu_buf b;

		/* STORE: message sequence numbers; UID STORE: UIDs */
		for (i = 0; i < res.n_modified; i++) {
			uint32_t v = cmd->uid ? res.modified[i] :
					 imap_mailbox_seq(mb, res.modified[i]);

			if (v != 0)
				set[n++] = v;
		}
		bu_buf_init(&b, 0);
		imap_seqset_write(&b, set, n);
		imap_reply_ok(cmd, "[MODIFIED %s] Conditional STORE failed", bu_buf_cstr(&b));
		bu_buf_deinit(&b);
		return;
	}
	imap_reply_ok(cmd, "Store completed");
}

void imap_cmd_store(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct store_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	const struct imap_arg *item, *vals;
	struct imap_arg list;
	size_t ai = 1, n_vals;
	const char *name;
	size_t nl;

	r->unchangedsince = -1;
	if (cmd->n_args < 3 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_reply_bad(cmd, "STORE needs a sequence set, an item and flags");
		return;
	}
	/* RFC 7162: store-modifiers "(UNCHANGEDSINCE n)" */
	if (cmd->args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &cmd->args[1];
		size_t i;

		for (i = 0; i < m->n_list; i++) {
			uint64_t v;

			const struct imap_arg *nx = i + 1 < m->n_list ? &m->list[i + 1] : NULL;

			if (imap_arg_atom_eq(&m->list[i], "UNCHANGEDSINCE") && nx != NULL &&
			    nx->type == IMAP_ARG_ATOM &&
			    bu_parse_u64(nx->str, nx->len, INT64_MAX, &v) == 0) {
				r->unchangedsince = (int64_t)v;
				i++;
				continue;
			}
			imap_reply_bad(cmd, "Invalid STORE modifier");
			return;
		}
		if (m->n_list == 0) {
			imap_reply_bad(cmd, "Invalid STORE modifier");
			return;
		}
		ai = 2;
	}
	if (cmd->n_args < ai + 2) {
		imap_reply_bad(cmd, "STORE needs an item and flags");
		return;
	}
	item = &cmd->args[ai];
	if (item->type != IMAP_ARG_ATOM) {
		imap_reply_bad(cmd, "Invalid STORE item");
		return;
	}
	name = item->str;
	nl = item->len;
	if (*name == '+') {
		r->mode = MS_STORE_ADD;
		name++, nl--;
	} else if (*name == '-') {
		r->mode = MS_STORE_REMOVE;
		name++, nl--;
	} else {
		r->mode = MS_STORE_REPLACE;
	}
	if (nl == 12 && strncasecmp(name, "FLAGS.SILENT", 12) == 0) {
		r->silent = true;
	} else if (!(nl == 5 && strncasecmp(name, "FLAGS", 5) == 0)) {
		imap_reply_bad(cmd, "Unknown STORE item (FLAGS, +FLAGS or -FLAGS)");
		return;
	}
	/* flag-list, or flags without parentheses (RFC 3501 9: store-att-flags) */
	vals = &cmd->args[ai + 1];
	n_vals = cmd->n_args - ai - 1;
	if (n_vals > 1 || vals->type != IMAP_ARG_LIST) {
		size_t i;

		for (i = 0; i < n_vals; i++) {
			if (vals[i].type != IMAP_ARG_ATOM) {
				imap_reply_bad(cmd, "Invalid flag list");
				return;
			}
		}
		memset(&list, 0, sizeof(list));
		list.type = IMAP_ARG_LIST;
		list.list = (struct imap_arg *)vals;
		list.n_list = n_vals;
		vals = &list;
	}
	if (imap_parse_flags(cmd->a, vals, &r->flags, &r->keywords) < 0) {
		imap_reply_bad(cmd, "Invalid flag in list");
		return;
	}
	if (imap_mailbox_set_uids(cmd, cmd->args[0].str, cmd->uid, &r->uids, &r->n_uids) < 0) {
		imap_reply_bad(cmd, "Invalid sequence set");
		return;
	}
	if (mb->readonly) {
		imap_reply_no(cmd, "Mailbox is read-only");
		return;
	}
	if (r->unchangedsince >= 0)
		s->condstore = true;    /* RFC 7162 3.1: a CONDSTORE enabling command */
	cmd->priv = r;
	imap_cmd_submit(cmd, store_run);
}

/*
 * cmd_select.c - the selected mailbox: SELECT, EXAMINE (RFC 3501 6.3.1-2,
 * CONDSTORE/QRESYNC parameters RFC 7162 3.1.8, 3.2.5), UNSELECT (RFC
 * 3691), CLOSE (6.4.2), and the session's view of the mailbox: the
 * sequence-number map, sequence sets, and the untagged updates for changes
 * made by others (EXISTS, RECENT, FETCH FLAGS [MODSEQ], EXPUNGE or
 * VANISHED).
 *
 * \Recent: the store keeps no per-session recent state. We report 0 RECENT
 * at SELECT and flag as \Recent the messages that arrive while this
 * session has the mailbox selected (RFC 3501 allows a server that cannot
 * tell to report none; RFC 9051 dropped \Recent, so an IMAP4rev2 session
 * gets no RECENT responses at all).
 *
 * Expunges by others are held back while a FETCH, STORE, SEARCH, SORT or
 * THREAD by sequence number runs (RFC 3501 7.4.1) and reported after the
 * next command that allows them; until then the messages keep their
 * sequence numbers.
 *
 * MAILBOXID (RFC 8474) is "F" and the collection id, which survives
 * renames.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "groupware/acl.h"
#include "groupware/mailstore.h"
#include "imap_int.h"
#include "server/core/log.h"

/* ---- sequence map ------------------------------------------------------- */

uint32_t imap_mailbox_seq(const struct imap_mailbox *mb, uint32_t uid)
{
	size_t lo = 0, hi = mb->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mb->uids[mid] == uid)
			return (uint32_t)(mid + 1);
		if (mb->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static bool sorted_has(const uint32_t *v, size_t n, uint32_t uid)
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

static void map_append(struct imap_mailbox *mb, uint32_t uid)
{
	if (mb->n == mb->cap) {
		size_t ncap = mb->cap ? bu_size_mul(mb->cap, 2) : 64;
		uint32_t *nv = bu_arena_alloc(mb->arena, bu_size_mul(ncap, sizeof(*nv)));

		if (mb->n > 0)
			memcpy(nv, mb->uids, mb->n * sizeof(*nv));
		mb->uids = nv;
		mb->cap = ncap;
	}
	mb->uids[mb->n++] = uid;
}

static void recent_add(struct imap_sess *x, struct imap_mailbox *mb, uint32_t uid)
{
	if (mb->n_recent == x->recent_cap) {
		size_t ncap = x->recent_cap ? bu_size_mul(x->recent_cap, 2) : 16;
		uint32_t *nv = bu_arena_alloc(mb->arena, bu_size_mul(ncap, sizeof(*nv)));

		if (mb->n_recent > 0)
			memcpy(nv, mb->recent, mb->n_recent * sizeof(*nv));
		mb->recent = nv;
		x->recent_cap = ncap;
	}
	mb->recent[mb->n_recent++] = uid;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* remove the members of sorted set del from sorted array v */
static size_t remove_sorted(uint32_t *v, size_t n, const uint32_t *del, size_t n_del)
{
	size_t i, o = 0, d = 0;

	for (i = 0; i < n; i++) {
		while (d < n_del && del[d] < v[i])
			d++;
		if (d < n_del && del[d] == v[i])
			continue;
		v[o++] = v[i];
	}
	return o;
}

void imap_mailbox_expunged(struct imap_cmd *cmd, const uint32_t *uids, size_t n)
{
	struct imap_session *s = cmd->s;
	struct imap_sess *x = imap_sess_of(s);
	struct imap_mailbox *mb = s->sel;
	uint32_t *del, *gone;
	size_t i, o = 0, d = 0, n_gone = 0, removed = 0;

	if (mb == NULL || n == 0)
		return;
	del = bu_arena_memdup(cmd->a, uids, n * sizeof(*uids));
	qsort(del, n, sizeof(*del), u32_cmp);
	gone = bu_arena_alloc(cmd->a, n * sizeof(*gone));
	for (i = 0; i < mb->n; i++) {
		uint32_t uid = mb->uids[i];

		while (d < n && del[d] < uid)
			d++;
		if (d < n && del[d] == uid) {
			if (!s->qresync)
				imap_untagged(cmd, "%zu EXPUNGE", i + 1 - removed);
			removed++;
			gone[n_gone++] = uid;
			continue;
		}
		mb->uids[o++] = uid;
	}
	mb->n = o;
	if (n_gone == 0)
		return;
	if (s->qresync) {
		bu_buf_append_str(&cmd->out, "* VANISHED ");
		imap_seqset_write(&cmd->out, gone, n_gone);
		bu_buf_append_str(&cmd->out, "\r\n");
	}
	mb->n_recent = remove_sorted(mb->recent, mb->n_recent, gone, n_gone);
	if (mb->searchres != NULL)
		mb->n_searchres = remove_sorted(mb->searchres, mb->n_searchres, gone, n_gone);
	if (x->n_held > 0)
		x->n_held = remove_sorted(x->held_expunges, x->n_held, gone, n_gone);
}

static void held_add(struct imap_sess *x, const uint32_t *uids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (sorted_has(x->held_expunges, x->n_held, uids[i]))
			continue;
		if (x->n_held == x->cap_held) {
			x->cap_held = x->cap_held ? x->cap_held * 2 : 16;
			x->held_expunges = bu_realloc(x->held_expunges,
						      bu_size_mul(x->cap_held, sizeof(uint32_t)));
		}
		x->held_expunges[x->n_held++] = uids[i];
	}
	if (x->n_held > 1)
		qsort(x->held_expunges, x->n_held, sizeof(uint32_t), u32_cmp);
}

/* index of the first UID >= v (after: > v) in the map */
static size_t uid_lower_bound(const struct imap_mailbox *mb, uint64_t v, bool after)
{
	size_t lo = 0, hi = mb->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mb->uids[mid] < v || (after && mb->uids[mid] == v))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int imap_mailbox_set_uids(struct imap_cmd *cmd, const char *set, bool uid, uint32_t **uids_r,
			  size_t *n_r)
{
	struct imap_mailbox *mb = cmd->s->sel;
	struct imap_range *r;
	size_t nr, i, k = 0, o = 0;
	uint32_t *out;

	*uids_r = NULL;
	*n_r = 0;
	if (mb == NULL || set == NULL)
		return -1;
	if (strcmp(set, "$") == 0) {
		/* RFC 5182: the saved result, as UIDs; those still here */
		out = bu_arena_alloc(cmd->a, (mb->n_searchres + 1) * sizeof(*out));
		for (i = 0; i < mb->n_searchres; i++) {
			if (imap_mailbox_seq(mb, mb->searchres[i]) != 0)
				out[o++] = mb->searchres[i];
		}
		*uids_r = out;
		*n_r = o;
		return 0;
	}
	if (uid) {
		uint32_t star = mb->n > 0 ? mb->uids[mb->n - 1] : 0;

		size_t total = 0;

		if (imap_seqset_ranges(cmd->a, set, star, &r, &nr) < 0)
			return -1;
		/* the ranges are sorted and disjoint: find each one's slice of
		 * the map by binary search (a UID FETCH of one message must not
		 * walk a big folder) */
		for (k = 0; k < nr; k++)
			total += uid_lower_bound(mb, r[k].hi, true) - uid_lower_bound(mb, r[k].lo, false);
		out = bu_arena_alloc(cmd->a, (total + 1) * sizeof(*out));
		for (k = 0; k < nr; k++) {
			size_t a = uid_lower_bound(mb, r[k].lo, false);
			size_t b = uid_lower_bound(mb, r[k].hi, true);

			for (i = a; i < b; i++)
				out[o++] = mb->uids[i];
		}
	} else {
		if (imap_seqset_ranges(cmd->a, set, (uint32_t)mb->n, &r, &nr) < 0)
			return -1;
		/* "1:*" in an empty mailbox is nothing rather than an error:
		 * clients send it before they know what EXISTS says */
		if (mb->n == 0 && strchr(set, '*') != NULL) {
			*uids_r = bu_arena_alloc(cmd->a, sizeof(uint32_t));
			return 0;
		}
		/* RFC 3501 9: a sequence number beyond EXISTS is an error;
		 * so is '*' in an empty mailbox */
		for (k = 0; k < nr; k++) {
			if (r[k].lo == 0 || r[k].hi > mb->n)
				return -1;
		}
		out = bu_arena_alloc(cmd->a, (mb->n + 1) * sizeof(*out));
		for (k = 0; k < nr; k++) {
			uint64_t q;

			for (q = r[k].lo; q <= r[k].hi; q++)
				out[o++] = mb->uids[q - 1];
		}
	}
	*uids_r = out;
	*n_r = o;
	return 0;
}

/* ---- reporting changes -------------------------------------------------- */

static bool kw_has(char *const *kw, const char *k)
{
	for (; kw != NULL && *kw != NULL; kw++) {
		if (strcasecmp(*kw, k) == 0)
			return true;
	}
	return false;
}

static void write_flags_lines(struct imap_cmd *cmd, const struct imap_mailbox *mb)
{
	struct bu_buf *out = &cmd->out;

	bu_buf_append_str(out, "* FLAGS ");
	imap_write_flags(out, MF_ANSWERED | MF_FLAGGED | MF_DELETED | MF_SEEN | MF_DRAFT,
			 mb->keywords, false);
	bu_buf_append_str(out, "\r\n* OK [PERMANENTFLAGS ");
	imap_write_permanentflags(out, mb->keywords, mb->rights, mb->readonly);
	bu_buf_append_str(out, "] Flags permitted\r\n");
}

/* Union new keywords into mb->keywords; true when some were new. */
static bool merge_keywords(struct imap_mailbox *mb, char *const *kw)
{
	size_t n_old = 0, n_new = 0, i;
	char **nk;

	while (mb->keywords != NULL && mb->keywords[n_old] != NULL)
		n_old++;
	for (i = 0; kw != NULL && kw[i] != NULL; i++) {
		if (!kw_has(mb->keywords, kw[i]))
			n_new++;
	}
	if (n_new == 0)
		return false;
	nk = bu_arena_alloc(mb->arena, (n_old + n_new + 1) * sizeof(*nk));
	for (i = 0; i < n_old; i++)
		nk[i] = mb->keywords[i];
	for (i = 0; kw[i] != NULL; i++) {
		if (!kw_has(nk, kw[i]))
			nk[n_old++] = bu_arena_strdup(mb->arena, kw[i]);
	}
	nk[n_old] = NULL;
	mb->keywords = nk;
	return true;
}

static void write_fetch_flags(struct imap_cmd *cmd, const struct imap_mailbox *mb, uint32_t seq,
			      const struct ms_msg *m)
{
	struct bu_buf *out = &cmd->out;

	bu_buf_printf(out, "* %u FETCH (UID %u FLAGS ", seq, m->uid);
	imap_write_flags(out, m->flags & ~(uint32_t)MF_RECENT, m->keywords,
			 !cmd->s->imap4rev2 && sorted_has(mb->recent, mb->n_recent, m->uid));
	if (cmd->s->condstore)
		bu_buf_printf(out, " MODSEQ (%" PRId64 ")", m->modseq);
	bu_buf_append_str(out, ")\r\n");
}

void imap_mailbox_sync(struct imap_cmd *cmd, struct bu_db *db, bool allow_expunge)
{
	struct imap_session *s = cmd->s;
	struct imap_sess *x = imap_sess_of(s);
	struct imap_mailbox *mb = s->sel;
	struct ms_changes ch;
	uint32_t *exp;
	size_t i, n_exp = 0, old_n, n_new = 0;
	int ret;

	x->synced = true;
	if (mb == NULL || x->mailbox_gone)
		return;
	ret = ms_mailbox_changes(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id,
				 mb->highestmodseq, &ch);
	if (ret == MS_NOTFOUND || ret == MS_NOPERM ||
	    (ret >= 0 && ch.uidvalidity != mb->uidvalidity)) {
		/* deleted, or our rights were taken away */
		imap_untagged(cmd, "BYE Selected mailbox was deleted, have to disconnect");
		x->mailbox_gone = true;
		x->close_after = true;
		return;
	}
	if (ret < 0) {
		bu_warn("event=imap_sync_failed err=%d", ret);
		x->sync_failed = true;
		return;
	}
	/* expunges: those in our map */
	exp = bu_arena_alloc(cmd->a, (ch.n_expunged + x->n_held + 1) * sizeof(*exp));
	for (i = 0; i < ch.n_expunged; i++) {
		if (imap_mailbox_seq(mb, ch.expunged[i]) != 0)
			exp[n_exp++] = ch.expunged[i];
	}
	if (!allow_expunge) {
		held_add(x, exp, n_exp);
	} else {
		if (x->n_held > 0)
			memcpy(exp + n_exp, x->held_expunges, x->n_held * sizeof(*exp));
		n_exp += x->n_held;
		x->n_held = 0;
		if (n_exp > 0)
			imap_mailbox_expunged(cmd, exp, n_exp);
	}
	/* keywords */
	if (merge_keywords(mb, ch.keywords))
		write_flags_lines(cmd, mb);
	/* new messages (ascending UIDs above everything we know) */
	old_n = mb->n;
	for (i = 0; i < ch.n_changed; i++) {
		uint32_t uid = ch.changed[i].uid;

		if (imap_mailbox_seq(mb, uid) != 0)
			continue;
		if (sorted_has(ch.expunged, ch.n_expunged, uid))
			continue;
		if (mb->n > 0 && uid < mb->uids[mb->n - 1]) {
			/* cannot happen with increasing UIDs; never break the map */
			bu_warn("event=imap_sync_uid_order uid=%u", uid);
			continue;
		}
		map_append(mb, uid);
		recent_add(x, mb, uid);
		n_new++;
	}
	if (n_new > 0) {
		const struct fetch_req *nf = imap_notify_new_fetch(x);

		imap_untagged(cmd, "%zu EXISTS", mb->n);
		if (!s->imap4rev2)
			imap_untagged(cmd, "%zu RECENT", mb->n_recent);
		/* RFC 5465 5.2: what NOTIFY's MessageNew asked for */
		if (nf != NULL &&
		    imap_fetch_unsolicited(cmd, db, nf, mb->uids + old_n, mb->n - old_n) < 0)
			bu_warn("event=imap_notify_fetch_failed");
	}
	/* flag changes of messages the client already knows */
	for (i = 0; i < ch.n_changed; i++) {
		uint32_t seq = imap_mailbox_seq(mb, ch.changed[i].uid);

		if (seq == 0 || seq > old_n)
			continue;
		write_fetch_flags(cmd, mb, seq, &ch.changed[i]);
	}
	if (ch.highestmodseq > mb->highestmodseq)
		mb->highestmodseq = ch.highestmodseq;
	if (ch.uidnext > mb->uidnext)
		mb->uidnext = ch.uidnext;
}

/* ---- SELECT / EXAMINE ------------------------------------------------- */

void imap_mailbox_close(struct imap_session *s)
{
	struct imap_sess *x = imap_sess_of(s);

	if (s->sel != NULL) {
		/* the mailbox struct lives in its own arena */
		struct bu_arena *a = s->sel->arena;

		s->sel = NULL;
		bu_arena_destroy(&a);
	}
	x->n_held = 0;
	x->recent_cap = 0;
	x->mailbox_gone = false;
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
	x->watch_dirty = true;
}

struct select_req {
	char *name; /* UTF-8 */
	bool examine;
	bool condstore;
	bool qresync;
	uint32_t q_uidvalidity;
	int64_t q_modseq;
	const char *q_known; /* known-uids or NULL */
};

static int parse_u64_arg(const struct imap_arg *a, uint64_t max, uint64_t *v)
{
	if (a->type != IMAP_ARG_ATOM)
		return -1;
	return bu_parse_u64(a->str, a->len, max, v);
}

/* (CONDSTORE) / (QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])) */
static const char *parse_select_params(struct imap_cmd *cmd, const struct imap_arg *p,
				       struct select_req *r)
{
	size_t i;

	if (p->type != IMAP_ARG_LIST)
		return "SELECT parameters must be a list";
	for (i = 0; i < p->n_list; i++) {
		const struct imap_arg *a = &p->list[i];

		if (imap_arg_atom_eq(a, "CONDSTORE")) {
			r->condstore = true;
		} else if (imap_arg_atom_eq(a, "QRESYNC")) {
			const struct imap_arg *q;
			uint64_t v;

			if (!cmd->s->qresync)
				return "QRESYNC is not enabled";
			if (i + 1 >= p->n_list || p->list[i + 1].type != IMAP_ARG_LIST)
				return "QRESYNC needs a parameter list";
			q = &p->list[++i];
			if (q->n_list < 2 || q->n_list > 4)
				return "Invalid QRESYNC parameters";
			if (parse_u64_arg(&q->list[0], UINT32_MAX, &v) < 0 || v == 0)
				return "Invalid QRESYNC UIDVALIDITY";
			r->q_uidvalidity = (uint32_t)v;
			if (parse_u64_arg(&q->list[1], INT64_MAX, &v) < 0)
				return "Invalid QRESYNC mod-sequence";
			r->q_modseq = (int64_t)v;
			if (q->n_list >= 3) {
				const struct imap_arg *k = &q->list[2];
				struct imap_range *rg;
				size_t nrg;

				if (k->type == IMAP_ARG_LIST && q->n_list == 3) {
					/* (seq-match) without known-uids */
				} else if (k->type != IMAP_ARG_ATOM ||
					   imap_seqset_ranges(cmd->a, k->str, UINT32_MAX, &rg,
							      &nrg) < 0) {
					return "Invalid QRESYNC known UIDs";
				} else {
					r->q_known = k->str;
				}
			}
			if (q->n_list == 4 &&
			    (q->list[3].type != IMAP_ARG_LIST || q->list[3].n_list != 2))
				return "Invalid QRESYNC sequence match data";
			r->qresync = true;
		} else {
			return "Unknown SELECT parameter";
		}
	}
	return NULL;
}

static void qresync_report(struct imap_cmd *cmd, struct bu_db *db, const struct select_req *r)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct ms_changes ch;
	struct imap_range *known = NULL;
	size_t n_known = 0, i, k = 0, nv = 0;
	uint32_t *van;

	if (r->q_uidvalidity != mb->uidvalidity)
		return;
	if (ms_mailbox_changes(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id, r->q_modseq,
			       &ch) < 0)
		return;
	if (r->q_known != NULL)
		(void)imap_seqset_ranges(cmd->a, r->q_known, mb->uidnext ? mb->uidnext - 1 : 0,
					 &known, &n_known);
	van = bu_arena_alloc(cmd->a, (ch.n_expunged + 1) * sizeof(*van));
	for (i = 0; i < ch.n_expunged; i++) {
		uint32_t u = ch.expunged[i];

		if (imap_mailbox_seq(mb, u) != 0)
			continue; /* expunged and appended again cannot be */
		if (known != NULL) {
			while (k < n_known && known[k].hi < u)
				k++;
			if (k >= n_known || known[k].lo > u)
				continue;
		}
		van[nv++] = u;
	}
	if (nv > 0) {
		bu_buf_append_str(&cmd->out, "* VANISHED (EARLIER) ");
		imap_seqset_write(&cmd->out, van, nv);
		bu_buf_append_str(&cmd->out, "\r\n");
	}
	for (i = 0; i < ch.n_changed; i++) {
		uint32_t seq = imap_mailbox_seq(mb, ch.changed[i].uid);

		if (seq != 0)
			write_fetch_flags(cmd, mb, seq, &ch.changed[i]);
	}
}

static void select_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_sess *x = imap_sess_of(s);
	struct select_req *r = cmd->priv;
	struct imap_mailbox *mb;
	struct ms_mailbox *m;
	struct bu_arena *ma;
	int64_t owner, coll;
	uint32_t unseen = 0;
	size_t i;
	int ret;

	x->synced = true; /* nothing of the old mailbox is reported any more */
	if (s->sel != NULL) {
		imap_mailbox_close(s);
		imap_untagged(cmd, "OK [CLOSED] Previous mailbox closed");
	}
	ret = imap_mailbox_resolve(s, db, cmd->a, r->name, &owner, &coll, NULL);
	if (ret == 0 || ret == MS_NOPERM) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	ma = bu_arena_create(0);
	ret = ms_mailbox_open(db, ma, s->user_id, owner, coll, &m);
	if (ret < 0) {
		bu_arena_destroy(&ma);
		if (ret == MS_NOTFOUND)
			imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		else
			imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	mb = bu_arena_alloc(ma, sizeof(*mb));
	mb->arena = ma;
	mb->owner_id = owner;
	mb->collection_id = coll;
	mb->name = bu_arena_strdup(ma, r->name);
	mb->rights = m->rights;
	mb->readonly =
		r->examine ||
		!(m->rights & (ACL_SEEN | ACL_WRITE | ACL_INSERT | ACL_DELETE_MSG | ACL_EXPUNGE));
	mb->uidvalidity = m->uidvalidity;
	mb->uidnext = m->uidnext;
	mb->highestmodseq = m->highestmodseq;
	mb->keywords = m->keywords;
	mb->cap = m->n_msgs > 0 ? m->n_msgs : 16;
	mb->uids = bu_arena_alloc(ma, mb->cap * sizeof(*mb->uids));
	for (i = 0; i < m->n_msgs; i++) {
		mb->uids[i] = m->msgs[i].uid;
		if (unseen == 0 && !(m->msgs[i].flags & MF_SEEN))
			unseen = (uint32_t)(i + 1);
	}
	mb->n = m->n_msgs;
	x->n_held = 0;
	x->recent_cap = 0;
	x->mailbox_gone = false;
	s->sel = mb;
	s->state = IMAP_STATE_SELECTED;
	x->watch_dirty = true;
	if (r->condstore || r->qresync)
		s->condstore = true;

	write_flags_lines(cmd, mb);
	imap_untagged(cmd, "%zu EXISTS", mb->n);
	if (!s->imap4rev2) {
		imap_untagged(cmd, "0 RECENT");
		if (unseen != 0)
			imap_untagged(cmd, "OK [UNSEEN %u] First unseen", unseen);
	}
	imap_untagged(cmd, "OK [UIDVALIDITY %u] UIDs valid", mb->uidvalidity);
	imap_untagged(cmd, "OK [UIDNEXT %u] Predicted next UID", mb->uidnext);
	imap_untagged(cmd, "OK [HIGHESTMODSEQ %" PRId64 "] Highest", mb->highestmodseq);
	imap_untagged(cmd, "OK [MAILBOXID (F%" PRId64 ")] Ok", coll);
	if (s->imap4rev2) {
		/* RFC 9051 6.3.2: LIST is one of the required responses */
		bu_buf_append_str(&cmd->out, "* LIST () \"/\" ");
		imap_write_mailbox(s, &cmd->out, r->name);
		bu_buf_append_str(&cmd->out, "\r\n");
	}
	if (r->qresync)
		qresync_report(cmd, db, r);
	imap_reply_ok(cmd, "[%s] %s completed", mb->readonly ? "READ-ONLY" : "READ-WRITE",
		      r->examine ? "EXAMINE" : "SELECT");
}

static void select_common(struct imap_cmd *cmd, bool examine)
{
	struct select_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	const char *err;

	if (cmd->n_args < 1 || cmd->n_args > 2) {
		imap_reply_bad(cmd, "%s needs a mailbox name", cmd->name);
		return;
	}
	r->examine = examine;
	r->name = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (r->name == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	if (cmd->n_args == 2) {
		err = parse_select_params(cmd, &cmd->args[1], r);
		if (err != NULL) {
			imap_reply_bad(cmd, "%s", err);
			return;
		}
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, select_run);
}

void imap_cmd_select(struct imap_cmd *cmd)
{
	select_common(cmd, false);
}

void imap_cmd_examine(struct imap_cmd *cmd)
{
	select_common(cmd, true);
}

void imap_cmd_unselect(struct imap_cmd *cmd)
{
	if (cmd->n_args != 0) {
		imap_reply_bad(cmd, "UNSELECT takes no arguments");
		return;
	}
	imap_mailbox_close(cmd->s);
	imap_session_update_watch(imap_sess_of(cmd->s));
	imap_reply_ok(cmd, "Unselect completed");
}

static void close_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;

	/* RFC 3501 6.4.2: expunge silently when read-write and allowed */
	if (mb != NULL && !mb->readonly && (mb->rights & ACL_EXPUNGE)) {
		uint32_t *exp;
		size_t n;
		int ret = ms_expunge(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id, NULL,
				     0, &exp, &n);

		if (ret < 0 && ret != MS_NOPERM && ret != MS_NOTFOUND)
			bu_warn("event=imap_close_expunge_failed err=%d", ret);
	}
	imap_mailbox_close(s);
	imap_sess_of(s)->synced = true;
	imap_reply_ok(cmd, "Close completed");
}

void imap_cmd_close(struct imap_cmd *cmd)
{
	if (cmd->n_args != 0) {
		imap_reply_bad(cmd, "CLOSE takes no arguments");
		return;
	}
	imap_cmd_submit(cmd, close_run);
}

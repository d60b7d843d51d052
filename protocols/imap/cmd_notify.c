/*
 * cmd_notify.c - NOTIFY (RFC 5465): SET and NONE.
 *
 * Supported filters: SELECTED and SELECTED-DELAYED (the selected mailbox:
 * EXISTS/FETCH/EXPUNGE or VANISHED as soon as others change it, expunges
 * held back with -DELAYED until a command allows them), and for the
 * user's own mailboxes INBOXES, PERSONAL, SUBSCRIBED, SUBTREE and
 * MAILBOXES. Events: MessageNew, MessageExpunge, FlagChange (reported for
 * non-selected mailboxes as an untagged STATUS with MESSAGES, UIDNEXT,
 * UNSEEN and, with CONDSTORE, HIGHESTMODSEQ), MailboxName (LIST for a
 * created, renamed — with OLDNAME — or deleted mailbox, the last with
 * \NonExistent) and SubscriptionChange (LIST with or without
 * \Subscribed). AnnotationChange and the metadata events are refused with
 * [BADEVENT]. MessageNew's fetch attributes (RFC 5465 5.2) are sent for
 * new messages of the selected mailbox as a FETCH right after the EXISTS
 * (imap_mailbox_sync); a body item without .PEEK is served as .PEEK: a
 * notification never sets \Seen. For other mailboxes they are ignored.
 *
 * Mechanics: the session watches the user's account; every hub
 * notification adds the collection to a pending set (I/O thread), and a
 * sync task (session.c) takes the set and compares each collection with
 * what the client was last told. Mailboxes of other accounts are not
 * covered (one watched account per connection).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch.h"
#include "groupware/collection.h"
#include "groupware/mailstore.h"
#include "imap_int.h"
#include "server/core/log.h"

enum {
	NEV_NEW = 1 << 0,
	NEV_EXPUNGE = 1 << 1,
	NEV_FLAGS = 1 << 2,
	NEV_NAME = 1 << 3,
	NEV_SUBSCRIPTION = 1 << 4,
	NEV_MESSAGE = NEV_NEW | NEV_EXPUNGE | NEV_FLAGS,
};

enum nfilter { NF_INBOXES, NF_PERSONAL, NF_SUBSCRIBED, NF_SUBTREE, NF_MAILBOXES };

struct ngroup {
	enum nfilter filter;
	char **names;
	size_t n_names;
	unsigned events;
};

struct nbox {
	int64_t id;
	char *name;
	bool subscribed;
	bool have_status;
	uint32_t messages, uidnext, unseen;
	int64_t hms;
};

struct imap_notify_state {
	struct bu_arena *a;
	bool selected;
	bool selected_delayed;
	unsigned sel_events;
	struct ngroup *groups;
	size_t n_groups;
	struct fetch_req *new_fetch; /* SELECTED MessageNew's fetch-att, or NULL */
	bool status;
	struct nbox *boxes; /* heap */
	size_t n_boxes, cap_boxes;
	int64_t *pending; /* heap; I/O thread */
	size_t n_pending, cap_pending;
	bool pending_all;
	int64_t *work; /* heap; the task's */
	size_t n_work;
	bool work_all;
};

static void state_free(struct imap_notify_state **np)
{
	struct imap_notify_state *n = *np;

	if (n == NULL)
		return;
	free(n->boxes);
	free(n->pending);
	free(n->work);
	bu_arena_destroy(&n->a);
	free(n);
	*np = NULL;
}

void imap_notify_free(struct imap_sess *x)
{
	state_free(&x->notify);
}

bool imap_notify_selected_delayed(const struct imap_sess *x)
{
	return x->notify != NULL && x->notify->selected_delayed;
}

const struct fetch_req *imap_notify_new_fetch(const struct imap_sess *x)
{
	const struct imap_notify_state *n = x->notify;

	return n != NULL && n->selected && (n->sel_events & NEV_NEW) ? n->new_fetch : NULL;
}

bool imap_notify_selected(const struct imap_sess *x)
{
	return x->notify != NULL && x->notify->selected && x->notify->sel_events != 0;
}

void imap_notify_changed(struct imap_sess *x, int64_t account_id, int64_t collection_id)
{
	struct imap_notify_state *n = x->notify;
	size_t i;

	if (n == NULL || account_id != x->pub.user_id)
		return;
	if (collection_id == 0 || n->n_pending >= 256) {
		n->pending_all = true;
		return;
	}
	for (i = 0; i < n->n_pending; i++) {
		if (n->pending[i] == collection_id)
			return;
	}
	if (n->n_pending == n->cap_pending) {
		n->cap_pending = n->cap_pending ? n->cap_pending * 2 : 16;
		n->pending = bu_realloc(n->pending, n->cap_pending * sizeof(*n->pending));
	}
	n->pending[n->n_pending++] = collection_id;
}

bool imap_notify_pending(struct imap_sess *x)
{
	struct imap_notify_state *n = x->notify;

	if (n == NULL || (n->n_pending == 0 && !n->pending_all))
		return false;
	/* hand the set over to the task (no task is in flight now) */
	free(n->work);
	n->work = n->pending;
	n->n_work = n->n_pending;
	n->work_all = n->pending_all;
	n->pending = NULL;
	n->n_pending = 0;
	n->cap_pending = 0;
	n->pending_all = false;
	return true;
}

/* ---- matching and reporting (worker) ------------------------------------ */

static unsigned box_events(const struct imap_notify_state *n, const char *name, bool subscribed)
{
	unsigned ev = 0;
	size_t i, k;

	for (i = 0; i < n->n_groups; i++) {
		const struct ngroup *g = &n->groups[i];
		bool m = false;

		switch (g->filter) {
		case NF_INBOXES:
			m = strcmp(name, "INBOX") == 0;
			break;
		case NF_PERSONAL:
			m = true;
			break;
		case NF_SUBSCRIBED:
			m = subscribed;
			break;
		case NF_MAILBOXES:
			for (k = 0; k < g->n_names && !m; k++)
				m = strcmp(name, g->names[k]) == 0;
			break;
		case NF_SUBTREE:
			for (k = 0; k < g->n_names && !m; k++) {
				size_t l = strlen(g->names[k]);

				m = strncmp(name, g->names[k], l) == 0 &&
				    (name[l] == '\0' || name[l] == IMAP_SEP);
			}
			break;
		}
		if (m)
			ev |= g->events;
	}
	return ev;
}

static struct nbox *box_find(struct imap_notify_state *n, int64_t id)
{
	size_t i;

	for (i = 0; i < n->n_boxes; i++) {
		if (n->boxes[i].id == id)
			return &n->boxes[i];
	}
	return NULL;
}

static struct nbox *box_add(struct imap_notify_state *n, const struct collection *c)
{
	struct nbox *b;

	if (n->n_boxes == n->cap_boxes) {
		n->cap_boxes = n->cap_boxes ? n->cap_boxes * 2 : 32;
		n->boxes = bu_realloc(n->boxes, n->cap_boxes * sizeof(*n->boxes));
	}
	b = &n->boxes[n->n_boxes++];
	memset(b, 0, sizeof(*b));
	b->id = c->id;
	b->name = bu_arena_strdup(n->a, c->name);
	b->subscribed = c->subscribed;
	return b;
}

static bool is_selected(struct imap_cmd *cmd, int64_t id)
{
	const struct imap_mailbox *mb = cmd->s->sel;

	return mb != NULL && mb->owner_id == cmd->s->user_id && mb->collection_id == id;
}

/* STATUS when the counts moved since the client was last told */
static void box_status(struct imap_cmd *cmd, struct bu_db *db, struct imap_notify_state *n,
		       struct nbox *b, bool report)
{
	struct ms_status st;
	unsigned mask = IMAP_ST_MESSAGES | IMAP_ST_UIDNEXT | IMAP_ST_UNSEEN;

	if (ms_mailbox_status(db, cmd->s->user_id, cmd->s->user_id, b->id, &st) < 0)
		return;
	if (b->have_status && st.messages == b->messages && st.uidnext == b->uidnext &&
	    st.unseen == b->unseen && (st.highestmodseq == b->hms || !cmd->s->condstore)) {
		b->hms = st.highestmodseq;
		return;
	}
	if (report && b->have_status && !is_selected(cmd, b->id)) {
		if (cmd->s->condstore)
			mask |= IMAP_ST_HIGHESTMODSEQ;
		(void)imap_status_write(cmd, db, b->name, cmd->s->user_id, b->id, mask);
	}
	b->have_status = true;
	b->messages = st.messages;
	b->uidnext = st.uidnext;
	b->unseen = st.unseen;
	b->hms = st.highestmodseq;
}

static void list_line(struct imap_cmd *cmd, const char *attrs, const char *name,
		      const char *oldname)
{
	struct bu_buf *out = &cmd->out;

	bu_buf_printf(out, "* LIST (%s) \"/\" ", attrs);
	imap_write_mailbox(cmd->s, out, name);
	if (oldname != NULL) {
		bu_buf_append_str(out, " (\"OLDNAME\" (");
		imap_write_mailbox(cmd->s, out, oldname);
		bu_buf_append_str(out, "))");
	}
	bu_buf_append_str(out, "\r\n");
}

static void check_collection(struct imap_cmd *cmd, struct bu_db *db, struct imap_notify_state *n,
			     const struct collection *c, int64_t id)
{
	struct nbox *b = box_find(n, id);
	bool renamed = false;
	unsigned ev;

	if (c == NULL || c->kind != COLL_MAIL) {
		if (b == NULL)
			return;
		if (box_events(n, b->name, b->subscribed) & NEV_NAME)
			list_line(cmd, "\\NonExistent", b->name, NULL);
		*b = n->boxes[--n->n_boxes];
		return;
	}
	if (b == NULL) {
		b = box_add(n, c);
		ev = box_events(n, b->name, b->subscribed);
		if (ev & NEV_NAME)
			list_line(cmd,
				  c->subscribed && (ev & NEV_SUBSCRIPTION) ? "\\Subscribed" : "",
				  b->name, NULL);
		if (ev & NEV_MESSAGE)
			box_status(cmd, db, n, b, false);
		return;
	}
	if (strcmp(b->name, c->name) != 0) {
		char *old = b->name;

		b->name = bu_arena_strdup(n->a, c->name);
		if (box_events(n, b->name, b->subscribed) & NEV_NAME)
			list_line(cmd, "", b->name, old);
		renamed = true;
	}
	if (b->subscribed != c->subscribed) {
		b->subscribed = c->subscribed;
		if (box_events(n, b->name, true) & NEV_SUBSCRIPTION)
			list_line(cmd, c->subscribed ? "\\Subscribed" : "", b->name, NULL);
	}
	/* a rename bumps the folder's modseq: take the new counts quietly */
	ev = box_events(n, b->name, b->subscribed);
	if (ev & NEV_MESSAGE)
		box_status(cmd, db, n, b, !renamed);
}

void imap_notify_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_sess *x = imap_sess_of(cmd->s);
	struct imap_notify_state *n = x->notify;
	size_t i;

	if (n == NULL)
		return;
	if (n->work_all) {
		struct collection *cl;
		size_t ncl;
		int64_t *known;
		size_t n_known = n->n_boxes;

		if (collection_list(db, cmd->a, cmd->s->user_id, COLL_MAIL, &cl, &ncl) < 0)
			goto out;
		known = bu_arena_alloc(cmd->a, (n_known + 1) * sizeof(*known));
		for (i = 0; i < n_known; i++)
			known[i] = n->boxes[i].id;
		for (i = 0; i < ncl; i++)
			check_collection(cmd, db, n, &cl[i], cl[i].id);
		/* the known ones that are gone */
		for (i = 0; i < n_known; i++) {
			size_t k;
			bool found = false;

			for (k = 0; k < ncl && !found; k++)
				found = cl[k].id == known[i];
			if (!found)
				check_collection(cmd, db, n, NULL, known[i]);
		}
		goto out;
	}
	for (i = 0; i < n->n_work; i++) {
		struct collection *c = NULL;
		int ret = collection_get(db, cmd->a, cmd->s->user_id, n->work[i], &c);

		if (ret < 0)
			continue;
		check_collection(cmd, db, n, ret > 0 ? c : NULL, n->work[i]);
	}
out:
	n->n_work = 0;
	n->work_all = false;
}

/* ---- the command ---------------------------------------------------------- */

static int parse_events(const struct imap_arg *a, bool selected, unsigned *ev_r, const char **err_r,
			bool *badevent_r, const struct imap_arg **fetch_r)
{
	size_t i;
	unsigned ev = 0;

	*badevent_r = false;
	*fetch_r = NULL;
	if (imap_arg_atom_eq(a, "NONE")) {
		*ev_r = 0;
		return 0;
	}
	if (a->type != IMAP_ARG_LIST || a->n_list == 0) {
		*err_r = "Invalid event list";
		return -1;
	}
	for (i = 0; i < a->n_list; i++) {
		const struct imap_arg *e = &a->list[i];

		if (imap_arg_atom_eq(e, "MessageNew")) {
			ev |= NEV_NEW;
			if (i + 1 < a->n_list && a->list[i + 1].type == IMAP_ARG_LIST)
				*fetch_r = &a->list[++i];   /* see the file comment */
		} else if (imap_arg_atom_eq(e, "MessageExpunge")) {
			ev |= NEV_EXPUNGE;
		} else if (imap_arg_atom_eq(e, "FlagChange")) {
			ev |= NEV_FLAGS;
		} else if (imap_arg_atom_eq(e, "MailboxName") && !selected) {
			ev |= NEV_NAME;
		} else if (imap_arg_atom_eq(e, "SubscriptionChange") && !selected) {
			ev |= NEV_SUBSCRIPTION;
		} else if (e->type == IMAP_ARG_ATOM) {
			*badevent_r = true;
			return -1;
		} else {
			*err_r = "Invalid event";
			return -1;
		}
	}
	/* RFC 5465 5: MessageNew and MessageExpunge go together; FlagChange
	 * needs them */
	if (((ev & NEV_NEW) != 0) != ((ev & NEV_EXPUNGE) != 0) ||
	    ((ev & NEV_FLAGS) && !(ev & NEV_NEW))) {
		*err_r = "MessageNew and MessageExpunge must be given together";
		return -1;
	}
	*ev_r = ev;
	return 0;
}

static char **mailbox_names(struct imap_cmd *cmd, struct bu_arena *a, const struct imap_arg *arg,
			    size_t *n_r)
{
	const struct imap_arg *list = arg;
	size_t n = 1, i;
	char **names;

	if (arg->type == IMAP_ARG_LIST) {
		list = arg->list;
		n = arg->n_list;
	}
	if (n == 0)
		return NULL;
	names = bu_arena_alloc(a, n * sizeof(*names));
	for (i = 0; i < n; i++) {
		char *nm = imap_mailbox_name_in(cmd->s, a, &list[i]);

		if (nm == NULL)
			return NULL;
		names[i] = nm;
	}
	*n_r = n;
	return names;
}

static const char *parse_set(struct imap_cmd *cmd, struct imap_notify_state *n, bool *badevent)
{
	size_t i = 1;
	const char *err = "Invalid NOTIFY SET";

	*badevent = false;
	/* RFC 5465 8: status-indicator = SP "STATUS"; "(STATUS)" is
	 * accepted too */
	if (i < cmd->n_args && (imap_arg_atom_eq(&cmd->args[i], "STATUS") ||
				(cmd->args[i].type == IMAP_ARG_LIST && cmd->args[i].n_list == 1 &&
				 imap_arg_atom_eq(&cmd->args[i].list[0], "STATUS")))) {
		n->status = true;
		i++;
	}
	if (i >= cmd->n_args)
		return "NOTIFY SET needs event groups";
	n->groups = bu_arena_alloc(n->a, cmd->n_args * sizeof(*n->groups));
	for (; i < cmd->n_args; i++) {
		const struct imap_arg *g = &cmd->args[i];
		const struct imap_arg *f;
		unsigned ev;

		if (g->type != IMAP_ARG_LIST || g->n_list < 2)
			return "Invalid event group";
		f = &g->list[0];
		if (imap_arg_atom_eq(f, "SELECTED") || imap_arg_atom_eq(f, "SELECTED-DELAYED")) {
			if (g->n_list != 2 || n->selected)
				return "Invalid SELECTED event group";
			const struct imap_arg *fa;

			if (parse_events(&g->list[1], true, &ev, &err, badevent, &fa) < 0)
				return err;
			if (fa != NULL) {
				n->new_fetch = bu_arena_alloc(n->a, sizeof(*n->new_fetch));
				if (imap_fetch_parse(n->a, fa, NULL, n->new_fetch, &err) < 0)
					return err;
				n->new_fetch->sets_seen = false;
			}
			n->selected = true;
			n->selected_delayed = imap_arg_atom_eq(f, "SELECTED-DELAYED");
			n->sel_events = ev;
			continue;
		}
		{
			struct ngroup *ng = &n->groups[n->n_groups];
			const struct imap_arg *evarg = &g->list[1];

			if (imap_arg_atom_eq(f, "INBOXES"))
				ng->filter = NF_INBOXES;
			else if (imap_arg_atom_eq(f, "PERSONAL"))
				ng->filter = NF_PERSONAL;
			else if (imap_arg_atom_eq(f, "SUBSCRIBED"))
				ng->filter = NF_SUBSCRIBED;
			else if (imap_arg_atom_eq(f, "SUBTREE") ||
				 imap_arg_atom_eq(f, "MAILBOXES")) {
				ng->filter =
					imap_arg_atom_eq(f, "SUBTREE") ? NF_SUBTREE : NF_MAILBOXES;
				if (g->n_list != 3)
					return "SUBTREE and MAILBOXES need mailbox names";
				ng->names = mailbox_names(cmd, n->a, &g->list[1], &ng->n_names);
				if (ng->names == NULL)
					return "Invalid mailbox name";
				evarg = &g->list[2];
			} else {
				return "Unknown NOTIFY filter";
			}
			if ((ng->filter != NF_SUBTREE && ng->filter != NF_MAILBOXES &&
			     g->n_list != 2))
				return "Invalid event group";
			const struct imap_arg *fa;

			if (parse_events(evarg, false, &ev, &err, badevent, &fa) < 0)
				return err;
			ng->events = ev;
			n->n_groups++;
		}
	}
	return NULL;
}

static void notify_after(struct imap_cmd *cmd)
{
	struct imap_sess *x = imap_sess_of(cmd->s);
	struct imap_notify_state *n = cmd->priv;

	if (x->result != 'O' || bu_conn_closing(cmd->s->conn)) {
		state_free(&n);
		return;
	}
	imap_notify_free(x);
	x->notify = n;
	cmd->s->notify_active = true;
	imap_session_update_watch(x);
}

static void notify_set_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_notify_state *n = cmd->priv;
	struct collection *cl;
	size_t ncl, i;

	imap_cmd_after(cmd, notify_after);
	if (collection_list(db, cmd->a, cmd->s->user_id, COLL_MAIL, &cl, &ncl) < 0) {
		imap_reply_ms_err(cmd, MS_ERR, NULL);
		return;
	}
	for (i = 0; i < ncl; i++) {
		struct nbox *b = box_add(n, &cl[i]);
		unsigned ev = box_events(n, b->name, b->subscribed);

		if (!(ev & NEV_MESSAGE))
			continue;
		box_status(cmd, db, n, b, false);
		if (n->status && !is_selected(cmd, b->id)) {
			unsigned mask = IMAP_ST_MESSAGES | IMAP_ST_UIDNEXT | IMAP_ST_UNSEEN;

			if (cmd->s->condstore)
				mask |= IMAP_ST_HIGHESTMODSEQ;
			(void)imap_status_write(cmd, db, b->name, cmd->s->user_id, b->id, mask);
		}
	}
	imap_reply_ok(cmd, "NOTIFY completed");
}

void imap_cmd_notify(struct imap_cmd *cmd)
{
	struct imap_sess *x = imap_sess_of(cmd->s);
	struct imap_notify_state *n;
	const char *err;
	bool badevent;

	if (cmd->n_args == 1 && imap_arg_atom_eq(&cmd->args[0], "NONE")) {
		imap_notify_free(x);
		cmd->s->notify_active = false;
		imap_session_update_watch(x);
		imap_reply_ok(cmd, "NOTIFY completed");
		return;
	}
	if (cmd->n_args < 2 || !imap_arg_atom_eq(&cmd->args[0], "SET")) {
		imap_reply_bad(cmd, "NOTIFY needs SET or NONE");
		return;
	}
	n = bu_malloc(sizeof(*n));
	n->a = bu_arena_create(0);
	err = parse_set(cmd, n, &badevent);
	if (badevent) {
		state_free(&n);
		imap_reply_no(cmd, "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName "
				   "SubscriptionChange)] Event not supported");
		return;
	}
	if (err != NULL) {
		state_free(&n);
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	cmd->priv = n;
	imap_cmd_submit(cmd, notify_set_run);
}

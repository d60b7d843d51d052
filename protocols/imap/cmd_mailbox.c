/*
 * cmd_mailbox.c - CREATE (RFC 3501 6.3.3, USE RFC 6154), DELETE (6.3.4),
 * RENAME (6.3.5), SUBSCRIBE and UNSUBSCRIBE (6.3.6-7).
 *
 * Personal folders are the user's mail collections. In another account
 * ("Other Users/<addr>/..." or "Shared/<addr>/...") the RFC 4314 rights
 * decide: k on the parent (or on the account for a top-level folder) to
 * create, x to delete or rename away, k on the new parent to rename into.
 * A folder created there inherits its parent's ACL (RFC 4314 section 3
 * leaves the choice to the server; inheriting is what users expect).
 *
 * Superiors: CREATE "a/b/c" makes "a" and "a/b" too (the collection layer
 * does it). DELETE of a folder with children leaves the children; the name
 * lives on as a \Noselect superior. RENAME moves the children along;
 * renaming INBOX moves its messages into the new folder and leaves INBOX
 * empty (RFC 3501 6.3.5).
 *
 * Subscriptions are a flag on the user's own folders. Folders of other
 * accounts are always listed as subscribed, and (UN)SUBSCRIBE on them
 * succeeds without effect.
 */
#include <string.h>
#include <strings.h>

#include "groupware/acl.h"
#include "groupware/collection.h"
#include "groupware/mailstore.h"
#include "groupware/principal.h"
#include "imap_int.h"
#include "server/core/log.h"

/* A name split into owner account and folder in it. */
struct target {
	char *name; /* UTF-8 as the client sees it */
	int64_t owner;
	struct principal *op; /* owner, when not the user */
	char *folder;	      /* folder name in the owner's account */
};

/* 1 ok, 0 not a valid target (reply written), <0 ms error (reply written) */
static int target_resolve(struct imap_cmd *cmd, struct bu_db *db, const char *name,
			  struct target *t)
{
	struct imap_session *s = cmd->s;
	char *addr, *rest;
	int ns, ret;

	memset(t, 0, sizeof(*t));
	t->name = (char *)name;
	if (imap_name_split(cmd->a, name, &ns, &addr, &rest) == 0) {
		t->owner = s->user_id;
		t->folder = (char *)name;
		return 1;
	}
	if (addr == NULL || rest == NULL || *rest == '\0') {
		imap_reply_no(cmd, "[CANNOT] This name is a namespace, not a mailbox");
		return 0;
	}
	ret = principal_lookup(db, cmd->a, addr, &t->op);
	if (ret < 0) {
		imap_reply_ms_err(cmd, MS_ERR, NULL);
		return MS_ERR;
	}
	if (ret == 0 || t->op->id == s->user_id ||
	    t->op->kind != (ns == 0 ? PRINCIPAL_USER : PRINCIPAL_SHARED)) {
		imap_reply_no(cmd, "[NONEXISTENT] No such account");
		return 0;
	}
	t->owner = t->op->id;
	t->folder = rest;
	return 1;
}

/* rights of the user on (owner, collection); owner: all */
static int rights_of(struct imap_cmd *cmd, struct bu_db *db, int64_t owner, int64_t coll,
		     uint32_t *r)
{
	if (owner == cmd->s->user_id) {
		*r = ACL_ALL;
		return 0;
	}
	return acl_rights(db, cmd->s->user_id, owner, coll, r) < 0 ? MS_ERR : 0;
}

/* The parent folder of `folder` in owner's account (0 when top level or
 * the parent is no folder) */
static int parent_coll(struct imap_cmd *cmd, struct bu_db *db, int64_t owner, const char *folder,
		       int64_t *coll_r)
{
	const char *sl = strrchr(folder, IMAP_SEP);
	struct collection *c = NULL;
	int ret;

	*coll_r = 0;
	if (sl == NULL)
		return 0;
	ret = collection_get_by_name(db, cmd->a, owner, COLL_MAIL,
				     bu_arena_strndup(cmd->a, folder, (size_t)(sl - folder)), &c);
	if (ret < 0)
		return MS_ERR;
	if (ret > 0)
		*coll_r = c->id;
	return 0;
}

/* May the user create `folder` in owner's account? */
static int may_create(struct imap_cmd *cmd, struct bu_db *db, int64_t owner, const char *folder,
		      int64_t *parent_r)
{
	uint32_t r = 0;

	if (parent_coll(cmd, db, owner, folder, parent_r) < 0 ||
	    rights_of(cmd, db, owner, *parent_r, &r) < 0)
		return MS_ERR;
	return (r & ACL_CREATE) ? 1 : 0;
}

static void reply_coll_err(struct imap_cmd *cmd, int ret, const char *err)
{
	if (ret < 0) {
		imap_reply_ms_err(cmd, MS_ERR, NULL);
	} else if (err != NULL && strstr(err, "already exists") != NULL) {
		imap_reply_no(cmd, "[ALREADYEXISTS] Mailbox already exists");
	} else if (err != NULL && strstr(err, "no such") != NULL) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
	} else {
		imap_reply_no(cmd, "[CANNOT] %s", err != NULL ? err : "Not possible");
	}
}

/* ---- CREATE ------------------------------------------------------------ */

struct create_req {
	char *name;
	const char *special;
};

static void inherit_acl(struct imap_cmd *cmd, struct bu_db *db, int64_t owner, int64_t parent,
			int64_t coll)
{
	struct acl_entry *list;
	size_t n, i;
	const char *err;

	if (parent == 0 || acl_list(db, cmd->a, owner, parent, &list, &n) < 0)
		return;
	for (i = 0; i < n; i++)
		(void)acl_set(db, owner, coll, list[i].grantee, list[i].rights, &err);
}

static void create_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct create_req *r = cmd->priv;
	struct target t;
	int64_t parent = 0, id = 0;
	const char *err = NULL;
	int ret = target_resolve(cmd, db, r->name, &t);

	if (ret <= 0)
		return;
	if (strcmp(t.folder, "INBOX") == 0) {
		imap_reply_no(cmd, "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	if (!imap_folder_name_valid(t.folder)) {
		imap_reply_no(cmd, "[CANNOT] Invalid mailbox name");
		return;
	}
	if (t.owner != cmd->s->user_id) {
		ret = may_create(cmd, db, t.owner, t.folder, &parent);
		if (ret < 0) {
			imap_reply_ms_err(cmd, ret, NULL);
			return;
		}
		if (ret == 0) {
			imap_reply_no(cmd, "[NOPERM] Permission denied");
			return;
		}
	}
	ret = collection_create(db, t.owner, COLL_MAIL, t.folder, r->special, &id, &err);
	if (ret <= 0) {
		reply_coll_err(cmd, ret, err);
		return;
	}
	if (t.owner != cmd->s->user_id)
		inherit_acl(cmd, db, t.owner, parent, id);
	imap_reply_ok(cmd, "Create completed");
}

void imap_cmd_create(struct imap_cmd *cmd)
{
	struct create_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	size_t len;

	if (cmd->n_args < 1 || cmd->n_args > 2) {
		imap_reply_bad(cmd, "CREATE needs a mailbox name");
		return;
	}
	r->name = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (r->name == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	/* RFC 3501 6.3.3: a trailing separator only says children will come */
	len = strlen(r->name);
	if (len > 1 && r->name[len - 1] == IMAP_SEP)
		r->name[len - 1] = '\0';
	if (cmd->n_args == 2) {
		/* RFC 6154 3: (USE (\Attr ...)) */
		const struct imap_arg *p = &cmd->args[1];

		if (p->type != IMAP_ARG_LIST || p->n_list != 2 ||
		    !imap_arg_atom_eq(&p->list[0], "USE") || p->list[1].type != IMAP_ARG_LIST) {
			imap_reply_bad(cmd, "Invalid CREATE parameters");
			return;
		}
		if (p->list[1].n_list > 1) {
			imap_reply_no(cmd, "[USEATTR] Only one special-use attribute per mailbox");
			return;
		}
		if (p->list[1].n_list == 1) {
			const char *canon =
				imap_special_use_canon(imap_arg_str(&p->list[1].list[0])
							       ? imap_arg_str(&p->list[1].list[0])
							       : "");

			if (canon == NULL) {
				imap_reply_no(cmd, "[USEATTR] Unsupported special-use attribute");
				return;
			}
			r->special = canon;
		}
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, create_run);
}

/* ---- DELETE --------------------------------------------------------------- */

static void delete_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	char *name = cmd->priv;
	int64_t owner, coll;
	uint32_t rights;
	const char *err = NULL;
	int ret = imap_mailbox_resolve(s, db, cmd->a, name, &owner, &coll, NULL);

	if (ret == 0 || ret == MS_NOPERM) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	if (rights_of(cmd, db, owner, coll, &rights) < 0) {
		imap_reply_ms_err(cmd, MS_ERR, NULL);
		return;
	}
	if (!(rights & ACL_DELETE_MBOX)) {
		imap_reply_no(cmd, "[NOPERM] Permission denied");
		return;
	}
	if (owner == s->user_id && strcmp(name, "INBOX") == 0) {
		imap_reply_no(cmd, "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (s->sel != NULL && s->sel->owner_id == owner && s->sel->collection_id == coll) {
		/* deleting the selected mailbox deselects it first */
		imap_mailbox_close(s);
		imap_sess_of(s)->synced = true;
		imap_untagged(cmd, "OK [CLOSED] Mailbox closed");
	}
	ret = collection_delete(db, owner, coll, &err);
	if (ret <= 0) {
		reply_coll_err(cmd, ret, err);
		return;
	}
	imap_reply_ok(cmd, "Delete completed");
}

void imap_cmd_delete(struct imap_cmd *cmd)
{
	char *name;

	if (cmd->n_args != 1) {
		imap_reply_bad(cmd, "DELETE needs a mailbox name");
		return;
	}
	name = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (name == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	cmd->priv = name;
	imap_cmd_submit(cmd, delete_run);
}

/* ---- RENAME ------------------------------------------------------------- */

struct rename_req {
	char *from, *to;
};

/* RFC 3501 6.3.5: INBOX's messages move to the new folder */
static void rename_inbox(struct imap_cmd *cmd, struct bu_db *db, int64_t inbox, const char *to)
{
	struct imap_session *s = cmd->s;
	struct ms_mailbox *m;
	const char *err = NULL;
	int64_t id = 0;
	int ret = collection_create(db, s->user_id, COLL_MAIL, to, NULL, &id, &err);

	if (ret <= 0) {
		reply_coll_err(cmd, ret, err);
		return;
	}
	ret = ms_mailbox_open(db, cmd->a, s->user_id, s->user_id, inbox, &m);
	if (ret == 0 && m->n_msgs > 0) {
		uint32_t *uids = bu_arena_alloc(cmd->a, m->n_msgs * sizeof(*uids));
		uint32_t *su, *du, uv;
		size_t i, n;

		for (i = 0; i < m->n_msgs; i++)
			uids[i] = m->msgs[i].uid;
		ret = ms_copy(db, cmd->a, s->user_id, s->user_id, inbox, uids, m->n_msgs,
			      s->user_id, id, true, &su, &du, &n, &uv);
	}
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	imap_reply_ok(cmd, "Rename completed");
}

static void rename_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct rename_req *r = cmd->priv;
	struct target to;
	int64_t owner, coll, parent = 0;
	uint32_t rights;
	const char *err = NULL;
	int ret = imap_mailbox_resolve(s, db, cmd->a, r->from, &owner, &coll, NULL);

	if (ret == 0 || ret == MS_NOPERM) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	if (target_resolve(cmd, db, r->to, &to) <= 0)
		return;
	if (to.owner != owner) {
		imap_reply_no(cmd, "[CANNOT] Cannot move a mailbox to another account");
		return;
	}
	if (!imap_folder_name_valid(to.folder)) {
		imap_reply_no(cmd, "[CANNOT] Invalid mailbox name");
		return;
	}
	if (rights_of(cmd, db, owner, coll, &rights) < 0) {
		imap_reply_ms_err(cmd, MS_ERR, NULL);
		return;
	}
	if (!(rights & ACL_DELETE_MBOX)) {
		imap_reply_no(cmd, "[NOPERM] Permission denied");
		return;
	}
	if (owner != s->user_id) {
		ret = may_create(cmd, db, owner, to.folder, &parent);
		if (ret <= 0) {
			if (ret < 0)
				imap_reply_ms_err(cmd, ret, NULL);
			else
				imap_reply_no(cmd, "[NOPERM] Permission denied");
			return;
		}
	}
	if (owner == s->user_id && strcmp(r->from, "INBOX") == 0) {
		if (strcmp(to.folder, "INBOX") == 0) {
			imap_reply_no(cmd, "[ALREADYEXISTS] Mailbox already exists");
			return;
		}
		rename_inbox(cmd, db, coll, to.folder);
		return;
	}
	if (strcmp(to.folder, "INBOX") == 0) {
		imap_reply_no(cmd, "[ALREADYEXISTS] Mailbox already exists");
		return;
	}
	ret = collection_rename(db, owner, coll, to.folder, &err);
	if (ret <= 0) {
		reply_coll_err(cmd, ret, err);
		return;
	}
	if (s->sel != NULL && s->sel->collection_id == coll && s->sel->owner_id == owner)
		s->sel->name = bu_arena_strdup(s->sel->arena, r->to);
	imap_reply_ok(cmd, "Rename completed");
}

void imap_cmd_rename(struct imap_cmd *cmd)
{
	struct rename_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	size_t len;

	if (cmd->n_args != 2) {
		imap_reply_bad(cmd, "RENAME needs two mailbox names");
		return;
	}
	r->from = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	r->to = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[1]);
	if (r->from == NULL || r->to == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	len = strlen(r->to);
	if (len > 1 && r->to[len - 1] == IMAP_SEP)
		r->to[len - 1] = '\0';
	cmd->priv = r;
	imap_cmd_submit(cmd, rename_run);
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ------------------------------------------ */

static void subscribe_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	char *name = cmd->priv;
	bool on = strcmp(cmd->name, "SUBSCRIBE") == 0;
	int64_t owner, coll;
	int ret = imap_mailbox_resolve(s, db, cmd->a, name, &owner, &coll, NULL);

	if (ret == 0 || ret == MS_NOPERM) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	if (owner == s->user_id) {
		ret = collection_set_subscribed(db, owner, coll, on);
		if (ret < 0) {
			imap_reply_ms_err(cmd, MS_ERR, NULL);
			return;
		}
		/* wake NOTIFY SubscriptionChange listeners (RFC 5465 5.5):
		 * the subscription flag takes no modseq of its own */
		if (ret > 0 && changelog_notify(db, owner, coll) < 0)
			bu_warn("event=imap_subscribe_notify_failed");
	}
	imap_reply_ok(cmd, "%s completed", on ? "Subscribe" : "Unsubscribe");
}

static void subscribe_common(struct imap_cmd *cmd)
{
	char *name;

	if (cmd->n_args != 1) {
		imap_reply_bad(cmd, "%s needs a mailbox name", cmd->name);
		return;
	}
	name = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (name == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	cmd->priv = name;
	imap_cmd_submit(cmd, subscribe_run);
}

void imap_cmd_subscribe(struct imap_cmd *cmd)
{
	subscribe_common(cmd);
}

void imap_cmd_unsubscribe(struct imap_cmd *cmd)
{
	subscribe_common(cmd);
}

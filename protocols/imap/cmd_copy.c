/*
 * cmd_copy.c - COPY and MOVE with their UID forms (RFC 3501 6.4.7,
 * RFC 6851 MOVE, RFC 4315 UIDPLUS COPYUID).
 *
 * COPY answers "OK [COPYUID uidvalidity src-uids dst-uids]"; MOVE sends
 * the COPYUID in an untagged OK first, then the EXPUNGE (or VANISHED under
 * QRESYNC) responses for the moved messages, then the tagged OK (RFC 6851
 * 4.3). The copy and the expunge of a MOVE are one transaction in the
 * store. A missing target gets NO [TRYCREATE] (RFC 3501 6.4.7).
 *
 * Rights (RFC 4314): r on the source, i on the target (flags the user may
 * not set there are dropped), and for MOVE also t and e on the source.
 */
#include <string.h>

#include "fetch.h"
#include "groupware/acl.h"
#include "groupware/mailstore.h"
#include "server/core/log.h"

int imap_target_resolve(struct imap_cmd *cmd, struct bu_db *db, const char *name,
			int64_t *owner_r, int64_t *coll_r)
{
	struct imap_session *s = cmd->s;
	int ns;
	char *addr, *rest;
	int ret = imap_mailbox_resolve(s, db, cmd->a, name, owner_r, coll_r, NULL);

	if (ret == 1)
		return 1;
	if (ret < 0 && ret != MS_NOPERM) {
		imap_reply_ms_err(cmd, ret, NULL);
		return 0;
	}
	/* not there, or not visible (which must look the same) */
	if (imap_name_split(cmd->a, name, &ns, &addr, &rest) == 0 && imap_folder_name_valid(name))
		imap_reply_no(cmd, "[TRYCREATE] Mailbox does not exist");
	else
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
	return 0;
}

struct copy_req {
	uint32_t *uids;
	size_t n_uids;
	char *target;          /* UTF-8 */
	bool move;
};

static void copy_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct copy_req *r = cmd->priv;
	uint32_t *src, *dst, uidvalidity = 0;
	size_t n = 0;
	int64_t owner, coll;
	struct bu_buf code;
	int ret;

	if (mb == NULL) {
		imap_reply_bad(cmd, "No mailbox selected");
		return;
	}
	if (!imap_target_resolve(cmd, db, r->target, &owner, &coll))
		return;
	ret = ms_copy(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id, r->uids, r->n_uids,
		      owner, coll, r->move, &src, &dst, &n, &uidvalidity);
	if (ret < 0) {
		if (ret == MS_NOTFOUND)
			imap_reply_no(cmd, "[TRYCREATE] Mailbox does not exist");
		else
			imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	bu_buf_init(&code, 0);
	if (n > 0) {
		bu_buf_printf(&code, "[COPYUID %u ", uidvalidity);
		imap_seqset_write(&code, src, n);
		bu_buf_append_byte(&code, ' ');
		imap_seqset_write(&code, dst, n);
		bu_buf_append_str(&code, "] ");
	}
	if (r->move) {
		if (n > 0)
			imap_untagged(cmd, "OK %sMoved", bu_buf_cstr(&code));
		imap_mailbox_expunged(cmd, src, n);
		imap_reply_ok(cmd, "Move completed");
	} else {
		imap_reply_ok(cmd, "%sCopy completed", bu_buf_cstr(&code));
	}
	bu_buf_deinit(&code);
}

static void copy_common(struct imap_cmd *cmd, bool move)
{
	struct imap_session *s = cmd->s;
	struct copy_req *r = bu_arena_alloc(cmd->a, sizeof(*r));

	if (cmd->n_args != 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_reply_bad(cmd, "%s needs a sequence set and a mailbox", cmd->name);
		return;
	}
	r->move = move;
	r->target = imap_mailbox_name_in(s, cmd->a, &cmd->args[1]);
	if (r->target == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	if (imap_mailbox_set_uids(cmd, cmd->args[0].str, cmd->uid, &r->uids, &r->n_uids) < 0) {
		imap_reply_bad(cmd, "Invalid sequence set");
		return;
	}
	if (move && s->sel->readonly) {
		imap_reply_no(cmd, "Mailbox is read-only");
		return;
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, copy_run);
}

void imap_cmd_copy(struct imap_cmd *cmd)
{
	copy_common(cmd, false);
}

void imap_cmd_move(struct imap_cmd *cmd)
{
	copy_common(cmd, true);
}

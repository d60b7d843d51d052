/*
 * cmd_expunge.c - EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315
 * 2.1): remove the messages flagged \Deleted (UID EXPUNGE: only those in
 * the set), report each as "* n EXPUNGE", or as one "* VANISHED set"
 * under QRESYNC (RFC 7162 3.2.10), and, when the session uses CONDSTORE,
 * give the new HIGHESTMODSEQ in the tagged OK (RFC 7162 3.1.12 / 3.2.10).
 *
 * Needs the e right (RFC 4314); a read-only mailbox refuses with NO.
 */
#include <inttypes.h>

#include "fetch.h"
#include "groupware/acl.h"
#include "groupware/mailstore.h"

struct expunge_req {
	uint32_t *uids;        /* NULL = all \Deleted */
	size_t n_uids;
};

static void expunge_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct expunge_req *r = cmd->priv;
	uint32_t *gone;
	size_t n = 0;
	int ret;

	if (mb == NULL) {
		imap_reply_bad(cmd, "No mailbox selected");
		return;
	}
	ret = ms_expunge(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id, r->uids,
			 r->n_uids, &gone, &n);
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	imap_mailbox_expunged(cmd, gone, n);
	if (s->condstore) {
		/* report the rest of what changed first, so HIGHESTMODSEQ is
		 * the mailbox's and not ahead of what the client was told */
		imap_mailbox_sync(cmd, db, true);
		imap_reply_ok(cmd, "[HIGHESTMODSEQ %" PRId64 "] Expunge completed",
			      mb->highestmodseq);
		return;
	}
	imap_reply_ok(cmd, "Expunge completed");
}

void imap_cmd_expunge(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct expunge_req *r = bu_arena_alloc(cmd->a, sizeof(*r));

	if (cmd->uid) {
		if (cmd->n_args != 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
			imap_reply_bad(cmd, "UID EXPUNGE needs a UID set");
			return;
		}
		if (imap_mailbox_set_uids(cmd, cmd->args[0].str, true, &r->uids, &r->n_uids) < 0) {
			imap_reply_bad(cmd, "Invalid UID set");
			return;
		}
	} else if (cmd->n_args != 0) {
		imap_reply_bad(cmd, "EXPUNGE takes no arguments");
		return;
	}
	if (s->sel->readonly) {
		imap_reply_no(cmd, "Mailbox is read-only");
		return;
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, expunge_run);
}

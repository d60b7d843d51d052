/*
 * cmd_quota.c - GETQUOTA, GETQUOTAROOT, SETQUOTA (RFC 9208) with the
 * STORAGE (units of 1024 octets) and MESSAGE resources.
 *
 * One quota root per account: "" for the user's own, and the namespace
 * path of the account ("Other Users/<address>", "Shared/<address>") for
 * a mailbox in someone else's. Only resources with a limit are listed; an
 * account without any limit has no quota root. Limits are set by the
 * administrator (bureauctl), so SETQUOTA is refused with NOPERM.
 */
#include <inttypes.h>
#include <string.h>

#include "groupware/acl.h"
#include "groupware/mailstore.h"
#include "groupware/principal.h"
#include "imap_int.h"

/* "(STORAGE u l MESSAGE u l)" into out; false when nothing is limited */
static bool write_quota(struct bu_buf *out, const struct ms_quota *q)
{
	const char *sep = "";

	if (q->storage_limit <= 0 && q->messages_limit <= 0)
		return false;
	bu_buf_append_byte(out, '(');
	if (q->storage_limit > 0) {
		bu_buf_printf(out, "STORAGE %" PRId64 " %" PRId64, (q->storage_used + 1023) / 1024,
			      q->storage_limit / 1024);
		sep = " ";
	}
	if (q->messages_limit > 0)
		bu_buf_printf(out, "%sMESSAGE %" PRId64 " %" PRId64, sep, q->messages_used,
			      q->messages_limit);
	bu_buf_append_byte(out, ')');
	return true;
}

/* the quota root name of account owner */
static char *root_name(struct imap_cmd *cmd, struct bu_db *db, int64_t owner)
{
	struct principal *p = NULL;

	if (owner == cmd->s->user_id)
		return "";
	if (principal_get(db, cmd->a, owner, &p) <= 0)
		return NULL;
	return bu_arena_printf(cmd->a, "%s%s",
			       p->kind == PRINCIPAL_SHARED ? IMAP_NS_SHARED : IMAP_NS_OTHER,
			       p->address);
}

/* does owner share anything with the user? */
static bool shares_with(struct imap_cmd *cmd, struct bu_db *db, int64_t owner)
{
	int64_t *ids;
	size_t n, i;

	if (acl_shared_with(db, cmd->a, cmd->s->user_id, &ids, &n) < 0)
		return false;
	for (i = 0; i < n; i++) {
		if (ids[i] == owner)
			return true;
	}
	return false;
}

static void getquotaroot_run(struct imap_cmd *cmd, struct bu_db *db)
{
	const char *name = cmd->priv;
	int64_t owner, coll;
	struct ms_quota q;
	struct bu_buf line;
	char *root;
	int ret = imap_mailbox_resolve(cmd->s, db, cmd->a, name, &owner, &coll, NULL);

	if (ret == 0 || ret == MS_NOPERM) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	if (ret < 0 || (ret = ms_quota_get(db, owner, &q)) < 0 ||
	    (root = root_name(cmd, db, owner)) == NULL) {
		imap_reply_ms_err(cmd, ret < 0 ? ret : MS_ERR, NULL);
		return;
	}
	bu_buf_init(&line, 0);
	bu_buf_append_str(&cmd->out, "* QUOTAROOT ");
	imap_write_mailbox(cmd->s, &cmd->out, name);
	if (write_quota(&line, &q)) {
		bu_buf_append_byte(&cmd->out, ' ');
		imap_write_mailbox(cmd->s, &cmd->out, root);
		bu_buf_append_str(&cmd->out, "\r\n* QUOTA ");
		imap_write_mailbox(cmd->s, &cmd->out, root);
		bu_buf_printf(&cmd->out, " %s", bu_buf_cstr(&line));
	}
	bu_buf_append_str(&cmd->out, "\r\n");
	bu_buf_deinit(&line);
	imap_reply_ok(cmd, "Getquotaroot completed");
}

static void getquota_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	const char *root = cmd->priv;
	int64_t owner = s->user_id;
	struct ms_quota q;
	struct bu_buf line;
	int ret;

	if (*root != '\0') {
		char *addr, *rest;
		struct principal *p = NULL;
		int ns;

		if (imap_name_split(cmd->a, root, &ns, &addr, &rest) == 0 || addr == NULL ||
		    rest != NULL || principal_lookup(db, cmd->a, addr, &p) <= 0 ||
		    p->kind != (ns == 0 ? PRINCIPAL_USER : PRINCIPAL_SHARED) ||
		    p->id == s->user_id || !shares_with(cmd, db, p->id)) {
			imap_reply_no(cmd, "[NONEXISTENT] No such quota root");
			return;
		}
		owner = p->id;
	}
	ret = ms_quota_get(db, owner, &q);
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	bu_buf_init(&line, 0);
	if (!write_quota(&line, &q)) {
		bu_buf_deinit(&line);
		imap_reply_no(cmd, "[NONEXISTENT] No such quota root");
		return;
	}
	bu_buf_append_str(&cmd->out, "* QUOTA ");
	imap_write_mailbox(s, &cmd->out, root);
	bu_buf_printf(&cmd->out, " %s\r\n", bu_buf_cstr(&line));
	bu_buf_deinit(&line);
	imap_reply_ok(cmd, "Getquota completed");
}

void imap_cmd_getquotaroot(struct imap_cmd *cmd)
{
	char *name;

	if (cmd->n_args != 1) {
		imap_reply_bad(cmd, "GETQUOTAROOT needs a mailbox name");
		return;
	}
	name = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (name == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	cmd->priv = name;
	imap_cmd_submit(cmd, getquotaroot_run);
}

void imap_cmd_getquota(struct imap_cmd *cmd)
{
	char *root;

	if (cmd->n_args != 1 || !imap_arg_is_string(&cmd->args[0])) {
		imap_reply_bad(cmd, "GETQUOTA needs a quota root");
		return;
	}
	root = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (root == NULL) {
		if (cmd->args[0].len != 0) {
			imap_reply_bad(cmd, "Invalid quota root");
			return;
		}
		root = "";
	}
	cmd->priv = root;
	imap_cmd_submit(cmd, getquota_run);
}

void imap_cmd_setquota(struct imap_cmd *cmd)
{
	if (cmd->n_args != 2 || cmd->args[1].type != IMAP_ARG_LIST) {
		imap_reply_bad(cmd, "SETQUOTA needs a quota root and a resource list");
		return;
	}
	imap_reply_no(cmd, "[NOPERM] Quotas are set by the administrator");
}

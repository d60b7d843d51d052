/*
 * cmd_acl.c - GETACL, SETACL, DELETEACL, LISTRIGHTS, MYRIGHTS (RFC 4314)
 * over groupware/acl.h, with the rights "lrswipkxtea" (RIGHTS=texk).
 *
 * GETACL, SETACL, DELETEACL and LISTRIGHTS need the a right (the owner
 * has it); MYRIGHTS needs any right at all. A mailbox the user may not
 * look up is reported as nonexistent. The owner is listed with every
 * right and cannot lose them; negative rights ("-identifier") are not
 * supported. SETACL "+rights"/"-rights" modify the identifier's entry on
 * this mailbox.
 */
#include <string.h>
#include <strings.h>

#include "groupware/acl.h"
#include "groupware/mailstore.h"
#include "groupware/principal.h"
#include "imap_int.h"

struct acl_req {
	char *name;
	const char *ident;
	const char *rights;
};

/* resolve + rights; 1 ok, otherwise a reply was written */
static int acl_target(struct imap_cmd *cmd, struct bu_db *db, const char *name, int64_t *owner,
		      int64_t *coll, uint32_t *rights)
{
	int ret = imap_mailbox_resolve(cmd->s, db, cmd->a, name, owner, coll, NULL);

	if (ret == 0 || ret == MS_NOPERM) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return 0;
	}
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return 0;
	}
	if (*owner == cmd->s->user_id) {
		*rights = ACL_ALL;
	} else if (acl_rights(db, cmd->s->user_id, *owner, *coll, rights) < 0) {
		imap_reply_ms_err(cmd, MS_ERR, NULL);
		return 0;
	}
	return 1;
}

static const char *owner_address(struct imap_cmd *cmd, struct bu_db *db, int64_t owner)
{
	struct principal *p = NULL;

	if (owner == cmd->s->user_id)
		return cmd->s->user->address;
	if (principal_get(db, cmd->a, owner, &p) <= 0)
		return NULL;
	return p->address;
}

static void getacl_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct acl_req *r = cmd->priv;
	struct acl_entry *list;
	size_t n, i;
	int64_t owner, coll;
	uint32_t rights;
	char letters[16];
	const char *oaddr;
	struct bu_buf *out = &cmd->out;

	if (acl_target(cmd, db, r->name, &owner, &coll, &rights) <= 0)
		return;
	if (!(rights & ACL_ADMIN)) {
		imap_reply_no(cmd, "[NOPERM] Permission denied");
		return;
	}
	if (acl_list(db, cmd->a, owner, coll, &list, &n) < 0) {
		imap_reply_ms_err(cmd, MS_ERR, NULL);
		return;
	}
	oaddr = owner_address(cmd, db, owner);
	bu_buf_append_str(out, "* ACL ");
	imap_write_mailbox(cmd->s, out, r->name);
	if (oaddr != NULL) {
		bu_buf_append_byte(out, ' ');
		imap_write_astring(out, oaddr);
		bu_buf_printf(out, " %s", acl_format(ACL_ALL, letters));
	}
	for (i = 0; i < n; i++) {
		if (oaddr != NULL && strcasecmp(list[i].grantee, oaddr) == 0)
			continue;
		bu_buf_append_byte(out, ' ');
		imap_write_astring(out, list[i].grantee);
		bu_buf_printf(out, " %s", acl_format(list[i].rights, letters));
	}
	bu_buf_append_str(out, "\r\n");
	imap_reply_ok(cmd, "Getacl completed");
}

static void setacl_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct acl_req *r = cmd->priv;
	int64_t owner, coll;
	uint32_t rights, newr = 0, cur = 0;
	const char *letters = r->rights, *err = NULL, *oaddr;
	char mode = 0;
	int ret;

	if (acl_target(cmd, db, r->name, &owner, &coll, &rights) <= 0)
		return;
	if (!(rights & ACL_ADMIN)) {
		imap_reply_no(cmd, "[NOPERM] Permission denied");
		return;
	}
	oaddr = owner_address(cmd, db, owner);
	if (oaddr != NULL && strcasecmp(oaddr, r->ident) == 0) {
		imap_reply_no(cmd, "[CANNOT] The owner's rights cannot be changed");
		return;
	}
	if (letters != NULL) {
		if (*letters == '+' || *letters == '-')
			mode = *letters++;
		if (acl_parse(letters, &newr) < 0) {
			imap_reply_bad(cmd, "Invalid rights");
			return;
		}
		if (mode != 0) {
			struct acl_entry *list;
			size_t n, i;

			if (acl_list(db, cmd->a, owner, coll, &list, &n) < 0) {
				imap_reply_ms_err(cmd, MS_ERR, NULL);
				return;
			}
			for (i = 0; i < n; i++) {
				if (strcasecmp(list[i].grantee, r->ident) == 0)
					cur = list[i].rights;
			}
			newr = mode == '+' ? (cur | newr) : (cur & ~newr);
		}
	}
	ret = acl_set(db, owner, coll, r->ident, newr, &err);
	if (ret < 0) {
		imap_reply_ms_err(cmd, MS_ERR, NULL);
		return;
	}
	if (ret == 0) {
		imap_reply_no(cmd, "[NONEXISTENT] %s", err != NULL ? err : "No such identifier");
		return;
	}
	imap_reply_ok(cmd, "%s completed", letters != NULL ? "Setacl" : "Deleteacl");
}

static void listrights_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct acl_req *r = cmd->priv;
	int64_t owner, coll;
	uint32_t rights;
	const char *oaddr;
	struct bu_buf *out = &cmd->out;

	if (acl_target(cmd, db, r->name, &owner, &coll, &rights) <= 0)
		return;
	if (!(rights & ACL_ADMIN)) {
		imap_reply_no(cmd, "[NOPERM] Permission denied");
		return;
	}
	oaddr = owner_address(cmd, db, owner);
	bu_buf_append_str(out, "* LISTRIGHTS ");
	imap_write_mailbox(cmd->s, out, r->name);
	bu_buf_append_byte(out, ' ');
	imap_write_astring(out, r->ident);
	if (oaddr != NULL && strcasecmp(oaddr, r->ident) == 0)
		bu_buf_append_str(out, " lrswipkxtea\r\n");
	else
		bu_buf_append_str(out, " \"\" l r s w i p k x t e a\r\n");
	imap_reply_ok(cmd, "Listrights completed");
}

static void myrights_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct acl_req *r = cmd->priv;
	int64_t owner, coll;
	uint32_t rights;
	char letters[16];
	struct bu_buf *out = &cmd->out;

	if (acl_target(cmd, db, r->name, &owner, &coll, &rights) <= 0)
		return;
	if (rights == 0) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	bu_buf_append_str(out, "* MYRIGHTS ");
	imap_write_mailbox(cmd->s, out, r->name);
	bu_buf_printf(out, " %s\r\n", acl_format(rights, letters));
	imap_reply_ok(cmd, "Myrights completed");
}

/* mailbox [identifier [rights]] */
static void acl_command(struct imap_cmd *cmd, size_t nargs, imap_run_fn *run)
{
	struct acl_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	size_t i;

	if (cmd->n_args != nargs) {
		imap_reply_bad(cmd, "Wrong number of arguments for %s", cmd->name);
		return;
	}
	for (i = 0; i < nargs; i++) {
		if (!imap_arg_is_string(&cmd->args[i])) {
			imap_reply_bad(cmd, "Invalid arguments for %s", cmd->name);
			return;
		}
	}
	r->name = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (r->name == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	if (nargs >= 2) {
		r->ident = cmd->args[1].str;
		if (*r->ident == '\0') {
			imap_reply_bad(cmd, "Empty identifier");
			return;
		}
		if (*r->ident == '-') {
			imap_reply_no(cmd, "[CANNOT] Negative rights are not supported");
			return;
		}
	}
	if (nargs >= 3)
		r->rights = cmd->args[2].str;
	cmd->priv = r;
	imap_cmd_submit(cmd, run);
}

void imap_cmd_getacl(struct imap_cmd *cmd)
{
	acl_command(cmd, 1, getacl_run);
}

void imap_cmd_setacl(struct imap_cmd *cmd)
{
	acl_command(cmd, 3, setacl_run);
}

void imap_cmd_deleteacl(struct imap_cmd *cmd)
{
	acl_command(cmd, 2, setacl_run);
}

void imap_cmd_listrights(struct imap_cmd *cmd)
{
	acl_command(cmd, 2, listrights_run);
}

void imap_cmd_myrights(struct imap_cmd *cmd)
{
	acl_command(cmd, 1, myrights_run);
}

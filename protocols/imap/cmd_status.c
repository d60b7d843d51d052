/*
 * cmd_status.c - STATUS (RFC 3501 6.3.10) with HIGHESTMODSEQ (RFC 7162,
 * which also turns CONDSTORE on), SIZE (RFC 8438), DELETED (RFC 9051),
 * APPENDLIMIT (RFC 7889) and MAILBOXID (RFC 8474). The same writer serves
 * LIST-STATUS (RFC 5819) and NOTIFY's unsolicited STATUS (RFC 5465).
 */
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "groupware/mailstore.h"
#include "imap_int.h"
#include "server/core/config.h"

static const struct {
	const char *name;
	unsigned bit;
} items[] = {
	{ "MESSAGES", IMAP_ST_MESSAGES },
	{ "RECENT", IMAP_ST_RECENT },
	{ "UIDNEXT", IMAP_ST_UIDNEXT },
	{ "UIDVALIDITY", IMAP_ST_UIDVALIDITY },
	{ "UNSEEN", IMAP_ST_UNSEEN },
	{ "DELETED", IMAP_ST_DELETED },
	{ "SIZE", IMAP_ST_SIZE },
	{ "HIGHESTMODSEQ", IMAP_ST_HIGHESTMODSEQ },
	{ "APPENDLIMIT", IMAP_ST_APPENDLIMIT },
	{ "MAILBOXID", IMAP_ST_MAILBOXID },
};

int imap_status_items_parse(const struct imap_arg *arg, unsigned *mask_r)
{
	size_t i, k;

	*mask_r = 0;
	if (arg->type != IMAP_ARG_LIST || arg->n_list == 0)
		return -1;
	for (i = 0; i < arg->n_list; i++) {
		bool found = false;

		if (arg->list[i].type != IMAP_ARG_ATOM)
			return -1;
		for (k = 0; k < BU_N_ELEMENTS(items); k++) {
			if (strcasecmp(arg->list[i].str, items[k].name) == 0) {
				*mask_r |= items[k].bit;
				found = true;
			}
		}
		if (!found)
			return -1;
	}
	return 0;
}

int imap_status_write(struct imap_cmd *cmd, struct bu_db *db, const char *name, int64_t owner,
		      int64_t coll, unsigned mask)
{
	struct imap_session *s = cmd->s;
	struct imap_sess *x = imap_sess_of(s);
	struct ms_status st;
	struct bu_buf *out = &cmd->out;
	const char *sep = "";
	int ret = ms_mailbox_status(db, s->user_id, owner, coll, &st);

	if (ret < 0)
		return ret;
	if (mask & IMAP_ST_HIGHESTMODSEQ)
		s->condstore = true;
	bu_buf_append_str(out, "* STATUS ");
	imap_write_mailbox(s, out, name);
	bu_buf_append_str(out, " (");
#define ITEM(bit, fmt, ...)                                                                        \
	do {                                                                                       \
		if (mask & (bit)) {                                                                \
			bu_buf_printf(out, "%s" fmt, sep, __VA_ARGS__);                            \
			sep = " ";                                                                 \
		}                                                                                  \
	} while (0)
	ITEM(IMAP_ST_MESSAGES, "MESSAGES %u", st.messages);
	ITEM(IMAP_ST_RECENT, "RECENT %u", st.recent);
	ITEM(IMAP_ST_UIDNEXT, "UIDNEXT %u", st.uidnext);
	ITEM(IMAP_ST_UIDVALIDITY, "UIDVALIDITY %u", st.uidvalidity);
	ITEM(IMAP_ST_UNSEEN, "UNSEEN %u", st.unseen);
	ITEM(IMAP_ST_DELETED, "DELETED %u", st.deleted);
	ITEM(IMAP_ST_SIZE, "SIZE %" PRId64, st.size);
	ITEM(IMAP_ST_HIGHESTMODSEQ, "HIGHESTMODSEQ %" PRId64, st.highestmodseq);
	ITEM(IMAP_ST_APPENDLIMIT, "APPENDLIMIT %d", x->cfg->max_literal);
	ITEM(IMAP_ST_MAILBOXID, "MAILBOXID (F%" PRId64 ")", coll);
#undef ITEM
	bu_buf_append_str(out, ")\r\n");
	return 0;
}

struct status_req {
	char *name;
	unsigned mask;
};

static void status_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct status_req *r = cmd->priv;
	int64_t owner, coll;
	int ret = imap_mailbox_resolve(cmd->s, db, cmd->a, r->name, &owner, &coll, NULL);

	if (ret == 0 || ret == MS_NOPERM) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	ret = imap_status_write(cmd, db, r->name, owner, coll, r->mask);
	if (ret == MS_NOTFOUND) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	imap_reply_ok(cmd, "Status completed");
}

void imap_cmd_status(struct imap_cmd *cmd)
{
	struct status_req *r = bu_arena_alloc(cmd->a, sizeof(*r));

	if (cmd->n_args != 2) {
		imap_reply_bad(cmd, "STATUS needs a mailbox and a list of items");
		return;
	}
	r->name = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (r->name == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	if (imap_status_items_parse(&cmd->args[1], &r->mask) < 0) {
		imap_reply_bad(cmd, "Invalid STATUS items");
		return;
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, status_run);
}

/*
 * cmd_enable.c - ENABLE (RFC 5161) for CONDSTORE and QRESYNC (RFC 7162;
 * QRESYNC implies CONDSTORE), UTF8=ACCEPT (RFC 6855: mailbox names are
 * UTF-8 from now on) and IMAP4rev2 (RFC 9051). Unknown capability names
 * are ignored, as the RFC says; "* ENABLED" lists what this command
 * turned on.
 */
#include <string.h>
#include <strings.h>

#include "imap_int.h"

void imap_cmd_enable(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct bu_buf en;
	size_t i;

	if (cmd->n_args == 0) {
		imap_reply_bad(cmd, "ENABLE needs capability names");
		return;
	}
	bu_buf_init(&en, 0);
	for (i = 0; i < cmd->n_args; i++) {
		const struct imap_arg *a = &cmd->args[i];
		const char *name = NULL;

		if (a->type != IMAP_ARG_ATOM) {
			bu_buf_deinit(&en);
			imap_reply_bad(cmd, "ENABLE needs capability names");
			return;
		}
		if (strcasecmp(a->str, "CONDSTORE") == 0) {
			s->condstore = true;
			name = "CONDSTORE";
		} else if (strcasecmp(a->str, "QRESYNC") == 0) {
			s->qresync = true;
			s->condstore = true;
			name = "QRESYNC";
		} else if (strcasecmp(a->str, "UTF8=ACCEPT") == 0) {
			s->utf8_accept = true;
			name = "UTF8=ACCEPT";
		} else if (strcasecmp(a->str, "IMAP4rev2") == 0) {
			s->imap4rev2 = true;
			name = "IMAP4rev2";
		}
		if (name != NULL && strstr(bu_buf_cstr(&en), name) == NULL)
			bu_buf_printf(&en, " %s", name);
	}
	imap_untagged(cmd, "ENABLED%s", bu_buf_cstr(&en));
	bu_buf_deinit(&en);
	imap_reply_ok(cmd, "Enabled");
}

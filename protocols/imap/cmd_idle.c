/*
 * cmd_idle.c - IDLE (RFC 2177).
 *
 * "+ idling", then the session waits for "DONE" holding no worker and no
 * database connection: it watches the selected mailbox's owner (or the
 * user) on the notification hub, and each notification submits one sync
 * task that writes the untagged updates (imap_session_kick). The read
 * timeout is 31 minutes while idling, as RFC 2177 allows the server to
 * log out a client idle for 30.
 */
#include <strings.h>

#include "imap_int.h"
#include "server/core/config.h"

void imap_cmd_idle(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_sess *x = imap_sess_of(s);

	if (cmd->n_args != 0) {
		imap_reply_bad(cmd, "IDLE takes no arguments");
		return;
	}
	s->idling = true;
	s->idle_tag = (char *)cmd->tag;
	bu_conn_puts(s->conn, "+ idling\r\n");
	bu_conn_set_timeout(s->conn, IMAP_IDLE_TIMEOUT_S);
	imap_session_update_watch(x);
	/* whatever happened since the last command (a notification may have
	 * come and gone while no one was waiting) is reported at once */
	if (s->sel != NULL)
		s->changes_pending = true;
	imap_session_kick(x);
}

void imap_idle_input(struct imap_sess *x)
{
	struct imap_session *s = &x->pub;
	struct imap_cmd *cmd = s->cur;
	char *line = NULL;
	int r = imap_parser_read_line(bu_conn_in(s->conn), cmd->a, 1024, &line);

	if (r == 0)
		return;
	s->idling = false;
	s->idle_tag = NULL;
	bu_conn_set_timeout(s->conn, x->cfg->idle_timeout);
	if (r > 0 && strcasecmp(line, "DONE") == 0)
		imap_reply_ok(cmd, "IDLE terminated");
	else
		imap_reply_bad(cmd, "Expected DONE");
	imap_cmd_finish(cmd);
}

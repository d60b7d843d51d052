/*
 * session.c - POP3 session (RFC 1939, CAPA RFC 2449, STLS RFC 2595).
 *
 * This is the honest minimum while mailbox access over POP3 is not written:
 * the greeting, CAPA, STLS, QUIT, and "-ERR [SYS/PERM] ..." (RFC 3206
 * response code: a permanent system condition, so clients stop retrying) for
 * everything else, including USER/PASS/AUTH. Nobody can log in, so no
 * command reaches the database and none goes to a worker.
 *
 * Limits: a command line longer than limits.max_line (RFC 2449 allows 255
 * octets) ends the session; so do too many refused commands, and silence
 * longer than limits.preauth_timeout.
 */
#include <stdlib.h>
#include <string.h>

#include "protocols/pop3/pop3.h"
#include "server/core/log.h"

#define POP3_MAX_ERRORS 20

struct pop3_session {
	struct bu_conn *conn;
	int errors;
	bool quitting;
};

static int pop3_max_line(struct pop3_session *s)
{
	return bu_server_config(bu_conn_server(s->conn))->max_line;
}

static void *pop3_open(struct bu_conn *c)
{
	struct pop3_session *s = bu_malloc(sizeof(*s));

	s->conn = c;
	bu_conn_set_timeout(c, bu_server_config(bu_conn_server(c))->preauth_timeout);
	bu_conn_puts(c, "+OK Bureau POP3 ready\r\n");
	return s;
}

static void pop3_refuse(struct pop3_session *s)
{
	bu_conn_puts(s->conn, "-ERR [SYS/PERM] mailbox access over POP3 is not "
		     "available on this server yet\r\n");
	if (++s->errors >= POP3_MAX_ERRORS) {
		bu_conn_puts(s->conn, "-ERR too many errors, closing connection\r\n");
		bu_conn_close(s->conn, "too many errors");
		s->quitting = true;
	}
}

/* one command line, without CRLF; returns false to stop reading input */
static bool pop3_command(struct pop3_session *s, const char *line, size_t len)
{
	struct bu_slice cmd = bu_slice(line, strcspn(line, " "));

	if (cmd.len > len)
		cmd.len = len;
	if (bu_slice_caseeq(cmd, "CAPA")) {
		bu_conn_puts(s->conn, "+OK capability list follows\r\n");
		if (!bu_conn_is_tls(s->conn) && bu_conn_service(s->conn) == BU_SVC_POP3)
			bu_conn_puts(s->conn, "STLS\r\n");
		bu_conn_puts(s->conn, "IMPLEMENTATION Bureau\r\n.\r\n");
		return true;
	}
	if (bu_slice_caseeq(cmd, "QUIT")) {
		bu_conn_puts(s->conn, "+OK Bureau POP3 signing off\r\n");
		bu_conn_close(s->conn, "quit");
		s->quitting = true;
		return false;
	}
	if (bu_slice_caseeq(cmd, "STLS")) {
		if (bu_conn_is_tls(s->conn)) {
			bu_conn_puts(s->conn, "-ERR TLS is already active\r\n");
			return true;
		}
		bu_conn_puts(s->conn, "+OK begin TLS negotiation\r\n");
		if (bu_conn_starttls(s->conn) < 0) {
			/* the client now expects a handshake: no way back */
			bu_conn_close(s->conn, "starttls unavailable");
			s->quitting = true;
		}
		/* input after STLS was discarded by bu_conn_starttls */
		return false;
	}
	pop3_refuse(s);
	return !s->quitting;
}

static void pop3_input(void *sess)
{
	struct pop3_session *s = sess;
	struct bu_buf *in = bu_conn_in(s->conn);
	size_t max = (size_t)pop3_max_line(s);

	while (!s->quitting && !bu_conn_closing(s->conn) && in->len > 0) {
		char *line;
		int ret = bu_buf_take_line(in, max, &line);

		if (ret == 0)
			return;
		if (ret == -1) {
			bu_conn_puts(s->conn, "-ERR command line too long\r\n");
			bu_conn_close(s->conn, "line too long");
			s->quitting = true;
			return;
		}
		if (ret == -2) {
			bu_conn_puts(s->conn, "-ERR invalid character in command\r\n");
			continue;
		}
		/* the line is consumed before it runs: STLS discards the rest */
		bool go_on = pop3_command(s, line, strlen(line));

		free(line);
		if (!go_on)
			return;
	}
}

static void pop3_timeout(void *sess)
{
	struct pop3_session *s = sess;

	bu_conn_puts(s->conn, "-ERR autologout: idle for too long\r\n");
	bu_conn_close(s->conn, "timeout");
	s->quitting = true;
}

static void pop3_close(void *sess)
{
	free(sess);
}

const struct bu_proto_ops pop3_proto_ops = {
	.name = "pop3",
	.open = pop3_open,
	.input = pop3_input,
	.timeout = pop3_timeout,
	.close = pop3_close,
};

/*
 * session.c - SMTP (RFC 5321), submission (RFC 6409) and LMTP (RFC 2033)
 * sessions, for now without delivery.
 *
 * What works: the greeting, EHLO/HELO (LHLO on LMTP, which must refuse
 * HELO/EHLO: RFC 2033 section 4.1), NOOP, RSET, QUIT, STARTTLS (RFC 3207; on
 * smtp and submission, not on LMTP or an already encrypted connection),
 * PIPELINING (commands are answered in order from the input buffer) and
 * enhanced status codes (RFC 2034, 3463). MAIL, RCPT and DATA get
 * "554 5.3.2": the system is not accepting messages, so clients give up
 * instead of queueing retries against a server that cannot deliver yet.
 *
 * Limits: a line longer than limits.max_line ends the session with 500
 * 5.5.6, too many errors with 421, silence past limits.preauth_timeout with
 * 421 4.4.2.
 */
#include <stdlib.h>
#include <string.h>

#include "protocols/smtp/smtp.h"
#include "server/core/log.h"

#define SMTP_MAX_ERRORS 20

struct smtp_session {
	struct bu_conn *conn;
	const char *hostname;
	bool lmtp;
	bool greeted;          /* EHLO/HELO/LHLO seen (since STARTTLS) */
	bool quitting;
	int errors;
};

static void *smtp_open_common(struct bu_conn *c, bool lmtp)
{
	struct smtp_session *s = bu_malloc(sizeof(*s));
	const struct bu_config *cfg = bu_server_config(bu_conn_server(c));

	s->conn = c;
	s->lmtp = lmtp;
	s->hostname = cfg->hostname != NULL && cfg->hostname[0] != '\0' ?
		cfg->hostname : "localhost";
	bu_conn_set_timeout(c, cfg->preauth_timeout);
	bu_conn_printf(c, "220 %s Bureau ESMTP\r\n", s->hostname);
	return s;
}

static void *smtp_open(struct bu_conn *c)
{
	return smtp_open_common(c, false);
}

static void *lmtp_open(struct bu_conn *c)
{
	return smtp_open_common(c, true);
}

static void smtp_error(struct smtp_session *s, const char *reply)
{
	bu_conn_puts(s->conn, reply);
	if (++s->errors >= SMTP_MAX_ERRORS) {
		bu_conn_printf(s->conn, "421 4.7.0 %s too many errors, closing connection\r\n",
			       s->hostname);
		bu_conn_close(s->conn, "too many errors");
		s->quitting = true;
	}
}

static bool smtp_starttls_offered(struct smtp_session *s)
{
	return !s->lmtp && !bu_conn_is_tls(s->conn);
}

static void smtp_cmd_ehlo(struct smtp_session *s, const char *arg, bool extended)
{
	if (arg[0] == '\0') {
		smtp_error(s, "501 5.5.4 a domain name or address literal is required\r\n");
		return;
	}
	s->greeted = true;
	if (!extended) {
		bu_conn_printf(s->conn, "250 %s\r\n", s->hostname);
		return;
	}
	bu_conn_printf(s->conn, "250-%s\r\n", s->hostname);
	if (smtp_starttls_offered(s))
		bu_conn_puts(s->conn, "250-STARTTLS\r\n");
	bu_conn_puts(s->conn, "250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n");
}

/* one command line without CRLF; false = stop reading input */
static bool smtp_command(struct smtp_session *s, const char *line)
{
	size_t vlen = strcspn(line, " ");
	struct bu_slice verb = bu_slice(line, vlen);
	const char *arg = line + vlen;

	while (*arg == ' ')
		arg++;

	if (bu_slice_caseeq(verb, "EHLO") || bu_slice_caseeq(verb, "HELO")) {
		if (s->lmtp)
			smtp_error(s, "500 5.5.1 this is an LMTP server: use LHLO\r\n");
		else
			smtp_cmd_ehlo(s, arg, bu_slice_caseeq(verb, "EHLO"));
	} else if (bu_slice_caseeq(verb, "LHLO")) {
		if (!s->lmtp)
			smtp_error(s, "500 5.5.1 command not recognized\r\n");
		else
			smtp_cmd_ehlo(s, arg, true);
	} else if (bu_slice_caseeq(verb, "NOOP")) {
		bu_conn_puts(s->conn, "250 2.0.0 OK\r\n");
	} else if (bu_slice_caseeq(verb, "RSET")) {
		if (arg[0] != '\0')
			smtp_error(s, "501 5.5.4 RSET takes no arguments\r\n");
		else
			bu_conn_puts(s->conn, "250 2.0.0 OK\r\n");
	} else if (bu_slice_caseeq(verb, "QUIT")) {
		bu_conn_printf(s->conn, "221 2.0.0 %s closing connection\r\n", s->hostname);
		bu_conn_close(s->conn, "quit");
		s->quitting = true;
		return false;
	} else if (bu_slice_caseeq(verb, "STARTTLS")) {
		if (s->lmtp) {
			smtp_error(s, "502 5.5.1 STARTTLS is not offered on LMTP\r\n");
		} else if (bu_conn_is_tls(s->conn)) {
			smtp_error(s, "503 5.5.1 TLS is already active\r\n");
		} else if (arg[0] != '\0') {
			smtp_error(s, "501 5.5.4 STARTTLS takes no arguments\r\n");
		} else {
			bu_conn_puts(s->conn, "220 2.0.0 ready to start TLS\r\n");
			if (bu_conn_starttls(s->conn) < 0) {
				bu_conn_close(s->conn, "starttls unavailable");
				s->quitting = true;
			}
			/* RFC 3207 4.2: forget everything, including EHLO */
			s->greeted = false;
			return false;
		}
	} else if (bu_slice_caseeq(verb, "MAIL") || bu_slice_caseeq(verb, "RCPT") ||
		   bu_slice_caseeq(verb, "DATA") || bu_slice_caseeq(verb, "BDAT")) {
		smtp_error(s, "554 5.3.2 mail delivery is not available on this server yet\r\n");
	} else if (bu_slice_caseeq(verb, "VRFY")) {
		bu_conn_puts(s->conn, "252 2.5.0 cannot verify the user\r\n");
	} else if (bu_slice_caseeq(verb, "HELP")) {
		bu_conn_puts(s->conn, "214 2.0.0 see RFC 5321\r\n");
	} else {
		smtp_error(s, "500 5.5.2 command not recognized\r\n");
	}
	return !s->quitting;
}

static void smtp_input(void *sess)
{
	struct smtp_session *s = sess;
	struct bu_buf *in = bu_conn_in(s->conn);
	size_t max = (size_t)bu_server_config(bu_conn_server(s->conn))->max_line;

	while (!s->quitting && !bu_conn_closing(s->conn) && in->len > 0) {
		char *line;
		int ret = bu_buf_take_line(in, max, &line);

		if (ret == 0)
			return;
		if (ret == -1) {
			bu_conn_puts(s->conn, "500 5.5.6 line too long\r\n");
			bu_conn_close(s->conn, "line too long");
			s->quitting = true;
			return;
		}
		if (ret == -2) {
			bu_conn_puts(s->conn, "500 5.5.2 invalid character in command\r\n");
			continue;
		}
		/* the line is consumed before it runs: STARTTLS discards the rest */
		bool go_on = smtp_command(s, line);

		free(line);
		if (!go_on)
			return;
	}
}

static void smtp_timeout(void *sess)
{
	struct smtp_session *s = sess;

	bu_conn_printf(s->conn, "421 4.4.2 %s timeout, closing connection\r\n", s->hostname);
	bu_conn_close(s->conn, "timeout");
	s->quitting = true;
}

static void smtp_close(void *sess)
{
	free(sess);
}

const struct bu_proto_ops smtp_proto_ops = {
	.name = "smtp",
	.open = smtp_open,
	.input = smtp_input,
	.timeout = smtp_timeout,
	.close = smtp_close,
};

const struct bu_proto_ops lmtp_proto_ops = {
	.name = "lmtp",
	.open = lmtp_open,
	.input = smtp_input,
	.timeout = smtp_timeout,
	.close = smtp_close,
};

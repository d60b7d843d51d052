/*
 * cmd_auth.c - CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE, LOGOUT
 * (RFC 3501 6.1, 6.2; SASL-IR RFC 4959; SASL PLAIN RFC 4616; response
 * codes RFC 5530).
 *
 * Cleartext passwords are accepted only over TLS, or from a loopback
 * address when auth.allow_plaintext_loopback is set; otherwise the
 * capability list says LOGINDISABLED, omits AUTH=PLAIN, and LOGIN /
 * AUTHENTICATE get NO [PRIVACYREQUIRED]. Checking the password (and the
 * failed-login throttle) is auth_authenticate() on a worker. Passwords are
 * wiped from the command arena, the decoded SASL buffer and the parser's
 * line buffer after use. Only the PLAIN mechanism is offered; an
 * authorization identity other than the authentication identity is
 * refused (no proxy logins).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "groupware/auth.h"
#include "groupware/principal.h"
#include "imap_int.h"
#include "server/core/config.h"
#include "server/core/log.h"

bool imap_plaintext_allowed(const struct imap_session *s)
{
	const struct imap_sess *x = (const struct imap_sess *)s;

	return x->tls || (x->cfg->allow_plaintext_loopback && x->loopback);
}

const char *imap_capabilities(const struct imap_session *s)
{
	static __thread char buf[1024];
	const struct imap_sess *x = (const struct imap_sess *)s;
	struct bu_buf b;

	bu_buf_init(&b, 0);
	bu_buf_append_str(&b, "IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL+");
	if (s->state == IMAP_STATE_NOAUTH) {
		if (!x->tls && x->svc == BU_SVC_IMAP)
			bu_buf_append_str(&b, " STARTTLS");
		if (imap_plaintext_allowed(s))
			bu_buf_append_str(&b, " AUTH=PLAIN");
		else
			bu_buf_append_str(&b, " LOGINDISABLED");
	} else {
		bu_buf_append_str(&b,
				  " NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN CONDSTORE QRESYNC"
				  " ESEARCH SEARCHRES WITHIN SORT SORT=DISPLAY ESORT THREAD=REFERENCES"
				  " THREAD=ORDEREDSUBJECT LIST-EXTENDED LIST-STATUS SPECIAL-USE"
				  " CREATE-SPECIAL-USE STATUS=SIZE BINARY QUOTA QUOTA=RES-STORAGE"
				  " QUOTA=RES-MESSAGE ACL RIGHTS=texk MULTIAPPEND");
		bu_buf_printf(&b, " APPENDLIMIT=%d", x->cfg->max_literal);
		bu_buf_append_str(&b, " UTF8=ACCEPT NOTIFY METADATA METADATA-SERVER OBJECTID"
				      " PREVIEW SAVEDATE REPLACE CATENATE");
		if (!s->compress)
			bu_buf_append_str(&b, " COMPRESS=DEFLATE");
	}
	snprintf(buf, sizeof(buf), "%s", bu_buf_cstr(&b));
	bu_buf_deinit(&b);
	return buf;
}

void imap_cmd_capability(struct imap_cmd *cmd)
{
	if (cmd->n_args != 0) {
		imap_reply_bad(cmd, "CAPABILITY takes no arguments");
		return;
	}
	imap_untagged(cmd, "CAPABILITY %s", imap_capabilities(cmd->s));
	imap_reply_ok(cmd, "Capability completed");
}

void imap_cmd_logout(struct imap_cmd *cmd)
{
	struct imap_sess *x = imap_sess_of(cmd->s);

	if (cmd->n_args != 0) {
		imap_reply_bad(cmd, "LOGOUT takes no arguments");
		return;
	}
	imap_untagged(cmd, "BYE Logging out");
	imap_reply_ok(cmd, "Logout completed");
	cmd->s->state = IMAP_STATE_LOGOUT;
	x->close_after = true;
}

void imap_cmd_starttls(struct imap_cmd *cmd)
{
	struct imap_sess *x = imap_sess_of(cmd->s);
	struct bu_conn *c = cmd->s->conn;

	if (cmd->n_args != 0) {
		imap_reply_bad(cmd, "STARTTLS takes no arguments");
		return;
	}
	if (x->tls || x->svc != BU_SVC_IMAP) {
		imap_reply_bad(cmd, "TLS is already active");
		return;
	}
	imap_reply_ok(cmd, "Begin TLS negotiation now");
	imap_cmd_flush(cmd);
	if (bu_conn_starttls(c) < 0) {
		bu_error("event=starttls_failed reason=%s", "tls_unavailable");
		bu_conn_close(c, "starttls failed");
		return;
	}
	/* RFC 3501 6.2.1: nothing the client sent before the handshake
	 * counts (the connection dropped its buffered input) */
	imap_parser_reset(cmd->s->parser);
}

/* ---- password logins ---------------------------------------------------- */

struct login {
	char *user;
	char *pass;
	size_t pass_len;
	const char *mech;
	char *ip;
};

static struct principal *principal_copy(struct bu_arena *a, const struct principal *p)
{
	struct principal *c = bu_arena_memdup(a, p, sizeof(*p));

	c->address = bu_arena_strdup(a, p->address ? p->address : "");
	c->localpart = bu_arena_strdup(a, p->localpart ? p->localpart : "");
	c->domain = bu_arena_strdup(a, p->domain ? p->domain : "");
	c->display_name = bu_arena_strdup(a, p->display_name ? p->display_name : "");
	return c;
}

static void login_after(struct imap_cmd *cmd)
{
	struct imap_sess *x = imap_sess_of(cmd->s);
	struct imap_session *s = cmd->s;

	if (s->state == IMAP_STATE_NOAUTH)
		return;
	bu_conn_set_log_user(s->conn, s->user->address);
	bu_conn_set_timeout(s->conn, x->cfg->idle_timeout);
	imap_session_set_limits(x);
	imap_session_update_watch(x);
}

static void login_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_sess *x = imap_sess_of(cmd->s);
	struct imap_session *s = cmd->s;
	struct login *l = cmd->priv;
	struct principal *p = NULL;
	struct auth_request req = {
		.login = l->user,
		.password = l->pass,
		.client_ip = l->ip,
		.proto = "imap",
		.mech = l->mech,
		.fail_limit = x->cfg->auth_fail_limit,
		.fail_window = x->cfg->auth_fail_window,
	};
	enum auth_result r = auth_authenticate(db, cmd->a, &req, &p);

	bu_wipe(l->pass, l->pass_len);
	if (r == AUTH_OK && p == NULL) {
		bu_error("event=imap_bug reason=auth_ok_without_principal");
		r = AUTH_TEMPFAIL;
	}
	if (r == AUTH_OK && p->kind != PRINCIPAL_USER) {
		bu_info("event=imap_login_refused user=%s reason=kind_%s", bu_log_q(p->address),
			principal_kind_name(p->kind));
		r = AUTH_FAILED;
	}
	switch (r) {
	case AUTH_OK:
		s->user = principal_copy(s->arena, p);
		s->user_id = p->id;
		s->state = IMAP_STATE_AUTH;
		imap_reply_ok(cmd, "[CAPABILITY %s] Logged in", imap_capabilities(s));
		imap_cmd_after(cmd, login_after);
		break;
	case AUTH_TEMPFAIL:
		imap_reply_no(cmd,
			      "[UNAVAILABLE] Temporary authentication failure, try again later");
		break;
	case AUTH_THROTTLED:
		imap_reply_no(cmd, "[UNAVAILABLE] Too many failed logins; try again later.");
		break;
	case AUTH_FAILED:
	case AUTH_DISABLED:
	default:
		imap_reply_no(cmd, "[AUTHENTICATIONFAILED] Authentication failed.");
		break;
	}
}

static void login_submit(struct imap_cmd *cmd, const char *user, char *pass, size_t pass_len,
			 const char *mech)
{
	struct imap_sess *x = imap_sess_of(cmd->s);
	struct login *l = bu_arena_alloc(cmd->a, sizeof(*l));

	l->user = bu_arena_strdup(cmd->a, user);
	l->pass = pass;
	l->pass_len = pass_len;
	l->mech = mech;
	l->ip = x->peer;
	cmd->priv = l;
	imap_cmd_submit(cmd, login_run);
}

void imap_cmd_login(struct imap_cmd *cmd)
{
	struct imap_arg *u, *p;

	if (cmd->n_args != 2 || !imap_arg_is_string(&cmd->args[0]) ||
	    !imap_arg_is_string(&cmd->args[1])) {
		imap_reply_bad(cmd, "LOGIN needs a user name and a password");
		goto wipe;
	}
	if (!imap_plaintext_allowed(cmd->s)) {
		imap_reply_no(cmd, "[PRIVACYREQUIRED] Plaintext authentication is disallowed "
				   "on non-secure connections; use STARTTLS");
		goto wipe;
	}
	u = &cmd->args[0];
	p = &cmd->args[1];
	login_submit(cmd, u->str, (char *)p->str, p->len, "LOGIN");
	return;
wipe:
	for (size_t i = 0; i < cmd->n_args; i++) {
		if (cmd->args[i].type != IMAP_ARG_LIST)
			bu_wipe((char *)cmd->args[i].str, cmd->args[i].len);
	}
}

/* ---- AUTHENTICATE PLAIN -------------------------------------------------- */

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict base64 (RFC 4648, padding required). Returns the length or -1. */
static ssize_t b64_decode(const char *in, uint8_t *out)
{
	size_t len = strlen(in), i, o = 0;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		int v[4];
		size_t k, pad = 0;

		for (k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1;
			v[k] = b64val((unsigned char)in[i + k]);
			if (v[k] < 0)
				return -1;
		}
		out[o++] = (uint8_t)((v[0] << 2) | (v[1] >> 4));
		if (pad < 2)
			out[o++] = (uint8_t)(((v[1] & 0xf) << 4) | (v[2] >> 2));
		if (pad < 1)
			out[o++] = (uint8_t)(((v[2] & 0x3) << 6) | v[3]);
	}
	return (ssize_t)o;
}

/* message = [authzid] NUL authcid NUL passwd (RFC 4616) */
static void plain_response(struct imap_cmd *cmd, char *resp)
{
	size_t rlen = strlen(resp);
	uint8_t *buf = bu_arena_alloc(cmd->a, rlen / 4 * 3 + 4);
	ssize_t n;
	const uint8_t *z1, *z2;
	char *authz, *authc, *pass;
	size_t pass_len;

	if (strcmp(resp, "=") == 0) {
		n = 0;
	} else {
		n = b64_decode(resp, buf);
	}
	bu_wipe(resp, rlen);
	if (n < 0) {
		imap_reply_bad(cmd, "Invalid base64 in the SASL response");
		return;
	}
	z1 = memchr(buf, '\0', (size_t)n);
	z2 = z1 != NULL ? memchr(z1 + 1, '\0', (size_t)(buf + n - (z1 + 1))) : NULL;
	if (z1 == NULL || z2 == NULL || memchr(z2 + 1, '\0', (size_t)(buf + n - (z2 + 1)))) {
		bu_wipe(buf, (size_t)n);
		imap_reply_no(cmd, "[AUTHENTICATIONFAILED] Authentication failed.");
		return;
	}
	authz = (char *)buf;
	authc = (char *)z1 + 1;
	pass = (char *)z2 + 1;
	pass_len = (size_t)(buf + n - (z2 + 1));
	pass[pass_len] = '\0';
	if (*authz != '\0' && strcasecmp(authz, authc) != 0) {
		bu_wipe(buf, (size_t)n);
		imap_reply_no(cmd, "[AUTHORIZATIONFAILED] Proxy authorization is not supported");
		return;
	}
	login_submit(cmd, authc, pass, pass_len, "PLAIN");
}

void imap_cmd_auth_line(struct imap_cmd *cmd, char *line)
{
	if (strcmp(line, "*") == 0) {
		imap_reply_bad(cmd, "Authentication cancelled");
		return;
	}
	plain_response(cmd, line);
}

void imap_cmd_authenticate(struct imap_cmd *cmd)
{
	struct imap_sess *x = imap_sess_of(cmd->s);

	if (cmd->n_args < 1 || cmd->n_args > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    (cmd->n_args == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imap_reply_bad(cmd, "AUTHENTICATE needs a mechanism name");
		goto wipe;
	}
	if (strcasecmp(cmd->args[0].str, "PLAIN") != 0) {
		imap_reply_no(cmd, "[CANNOT] Unsupported authentication mechanism");
		goto wipe;
	}
	if (!imap_plaintext_allowed(cmd->s)) {
		imap_reply_no(cmd, "[PRIVACYREQUIRED] Plaintext authentication is disallowed "
				   "on non-secure connections; use STARTTLS");
		goto wipe;
	}
	if (cmd->n_args == 2) {
		/* SASL-IR (RFC 4959) */
		plain_response(cmd, (char *)cmd->args[1].str);
		return;
	}
	bu_conn_puts(cmd->s->conn, "+ \r\n");
	x->auth_cont = true;
	return;
wipe:
	if (cmd->n_args == 2 && cmd->args[1].type != IMAP_ARG_LIST)
		bu_wipe((char *)cmd->args[1].str, cmd->args[1].len);
}

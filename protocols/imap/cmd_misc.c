/*
 * cmd_misc.c - NOOP and CHECK (RFC 3501 6.1.2, 6.4.1), ID (RFC 2971),
 * NAMESPACE (RFC 2342) and COMPRESS (RFC 4978).
 *
 * NOOP and CHECK in the selected state go to a worker only so that the
 * framework reports what others changed meanwhile, and only when something
 * may have changed (imap_sync_unneeded); CHECK has nothing to flush (every
 * write is committed when its command completes).
 * ID logs the client's name and version and answers with ours; the
 * client's values are size-checked as RFC 2971 3.3 asks.
 */
#include <string.h>
#include <strings.h>

#include "imap_int.h"
#include "server/core/log.h"

#define BUREAU_IMAP_VERSION "0.1.0"

static void noop_run(struct imap_cmd *cmd, struct bu_db *db)
{
	imap_reply_ok(cmd, "%s completed", cmd->name);
}

static void noop_or_check(struct imap_cmd *cmd)
{
	if (cmd->n_args != 0) {
		imap_reply_bad(cmd, "%s takes no arguments", cmd->name);
		return;
	}
	if (cmd->s->sel != NULL && !imap_sync_unneeded(imap_sess_of(cmd->s), true)) {
		imap_cmd_submit(cmd, noop_run);
		return;
	}
	imap_reply_ok(cmd, "%s completed", cmd->name);
}

void imap_cmd_noop(struct imap_cmd *cmd)
{
	noop_or_check(cmd);
}

void imap_cmd_check(struct imap_cmd *cmd)
{
	noop_or_check(cmd);
}

void imap_cmd_namespace(struct imap_cmd *cmd)
{
	if (cmd->n_args != 0) {
		imap_reply_bad(cmd, "NAMESPACE takes no arguments");
		return;
	}
	imap_untagged(cmd, "NAMESPACE ((\"\" \"/\")) ((\"%s\" \"/\")) ((\"%s\" \"/\"))",
		      IMAP_NS_OTHER, IMAP_NS_SHARED);
	imap_reply_ok(cmd, "Namespace completed");
}

void imap_cmd_id(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *arg;
	const char *name = NULL, *version = NULL;
	size_t i;

	if (cmd->n_args != 1) {
		imap_reply_bad(cmd, "ID needs one argument");
		return;
	}
	arg = &cmd->args[0];
	if (arg->type == IMAP_ARG_LIST) {
		/* RFC 2971 3.3: at most 30 pairs, field 30 octets, value 1024 */
		if (arg->n_list % 2 != 0 || arg->n_list > 60) {
			imap_reply_bad(cmd, "Invalid ID parameter list");
			return;
		}
		for (i = 0; i < arg->n_list; i += 2) {
			const struct imap_arg *k = &arg->list[i], *v = &arg->list[i + 1];

			if (k->type != IMAP_ARG_STRING && k->type != IMAP_ARG_LITERAL) {
				imap_reply_bad(cmd, "Invalid ID field name");
				return;
			}
			if (k->len > 30 || (v->type != IMAP_ARG_NIL &&
					    (!imap_arg_is_string(v) || v->len > 1024))) {
				imap_reply_bad(cmd, "Invalid ID field");
				return;
			}
			if (v->type == IMAP_ARG_NIL)
				continue;
			if (strcasecmp(k->str, "name") == 0)
				name = v->str;
			else if (strcasecmp(k->str, "version") == 0)
				version = v->str;
		}
	} else if (arg->type != IMAP_ARG_NIL) {
		imap_reply_bad(cmd, "ID needs a list or NIL");
		return;
	}
	if (name != NULL) {
		s->client_id =
			bu_arena_printf(s->arena, "%.64s%s%.32s", name, version != NULL ? " " : "",
					version != NULL ? version : "");
		bu_info("event=imap_id client=%s", bu_log_q(s->client_id));
	}
	imap_untagged(cmd, "ID (\"name\" \"Bureau\" \"version\" \"%s\")", BUREAU_IMAP_VERSION);
	imap_reply_ok(cmd, "ID completed");
}

void imap_cmd_compress(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;

	if (cmd->n_args != 1 || !imap_arg_atom_eq(&cmd->args[0], "DEFLATE")) {
		imap_reply_bad(cmd, "Only COMPRESS DEFLATE is supported");
		return;
	}
	if (s->compress) {
		imap_reply_no(cmd, "[COMPRESSIONACTIVE] Compression is already active");
		return;
	}
	imap_reply_ok(cmd, "DEFLATE active");
	imap_cmd_flush(cmd);
	if (bu_conn_compress(s->conn) < 0) {
		bu_error("event=compress_failed");
		bu_conn_close(s->conn, "compress failed");
		return;
	}
	s->compress = true;
}

/*
 * session.c - the IMAP session: bu_proto_ops for the imap and imaps
 * services, the parse/dispatch loop and the worker hand-off.
 *
 * One command at a time (pipelined commands wait in the input buffer):
 * the parser delivers a complete command, the dispatcher checks state and
 * UID use, the handler's check half runs here on the I/O thread, and a
 * handler that needs the database submits its run half to a worker. While
 * a task is in flight the I/O thread leaves the session alone; hub
 * notifications only set flags. After the run, for a command in the
 * selected state, the framework fetches what others changed and slots the
 * untagged updates in before the tagged reply (imap_mailbox_sync).
 *
 * Waiting states: IDLE (RFC 2177) and AUTHENTICATE (RFC 3501 6.2.2) read
 * single lines; IDLE and NOTIFY (RFC 5465) get unsolicited updates from a
 * sync task submitted when the hub says the watched account changed. An
 * idle session holds no worker and no database connection.
 *
 * Limits: literal size (64 KiB before login, limits.max_literal after),
 * line length, pre-auth and idle timeouts (IDLE: 31 minutes), and
 * IMAP_MAX_BAD_COMMANDS BAD replies in a row before "* BYE". A client that
 * pipelines commands without reading the answers gets no further command
 * parsed while more than IMAP_OUT_HIGH_WATER of output waits for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/principal.h"
#include "imap_int.h"
#include "server/core/config.h"
#include "server/core/db.h"
#include "server/core/log.h"
#include "server/core/metrics.h"

static void parse_loop(struct imap_sess *x);

/* ---- limits and watching ------------------------------------------------ */

void imap_session_set_limits(struct imap_sess *x)
{
	size_t lit = (size_t)x->cfg->max_literal;

	if (x->pub.state == IMAP_STATE_NOAUTH && lit > IMAP_PREAUTH_MAX_LITERAL)
		lit = IMAP_PREAUTH_MAX_LITERAL;
	imap_parser_set_limits(x->pub.parser, (size_t)x->cfg->max_line, lit);
}

void imap_session_update_watch(struct imap_sess *x)
{
	struct imap_session *s = &x->pub;
	int64_t acc = 0;

	x->watch_dirty = false;
	if (s->state == IMAP_STATE_AUTH || s->state == IMAP_STATE_SELECTED) {
		/* one account per connection: NOTIFY follows the user's own
		 * mailboxes; otherwise the selected mailbox's owner */
		if (s->sel != NULL && !s->notify_active)
			acc = s->sel->owner_id;
		else
			acc = s->user_id;
	}
	if (acc != x->watching) {
		x->watching = acc;
		bu_conn_watch(s->conn, acc);
	}
}

/* ---- tasks ----------------------------------------------------------- */

static void task_run(struct bu_task *t, struct bu_db *db);
static void task_done(struct bu_task *t, struct bu_conn *c);

static void submit(struct imap_sess *x, enum imap_task_kind kind)
{
	bu_assert(!x->task_busy);
	memset(&x->task, 0, sizeof(x->task));
	x->task.run = task_run;
	x->task.done = task_done;
	x->task_kind = kind;
	x->task_busy = true;
	bu_conn_submit(x->pub.conn, &x->task);
}

void imap_cmd_submit(struct imap_cmd *cmd, imap_run_fn *run)
{
	struct imap_sess *x = imap_sess_of(cmd->s);

	cmd->run = run;
	x->synced = false;
	/* the run (or the sync after it) reports the selected mailbox */
	if (cmd->s->sel != NULL)
		cmd->s->changes_pending = false;
	submit(x, IMAP_TASK_CMD);
}

void imap_cmd_after(struct imap_cmd *cmd, imap_after_fn *fn)
{
	imap_sess_of(cmd->s)->after = fn;
}

/*
 * imap_mailbox_sync, remembering the owner's change generation loaded
 * before the sync's snapshot when the sync went through.
 */
static void sync_mailbox(struct imap_sess *x, struct imap_cmd *cmd, struct bu_db *db, bool allow)
{
	struct imap_mailbox *mb = x->pub.sel;
	uint64_t gen = bu_changes_gen(mb->owner_id);

	x->sync_failed = false;
	imap_mailbox_sync(cmd, db, allow);
	x->gen_valid = !x->sync_failed && !x->mailbox_gone && x->pub.sel == mb;
	x->gen = gen;
}

/*
 * Nothing can have changed in the selected mailbox since the last sync:
 * no committed write to its owner's account (nor a rights or principal
 * change) in this process, nor one the hub has heard of from others, and
 * no held-back expunges that may now be sent.
 */
bool imap_sync_unneeded(struct imap_sess *x, bool allow)
{
	return x->gen_valid && (x->n_held == 0 || !allow) &&
	       bu_changes_gen(x->pub.sel->owner_id) == x->gen;
}

/* Insert the untagged updates of others' changes before the tagged reply. */
static void sync_before_tagged(struct imap_sess *x, struct imap_cmd *cmd, struct bu_db *db)
{
	const struct imap_cmd_def *def = x->cur_def;
	bool allow = def == NULL || !(def->flags & IMAP_CMD_NO_EXPUNGE) || cmd->uid;
	size_t off = x->tag_off, tail_len;
	uint8_t *tail;

	if (imap_sync_unneeded(x, allow)) {
		x->synced = true;
		return;
	}
	if (off > cmd->out.len)
		off = cmd->out.len;
	tail_len = cmd->out.len - off;
	tail = bu_memdup(cmd->out.data + off, tail_len + 1);
	cmd->out.len = off;
	sync_mailbox(x, cmd, db, allow);
	x->tag_off = cmd->out.len;
	bu_buf_append(&cmd->out, tail, tail_len);
	free(tail);
}

/* unsolicited updates (IDLE, NOTIFY): worker */
static void run_unsolicited(struct imap_sess *x, struct bu_db *db)
{
	struct imap_session *s = &x->pub;
	struct imap_cmd *cmd = s->idling && s->cur != NULL ? s->cur : x->bg;
	struct bu_arena *saved = cmd->a;

	cmd->a = x->sync_arena;
	if (s->sel != NULL && x->sync_sel) {
		bool allow = s->idling || !imap_notify_selected_delayed(x);

		sync_mailbox(x, cmd, db, allow);
	}
	if (x->notify != NULL)
		imap_notify_run(cmd, db);
	cmd->a = saved;
}

static void task_run(struct bu_task *t, struct bu_db *db)
{
	struct imap_sess *x = (struct imap_sess *)((char *)t - offsetof(struct imap_sess, task));
	struct imap_cmd *cmd = x->pub.cur;

	if (x->task_kind == IMAP_TASK_SYNC) {
		run_unsolicited(x, db);
		return;
	}
	bu_assert(cmd != NULL && cmd->run != NULL);
	cmd->again = false;
	cmd->run(cmd, db);
	if (x->synced) {
		/* the command reported the mailbox itself (SELECT, CLOSE,
		 * EXPUNGE...) or left it: the next command re-reads it */
		x->gen_valid = false;
	}
	if (cmd->again)
		return;
	if (!cmd->done) {
		bu_error("event=imap_bug cmd=%s reason=no_tagged_reply", cmd->name);
		imap_reply_no(cmd, "[SERVERBUG] Internal error");
	}
	if (x->pub.sel != NULL && !x->synced && x->result != 'B' && !x->mailbox_gone)
		sync_before_tagged(x, cmd, db);
}

static void write_out(struct imap_sess *x, struct imap_cmd *cmd)
{
	if (cmd->out.len > 0) {
		bu_conn_write(x->pub.conn, cmd->out.data, cmd->out.len);
		bu_buf_reset(&cmd->out);
	}
}

static void task_done(struct bu_task *t, struct bu_conn *c)
{
	struct imap_sess *x = (struct imap_sess *)((char *)t - offsetof(struct imap_sess, task));
	struct imap_session *s = &x->pub;
	struct imap_cmd *cmd = s->cur;

	x->task_busy = false;
	if (x->task_kind == IMAP_TASK_SYNC) {
		struct imap_cmd *out = s->idling && cmd != NULL ? cmd : x->bg;

		bu_arena_reset(x->sync_arena);
		if (!bu_conn_closing(c))
			write_out(x, out);
		else
			bu_buf_reset(&out->out);
		if (x->mailbox_gone && !bu_conn_closing(c)) {
			/* imap_mailbox_sync already wrote the BYE */
			bu_conn_close(c, "mailbox deleted");
			return;
		}
		if (x->watch_dirty)
			imap_session_update_watch(x);
		imap_session_kick(x);
		if (s->cur == NULL && !x->task_busy)
			parse_loop(x);
		return;
	}
	bu_assert(cmd != NULL);
	if (x->after != NULL) {
		/* also when closing: an after function may own resources */
		imap_after_fn *fn = x->after;

		x->after = NULL;
		fn(cmd);
	}
	if (bu_conn_closing(c)) {
		imap_cmd_finish(cmd);
		return;
	}
	if (x->watch_dirty)
		imap_session_update_watch(x);
	if (cmd->again) {
		write_out(x, cmd);
		if (bu_conn_out_pending(c) < IMAP_OUT_HIGH_WATER) {
			submit(x, IMAP_TASK_CMD);
		} else {
			x->wait_drain = true;
			bu_conn_pause_input(c, true);
		}
		return;
	}
	imap_cmd_finish(cmd);
}

/* ---- finishing a command --------------------------------------------- */

static const char *result_name(char r)
{
	return r == 'O' ? "ok" : r == 'N' ? "no" : r == 'B' ? "bad" : "none";
}

static void account(struct imap_sess *x, const char *cmdname, const char *tag, char result,
		    int64_t start_us)
{
	char series[128], labels[96];
	int64_t us = bu_mono_us() - start_us;

	snprintf(series, sizeof(series), "bureau_imap_commands_total{cmd=\"%s\",result=\"%s\"}",
		 cmdname, result_name(result));
	bu_metric_add(series, 1);
	snprintf(labels, sizeof(labels), "proto=\"imap\",cmd=\"%s\"", cmdname);
	bu_metric_observe("bureau_command_seconds", labels, (double)us / 1e6);
	bu_debug("event=imap_command tag=%s cmd=%s ms=%lld.%03lld result=%s",
		 bu_log_q(tag != NULL ? tag : "*"), cmdname, (long long)(us / 1000),
		 (long long)(us % 1000), result_name(result));
	/* consecutive BAD replies count (as Dovecot's bad_counter): a long
	 * session with an occasional unknown command is not a flood */
	if (result == 'O' || result == 'N')
		x->pub.bad_commands = 0;
	if (result == 'B' && ++x->pub.bad_commands >= IMAP_MAX_BAD_COMMANDS &&
	    !bu_conn_closing(x->pub.conn)) {
		bu_conn_puts(x->pub.conn, "* BYE Too many invalid commands\r\n");
		bu_conn_close(x->pub.conn, "too many invalid commands");
		x->close_after = true;
	}
}

void imap_cmd_finish(struct imap_cmd *cmd)
{
	struct imap_sess *x = imap_sess_of(cmd->s);
	struct imap_session *s = &x->pub;
	struct bu_conn *c = s->conn;
	const char *name = x->cur_def != NULL ? x->cur_def->name : "unknown";

	if (!bu_conn_closing(c))
		write_out(x, cmd);
	account(x, name, cmd->tag, x->result, cmd->start_us);
	bu_buf_deinit(&cmd->out);
	s->cur = NULL;
	x->cur_def = NULL;
	x->result = 0;
	x->wait_drain = false;
	x->auth_cont = false;
	bu_arena_reset(x->cmd_arena);
	if (x->close_after && !bu_conn_closing(c))
		bu_conn_close(c, s->state == IMAP_STATE_LOGOUT ? "logout" : "closed");
	if (bu_conn_closing(c))
		return;
	bu_conn_pause_input(c, false);
	imap_session_kick(x);
	if (!x->in_input && !x->task_busy)
		parse_loop(x);
}

void imap_cmd_flush(struct imap_cmd *cmd)
{
	write_out(imap_sess_of(cmd->s), cmd);
}

/* ---- unsolicited updates ---------------------------------------------- */

void imap_session_kick(struct imap_sess *x)
{
	struct imap_session *s = &x->pub;
	bool sel, other;

	if (x->task_busy || bu_conn_closing(s->conn) || x->close_after)
		return;
	if (!(s->idling || (s->cur == NULL && s->notify_active)))
		return;
	sel = s->sel != NULL && s->changes_pending && (s->idling || imap_notify_selected(x));
	other = x->notify != NULL && imap_notify_pending(x);
	if (!sel && !other)
		return;
	x->sync_sel = sel;
	s->changes_pending = false;
	submit(x, IMAP_TASK_SYNC);
}

/* ---- input ------------------------------------------------------------ */

static bool state_allows(const struct imap_session *s, const struct imap_cmd_def *def)
{
	switch (s->state) {
	case IMAP_STATE_NOAUTH:
		return (def->flags & IMAP_CMD_NOAUTH) != 0;
	case IMAP_STATE_AUTH:
		return (def->flags & IMAP_CMD_AUTH) != 0;
	case IMAP_STATE_SELECTED:
		return (def->flags & (IMAP_CMD_AUTH | IMAP_CMD_SELECTED)) != 0;
	case IMAP_STATE_LOGOUT:
		return false;
	}
	return false;
}

static void dispatch(struct imap_sess *x, const struct imap_command *pc)
{
	struct imap_session *s = &x->pub;
	const struct imap_cmd_def *def = imap_command_find(pc->name);
	struct imap_cmd *cmd = bu_arena_alloc(x->cmd_arena, sizeof(*cmd));

	x->tls = bu_conn_is_tls(s->conn);
	cmd->s = s;
	cmd->a = x->cmd_arena;
	cmd->tag = pc->tag;
	cmd->name = pc->name;
	cmd->uid = pc->uid;
	cmd->args = pc->args;
	cmd->n_args = pc->n_args;
	bu_buf_init(&cmd->out, 0);
	cmd->start_us = bu_mono_us();
	s->cur = cmd;
	x->cur_def = def;
	x->result = 0;
	x->synced = false;
	x->after = NULL;
	if (def == NULL) {
		imap_reply_bad(cmd, "[CLIENTBUG] Unknown command");
	} else if (pc->uid && !(def->flags & IMAP_CMD_UID)) {
		imap_reply_bad(cmd, "[CLIENTBUG] UID cannot be used with %s", def->name);
	} else if (!state_allows(s, def)) {
		if (s->state == IMAP_STATE_NOAUTH)
			imap_reply_bad(cmd, "[CLIENTBUG] Command not permitted before login");
		else if ((def->flags & IMAP_CMD_SELECTED) && s->sel == NULL)
			imap_reply_bad(cmd, "[CLIENTBUG] No mailbox selected");
		else
			imap_reply_bad(cmd, "[CLIENTBUG] Command not permitted in this state");
	} else {
		def->fn(cmd);
		if (cmd->run != NULL || s->idling || x->auth_cont)
			return; /* on a worker, or waiting for a line */
		if (!cmd->done) {
			bu_error("event=imap_bug cmd=%s reason=no_tagged_reply", def->name);
			imap_reply_no(cmd, "[SERVERBUG] Internal error");
		}
	}
	imap_cmd_finish(cmd);
}

static void protocol_error(struct imap_sess *x, const char *tag, bool toobig, const char *err)
{
	struct bu_conn *c = x->pub.conn;

	if (tag == NULL || *tag == '\0')
		tag = "*";
	/* RFC 5530: every BAD carries a response code ([TOOBIG] for limits,
	 * [CLIENTBUG] for syntax the client got wrong) */
	bu_conn_printf(c, "%s BAD %s%s\r\n", tag, toobig ? "[TOOBIG] " : "[CLIENTBUG] ",
		       err != NULL ? err : "Syntax error");
	account(x, "unknown", tag, 'B', bu_mono_us());
	bu_arena_reset(x->cmd_arena);
	imap_parser_reset(x->pub.parser);
	if (imap_parser_must_close(x->pub.parser) && !bu_conn_closing(c)) {
		/* RFC 7888 4: we refused a non-synchronizing literal whose
		 * octets are on their way */
		bu_conn_puts(c, "* BYE Literal too large\r\n");
		bu_conn_close(c, "literal too large");
	}
}

static void auth_input(struct imap_sess *x);

/* A command that reads a line of its own (IDLE's DONE, AUTHENTICATE's
 * response) may find it already buffered, sent without waiting for our
 * "+": no input() call will come for bytes that are already here. */
static void feed_waiting_line(struct imap_sess *x)
{
	struct imap_session *s = &x->pub;
	struct bu_buf *in = bu_conn_in(s->conn);

	while (s->cur != NULL && !x->task_busy && !bu_conn_closing(s->conn) && in->len > 0) {
		size_t before = in->len;

		if (s->idling)
			imap_idle_input(x);
		else if (x->auth_cont)
			auth_input(x);
		else
			break;
		if (in->len == before)
			break;
	}
}

static void parse_loop(struct imap_sess *x)
{
	struct imap_session *s = &x->pub;
	struct bu_conn *c = s->conn;
	struct bu_buf *in = bu_conn_in(c);

	x->in_input = true;
	while (s->cur == NULL && !x->task_busy && !bu_conn_closing(c) && !x->close_after) {
		struct imap_command pc;
		const char *tag = NULL, *err = NULL;
		enum imap_parse_result r;

		if (in->len == 0)
			break;
		if (bu_conn_out_pending(c) >= IMAP_OUT_HIGH_WATER) {
			/* a client that pipelines without reading its answers:
			 * take no more commands until it reads (imap_drained);
			 * its input buffer is bounded, so it stalls, not us */
			x->wait_out = true;
			bu_conn_pause_input(c, true);
			break;
		}
		memset(&pc, 0, sizeof(pc));
		r = imap_parser_feed(s->parser, x->cmd_arena, in, &pc, &tag, &err);
		if (r == IMAP_PARSE_NEED_MORE)
			break;
		if (r == IMAP_PARSE_CONTINUE) {
			bu_conn_puts(c, "+ OK\r\n");
			continue;
		}
		if (r == IMAP_PARSE_ERROR || r == IMAP_PARSE_TOOBIG) {
			protocol_error(x, tag, r == IMAP_PARSE_TOOBIG, err);
			continue;
		}
		dispatch(x, &pc);
		feed_waiting_line(x);
	}
	x->in_input = false;
}

static void auth_input(struct imap_sess *x)
{
	struct imap_cmd *cmd = x->pub.cur;
	struct bu_buf *in = bu_conn_in(x->pub.conn);
	const uint8_t *lf = in->len > 0 ? memchr(in->data, '\n', in->len) : NULL;
	bool nul = lf != NULL && memchr(in->data, '\0', (size_t)(lf - in->data)) != NULL;
	char *line = NULL;
	int r = imap_parser_read_line(in, cmd->a, (size_t)x->cfg->max_line, &line);

	if (r == 0)
		return;
	x->auth_cont = false;
	if (r < 0) {
		if (nul)
			imap_reply_bad(cmd, "Invalid character in the SASL response");
		else
			imap_reply_bad(cmd, "[TOOBIG] Response too long");
		imap_cmd_finish(cmd);
		return;
	}
	imap_cmd_auth_line(cmd, line);
	if (cmd->run == NULL && !x->auth_cont)
		imap_cmd_finish(cmd);
}

/* ---- bu_proto_ops ------------------------------------------------------ */

static void *imap_open(struct bu_conn *c)
{
	struct imap_sess *x = bu_malloc(sizeof(*x));
	struct imap_session *s = &x->pub;
	struct imap_cmd *bg;

	x->cfg = bu_server_config(bu_conn_server(c));
	s->conn = c;
	s->arena = bu_arena_create(0);
	x->tls = bu_conn_is_tls(c);
	x->loopback = bu_conn_is_loopback(c);
	x->svc = bu_conn_service(c);
	x->peer = bu_arena_strdup(s->arena, bu_conn_peer(c) != NULL ? bu_conn_peer(c) : "");
	s->state = IMAP_STATE_NOAUTH;
	s->parser = imap_parser_create((size_t)x->cfg->max_line, IMAP_PREAUTH_MAX_LITERAL, 100000);
	x->cmd_arena = bu_arena_create(0);
	x->sync_arena = bu_arena_create(0);
	bg = bu_arena_alloc(s->arena, sizeof(*bg));
	bg->s = s;
	bg->a = x->sync_arena;
	bg->tag = "*";
	bg->name = "NOTIFY";
	bu_buf_init(&bg->out, 0);
	x->bg = bg;
	imap_session_set_limits(x);
	bu_conn_set_timeout(c, x->cfg->preauth_timeout);
	bu_conn_printf(c, "* OK [CAPABILITY %s] Bureau IMAP ready.\r\n", imap_capabilities(s));
	return x;
}

static void imap_input(void *sess)
{
	struct imap_sess *x = sess;
	struct imap_session *s = &x->pub;

	if (x->task_busy || bu_conn_closing(s->conn))
		return;
	if (s->cur != NULL) {
		if (s->idling)
			imap_idle_input(x);
		else if (x->auth_cont)
			auth_input(x);
		else
			bu_conn_pause_input(s->conn, true); /* streaming command */
		return;
	}
	parse_loop(x);
}

static void imap_drained(void *sess)
{
	struct imap_sess *x = sess;

	if (x->wait_out) {
		/* resuming schedules input() for what is buffered */
		x->wait_out = false;
		if (x->pub.cur == NULL)
			bu_conn_pause_input(x->pub.conn, false);
	}

	if (x->wait_drain && !x->task_busy && x->pub.cur != NULL) {
		x->wait_drain = false;
		submit(x, IMAP_TASK_CMD);
	}
}

static void imap_notify(void *sess, int64_t account_id, int64_t collection_id)
{
	struct imap_sess *x = sess;
	struct imap_session *s = &x->pub;

	/* while a task runs the worker owns s->sel: assume it is affected */
	if (x->task_busy || (s->sel != NULL && account_id == s->sel->owner_id &&
			     (collection_id == 0 || collection_id == s->sel->collection_id)))
		s->changes_pending = true;
	if (x->notify != NULL)
		imap_notify_changed(x, account_id, collection_id);
	imap_session_kick(x);
}

static void imap_timeout(void *sess)
{
	struct imap_sess *x = sess;
	struct bu_conn *c = x->pub.conn;

	if (bu_conn_closing(c))
		return;
	bu_conn_puts(c, "* BYE Autologout; idle for too long\r\n");
	bu_conn_close(c, "timeout");
}

static void imap_close(void *sess)
{
	struct imap_sess *x = sess;
	struct imap_session *s = &x->pub;

	if (s->cur != NULL)
		bu_buf_deinit(&s->cur->out);
	bu_buf_deinit(&x->bg->out);
	imap_mailbox_close(s);
	imap_notify_free(x);
	free(x->held_expunges);
	imap_parser_destroy(&s->parser);
	bu_arena_destroy(&x->cmd_arena);
	bu_arena_destroy(&x->sync_arena);
	bu_arena_destroy(&s->arena);
	free(x);
}

const struct bu_proto_ops imap_proto_ops = {
	.name = "imap",
	.open = imap_open,
	.input = imap_input,
	.drained = imap_drained,
	.notify = imap_notify,
	.timeout = imap_timeout,
	.close = imap_close,
};

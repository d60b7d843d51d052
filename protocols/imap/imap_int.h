/*
 * imap_int.h - private glue between the IMAP session framework and the
 * command files (session.c, response.c, cmd_*.c). Nothing outside
 * protocols/imap includes this; the public API is imap.h.
 *
 * The session as seen by the framework is struct imap_sess: the public
 * struct imap_session (imap.h) followed by framework state. Every
 * struct imap_session is the first member of one, so imap_sess_of() is a
 * plain cast.
 */
#ifndef IMAP_INT_H
#define IMAP_INT_H

#include "imap.h"

struct bu_config;
struct ms_msg;

/* Namespace prefixes (RFC 2342), with the hierarchy separator. */
#define IMAP_NS_OTHER "Other Users/"
#define IMAP_NS_SHARED "Shared/"
#define IMAP_SEP '/'

/* Literal size before login: enough for any LOGIN, too little to be a
 * memory lever for unauthenticated clients. */
#define IMAP_PREAUTH_MAX_LITERAL (64 * 1024)
/* Disconnect after this many BAD replies in a row (STYLE.md 34). */
#define IMAP_MAX_BAD_COMMANDS 20
/* RFC 2177: the server may drop an IDLE client after 30 minutes; we wait
 * one more so clients that re-IDLE every 29 minutes never notice. */
#define IMAP_IDLE_TIMEOUT_S (31 * 60)
/* Streaming commands stop producing above this much queued output. */
#define IMAP_OUT_HIGH_WATER (256 * 1024)

/* What the worker task of a session is doing. */
enum imap_task_kind {
	IMAP_TASK_NONE,
	IMAP_TASK_CMD,	/* cmd->run of the current command */
	IMAP_TASK_SYNC, /* IDLE / NOTIFY: unsolicited updates */
};

/* RFC 5465 NOTIFY state (cmd_notify.c) */
struct imap_notify_state;

typedef void imap_after_fn(struct imap_cmd *cmd);

struct imap_sess {
	struct imap_session pub; /* must stay first */
	const struct bu_config *cfg;
	struct bu_arena *cmd_arena;  /* parser output + current command */
	struct bu_arena *sync_arena; /* scratch for unsolicited syncs */
	struct imap_cmd *bg;	     /* pseudo command "*" for unsolicited output */
	const struct imap_cmd_def *cur_def;
	struct bu_task task;
	enum imap_task_kind task_kind;
	bool task_busy;	  /* a task is in flight */
	bool in_input;	  /* inside the input loop */
	bool wait_drain;  /* streaming command waits for output room */
	bool wait_out;	  /* parsing stopped: too much unread output */
	bool close_after; /* BYE was queued: close when done */
	bool synced;	  /* imap_mailbox_sync ran for this command */
	bool watch_dirty; /* re-evaluate bu_conn_watch on I/O thread */
	bool auth_cont;	  /* AUTHENTICATE waits for the client response */
	bool sync_sel;	  /* SYNC task: report the selected mailbox */
	bool sync_failed; /* imap_mailbox_sync could not read the changes */
	/* the selected mailbox's owner had change generation gen (server/core
	 * changes.c) before our last complete sync: while it stays the same,
	 * there is nothing new to report and the sync query is skipped */
	bool gen_valid;
	uint64_t gen;
	/* connection facts cached on the I/O thread (workers read these) */
	bool tls;
	bool loopback;
	enum bu_service_id svc;
	char *peer;	      /* s->arena */
	int64_t watching;     /* account passed to bu_conn_watch */
	size_t tag_off;	      /* offset of the tagged reply in cmd->out */
	char result;	      /* 'O' 'N' 'B' of the tagged reply, 0 none */
	imap_after_fn *after; /* I/O-thread follow-up of a worker run */
	/* expunges held back (RFC 3501 7.4.1) from the selected mailbox,
	 * sorted UIDs still present in the sequence map */
	uint32_t *held_expunges;
	size_t n_held, cap_held;
	bool mailbox_gone; /* selected mailbox was deleted */
	size_t recent_cap; /* capacity of sel->recent */
	struct imap_notify_state *notify;
};

static inline struct imap_sess *imap_sess_of(struct imap_session *s)
{
	return (struct imap_sess *)s;
}

/* ---- session.c ---- */
/* Nothing new can be reported for the selected mailbox (its owner's change
 * generation has not moved since the last sync, and no held-back expunges
 * are due when allow_expunge): the sync query may be skipped. Any thread. */
bool imap_sync_unneeded(struct imap_sess *x, bool allow_expunge);
/* Write cmd->out to the connection now (before STARTTLS/COMPRESS). */
void imap_cmd_flush(struct imap_cmd *cmd);
/* Run fn on the I/O thread after the worker half of cmd finished. */
void imap_cmd_after(struct imap_cmd *cmd, imap_after_fn *fn);
/* Finish a command that had no tagged reply when its handler returned
 * (IDLE's DONE, AUTHENTICATE's response): write out, log, go on. */
void imap_cmd_finish(struct imap_cmd *cmd);
/* Pick the account to watch (owner of the selected mailbox, the user, or
 * nothing) and call bu_conn_watch. I/O thread. */
void imap_session_update_watch(struct imap_sess *x);
/* Submit an unsolicited-update task if there is something to report and
 * nothing in flight (IDLE, NOTIFY). I/O thread. */
void imap_session_kick(struct imap_sess *x);
/* Parser limits for the session's state (literals: 64 KiB before login,
 * limits.max_literal after). I/O thread. */
void imap_session_set_limits(struct imap_sess *x);

/* ---- parser.c (beyond imap.h) ---- */
/* Change limits (login raises the literal limit). */
void imap_parser_set_limits(struct imap_parser *p, size_t max_line, size_t max_literal);
/* After IMAP_PARSE_TOOBIG: true when the refused literal was
 * non-synchronizing, so its bytes are on the way and the session closes
 * (RFC 7888 section 4). */
bool imap_parser_must_close(const struct imap_parser *p);
/* Sequence-set as sorted, merged ranges (no expansion): for sets matched
 * against a mailbox. '*' = star. -1 on bad syntax. */
struct imap_range {
	uint32_t lo, hi;
};
int imap_seqset_ranges(struct bu_arena *a, const char *s, uint32_t star, struct imap_range **r_r,
		       size_t *n_r);

/* ---- cmd_status.c ---- */
enum {
	IMAP_ST_MESSAGES = 1 << 0,
	IMAP_ST_RECENT = 1 << 1,
	IMAP_ST_UIDNEXT = 1 << 2,
	IMAP_ST_UIDVALIDITY = 1 << 3,
	IMAP_ST_UNSEEN = 1 << 4,
	IMAP_ST_DELETED = 1 << 5,
	IMAP_ST_SIZE = 1 << 6,
	IMAP_ST_HIGHESTMODSEQ = 1 << 7,
	IMAP_ST_APPENDLIMIT = 1 << 8,
	IMAP_ST_MAILBOXID = 1 << 9,
};
/* "(MESSAGES UNSEEN ...)" -> mask; -1 on an unknown item */
int imap_status_items_parse(const struct imap_arg *arg, unsigned *mask_r);
/* Write "* STATUS name (...)" for (owner, coll); name is UTF-8. Worker.
 * 0 or a negative ms_err (nothing written). */
int imap_status_write(struct imap_cmd *cmd, struct bu_db *db, const char *name, int64_t owner,
		      int64_t coll, unsigned mask);

/* ---- cmd_auth.c ---- */
void imap_cmd_auth_line(struct imap_cmd *cmd, char *line);
bool imap_plaintext_allowed(const struct imap_session *s);

/* ---- cmd_idle.c ---- */
void imap_idle_input(struct imap_sess *x);
/* ---- cmd_select.c ---- */
/* Leave the selected mailbox (no output). */
void imap_mailbox_close(struct imap_session *s);
/* ---- cmd_notify.c ---- */
/* Worker: emit NOTIFY updates for non-selected mailboxes. */
void imap_notify_run(struct imap_cmd *cmd, struct bu_db *db);
/* I/O thread: remember that collection changed (from ops->notify). */
void imap_notify_changed(struct imap_sess *x, int64_t account_id, int64_t collection_id);
/* Take the pending changes for a task (true when there are any). */
bool imap_notify_pending(struct imap_sess *x);
/* Does NOTIFY ask for updates of the selected mailbox outside commands? */
bool imap_notify_selected(const struct imap_sess *x);
/* NOTIFY SELECTED MessageNew's fetch attributes, or NULL. */
struct fetch_req;
const struct fetch_req *imap_notify_new_fetch(const struct imap_sess *x);
/* ---- cmd_fetch.c ---- */
/* Unsolicited FETCH responses with req's items for these UIDs of the
 * selected mailbox (those gone meanwhile are skipped); never sets \Seen.
 * 0 or an MS_* error. Worker. */
int imap_fetch_unsolicited(struct imap_cmd *cmd, struct bu_db *db, const struct fetch_req *req,
			   const uint32_t *uids, size_t n);
/* Does the NOTIFY filter want expunges of the selected mailbox delayed? */
bool imap_notify_selected_delayed(const struct imap_sess *x);
void imap_notify_free(struct imap_sess *x);

/* ---- response.c (beyond imap.h) ---- */
/* A mailbox name as the client sees it: mUTF-7 (or UTF-8 with
 * UTF8=ACCEPT) as an astring. */
void imap_write_mailbox(struct imap_session *s, struct bu_buf *out, const char *utf8);
/* The string value of an atom/string/literal/NIL argument (NIL gives
 * "NIL"); NULL for a list. */
const char *imap_arg_str(const struct imap_arg *arg);
bool imap_arg_is_string(const struct imap_arg *arg);		  /* astring */
bool imap_arg_atom_eq(const struct imap_arg *arg, const char *s); /* case-insensitive atom */
/* Split "Other Users/<addr>/rest" / "Shared/<addr>/rest": returns 1 and
 * sets *ns_r (0 other, 1 shared), *addr_r, *rest_r (may be "" or NULL when
 * the name is the namespace or user node itself), 0 for a personal name. */
int imap_name_split(struct bu_arena *a, const char *utf8, int *ns_r, char **addr_r, char **rest_r);
/* Valid personal folder name for CREATE/RENAME targets? */
bool imap_folder_name_valid(const char *utf8);
/* Flags the user may set (PERMANENTFLAGS), by rights, as
 * "(\Answered ... \*)"; "()" when read-only. */
void imap_write_permanentflags(struct bu_buf *out, char *const *keywords, uint32_t rights,
			       bool readonly);
/* Canonical spelling of a special-use attribute CREATE USE accepts
 * (RFC 6154), or NULL. */
const char *imap_special_use_canon(const char *attr);
struct principal;
/* Client-visible UTF-8 name of `folder` in account `owner` (op = the
 * owner's principal, NULL for the user's own). Arena. */
char *imap_mailbox_full_name(struct imap_session *s, struct bu_arena *a, int64_t owner,
			     const struct principal *op, const char *folder);
/* "OK [CAPABILITY ...]" helper for login replies */
void imap_untagged_capability(struct imap_cmd *cmd);

#endif

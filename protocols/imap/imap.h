/*
 * imap.h - the IMAP server: session, command framework, parser.
 *
 * Flow: session.c gets input on the I/O thread and feeds the parser
 * (parser.c, pure syntax: tags, atoms, quoted strings, literals, lists).
 * A complete command is looked up in the command table (commands.c), the
 * generic checks run (state, arguments present), and the handler's check
 * half runs on the I/O thread. A handler that needs the database calls
 * imap_cmd_submit(cmd, run): run() executes on a worker with a borrowed
 * database connection and writes every response line into cmd->out; the
 * framework then writes cmd->out to the client on the I/O thread.
 *
 * Ownership: while a command is on a worker, the I/O thread does not touch
 * the session (input is paused); hub notifications only set
 * s->changes_pending. So run() may read and update s->sel freely.
 *
 * Streaming: run() may set cmd->again = true after writing a batch (e.g.
 * FETCH of many bodies): the framework flushes cmd->out and calls run()
 * again once the client has read enough (output below the high-water mark).
 * The command's own state between rounds lives in cmd->priv.
 */
#ifndef IMAP_H
#define IMAP_H

#include "server/core/net.h"
#include "server/core/util.h"

struct bu_db;
struct principal;

extern const struct bu_proto_ops imap_proto_ops;

/* ---- parser (parser.c) ------------------------------------------------ */

enum imap_arg_type {
	IMAP_ARG_ATOM,     /* includes "BODY[HEADER.FIELDS (A B)]<0.10>" as ONE atom:
	                    * an atom containing '[' runs to the matching ']'
	                    * (spaces and parens inside), then an optional <...> */
	IMAP_ARG_STRING,   /* quoted string, unescaped */
	IMAP_ARG_LITERAL,  /* {N} or {N+} or ~{N} (literal8 = true) */
	IMAP_ARG_LIST,     /* ( ... ) */
	IMAP_ARG_NIL,      /* the atom NIL */
};
struct imap_arg {
	enum imap_arg_type type;
	const char *str;           /* atoms/strings/literals: NUL-terminated copy
	                            * in the command arena; len is authoritative
	                            * (literals may contain NUL) */
	size_t len;
	struct imap_arg *list;     /* IMAP_ARG_LIST */
	size_t n_list;
	bool literal8;
};
struct imap_command {
	char *tag;
	char *name;                /* upper-case; "UID FETCH" gives name "FETCH", uid = true */
	bool uid;
	struct imap_arg *args;
	size_t n_args;
};

enum imap_parse_result {
	IMAP_PARSE_NEED_MORE = 0,   /* consumed what it could; wait for input */
	IMAP_PARSE_DONE = 1,        /* *cmd_r complete */
	IMAP_PARSE_CONTINUE = 2,    /* a synchronizing literal was announced and
	                             * accepted: send "+ OK" and feed more */
	IMAP_PARSE_ERROR = -1,      /* syntax error: reply "TAG BAD msg" (tag may be
	                             * "*" if unknown); the parser already skipped
	                             * to the end of the bad command line */
	IMAP_PARSE_TOOBIG = -2,     /* line or literal over the limit: reply
	                             * "TAG BAD [TOOBIG] msg" (RFC 4469/7888);
	                             * parser skipped the line; for a
	                             * non-synchronizing literal over the limit the
	                             * session must close the connection (RFC 7888 4) */
};
struct imap_parser;
/* max_line: bytes of command text outside literals; max_literal: bytes per
 * literal; max_args: total args (nested included), e.g. 100000. */
struct imap_parser *imap_parser_create(size_t max_line, size_t max_literal, size_t max_args);
void imap_parser_destroy(struct imap_parser **p);
/* Feed input from `in` (consumes what it uses). Tokens are copied into
 * arena `a` (the command arena), so `in` may be reused after the call.
 * On DONE the parser is ready for the next command. *error_r on ERROR/TOOBIG,
 * *tag_r (arena) whenever the tag was already read. */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, struct bu_arena *a,
					struct bu_buf *in, struct imap_command *cmd_r,
					const char **tag_r, const char **error_r);
/* Reset after an error or between commands. */
void imap_parser_reset(struct imap_parser *p);
/* Read one CRLF-terminated line (AUTHENTICATE continuation, IDLE's DONE):
 * 1 = line in *line_r (arena, without CRLF), 0 = need more, -1 = too long
 * (the line is skipped). */
int imap_parser_read_line(struct bu_buf *in, struct bu_arena *a, size_t max,
			  char **line_r);

/* Sequence sets "1:3,5,7:*". '*' is given as `star` (the largest number in
 * use). Returns a sorted, de-duplicated array (arena) or -1 on bad syntax.
 * "$" (SEARCHRES) is the caller's business. */
int imap_seqset_parse(struct bu_arena *a, const char *s, uint32_t star,
		      uint32_t **nums_r, size_t *n_r);
/* Write a sorted uid array as a compact set "1:3,5" (for COPYUID etc.) */
void imap_seqset_write(struct bu_buf *out, const uint32_t *nums, size_t n);

/* Modified UTF-7 (RFC 3501 5.1.3) <-> UTF-8 (utf7.c). NULL on invalid input. */
char *imap_utf7_to_utf8(struct bu_arena *a, const char *s);
char *imap_utf8_to_utf7(struct bu_arena *a, const char *s);

/* ---- session (session.c) -------------------------------------------- */

enum imap_state {
	IMAP_STATE_NOAUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

/* The selected mailbox, as this session sees it (RFC 3501 sequence numbers
 * are session state). Lives in its own arena, freed on UNSELECT/SELECT. */
struct imap_mailbox {
	struct bu_arena *arena;
	int64_t owner_id;          /* account that holds it (shared: not the user) */
	int64_t collection_id;
	char *name;                /* as the client named it (mUTF-7 or UTF-8) */
	bool readonly;             /* EXAMINE, or no write rights */
	uint32_t uidvalidity;
	uint32_t uidnext;
	int64_t highestmodseq;     /* what this session has reported */
	uint32_t rights;           /* ACL_* of the user */
	uint32_t *uids;            /* seq - 1 -> uid, ascending */
	size_t n, cap;
	uint32_t *recent;          /* UIDs \Recent for this session (sorted) */
	size_t n_recent;
	uint32_t *searchres;       /* SEARCHRES "$" (sorted UIDs) */
	size_t n_searchres;
	char **keywords;           /* keywords announced in FLAGS */
};

struct imap_session {
	struct bu_conn *conn;
	struct bu_arena *arena;         /* session lifetime */
	struct imap_parser *parser;
	enum imap_state state;
	struct principal *user;         /* in s->arena once authenticated */
	int64_t user_id;
	/* ENABLEd / used extensions */
	bool condstore;                 /* ENABLE CONDSTORE or any CONDSTORE use */
	bool qresync;
	bool utf8_accept;               /* ENABLE UTF8=ACCEPT: names are UTF-8 */
	bool imap4rev2;                 /* ENABLE IMAP4rev2 */
	bool compress;                  /* COMPRESS=DEFLATE active */
	bool notify_active;             /* NOTIFY SET */
	struct imap_mailbox *sel;       /* NULL unless SELECTED */
	bool changes_pending;           /* hub said our watched account changed */
	bool idling;                    /* in IDLE */
	char *idle_tag;
	struct imap_cmd *cur;           /* command in progress, or NULL */
	unsigned bad_commands;          /* disconnect past a limit */
	char *client_id;                /* ID command: "name version" for logs */
};

/* ---- command framework (commands.c / session.c) -------------------- */

struct imap_cmd;
typedef void imap_cmd_fn(struct imap_cmd *cmd);                     /* I/O thread */
typedef void imap_run_fn(struct imap_cmd *cmd, struct bu_db *db);   /* worker */

struct imap_cmd {
	struct imap_session *s;
	struct bu_arena *a;             /* command arena: args, scratch, results */
	const char *tag;
	const char *name;               /* "FETCH" */
	bool uid;                       /* UID prefix */
	struct imap_arg *args;
	size_t n_args;
	struct bu_buf out;              /* response bytes to send */
	imap_run_fn *run;               /* worker half (set by imap_cmd_submit) */
	bool again;                     /* run() wants another round (streaming) */
	bool done;                      /* a tagged reply was written */
	void *priv;                     /* handler state across rounds */
	int64_t start_us;
};

enum {
	IMAP_CMD_NOAUTH = 1 << 0,       /* allowed before login */
	IMAP_CMD_AUTH = 1 << 1,         /* allowed when authenticated */
	IMAP_CMD_SELECTED = 1 << 2,     /* needs a selected mailbox */
	IMAP_CMD_UID = 1 << 3,          /* has a UID form */
	IMAP_CMD_NO_EXPUNGE = 1 << 4,   /* FETCH/STORE/SEARCH: no EXPUNGE responses
	                                 * after it (RFC 3501 7.4.1) */
};
struct imap_cmd_def {
	const char *name;
	imap_cmd_fn *fn;
	unsigned flags;
};
/* lookup in the sorted table (commands.c) */
const struct imap_cmd_def *imap_command_find(const char *name);

/* Run `run` on a worker; the framework writes cmd->out back afterwards and,
 * if the command is in SELECTED state, first appends the untagged updates
 * for changes made by others (imap_mailbox_sync) unless the handler already
 * did. A handler that never calls imap_cmd_submit must write its tagged
 * reply before returning. */
void imap_cmd_submit(struct imap_cmd *cmd, imap_run_fn *run);

/* Tagged replies, appended to cmd->out: "TAG OK text" etc. text may start
 * with a response code "[...]". */
void imap_reply_ok(struct imap_cmd *cmd, const char *fmt, ...) BU_PRINTF(2, 3);
void imap_reply_no(struct imap_cmd *cmd, const char *fmt, ...) BU_PRINTF(2, 3);
void imap_reply_bad(struct imap_cmd *cmd, const char *fmt, ...) BU_PRINTF(2, 3);
/* Untagged "* ..." line (CRLF added). */
void imap_untagged(struct imap_cmd *cmd, const char *fmt, ...) BU_PRINTF(2, 3);
/* Map an enum ms_err (mailstore.h) to a tagged NO with the right response
 * code: NOPERM, OVERQUOTA, ALREADYEXISTS, NONEXISTENT, TOOBIG, UNAVAILABLE
 * (database trouble, logged). */
void imap_reply_ms_err(struct imap_cmd *cmd, int ms_err, const char *what);

/* ---- response formatting (response.c) ------------------------------ */
/* astring/string as atom, quoted string or literal, whichever is valid and
 * shortest; NULL -> NIL. Literal8 when binary (NUL) and allowed. */
void imap_write_string(struct bu_buf *out, const char *s, size_t len);
void imap_write_nstring(struct bu_buf *out, const char *s);       /* NULL -> NIL */
void imap_write_astring(struct bu_buf *out, const char *s);
void imap_write_literal(struct bu_buf *out, const void *p, size_t len);
/* "(\Seen \Answered kw1 kw2)" */
void imap_write_flags(struct bu_buf *out, uint32_t flags, char *const *keywords, bool recent);
/* parse a flag list "(\Seen foo)"; -1 on bad flag (\Recent and unknown
 * system flags rejected). keywords NULL-terminated (arena). */
int imap_parse_flags(struct bu_arena *a, const struct imap_arg *arg, uint32_t *flags_r,
		     char ***keywords_r);
/* Mailbox name from a client argument -> UTF-8 storage name ("INBOX"
 * case-insensitive, mUTF-7 decoded unless utf8_accept). NULL if invalid. */
char *imap_mailbox_name_in(struct imap_session *s, struct bu_arena *a, const struct imap_arg *arg);
/* Storage name -> what the client sees (mUTF-7 unless utf8_accept) */
char *imap_mailbox_name_out(struct imap_session *s, struct bu_arena *a, const char *utf8);
/* Resolve a client mailbox name (namespaces: personal, "Other Users/<addr>/...",
 * "Shared/<addr>/...") to owner account + collection for this user.
 * 1 found, 0 not found, MS_NOPERM when not visible (report as NONEXISTENT). */
int imap_mailbox_resolve(struct imap_session *s, struct bu_db *db, struct bu_arena *a,
			 const char *utf8_name, int64_t *owner_r, int64_t *collection_r,
			 char **folder_r);

/* ---- selected mailbox (cmd_select.c) ------------------------------ */
/* Sequence number of uid (1-based) or 0 if absent. */
uint32_t imap_mailbox_seq(const struct imap_mailbox *mb, uint32_t uid);
/* Parse a sequence set argument (seqset or uid set, "$" = searchres) into
 * UIDs present in the mailbox (sorted). -1 on bad syntax. */
int imap_mailbox_set_uids(struct imap_cmd *cmd, const char *set, bool uid,
			  uint32_t **uids_r, size_t *n_r);
/* Fetch changes by others since s->sel->highestmodseq and emit untagged
 * EXISTS/RECENT/FETCH (FLAGS [MODSEQ])/EXPUNGE or VANISHED (qresync);
 * allow_expunge false holds expunges back (RFC 3501 7.4.1). Updates the
 * sequence map. Worker thread. */
void imap_mailbox_sync(struct imap_cmd *cmd, struct bu_db *db, bool allow_expunge);
/* Remove UIDs from the sequence map, emitting EXPUNGE (descending seq
 * numbers are not required; each EXPUNGE is emitted with the current seq
 * and applied immediately) or one VANISHED when qresync. */
void imap_mailbox_expunged(struct imap_cmd *cmd, const uint32_t *uids, size_t n);

/* ---- rendering from the stored MIME tree (cmd_fetch.c) -------------- */
struct mime_part;
void imap_write_envelope(struct bu_buf *out, const struct mime_part *msg);
void imap_write_bodystructure(struct bu_buf *out, const struct mime_part *part, bool extended);

/* ---- command handlers ------------------------------------------------ */
imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_starttls,
	imap_cmd_login, imap_cmd_authenticate, imap_cmd_id, imap_cmd_enable,
	imap_cmd_namespace, imap_cmd_compress, imap_cmd_check,
	imap_cmd_select, imap_cmd_examine, imap_cmd_unselect, imap_cmd_close,
	imap_cmd_create, imap_cmd_delete, imap_cmd_rename, imap_cmd_subscribe,
	imap_cmd_unsubscribe, imap_cmd_list, imap_cmd_lsub, imap_cmd_status,
	imap_cmd_idle, imap_cmd_notify,
	imap_cmd_getacl, imap_cmd_setacl, imap_cmd_deleteacl, imap_cmd_listrights,
	imap_cmd_myrights, imap_cmd_getquota, imap_cmd_getquotaroot, imap_cmd_setquota,
	imap_cmd_getmetadata, imap_cmd_setmetadata,
	imap_cmd_append, imap_cmd_fetch, imap_cmd_store, imap_cmd_search, imap_cmd_sort,
	imap_cmd_thread, imap_cmd_copy, imap_cmd_move, imap_cmd_expunge, imap_cmd_replace;

/* The capability string (without "* CAPABILITY "), depends on state/TLS. */
const char *imap_capabilities(const struct imap_session *s);

#endif

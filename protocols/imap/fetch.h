/*
 * fetch.h - private to the IMAP message commands (fetch_parse.c,
 * cmd_fetch.c, cmd_store.c, cmd_append.c, cmd_copy.c, cmd_expunge.c):
 * the parsed FETCH request, body sections, and the helpers the message
 * commands share. Nothing outside protocols/imap includes this.
 */
#ifndef IMAP_FETCH_H
#define IMAP_FETCH_H

#include "imap_int.h"

struct mime_part;
struct ms_msg;

/* Message data items (RFC 3501 6.4.5, RFC 9051 6.4.5 and extensions). */
enum {
	FI_FLAGS = 1 << 0,
	FI_INTERNALDATE = 1 << 1,
	FI_RFC822_SIZE = 1 << 2,
	FI_ENVELOPE = 1 << 3,
	FI_BODY = 1 << 4,             /* non-extensible BODYSTRUCTURE */
	FI_BODYSTRUCTURE = 1 << 5,
	FI_UID = 1 << 6,
	FI_MODSEQ = 1 << 7,           /* RFC 7162 */
	FI_EMAILID = 1 << 8,          /* RFC 8474 */
	FI_THREADID = 1 << 9,
	FI_PREVIEW = 1 << 10,         /* RFC 8970 */
	FI_SAVEDATE = 1 << 11,        /* RFC 8514 */
};

/* What follows the part number of a section (RFC 3501 6.4.5). */
enum fetch_sect {
	FS_PART,                      /* "" (whole message) or "1.2" */
	FS_HEADER,
	FS_HEADER_FIELDS,
	FS_HEADER_FIELDS_NOT,
	FS_TEXT,
	FS_MIME,
};

struct fetch_section {
	char *path;                   /* "" or "1.2.3" */
	enum fetch_sect kind;
	char **fields;                /* HEADER.FIELDS names (as given) */
	size_t n_fields;
};

enum fetch_body_kind {
	FB_BODY,                      /* BODY[...] / BODY.PEEK[...] */
	FB_BINARY,                    /* BINARY[...] (RFC 3516) */
	FB_BINARY_SIZE,               /* BINARY.SIZE[...] */
	FB_RFC822,                    /* RFC822 = BODY[] */
	FB_RFC822_HEADER,             /* = BODY.PEEK[HEADER] */
	FB_RFC822_TEXT,               /* = BODY[TEXT] */
};

struct fetch_body {
	enum fetch_body_kind kind;
	bool peek;
	struct fetch_section sect;
	bool partial;
	uint64_t offset, count;
	char *label;                  /* response item name without <origin>,
	                               * e.g. "BODY[HEADER.FIELDS (FROM)]" */
};

struct fetch_req {
	unsigned items;               /* FI_* */
	struct fetch_body *bodies;
	size_t n_bodies;
	bool sets_seen;               /* some non-PEEK body item */
	bool need_structure;          /* MSF_STRUCTURE */
	bool need_raw;                /* MSF_RAW */
	int64_t changedsince;         /* -1 = none (RFC 7162 CHANGEDSINCE) */
	bool vanished;                /* RFC 7162 3.2.6 VANISHED modifier */
};

/* Parse FETCH arguments after the sequence set: the item (atom, macro or
 * list) and the optional modifier list. 0, or -1 with *err_r (static) for
 * a BAD reply. Arena a. */
int imap_fetch_parse(struct bu_arena *a, const struct imap_arg *items,
		     const struct imap_arg *modifiers, struct fetch_req *r, const char **err_r);

/* Parse a section spec "1.2.HEADER.FIELDS (A B)" (the text between the
 * brackets). binary: part numbers only. 0 ok, -1 bad syntax. */
int imap_fetch_section_parse(struct bu_arena *a, const char *s, size_t len, bool binary,
			     struct fetch_section *sect_r);

/* The bytes of a section of a stored message (raw, len), found through
 * its stored MIME tree. Returns 1 with [*p_r, *len_r) pointing into raw or
 * into tmp (HEADER.FIELDS), 0 when the section does not exist. */
int imap_section_bytes(const struct mime_part *root, const uint8_t *raw, size_t len,
		       const struct fetch_section *sect, struct bu_buf *tmp,
		       const uint8_t **p_r, size_t *len_r);

/* "dd-Mon-yyyy hh:mm:ss +0000" (quoted) for INTERNALDATE/SAVEDATE. */
void imap_write_datetime(struct bu_buf *out, int64_t t);
/* Parse an IMAP date-time ("dd-Mon-yyyy hh:mm:ss +zzzz", day may be
 * space-padded) to unix seconds; -1 when invalid. */
int64_t imap_parse_datetime(const char *s);
/* Parse an IMAP date ("d-Mon-yyyy") to the unix time of that day's
 * start (UTC); -1 when invalid. */
int64_t imap_parse_date(const char *s);

/* After this session changed flags itself (STORE, FETCH setting \Seen)
 * and reported the new state: if nothing else changed in the mailbox since
 * what the session last reported, advance the session's HIGHESTMODSEQ past
 * its own change so the framework's sync does not report it a second time
 * (and announce new keywords). Otherwise leave it: the sync then reports
 * everything, our change included, which is harmless. Worker thread.
 * (cmd_store.c) */
void imap_absorb_own_changes(struct imap_cmd *cmd, struct bu_db *db,
			     const struct ms_msg *mine, size_t n_mine);

/* One "* n FETCH (...)" line with the flags of m (cmd_store.c):
 * FLAGS unless silent, UID when uid, MODSEQ when the session uses
 * CONDSTORE. */
void imap_write_flags_fetch(struct imap_cmd *cmd, uint32_t seq, const struct ms_msg *m,
			    bool with_flags, bool with_uid);

/* Resolve the target mailbox of COPY/MOVE/APPEND/REPLACE (UTF-8 name).
 * 1 found; otherwise the tagged NO is written (NO [TRYCREATE] for a
 * missing personal mailbox, RFC 3501 6.3.11) and 0 is returned. Worker.
 * (cmd_copy.c) */
int imap_target_resolve(struct imap_cmd *cmd, struct bu_db *db, const char *name,
			int64_t *owner_r, int64_t *coll_r);

/* Sorted copy helpers (cmd_store.c) */
bool imap_uid_in(const uint32_t *sorted, size_t n, uint32_t uid);

#endif

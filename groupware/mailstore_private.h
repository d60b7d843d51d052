/*
 * mailstore_private.h - what mailstore.c, mail_search.c, mail_thread.c,
 * mail_deliver.c and mail_metadata.c share. Not for other modules.
 */
#ifndef GW_MAILSTORE_PRIVATE_H
#define GW_MAILSTORE_PRIVATE_H

#include <libpq-fe.h>

#include "groupware/mailstore.h"

/* Flags that are stored (MF_RECENT never is). */
#define MS_STORED_FLAGS (MF_SEEN | MF_ANSWERED | MF_FLAGGED | MF_DELETED | MF_DRAFT)
/* Largest message accepted (PostgreSQL's bytea limit is 1 GiB). */
#define MS_MESSAGE_MAX ((size_t)512 * 1024 * 1024)
/* Searchable text kept per message; longer text is cut (at a UTF-8
 * boundary) so that one huge message cannot bloat the trigram index. */
#define MS_BODY_TEXT_MAX ((size_t)1024 * 1024)
#define MS_HEADER_TEXT_MAX ((size_t)64 * 1024)
/* Deepest search tree accepted (the IMAP parser limits it too). */
#define MS_SEARCH_DEPTH_MAX 64
/* Keywords are sent to SQL joined by these bytes; they never occur in a
 * keyword (control characters are dropped from keywords on input). */
#define MS_KW_SEP "\001"
#define MS_LIST_SEP "\002"

/* ---- SQL parameters ------------------------------------------------ */

/* A growing parameter list for PQexecParams-style calls (arena-owned). */
struct ms_params {
	struct bu_arena *a;
	const char **v;
	int *len;
	int *fmt;
	int n, cap;
};
void ms_params_init(struct ms_params *p, struct bu_arena *a);
/* Each returns the 1-based placeholder number of the new parameter. */
int ms_param(struct ms_params *p, const char *text);       /* copied; NULL = SQL NULL */
int ms_param_i64(struct ms_params *p, int64_t v);
int ms_param_bin(struct ms_params *p, const void *data, size_t len); /* not copied */
/* "{1,2,3}" for a bigint[] parameter */
int ms_param_uids(struct ms_params *p, const uint32_t *uids, size_t n);
PGresult *ms_query(struct bu_db *db, const char *sql, const struct ms_params *p);
/* Same, with the result in binary format (bytea without hex expansion).
 * Outside transactions only. */
PGresult *ms_query_binres(struct bu_db *db, const char *sql, const struct ms_params *p);

/* ---- results ------------------------------------------------------ */

int64_t ms_val_i64(const PGresult *r, int row, int col);   /* text format; NULL = 0 */
char *ms_val_str(struct bu_arena *a, const PGresult *r, int row, int col); /* NULL = NULL */
int64_t ms_bin_i64(const PGresult *r, int row, int col);   /* binary int8; NULL = 0 */
/* Split "a\001b" into a NULL-terminated arena array ("" = empty array). */
char **ms_split_keywords(struct bu_arena *a, const char *s);
/* Arena-owned PGresult: PQclear runs when the arena is reset. */
void ms_arena_own_result(struct bu_arena *a, PGresult *r);

/* ---- helpers ------------------------------------------------------ */

/* Viewer's rights on (owner, collection): owners have all of them. */
int ms_rights(struct bu_db *db, int64_t viewer, int64_t owner_id, int64_t collection_id,
	      uint32_t *rights_r);
/* 1 = a mail collection of owner, 0 = no, MS_ERR. */
int ms_collection_exists(struct bu_db *db, int64_t owner_id, int64_t collection_id);
/* Valid UTF-8 without NUL (invalid bytes become U+FFFD), cut at max bytes
 * (0 = no limit) on a character boundary. NULL in, NULL out. */
char *ms_utf8_clean(struct bu_arena *a, const char *s, size_t len, size_t max);
/* ILIKE pattern "%needle%" with % _ \ escaped. */
char *ms_like_pattern(struct bu_arena *a, const char *needle);
/* Case-insensitive keyword list helpers. */
bool ms_kw_has(char *const *list, const char *kw);
/* Join keywords with MS_KW_SEP into buf (dropping empty ones and control
 * characters); returns the number joined. */
size_t ms_kw_join(struct bu_buf *b, const char *const *kw);

/* Append (mailstore.c): collection given by id, or, when collection_id is
 * 0, by folder name falling back to INBOX (delivery). */
int ms_append_internal(struct bu_db *db, int64_t viewer, int64_t owner_id,
		       int64_t collection_id, const char *folder,
		       const struct ms_append *msgs, size_t n,
		       uint32_t *uidvalidity_r, uint32_t *uids_r);


/* ---- search (mail_search.c) -------------------------------------- */

struct ms_search_ctx {
	struct bu_db *db;
	struct bu_arena *a;
	int64_t owner_id, collection_id, viewer;
	int p_account, p_collection, p_viewer;  /* placeholder numbers */
	bool is_owner;
	/* header blocks for HEADER criteria on fields that are not stored */
	PGresult *hdrs;
	bool hdrs_loaded;
};
/* Append the SQL condition for q (mail_messages alias "m") to sql, adding
 * parameters to p. 0 ok, MS_ERR. */
int ms_search_where(struct ms_search_ctx *ctx, const struct ms_search *q,
		    struct bu_buf *sql, struct ms_params *p);
/* The SQL expression for the viewer's flags of m (int). */
void ms_flags_expr(struct bu_buf *sql, bool is_owner, int p_viewer);

#endif

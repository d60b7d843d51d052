/*
 * search.h - private to search_parse.c, cmd_search.c and cmd_sort.c:
 * IMAP search keys to a struct ms_search tree, RETURN options (RFC 4731
 * ESEARCH, RFC 5267 ESORT, RFC 5182 SEARCHRES) and the CHARSET check.
 */
#ifndef IMAP_SEARCH_H
#define IMAP_SEARCH_H

#include "imap_int.h"

struct ms_search;

enum {
	SR_MIN = 1 << 0,
	SR_MAX = 1 << 1,
	SR_ALL = 1 << 2,
	SR_COUNT = 1 << 3,
	SR_SAVE = 1 << 4,
};

struct search_req {
	struct ms_search *q;
	bool esearch;            /* answer with ESEARCH (RETURN given, or IMAP4rev2) */
	unsigned ret;            /* SR_* */
	bool has_modseq;         /* a MODSEQ criterion: report (MODSEQ n) */
	bool uses_searchres;     /* "$" appears in the keys */
};

/* "RETURN (opts)" at args[*i] (if present): sets r->esearch/ret and
 * advances *i. 0 ok, -1 BAD (*err_r). */
int imap_search_return_parse(const struct imap_arg *args, size_t n, size_t *i,
			     struct search_req *r, const char **err_r);

/* "CHARSET name" at args[*i] when required or present: 1 ok (advances),
 * 0 unsupported charset (reply NO [BADCHARSET (UTF-8 US-ASCII)]), -1 BAD. */
int imap_search_charset(const struct imap_arg *args, size_t n, size_t *i, bool required,
			const char **err_r);
/* a charset name alone (SORT, THREAD): true when supported */
bool imap_search_charset_ok(const char *name);

/* Search keys args[i..n) (all ANDed) into r->q. Sequence numbers, "$" and
 * RECENT/NEW/OLD are resolved against cmd->s->sel now (I/O thread, before
 * the run half). 0 ok, -1 BAD (*err_r). */
int imap_search_keys_parse(struct imap_cmd *cmd, const struct imap_arg *args, size_t n,
			   struct search_req *r, const char **err_r);

/* Write a list of numbers in the given order as a sequence set, joining
 * ascending runs "a:b" (ESORT ALL keeps the order: RFC 5267 3.2). */
void imap_write_num_list(struct bu_buf *out, const uint32_t *v, size_t n);
/* " n1 n2 n3..." (the SEARCH and SORT responses) */
void imap_write_num_seq(struct bu_buf *out, const uint32_t *v, size_t n);
/* Keep the UIDs of a result that this session knows (in the selected
 * mailbox's sequence map), in place and in order, and give their numbers
 * as the command shows them (UIDs for UID commands, else sequence
 * numbers) in nums_r (cmd arena). Returns the new count. */
size_t imap_search_known(struct imap_cmd *cmd, uint32_t *uids, size_t n, uint32_t **nums_r);

struct bu_db;
/* Highest MODSEQ among uids (ascending) for "(MODSEQ n)" (RFC 7162
 * 3.1.5). 0 when none; negative ms_err. Worker. (cmd_search.c) */
int64_t imap_search_max_modseq(struct imap_cmd *cmd, struct bu_db *db, const uint32_t *uids,
			       size_t n);
/* "* ESEARCH (TAG "t") [UID] MIN.. MAX.. COUNT.. ALL.. [MODSEQ ..]" for
 * nums (message numbers or UIDs); sorted = nums are in SORT order (ESORT:
 * MIN/MAX are the first/last, ALL keeps the order). modseq 0 = none. */
void imap_search_write_esearch(struct imap_cmd *cmd, unsigned ret, const uint32_t *nums,
			       size_t n, bool sorted, int64_t modseq);
/* RFC 5182: remember the result (UIDs) as "$" of the selected mailbox;
 * with MIN and/or MAX but neither ALL nor COUNT, only those. uids in
 * result order (ascending for SEARCH, sort order for SORT). */
void imap_search_save(struct imap_cmd *cmd, unsigned ret, const uint32_t *uids, size_t n,
		      bool sorted);

#endif

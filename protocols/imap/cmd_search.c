/*
 * cmd_search.c - SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4)
 * with ESEARCH results (RFC 4731: RETURN MIN MAX ALL COUNT SAVE), SEARCHRES
 * (RFC 5182 "$"), CONDSTORE's "(MODSEQ n)" (RFC 7162 3.1.5) and the keys
 * parsed in search_parse.c; the search itself is one SQL statement in
 * mail_search.c.
 *
 * An IMAP4rev2 session always gets ESEARCH (RFC 9051 7.3.4), RETURN (ALL)
 * by default. Results are limited to the messages this session knows
 * (its sequence map): a message that arrived since the last EXISTS is
 * reported by the sync after the command, not by the search.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/mailstore.h"
#include "search.h"
#include "server/core/log.h"

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

size_t imap_search_known(struct imap_cmd *cmd, uint32_t *uids, size_t n, uint32_t **nums_r)
{
	const struct imap_mailbox *mb = cmd->s->sel;
	uint32_t *nums = bu_arena_alloc(cmd->a, (n + 1) * sizeof(*nums));
	size_t i, k = 0, pos = 0;

	for (i = 0; i < n; i++) {
		uint32_t uid = uids[i], seq = 0;

		/* the next one in the map (ascending results), the slot of a
		 * folder without gaps, else a binary search */
		if (pos < mb->n && mb->uids[pos] == uid)
			seq = (uint32_t)pos + 1;
		else if (uid >= 1 && uid <= mb->n && mb->uids[uid - 1] == uid)
			seq = uid;
		else
			seq = imap_mailbox_seq(mb, uid);
		if (seq == 0)
			continue;
		pos = seq;
		uids[k] = uid;
		nums[k] = cmd->uid ? uid : seq;
		k++;
	}
	*nums_r = nums;
	return k;
}

int64_t imap_search_max_modseq(struct imap_cmd *cmd, struct bu_db *db, const uint32_t *uids,
			       size_t n)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct bu_arena *a;
	struct ms_fetch *f;
	size_t nf, i;
	int64_t max = 0;
	int ret;

	if (n == 0)
		return 0;
	a = bu_arena_create(0);
	ret = ms_fetch(db, a, s->user_id, mb->owner_id, mb->collection_id, uids, n, 0, &f, &nf);
	if (ret < 0) {
		bu_arena_destroy(&a);
		return ret;
	}
	for (i = 0; i < nf; i++) {
		if (f[i].modseq > max)
			max = f[i].modseq;
	}
	bu_arena_destroy(&a);
	return max;
}

void imap_search_save(struct imap_cmd *cmd, unsigned ret, const uint32_t *uids, size_t n,
		      bool sorted)
{
	struct imap_mailbox *mb = cmd->s->sel;
	uint32_t *v;
	size_t nv = 0;

	if (mb == NULL)
		return;
	v = bu_arena_alloc(mb->arena, (n + 1) * sizeof(*v));
	if (n > 0 && (ret & (SR_MIN | SR_MAX)) && !(ret & (SR_ALL | SR_COUNT))) {
		uint32_t lo = uids[0], hi = uids[n - 1];
		size_t i;

		if (!sorted) {
			for (i = 0; i < n; i++) {
				lo = uids[i] < lo ? uids[i] : lo;
				hi = uids[i] > hi ? uids[i] : hi;
			}
		}
		if (ret & SR_MIN)
			v[nv++] = lo;
		if ((ret & SR_MAX) && !(nv == 1 && v[0] == hi))
			v[nv++] = hi;
	} else {
		if (n > 0)
			memcpy(v, uids, n * sizeof(*v));
		nv = n;
	}
	qsort(v, nv, sizeof(*v), u32_cmp);
	mb->searchres = v;
	mb->n_searchres = nv;
}

void imap_search_write_esearch(struct imap_cmd *cmd, unsigned ret, const uint32_t *nums,
			       size_t n, bool sorted, int64_t modseq)
{
	struct bu_buf *out = &cmd->out;

	bu_buf_append_str(out, "* ESEARCH (TAG ");
	imap_write_string(out, cmd->tag, strlen(cmd->tag));
	bu_buf_append_byte(out, ')');
	if (cmd->uid)
		bu_buf_append_str(out, " UID");
	if (n > 0 && (ret & (SR_MIN | SR_MAX))) {
		uint32_t lo = nums[0], hi = nums[n - 1];
		size_t i;

		if (!sorted) {
			for (i = 0; i < n; i++) {
				lo = nums[i] < lo ? nums[i] : lo;
				hi = nums[i] > hi ? nums[i] : hi;
			}
		}
		if (ret & SR_MIN)
			bu_buf_printf(out, " MIN %u", lo);
		if (ret & SR_MAX)
			bu_buf_printf(out, " MAX %u", hi);
	}
	if (ret & SR_COUNT)
		bu_buf_printf(out, " COUNT %zu", n);
	if ((ret & SR_ALL) && n > 0) {
		bu_buf_append_str(out, " ALL ");
		if (sorted)
			imap_write_num_list(out, nums, n);
		else
			imap_seqset_write(out, nums, n);
	}
	if (modseq > 0 && n > 0)
		bu_buf_printf(out, " MODSEQ %" PRId64, modseq);
	bu_buf_append_str(out, "\r\n");
}

/* ---- SEARCH -------------------------------------------------------------- */

static void search_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct search_req *r = cmd->priv;
	uint32_t *uids, *nums;
	size_t n;
	int64_t modseq = 0;
	int ret;

	if (mb == NULL) {
		imap_reply_bad(cmd, "No mailbox selected");
		return;
	}
	ret = ms_search(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id, r->q, NULL, 0,
			&uids, &n);
	if (ret < 0) {
		if (r->ret & SR_SAVE)
			imap_search_save(cmd, SR_ALL, NULL, 0, false);
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	/* only the messages this session knows, ascending */
	n = imap_search_known(cmd, uids, n, &nums);
	if (r->has_modseq && n > 0) {
		modseq = imap_search_max_modseq(cmd, db, uids, n);
		if (modseq < 0) {
			imap_reply_ms_err(cmd, (int)modseq, NULL);
			return;
		}
	}
	if (r->ret & SR_SAVE)
		imap_search_save(cmd, r->ret, uids, n, false);
	if (!r->esearch) {
		struct bu_buf *out = &cmd->out;

		bu_buf_append_str(out, "* SEARCH");
		imap_write_num_seq(out, nums, n);
		if (modseq > 0)
			bu_buf_printf(out, " (MODSEQ %" PRId64 ")", modseq);
		bu_buf_append_str(out, "\r\n");
	} else if (r->ret != SR_SAVE) {
		/* RFC 5182 2.1: SAVE alone gives no ESEARCH response */
		imap_search_write_esearch(cmd, r->ret & ~(unsigned)SR_SAVE, nums, n, false, modseq);
	}
	imap_reply_ok(cmd, "Search completed (%zu message%s)", n, n == 1 ? "" : "s");
}

void imap_cmd_search(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct search_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	const char *err = NULL;
	size_t i = 0;
	int cs;

	if (imap_search_return_parse(cmd->args, cmd->n_args, &i, r, &err) < 0) {
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	cs = imap_search_charset(cmd->args, cmd->n_args, &i, false, &err);
	if (cs < 0) {
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	if (cs == 0) {
		if (r->ret & SR_SAVE)
			imap_search_save(cmd, SR_ALL, NULL, 0, false);
		imap_reply_no(cmd, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return;
	}
	if (imap_search_keys_parse(cmd, cmd->args != NULL ? cmd->args + i : NULL,
				   cmd->n_args - i, r, &err) < 0) {
		if (r->ret & SR_SAVE)
			imap_search_save(cmd, SR_ALL, NULL, 0, false);
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	/* RFC 5182 2.2: "$" in a command that also saves refers to the old
	 * result, which we resolved while parsing */
	if (s->imap4rev2 && !r->esearch) {
		r->esearch = true;
		r->ret = SR_ALL;
	}
	/* RFC 7162 3.1: SEARCH MODSEQ enables CONDSTORE */
	if (r->has_modseq)
		s->condstore = true;
	cmd->priv = r;
	imap_cmd_submit(cmd, search_run);
}

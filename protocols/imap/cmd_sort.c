/*
 * cmd_sort.c - SORT and THREAD (RFC 5256), with SORT=DISPLAY (RFC 5957:
 * DISPLAYFROM, DISPLAYTO) and ESORT (RFC 5267: SORT RETURN (MIN MAX ALL
 * COUNT SAVE) answered with ESEARCH, MIN/MAX being the first/last message
 * in sort order and ALL keeping that order).
 *
 * The sort keys and thread algorithms run in the store (mail_search.c,
 * mail_thread.c) on the fields kept at delivery; this file parses the
 * command and writes the responses. THREAD results name messages by
 * sequence number, or by UID for UID THREAD (RFC 5256 4).
 */
#include <stdlib.h>
#include <string.h>

#include "groupware/mailstore.h"
#include "search.h"
#include "server/core/log.h"

/* ---- SORT ---------------------------------------------------------------- */

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

struct sort_req {
	struct search_req sr;
	struct ms_sort *keys;
	size_t n_keys;
};

static const struct {
	const char *name;
	enum ms_sort_key key;
} sort_keys[] = {
	{ "ARRIVAL", MSK_ARRIVAL }, { "CC", MSK_CC }, { "DATE", MSK_DATE },
	{ "FROM", MSK_FROM }, { "SIZE", MSK_SIZE }, { "SUBJECT", MSK_SUBJECT },
	{ "TO", MSK_TO }, { "DISPLAYFROM", MSK_DISPLAYFROM }, { "DISPLAYTO", MSK_DISPLAYTO },
};

static int parse_sort_keys(struct imap_cmd *cmd, const struct imap_arg *l, struct sort_req *r)
{
	size_t i, t;
	bool reverse = false;

	if (l->type != IMAP_ARG_LIST || l->n_list == 0)
		return -1;
	r->keys = bu_arena_alloc(cmd->a, l->n_list * sizeof(*r->keys));
	for (i = 0; i < l->n_list; i++) {
		const struct imap_arg *a = &l->list[i];
		bool found = false;

		if (imap_arg_atom_eq(a, "REVERSE")) {
			if (reverse)
				return -1;
			reverse = true;
			continue;
		}
		for (t = 0; t < BU_N_ELEMENTS(sort_keys); t++) {
			if (imap_arg_atom_eq(a, sort_keys[t].name)) {
				r->keys[r->n_keys].key = sort_keys[t].key;
				r->keys[r->n_keys].reverse = reverse;
				r->n_keys++;
				found = true;
				break;
			}
		}
		if (!found)
			return -1;
		reverse = false;
	}
	/* a trailing REVERSE modifies nothing */
	return reverse || r->n_keys == 0 ? -1 : 0;
}

static void sort_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct sort_req *r = cmd->priv;
	uint32_t *uids, *nums;
	size_t n;
	int64_t modseq = 0;
	int ret;

	if (mb == NULL) {
		imap_reply_bad(cmd, "No mailbox selected");
		return;
	}
	ret = ms_search(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id, r->sr.q, r->keys,
			r->n_keys, &uids, &n);
	if (ret < 0) {
		if (r->sr.ret & SR_SAVE)
			imap_search_save(cmd, SR_ALL, NULL, 0, false);
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	n = imap_search_known(cmd, uids, n, &nums);
	if (r->sr.has_modseq && n > 0) {
		uint32_t *sorted = bu_arena_memdup(cmd->a, uids, n * sizeof(*uids));

		/* ms_fetch wants ascending UIDs */
		qsort(sorted, n, sizeof(*sorted), u32_cmp);
		modseq = imap_search_max_modseq(cmd, db, sorted, n);
		if (modseq < 0) {
			imap_reply_ms_err(cmd, (int)modseq, NULL);
			return;
		}
	}
	if (r->sr.ret & SR_SAVE)
		imap_search_save(cmd, r->sr.ret, uids, n, true);
	if (!r->sr.esearch) {
		struct bu_buf *out = &cmd->out;

		bu_buf_append_str(out, "* SORT");
		imap_write_num_seq(out, nums, n);
		if (modseq > 0)
			bu_buf_printf(out, " (MODSEQ %lld)", (long long)modseq);
		bu_buf_append_str(out, "\r\n");
	} else if (r->sr.ret != SR_SAVE) {
		imap_search_write_esearch(cmd, r->sr.ret & ~(unsigned)SR_SAVE, nums, n, true,
					  modseq);
	}
	imap_reply_ok(cmd, "Sort completed");
}

void imap_cmd_sort(struct imap_cmd *cmd)
{
	struct sort_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	const char *err = NULL;
	size_t i = 0;

	if (imap_search_return_parse(cmd->args, cmd->n_args, &i, &r->sr, &err) < 0) {
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	if (i >= cmd->n_args || parse_sort_keys(cmd, &cmd->args[i], r) < 0) {
		imap_reply_bad(cmd, "SORT needs a list of sort criteria");
		return;
	}
	i++;
	if (i >= cmd->n_args || !imap_arg_is_string(&cmd->args[i])) {
		imap_reply_bad(cmd, "SORT needs a charset");
		return;
	}
	if (!imap_search_charset_ok(cmd->args[i].str)) {
		if (r->sr.ret & SR_SAVE)
			imap_search_save(cmd, SR_ALL, NULL, 0, false);
		imap_reply_no(cmd, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return;
	}
	i++;
	if (imap_search_keys_parse(cmd, cmd->args + i, cmd->n_args - i, &r->sr, &err) < 0) {
		if (r->sr.ret & SR_SAVE)
			imap_search_save(cmd, SR_ALL, NULL, 0, false);
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	if (r->sr.has_modseq)
		cmd->s->condstore = true;
	cmd->priv = r;
	imap_cmd_submit(cmd, sort_run);
}

/* ---- THREAD ------------------------------------------------------------- */

struct thread_req {
	struct search_req sr;
	enum ms_thread_algo algo;
};

/* the number a node shows: seq or UID, 0 for dummies and unknown messages */
static uint32_t node_num(struct imap_cmd *cmd, const struct ms_thread *t)
{
	uint32_t seq;

	if (t->uid == 0)
		return 0;
	seq = imap_mailbox_seq(cmd->s->sel, t->uid);
	if (seq == 0)
		return 0;
	return cmd->uid ? t->uid : seq;
}

/* RFC 5256 4: a chain of single children is written "a b c"; where a
 * node has several children, each child's subtree is a parenthesized
 * list: "(3 6 (4 23)(44 7 96))". Dummies print nothing. */
static void write_chain(struct imap_cmd *cmd, struct bu_buf *out, const struct ms_thread *t,
			bool *need_sp, int depth)
{
	while (t != NULL) {
		uint32_t num = node_num(cmd, t);
		const struct ms_thread *c;
		size_t n_kids = 0;

		if (num != 0) {
			if (*need_sp)
				bu_buf_append_byte(out, ' ');
			bu_buf_printf(out, "%u", num);
			*need_sp = true;
		}
		for (c = t->children; c != NULL; c = c->next)
			n_kids++;
		if (n_kids == 0)
			return;
		if (n_kids == 1 && depth < 10000) {
			t = t->children;
			depth++;
			continue;
		}
		if (*need_sp)
			bu_buf_append_byte(out, ' ');
		for (c = t->children; c != NULL; c = c->next) {
			bool sp = false;

			bu_buf_append_byte(out, '(');
			write_chain(cmd, out, c, &sp, depth + 1);
			bu_buf_append_byte(out, ')');
		}
		*need_sp = false;
		return;
	}
}

static void thread_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct thread_req *r = cmd->priv;
	struct ms_thread *roots, *t;
	struct bu_buf *out = &cmd->out;
	int ret;

	if (mb == NULL) {
		imap_reply_bad(cmd, "No mailbox selected");
		return;
	}
	ret = ms_thread(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id, r->sr.q, r->algo,
			&roots);
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return;
	}
	/* thread-data = "THREAD" [SP 1*thread-list]: the lists are not
	 * separated (RFC 5256 4) */
	bu_buf_append_str(out, "* THREAD ");
	for (t = roots; t != NULL; t = t->next) {
		size_t mark = out->len;
		bool sp = false;

		bu_buf_append_byte(out, '(');
		write_chain(cmd, out, t, &sp, 0);
		bu_buf_append_byte(out, ')');
		/* a tree of messages this session does not know yet: leave out */
		if (out->len == mark + 2)
			out->len = mark;
	}
	if (out->data[out->len - 1] == ' ')
		out->len--;
	bu_buf_append_str(out, "\r\n");
	imap_reply_ok(cmd, "Thread completed");
}

void imap_cmd_thread(struct imap_cmd *cmd)
{
	struct thread_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	const char *err = NULL;

	if (cmd->n_args < 3) {
		imap_reply_bad(cmd, "THREAD needs an algorithm, a charset and search keys");
		return;
	}
	if (imap_arg_atom_eq(&cmd->args[0], "REFERENCES")) {
		r->algo = MS_THREAD_REFERENCES;
	} else if (imap_arg_atom_eq(&cmd->args[0], "ORDEREDSUBJECT")) {
		r->algo = MS_THREAD_ORDEREDSUBJECT;
	} else {
		imap_reply_bad(cmd, "Unknown thread algorithm");
		return;
	}
	if (!imap_arg_is_string(&cmd->args[1])) {
		imap_reply_bad(cmd, "THREAD needs a charset");
		return;
	}
	if (!imap_search_charset_ok(cmd->args[1].str)) {
		imap_reply_no(cmd, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return;
	}
	if (imap_search_keys_parse(cmd, cmd->args + 2, cmd->n_args - 2, &r->sr, &err) < 0) {
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	/* only the messages this session knows: a thread tree cannot be
	 * trimmed afterwards */
	{
		struct imap_mailbox *mb = cmd->s->sel;
		struct ms_search *and = bu_arena_alloc(cmd->a, sizeof(*and));

		and->op = MSS_AND;
		and->kids = bu_arena_alloc(cmd->a, 2 * sizeof(*and->kids));
		and->n_kids = 2;
		and->kids[0] = *r->sr.q;
		and->kids[1].op = MSS_UIDSET;
		and->kids[1].uids = mb->uids;
		and->kids[1].n_uids = mb->n;
		r->sr.q = and;
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, thread_run);
}

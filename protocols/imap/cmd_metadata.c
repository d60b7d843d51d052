/*
 * cmd_metadata.c - GETMETADATA and SETMETADATA (RFC 5464: METADATA for
 * mailboxes, METADATA-SERVER for the mailbox name "", which are the
 * account's own entries).
 *
 * GETMETADATA takes MAXSIZE (entries with longer values are left out and
 * reported as [METADATA LONGENTRIES n]) and DEPTH 0, 1 or infinity. An
 * entry asked for by name that has no value comes back as NIL. Rights and
 * limits (value size, entries per mailbox) are the mail store's
 * (mail_metadata.c); its refusals map to [METADATA MAXSIZE n],
 * [METADATA TOOMANY] and [NOPERM]. Entry names are checked here so that a
 * malformed one is a BAD, as the RFC asks.
 */
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "groupware/mailstore.h"
#include "imap_int.h"

#define META_VALUE_MAX 65536 /* what mail_metadata.c accepts */

static bool entry_valid(const char *e, bool allow_root)
{
	size_t len = strlen(e), i;

	if (len < 2 || len > 1024 || e[len - 1] == '/')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)e[i];

		if (c < 0x20 || c > 0x7e || c == '*' || c == '%')
			return false;
		if (c == '/' && i > 0 && e[i - 1] == '/')
			return false;
	}
	if (strncasecmp(e, "/private/", 9) == 0 || strncasecmp(e, "/shared/", 8) == 0)
		return true;
	return allow_root && (strcasecmp(e, "/private") == 0 || strcasecmp(e, "/shared") == 0);
}

/* mailbox "" = the server (account) level; 1 ok, otherwise replied */
static int meta_target(struct imap_cmd *cmd, struct bu_db *db, const char *name, int64_t *owner,
		       int64_t *coll)
{
	int ret;

	if (*name == '\0') {
		*owner = cmd->s->user_id;
		*coll = 0;
		return 1;
	}
	ret = imap_mailbox_resolve(cmd->s, db, cmd->a, name, owner, coll, NULL);
	if (ret == 0 || ret == MS_NOPERM) {
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		return 0;
	}
	if (ret < 0) {
		imap_reply_ms_err(cmd, ret, NULL);
		return 0;
	}
	return 1;
}

static void meta_err(struct imap_cmd *cmd, int ret)
{
	switch (ret) {
	case MS_TOOBIG:
		imap_reply_no(cmd, "[METADATA MAXSIZE %d] Value too long", META_VALUE_MAX);
		break;
	case MS_OVERQUOTA:
		imap_reply_no(cmd, "[METADATA TOOMANY] Too many entries");
		break;
	case MS_NOTFOUND:
		imap_reply_no(cmd, "[NONEXISTENT] Mailbox does not exist");
		break;
	default:
		imap_reply_ms_err(cmd, ret, NULL);
		break;
	}
}

/* ---- GETMETADATA -------------------------------------------------------- */

struct getmeta_req {
	char *name;
	int depth;
	int64_t maxsize; /* -1 = none */
	const char **entries;
	size_t n_entries;
};

static void getmeta_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct getmeta_req *r = cmd->priv;
	int64_t owner, coll, longest = 0;
	struct bu_buf items;
	size_t i, k, count = 0;

	if (meta_target(cmd, db, r->name, &owner, &coll) <= 0)
		return;
	bu_buf_init(&items, 0);
	for (i = 0; i < r->n_entries; i++) {
		struct ms_meta_entry *list;
		size_t n;
		bool found = false;
		int ret = ms_metadata_get(db, cmd->a, cmd->s->user_id, owner, coll, r->entries[i],
					  r->depth, &list, &n);

		if (ret < 0) {
			bu_buf_deinit(&items);
			meta_err(cmd, ret);
			return;
		}
		for (k = 0; k < n; k++) {
			if (strcasecmp(list[k].entry, r->entries[i]) == 0)
				found = true;
			if (r->maxsize >= 0 && (int64_t)list[k].value_len > r->maxsize) {
				if ((int64_t)list[k].value_len > longest)
					longest = (int64_t)list[k].value_len;
				continue;
			}
			if (count++ > 0)
				bu_buf_append_byte(&items, ' ');
			imap_write_astring(&items, list[k].entry);
			bu_buf_append_byte(&items, ' ');
			imap_write_string(&items, (const char *)list[k].value, list[k].value_len);
		}
		if (!found && n == 0 && strchr(r->entries[i] + 1, '/') != NULL) {
			if (count++ > 0)
				bu_buf_append_byte(&items, ' ');
			imap_write_astring(&items, r->entries[i]);
			bu_buf_append_str(&items, " NIL");
		}
	}
	if (count > 0) {
		bu_buf_append_str(&cmd->out, "* METADATA ");
		imap_write_mailbox(cmd->s, &cmd->out, r->name);
		bu_buf_append_str(&cmd->out, " (");
		bu_buf_append(&cmd->out, items.data, items.len);
		bu_buf_append_str(&cmd->out, ")\r\n");
	}
	bu_buf_deinit(&items);
	if (longest > 0)
		imap_reply_ok(cmd, "[METADATA LONGENTRIES %" PRId64 "] Getmetadata completed",
			      longest);
	else
		imap_reply_ok(cmd, "Getmetadata completed");
}

void imap_cmd_getmetadata(struct imap_cmd *cmd)
{
	struct getmeta_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	size_t ai = 0, i;
	const struct imap_arg *ents;

	r->maxsize = -1;
	r->depth = 0;
	if (cmd->n_args > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *o = &cmd->args[0];

		for (i = 0; i < o->n_list; i += 2) {
			uint64_t v;

			if (i + 1 >= o->n_list || o->list[i + 1].type != IMAP_ARG_ATOM) {
				imap_reply_bad(cmd, "Invalid GETMETADATA options");
				return;
			}
			if (imap_arg_atom_eq(&o->list[i], "MAXSIZE") &&
			    bu_parse_u64(o->list[i + 1].str, o->list[i + 1].len, INT64_MAX, &v) ==
				    0) {
				r->maxsize = (int64_t)v;
			} else if (imap_arg_atom_eq(&o->list[i], "DEPTH")) {
				const char *d = o->list[i + 1].str;

				if (strcmp(d, "0") == 0)
					r->depth = 0;
				else if (strcmp(d, "1") == 0)
					r->depth = 1;
				else if (strcasecmp(d, "infinity") == 0)
					r->depth = -1;
				else {
					imap_reply_bad(cmd, "Invalid DEPTH");
					return;
				}
			} else {
				imap_reply_bad(cmd, "Invalid GETMETADATA options");
				return;
			}
		}
		ai = 1;
	}
	if (cmd->n_args != ai + 2) {
		imap_reply_bad(cmd, "GETMETADATA needs a mailbox and entries");
		return;
	}
	r->name = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[ai]);
	if (r->name == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	ents = &cmd->args[ai + 1];
	if (ents->type == IMAP_ARG_LIST) {
		r->n_entries = ents->n_list;
		ents = ents->list;
	} else {
		r->n_entries = 1;
	}
	if (r->n_entries == 0) {
		imap_reply_bad(cmd, "No entries");
		return;
	}
	r->entries = bu_arena_alloc(cmd->a, r->n_entries * sizeof(char *));
	for (i = 0; i < r->n_entries; i++) {
		if (!imap_arg_is_string(&ents[i]) || !entry_valid(ents[i].str, true)) {
			imap_reply_bad(cmd, "Invalid entry name");
			return;
		}
		r->entries[i] = ents[i].str;
	}
	cmd->priv = r;
	imap_cmd_submit(cmd, getmeta_run);
}

/* ---- SETMETADATA -------------------------------------------------------- */

struct setmeta_req {
	char *name;
	const struct imap_arg *list;
	size_t n;
};

static void setmeta_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct setmeta_req *r = cmd->priv;
	int64_t owner, coll;
	size_t i;

	if (meta_target(cmd, db, r->name, &owner, &coll) <= 0)
		return;
	for (i = 0; i < r->n; i += 2) {
		const struct imap_arg *v = &r->list[i + 1];
		int ret = ms_metadata_set(db, cmd->s->user_id, owner, coll, r->list[i].str,
					  v->type == IMAP_ARG_NIL ? NULL : (const uint8_t *)v->str,
					  v->type == IMAP_ARG_NIL ? 0 : v->len);

		if (ret < 0) {
			meta_err(cmd, ret);
			return;
		}
	}
	imap_reply_ok(cmd, "Setmetadata completed");
}

void imap_cmd_setmetadata(struct imap_cmd *cmd)
{
	struct setmeta_req *r = bu_arena_alloc(cmd->a, sizeof(*r));
	const struct imap_arg *l;
	size_t i;

	if (cmd->n_args != 2 || cmd->args[1].type != IMAP_ARG_LIST) {
		imap_reply_bad(cmd, "SETMETADATA needs a mailbox and a list of entries and values");
		return;
	}
	r->name = imap_mailbox_name_in(cmd->s, cmd->a, &cmd->args[0]);
	if (r->name == NULL) {
		imap_reply_bad(cmd, "Invalid mailbox name");
		return;
	}
	l = &cmd->args[1];
	if (l->n_list == 0 || l->n_list % 2 != 0) {
		imap_reply_bad(cmd, "Entries and values must come in pairs");
		return;
	}
	for (i = 0; i < l->n_list; i += 2) {
		const struct imap_arg *v = &l->list[i + 1];

		if (!imap_arg_is_string(&l->list[i]) || !entry_valid(l->list[i].str, false)) {
			imap_reply_bad(cmd, "Invalid entry name");
			return;
		}
		if (v->type == IMAP_ARG_LIST || v->type == IMAP_ARG_ATOM) {
			imap_reply_bad(cmd, "Invalid value");
			return;
		}
		if (v->type != IMAP_ARG_NIL && v->len > META_VALUE_MAX) {
			imap_reply_no(cmd, "[METADATA MAXSIZE %d] Value too long", META_VALUE_MAX);
			return;
		}
	}
	r->list = l->list;
	r->n = l->n_list;
	cmd->priv = r;
	imap_cmd_submit(cmd, setmeta_run);
}

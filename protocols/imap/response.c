/*
 * response.c - writing IMAP responses and reading the common argument
 * kinds: tagged and untagged replies, strings (atom, quoted or literal,
 * whichever is valid and shortest; RFC 3501 section 4.3), flag lists,
 * mailbox names (modified UTF-7, RFC 3501 5.1.3; UTF-8 after ENABLE
 * UTF8=ACCEPT, RFC 6855) and the three namespaces (RFC 2342):
 *
 *   ""               the user's own folders
 *   "Other Users/"   "Other Users/<address>/<folder>": folders of other
 *                    users on which the user has the l right
 *   "Shared/"        "Shared/<address>/<folder>": shared-mailbox principals
 *
 * imap_mailbox_resolve() maps such a name to (owner account, collection).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "groupware/acl.h"
#include "groupware/collection.h"
#include "groupware/mailstore.h"
#include "groupware/principal.h"
#include "imap_int.h"
#include "server/core/log.h"

/* ---- tagged / untagged ---------------------------------------------- */

static void reply(struct imap_cmd *cmd, char code, const char *word, const char *fmt, va_list ap)
{
	struct imap_sess *x = imap_sess_of(cmd->s);

	x->tag_off = cmd->out.len;
	x->result = code;
	bu_buf_printf(&cmd->out, "%s %s ", cmd->tag, word);
	bu_buf_vprintf(&cmd->out, fmt, ap);
	bu_buf_append_str(&cmd->out, "\r\n");
	cmd->done = true;
}

void imap_reply_ok(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply(cmd, 'O', "OK", fmt, ap);
	va_end(ap);
}

void imap_reply_no(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply(cmd, 'N', "NO", fmt, ap);
	va_end(ap);
}

void imap_reply_bad(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply(cmd, 'B', "BAD", fmt, ap);
	va_end(ap);
}

void imap_untagged(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	bu_buf_append_str(&cmd->out, "* ");
	va_start(ap, fmt);
	bu_buf_vprintf(&cmd->out, fmt, ap);
	va_end(ap);
	bu_buf_append_str(&cmd->out, "\r\n");
}

void imap_reply_ms_err(struct imap_cmd *cmd, int ms_err, const char *what)
{
	if (what == NULL || *what == '\0')
		what = "Mailbox";
	switch (ms_err) {
	case MS_NOTFOUND:
		imap_reply_no(cmd, "[NONEXISTENT] %s does not exist", what);
		break;
	case MS_NOPERM:
		imap_reply_no(cmd, "[NOPERM] Permission denied");
		break;
	case MS_OVERQUOTA:
		imap_reply_no(cmd, "[OVERQUOTA] Quota exceeded");
		break;
	case MS_EXISTS:
		imap_reply_no(cmd, "[ALREADYEXISTS] %s already exists", what);
		break;
	case MS_TOOBIG:
		imap_reply_no(cmd, "[TOOBIG] Message too large");
		break;
	case MS_MODIFIED:
		imap_reply_no(cmd, "[MODIFIED] Changed meanwhile");
		break;
	default: {
		/* STYLE 35: a generic reply with an id that is also logged */
		unsigned id = (unsigned)(bu_mono_us() & 0xffffff);

		bu_error("event=imap_error cmd=%s err=%d id=%06x", cmd->name, ms_err, id);
		imap_reply_no(cmd,
			      "[UNAVAILABLE] Temporary server failure, try again later "
			      "(id %06x)",
			      id);
		break;
	}
	}
}

/* ---- strings ---------------------------------------------------------- */

static bool is_atom_char_strict(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

/* ASTRING-CHAR: atom chars plus ']' */
static bool astring_atom_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || (len == 3 && strncasecmp(s, "NIL", 3) == 0))
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_atom_char_strict(c) && c != ']')
			return false;
	}
	return true;
}

/* quotable: no CR/LF/NUL, 7-bit unless utf8 (RFC 6855), not huge */
static bool quotable(const char *s, size_t len, bool utf8)
{
	size_t i;

	if (len > 4096)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return false;
		if (c >= 0x80 && !utf8)
			return false;
	}
	return true;
}

static void write_quoted(struct bu_buf *out, const char *s, size_t len)
{
	size_t i, start = 0;

	bu_buf_append_byte(out, '"');
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			bu_buf_append(out, s + start, i - start);
			bu_buf_append_byte(out, '\\');
			start = i;
		}
	}
	bu_buf_append(out, s + start, len - start);
	bu_buf_append_byte(out, '"');
}

void imap_write_literal(struct bu_buf *out, const void *p, size_t len)
{
	bool binary = len > 0 && memchr(p, '\0', len) != NULL;

	bu_buf_printf(out, "%s{%zu}\r\n", binary ? "~" : "", len);
	bu_buf_append(out, p, len);
}

void imap_write_string(struct bu_buf *out, const char *s, size_t len)
{
	if (s == NULL) {
		bu_buf_append_str(out, "NIL");
		return;
	}
	if (quotable(s, len, false))
		write_quoted(out, s, len);
	else
		imap_write_literal(out, s, len);
}

void imap_write_nstring(struct bu_buf *out, const char *s)
{
	if (s == NULL)
		bu_buf_append_str(out, "NIL");
	else
		imap_write_string(out, s, strlen(s));
}

void imap_write_astring(struct bu_buf *out, const char *s)
{
	size_t len;

	if (s == NULL)
		s = "";
	len = strlen(s);
	if (astring_atom_ok(s, len))
		bu_buf_append(out, s, len);
	else
		imap_write_string(out, s, len);
}

/* ---- flags ------------------------------------------------------------ */

static const struct {
	uint32_t bit;
	const char *name;
} sysflags[] = {
	{ MF_ANSWERED, "\\Answered" }, { MF_FLAGGED, "\\Flagged" }, { MF_DELETED, "\\Deleted" },
	{ MF_SEEN, "\\Seen" },	       { MF_DRAFT, "\\Draft" },
};

void imap_write_flags(struct bu_buf *out, uint32_t flags, char *const *keywords, bool recent)
{
	bool first = true;
	size_t i;

	bu_buf_append_byte(out, '(');
	for (i = 0; i < BU_N_ELEMENTS(sysflags); i++) {
		if (!(flags & sysflags[i].bit))
			continue;
		if (!first)
			bu_buf_append_byte(out, ' ');
		bu_buf_append_str(out, sysflags[i].name);
		first = false;
	}
	if (recent || (flags & MF_RECENT)) {
		if (!first)
			bu_buf_append_byte(out, ' ');
		bu_buf_append_str(out, "\\Recent");
		first = false;
	}
	for (i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		if (!first)
			bu_buf_append_byte(out, ' ');
		bu_buf_append_str(out, keywords[i]);
		first = false;
	}
	bu_buf_append_byte(out, ')');
}

void imap_write_permanentflags(struct bu_buf *out, char *const *keywords, uint32_t rights,
			       bool readonly)
{
	bool first = true;
	size_t i;

	bu_buf_append_byte(out, '(');
	for (i = 0; i < BU_N_ELEMENTS(sysflags) && !readonly; i++) {
		uint32_t need = sysflags[i].bit == MF_SEEN	? ACL_SEEN
				: sysflags[i].bit == MF_DELETED ? ACL_DELETE_MSG
								: ACL_WRITE;

		if (!(rights & need))
			continue;
		if (!first)
			bu_buf_append_byte(out, ' ');
		bu_buf_append_str(out, sysflags[i].name);
		first = false;
	}
	if (!readonly && (rights & ACL_WRITE)) {
		for (i = 0; keywords != NULL && keywords[i] != NULL; i++) {
			if (!first)
				bu_buf_append_byte(out, ' ');
			bu_buf_append_str(out, keywords[i]);
			first = false;
		}
		if (!first)
			bu_buf_append_byte(out, ' ');
		bu_buf_append_str(out, "\\*");
	}
	bu_buf_append_byte(out, ')');
}

static bool keyword_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 256)
		return false;
	for (i = 0; i < len; i++) {
		if (!is_atom_char_strict((unsigned char)s[i]))
			return false;
	}
	return true;
}

int imap_parse_flags(struct bu_arena *a, const struct imap_arg *arg, uint32_t *flags_r,
		     char ***keywords_r)
{
	const struct imap_arg *list;
	size_t n, i, nk = 0;
	char **kw;

	*flags_r = 0;
	if (arg->type == IMAP_ARG_LIST) {
		list = arg->list;
		n = arg->n_list;
	} else {
		list = arg;
		n = 1;
	}
	kw = bu_arena_alloc(a, bu_size_mul(n + 1, sizeof(*kw)));
	for (i = 0; i < n; i++) {
		const struct imap_arg *f = &list[i];
		size_t k;
		bool dup = false;

		if (f->type != IMAP_ARG_ATOM)
			return -1;
		if (f->str[0] == '\\') {
			bool found = false;

			for (k = 0; k < BU_N_ELEMENTS(sysflags); k++) {
				if (strcasecmp(f->str, sysflags[k].name) == 0) {
					*flags_r |= sysflags[k].bit;
					found = true;
				}
			}
			if (!found)
				return -1; /* \Recent, \* and unknown system flags */
			continue;
		}
		if (!keyword_valid(f->str, f->len))
			return -1;
		for (k = 0; k < nk; k++) {
			if (strcasecmp(kw[k], f->str) == 0)
				dup = true;
		}
		if (!dup)
			kw[nk++] = bu_arena_strdup(a, f->str);
	}
	kw[nk] = NULL;
	*keywords_r = kw;
	return 0;
}

/* ---- arguments -------------------------------------------------------- */

const char *imap_arg_str(const struct imap_arg *arg)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST)
		return NULL;
	return arg->str;
}

bool imap_arg_is_string(const struct imap_arg *arg)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST)
		return false;
	/* a literal with a NUL inside is no text */
	return strlen(arg->str) == arg->len;
}

bool imap_arg_atom_eq(const struct imap_arg *arg, const char *s)
{
	return arg != NULL && (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
	       strcasecmp(arg->str, s) == 0;
}

/* ---- mailbox names ------------------------------------------------------ */

static bool utf8_valid_text(struct bu_arena *a, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	/* the encoder refuses malformed UTF-8 */
	return imap_utf8_to_utf7(a, s) != NULL;
}

static bool has_8bit(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return true;
	}
	return false;
}

char *imap_mailbox_name_in(struct imap_session *s, struct bu_arena *a, const struct imap_arg *arg)
{
	const char *raw;
	char *name;

	if (!imap_arg_is_string(arg))
		return NULL;
	raw = arg->str;
	if (s->utf8_accept || has_8bit(raw)) {
		/* RFC 6855; and 8-bit names from clients that never heard of
		 * modified UTF-7 are taken for the UTF-8 they are */
		name = bu_arena_strdup(a, raw);
	} else {
		name = imap_utf7_to_utf8(a, raw);
		if (name == NULL)
			return NULL;
	}
	if (!utf8_valid_text(a, name))
		return NULL;
	/* RFC 3501 5.1: INBOX is case-insensitive, also as a superior */
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == IMAP_SEP))
		memcpy(name, "INBOX", 5);
	return name;
}

char *imap_mailbox_name_out(struct imap_session *s, struct bu_arena *a, const char *utf8)
{
	char *r;

	if (s->utf8_accept)
		return bu_arena_strdup(a, utf8);
	r = imap_utf8_to_utf7(a, utf8);
	return r != NULL ? r : bu_arena_strdup(a, utf8);
}

void imap_write_mailbox(struct imap_session *s, struct bu_buf *out, const char *utf8)
{
	struct bu_arena *a = bu_arena_create(256);
	char *name = imap_mailbox_name_out(s, a, utf8);
	size_t len = strlen(name);

	if (astring_atom_ok(name, len))
		bu_buf_append(out, name, len);
	else if (quotable(name, len, s->utf8_accept))
		write_quoted(out, name, len);
	else
		imap_write_literal(out, name, len);
	bu_arena_destroy(&a);
}

int imap_name_split(struct bu_arena *a, const char *utf8, int *ns_r, char **addr_r, char **rest_r)
{
	static const char *const roots[2] = { IMAP_NS_OTHER, IMAP_NS_SHARED };
	int ns;

	*addr_r = NULL;
	*rest_r = NULL;
	for (ns = 0; ns < 2; ns++) {
		size_t rl = strlen(roots[ns]);
		const char *p, *slash;

		/* the namespace node itself: "Other Users" or "Other Users/" */
		if (strncmp(utf8, roots[ns], rl - 1) != 0 ||
		    (utf8[rl - 1] != '\0' && utf8[rl - 1] != IMAP_SEP))
			continue;
		*ns_r = ns;
		if (utf8[rl - 1] == '\0' || utf8[rl] == '\0')
			return 1;
		p = utf8 + rl;
		slash = strchr(p, IMAP_SEP);
		if (slash == NULL) {
			*addr_r = bu_arena_strdup(a, p);
			return 1;
		}
		*addr_r = bu_arena_strndup(a, p, (size_t)(slash - p));
		*rest_r = bu_arena_strdup(a, slash + 1);
		/* their INBOX is case-insensitive too */
		if (strncasecmp(*rest_r, "INBOX", 5) == 0 &&
		    ((*rest_r)[5] == '\0' || (*rest_r)[5] == IMAP_SEP))
			memcpy(*rest_r, "INBOX", 5);
		return 1;
	}
	return 0;
}

bool imap_folder_name_valid(const char *utf8)
{
	size_t len = strlen(utf8);
	const unsigned char *p;

	if (len == 0 || len > 1000)
		return false;
	if (utf8[0] == IMAP_SEP || utf8[len - 1] == IMAP_SEP || strstr(utf8, "//") != NULL)
		return false;
	for (p = (const unsigned char *)utf8; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '%' || *p == '*')
			return false;
	}
	/* the namespace roots are not personal folders */
	if (strcmp(utf8, "Other Users") == 0 || strcmp(utf8, "Shared") == 0 ||
	    bu_str_startswith(utf8, IMAP_NS_OTHER) || bu_str_startswith(utf8, IMAP_NS_SHARED))
		return false;
	return true;
}

const char *imap_special_use_canon(const char *attr)
{
	static const char *const uses[] = {
		"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash",
	};
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(uses); i++) {
		if (strcasecmp(attr, uses[i]) == 0)
			return uses[i];
	}
	return NULL;
}

int imap_mailbox_resolve(struct imap_session *s, struct bu_db *db, struct bu_arena *a,
			 const char *utf8_name, int64_t *owner_r, int64_t *collection_r,
			 char **folder_r)
{
	struct collection *c = NULL;
	struct principal *p = NULL;
	char *addr, *rest;
	int ns, ret;

	*owner_r = 0;
	*collection_r = 0;
	if (folder_r != NULL)
		*folder_r = NULL;
	if (imap_name_split(a, utf8_name, &ns, &addr, &rest) == 0) {
		ret = collection_get_by_name(db, a, s->user_id, COLL_MAIL, utf8_name, &c);
		if (ret < 0)
			return MS_ERR;
		if (ret == 0)
			return 0;
		*owner_r = s->user_id;
		*collection_r = c->id;
		if (folder_r != NULL)
			*folder_r = c->name;
		return 1;
	}
	/* namespace and user nodes are not mailboxes */
	if (addr == NULL || rest == NULL || *rest == '\0')
		return 0;
	ret = principal_lookup(db, a, addr, &p);
	if (ret < 0)
		return MS_ERR;
	if (ret == 0 || p->id == s->user_id ||
	    p->kind != (ns == 0 ? PRINCIPAL_USER : PRINCIPAL_SHARED))
		return 0;
	ret = ms_folder_resolve(db, a, s->user_id, p->id, rest, &c);
	if (ret == MS_NOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	*owner_r = p->id;
	*collection_r = c->id;
	if (folder_r != NULL)
		*folder_r = c->name;
	return 1;
}

/* The client-visible name of folder `folder` of account `owner` (arena). */
char *imap_mailbox_full_name(struct imap_session *s, struct bu_arena *a, int64_t owner,
			     const struct principal *op, const char *folder)
{
	if (owner == s->user_id || op == NULL)
		return bu_arena_strdup(a, folder);
	return bu_arena_printf(a, "%s%s/%s",
			       op->kind == PRINCIPAL_SHARED ? IMAP_NS_SHARED : IMAP_NS_OTHER,
			       op->address, folder);
}

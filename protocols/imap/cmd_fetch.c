/*
 * cmd_fetch.c - FETCH and UID FETCH (RFC 3501 6.4.5, RFC 9051 6.4.5),
 * BINARY (RFC 3516), CONDSTORE CHANGEDSINCE / MODSEQ and QRESYNC VANISHED
 * (RFC 7162 3.1.4, 3.2.6), EMAILID/THREADID (RFC 8474), PREVIEW (RFC 8970),
 * SAVEDATE (RFC 8514); and the rendering of ENVELOPE and BODYSTRUCTURE from
 * the MIME tree stored at delivery (mime_deserialize): no message is parsed
 * again here, and every body section is served byte for byte from the
 * stored raw message at the offsets in that tree.
 *
 * Streaming: the requested UIDs are handled in windows of FETCH_WINDOW
 * messages (one ms_fetch for flags, dates, sizes and trees: a query per
 * UID is what makes a naive server slow, a query for everything what makes
 * it big); when bodies
 * are wanted, their raw bytes come in smaller batches bounded by
 * FETCH_RAW_BYTES, so neither the database result nor cmd->out grows with
 * the size of the request. A small request (up to FETCH_DIRECT_MAX
 * messages: all bodies; up to FETCH_FIRST_MAX: the bodies of the first
 * MS_FETCH_RAW_FIRST bytes) gets them with the window, in one query. Each round ends with cmd->again, the framework
 * flushes and calls us again when the client has read enough.
 *
 * \Seen: a body item without PEEK marks the message \Seen (when the
 * mailbox is read-write and the user has the s right), one ms_store per
 * window, and FLAGS (with MODSEQ under CONDSTORE) is added to the
 * response as RFC 3501 6.4.5 asks.
 *
 * Messages in the set that were expunged meanwhile (still in our sequence
 * map, RFC 3501 7.4.1) are skipped silently; so are UIDs that do not
 * exist (UID FETCH of an absent UID is OK with no response).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch.h"
#include "groupware/acl.h"
#include "groupware/mailstore.h"
#include "groupware/mime.h"
#include "groupware/msgcache.h"
#include "server/core/log.h"

/* messages per metadata query and per response round (flags and dates:
 * about 50 bytes of output each; with ENVELOPE/BODYSTRUCTURE about 1 KB
 * each, and their trees to decode, so fewer) */
#define FETCH_WINDOW 2000
#define FETCH_WINDOW_STRUCTURE 1000
/* raw bytes per body query (at least one message) */
#define FETCH_RAW_BYTES ((int64_t)2 * 1024 * 1024)
/* up to this many messages, bodies come with the metadata in one query */
#define FETCH_DIRECT_MAX 4
/* up to this many, so do those of the first MS_FETCH_RAW_FIRST bytes */
#define FETCH_FIRST_MAX 256

/* ---- output helpers ---------------------------------------------------- */

/* bu_buf_append, inline when the bytes fit (the ENVELOPE and BODYSTRUCTURE
 * writers append thousands of short pieces per window) */
static inline void put_bytes(struct bu_buf *out, const void *p, size_t n)
{
	if (out->max == 0 && out->len + n < out->cap) {
		memcpy(out->data + out->len, p, n);
		out->len += n;
		out->data[out->len] = '\0';
		return;
	}
	bu_buf_append(out, p, n);
}

static inline void put_byte(struct bu_buf *out, char c)
{
	if (out->max == 0 && out->len + 1 < out->cap) {
		out->data[out->len++] = (uint8_t)c;
		out->data[out->len] = '\0';
		return;
	}
	bu_buf_append_byte(out, (uint8_t)c);
}

/* a constant */
#define PUT(out, lit) put_bytes((out), (lit), sizeof(lit) - 1)

/* how a byte goes into a quoted string: as it is, after a backslash, or
 * not at all (the string must be a literal: NUL, CR, LF, 8-bit) */
enum { Q_PLAIN, Q_ESCAPE, Q_LITERAL };
static const uint8_t qclass[256] = {
	[0] = Q_LITERAL, ['\r'] = Q_LITERAL, ['\n'] = Q_LITERAL,
	['"'] = Q_ESCAPE, ['\\'] = Q_ESCAPE,
	[0x80 ... 0xff] = Q_LITERAL,
};

/* imap_write_string's output (a quoted string when it can be one, else a
 * literal) in one pass for the common case: the ENVELOPE and BODYSTRUCTURE
 * of FETCH 1:* are thousands of these. Anything quotable() in response.c
 * would refuse (over 4096 bytes, NUL, CR, LF, 8-bit) goes to
 * imap_write_string itself, so the two cannot disagree on what they
 * write, only on how fast. */
static void put_string(struct bu_buf *out, const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	uint8_t *o;
	size_t i, w = 0;

	if (s == NULL || len > 4096 || bu_buf_reserve(out, 2 * len + 2) < 0) {
		imap_write_string(out, s, len);
		return;
	}
	o = out->data + out->len;
	o[w++] = '"';
	for (i = 0; i < len; i++) {
		uint8_t q = qclass[p[i]];

		if (q != Q_PLAIN) {
			if (q == Q_LITERAL) {
				imap_write_string(out, s, len);
				return;
			}
			o[w++] = '\\';
		}
		o[w++] = p[i];
	}
	o[w++] = '"';
	out->len += w;
	out->data[out->len] = '\0';
}

static void put_nstring(struct bu_buf *out, const char *s)
{
	if (s == NULL)
		PUT(out, "NIL");
	else
		put_string(out, s, strlen(s));
}

/* " %zu" */
static void put_num(struct bu_buf *out, uint64_t v)
{
	char tmp[21];
	size_t n = bu_u64_dec(v, tmp + 1);

	tmp[0] = ' ';
	put_bytes(out, tmp, n + 1);
}

/* ---- ENVELOPE -------------------------------------------------------- */

static void write_addrs(struct bu_buf *out, const struct mime_address *v, size_t n)
{
	size_t i;

	if (n == 0) {
		PUT(out, "NIL");
		return;
	}
	put_byte(out, '(');
	for (i = 0; i < n; i++) {
		const struct mime_address *ad = &v[i];

		if (ad->group_end) {
			/* RFC 3501 7.4.2: end of group */
			PUT(out, "(NIL NIL NIL NIL)");
			continue;
		}
		if (ad->group_start) {
			PUT(out, "(NIL NIL ");
			put_nstring(out, ad->mailbox != NULL ? ad->mailbox : "");
			PUT(out, " NIL)");
			continue;
		}
		put_byte(out, '(');
		put_nstring(out, ad->name);
		put_byte(out, ' ');
		put_nstring(out, ad->adl);
		put_byte(out, ' ');
		/* a NIL host would read as a group marker: name what is missing
		 * the way other servers do */
		put_nstring(out, ad->mailbox != NULL ? ad->mailbox : "MISSING_MAILBOX");
		put_byte(out, ' ');
		put_nstring(out, ad->host != NULL ? ad->host : "MISSING_DOMAIN");
		put_byte(out, ')');
	}
	put_byte(out, ')');
}

void imap_write_envelope(struct bu_buf *out, const struct mime_part *msg)
{
	const struct mime_envelope *e = msg != NULL ? msg->envelope : NULL;

	if (e == NULL) {
		PUT(out, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
		return;
	}
	put_byte(out, '(');
	put_nstring(out, e->date);
	put_byte(out, ' ');
	put_nstring(out, e->subject);
	put_byte(out, ' ');
	write_addrs(out, e->from, e->n_from);
	put_byte(out, ' ');
	/* RFC 3501 7.4.2: Sender and Reply-To default to From */
	if (e->n_sender > 0)
		write_addrs(out, e->sender, e->n_sender);
	else
		write_addrs(out, e->from, e->n_from);
	put_byte(out, ' ');
	if (e->n_reply_to > 0)
		write_addrs(out, e->reply_to, e->n_reply_to);
	else
		write_addrs(out, e->from, e->n_from);
	put_byte(out, ' ');
	write_addrs(out, e->to, e->n_to);
	put_byte(out, ' ');
	write_addrs(out, e->cc, e->n_cc);
	put_byte(out, ' ');
	write_addrs(out, e->bcc, e->n_bcc);
	put_byte(out, ' ');
	put_nstring(out, e->in_reply_to);
	put_byte(out, ' ');
	put_nstring(out, e->message_id);
	put_byte(out, ')');
}

/* ---- BODYSTRUCTURE ------------------------------------------------------ */

/* a string in upper case (types, subtypes, encodings, dispositions) */
static void write_upper(struct bu_buf *out, const char *s)
{
	char tmp[128];
	size_t n = strlen(s), i;

	if (n >= sizeof(tmp)) {
		put_string(out, s, n);
		return;
	}
	for (i = 0; i < n; i++)
		tmp[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
	tmp[n] = '\0';
	put_string(out, tmp, n);
}

static void write_params(struct bu_buf *out, const struct mime_param *v, size_t n,
			 bool default_charset)
{
	size_t i;

	if (n == 0) {
		/* RFC 2045 5.2: text without parameters is US-ASCII */
		bu_buf_append_str(out, default_charset ? "(\"charset\" \"us-ascii\")" : "NIL");
		return;
	}
	put_byte(out, '(');
	for (i = 0; i < n; i++) {
		const char *name = v[i].name != NULL ? v[i].name : "";
		const char *value = v[i].value != NULL ? v[i].value : "";

		if (i > 0)
			put_byte(out, ' ');
		put_string(out, name, strlen(name));
		put_byte(out, ' ');
		put_string(out, value, strlen(value));
	}
	put_byte(out, ')');
}

static void write_disposition(struct bu_buf *out, const struct mime_part *p)
{
	if (p->disposition == NULL) {
		PUT(out, "NIL");
		return;
	}
	put_byte(out, '(');
	write_upper(out, p->disposition);
	put_byte(out, ' ');
	write_params(out, p->disp_params, p->n_disp_params, false);
	put_byte(out, ')');
}

/* body-fld-lang: NIL, one string, or a list for "en, de" */
static void write_language(struct bu_buf *out, const char *lang)
{
	const char *p, *start;
	bool first = true;

	if (lang == NULL || *lang == '\0') {
		PUT(out, "NIL");
		return;
	}
	if (strchr(lang, ',') == NULL) {
		put_nstring(out, lang);
		return;
	}
	put_byte(out, '(');
	for (p = lang; *p != '\0';) {
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		n = (size_t)(p - start);
		while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
			n--;
		if (n == 0)
			continue;
		if (!first)
			put_byte(out, ' ');
		put_string(out, start, n);
		first = false;
	}
	if (first)
		PUT(out, "\"\"");
	put_byte(out, ')');
}

static void write_ext_tail(struct bu_buf *out, const struct mime_part *p)
{
	put_byte(out, ' ');
	write_disposition(out, p);
	put_byte(out, ' ');
	write_language(out, p->language);
	put_byte(out, ' ');
	put_nstring(out, p->location);
}

static void write_part(struct bu_buf *out, const struct mime_part *p, bool ext, int depth);

static void write_empty_text(struct bu_buf *out)
{
	bu_buf_append_str(out, "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL "
			  "\"7BIT\" 0 0)");
}

static void write_multipart(struct bu_buf *out, const struct mime_part *p, bool ext, int depth)
{
	size_t i;

	put_byte(out, '(');
	if (p->n_children == 0)
		write_empty_text(out);   /* a multipart must have a body part */
	for (i = 0; i < p->n_children; i++)
		write_part(out, &p->children[i], ext, depth + 1);
	put_byte(out, ' ');
	write_upper(out, p->subtype != NULL ? p->subtype : "mixed");
	if (ext) {
		put_byte(out, ' ');
		write_params(out, p->params, p->n_params, false);
		write_ext_tail(out, p);
	}
	put_byte(out, ')');
}

static bool is_type(const struct mime_part *p, const char *type)
{
	return p->type != NULL && strcasecmp(p->type, type) == 0;
}

static void write_part(struct bu_buf *out, const struct mime_part *p, bool ext, int depth)
{
	bool text = is_type(p, "text") || p->type == NULL;
	bool msg = is_type(p, "message") && p->subtype != NULL &&
		   (strcasecmp(p->subtype, "rfc822") == 0 || strcasecmp(p->subtype, "global") == 0);

	if (depth > MIME_MAX_DEPTH * 2 + 4) {
		write_empty_text(out);
		return;
	}
	if (is_type(p, "multipart") || p->n_children > 0) {
		write_multipart(out, p, ext, depth);
		return;
	}
	put_byte(out, '(');
	write_upper(out, p->type != NULL ? p->type : "text");
	put_byte(out, ' ');
	write_upper(out, p->subtype != NULL ? p->subtype : "plain");
	put_byte(out, ' ');
	write_params(out, p->params, p->n_params, text);
	put_byte(out, ' ');
	put_nstring(out, p->id);
	put_byte(out, ' ');
	put_nstring(out, p->description);
	put_byte(out, ' ');
	write_upper(out, p->encoding != NULL ? p->encoding : "7bit");
	put_num(out, p->body_len);
	if (msg) {
		/* RFC 3501 7.4.2 body-type-msg: envelope, body, lines */
		put_byte(out, ' ');
		imap_write_envelope(out, p->message);
		put_byte(out, ' ');
		if (p->message != NULL)
			write_part(out, p->message, ext, depth + 1);
		else
			write_empty_text(out);
		put_num(out, p->body_lines);
	} else if (text) {
		put_num(out, p->body_lines);
	}
	if (ext) {
		put_byte(out, ' ');
		put_nstring(out, p->md5);
		write_ext_tail(out, p);
	}
	put_byte(out, ')');
}

void imap_write_bodystructure(struct bu_buf *out, const struct mime_part *part, bool extended)
{
	if (part == NULL) {
		write_empty_text(out);
		return;
	}
	write_part(out, part, extended, 0);
}

/* ---- sections ------------------------------------------------------------ */

static void clamp(size_t len, size_t off, size_t n, const uint8_t *raw, const uint8_t **p_r,
		  size_t *len_r)
{
	if (off > len)
		off = len;
	if (n > len - off)
		n = len - off;
	*p_r = raw + off;
	*len_r = n;
}

int imap_section_bytes(const struct mime_part *root, const uint8_t *raw, size_t len,
		       const struct fetch_section *sect, struct bu_buf *tmp,
		       const uint8_t **p_r, size_t *len_r)
{
	const struct mime_part *part, *msg;
	bool top = sect->path == NULL || *sect->path == '\0';

	*p_r = raw;
	*len_r = 0;
	if (top && sect->kind == FS_PART) {
		*len_r = len;
		return 1;
	}
	if (root == NULL)
		return 0;
	part = top ? root : mime_find_part(root, sect->path);
	if (part == NULL)
		return 0;
	switch (sect->kind) {
	case FS_PART:
		clamp(len, part->body_off, part->body_len, raw, p_r, len_r);
		return 1;
	case FS_MIME:
		clamp(len, part->hdr_off, part->hdr_len, raw, p_r, len_r);
		return 1;
	case FS_HEADER:
	case FS_HEADER_FIELDS:
	case FS_HEADER_FIELDS_NOT:
	case FS_TEXT:
		break;
	}
	/* HEADER/TEXT of the message itself or of an embedded message */
	msg = top ? root : part->message;
	if (msg == NULL)
		return 0;
	if (sect->kind == FS_TEXT) {
		clamp(len, msg->body_off, msg->body_len, raw, p_r, len_r);
		return 1;
	}
	clamp(len, msg->hdr_off, msg->hdr_len, raw, p_r, len_r);
	if (sect->kind == FS_HEADER)
		return 1;
	bu_buf_reset(tmp);
	mime_header_filter(tmp, *p_r, *len_r, (const char *const *)sect->fields, sect->n_fields,
			   sect->kind == FS_HEADER_FIELDS_NOT);
	*p_r = tmp->data != NULL ? tmp->data : (const uint8_t *)"";
	*len_r = tmp->len;
	return 1;
}

/* Content-Transfer-Encodings BINARY can decode (RFC 3516 4.3) */
static bool cte_known(const char *enc)
{
	static const char *const known[] = {
		"7bit", "8bit", "binary", "base64", "quoted-printable",
	};
	size_t i;

	if (enc == NULL)
		return true;
	for (i = 0; i < BU_N_ELEMENTS(known); i++) {
		if (strcasecmp(enc, known[i]) == 0)
			return true;
	}
	return false;
}

/* The part a BINARY section names (NULL = none); whole message for "" */
static const struct mime_part *binary_part(const struct mime_part *root, const char *path)
{
	if (root == NULL)
		return NULL;
	if (path == NULL || *path == '\0')
		return root;
	return mime_find_part(root, path);
}

/* Decoded bytes of a BINARY section into tmp; 1 ok, 0 absent. */
static int binary_bytes(const struct mime_part *root, const uint8_t *raw, size_t len,
			const char *path, struct bu_buf *tmp, const uint8_t **p_r, size_t *len_r)
{
	const struct mime_part *p;

	*p_r = raw;
	*len_r = 0;
	if (path == NULL || *path == '\0') {
		*len_r = len;        /* the whole message, as it is */
		return 1;
	}
	p = binary_part(root, path);
	if (p == NULL)
		return 0;
	bu_buf_reset(tmp);
	mime_decode_body(tmp, p, raw, len, false);
	*p_r = tmp->data != NULL ? tmp->data : (const uint8_t *)"";
	*len_r = tmp->len;
	return 1;
}

/* ---- the command ------------------------------------------------------- */

struct fetch_state {
	struct fetch_req req;
	uint32_t *uids;            /* requested, present in our map, ascending */
	size_t n_uids, pos;        /* next UID to load into a window */
	struct bu_arena *wa;       /* window arena */
	struct ms_fetch *win;
	size_t n_win, win_pos;
	bool *win_flags_changed;   /* \Seen set by this FETCH */
	struct bu_arena *ba;       /* body batch arena */
	struct bu_arena *ta;       /* one message's tree, reset per message */
	bool set_seen;             /* this FETCH may set \Seen */
	bool direct;               /* bodies come with the window */
	bool first;                /* the first bodies come with the window */
	bool whole;                /* some item is a whole message (BODY[]) */
	bool win_cached;           /* this window came from the message cache */
	bool cache_fill;           /* windows carry what the cache keeps */
	bool started;
	struct ms_msg *own;        /* our own \Seen changes (for the sync) */
	size_t n_own, cap_own;
	struct bu_buf tmp;         /* HEADER.FIELDS and BINARY scratch */
};

static void fetch_state_free(void *p)
{
	struct fetch_state *st = p;

	bu_arena_destroy(&st->wa);
	bu_arena_destroy(&st->ba);
	bu_arena_destroy(&st->ta);
	bu_buf_deinit(&st->tmp);
	free(st->own);
}

static void own_add(struct fetch_state *st, const struct ms_msg *m)
{
	if (st->n_own == st->cap_own) {
		st->cap_own = st->cap_own ? st->cap_own * 2 : 64;
		st->own = bu_realloc(st->own, bu_size_mul(st->cap_own, sizeof(*st->own)));
	}
	/* keywords are not needed to recognise our own change */
	st->own[st->n_own] = *m;
	st->own[st->n_own].keywords = NULL;
	st->n_own++;
}

static bool wants_seen(const struct fetch_req *r)
{
	size_t i;

	for (i = 0; i < r->n_bodies; i++) {
		if (!r->bodies[i].peek)
			return true;
	}
	return false;
}

static bool selected_unchanged(const struct fetch_state *st, const struct ms_fetch *f)
{
	return st->req.changedsince >= 0 && f->modseq <= st->req.changedsince;
}

/* Room in cmd->out for whole bodies about to be written (bytes in count
 * messages): one allocation rather than a doubling series of copies of
 * the growing buffer. */
static void reserve_bodies(struct imap_cmd *cmd, const struct fetch_state *st, size_t bytes,
			   size_t count)
{
	if (st->whole && bytes > 0)
		bu_buf_reserve(&cmd->out, bytes + count * 128);
}

/* Load the next window of metadata (and, in direct mode, bodies). */
/* ---- the message cache (groupware/msgcache.h) ------------------------- */

static void release_entry(void *e)
{
	mc_release(e);
}

/*
 * A window can come from the cache when it asks only for what never
 * changes (no FLAGS, MODSEQ, CHANGEDSINCE, no \Seen to set), the folder
 * is the user's own (rights cannot have changed under us), and nothing has
 * been committed to the account since our last sync, so every UID of our
 * map is still there as we know it. Else the database answers, and the
 * cache learns the bodies it returns.
 */
static bool cache_window_ok(struct imap_cmd *cmd, const struct fetch_state *st)
{
	struct imap_session *s = cmd->s;

	return mc_enabled() && s->user_id == s->sel->owner_id && !st->set_seen &&
	       !(st->req.items & (FI_FLAGS | FI_MODSEQ)) && st->req.changedsince < 0 &&
	       !st->req.vanished && imap_sync_unneeded(imap_sess_of(s), false);
}

/* the next k UIDs from the cache: true when every one was there */
static bool cache_window(struct imap_cmd *cmd, struct fetch_state *st, size_t k)
{
	struct imap_mailbox *mb = cmd->s->sel;
	struct ms_fetch *win = bu_arena_alloc(st->wa, (k + 1) * sizeof(*win));
	char **empty = bu_arena_alloc(st->wa, sizeof(char *));

	for (size_t i = 0; i < k; i++) {
		struct mc_entry *e = mc_get(mb->owner_id, mb->collection_id, st->uids[st->pos + i]);
		struct ms_fetch *f = &win[i];

		if (e == NULL) {
			bu_arena_reset(st->wa);   /* releases the ones taken */
			return false;
		}
		bu_arena_cleanup(st->wa, release_entry, e);
		*f = e->f;
		f->keywords = empty;
	}
	st->win = win;
	st->n_win = k;
	st->pos += k;
	st->win_pos = 0;
	st->win_cached = true;
	st->win_flags_changed = bu_arena_alloc(st->wa, (k + 1) * sizeof(bool));
	return true;
}

/* a body read from the database, with the window's row f around it */
static void cache_learn(const struct imap_cmd *cmd, const struct fetch_state *st,
			const struct ms_fetch *f, const uint8_t *raw, size_t raw_len)
{
	struct imap_mailbox *mb = cmd->s->sel;
	struct ms_fetch c;

	if (!st->cache_fill || raw == NULL || f->structure == NULL)
		return;
	c = *f;
	c.raw = raw;
	c.raw_len = raw_len;
	mc_put(mb->owner_id, mb->collection_id, &c);
}

/* the ms_fetch parts r needs besides bodies */
static unsigned fetch_what(const struct fetch_req *r)
{
	unsigned what = 0;

	if (r->items & (FI_INTERNALDATE | FI_EMAILID | FI_THREADID | FI_SAVEDATE))
		what |= MSF_META;
	if (r->need_structure)
		what |= MSF_STRUCTURE;
	if (r->items & FI_PREVIEW)
		what |= MSF_PREVIEW;
	return what;
}

static int load_window(struct imap_cmd *cmd, struct bu_db *db, struct fetch_state *st)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	size_t k = st->n_uids - st->pos;
	unsigned what = fetch_what(&st->req);
	int ret;

	if (k > (st->req.need_structure ? FETCH_WINDOW_STRUCTURE : FETCH_WINDOW))
		k = st->req.need_structure ? FETCH_WINDOW_STRUCTURE : FETCH_WINDOW;
	bu_arena_reset(st->wa);
	st->win_cached = false;
	if (cache_window_ok(cmd, st) && cache_window(cmd, st, k))
		return 0;
	if (st->direct)
		what |= MSF_RAW;
	else if (st->first)
		what |= MSF_RAW_FIRST;
	/* bodies are read: bring what the cache keeps along with them */
	st->cache_fill = st->req.need_raw && mc_enabled();
	if (st->cache_fill)
		what |= MSF_META | MSF_STRUCTURE | MSF_PREVIEW;
	ret = ms_fetch(db, st->wa, s->user_id, mb->owner_id, mb->collection_id,
		       st->uids + st->pos, k, what, &st->win, &st->n_win);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < st->n_win; i++)
		cache_learn(cmd, st, &st->win[i], st->win[i].raw, st->win[i].raw_len);
	st->pos += k;
	st->win_pos = 0;
	st->win_flags_changed = bu_arena_alloc(st->wa, (st->n_win + 1) * sizeof(bool));

	/* \Seen for the messages whose bodies this FETCH returns */
	if (st->set_seen && st->n_win > 0) {
		uint32_t *unseen = bu_arena_alloc(st->wa, st->n_win * sizeof(uint32_t));
		struct ms_store_result res;
		size_t n_unseen = 0, i, j = 0;

		for (i = 0; i < st->n_win; i++) {
			if (!(st->win[i].flags & MF_SEEN) && !selected_unchanged(st, &st->win[i]))
				unseen[n_unseen++] = st->win[i].uid;
		}
		if (n_unseen > 0) {
			ret = ms_store(db, st->wa, s->user_id, mb->owner_id, mb->collection_id,
				       unseen, n_unseen, MS_STORE_ADD, MF_SEEN, NULL, -1, &res);
			if (ret < 0 && ret != MS_NOPERM)
				bu_warn("event=imap_fetch_seen_failed err=%d", ret);
			for (i = 0; ret >= 0 && i < res.n_changed; i++) {
				const struct ms_msg *c = &res.changed[i];

				while (j < st->n_win && st->win[j].uid < c->uid)
					j++;
				if (j >= st->n_win || st->win[j].uid != c->uid)
					continue;
				st->win[j].flags = c->flags;
				st->win[j].modseq = c->modseq;
				st->win[j].keywords = c->keywords;
				st->win_flags_changed[j] = true;
				own_add(st, c);
			}
		}
	}
	return 0;
}

/* the tree of a message: stored one; if it cannot be read (it never
 * should), parse the raw bytes when we have them */
static const struct mime_part *tree_of(struct bu_arena *a, const struct ms_fetch *f,
				       const uint8_t *raw, size_t raw_len)
{
	const struct mime_part *t = NULL;

	if (f->structure != NULL)
		t = mime_deserialize(a, f->structure, f->structure_len);
	if (t == NULL && f->structure != NULL) {
		bu_warn("event=imap_fetch_bad_structure uid=%u", f->uid);
		if (raw != NULL)
			t = mime_parse(a, raw, raw_len);
	}
	return t;
}

/* Check BINARY items for encodings we cannot decode before writing. */
static bool binary_ok(const struct fetch_req *r, const struct mime_part *root)
{
	size_t i;

	for (i = 0; i < r->n_bodies; i++) {
		const struct fetch_body *b = &r->bodies[i];
		const struct mime_part *p;

		if (b->kind != FB_BINARY && b->kind != FB_BINARY_SIZE)
			continue;
		if (*b->sect.path == '\0')
			continue;
		p = binary_part(root, b->sect.path);
		if (p != NULL && p->n_children == 0 && p->message == NULL &&
		    !cte_known(p->encoding))
			return false;
	}
	return true;
}

static void write_body_literal(struct bu_buf *out, const uint8_t *p, size_t n, bool binary)
{
	bool nul = binary && n > 0 && memchr(p, '\0', n) != NULL;

	/* BODY[] goes out as stored, even with NULs in it (RFC 3501 has no
	 * other way to send them; clients take the bytes as they come) */
	bu_buf_printf(out, "%s{%zu}\r\n", nul ? "~" : "", n);
	bu_buf_append(out, p, n);
}

static void write_body_item(struct fetch_state *st, struct bu_buf *out, const struct fetch_body *b,
			    const struct mime_part *root, const uint8_t *raw, size_t raw_len)
{
	const uint8_t *p = NULL;
	size_t n = 0;
	int have;

	if (b->kind == FB_BINARY || b->kind == FB_BINARY_SIZE)
		have = binary_bytes(root, raw, raw_len, b->sect.path, &st->tmp, &p, &n);
	else
		have = imap_section_bytes(root, raw, raw_len, &b->sect, &st->tmp, &p, &n);
	bu_buf_append_str(out, b->label);
	if (b->kind == FB_BINARY_SIZE) {
		bu_buf_printf(out, " %zu", have ? n : (size_t)0);
		return;
	}
	if (b->partial) {
		bu_buf_printf(out, "<%" PRIu64 ">", b->offset);
		if (have) {
			if (b->offset >= n) {
				n = 0;
			} else {
				p += b->offset;
				n -= (size_t)b->offset;
				if (n > b->count)
					n = (size_t)b->count;
			}
		}
	}
	bu_buf_append_byte(out, ' ');
	if (!have) {
		bu_buf_append_str(out, "NIL");
		return;
	}
	write_body_literal(out, p, n, b->kind == FB_BINARY);
}

/* One "* n FETCH (...)"; false when a BINARY item met an unknown CTE.
 * The message's tree lives in st->ta only while it is written: the same
 * few pages serve every message of a window. */
static bool write_message(struct imap_cmd *cmd, struct fetch_state *st,
			  const struct ms_fetch *f, bool flags_changed, const uint8_t *raw,
			  size_t raw_len)
{
	struct bu_arena *a = st->ta;
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	const struct fetch_req *r = &st->req;
	struct bu_buf *out = &cmd->out;
	const struct mime_part *root = NULL;
	uint32_t seq = imap_mailbox_seq(mb, f->uid);
	bool sp = false;
	size_t i;

	if (seq == 0)
		return true;
	bu_arena_reset(a);
	if (r->need_structure)
		root = tree_of(a, f, raw, raw_len);
	if (!binary_ok(r, root))
		return false;
#define SEP() do { if (sp) put_byte(out, ' '); sp = true; } while (0)
	PUT(out, "*");
	put_num(out, seq);
	PUT(out, " FETCH (");
	/* RFC 7162 3.1: once CONDSTORE is enabled, FETCH responses that
	 * carry MODSEQ (flag changes included) carry the UID too */
	if ((r->items & FI_UID) || cmd->uid ||
	    (s->condstore && ((r->items & FI_MODSEQ) || flags_changed))) {
		SEP();
		PUT(out, "UID");
		put_num(out, f->uid);
	}
	if ((r->items & FI_FLAGS) || flags_changed) {
		SEP();
		PUT(out, "FLAGS ");
		imap_write_flags(out, f->flags & ~(uint32_t)MF_RECENT, f->keywords,
				 !s->imap4rev2 && imap_uid_in(mb->recent, mb->n_recent, f->uid));
	}
	if (r->items & FI_INTERNALDATE) {
		SEP();
		bu_buf_append_str(out, "INTERNALDATE ");
		imap_write_datetime(out, f->internaldate);
	}
	if (r->items & FI_RFC822_SIZE) {
		SEP();
		bu_buf_printf(out, "RFC822.SIZE %" PRId64, f->size);
	}
	if (r->items & FI_ENVELOPE) {
		SEP();
		PUT(out, "ENVELOPE ");
		imap_write_envelope(out, root);
	}
	if (r->items & FI_BODY) {
		SEP();
		PUT(out, "BODY ");
		imap_write_bodystructure(out, root, false);
	}
	if (r->items & FI_BODYSTRUCTURE) {
		SEP();
		PUT(out, "BODYSTRUCTURE ");
		imap_write_bodystructure(out, root, true);
	}
	if ((r->items & FI_MODSEQ) || (flags_changed && s->condstore)) {
		SEP();
		bu_buf_printf(out, "MODSEQ (%" PRId64 ")", f->modseq);
	}
	if (r->items & FI_EMAILID) {
		SEP();
		if (f->emailid != NULL && *f->emailid != '\0')
			bu_buf_printf(out, "EMAILID (%s)", f->emailid);
		else
			bu_buf_printf(out, "EMAILID (M%u)", f->uid);
	}
	if (r->items & FI_THREADID) {
		SEP();
		if (f->threadid != NULL && *f->threadid != '\0')
			bu_buf_printf(out, "THREADID (%s)", f->threadid);
		else
			bu_buf_append_str(out, "THREADID NIL");
	}
	if (r->items & FI_SAVEDATE) {
		SEP();
		bu_buf_append_str(out, "SAVEDATE ");
		if (f->savedate > 0)
			imap_write_datetime(out, f->savedate);
		else
			bu_buf_append_str(out, "NIL");
	}
	if (r->items & FI_PREVIEW) {
		SEP();
		bu_buf_append_str(out, "PREVIEW ");
		if (f->preview != NULL)
			imap_write_string(out, f->preview, strlen(f->preview));
		else
			bu_buf_append_str(out, "NIL");
	}
	for (i = 0; i < r->n_bodies; i++) {
		SEP();
		write_body_item(st, out, &r->bodies[i], root, raw, raw_len);
	}
#undef SEP
	PUT(out, ")\r\n");
	return true;
}

/* RFC 7162 3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED) */
static int write_vanished(struct imap_cmd *cmd, struct bu_db *db, struct fetch_state *st,
			  const char *set)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct ms_changes ch;
	struct imap_range *rg;
	size_t n_rg, i, k = 0, nv = 0;
	uint32_t star = mb->uidnext > 0 ? mb->uidnext - 1 : 0, *v;
	int ret;

	if (mb->n > 0 && mb->uids[mb->n - 1] > star)
		star = mb->uids[mb->n - 1];
	ret = ms_mailbox_changes(db, cmd->a, s->user_id, mb->owner_id, mb->collection_id,
				 st->req.changedsince, &ch);
	if (ret < 0)
		return ret;
	if (imap_seqset_ranges(cmd->a, set, star, &rg, &n_rg) < 0)
		return 0;
	v = bu_arena_alloc(cmd->a, (ch.n_expunged + 1) * sizeof(*v));
	for (i = 0; i < ch.n_expunged; i++) {
		uint32_t u = ch.expunged[i];

		while (k < n_rg && rg[k].hi < u)
			k++;
		if (k >= n_rg)
			break;
		if (rg[k].lo > u || imap_mailbox_seq(mb, u) != 0)
			continue;
		v[nv++] = u;
	}
	if (nv > 0) {
		bu_buf_append_str(&cmd->out, "* VANISHED (EARLIER) ");
		imap_seqset_write(&cmd->out, v, nv);
		bu_buf_append_str(&cmd->out, "\r\n");
	}
	return 0;
}

static void fetch_finish(struct imap_cmd *cmd, struct bu_db *db, struct fetch_state *st)
{
	if (st->n_own > 0)
		imap_absorb_own_changes(cmd, db, st->own, st->n_own);
	imap_reply_ok(cmd, "Fetch completed");
}

static void reply_bad_cte(struct imap_cmd *cmd)
{
	imap_reply_no(cmd, "[UNKNOWN-CTE] Cannot decode the Content-Transfer-Encoding of a part");
}

/* The window's messages from win_pos up to end, each with the bytes its
 * row carries (all of them, or none when no body is asked for). False:
 * the NO is written. */
static bool write_window(struct imap_cmd *cmd, struct fetch_state *st, size_t end)
{
	size_t i, bytes = 0;

	for (i = st->win_pos; i < end; i++)
		bytes += st->win[i].raw_len;
	reserve_bodies(cmd, st, bytes, end - st->win_pos);
	for (i = st->win_pos; i < end; i++) {
		const struct ms_fetch *f = &st->win[i];

		if (selected_unchanged(st, f))
			continue;
		if (!write_message(cmd, st, f, st->win_flags_changed[i], f->raw, f->raw_len)) {
			reply_bad_cte(cmd);
			return false;
		}
	}
	st->win_pos = end;
	return true;
}

static void fetch_run(struct imap_cmd *cmd, struct bu_db *db)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct fetch_state *st = cmd->priv;
	size_t i, start;
	int ret;

	if (mb == NULL) {
		imap_reply_bad(cmd, "No mailbox selected");
		return;
	}
	if (!st->started) {
		st->started = true;
		if (st->req.vanished) {
			ret = write_vanished(cmd, db, st, imap_arg_str(&cmd->args[0]));
			if (ret < 0) {
				imap_reply_ms_err(cmd, ret, NULL);
				return;
			}
		}
		if (st->n_uids == 0) {
			imap_reply_ok(cmd, "Fetch completed");
			return;
		}
	}
	if (st->win_pos >= st->n_win) {
		ret = load_window(cmd, db, st);
		if (ret < 0) {
			imap_reply_ms_err(cmd, ret, NULL);
			return;
		}
	}
	start = st->win_pos;
	if (!st->req.need_raw || st->direct || st->win_cached) {
		/* the whole window in this round */
		if (!write_window(cmd, st, st->n_win))
			return;
	} else {
		/* bodies the window query brought (MSF_RAW_FIRST: a prefix) */
		size_t loaded = 0;

		i = start;
		while (i < st->n_win && st->win[i].raw != NULL)
			i++;
		if (!write_window(cmd, st, i))
			return;
		if (i > start)
			goto round_done;
		/* bodies: the next batch of the window, bounded in bytes */
		uint32_t *batch = bu_arena_alloc(st->wa,
						 (st->n_win - start + 1) * sizeof(uint32_t));
		size_t nb = 0, n_res = 0, j = 0;
		int64_t bytes = 0;
		struct ms_fetch *res;

		for (i = start; i < st->n_win; i++) {
			const struct ms_fetch *f = &st->win[i];

			if (nb > 0 && bytes + f->size > FETCH_RAW_BYTES)
				break;
			if (!selected_unchanged(st, f)) {
				batch[nb++] = f->uid;
				bytes += f->size;
			}
		}
		bu_arena_reset(st->ba);
		if (nb > 0) {
			ret = ms_fetch(db, st->ba, s->user_id, mb->owner_id, mb->collection_id,
				       batch, nb, MSF_RAW, &res, &n_res);
			if (ret < 0) {
				imap_reply_ms_err(cmd, ret, NULL);
				return;
			}
		}
		for (j = 0; j < n_res; j++)
			loaded += res[j].raw_len;
		reserve_bodies(cmd, st, loaded, n_res);
		j = 0;
		for (; start < i; start++) {
			const struct ms_fetch *f = &st->win[start];

			if (selected_unchanged(st, f))
				continue;
			while (j < n_res && res[j].uid < f->uid)
				j++;
			if (j >= n_res || res[j].uid != f->uid)
				continue;       /* expunged meanwhile */
			cache_learn(cmd, st, f, res[j].raw, res[j].raw_len);
			if (!write_message(cmd, st, f, st->win_flags_changed[start],
					   res[j].raw, res[j].raw_len)) {
				reply_bad_cte(cmd);
				return;
			}
		}
		st->win_pos = i;
	}
round_done:
	if (st->win_pos < st->n_win || st->pos < st->n_uids) {
		cmd->again = true;
		return;
	}
	fetch_finish(cmd, db, st);
}

int imap_fetch_unsolicited(struct imap_cmd *cmd, struct bu_db *db, const struct fetch_req *req,
			   const uint32_t *uids, size_t n)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct fetch_state st;
	unsigned what = fetch_what(req);
	int ret = 0;

	if (mb == NULL || n == 0)
		return 0;
	memset(&st, 0, sizeof(st));
	st.req = *req;
	st.req.sets_seen = false;
	st.req.changedsince = -1;
	st.req.vanished = false;
	if (req->need_raw)
		what |= MSF_RAW;
	st.wa = bu_arena_create(64 * 1024);
	st.ta = bu_arena_create(16 * 1024);
	bu_buf_init(&st.tmp, 0);
	for (size_t off = 0; off < n && ret >= 0; off += 64) {
		size_t k = n - off < 64 ? n - off : 64, nr = 0;
		struct ms_fetch *res = NULL;

		bu_arena_reset(st.wa);
		ret = ms_fetch(db, st.wa, s->user_id, mb->owner_id, mb->collection_id,
			       uids + off, k, what, &res, &nr);
		for (size_t i = 0; ret >= 0 && i < nr; i++) {
			/* a BINARY of an undecodable part: nothing for it here,
			 * the client's own FETCH gets the error */
			(void)write_message(cmd, &st, &res[i], false, res[i].raw, res[i].raw_len);
		}
	}
	bu_arena_destroy(&st.wa);
	bu_arena_destroy(&st.ta);
	bu_buf_deinit(&st.tmp);
	return ret < 0 ? ret : 0;
}

void imap_cmd_fetch(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_mailbox *mb = s->sel;
	struct fetch_state *st;
	const char *err = NULL;

	if (cmd->n_args < 2 || cmd->n_args > 3 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_reply_bad(cmd, "FETCH needs a sequence set and items");
		return;
	}
	st = bu_arena_alloc(cmd->a, sizeof(*st));
	if (imap_fetch_parse(cmd->a, &cmd->args[1], cmd->n_args == 3 ? &cmd->args[2] : NULL,
			     &st->req, &err) < 0) {
		imap_reply_bad(cmd, "%s", err);
		return;
	}
	if (st->req.vanished && (!cmd->uid || !s->qresync)) {
		imap_reply_bad(cmd, "VANISHED needs UID FETCH and ENABLE QRESYNC");
		return;
	}
	if (imap_mailbox_set_uids(cmd, cmd->args[0].str, cmd->uid, &st->uids, &st->n_uids) < 0) {
		imap_reply_bad(cmd, "Invalid sequence set");
		return;
	}
	/* RFC 7162 3.1: FETCH MODSEQ and CHANGEDSINCE enable CONDSTORE */
	if (st->req.items & FI_MODSEQ)
		s->condstore = true;
	st->set_seen = st->req.sets_seen && wants_seen(&st->req) && !mb->readonly &&
		       (mb->rights & ACL_SEEN);
	st->direct = st->req.need_raw && st->n_uids <= FETCH_DIRECT_MAX;
	st->first = st->req.need_raw && !st->direct && st->n_uids <= FETCH_FIRST_MAX;
	for (size_t i = 0; i < st->req.n_bodies; i++) {
		const struct fetch_body *b = &st->req.bodies[i];

		if ((b->kind == FB_BODY || b->kind == FB_RFC822 || b->kind == FB_BINARY) &&
		    b->sect.kind == FS_PART && (b->sect.path == NULL || *b->sect.path == '\0') && !b->partial)
			st->whole = true;
	}
	st->wa = bu_arena_create(64 * 1024);
	st->ba = bu_arena_create(64 * 1024);
	st->ta = bu_arena_create(16 * 1024);
	bu_buf_init(&st->tmp, 0);
	bu_arena_cleanup(cmd->a, fetch_state_free, st);
	cmd->priv = st;
	imap_cmd_submit(cmd, fetch_run);
}

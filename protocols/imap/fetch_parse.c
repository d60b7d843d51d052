/*
 * fetch_parse.c - FETCH arguments (RFC 3501 6.4.5 and 9, RFC 9051 6.4.5):
 * message data items, the ALL/FAST/FULL macros, body sections with
 * partial ranges, BINARY[] / BINARY.SIZE[] (RFC 3516), MODSEQ and the
 * CHANGEDSINCE / VANISHED modifiers (RFC 7162), EMAILID / THREADID
 * (RFC 8474), PREVIEW with (LAZY) (RFC 8970), SAVEDATE (RFC 8514); and the
 * IMAP date and date-time formats.
 *
 * Pure syntax: nothing here looks at the mailbox. X-GM-* and other
 * vendor items are refused as BAD, as an unknown item must be.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fetch.h"

/* ---- sections ------------------------------------------------------------ */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* case-insensitive prefix match of a keyword at s[0..len) */
static bool kw_at(const char *s, size_t len, const char *kw)
{
	size_t n = strlen(kw);

	return len >= n && strncasecmp(s, kw, n) == 0;
}

/* header-list: "(" header-fld-name *(SP header-fld-name) ")" with names as
 * atoms or quoted strings */
static int parse_field_list(struct bu_arena *a, const char *s, size_t len,
			    struct fetch_section *sect)
{
	size_t i = 0, cap = 8;
	char **v;

	while (i < len && s[i] == ' ')
		i++;
	if (i >= len || s[i] != '(')
		return -1;
	i++;
	v = bu_arena_alloc(a, cap * sizeof(*v));
	sect->n_fields = 0;
	for (;;) {
		struct bu_buf b;

		while (i < len && s[i] == ' ')
			i++;
		if (i >= len)
			return -1;
		if (s[i] == ')') {
			i++;
			break;
		}
		bu_buf_init(&b, 0);
		if (s[i] == '"') {
			i++;
			while (i < len && s[i] != '"') {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				bu_buf_append_byte(&b, (uint8_t)s[i]);
				i++;
			}
			if (i >= len) {
				bu_buf_deinit(&b);
				return -1;
			}
			i++;
		} else {
			while (i < len && s[i] != ' ' && s[i] != ')') {
				unsigned char c = (unsigned char)s[i];

				/* RFC 5322 field names: printable ASCII but ':' */
				if (c <= 0x20 || c >= 0x7f || c == ':' || c == '(' || c == '"') {
					bu_buf_deinit(&b);
					return -1;
				}
				bu_buf_append_byte(&b, c);
				i++;
			}
		}
		if (b.len == 0) {
			bu_buf_deinit(&b);
			return -1;
		}
		if (sect->n_fields + 1 >= cap) {
			char **nv = bu_arena_alloc(a, cap * 2 * sizeof(*nv));

			memcpy(nv, v, sect->n_fields * sizeof(*v));
			v = nv;
			cap *= 2;
		}
		v[sect->n_fields++] = bu_arena_strndup(a, (const char *)b.data, b.len);
		bu_buf_deinit(&b);
	}
	while (i < len && s[i] == ' ')
		i++;
	if (i != len || sect->n_fields == 0)
		return -1;
	v[sect->n_fields] = NULL;
	sect->fields = v;
	return 0;
}

int imap_fetch_section_parse(struct bu_arena *a, const char *s, size_t len, bool binary,
			     struct fetch_section *sect)
{
	size_t i = 0, path_end = 0;

	memset(sect, 0, sizeof(*sect));
	sect->kind = FS_PART;
	/* section-part: nz-number *("." nz-number) */
	while (i < len && is_digit(s[i])) {
		size_t start = i;

		if (s[i] == '0')
			return -1;
		while (i < len && is_digit(s[i]))
			i++;
		if (i - start > 9)
			return -1;
		path_end = i;
		if (i < len && s[i] == '.') {
			i++;
			if (i >= len)
				return -1;
			if (!is_digit(s[i]))
				break;
		} else {
			break;
		}
	}
	sect->path = bu_arena_strndup(a, s, path_end);
	if (i == len && (path_end == len))
		return 0;
	if (binary)
		return -1;
	if (path_end > 0 && i == path_end)
		return -1;              /* "1x" */
	s += i;
	len -= i;
	if (kw_at(s, len, "HEADER.FIELDS.NOT") && (len == 17 || s[17] == ' ' || s[17] == '(')) {
		sect->kind = FS_HEADER_FIELDS_NOT;
		return parse_field_list(a, s + 17, len - 17, sect);
	}
	if (kw_at(s, len, "HEADER.FIELDS") && (len == 13 || s[13] == ' ' || s[13] == '(')) {
		sect->kind = FS_HEADER_FIELDS;
		return parse_field_list(a, s + 13, len - 13, sect);
	}
	if (len == 6 && kw_at(s, len, "HEADER")) {
		sect->kind = FS_HEADER;
		return 0;
	}
	if (len == 4 && kw_at(s, len, "TEXT")) {
		sect->kind = FS_TEXT;
		return 0;
	}
	if (len == 4 && kw_at(s, len, "MIME") && *sect->path != '\0') {
		sect->kind = FS_MIME;
		return 0;
	}
	return -1;
}

/* field names as atoms where possible (they are in practice) */
static void write_field_name(struct bu_buf *b, const char *name)
{
	const char *p;

	for (p = name; *p != '\0'; p++) {
		if (strchr("(){%*\"\\] ", *p) != NULL || (unsigned char)*p < 0x21 ||
		    (unsigned char)*p >= 0x7f)
			break;
	}
	if (*p == '\0' && *name != '\0') {
		bu_buf_append_str(b, name);
		return;
	}
	bu_buf_append_byte(b, '"');
	for (p = name; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			bu_buf_append_byte(b, '\\');
		bu_buf_append_byte(b, (uint8_t)*p);
	}
	bu_buf_append_byte(b, '"');
}

static char *section_label(struct bu_arena *a, const char *item, const struct fetch_section *sect)
{
	struct bu_buf b;
	char *r;
	size_t i;

	bu_buf_init(&b, 0);
	bu_buf_printf(&b, "%s[%s", item, sect->path);
	if (sect->kind != FS_PART && *sect->path != '\0')
		bu_buf_append_byte(&b, '.');
	switch (sect->kind) {
	case FS_PART:
		break;
	case FS_HEADER:
		bu_buf_append_str(&b, "HEADER");
		break;
	case FS_HEADER_FIELDS:
	case FS_HEADER_FIELDS_NOT:
		bu_buf_append_str(&b, sect->kind == FS_HEADER_FIELDS ? "HEADER.FIELDS (" :
				  "HEADER.FIELDS.NOT (");
		for (i = 0; i < sect->n_fields; i++) {
			if (i > 0)
				bu_buf_append_byte(&b, ' ');
			write_field_name(&b, sect->fields[i]);
		}
		bu_buf_append_byte(&b, ')');
		break;
	case FS_TEXT:
		bu_buf_append_str(&b, "TEXT");
		break;
	case FS_MIME:
		bu_buf_append_str(&b, "MIME");
		break;
	}
	bu_buf_append_byte(&b, ']');
	r = bu_arena_strndup(a, (const char *)b.data, b.len);
	bu_buf_deinit(&b);
	return r;
}

/* ---- items ------------------------------------------------------------- */

struct body_list {
	struct fetch_body *v;
	size_t n, cap;
};

static struct fetch_body *body_add(struct bu_arena *a, struct body_list *l)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 4;
		struct fetch_body *nv = bu_arena_alloc(a, ncap * sizeof(*nv));

		if (l->n > 0)
			memcpy(nv, l->v, l->n * sizeof(*nv));
		l->v = nv;
		l->cap = ncap;
	}
	return &l->v[l->n++];
}

/* "<o.c>" at s[0..len) */
static int parse_partial(const char *s, size_t len, struct fetch_body *b)
{
	const char *dot;
	uint64_t o, c;

	if (len < 5 || s[0] != '<' || s[len - 1] != '>')
		return -1;
	dot = memchr(s, '.', len);
	if (dot == NULL)
		return -1;
	if (bu_parse_u64(s + 1, (size_t)(dot - s - 1), INT64_MAX, &o) < 0 ||
	    bu_parse_u64(dot + 1, (size_t)(s + len - 1 - dot - 1), INT64_MAX, &c) < 0 || c == 0)
		return -1;
	b->partial = true;
	b->offset = o;
	b->count = c;
	return 0;
}

/* One item with brackets: BODY[..], BODY.PEEK[..], BINARY[..],
 * BINARY.PEEK[..], BINARY.SIZE[..], each with an optional <o.c> (not for
 * BINARY.SIZE). */
static int parse_bracket_item(struct bu_arena *a, const char *s, size_t len, struct body_list *l,
			      struct fetch_req *r)
{
	const char *lb = memchr(s, '[', len), *rb;
	size_t name_len, tail_len;
	struct fetch_body *b;
	enum fetch_body_kind kind;
	bool peek = false;

	if (lb == NULL)
		return -1;
	name_len = (size_t)(lb - s);
	/* the ']' that closes: the last one before an optional <...> */
	if (s[len - 1] == '>') {
		const char *lt = NULL;

		for (rb = s + len - 1; rb > lb; rb--) {
			if (*rb == '<') {
				lt = rb;
				break;
			}
		}
		if (lt == NULL || lt[-1] != ']')
			return -1;
		rb = lt - 1;
	} else {
		rb = s + len - 1;
		if (*rb != ']')
			return -1;
	}
	tail_len = (size_t)(s + len - (rb + 1));
	if (name_len == 4 && strncasecmp(s, "BODY", 4) == 0) {
		kind = FB_BODY;
	} else if (name_len == 9 && strncasecmp(s, "BODY.PEEK", 9) == 0) {
		kind = FB_BODY;
		peek = true;
	} else if (name_len == 6 && strncasecmp(s, "BINARY", 6) == 0) {
		kind = FB_BINARY;
	} else if (name_len == 11 && strncasecmp(s, "BINARY.PEEK", 11) == 0) {
		kind = FB_BINARY;
		peek = true;
	} else if (name_len == 11 && strncasecmp(s, "BINARY.SIZE", 11) == 0) {
		kind = FB_BINARY_SIZE;
		peek = true;
	} else {
		return -1;
	}
	b = body_add(a, l);
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->peek = peek;
	if (imap_fetch_section_parse(a, lb + 1, (size_t)(rb - lb - 1), kind != FB_BODY,
				     &b->sect) < 0)
		return -1;
	if (tail_len > 0) {
		if (kind == FB_BINARY_SIZE || parse_partial(rb + 1, tail_len, b) < 0)
			return -1;
	}
	b->label = section_label(a, kind == FB_BODY ? "BODY" : kind == FB_BINARY ? "BINARY" :
				 "BINARY.SIZE", &b->sect);
	if (!peek)
		r->sets_seen = true;
	r->need_raw = true;
	/* BODY[] alone needs no tree; everything else finds offsets in it */
	if (kind != FB_BODY || b->sect.kind != FS_PART || *b->sect.path != '\0')
		r->need_structure = true;
	return 0;
}

static int simple_body(struct bu_arena *a, struct body_list *l, struct fetch_req *r,
		       enum fetch_body_kind kind, const char *label)
{
	struct fetch_body *b = body_add(a, l);

	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->sect.path = (char *)"";
	b->label = (char *)label;
	switch (kind) {
	case FB_RFC822:
		b->sect.kind = FS_PART;
		r->sets_seen = true;
		break;
	case FB_RFC822_HEADER:
		b->sect.kind = FS_HEADER;
		b->peek = true;
		r->need_structure = true;
		break;
	case FB_RFC822_TEXT:
		b->sect.kind = FS_TEXT;
		r->sets_seen = true;
		r->need_structure = true;
		break;
	default:
		break;
	}
	r->need_raw = true;
	return 0;
}

static const struct {
	const char *name;
	unsigned bits;
	bool structure;
} simple_items[] = {
	{ "FLAGS", FI_FLAGS, false },
	{ "INTERNALDATE", FI_INTERNALDATE, false },
	{ "RFC822.SIZE", FI_RFC822_SIZE, false },
	{ "ENVELOPE", FI_ENVELOPE, true },
	{ "BODY", FI_BODY, true },
	{ "BODYSTRUCTURE", FI_BODYSTRUCTURE, true },
	{ "UID", FI_UID, false },
	{ "MODSEQ", FI_MODSEQ, false },
	{ "EMAILID", FI_EMAILID, false },
	{ "THREADID", FI_THREADID, false },
	{ "PREVIEW", FI_PREVIEW, false },
	{ "SAVEDATE", FI_SAVEDATE, false },
	/* macros (RFC 3501 6.4.5) */
	{ "ALL", FI_FLAGS | FI_INTERNALDATE | FI_RFC822_SIZE | FI_ENVELOPE, true },
	{ "FAST", FI_FLAGS | FI_INTERNALDATE | FI_RFC822_SIZE, false },
	{ "FULL", FI_FLAGS | FI_INTERNALDATE | FI_RFC822_SIZE | FI_ENVELOPE | FI_BODY, true },
};

static int parse_item(struct bu_arena *a, const struct imap_arg *arg, bool in_list,
		      struct body_list *l, struct fetch_req *r)
{
	const char *s;
	size_t i;

	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	s = arg->str;
	if (memchr(s, '[', arg->len) != NULL)
		return parse_bracket_item(a, s, arg->len, l, r);
	if (strcasecmp(s, "RFC822") == 0)
		return simple_body(a, l, r, FB_RFC822, "RFC822");
	if (strcasecmp(s, "RFC822.HEADER") == 0)
		return simple_body(a, l, r, FB_RFC822_HEADER, "RFC822.HEADER");
	if (strcasecmp(s, "RFC822.TEXT") == 0)
		return simple_body(a, l, r, FB_RFC822_TEXT, "RFC822.TEXT");
	for (i = 0; i < BU_N_ELEMENTS(simple_items); i++) {
		if (strcasecmp(s, simple_items[i].name) != 0)
			continue;
		/* macros only stand alone */
		if (in_list && i >= 12)
			return -1;
		r->items |= simple_items[i].bits;
		if (simple_items[i].structure)
			r->need_structure = true;
		return 0;
	}
	return -1;
}

static int parse_modifiers(const struct imap_arg *m, struct fetch_req *r, const char **err_r)
{
	size_t i;

	if (m->type != IMAP_ARG_LIST || m->n_list == 0) {
		*err_r = "Invalid FETCH modifiers";
		return -1;
	}
	for (i = 0; i < m->n_list; i++) {
		const struct imap_arg *x = &m->list[i];
		uint64_t v;

		if (imap_arg_atom_eq(x, "CHANGEDSINCE")) {
			const struct imap_arg *nx = i + 1 < m->n_list ? &m->list[i + 1] : NULL;

			/* mod-sequence-valzer (RFC 7162 7): 0 is allowed */
			if (nx == NULL || nx->type != IMAP_ARG_ATOM ||
			    bu_parse_u64(nx->str, nx->len, INT64_MAX, &v) < 0) {
				*err_r = "Invalid CHANGEDSINCE mod-sequence";
				return -1;
			}
			r->changedsince = (int64_t)v;
			i++;
		} else if (imap_arg_atom_eq(x, "VANISHED")) {
			r->vanished = true;
		} else {
			*err_r = "Unknown FETCH modifier";
			return -1;
		}
	}
	if (r->vanished && r->changedsince < 0) {
		*err_r = "VANISHED needs CHANGEDSINCE";
		return -1;
	}
	return 0;
}

int imap_fetch_parse(struct bu_arena *a, const struct imap_arg *items,
		     const struct imap_arg *modifiers, struct fetch_req *r, const char **err_r)
{
	struct body_list l = { 0 };
	size_t i;

	memset(r, 0, sizeof(*r));
	r->changedsince = -1;
	*err_r = "Invalid FETCH item";
	if (items->type == IMAP_ARG_LIST) {
		if (items->n_list == 0) {
			*err_r = "Empty FETCH item list";
			return -1;
		}
		for (i = 0; i < items->n_list; i++) {
			const struct imap_arg *it = &items->list[i];

			if (parse_item(a, it, true, &l, r) < 0)
				return -1;
			/* RFC 8970: PREVIEW (LAZY) */
			if (imap_arg_atom_eq(it, "PREVIEW") && i + 1 < items->n_list &&
			    items->list[i + 1].type == IMAP_ARG_LIST) {
				const struct imap_arg *mods = &items->list[++i];
				size_t k;

				for (k = 0; k < mods->n_list; k++) {
					if (!imap_arg_atom_eq(&mods->list[k], "LAZY")) {
						*err_r = "Unknown PREVIEW modifier";
						return -1;
					}
				}
			}
		}
	} else if (parse_item(a, items, false, &l, r) < 0) {
		return -1;
	}
	r->bodies = l.v;
	r->n_bodies = l.n;
	if (modifiers != NULL && parse_modifiers(modifiers, r, err_r) < 0)
		return -1;
	if (r->changedsince >= 0)
		r->items |= FI_MODSEQ;
	return 0;
}

/* ---- dates ------------------------------------------------------------- */

static const char *const months[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static int month_of(const char *s)
{
	int i;

	for (i = 0; i < 12; i++) {
		if (strncasecmp(s, months[i], 3) == 0)
			return i;
	}
	return -1;
}

/* days since 1970-01-01 of a civil date (Howard Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool valid_day(int64_t y, int m, int d)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (d < 1 || d > mdays[m - 1])
		return false;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	return true;
}

void imap_write_datetime(struct bu_buf *out, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	bu_buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
		      months[tm.tm_mon < 0 || tm.tm_mon > 11 ? 0 : tm.tm_mon], tm.tm_year + 1900,
		      tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* digits at s[0..n) -> value; -1 unless all are digits */
static int num(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* "d-Mon-yyyy" or "dd-Mon-yyyy" at s; *used_r = bytes read */
static int64_t parse_day(const char *s, size_t *used_r)
{
	size_t dl;
	int d, m, y;

	if (s[0] == ' ' && is_digit(s[1]))
		s++, *used_r = 1;     /* date-day-fixed " 1" */
	else
		*used_r = 0;
	dl = is_digit(s[0]) && is_digit(s[1]) ? 2 : is_digit(s[0]) ? 1 : 0;
	if (dl == 0 || s[dl] != '-')
		return -1;
	d = num(s, dl);
	m = month_of(s + dl + 1);
	if (m < 0 || s[dl + 4] != '-')
		return -1;
	y = num(s + dl + 5, 4);
	if (y < 1 || is_digit(s[dl + 9]))
		return -1;
	if (!valid_day(y, m + 1, d))
		return -1;
	*used_r += dl + 9;
	return days_from_civil(y, m + 1, d) * 86400;
}

int64_t imap_parse_date(const char *s)
{
	size_t used;
	int64_t t;

	if (s == NULL)
		return -1;
	/* day starts are multiples of 86400, so -1 is never a valid one */
	t = parse_day(s, &used);
	if (t == -1 || s[used] != '\0')
		return -1;
	return t;
}

int64_t imap_parse_datetime(const char *s)
{
	size_t used;
	int64_t t;
	int hh, mm, ss, zh, zm, sign;

	if (s == NULL)
		return -1;
	t = parse_day(s, &used);
	if (t == -1)
		return -1;
	s += used;
	/* SP time SP zone: " hh:mm:ss +hhmm" */
	if (strlen(s) != 15 || s[0] != ' ' || s[3] != ':' || s[6] != ':' || s[9] != ' ' ||
	    (s[10] != '+' && s[10] != '-'))
		return -1;
	hh = num(s + 1, 2);
	mm = num(s + 4, 2);
	ss = num(s + 7, 2);
	zh = num(s + 11, 2);
	zm = num(s + 13, 2);
	if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 || zh < 0 || zm < 0 ||
	    zm > 59)
		return -1;
	sign = s[10] == '-' ? -1 : 1;
	t += hh * 3600 + mm * 60 + ss;
	t -= sign * (zh * 3600 + zm * 60);
	return t;
}

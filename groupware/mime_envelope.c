/*
 * mime_envelope.c - what a message says about itself: the envelope
 * (RFC 3501 ENVELOPE fields), addresses (RFC 5322 3.4 with the obsolete
 * forms of section 4: route addresses, groups, comments as names, missing
 * domains), dates (RFC 5322 3.3 and 4.3: two-digit years, named zones,
 * missing seconds or day of week, comments), and the derived summary:
 * RFC 5256 base subject and sort keys, RFC 5957 display keys, RFC 8970
 * preview.
 *
 * Envelope values are raw (unfolded, encoded words kept, as IMAP ENVELOPE
 * sends them); display names in the envelope are unquoted but not
 * RFC 2047-decoded. mime_parse_addresses() and the summary decode them.
 */
#include "mime_private.h"

#include <stdlib.h>
#include <string.h>

/* ---- addresses -------------------------------------------------------- */

struct addr_parser {
	struct bu_arena *a;
	const char *p;
	bool decode;
	struct mime_address *list;
	size_t n, cap;
	char *comment;          /* text of the last comment skipped */
	const char *last_gt;    /* last '>' of the value (unclosed '<' detection) */
};

static bool addr_special(uint8_t c)
{
	return strchr("()<>@,;:\\\".[]", c) != NULL;
}

static bool addr_atom_char(uint8_t c)
{
	return c > ' ' && c != 0x7f && !addr_special(c);
}

/* skip white space and comments; remembers the last comment's text;
 * returns true when anything was skipped */
static bool ap_cfws(struct addr_parser *ap)
{
	const char *start = ap->p;

	for (;;) {
		while (*ap->p == ' ' || *ap->p == '\t' || *ap->p == '\r' || *ap->p == '\n')
			ap->p++;
		if (*ap->p != '(')
			break;
		{
			struct bu_buf b;
			int depth = 0;

			bu_buf_init(&b, 0);
			while (*ap->p != '\0') {
				char c = *ap->p;

				if (c == '\\' && ap->p[1] != '\0') {
					(void)bu_buf_append_byte(&b, (uint8_t)ap->p[1]);
					ap->p += 2;
					continue;
				}
				ap->p++;
				if (c == '(') {
					if (depth++ == 0)
						continue;
				} else if (c == ')') {
					if (--depth == 0)
						break;
				}
				(void)bu_buf_append_byte(&b, (uint8_t)c);
			}
			ap->comment = mime_buf_dup(ap->a, &b);
			bu_buf_deinit(&b);
		}
	}
	return ap->p != start;
}

static void ap_quoted(struct addr_parser *ap, struct bu_buf *b)
{
	ap->p++;   /* opening quote */
	while (*ap->p != '\0' && *ap->p != '"') {
		if (*ap->p == '\\' && ap->p[1] != '\0')
			ap->p++;
		if (*ap->p != '\r' && *ap->p != '\n')
			(void)bu_buf_append_byte(b, (uint8_t)*ap->p);
		ap->p++;
	}
	if (*ap->p == '"')
		ap->p++;
}

/* words (atoms, quoted strings, dots): phrase keeps single spaces where
 * there was white space, local is the words run together */
static void ap_words(struct addr_parser *ap, struct bu_buf *phrase, struct bu_buf *local)
{
	bool ws = false;

	for (;;) {
		if (ap_cfws(ap))
			ws = true;
		if (*ap->p == '"' || *ap->p == '.' || addr_atom_char((uint8_t)*ap->p)) {
			size_t mark = local->len;

			if (ws && phrase->len > 0)
				(void)bu_buf_append_byte(phrase, ' ');
			ws = false;
			if (*ap->p == '"') {
				ap_quoted(ap, local);
			} else if (*ap->p == '.') {
				(void)bu_buf_append_byte(local, '.');
				ap->p++;
			} else {
				const char *s = ap->p;

				while (addr_atom_char((uint8_t)*ap->p))
					ap->p++;
				(void)bu_buf_append(local, s, (size_t)(ap->p - s));
			}
			if (local->len > mark)
				(void)bu_buf_append(phrase, local->data + mark, local->len - mark);
			continue;
		}
		return;
	}
}

/* domain: atoms, dots and [literals], white space only around dots */
static char *ap_domain(struct addr_parser *ap)
{
	struct bu_buf b;
	char *r;
	bool last_dot = true;

	bu_buf_init(&b, 0);
	for (;;) {
		const char *save = ap->p;

		ap_cfws(ap);
		if (*ap->p == '.') {
			(void)bu_buf_append_byte(&b, '.');
			ap->p++;
			last_dot = true;
			continue;
		}
		if (!last_dot) {
			ap->p = save;   /* keep white space/comment for the caller */
			break;
		}
		if (*ap->p == '[') {
			const char *s = ap->p;

			while (*ap->p != '\0' && *ap->p != ']')
				ap->p++;
			if (*ap->p == ']')
				ap->p++;
			(void)bu_buf_append(&b, s, (size_t)(ap->p - s));
		} else if (addr_atom_char((uint8_t)*ap->p)) {
			const char *s = ap->p;

			while (addr_atom_char((uint8_t)*ap->p))
				ap->p++;
			(void)bu_buf_append(&b, s, (size_t)(ap->p - s));
		} else {
			break;
		}
		last_dot = false;
	}
	r = b.len > 0 ? mime_buf_dup(ap->a, &b) : NULL;
	bu_buf_deinit(&b);
	return r;
}

static struct mime_address *ap_add(struct addr_parser *ap)
{
	if (ap->n == ap->cap) {
		ap->cap = ap->cap ? ap->cap * 2 : 4;
		ap->list = bu_realloc(ap->list, bu_size_mul(ap->cap, sizeof(*ap->list)));
	}
	memset(&ap->list[ap->n], 0, sizeof(ap->list[0]));
	return &ap->list[ap->n++];
}

static char *ap_name(struct addr_parser *ap, const struct bu_buf *b)
{
	if (b->len == 0)
		return NULL;
	if (ap->decode) {
		struct bu_buf d;
		char *r;

		bu_buf_init(&d, 0);
		mime_decode_words_buf(&d, (const char *)b->data, b->len);
		r = d.len > 0 ? mime_buf_dup(ap->a, &d) : NULL;
		bu_buf_deinit(&d);
		return r;
	}
	return mime_buf_dup(ap->a, b);
}

static char *ap_name_str(struct addr_parser *ap, char *s)
{
	struct bu_buf b;
	char *r;

	if (s == NULL || *s == '\0')
		return NULL;
	b.data = (uint8_t *)s;
	b.len = strlen(s);
	b.cap = b.len + 1;
	b.max = 0;
	r = ap_name(ap, &b);
	return r;
}

/* <[@route,@route:]local@domain> */
static void ap_angle(struct addr_parser *ap, struct mime_address *ad)
{
	struct bu_buf phrase, local;
	bool closed = ap->last_gt != NULL && ap->last_gt > ap->p;

	ap->p++;   /* '<' */
	ap_cfws(ap);
	if (*ap->p == '@') {
		struct bu_buf route;

		bu_buf_init(&route, 0);
		while (*ap->p != '\0' && *ap->p != ':' && *ap->p != '>') {
			if (*ap->p != ' ' && *ap->p != '\t' && *ap->p != '\r' && *ap->p != '\n')
				(void)bu_buf_append_byte(&route, (uint8_t)*ap->p);
			ap->p++;
		}
		if (*ap->p == ':') {
			ap->p++;
			ad->adl = mime_buf_dup(ap->a, &route);
		}
		bu_buf_deinit(&route);
	}
	bu_buf_init(&phrase, 0);
	bu_buf_init(&local, 0);
	ap_words(ap, &phrase, &local);
	ad->mailbox = mime_buf_dup(ap->a, &local);
	bu_buf_deinit(&phrase);
	bu_buf_deinit(&local);
	ap_cfws(ap);
	if (*ap->p == '@') {
		ap->p++;
		ad->host = ap_domain(ap);
	}
	/* skip junk up to '>' (or, when there is none, up to a ',') */
	while (*ap->p != '\0' && *ap->p != '>' && (closed || *ap->p != ','))
		ap->p++;
	if (*ap->p == '>')
		ap->p++;
}

size_t mime_addresses_parse(struct bu_arena *a, const char *value,
			    struct mime_address **list_r, bool decode_names)
{
	struct addr_parser ap = { a, value != NULL ? value : "", decode_names, NULL, 0, 0, NULL, NULL };
	bool in_group = false;
	size_t n;

	ap.last_gt = strrchr(ap.p, '>');
	for (;;) {
		struct bu_buf phrase, local;
		struct mime_address *ad;
		const char *start;
		size_t n_before;

		ap_cfws(&ap);
		if (*ap.p == '\0')
			break;
		if (*ap.p == ',') {
			ap.p++;
			continue;
		}
		if (*ap.p == ';') {
			ap.p++;
			if (in_group) {
				ap_add(&ap)->group_end = true;
				in_group = false;
			}
			continue;
		}
		start = ap.p;
		n_before = ap.n;
		ap.comment = NULL;
		bu_buf_init(&phrase, 0);
		bu_buf_init(&local, 0);
		ap_words(&ap, &phrase, &local);
		if (*ap.p == ':' && !in_group) {
			ap.p++;
			ad = ap_add(&ap);
			ad->group_start = true;
			ad->mailbox = ap_name(&ap, &phrase);
			if (ad->mailbox == NULL)
				ad->mailbox = "";
			in_group = true;
			bu_buf_deinit(&phrase);
			bu_buf_deinit(&local);
			continue;
		} else if (*ap.p == '<') {
			ad = ap_add(&ap);
			ad->name = ap_name(&ap, &phrase);
			ap.comment = NULL;
			ap_angle(&ap, ad);
			ap_cfws(&ap);
			if (ad->name == NULL && ap.comment != NULL)
				ad->name = ap_name_str(&ap, ap.comment);
		} else if (*ap.p == '@') {
			ap.p++;
			ad = ap_add(&ap);
			ad->mailbox = mime_buf_dup(a, &local);
			ad->host = ap_domain(&ap);
			ap.comment = NULL;
			ap_cfws(&ap);
			if (ap.comment != NULL)
				ad->name = ap_name_str(&ap, ap.comment);
		} else if (phrase.len > 0) {
			/* no domain ("undisclosed-recipients", "root") */
			ad = ap_add(&ap);
			ad->mailbox = mime_buf_dup(a, &phrase);
			if (ap.comment != NULL)
				ad->name = ap_name_str(&ap, ap.comment);
		}
		bu_buf_deinit(&phrase);
		bu_buf_deinit(&local);
		ap_cfws(&ap);
		if (*ap.p == ',' || *ap.p == ';' || *ap.p == '\0')
			continue;
		if (n_before == ap.n) {
			/* nothing recognised: drop one junk character */
			if (ap.p == start)
				ap.p++;
			continue;
		}
		/* junk after an address: skip to the next ',' outside quotes */
		while (*ap.p != '\0' && *ap.p != ',' && *ap.p != ';') {
			if (*ap.p == '"') {
				struct bu_buf tmp;

				bu_buf_init(&tmp, 0);
				ap_quoted(&ap, &tmp);
				bu_buf_deinit(&tmp);
				continue;
			}
			ap.p++;
		}
	}
	if (in_group)
		ap_add(&ap)->group_end = true;
	n = ap.n;
	*list_r = n > 0 ? bu_arena_memdup(a, ap.list, n * sizeof(*ap.list)) : NULL;
	free(ap.list);
	return n;
}

size_t mime_parse_addresses(struct bu_arena *a, const char *value, struct mime_address **list_r)
{
	return mime_addresses_parse(a, value, list_r, true);
}

/* ---- dates ---------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm */
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

struct zone {
	const char *name;
	int minutes;
};

static const struct zone zones[] = {
	{ "ut", 0 }, { "utc", 0 }, { "gmt", 0 }, { "z", 0 },
	{ "est", -300 }, { "edt", -240 }, { "cst", -360 }, { "cdt", -300 },
	{ "mst", -420 }, { "mdt", -360 }, { "pst", -480 }, { "pdt", -420 },
	{ "bst", 60 }, { "cet", 60 }, { "cest", 120 }, { "met", 60 }, { "mest", 120 },
	{ "eet", 120 }, { "eest", 180 }, { "wet", 0 }, { "west", 60 },
	{ "jst", 540 }, { "ist", 330 }, { "hkt", 480 }, { "sgt", 480 },
	{ "aest", 600 }, { "aedt", 660 }, { "nzst", 720 }, { "nzdt", 780 },
	{ "msk", 180 }, { "hst", -600 }, { "akst", -540 }, { "akdt", -480 },
};

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
};

static bool all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return n > 0;
}

static int num_of(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n && i < 9; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

int64_t mime_parse_date(const char *s)
{
	char buf[256];
	size_t n = 0, i;
	int day = -1, mon = -1, year = -1, hh = 0, mm = 0, ss = 0, zone = 0;
	bool have_time = false, have_zone = false;
	int depth = 0;
	char *tok, *save = NULL;
	int64_t days;

	if (s == NULL)
		return -1;
	/* drop comments; ',' and '-' between letters/digits become spaces */
	for (i = 0; s[i] != '\0' && n + 1 < sizeof(buf); i++) {
		char c = s[i];

		if (c == '(') {
			depth++;
			continue;
		}
		if (c == ')' && depth > 0) {
			depth--;
			continue;
		}
		if (depth > 0)
			continue;
		if (c == ',' || c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		buf[n++] = c;
	}
	buf[n] = '\0';
	for (tok = strtok_r(buf, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		size_t l = strlen(tok);
		char low[16];
		size_t k;

		if (strchr(tok, ':') != NULL && tok[0] >= '0' && tok[0] <= '9' && !have_time) {
			/* hh:mm[:ss] */
			int part[3] = { 0, 0, 0 }, np = 0;
			const char *q = tok;

			while (np < 3) {
				size_t dl = 0;

				while (q[dl] >= '0' && q[dl] <= '9')
					dl++;
				if (dl == 0 || dl > 2)
					return -1;
				part[np++] = num_of(q, dl);
				q += dl;
				if (*q != ':')
					break;
				q++;
			}
			if (np < 2)
				return -1;
			hh = part[0];
			mm = part[1];
			ss = part[2];
			have_time = true;
			if (*q == '+' || *q == '-')
				tok = (char *)q;   /* "10:00:00+0100" */
			else
				continue;
			l = strlen(tok);
		}
		if ((tok[0] == '+' || tok[0] == '-') && l >= 5) {
			const char *z = tok + 1;
			int zh, zm;

			if (all_digits(z, 4) && (z[4] == '\0')) {
				zh = num_of(z, 2);
				zm = num_of(z + 2, 2);
			} else if (all_digits(z, 2) && z[2] == ':' && all_digits(z + 3, 2) && z[5] == '\0') {
				zh = num_of(z, 2);
				zm = num_of(z + 3, 2);
			} else {
				continue;
			}
			if (zm >= 60 || zh > 23)
				continue;
			zone = (zh * 60 + zm) * (tok[0] == '-' ? -1 : 1);
			have_zone = true;
			continue;
		}
		if (all_digits(tok, l)) {
			int v = l <= 9 ? num_of(tok, l) : -1;

			if (v < 0)
				return -1;
			if (day < 0 && l <= 2 && v >= 1 && v <= 31 && year < 0)
				day = v;
			else if (year < 0 && l <= 4)
				year = l <= 2 ? (v < 50 ? v + 2000 : v + 1900) : (l == 3 ? v + 1900 : v);
			else if (day < 0 && l <= 2 && v >= 1 && v <= 31)
				day = v;
			continue;
		}
		/* "12-Jan-2004" */
		if (strchr(tok, '-') != NULL && tok[0] >= '0' && tok[0] <= '9') {
			char *d1 = strchr(tok, '-'), *d2 = strchr(d1 + 1, '-');

			if (d2 != NULL && all_digits(tok, (size_t)(d1 - tok)) &&
			    all_digits(d2 + 1, strlen(d2 + 1)) && d2 - d1 - 1 >= 3 && day < 0) {
				size_t yl = strlen(d2 + 1);
				int v = yl <= 4 ? num_of(d2 + 1, yl) : -1;

				day = num_of(tok, (size_t)(d1 - tok) <= 2 ? (size_t)(d1 - tok) : 2);
				for (k = 0; k < 12; k++) {
					if (strncasecmp(d1 + 1, month_names[k], 3) == 0)
						mon = (int)k + 1;
				}
				if (v < 0)
					return -1;
				year = yl <= 2 ? (v < 50 ? v + 2000 : v + 1900) : (yl == 3 ? v + 1900 : v);
			}
			continue;
		}
		for (k = 0; k < l && k + 1 < sizeof(low); k++)
			low[k] = (char)mime_lower((uint8_t)tok[k]);
		low[k] = '\0';
		if (l >= 3 && mon < 0) {
			bool found = false;

			for (k = 0; k < 12; k++) {
				if (strncmp(low, month_names[k], 3) == 0) {
					mon = (int)k + 1;
					found = true;
				}
			}
			if (found)
				continue;
		}
		if (!have_zone) {
			for (k = 0; k < BU_N_ELEMENTS(zones); k++) {
				if (strcmp(low, zones[k].name) == 0) {
					zone = zones[k].minutes;
					have_zone = true;
				}
			}
			/* RFC 5322 4.3: military zones are treated as +0000 */
			if (!have_zone && l == 1 && ((low[0] >= 'a' && low[0] <= 'z') && low[0] != 'j'))
				have_zone = true;
		}
		/* anything else (day names, "at", garbage) is ignored */
	}
	if (day < 1 || mon < 1 || year < 1000 || year > 9999)
		return -1;
	if (hh > 23 || mm > 59 || ss > 60)
		return -1;
	if (ss == 60)
		ss = 59;
	days = days_from_civil(year, (unsigned)mon, (unsigned)day);
	return days * 86400 + hh * 3600 + mm * 60 + ss - (int64_t)zone * 60;
}

/* ---- envelope ------------------------------------------------------------- */

struct mime_envelope *mime_envelope_parse(struct bu_arena *a, const uint8_t *hdr, size_t len)
{
	struct mime_envelope *e = bu_arena_alloc(a, sizeof(*e));
	struct mime_field f;
	size_t pos = 0;
	bool seen[8] = { false };

	while (mime_field_next(hdr, len, &pos, &f)) {
		static const char *const addr_fields[6] = {
			"from", "sender", "reply-to", "to", "cc", "bcc",
		};
		size_t i;

		if (!f.has_colon)
			continue;
		if (e->date == NULL && mime_field_is(hdr, &f, "date")) {
			e->date = mime_field_value(a, hdr, &f);
			continue;
		}
		if (e->subject == NULL && mime_field_is(hdr, &f, "subject")) {
			e->subject = mime_field_value(a, hdr, &f);
			continue;
		}
		if (e->in_reply_to == NULL && mime_field_is(hdr, &f, "in-reply-to")) {
			e->in_reply_to = mime_field_value(a, hdr, &f);
			continue;
		}
		if (e->message_id == NULL && mime_field_is(hdr, &f, "message-id")) {
			e->message_id = mime_field_value(a, hdr, &f);
			continue;
		}
		for (i = 0; i < 6; i++) {
			struct mime_address **l;
			size_t *n;

			if (seen[i] || !mime_field_is(hdr, &f, addr_fields[i]))
				continue;
			seen[i] = true;
			switch (i) {
			case 0: l = &e->from; n = &e->n_from; break;
			case 1: l = &e->sender; n = &e->n_sender; break;
			case 2: l = &e->reply_to; n = &e->n_reply_to; break;
			case 3: l = &e->to; n = &e->n_to; break;
			case 4: l = &e->cc; n = &e->n_cc; break;
			default: l = &e->bcc; n = &e->n_bcc; break;
			}
			*n = mime_addresses_parse(a, mime_field_value(a, hdr, &f), l, false);
			break;
		}
	}
	return e;
}

/* ---- base subject (RFC 5256 2.1) ------------------------------------------ */

/* subj-blob at s: "[" *BLOBCHAR "]" *WSP; length or 0 */
static size_t subj_blob(const char *s)
{
	size_t i = 1;

	if (s[0] != '[')
		return 0;
	while (s[i] != '\0' && s[i] != '[' && s[i] != ']')
		i++;
	if (s[i] != ']')
		return 0;
	i++;
	while (s[i] == ' ')
		i++;
	return i;
}

/* subj-refwd at s: ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static size_t subj_refwd(const char *s)
{
	size_t i;

	if (strncasecmp(s, "re", 2) == 0)
		i = 2;
	else if (strncasecmp(s, "fwd", 3) == 0)
		i = 3;
	else if (strncasecmp(s, "fw", 2) == 0)
		i = 2;
	else
		return 0;
	while (s[i] == ' ')
		i++;
	i += subj_blob(s + i);
	if (s[i] != ':')
		return 0;
	return i + 1;
}

char *mime_base_subject(struct bu_arena *a, const char *subject)
{
	char *s, *b;
	size_t n = 0, i, len;
	bool changed;

	if (subject == NULL)
		return bu_arena_strdup(a, "");
	/* (1) white space: tabs and line breaks to spaces, runs to one */
	s = bu_arena_alloc(a, strlen(subject) + 1);
	for (i = 0; subject[i] != '\0'; i++) {
		char c = subject[i];

		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && (n == 0 || s[n - 1] == ' '))
			continue;
		s[n++] = c;
	}
	s[n] = '\0';
	b = s;
	len = n;
	for (;;) {
		/* (2) trailers: "(fwd)" and white space */
		for (;;) {
			if (len > 0 && b[len - 1] == ' ')
				len--;
			else if (len >= 5 && strncasecmp(b + len - 5, "(fwd)", 5) == 0)
				len -= 5;
			else
				break;
		}
		b[len] = '\0';
		/* (3)-(5) leaders and blobs */
		do {
			size_t k = 0, r;

			changed = false;
			if (b[0] == ' ') {
				b++;
				len--;
				changed = true;
				continue;
			}
			while ((r = subj_blob(b + k)) > 0)
				k += r;
			r = subj_refwd(b + k);
			if (r > 0) {
				b += k + r;
				len -= k + r;
				changed = true;
				continue;
			}
			r = subj_blob(b);
			if (r > 0 && r < len) {
				b += r;
				len -= r;
				changed = true;
			}
		} while (changed);
		/* (6) "[fwd: ... ]" */
		if (len >= 6 && strncasecmp(b, "[fwd:", 5) == 0 && b[len - 1] == ']') {
			b += 5;
			len -= 6;
			b[len] = '\0';
			continue;
		}
		break;
	}
	return b;
}

/* ---- summary ------------------------------------------------------------ */

static void addr_spec(struct bu_buf *b, const struct mime_address *ad)
{
	if (ad->mailbox != NULL)
		(void)bu_buf_append_str(b, ad->mailbox);
	if (ad->host != NULL) {
		(void)bu_buf_append_byte(b, '@');
		(void)bu_buf_append_str(b, ad->host);
	}
}

/* decoded "Name <addr>, addr" (group markers left out); NULL for none */
static char *addr_list_text(struct bu_arena *a, const struct mime_address *l, size_t n)
{
	struct bu_buf b;
	size_t i;
	char *r;

	if (l == NULL)
		return NULL;
	bu_buf_init(&b, 0);
	for (i = 0; i < n; i++) {
		if (l[i].group_start || l[i].group_end)
			continue;
		if (b.len > 0)
			(void)bu_buf_append(&b, ", ", 2);
		if (l[i].name != NULL) {
			mime_decode_words_buf(&b, l[i].name, strlen(l[i].name));
			(void)bu_buf_append(&b, " <", 2);
			addr_spec(&b, &l[i]);
			(void)bu_buf_append_byte(&b, '>');
		} else {
			addr_spec(&b, &l[i]);
		}
	}
	r = mime_buf_dup(a, &b);
	bu_buf_deinit(&b);
	return r;
}

static const struct mime_address *first_addr(const struct mime_address *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!l[i].group_start && !l[i].group_end)
			return &l[i];
	}
	return NULL;
}

/* RFC 5256: the addr-mailbox of the first address, lower-cased */
static char *sort_key(struct bu_arena *a, const struct mime_address *l, size_t n)
{
	const struct mime_address *ad = first_addr(l, n);
	char *r;
	size_t i;

	if (ad == NULL || ad->mailbox == NULL)
		return bu_arena_strdup(a, "");
	r = bu_arena_strdup(a, ad->mailbox);
	for (i = 0; r[i] != '\0'; i++)
		r[i] = (char)mime_lower((uint8_t)r[i]);
	return r;
}

/* RFC 5957: display name of the first address, else its addr-spec */
static char *display_key(struct bu_arena *a, const struct mime_address *l, size_t n)
{
	const struct mime_address *ad = first_addr(l, n);
	struct bu_buf b;
	char *r;

	if (ad == NULL)
		return bu_arena_strdup(a, "");
	bu_buf_init(&b, 0);
	if (ad->name != NULL)
		mime_decode_words_buf(&b, ad->name, strlen(ad->name));
	if (b.len == 0)
		addr_spec(&b, ad);
	r = mime_buf_dup(a, &b);
	bu_buf_deinit(&b);
	return r;
}

/* msg-ids "<...>" in s, without the brackets, white space removed;
 * at most max of them (0 = all) joined by spaces; NULL when none */
static char *msg_ids(struct bu_arena *a, const char *s, size_t max)
{
	struct bu_buf b;
	size_t count = 0;
	char *r;

	if (s == NULL)
		return NULL;
	bu_buf_init(&b, 0);
	while (*s != '\0' && (max == 0 || count < max)) {
		const char *lt, *gt, *q;

		if (*s == '(') {
			int depth = 0;

			for (; *s != '\0'; s++) {
				if (*s == '(')
					depth++;
				else if (*s == ')' && --depth == 0) {
					s++;
					break;
				}
			}
			continue;
		}
		if (*s != '<') {
			s++;
			continue;
		}
		lt = s;
		gt = strchr(lt, '>');
		if (gt == NULL)
			break;
		if (gt > lt + 1) {
			if (count > 0)
				(void)bu_buf_append_byte(&b, ' ');
			for (q = lt + 1; q < gt; q++) {
				if (*q != ' ' && *q != '\t' && *q != '<')
					(void)bu_buf_append_byte(&b, (uint8_t)*q);
			}
			count++;
		}
		s = gt + 1;
	}
	r = b.len > 0 ? mime_buf_dup(a, &b) : NULL;
	bu_buf_deinit(&b);
	return r;
}

/* a Message-ID without brackets: one token with '@' */
static char *bare_msg_id(struct bu_arena *a, const char *s)
{
	char *r = msg_ids(a, s, 1);
	size_t i;

	if (r != NULL || s == NULL)
		return r;
	while (*s == ' ' || *s == '\t')
		s++;
	for (i = 0; s[i] != '\0' && s[i] != ' ' && s[i] != '\t'; i++)
		;
	if (i == 0 || memchr(s, '@', i) == NULL)
		return NULL;
	return bu_arena_strndup(a, s, i);
}

static bool type_is(const struct mime_part *p, const char *type, const char *subtype)
{
	return strcmp(p->type, type) == 0 && (subtype == NULL || strcmp(p->subtype, subtype) == 0);
}

static bool is_attachment(const struct mime_part *p)
{
	return p->disposition != NULL && strcmp(p->disposition, "attachment") == 0;
}

/* first text/<subtype> leaf that is not an attachment (not inside
 * attached messages) */
static const struct mime_part *find_text(const struct mime_part *p, const char *subtype,
					 unsigned depth)
{
	size_t i;

	if (depth > 2 * MIME_MAX_DEPTH)
		return NULL;
	if (p->n_children > 0) {
		for (i = 0; i < p->n_children; i++) {
			const struct mime_part *r = find_text(&p->children[i], subtype, depth + 1);

			if (r != NULL)
				return r;
		}
		return NULL;
	}
	if (p->message == NULL && type_is(p, "text", subtype) && !is_attachment(p))
		return p;
	return NULL;
}

static bool has_attachment(const struct mime_part *p, bool root, unsigned depth)
{
	size_t i;

	if (depth > 2 * MIME_MAX_DEPTH)
		return false;
	if (is_attachment(p))
		return true;
	if (p->message != NULL)
		return !root;
	if (p->n_children > 0) {
		for (i = 0; i < p->n_children; i++) {
			if (has_attachment(&p->children[i], false, depth + 1))
				return true;
		}
		return false;
	}
	if (!root && !type_is(p, "text", NULL) &&
	    (p->disposition == NULL || strcmp(p->disposition, "inline") != 0) &&
	    (mime_param_get(p->disp_params, p->n_disp_params, "filename") != NULL ||
	     mime_param_get(p->params, p->n_params, "name") != NULL))
		return true;
	return false;
}

#define PREVIEW_CHARS 200
#define PREVIEW_MAX_INPUT (256 * 1024)

static bool preview_space(uint32_t cp)
{
	return cp <= ' ' || cp == 0x7f || cp == 0xa0 || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200b) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

/* RFC 8970: up to 200 characters, white space collapsed */
static char *make_preview(struct bu_arena *a, const struct mime_part *root,
			  const uint8_t *msg, size_t len)
{
	const struct mime_part *p = find_text(root, "plain", 0);
	struct mime_part capped;
	struct bu_buf t, h, o;
	const uint8_t *s;
	size_t n, i = 0, chars = 0;
	bool pending = false;
	char *r;

	if (p == NULL)
		p = find_text(root, "html", 0);
	if (p == NULL)
		return bu_arena_strdup(a, "");
	capped = *p;
	if (capped.body_len > PREVIEW_MAX_INPUT)
		capped.body_len = PREVIEW_MAX_INPUT;
	bu_buf_init(&t, 0);
	bu_buf_init(&h, 0);
	bu_buf_init(&o, 0);
	mime_decode_body(&t, &capped, msg, len, true);
	s = t.data != NULL ? t.data : (const uint8_t *)"";
	n = t.len;
	if (strcmp(p->subtype, "html") == 0) {
		mime_html_to_text(&h, s, n);
		s = h.data != NULL ? h.data : (const uint8_t *)"";
		n = h.len;
	}
	while (i < n && chars < PREVIEW_CHARS) {
		uint32_t cp;
		size_t l = mime_utf8_next(s + i, n - i, &cp);

		if (l == 0) {
			/* cannot happen after conversion; be safe anyway */
			cp = 0xfffd;
			l = 1;
		}
		if (cp == 0) {
			i += l;
			continue;
		}
		if (preview_space(cp)) {
			pending = o.len > 0;
			i += l;
			continue;
		}
		if (pending) {
			(void)bu_buf_append_byte(&o, ' ');
			chars++;
			pending = false;
			if (chars >= PREVIEW_CHARS)
				break;
		}
		if (cp == 0xfffd && l == 1)
			mime_utf8_put(&o, cp);
		else
			(void)bu_buf_append(&o, s + i, l);
		chars++;
		i += l;
	}
	r = mime_buf_dup(a, &o);
	bu_buf_deinit(&t);
	bu_buf_deinit(&h);
	bu_buf_deinit(&o);
	return r;
}

void mime_summarize(struct bu_arena *a, const struct mime_part *root,
		    const uint8_t *msg, size_t len, struct mime_summary *out)
{
	const struct mime_envelope *e = root->envelope;
	struct mime_envelope empty;
	const uint8_t *hdr = NULL;
	size_t hlen = 0;
	int64_t d;

	memset(out, 0, sizeof(*out));
	if (e == NULL) {
		memset(&empty, 0, sizeof(empty));
		e = &empty;
	}
	if (msg != NULL && root->hdr_off <= len) {
		hdr = msg + root->hdr_off;
		hlen = root->hdr_len <= len - root->hdr_off ? root->hdr_len : len - root->hdr_off;
	}
	out->subject = mime_decode_words(a, e->subject);
	out->base_subject = mime_base_subject(a, out->subject);
	out->from = addr_list_text(a, e->from, e->n_from);
	out->from_sort = sort_key(a, e->from, e->n_from);
	out->from_display = display_key(a, e->from, e->n_from);
	out->to = addr_list_text(a, e->to, e->n_to);
	out->to_sort = sort_key(a, e->to, e->n_to);
	out->to_display = display_key(a, e->to, e->n_to);
	out->cc = addr_list_text(a, e->cc, e->n_cc);
	out->cc_sort = sort_key(a, e->cc, e->n_cc);
	out->bcc = addr_list_text(a, e->bcc, e->n_bcc);
	d = mime_parse_date(e->date);
	out->date = d == -1 ? 0 : d;
	out->message_id = bare_msg_id(a, e->message_id);
	out->in_reply_to = msg_ids(a, e->in_reply_to, 1);
	out->references = hdr != NULL ? msg_ids(a, mime_header_get(a, hdr, hlen, "references"), 0)
				      : NULL;
	out->preview = msg != NULL ? make_preview(a, root, msg, len) : bu_arena_strdup(a, "");
	out->has_attachment = has_attachment(root, true, 0);
}

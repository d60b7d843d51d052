/*
 * mime.c - the MIME tree: header fields, Content-* parsing, multipart
 * splitting, message/rfc822 nesting, section lookup, header filtering and
 * the serialized form stored at delivery.
 *
 * RFC 5322 (header fields, folding), RFC 2045/2046 (Content-Type,
 * multipart: the line break before a delimiter belongs to the delimiter,
 * 5.1.1; multipart/digest defaults to message/rfc822, 5.1.5), RFC 2231
 * (parameter continuations and charsets), RFC 3501 6.4.5 (section
 * numbers), RFC 6532 (message/global is parsed like message/rfc822).
 *
 * Real mail is accepted as it comes: bare LF and CRLF (mixed too), no
 * header/body separator (everything is header), boundaries that never
 * occur or are never closed, boundaries that are prefixes of each other,
 * NULs and 8-bit bytes, lines of any length. Offsets always refer to the
 * original bytes; nothing is copied or changed.
 *
 * Tree invariants the protocol layers may rely on (also for deserialized
 * trees, which are checked):
 *   - type "multipart" <=> n_children >= 1 (and message == NULL);
 *   - type message/rfc822 or message/global <=> message != NULL, and the
 *     embedded part has an envelope; the root has an envelope;
 *   - body_off == hdr_off + hdr_len; children lie inside the parent's
 *     body, an embedded message covers exactly its parent's body.
 * To keep them, a multipart in which no part is found (no boundary
 * parameter, boundary never occurs, first delimiter is the close one) gets
 * one empty text/plain child, which is what Dovecot reports in
 * BODYSTRUCTURE for such a message (its bytes stay reachable as the
 * multipart's body, BODY[TEXT]); a multipart or message/rfc822 part past
 * MIME_MAX_DEPTH or MIME_MAX_PARTS becomes an opaque
 * application/octet-stream leaf.
 *
 * Not done: message/partial reassembly, message/external-body access,
 * uuencode detection.
 */
#include "mime_private.h"

#include <stdlib.h>
#include <string.h>

/* ---- header fields --------------------------------------------------- */

size_t mime_header_block_len(const uint8_t *d, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const uint8_t *nl;

		if (d[pos] == '\n')
			return pos + 1;
		if (d[pos] == '\r' && pos + 1 < len && d[pos + 1] == '\n')
			return pos + 2;
		nl = memchr(d + pos, '\n', len - pos);
		if (nl == NULL)
			return len;
		pos = (size_t)(nl - d) + 1;
	}
	return len;
}

static size_t line_end(const uint8_t *d, size_t len, size_t pos)
{
	const uint8_t *nl = memchr(d + pos, '\n', len - pos);

	return nl != NULL ? (size_t)(nl - d) + 1 : len;
}

bool mime_field_next(const uint8_t *d, size_t len, size_t *pos, struct mime_field *f)
{
	size_t p = *pos, le, e;
	const uint8_t *colon;

	if (p >= len || d[p] == '\n' || (d[p] == '\r' && p + 1 < len && d[p + 1] == '\n'))
		return false;
	f->start = p;
	le = line_end(d, len, p);
	colon = memchr(d + p, ':', le - p);
	if (colon != NULL) {
		size_t nl = (size_t)(colon - d) - p;

		while (nl > 0 && mime_is_wsp(d[p + nl - 1]))
			nl--;
		f->has_colon = true;
		f->name_off = p;
		f->name_len = nl;
		f->value_off = (size_t)(colon - d) + 1;
	} else {
		f->has_colon = false;
		f->name_off = p;
		f->name_len = 0;
		f->value_off = p;
	}
	e = le;
	while (e < len && mime_is_wsp(d[e]))
		e = line_end(d, len, e);
	f->end = e;
	if (e > f->value_off && d[e - 1] == '\n') {
		e--;
		if (e > f->value_off && d[e - 1] == '\r')
			e--;
	}
	f->value_end = e;
	*pos = f->end;
	return true;
}

bool mime_field_is(const uint8_t *d, const struct mime_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->has_colon && f->name_len == n &&
	       strncasecmp((const char *)d + f->name_off, name, n) == 0;
}

/* trimmed value range */
static void field_trim(const uint8_t *d, const struct mime_field *f, size_t *s_r, size_t *e_r)
{
	size_t s = f->value_off, e = f->value_end;

	while (s < e && (mime_is_wsp(d[s]) || d[s] == '\r' || d[s] == '\n' || d[s] == '\0'))
		s++;
	while (e > s && (mime_is_wsp(d[e - 1]) || d[e - 1] == '\r' || d[e - 1] == '\n' ||
			 d[e - 1] == '\0'))
		e--;
	*s_r = s;
	*e_r = e;
}

static size_t unfold_into(char *o, const uint8_t *d, size_t s, size_t e)
{
	size_t i, w = 0;

	for (i = s; i < e; i++) {
		if (d[i] != '\r' && d[i] != '\n' && d[i] != '\0')
			o[w++] = (char)d[i];
	}
	o[w] = '\0';
	return w;
}

char *mime_field_value(struct bu_arena *a, const uint8_t *d, const struct mime_field *f)
{
	size_t s, e;
	char *o;

	field_trim(d, f, &s, &e);
	o = bu_arena_alloc(a, e - s + 1);
	unfold_into(o, d, s, e);
	return o;
}

void mime_field_unfold(struct bu_buf *out, const uint8_t *d, const struct mime_field *f)
{
	size_t s, e;

	field_trim(d, f, &s, &e);
	if (bu_buf_reserve(out, e - s) < 0)
		return;
	out->len += unfold_into((char *)out->data + out->len, d, s, e);
}

char *mime_header_get(struct bu_arena *a, const uint8_t *hdr, size_t len, const char *name)
{
	struct mime_field f;
	size_t pos = 0;

	while (mime_field_next(hdr, len, &pos, &f)) {
		if (mime_field_is(hdr, &f, name))
			return mime_field_value(a, hdr, &f);
	}
	return NULL;
}

void mime_header_filter(struct bu_buf *out, const uint8_t *hdr, size_t len,
			const char *const *names, size_t n_names, bool not)
{
	struct mime_field f;
	size_t pos = 0, i;

	while (mime_field_next(hdr, len, &pos, &f)) {
		bool match = false;

		for (i = 0; i < n_names && !match; i++)
			match = names[i] != NULL && mime_field_is(hdr, &f, names[i]);
		if (match == not)
			continue;
		if (bu_buf_append(out, hdr + f.start, f.end - f.start) < 0)
			return;
		if (hdr[f.end - 1] != '\n' && bu_buf_append(out, "\r\n", 2) < 0)
			return;
	}
	(void)bu_buf_append(out, "\r\n", 2);
}

/* ---- parameters (RFC 2045 5.1, RFC 2231) ----------------------------- */

#define MIME_MAX_PARAMS 128

static bool is_tspecial(uint8_t c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL && c != '\0';
}

static bool is_token_char(uint8_t c)
{
	return c > ' ' && c < 0x7f && !is_tspecial(c);
}

/* skip white space and (nested) comments */
static const char *skip_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		{
			int depth = 0;

			while (*p != '\0') {
				if (*p == '\\' && p[1] != '\0') {
					p += 2;
					continue;
				}
				if (*p == '(')
					depth++;
				else if (*p == ')' && --depth == 0) {
					p++;
					break;
				}
				p++;
			}
		}
	}
}

struct raw_param {
	char *name;        /* lower-case, as written (with '*' parts) */
	char *value;
	char *base;        /* name without the RFC 2231 suffix */
	int section;       /* -1: none */
	bool ext;          /* value is charset'lang'%XX (or %XX for later sections) */
	bool used;
};

static int pct_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = mime_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void pct_decode(struct bu_buf *b, const char *s)
{
	while (*s != '\0') {
		int h, l;

		if (*s == '%' && (h = pct_hex((uint8_t)s[1])) >= 0 && (l = pct_hex((uint8_t)s[2])) >= 0) {
			(void)bu_buf_append_byte(b, (uint8_t)(h << 4 | l));
			s += 3;
		} else {
			(void)bu_buf_append_byte(b, (uint8_t)*s++);
		}
	}
}

/* split "name*N*" into base/section/ext */
static void raw_param_split(struct bu_arena *a, struct raw_param *rp)
{
	const char *star = strchr(rp->name, '*');
	const char *s;
	int sec = 0;

	rp->section = -1;
	rp->ext = false;
	rp->base = rp->name;
	if (star == NULL)
		return;
	s = star + 1;
	if (*s == '\0') {
		rp->ext = true;
	} else {
		size_t digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 4) {
			sec = sec * 10 + (*s - '0');
			s++;
			digits++;
		}
		if (digits == 0 || (*s != '\0' && !(s[0] == '*' && s[1] == '\0')))
			return;   /* not RFC 2231: keep as a plain name */
		rp->section = sec;
		rp->ext = *s == '*';
	}
	rp->base = bu_arena_strndup(a, rp->name, (size_t)(star - rp->name));
}

/* RFC 2231 value of base name: single extended or continuation sections */
static char *rfc2231_value(struct bu_arena *a, struct raw_param *rps, size_t n, const char *base)
{
	struct bu_buf raw, out;
	char *charset = NULL;
	size_t idx[MIME_MAX_PARAMS];
	size_t i, j, n_idx = 0, k, w;
	int last = -1;
	char *r;

	bu_buf_init(&raw, 0);
	for (i = 0; i < n; i++) {
		if (rps[i].base == rps[i].name || strcmp(rps[i].base, base) != 0)
			continue;
		if (rps[i].section < 0) {
			if (!rps[i].ext)
				continue;
			/* name*=charset'lang'value wins over sections */
			n_idx = 0;
			idx[n_idx++] = i;
			break;
		}
		/* insertion sort by section number */
		for (j = n_idx; j > 0 && rps[idx[j - 1]].section > rps[i].section; j--)
			idx[j] = idx[j - 1];
		idx[j] = i;
		n_idx++;
	}
	for (k = 0; k < n_idx; k++) {
		const struct raw_param *rp = &rps[idx[k]];
		const char *v = rp->value;

		if (rp->section >= 0 && rp->section == last)
			continue;   /* first of a duplicated section wins */
		if (rp->ext) {
			if (k == 0) {
				const char *q1 = strchr(v, '\'');
				const char *q2 = q1 != NULL ? strchr(q1 + 1, '\'') : NULL;

				if (q2 != NULL) {
					charset = bu_arena_strndup(a, v, (size_t)(q1 - v));
					v = q2 + 1;
				}
			}
			pct_decode(&raw, v);
		} else {
			(void)bu_buf_append_str(&raw, v);
		}
		last = rp->section;
	}
	bu_buf_init(&out, 0);
	mime_charset_convert(&out, charset != NULL && *charset != '\0' ? charset : NULL,
			     raw.data != NULL ? raw.data : (const uint8_t *)"", raw.len);
	/* no NULs in a C string value */
	for (k = 0, w = 0; k < out.len; k++) {
		if (out.data[k] != '\0')
			out.data[w++] = out.data[k];
	}
	out.len = w;
	r = mime_buf_dup(a, &out);
	bu_buf_deinit(&raw);
	bu_buf_deinit(&out);
	return r;
}

/* Read one parameter value at p; returns the position after it. */
static const char *read_value(struct bu_arena *a, const char *p, char **value_r)
{
	struct bu_buf b;

	bu_buf_init(&b, 0);
	if (*p == '"') {
		p++;
		while (*p != '\0' && *p != '"') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (*p != '\r' && *p != '\n')
				(void)bu_buf_append_byte(&b, (uint8_t)*p);
			p++;
		}
		if (*p == '"')
			p++;
		/* anything up to the next ';' is garbage (or a comment) */
		while (*p != '\0' && *p != ';') {
			if (*p == '(') {
				p = skip_cfws(p);
				continue;
			}
			p++;
		}
	} else {
		const char *s = p, *e;

		while (*p != '\0' && *p != ';')
			p++;
		e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		/* "us-ascii (Plain Text)": a trailing comment after white space */
		if (e > s && e[-1] == ')') {
			const char *c = s;

			while (c < e && !(c[0] == '(' && c > s && (c[-1] == ' ' || c[-1] == '\t')))
				c++;
			if (c < e) {
				e = c;
				while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
					e--;
			}
		}
		(void)bu_buf_append(&b, s, (size_t)(e - s));
	}
	*value_r = mime_buf_dup(a, &b);
	bu_buf_deinit(&b);
	return p;
}

void mime_params_parse(struct bu_arena *a, const char *value, char **token_r,
		       struct mime_param **params_r, size_t *n_r)
{
	struct raw_param rps[MIME_MAX_PARAMS];
	size_t n_raw = 0, n_out = 0, i, j;
	const char *p = skip_cfws(value != NULL ? value : "");
	const char *s;
	struct mime_param *out;

	/* leading token: up to ';', white space or a comment */
	s = p;
	while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t' && *p != '(' &&
	       *p != '\r' && *p != '\n')
		p++;
	if (token_r != NULL) {
		if (p > s) {
			char *t = bu_arena_strndup(a, s, (size_t)(p - s));

			for (j = 0; t[j] != '\0'; j++)
				t[j] = (char)mime_lower((uint8_t)t[j]);
			*token_r = t;
		} else {
			*token_r = NULL;
		}
	}
	while (*p != '\0' && n_raw < MIME_MAX_PARAMS) {
		const char *ns, *ne;
		char *name;

		p = skip_cfws(p);
		if (*p == ';') {
			p++;
			continue;
		}
		if (*p == '\0')
			break;
		ns = p;
		while (*p != '\0' && *p != '=' && *p != ';' && *p != ' ' && *p != '\t' &&
		       *p != '(' && *p != '"')
			p++;
		ne = p;
		p = skip_cfws(p);
		if (*p != '=' || ne == ns) {
			/* not name=value: skip to the next ';' */
			while (*p != '\0' && *p != ';') {
				if (*p == '"') {
					p++;
					while (*p != '\0' && *p != '"') {
						if (*p == '\\' && p[1] != '\0')
							p++;
						p++;
					}
					if (*p == '"')
						p++;
					continue;
				}
				p++;
			}
			continue;
		}
		p = skip_cfws(p + 1);
		name = bu_arena_strndup(a, ns, (size_t)(ne - ns));
		for (j = 0; name[j] != '\0'; j++)
			name[j] = (char)mime_lower((uint8_t)name[j]);
		rps[n_raw].name = name;
		p = read_value(a, p, &rps[n_raw].value);
		rps[n_raw].used = false;
		raw_param_split(a, &rps[n_raw]);
		n_raw++;
	}
	out = n_raw > 0 ? bu_arena_alloc(a, n_raw * sizeof(*out)) : NULL;
	for (i = 0; i < n_raw; i++) {
		const char *base = rps[i].base;
		bool dup = false, has_2231 = false;
		char *plain = NULL;

		for (j = 0; j < n_out && !dup; j++)
			dup = strcmp(out[j].name, base) == 0;
		if (dup)
			continue;
		for (j = i; j < n_raw; j++) {
			if (strcmp(rps[j].base, base) != 0)
				continue;
			if (rps[j].base != rps[j].name)
				has_2231 = true;
			else if (plain == NULL)
				plain = rps[j].value;
		}
		out[n_out].name = (char *)base;
		out[n_out].value = has_2231 ? rfc2231_value(a, rps + i, n_raw - i, base) : plain;
		n_out++;
	}
	*params_r = out;
	*n_r = n_out;
}

const char *mime_param_get(const struct mime_param *params, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(params[i].name, name) == 0)
			return params[i].value;
	}
	return NULL;
}

/* ---- the tree ------------------------------------------------------------ */

struct pctx {
	struct bu_arena *a;
	const uint8_t *d;
	size_t len;
	size_t n_parts;
};

struct range {
	size_t start, end;
};

static size_t count_lines(const uint8_t *p, size_t n)
{
	size_t c = 0, i = 0;

	while (i < n) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);

		if (nl == NULL)
			break;
		c++;
		i = (size_t)(nl - p) + 1;
	}
	if (n > 0 && p[n - 1] != '\n')
		c++;
	return c;
}

static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!is_token_char((uint8_t)*s))
			return false;
	}
	return true;
}

static void set_default_type(struct pctx *c, struct mime_part *p, bool digest)
{
	if (digest) {
		p->type = "message";
		p->subtype = "rfc822";
		p->params = NULL;
		p->n_params = 0;
		return;
	}
	p->type = "text";
	p->subtype = "plain";
	p->params = bu_arena_alloc(c->a, sizeof(*p->params));
	p->params[0].name = "charset";
	p->params[0].value = "us-ascii";
	p->n_params = 1;
}

static void parse_content_type(struct pctx *c, struct mime_part *p, const char *value, bool digest)
{
	char *token, *slash;
	struct mime_param *params;
	size_t n;

	mime_params_parse(c->a, value, &token, &params, &n);
	if (token != NULL && (slash = strchr(token, '/')) != NULL) {
		*slash = '\0';
		if (is_token(token) && is_token(slash + 1)) {
			p->type = token;
			p->subtype = slash + 1;
			p->params = params;
			p->n_params = n;
			return;
		}
	}
	if (token != NULL && strcmp(token, "text") == 0) {
		/* "Content-Type: text; charset=..." */
		p->type = "text";
		p->subtype = "plain";
		p->params = params;
		p->n_params = n;
		return;
	}
	/* garbage: RFC 2045 5.2 says text/plain; charset=us-ascii */
	set_default_type(c, p, false);
}

static char *nonempty(char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

static void parse_mime_headers(struct pctx *c, struct mime_part *p, bool digest)
{
	const uint8_t *h = c->d + p->hdr_off;
	struct mime_field f;
	size_t pos = 0;
	bool have_ct = false, have_cte = false, have_cd = false;

	while (mime_field_next(h, p->hdr_len, &pos, &f)) {
		const char *name = (const char *)h + f.name_off;

		if (!f.has_colon || f.name_len < 10 || strncasecmp(name, "content-", 8) != 0)
			continue;
		if (!have_ct && mime_field_is(h, &f, "content-type")) {
			have_ct = true;
			parse_content_type(c, p, mime_field_value(c->a, h, &f), digest);
		} else if (!have_cte && mime_field_is(h, &f, "content-transfer-encoding")) {
			char *tok;
			struct mime_param *pp;
			size_t pn;

			have_cte = true;
			mime_params_parse(c->a, mime_field_value(c->a, h, &f), &tok, &pp, &pn);
			if (tok != NULL && is_token(tok))
				p->encoding = tok;
		} else if (!have_cd && mime_field_is(h, &f, "content-disposition")) {
			char *tok;

			have_cd = true;
			mime_params_parse(c->a, mime_field_value(c->a, h, &f), &tok,
					  &p->disp_params, &p->n_disp_params);
			p->disposition = tok != NULL && is_token(tok) ? tok : NULL;
			if (p->disposition == NULL) {
				p->disp_params = NULL;
				p->n_disp_params = 0;
			}
		} else if (p->id == NULL && mime_field_is(h, &f, "content-id")) {
			p->id = nonempty(mime_field_value(c->a, h, &f));
		} else if (p->description == NULL && mime_field_is(h, &f, "content-description")) {
			p->description = nonempty(mime_field_value(c->a, h, &f));
		} else if (p->md5 == NULL && mime_field_is(h, &f, "content-md5")) {
			p->md5 = nonempty(mime_field_value(c->a, h, &f));
		} else if (p->language == NULL && mime_field_is(h, &f, "content-language")) {
			p->language = nonempty(mime_field_value(c->a, h, &f));
		} else if (p->location == NULL && mime_field_is(h, &f, "content-location")) {
			p->location = nonempty(mime_field_value(c->a, h, &f));
		}
	}
	if (!have_ct)
		set_default_type(c, p, digest);
	if (p->encoding == NULL)
		p->encoding = "7bit";
}

static void make_opaque(struct mime_part *p)
{
	p->type = "application";
	p->subtype = "octet-stream";
	p->children = NULL;
	p->n_children = 0;
	p->message = NULL;
}

/*
 * Split [start, end) at delimiter lines "--boundary" (optionally "--" and
 * transport padding after it). The line break before a delimiter belongs
 * to it (RFC 2046 5.1.1). Stops after the close delimiter, or after max
 * parts. Returns the number of ranges in *ranges_r (heap; caller frees).
 */
static size_t split_multipart(const uint8_t *d, size_t start, size_t end,
			      const char *boundary, size_t max, struct range **ranges_r)
{
	size_t blen = strlen(boundary), plen = blen + 2, pos = start;
	size_t n = 0, cap = 0;
	struct range *r = NULL, cur = { 0, 0 };
	bool in_part = false;
	char *pat = bu_malloc(plen + 1);

	pat[0] = '-';
	pat[1] = '-';
	memcpy(pat + 2, boundary, blen);
	while (pos < end && max > 0) {
		const uint8_t *hit = memmem(d + pos, end - pos, pat, plen);
		size_t k, q, le, pre;
		bool close = false;

		if (hit == NULL)
			break;
		k = (size_t)(hit - d);
		if (k > start && d[k - 1] != '\n') {
			pos = k + 1;
			continue;
		}
		q = k + plen;
		if (q + 1 < end && d[q] == '-' && d[q + 1] == '-') {
			close = true;
			q += 2;
		}
		while (q < end && mime_is_wsp(d[q]))
			q++;
		if (q >= end)
			le = end;
		else if (d[q] == '\n')
			le = q + 1;
		else if (d[q] == '\r' && (q + 1 == end || d[q + 1] == '\n'))
			le = q + 1 == end ? end : q + 2;
		else {
			pos = k + 1;
			continue;
		}
		pre = k;
		if (k > start && d[k - 1] == '\n') {
			pre = k - 1;
			if (pre > start && d[pre - 1] == '\r')
				pre--;
		}
		if (in_part) {
			cur.end = pre > cur.start ? pre : cur.start;
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				r = bu_realloc(r, bu_size_mul(cap, sizeof(*r)));
			}
			r[n++] = cur;
			in_part = false;
			if (n >= max)
				break;
		}
		if (close)
			break;
		in_part = true;
		cur.start = le;
		pos = le;
	}
	if (in_part) {
		cur.end = end;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			r = bu_realloc(r, bu_size_mul(cap, sizeof(*r)));
		}
		r[n++] = cur;
	}
	free(pat);
	*ranges_r = r;
	return n;
}

static void parse_part(struct pctx *c, struct mime_part *p, size_t off, size_t end,
		       unsigned depth, bool digest, bool is_message);

static void parse_multipart(struct pctx *c, struct mime_part *p, unsigned depth)
{
	const char *boundary = mime_param_get(p->params, p->n_params, "boundary");
	struct range *r = NULL;
	size_t n = 0, i;
	bool digest = strcmp(p->subtype, "digest") == 0;

	if (boundary != NULL && *boundary != '\0')
		n = split_multipart(c->d, p->body_off, p->body_off + p->body_len, boundary,
				    MIME_MAX_PARTS - c->n_parts, &r);
	if (n == 0) {
		/* no parts at all: one empty text/plain child (see the top) */
		struct mime_part *e = bu_arena_alloc(c->a, sizeof(*e));

		c->n_parts++;
		e->hdr_off = p->body_off;
		e->body_off = p->body_off;
		set_default_type(c, e, false);
		e->encoding = "7bit";
		p->children = e;
		p->n_children = 1;
		free(r);
		return;
	}
	p->children = bu_arena_alloc(c->a, bu_size_mul(n, sizeof(*p->children)));
	p->n_children = n;
	c->n_parts += n;
	for (i = 0; i < n; i++)
		parse_part(c, &p->children[i], r[i].start, r[i].end, depth + 1, digest, false);
	free(r);
}

static void parse_part(struct pctx *c, struct mime_part *p, size_t off, size_t end,
		       unsigned depth, bool digest, bool is_message)
{
	size_t hl = mime_header_block_len(c->d + off, end - off);

	p->hdr_off = off;
	p->hdr_len = hl;
	p->body_off = off + hl;
	p->body_len = end - p->body_off;
	parse_mime_headers(c, p, digest);
	if (is_message)
		p->envelope = mime_envelope_parse(c->a, c->d + off, hl);
	p->body_lines = count_lines(c->d + p->body_off, p->body_len);
	if (strcmp(p->type, "multipart") == 0) {
		if (depth + 1 >= MIME_MAX_DEPTH || c->n_parts >= MIME_MAX_PARTS)
			make_opaque(p);
		else
			parse_multipart(c, p, depth);
	} else if (strcmp(p->type, "message") == 0 &&
		   (strcmp(p->subtype, "rfc822") == 0 || strcmp(p->subtype, "global") == 0)) {
		if (depth + 1 >= MIME_MAX_DEPTH || c->n_parts >= MIME_MAX_PARTS) {
			make_opaque(p);
		} else {
			p->message = bu_arena_alloc(c->a, sizeof(*p->message));
			c->n_parts++;
			parse_part(c, p->message, p->body_off, end, depth + 1, false, true);
		}
	}
}

struct mime_part *mime_parse(struct bu_arena *a, const uint8_t *data, size_t len)
{
	struct pctx c = { a, data != NULL ? data : (const uint8_t *)"", data != NULL ? len : 0, 1 };
	struct mime_part *root = bu_arena_alloc(a, sizeof(*root));

	parse_part(&c, root, 0, c.len, 0, false, true);
	return root;
}

/* ---- section numbers ------------------------------------------------ */

const struct mime_part *mime_find_part(const struct mime_part *root, const char *path)
{
	const struct mime_part *cur = root;
	const char *s = path;
	bool first = true;

	if (root == NULL || path == NULL)
		return NULL;
	while (*s != '\0') {
		const struct mime_part *ctx;
		uint64_t n = 0;
		size_t digits = 0;

		while (*s >= '0' && *s <= '9') {
			if (++digits > 9)
				return NULL;
			n = n * 10 + (uint64_t)(*s - '0');
			s++;
		}
		if (digits == 0 || n == 0)
			return NULL;
		if (*s == '.') {
			s++;
			if (*s == '\0')
				return NULL;
		} else if (*s != '\0') {
			return NULL;
		}
		if (first)
			ctx = cur;                  /* the message itself */
		else if (cur->message != NULL)
			ctx = cur->message;         /* into the embedded message */
		else if (cur->n_children > 0)
			ctx = NULL;
		else
			return NULL;                /* a leaf has no subparts */
		first = false;
		if (ctx == NULL) {
			if (n > cur->n_children)
				return NULL;
			cur = &cur->children[n - 1];
		} else if (ctx->n_children > 0) {
			if (n > ctx->n_children)
				return NULL;
			cur = &ctx->children[n - 1];
		} else {
			/* a non-multipart message: part 1 is its body */
			if (n != 1)
				return NULL;
			cur = ctx;
		}
	}
	return cur;
}

/* ---- serialized form ------------------------------------------------- */
/*
 * "M1" then space-separated tokens, depth first:
 *   part := hdr_off hdr_len body_off body_len body_lines type subtype
 *           n_params {name value} id description encoding md5 disposition
 *           n_disp_params {name value} language location flags
 *           [envelope if flags&1] [part if flags&2 (embedded message)]
 *           n_children {part}
 *   envelope := date subject addrs*6 (from sender reply-to to cc bcc)
 *               in_reply_to message_id
 *   addrs := n {name mailbox host adl flags(1 group start, 2 group end)}
 * Numbers are canonical decimal. A string is "-" (NULL) or "." followed
 * by its bytes, where '%', space, control characters and bytes that are
 * not part of valid UTF-8 are written %XX: the result is valid UTF-8
 * without NULs, fit for a text column.
 */

static void ser_num(struct bu_buf *b, uint64_t v)
{
	char d[20];
	size_t n = bu_u64_dec(v, d);

	(void)bu_buf_append_byte(b, ' ');
	(void)bu_buf_append(b, d, n);
}

static void ser_str(struct bu_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const uint8_t *p = (const uint8_t *)s;
	size_t n, i = 0, w = 0;
	uint8_t *o;

	if (s == NULL) {
		(void)bu_buf_append(b, " -", 2);
		return;
	}
	n = strlen(s);
	if (bu_buf_reserve(b, bu_size_add(bu_size_mul(n, 3), 2)) < 0)
		return;
	o = b->data + b->len;
	o[w++] = ' ';
	o[w++] = '.';
	while (i < n) {
		uint8_t ch = p[i];
		uint32_t cp;
		size_t l;

		if (ch > ' ' && ch < 0x7f && ch != '%') {
			o[w++] = ch;
			i++;
			continue;
		}
		if (ch >= 0x80 && (l = mime_utf8_next(p + i, n - i, &cp)) > 0) {
			memcpy(o + w, p + i, l);
			w += l;
			i += l;
			continue;
		}
		o[w++] = '%';
		o[w++] = hex[ch >> 4];
		o[w++] = hex[ch & 15];
		i++;
	}
	b->len += w;
	b->data[b->len] = '\0';
}

static void ser_params(struct bu_buf *b, const struct mime_param *p, size_t n)
{
	size_t i;

	ser_num(b, n);
	for (i = 0; i < n; i++) {
		ser_str(b, p[i].name);
		ser_str(b, p[i].value);
	}
}

static void ser_addrs(struct bu_buf *b, const struct mime_address *a, size_t n)
{
	size_t i;

	ser_num(b, n);
	for (i = 0; i < n; i++) {
		ser_str(b, a[i].name);
		ser_str(b, a[i].mailbox);
		ser_str(b, a[i].host);
		ser_str(b, a[i].adl);
		ser_num(b, (a[i].group_start ? 1u : 0u) | (a[i].group_end ? 2u : 0u));
	}
}

static void ser_part(struct bu_buf *b, const struct mime_part *p)
{
	size_t i;

	ser_num(b, p->hdr_off);
	ser_num(b, p->hdr_len);
	ser_num(b, p->body_off);
	ser_num(b, p->body_len);
	ser_num(b, p->body_lines);
	ser_str(b, p->type);
	ser_str(b, p->subtype);
	ser_params(b, p->params, p->n_params);
	ser_str(b, p->id);
	ser_str(b, p->description);
	ser_str(b, p->encoding);
	ser_str(b, p->md5);
	ser_str(b, p->disposition);
	ser_params(b, p->disp_params, p->n_disp_params);
	ser_str(b, p->language);
	ser_str(b, p->location);
	ser_num(b, (p->envelope != NULL ? 1u : 0u) | (p->message != NULL ? 2u : 0u));
	if (p->envelope != NULL) {
		const struct mime_envelope *e = p->envelope;

		ser_str(b, e->date);
		ser_str(b, e->subject);
		ser_addrs(b, e->from, e->n_from);
		ser_addrs(b, e->sender, e->n_sender);
		ser_addrs(b, e->reply_to, e->n_reply_to);
		ser_addrs(b, e->to, e->n_to);
		ser_addrs(b, e->cc, e->n_cc);
		ser_addrs(b, e->bcc, e->n_bcc);
		ser_str(b, e->in_reply_to);
		ser_str(b, e->message_id);
	}
	if (p->message != NULL)
		ser_part(b, p->message);
	ser_num(b, p->n_children);
	for (i = 0; i < p->n_children; i++)
		ser_part(b, &p->children[i]);
}

char *mime_serialize(struct bu_arena *a, const struct mime_part *root, size_t *len_r)
{
	struct bu_buf b;
	char *r;

	bu_buf_init(&b, 0);
	(void)bu_buf_append(&b, "M1", 2);
	ser_part(&b, root);
	r = bu_arena_strndup(a, bu_buf_cstr(&b), b.len);
	if (len_r != NULL)
		*len_r = b.len;
	bu_buf_deinit(&b);
	return r;
}

struct dctx {
	struct bu_arena *a;
	const char *s;
	size_t len, pos;
	size_t n_parts;
	bool bad;
	char *sbuf;            /* decoded strings, len + 1 bytes */
	size_t sused;
};

/* next token (after one separating space); tokens are short, so a plain
 * loop beats memchr's call */
static bool des_tok(struct dctx *c, const char **t_r, size_t *n_r)
{
	const char *s = c->s, *t;
	size_t pos = c->pos, len = c->len;

	if (c->bad || pos >= len || s[pos] != ' ') {
		c->bad = true;
		return false;
	}
	t = s + ++pos;
	while (pos < len && s[pos] != ' ')
		pos++;
	*t_r = t;
	*n_r = (size_t)(s + pos - t);
	if (*n_r == 0) {
		c->bad = true;
		return false;
	}
	c->pos = pos;
	return true;
}

static uint64_t des_num(struct dctx *c, uint64_t max)
{
	const char *t;
	size_t n, i;
	uint64_t v = 0;

	if (!des_tok(c, &t, &n))
		return 0;
	if (n > 19 || (n > 1 && t[0] == '0')) {
		c->bad = true;
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (t[i] < '0' || t[i] > '9') {
			c->bad = true;
			return 0;
		}
		v = v * 10 + (uint64_t)(t[i] - '0');
	}
	if (v > max) {
		c->bad = true;
		return 0;
	}
	return v;
}

/* A string token: "-" (NULL) or "." and its %XX-escaped bytes. Decoded
 * in one pass into the strings area (c->sbuf): a decoded string and its
 * NUL never take more bytes than its token and separating space, so the
 * area, as long as the input, always has room. */
static char *des_str(struct dctx *c)
{
	const char *s = c->s;
	size_t pos = c->pos, len = c->len, w = 0;
	char *o;

	if (c->bad || pos + 1 >= len || s[pos] != ' ') {
		c->bad = true;
		return NULL;
	}
	pos++;
	if (s[pos] == '-' && (pos + 1 == len || s[pos + 1] == ' ')) {
		c->pos = pos + 1;
		return NULL;
	}
	if (s[pos] != '.') {
		c->bad = true;
		return NULL;
	}
	pos++;
	o = c->sbuf + c->sused;
	while (pos < len && s[pos] != ' ') {
		if (s[pos] == '%') {
			int h, l;

			if (pos + 2 >= len || (h = pct_hex((uint8_t)s[pos + 1])) < 0 ||
			    (l = pct_hex((uint8_t)s[pos + 2])) < 0 || (h == 0 && l == 0)) {
				c->bad = true;
				return NULL;
			}
			o[w++] = (char)(h << 4 | l);
			pos += 3;
		} else {
			o[w++] = s[pos++];
		}
	}
	o[w] = '\0';
	c->sused += w + 1;
	bu_assert(c->sused <= c->len + 1);
	c->pos = pos;
	return o;
}

/* a string that must be present */
static char *des_str_req(struct dctx *c)
{
	char *s = des_str(c);

	if (s == NULL)
		c->bad = true;
	return s;
}

static size_t des_count(struct dctx *c, size_t min_bytes_each)
{
	/* a count can never exceed what the remaining input could hold */
	return (size_t)des_num(c, (c->len - c->pos) / min_bytes_each);
}

static void des_params(struct dctx *c, struct mime_param **p_r, size_t *n_r)
{
	size_t n = des_count(c, 4), i;
	struct mime_param *p;

	*p_r = NULL;
	*n_r = 0;
	if (c->bad || n == 0)
		return;
	p = bu_arena_alloc(c->a, bu_size_mul(n, sizeof(*p)));
	for (i = 0; i < n && !c->bad; i++) {
		p[i].name = des_str_req(c);
		p[i].value = des_str_req(c);
	}
	*p_r = p;
	*n_r = n;
}

static void des_addrs(struct dctx *c, struct mime_address **a_r, size_t *n_r)
{
	size_t n = des_count(c, 10), i;
	struct mime_address *a;

	*a_r = NULL;
	*n_r = 0;
	if (c->bad || n == 0)
		return;
	a = bu_arena_alloc(c->a, bu_size_mul(n, sizeof(*a)));
	for (i = 0; i < n && !c->bad; i++) {
		uint64_t fl;

		a[i].name = des_str(c);
		a[i].mailbox = des_str(c);
		a[i].host = des_str(c);
		a[i].adl = des_str(c);
		fl = des_num(c, 3);
		a[i].group_start = (fl & 1) != 0;
		a[i].group_end = (fl & 2) != 0;
	}
	*a_r = a;
	*n_r = n;
}

#define DES_MAX_OFF ((uint64_t)1 << 60)

static bool des_part(struct dctx *c, struct mime_part *p, unsigned depth)
{
	uint64_t fl;
	size_t i, n;
	bool multi, msg;

	if (depth >= MIME_MAX_DEPTH || ++c->n_parts > MIME_MAX_PARTS) {
		c->bad = true;
		return false;
	}
	p->hdr_off = des_num(c, DES_MAX_OFF);
	p->hdr_len = des_num(c, DES_MAX_OFF);
	p->body_off = des_num(c, DES_MAX_OFF);
	p->body_len = des_num(c, DES_MAX_OFF);
	p->body_lines = des_num(c, DES_MAX_OFF);
	p->type = des_str_req(c);
	p->subtype = des_str_req(c);
	des_params(c, &p->params, &p->n_params);
	p->id = des_str(c);
	p->description = des_str(c);
	p->encoding = des_str_req(c);
	p->md5 = des_str(c);
	p->disposition = des_str(c);
	des_params(c, &p->disp_params, &p->n_disp_params);
	p->language = des_str(c);
	p->location = des_str(c);
	fl = des_num(c, 3);
	if (c->bad || p->body_off != p->hdr_off + p->hdr_len)
		return c->bad = true, false;
	if (fl & 1) {
		struct mime_envelope *e = bu_arena_alloc(c->a, sizeof(*e));

		e->date = des_str(c);
		e->subject = des_str(c);
		des_addrs(c, &e->from, &e->n_from);
		des_addrs(c, &e->sender, &e->n_sender);
		des_addrs(c, &e->reply_to, &e->n_reply_to);
		des_addrs(c, &e->to, &e->n_to);
		des_addrs(c, &e->cc, &e->n_cc);
		des_addrs(c, &e->bcc, &e->n_bcc);
		e->in_reply_to = des_str(c);
		e->message_id = des_str(c);
		p->envelope = e;
	}
	multi = strcmp(p->type, "multipart") == 0;
	msg = strcmp(p->type, "message") == 0 &&
	      (strcmp(p->subtype, "rfc822") == 0 || strcmp(p->subtype, "global") == 0);
	if (((fl & 2) != 0) != msg)
		return c->bad = true, false;
	if (msg) {
		p->message = bu_arena_alloc(c->a, sizeof(*p->message));
		if (!des_part(c, p->message, depth + 1))
			return false;
		if (p->message->envelope == NULL || p->message->hdr_off != p->body_off ||
		    p->message->body_off + p->message->body_len != p->body_off + p->body_len)
			return c->bad = true, false;
	}
	n = des_count(c, 36);   /* a part is at least 18 tokens */
	if (c->bad || (n > 0) != multi)
		return c->bad = true, false;
	if (n > 0) {
		p->children = bu_arena_alloc(c->a, bu_size_mul(n, sizeof(*p->children)));
		p->n_children = n;
		for (i = 0; i < n; i++) {
			const struct mime_part *ch = &p->children[i];

			if (!des_part(c, &p->children[i], depth + 1))
				return false;
			if (ch->hdr_off < p->body_off ||
			    ch->body_off + ch->body_len > p->body_off + p->body_len)
				return c->bad = true, false;
		}
	}
	return !c->bad;
}

struct mime_part *mime_deserialize(struct bu_arena *a, const char *s, size_t len)
{
	struct dctx c = { a, s, len, 2, 0, false, NULL, 0 };
	struct mime_part *root;

	if (s == NULL || len < 2 || s[0] != 'M' || s[1] != '1')
		return NULL;
	c.sbuf = bu_arena_alloc(a, bu_size_add(len, 1));
	root = bu_arena_alloc(a, sizeof(*root));
	if (!des_part(&c, root, 0) || c.pos != c.len || root->envelope == NULL)
		return NULL;
	return root;
}

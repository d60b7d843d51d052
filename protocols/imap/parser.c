/*
 * parser.c - IMAP command syntax (RFC 3501 section 9, RFC 9051 section 9),
 * as an incremental state machine.
 *
 * A command is one or more line segments: "tag SP name [SP args] CRLF",
 * where a segment that ends with a literal announcement "{N}" / "{N+}" /
 * "~{N}" (RFC 3501, RFC 7888 LITERAL+/LITERAL-, RFC 3516 literal8) is
 * followed by N raw octets and then the next segment. The parser keeps the
 * segment being received in its own buffer (bounded by max_line), parses
 * complete segments, and copies literal octets straight into the command
 * arena as they arrive, so a 64 MiB APPEND never has to fit into the
 * connection's input buffer. Everything it returns lives in the arena.
 *
 * Tokens: atoms (lenient: any byte above SP except "(", ")" and '"', so
 * sequence sets, LIST patterns, flags and 8-bit names written by sloppy
 * clients pass; an atom containing '[' runs to the matching ']' with
 * spaces, parens and quoted strings inside, as in
 * BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>), quoted strings (only \\ and
 * \" escapes), literals, parenthesized lists and NIL.
 *
 * After a syntax error the parser skips the rest of the command line,
 * including the octets of any non-synchronizing literal announced at the
 * end of a segment, and only then reports the error; a synchronizing
 * literal ends the line (the client waits for our "+").
 *
 * Also here: sequence sets (imap_seqset_*) and the one-line reader used
 * by AUTHENTICATE and IDLE.
 */
#include <stdlib.h>
#include <string.h>

#include "imap_int.h"

#define IMAP_MAX_DEPTH 64 /* nested lists */
#define TAIL_MAX 32	  /* bytes remembered while skipping a line */
/* Cap on all literal octets of one command (MULTIAPPEND, CATENATE). */
#define LITERAL_TOTAL_FACTOR 4

enum pstate {
	P_LINE,		/* receiving a segment */
	P_LITERAL,	/* receiving literal octets */
	P_SKIP,		/* skipping the rest of a bad line */
	P_SKIP_LITERAL, /* skipping a non-synchronizing literal of a bad line */
};

struct plevel {
	struct imap_arg *v;
	size_t n, cap;
	size_t parent_idx; /* index of the LIST arg in the level below */
};

struct imap_parser {
	size_t max_line, max_literal, max_args;
	enum pstate state;
	struct bu_buf seg; /* current segment without LF */
	size_t line_total; /* command text so far (outside literals) */
	bool have_name;	   /* first segment parsed */
	char *tag;
	char *name;
	bool uid;
	struct plevel stack[IMAP_MAX_DEPTH];
	size_t depth; /* open lists; stack[0] = top level */
	size_t n_args;
	uint8_t *lit; /* literal being received (arena) */
	uint64_t lit_len, lit_got;
	uint64_t literal_total;
	/* skipping */
	uint64_t skip_left;
	char tail[TAIL_MAX];
	size_t tail_len;
	enum imap_parse_result pending;
	const char *pending_err;
	bool must_close;
};

struct imap_parser *imap_parser_create(size_t max_line, size_t max_literal, size_t max_args)
{
	struct imap_parser *p = bu_malloc(sizeof(*p));

	p->max_line = max_line > 0 ? max_line : 65536;
	p->max_literal = max_literal;
	p->max_args = max_args > 0 ? max_args : 100000;
	bu_buf_init(&p->seg, 0);
	p->state = P_LINE;
	return p;
}

static void seg_wipe(struct imap_parser *p)
{
	/* the segment may have held a password (LOGIN) */
	if (p->seg.data != NULL && p->seg.len > 0)
		bu_wipe(p->seg.data, p->seg.len);
	bu_buf_reset(&p->seg);
}

void imap_parser_destroy(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	seg_wipe(p);
	bu_buf_deinit(&p->seg);
	free(p);
	*pp = NULL;
}

void imap_parser_set_limits(struct imap_parser *p, size_t max_line, size_t max_literal)
{
	if (max_line > 0)
		p->max_line = max_line;
	p->max_literal = max_literal;
}

bool imap_parser_must_close(const struct imap_parser *p)
{
	return p->must_close;
}

/* Forget the command in progress (not the skip state of a bad line). */
static void cmd_reset(struct imap_parser *p)
{
	seg_wipe(p);
	p->line_total = 0;
	p->have_name = false;
	p->tag = NULL;
	p->name = NULL;
	p->uid = false;
	memset(p->stack, 0, sizeof(p->stack));
	p->depth = 0;
	p->n_args = 0;
	p->lit = NULL;
	p->lit_len = p->lit_got = 0;
	p->literal_total = 0;
}

void imap_parser_reset(struct imap_parser *p)
{
	cmd_reset(p);
	if (p->state == P_LITERAL)
		p->state = P_LINE;
	/* a pending skip survives: the rest of the bad line is still coming */
}

/* ---- character classes ----------------------------------------------- */

static bool is_tag_char(unsigned char c)
{
	/* ASTRING-CHAR except "+" (RFC 3501 tag) */
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\+", c) == NULL;
}

static bool is_name_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '=';
}

static bool is_atom_char(unsigned char c)
{
	/* lenient atom: see the file comment */
	if (c <= 0x20 || c == 0x7f)
		return false;
	return c != '(' && c != ')' && c != '"';
}

/* ---- building args ---------------------------------------------------- */

static struct imap_arg *arg_new(struct imap_parser *p, struct bu_arena *a, const char **err_r)
{
	struct plevel *l = &p->stack[p->depth];

	if (p->n_args >= p->max_args) {
		*err_r = "Too many arguments";
		return NULL;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? bu_size_mul(l->cap, 2) : 8;
		struct imap_arg *nv = bu_arena_alloc(a, bu_size_mul(ncap, sizeof(*nv)));

		if (l->n > 0)
			memcpy(nv, l->v, l->n * sizeof(*nv));
		l->v = nv;
		l->cap = ncap;
	}
	p->n_args++;
	return &l->v[l->n++];
}

/* "{123}" "{123+}" at the end of a segment? */
static bool trailing_literal(const char *s, size_t len, uint64_t *n_r, bool *nonsync_r)
{
	size_t i, digits_end;

	if (len < 3 || s[len - 1] != '}')
		return false;
	i = len - 1;
	*nonsync_r = false;
	if (s[i - 1] == '+') {
		*nonsync_r = true;
		i--;
	}
	digits_end = i;
	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	if (i == digits_end || i == 0 || s[i - 1] != '{')
		return false;
	if (bu_parse_u64(s + i, digits_end - i, UINT64_MAX, n_r) < 0)
		*n_r = UINT64_MAX;
	return true;
}

/* A line too long to parse: still answer with its tag if it has one. */
static void tag_from_prefix(struct imap_parser *p, struct bu_arena *a)
{
	const uint8_t *sp = memchr(p->seg.data, ' ', p->seg.len);
	size_t i, n;

	if (sp == NULL)
		return;
	n = (size_t)(sp - p->seg.data);
	if (n == 0)
		return;
	for (i = 0; i < n; i++) {
		if (!is_tag_char(p->seg.data[i]))
			return;
	}
	p->tag = bu_arena_strndup(a, (const char *)p->seg.data, n);
}

/* ---- segment parsing -------------------------------------------------- */

enum seg_result {
	SEG_DONE,     /* command complete */
	SEG_LITERAL,  /* literal announced at the end; octets follow */
	SEG_CONTINUE, /* synchronizing literal: send "+" */
	SEG_ERROR,
	SEG_TOOBIG,
};

static enum seg_result parse_literal_token(struct imap_parser *p, struct bu_arena *a, const char *s,
					   size_t len, size_t *pos, bool literal8,
					   const char **err_r)
{
	size_t i = *pos + (literal8 ? 2 : 1);
	size_t ds = i;
	uint64_t n;
	bool nonsync = false;
	struct imap_arg *arg;

	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == ds) {
		*err_r = "Invalid literal size";
		return SEG_ERROR;
	}
	if (bu_parse_u64(s + ds, i - ds, UINT64_MAX, &n) < 0)
		n = UINT64_MAX;
	if (i < len && s[i] == '+') {
		nonsync = true;
		i++;
	}
	if (i >= len || s[i] != '}') {
		*err_r = "Invalid literal";
		return SEG_ERROR;
	}
	i++;
	if (i != len) {
		*err_r = "Literal must end the line";
		return SEG_ERROR;
	}
	*pos = i;
	if (n > p->max_literal ||
	    p->literal_total + n > (uint64_t)p->max_literal * LITERAL_TOTAL_FACTOR) {
		*err_r = "Literal too large";
		if (nonsync)
			p->must_close = true;
		return SEG_TOOBIG;
	}
	arg = arg_new(p, a, err_r);
	if (arg == NULL)
		return SEG_ERROR;
	arg->type = IMAP_ARG_LITERAL;
	arg->literal8 = literal8;
	arg->len = (size_t)n;
	p->lit = bu_arena_alloc(a, (size_t)n + 1);
	arg->str = (const char *)p->lit;
	p->lit_len = n;
	p->lit_got = 0;
	p->literal_total += n;
	return nonsync ? SEG_LITERAL : SEG_CONTINUE;
}

static enum seg_result parse_quoted(struct imap_parser *p, struct bu_arena *a, const char *s,
				    size_t len, size_t *pos, const char **err_r)
{
	size_t i = *pos + 1, start = i, n = 0;
	char *out;
	struct imap_arg *arg;

	/* measure */
	for (;;) {
		if (i >= len) {
			*err_r = "Missing '\"'";
			return SEG_ERROR;
		}
		if (s[i] == '"')
			break;
		if (s[i] == '\\') {
			if (i + 1 >= len || (s[i + 1] != '\\' && s[i + 1] != '"')) {
				*err_r = "Invalid escape in quoted string";
				return SEG_ERROR;
			}
			i += 2;
		} else if (s[i] == '\r' || s[i] == '\0') {
			*err_r = "Invalid character in quoted string";
			return SEG_ERROR;
		} else {
			i++;
		}
		n++;
	}
	arg = arg_new(p, a, err_r);
	if (arg == NULL)
		return SEG_ERROR;
	out = bu_arena_alloc(a, n + 1);
	n = 0;
	for (i = start; s[i] != '"'; i++) {
		if (s[i] == '\\')
			i++;
		out[n++] = s[i];
	}
	arg->type = IMAP_ARG_STRING;
	arg->str = out;
	arg->len = n;
	*pos = i + 1;
	return SEG_DONE;
}

static enum seg_result parse_atom(struct imap_parser *p, struct bu_arena *a, const char *s,
				  size_t len, size_t *pos, const char **err_r)
{
	size_t i = *pos, start = i;
	struct imap_arg *arg;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '[') {
			unsigned depth = 1;

			i++;
			while (depth > 0) {
				if (i >= len) {
					*err_r = "Missing ']'";
					return SEG_ERROR;
				}
				c = (unsigned char)s[i];
				if (c == '\r' || c == '\0') {
					*err_r = "Invalid character";
					return SEG_ERROR;
				}
				if (c == '"') {
					/* quoted header field names inside [] */
					i++;
					while (i < len && s[i] != '"') {
						if (s[i] == '\\' && i + 1 < len)
							i++;
						if (s[i] == '\r' || s[i] == '\0') {
							*err_r = "Invalid character";
							return SEG_ERROR;
						}
						i++;
					}
					if (i >= len) {
						*err_r = "Missing '\"'";
						return SEG_ERROR;
					}
				} else if (c == '[') {
					depth++;
				} else if (c == ']') {
					depth--;
				}
				i++;
			}
			continue;
		}
		if (!is_atom_char(c))
			break;
		i++;
	}
	if (i == start) {
		*err_r = "Invalid character";
		return SEG_ERROR;
	}
	arg = arg_new(p, a, err_r);
	if (arg == NULL)
		return SEG_ERROR;
	arg->str = bu_arena_strndup(a, s + start, i - start);
	arg->len = i - start;
	if (arg->len == 3 && bu_slice_caseeq(bu_slice(s + start, 3), "NIL")) {
		arg->type = IMAP_ARG_NIL;
		arg->str = "NIL";
	} else {
		arg->type = IMAP_ARG_ATOM;
	}
	*pos = i;
	return SEG_DONE;
}

/* "tag SP name [SP]" or "tag SP UID SP name [SP]" */
static enum seg_result parse_head(struct imap_parser *p, struct bu_arena *a, const char *s,
				  size_t len, size_t *pos, const char **err_r)
{
	size_t i = 0, st;

	while (i < len && s[i] != ' ')
		i++;
	if (i == 0) {
		*err_r = "Invalid tag";
		return SEG_ERROR;
	}
	for (st = 0; st < i; st++) {
		if (!is_tag_char((unsigned char)s[st])) {
			*err_r = "Invalid tag";
			return SEG_ERROR;
		}
	}
	p->tag = bu_arena_strndup(a, s, i);
	if (i >= len) {
		*err_r = "Missing command";
		return SEG_ERROR;
	}
	for (;;) {
		char *name;
		size_t k;

		while (i < len && s[i] == ' ')
			i++;
		st = i;
		while (i < len && s[i] != ' ')
			i++;
		if (i == st) {
			*err_r = "Missing command";
			return SEG_ERROR;
		}
		for (k = st; k < i; k++) {
			if (!is_name_char((unsigned char)s[k])) {
				*err_r = "Invalid command name";
				return SEG_ERROR;
			}
		}
		name = bu_arena_strndup(a, s + st, i - st);
		for (k = 0; name[k] != '\0'; k++) {
			if (name[k] >= 'a' && name[k] <= 'z')
				name[k] = (char)(name[k] - 'a' + 'A');
		}
		if (!p->uid && strcmp(name, "UID") == 0) {
			p->uid = true;
			continue;
		}
		p->name = name;
		break;
	}
	p->have_name = true;
	*pos = i;
	return SEG_DONE;
}

static enum seg_result parse_segment(struct imap_parser *p, struct bu_arena *a, const char *s,
				     size_t len, const char **err_r)
{
	size_t i = 0;
	enum seg_result r;
	bool need_sep = false;

	if (!p->have_name) {
		r = parse_head(p, a, s, len, &i, err_r);
		if (r != SEG_DONE)
			return r;
		need_sep = true;
	}
	/* after a literal the next token needs a separator too */
	if (p->lit != NULL) {
		need_sep = true;
		p->lit = NULL;
	}
	for (;;) {
		unsigned char c;

		if (i >= len) {
			if (p->depth > 0) {
				*err_r = "Missing ')'";
				return SEG_ERROR;
			}
			return SEG_DONE;
		}
		c = (unsigned char)s[i];
		if (c == ' ') {
			i++;
			need_sep = false;
			continue;
		}
		if (c == ')') {
			struct plevel *l;
			struct imap_arg *pa;

			if (p->depth == 0) {
				*err_r = "Unexpected ')'";
				return SEG_ERROR;
			}
			l = &p->stack[p->depth];
			pa = &p->stack[p->depth - 1].v[l->parent_idx];
			pa->list = l->v;
			pa->n_list = l->n;
			memset(l, 0, sizeof(*l));
			p->depth--;
			i++;
			need_sep = true;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			*err_r = "Invalid character";
			return SEG_ERROR;
		}
		if (need_sep) {
			*err_r = "Missing space";
			return SEG_ERROR;
		}
		if (c == '(') {
			struct imap_arg *arg;

			if (p->depth + 1 >= IMAP_MAX_DEPTH) {
				*err_r = "Too deeply nested";
				return SEG_ERROR;
			}
			arg = arg_new(p, a, err_r);
			if (arg == NULL)
				return SEG_ERROR;
			arg->type = IMAP_ARG_LIST;
			arg->str = "";
			p->depth++;
			memset(&p->stack[p->depth], 0, sizeof(p->stack[p->depth]));
			p->stack[p->depth].parent_idx = p->stack[p->depth - 1].n - 1;
			i++;
			continue;
		}
		if (c == '"') {
			r = parse_quoted(p, a, s, len, &i, err_r);
		} else if (c == '{') {
			return parse_literal_token(p, a, s, len, &i, false, err_r);
		} else if (c == '~' && i + 1 < len && s[i + 1] == '{') {
			return parse_literal_token(p, a, s, len, &i, true, err_r);
		} else {
			r = parse_atom(p, a, s, len, &i, err_r);
		}
		if (r != SEG_DONE)
			return r;
		need_sep = true;
	}
}

static void fill_cmd(struct imap_parser *p, struct imap_command *cmd_r)
{
	cmd_r->tag = p->tag;
	cmd_r->name = p->name;
	cmd_r->uid = p->uid;
	cmd_r->args = p->stack[0].v;
	cmd_r->n_args = p->stack[0].n;
}

static void tail_add(struct imap_parser *p, const uint8_t *d, size_t n)
{
	if (n >= TAIL_MAX) {
		memcpy(p->tail, d + n - TAIL_MAX, TAIL_MAX);
		p->tail_len = TAIL_MAX;
		return;
	}
	if (p->tail_len + n > TAIL_MAX) {
		size_t drop = p->tail_len + n - TAIL_MAX;

		memmove(p->tail, p->tail + drop, p->tail_len - drop);
		p->tail_len -= drop;
	}
	memcpy(p->tail + p->tail_len, d, n);
	p->tail_len += n;
}

/* The current line (ending in seg, or tail when skipping) is bad: decide
 * whether a non-synchronizing literal still has to be skipped. Returns
 * true when the error can be reported now. */
static bool start_skip_literal(struct imap_parser *p, const char *s, size_t len)
{
	uint64_t n;
	bool nonsync;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (!trailing_literal(s, len, &n, &nonsync) || !nonsync)
		return true;
	if (n > p->max_literal) {
		/* RFC 7888 section 4: the octets are coming, we will not read
		 * them; the session closes the connection. */
		p->must_close = true;
		return true;
	}
	p->skip_left = n;
	p->state = P_SKIP_LITERAL;
	return false;
}

static enum imap_parse_result fail(struct imap_parser *p, enum imap_parse_result res,
				   const char *err, const char **tag_r, const char **error_r)
{
	*error_r = err;
	*tag_r = p->tag;
	cmd_reset(p);
	p->state = P_LINE;
	return res;
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, struct bu_arena *a,
					struct bu_buf *in, struct imap_command *cmd_r,
					const char **tag_r, const char **error_r)
{
	size_t pos = 0;
	enum imap_parse_result res = IMAP_PARSE_NEED_MORE;

	*tag_r = p->tag;
	*error_r = NULL;
	p->must_close = false;
	while (pos < in->len) {
		const uint8_t *d = in->data + pos;
		size_t avail = in->len - pos;

		if (p->state == P_LITERAL) {
			uint64_t want = p->lit_len - p->lit_got;
			size_t n = avail < want ? avail : (size_t)want;

			memcpy(p->lit + p->lit_got, d, n);
			p->lit_got += n;
			pos += n;
			if (p->lit_got < p->lit_len)
				break;
			p->state = P_LINE;
			continue;
		}
		if (p->state == P_SKIP_LITERAL) {
			size_t n = avail < p->skip_left ? avail : (size_t)p->skip_left;

			pos += n;
			p->skip_left -= n;
			if (p->skip_left > 0)
				break;
			p->state = P_SKIP;
			p->tail_len = 0;
			continue;
		}
		if (p->state == P_SKIP) {
			const uint8_t *lf = memchr(d, '\n', avail);
			size_t n = lf != NULL ? (size_t)(lf - d) : avail;

			tail_add(p, d, n);
			pos += n;
			if (lf == NULL)
				break;
			pos++; /* LF */
			p->state = P_LINE;
			if (start_skip_literal(p, p->tail, p->tail_len)) {
				res = p->pending;
				*error_r = p->pending_err;
				*tag_r = p->tag;
				cmd_reset(p);
				p->state = P_LINE;
				goto out;
			}
			continue;
		}
		/* P_LINE */
		{
			const uint8_t *lf = memchr(d, '\n', avail);
			size_t n = lf != NULL ? (size_t)(lf - d) : avail;
			enum seg_result r;
			const char *err = NULL;

			if (p->line_total + p->seg.len + n > p->max_line) {
				/* too long: skip the rest of the line */
				size_t used = p->seg.len < TAIL_MAX ? p->seg.len : TAIL_MAX;

				p->tail_len = 0;
				if (used > 0)
					tail_add(p, p->seg.data + p->seg.len - used, used);
				if (!p->have_name) {
					size_t more = n < 256 ? n : 256;

					bu_buf_append(&p->seg, d, more);
					tag_from_prefix(p, a);
				}
				seg_wipe(p);
				p->pending = IMAP_PARSE_TOOBIG;
				p->pending_err = "Command line too long";
				p->state = P_SKIP;
				continue;
			}
			bu_buf_append(&p->seg, d, n);
			pos += n;
			if (lf == NULL)
				break;
			pos++;
			p->line_total += p->seg.len + 1;
			if (p->seg.len > 0 && p->seg.data[p->seg.len - 1] == '\r')
				p->seg.len--;
			if (p->seg.len == 0 && !p->have_name) {
				/* empty line between commands: ignore */
				p->line_total = 0;
				continue;
			}
			if (memchr(p->seg.data, '\0', p->seg.len) != NULL ||
			    memchr(p->seg.data, '\r', p->seg.len) != NULL) {
				r = SEG_ERROR;
				err = "Invalid character";
				if (!p->have_name)
					tag_from_prefix(p, a);
			} else {
				r = parse_segment(p, a, (const char *)p->seg.data, p->seg.len,
						  &err);
			}
			switch (r) {
			case SEG_DONE:
				fill_cmd(p, cmd_r);
				*tag_r = p->tag;
				cmd_reset(p);
				res = IMAP_PARSE_DONE;
				goto out;
			case SEG_LITERAL:
				seg_wipe(p);
				p->state = P_LITERAL;
				continue;
			case SEG_CONTINUE:
				seg_wipe(p);
				p->state = P_LITERAL;
				*tag_r = p->tag;
				res = IMAP_PARSE_CONTINUE;
				goto out;
			case SEG_TOOBIG:
				/* the literal announcement ended the line */
				res = fail(p, IMAP_PARSE_TOOBIG, err, tag_r, error_r);
				goto out;
			case SEG_ERROR:
				p->pending = IMAP_PARSE_ERROR;
				p->pending_err = err;
				if (start_skip_literal(p, (const char *)p->seg.data, p->seg.len)) {
					res = fail(p, IMAP_PARSE_ERROR, err, tag_r, error_r);
					goto out;
				}
				seg_wipe(p);
				continue;
			}
		}
	}
out:
	bu_buf_consume(in, pos);
	return res;
}

int imap_parser_read_line(struct bu_buf *in, struct bu_arena *a, size_t max, char **line_r)
{
	char *line;
	int ret = bu_buf_take_line(in, max, &line);

	if (ret <= 0)
		return ret == 0 ? 0 : -1;
	/* the line may be a SASL response carrying a password */
	*line_r = bu_arena_strdup(a, line);
	bu_wipe(line, strlen(line));
	free(line);
	return 1;
}

/* ---- sequence sets ---------------------------------------------------- */

/* number or '*' at s[*i] */
static int seq_number(const char *s, size_t *i, uint32_t star, uint32_t *n_r, bool *star_r)
{
	size_t st = *i;
	uint64_t v;

	if (s[st] == '*') {
		*n_r = star;
		*star_r = true;
		(*i)++;
		return 0;
	}
	while (s[*i] >= '0' && s[*i] <= '9')
		(*i)++;
	if (*i == st || bu_parse_u64(s + st, *i - st, UINT32_MAX, &v) < 0 || v == 0)
		return -1;
	*n_r = (uint32_t)v;
	*star_r = false;
	return 0;
}

static int range_cmp(const void *x, const void *y)
{
	const struct imap_range *a = x, *b = y;

	return a->lo < b->lo ? -1 : a->lo > b->lo ? 1 : 0;
}

int imap_seqset_ranges(struct bu_arena *a, const char *s, uint32_t star, struct imap_range **r_r,
		       size_t *n_r)
{
	size_t i = 0, n = 0, cap = 0, k, out;
	struct imap_range *r = NULL;

	if (s == NULL || *s == '\0')
		return -1;
	for (k = 0; s[k] != '\0'; k++) {
		if (s[k] == ',')
			cap++;
	}
	cap++;
	r = bu_arena_alloc(a, bu_size_mul(cap, sizeof(*r)));
	for (;;) {
		uint32_t lo, hi;
		bool lo_star, hi_star = false;

		if (seq_number(s, &i, star, &lo, &lo_star) < 0)
			return -1;
		hi = lo;
		if (s[i] == ':') {
			i++;
			if (seq_number(s, &i, star, &hi, &hi_star) < 0)
				return -1;
		}
		if (lo > hi) {
			uint32_t t = lo;
			bool ts = lo_star;

			lo = hi;
			hi = t;
			lo_star = hi_star;
			hi_star = ts;
		}
		/* RFC 3501 6.4.8: "n:*" always includes the largest number */
		if ((lo_star || hi_star) && lo > star)
			lo = hi = star;
		r[n].lo = lo;
		r[n].hi = hi;
		n++;
		if (s[i] == '\0')
			break;
		if (s[i] != ',')
			return -1;
		i++;
	}
	qsort(r, n, sizeof(*r), range_cmp);
	out = 0;
	for (k = 0; k < n; k++) {
		if (out > 0 && (uint64_t)r[k].lo <= (uint64_t)r[out - 1].hi + 1) {
			if (r[k].hi > r[out - 1].hi)
				r[out - 1].hi = r[k].hi;
			continue;
		}
		r[out++] = r[k];
	}
	*r_r = r;
	*n_r = out;
	return 0;
}

/* most numbers one set may expand to (256 MiB of uint32_t) */
#define SEQSET_MAX_EXPAND (64u * 1024 * 1024)

int imap_seqset_parse(struct bu_arena *a, const char *s, uint32_t star, uint32_t **nums_r,
		      size_t *n_r)
{
	struct imap_range *r;
	size_t n, k, total = 0, o = 0;
	uint32_t *nums;

	if (imap_seqset_ranges(a, s, star, &r, &n) < 0)
		return -1;
	for (k = 0; k < n; k++) {
		uint32_t hi = r[k].hi < star ? r[k].hi : star;

		if (r[k].lo == 0 || r[k].lo > hi)
			continue;
		total += (size_t)(hi - r[k].lo) + 1;
		if (total > SEQSET_MAX_EXPAND)
			return -1;
	}
	nums = bu_arena_alloc(a, bu_size_mul(total ? total : 1, sizeof(*nums)));
	for (k = 0; k < n; k++) {
		uint32_t hi = r[k].hi < star ? r[k].hi : star;
		uint64_t v;

		if (r[k].lo == 0 || r[k].lo > hi)
			continue;
		for (v = r[k].lo; v <= hi; v++)
			nums[o++] = (uint32_t)v;
	}
	*nums_r = nums;
	*n_r = o;
	return 0;
}

void imap_seqset_write(struct bu_buf *out, const uint32_t *nums, size_t n)
{
	size_t i = 0;
	bool first = true;

	while (i < n) {
		size_t j = i;

		while (j + 1 < n && nums[j + 1] == nums[j] + 1)
			j++;
		if (!first)
			bu_buf_append_byte(out, ',');
		first = false;
		if (j == i)
			bu_buf_printf(out, "%u", nums[i]);
		else
			bu_buf_printf(out, "%u:%u", nums[i], nums[j]);
		i = j + 1;
	}
}

/*
 * test_imap_parser.c - the IMAP command parser (protocols/imap/parser.c):
 * a table of inputs with the exact sequence of results each must give,
 * every one replayed whole, byte by byte and in odd chunks (proving the
 * parser resumes anywhere); limits (line, literal, arguments, nesting);
 * literals (synchronizing, LITERAL+, literal8, big ones streamed into the
 * arena); skipping bad lines; the line reader; sequence sets.
 */
#include "protocols/imap/imap.h"
#include "protocols/imap/imap_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static int checks;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		checks++;                                                                          \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		checks++;                                                                          \
		if (a_ == NULL || strcmp(a_, b_) != 0) {                                           \
			fprintf(stderr, "%s:%d: %s:\n  got  \"%s\"\n  want \"%s\"\n", __FILE__,    \
				__LINE__, #a, a_ ? a_ : "(null)", b_);                             \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

/* ---- rendering a parsed command --------------------------------------- */

static void render_args(struct bu_buf *o, const struct imap_arg *args, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct imap_arg *g = &args[i];

		if (i > 0)
			bu_buf_append_byte(o, ' ');
		switch (g->type) {
		case IMAP_ARG_ATOM:
			bu_buf_append(o, g->str, g->len);
			break;
		case IMAP_ARG_NIL:
			bu_buf_append_str(o, "<NIL>");
			break;
		case IMAP_ARG_STRING:
			bu_buf_printf(o, "\"");
			bu_buf_append(o, g->str, g->len);
			bu_buf_printf(o, "\"");
			break;
		case IMAP_ARG_LITERAL: {
			size_t k;

			bu_buf_printf(o, "%s{%zu}", g->literal8 ? "~" : "", g->len);
			for (k = 0; k < g->len; k++) {
				if (g->str[k] == '\0')
					bu_buf_append_str(o, "\\0");
				else
					bu_buf_append_byte(o, (uint8_t)g->str[k]);
			}
			CHECK(g->str[g->len] == '\0');
			break;
		}
		case IMAP_ARG_LIST:
			bu_buf_append_byte(o, '(');
			render_args(o, g->list, g->n_list);
			bu_buf_append_byte(o, ')');
			break;
		}
	}
}

struct limits {
	size_t max_line, max_literal, max_args;
};
static const struct limits deflt = { 1024, 1000, 1000 };

/* Feed `in` in chunks of `chunk` bytes (0 = all at once) and render every
 * result: "DONE tag NAME[ UID] args|", "+|", "ERR tag msg|", "BIG tag|"
 * ("BIG! tag" when the session must close). */
static char *run(const char *in, size_t len, size_t chunk, const struct limits *lim)
{
	struct imap_parser *p = imap_parser_create(lim->max_line, lim->max_literal, lim->max_args);
	struct bu_arena *a = bu_arena_create(0);
	struct bu_buf buf, o;
	size_t fed = 0;

	bu_buf_init(&buf, 0);
	bu_buf_init(&o, 0);
	if (chunk == 0)
		chunk = len;
	while (fed < len || buf.len > 0) {
		size_t n = len - fed < chunk ? len - fed : chunk;

		bu_buf_append(&buf, in + fed, n);
		fed += n;
		for (;;) {
			struct imap_command cmd;
			const char *tag = NULL, *err = NULL;
			enum imap_parse_result r;

			memset(&cmd, 0, sizeof(cmd));
			r = imap_parser_feed(p, a, &buf, &cmd, &tag, &err);
			if (r == IMAP_PARSE_NEED_MORE) {
				CHECK(buf.len == 0);
				break;
			}
			if (r == IMAP_PARSE_CONTINUE) {
				bu_buf_append_str(&o, "+|");
				continue;
			}
			if (r == IMAP_PARSE_DONE) {
				bu_buf_printf(&o, "DONE %s %s%s", cmd.tag, cmd.name,
					      cmd.uid ? " UID" : "");
				if (cmd.n_args > 0) {
					bu_buf_append_byte(&o, ' ');
					render_args(&o, cmd.args, cmd.n_args);
				}
				bu_buf_append_str(&o, "|");
			} else if (r == IMAP_PARSE_ERROR) {
				bu_buf_printf(&o, "ERR %s %s|", tag ? tag : "*", err ? err : "?");
			} else if (r == IMAP_PARSE_TOOBIG) {
				bu_buf_printf(&o, "BIG%s %s|", imap_parser_must_close(p) ? "!" : "",
					      tag ? tag : "*");
				if (imap_parser_must_close(p)) {
					bu_buf_reset(&buf);
					fed = len;
					break;
				}
			}
			imap_parser_reset(p);
			bu_arena_reset(a);
		}
		if (fed >= len && buf.len == 0)
			break;
	}
	{
		char *r = bu_strndup(bu_buf_cstr(&o), o.len);

		bu_buf_deinit(&buf);
		bu_buf_deinit(&o);
		bu_arena_destroy(&a);
		imap_parser_destroy(&p);
		return r;
	}
}

struct pcase {
	const char *in;
	size_t len; /* 0 = strlen */
	const char *want;
	const struct limits *lim;
};

static const struct limits small_line = { 64, 1000, 1000 };
static const struct limits small_lit = { 1024, 10, 1000 };
static const struct limits few_args = { 1024, 1000, 5 };

static const struct pcase cases[] = {
	{ "a1 NOOP\r\n", 0, "DONE a1 NOOP|", NULL },
	{ "a1 noop\r\n", 0, "DONE a1 NOOP|", NULL },
	{ "a1 NOOP \r\n", 0, "DONE a1 NOOP|", NULL },
	{ "a1 NOOP\n", 0, "DONE a1 NOOP|", NULL },
	{ "\r\n\r\na1 NOOP\r\n", 0, "DONE a1 NOOP|", NULL },
	{ "a1 NOOP\r\na2 CAPABILITY\r\n", 0, "DONE a1 NOOP|DONE a2 CAPABILITY|", NULL },
	{ "a2 login alice \"pa ss\\\"\\\\\"\r\n", 0, "DONE a2 LOGIN alice \"pa ss\"\\\"|", NULL },
	{ "a3 UID fetch 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n", 0,
	  "DONE a3 FETCH UID 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)|", NULL },
	{ "a3 FETCH 1 BODY[HEADER.FIELDS (\"X]\" Y)]\r\n", 0,
	  "DONE a3 FETCH 1 BODY[HEADER.FIELDS (\"X]\" Y)]|", NULL },
	{ "a3 FETCH 1 (BODY[] BINARY.PEEK[1.2]<5.10>)\r\n", 0,
	  "DONE a3 FETCH 1 (BODY[] BINARY.PEEK[1.2]<5.10>)|", NULL },
	{ "a4 LOGIN {5}\r\nalice {3}\r\npwd\r\n", 0, "+|+|DONE a4 LOGIN {5}alice {3}pwd|", NULL },
	{ "a5 APPEND INBOX (\\Seen) {3+}\r\nabc\r\n", 0, "DONE a5 APPEND INBOX (\\Seen) {3}abc|",
	  NULL },
	{ "a6 APPEND INBOX ~{3}\r\na\0c\r\n", 27, "+|DONE a6 APPEND INBOX ~{3}a\\0c|", NULL },
	{ "a6 X {3}\r\nabc ({2+}\r\nde x)\r\n", 0, "+|DONE a6 X {3}abc ({2}de x)|", NULL },
	{ "a6 X {0}\r\n\r\n", 0, "+|DONE a6 X {0}|", NULL },
	{ "a6 X {2}\r\n\r\n\r\n", 0, "+|DONE a6 X {2}\r\n|", NULL },
	{ "a7 SEARCH OR (FROM x (TO y)) NOT nil\r\n", 0,
	  "DONE a7 SEARCH OR (FROM x (TO y)) NOT <NIL>|", NULL },
	{ "a7 LIST \"\" %/*\r\n", 0, "DONE a7 LIST \"\" %/*|", NULL },
	{ "a7 STORE 1 +FLAGS (\\Seen $Junk)\r\n", 0, "DONE a7 STORE 1 +FLAGS (\\Seen $Junk)|",
	  NULL },
	{ "a7 X ()\r\n", 0, "DONE a7 X ()|", NULL },
	{ "a7 X (())\r\n", 0, "DONE a7 X (())|", NULL },
	{ "a7 SELECT Gr&APw-\xc3\xbc\r\n", 0, "DONE a7 SELECT Gr&APw-\xc3\xbc|", NULL },
	{ "a8 UID EXPUNGE 1:3\r\n", 0, "DONE a8 EXPUNGE UID 1:3|", NULL },
	/* errors */
	{ "a10 NOOP (\r\na11 NOOP\r\n", 0, "ERR a10 Missing ')'|DONE a11 NOOP|", NULL },
	{ "a10 NOOP )\r\n", 0, "ERR a10 Unexpected ')'|", NULL },
	{ "a10 X \"abc\r\n", 0, "ERR a10 Missing '\"'|", NULL },
	{ "a10 X \"a\\b\"\r\n", 0, "ERR a10 Invalid escape in quoted string|", NULL },
	{ "a10 X {abc}\r\n", 0, "ERR a10 Invalid literal size|", NULL },
	{ "a10 X {3}x\r\n", 0, "ERR a10 Literal must end the line|", NULL },
	{ "a10 X {3\r\n", 0, "ERR a10 Invalid literal|", NULL },
	{ "a10\r\n", 0, "ERR a10 Missing command|", NULL },
	{ "a10 UID\r\n", 0, "ERR a10 Missing command|", NULL },
	{ "+ NOOP\r\n", 0, "ERR * Invalid tag|", NULL },
	{ " NOOP\r\n", 0, "ERR * Invalid tag|", NULL },
	{ "a(1 NOOP\r\n", 0, "ERR * Invalid tag|", NULL },
	{ "a10 NO(OP\r\n", 0, "ERR a10 Invalid command name|", NULL },
	{ "a10 X \"a\"\"b\"\r\n", 0, "ERR a10 Missing space|", NULL },
	{ "a10 X (a)(b)\r\n", 0, "ERR a10 Missing space|", NULL },
	{ "a10 X {1}\r\nab\r\n", 0, "+|ERR a10 Missing space|", NULL },
	{ "a10 X a\0b\r\na11 NOOP\r\n", 21, "ERR a10 Invalid character|DONE a11 NOOP|", NULL },
	{ "a10 X a\rb\r\n", 0, "ERR a10 Invalid character|", NULL },
	{ "a10 X a\tb\r\n", 0, "ERR a10 Invalid character|", NULL },
	{ "a10 X BODY[1\r\n", 0, "ERR a10 Missing ']'|", NULL },
	/* a bad line's non-synchronizing literal is skipped with it */
	{ "a17 X ) {5+}\r\nhello world\r\na18 NOOP\r\n", 0, "ERR a17 Unexpected ')'|DONE a18 NOOP|",
	  NULL },
	{ "a17 X ) {5+}\r\nhello {3+}\r\nabc\r\na18 NOOP\r\n", 0,
	  "ERR a17 Unexpected ')'|DONE a18 NOOP|", NULL },
	/* ... a synchronizing one ends the line (the client waits for "+") */
	{ "a19 X ) {5}\r\na20 NOOP\r\n", 0, "ERR a19 Unexpected ')'|DONE a20 NOOP|", NULL },
	/* limits */
	{ "a21 X xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
	  "a22 NOOP\r\n",
	  0, "BIG a21|DONE a22 NOOP|", &small_line },
	{ "a21 X {3}\r\nabc xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
	  "a22 NOOP\r\n",
	  0, "+|BIG a21|DONE a22 NOOP|", &small_line },
	{ "a21 X xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx {4+}\r\n"
	  "abcd\r\na22 NOOP\r\n",
	  0, "BIG a21|DONE a22 NOOP|", &small_line },
	{ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
	  "a22 NOOP\r\n",
	  0, "BIG *|DONE a22 NOOP|", &small_line },
	{ "a23 APPEND x {100}\r\na24 NOOP\r\n", 0, "BIG a23|DONE a24 NOOP|", &small_lit },
	{ "a23 APPEND x {10}\r\n0123456789\r\n", 0, "+|DONE a23 APPEND x {10}0123456789|",
	  &small_lit },
	{ "a23 APPEND x {100+}\r\nxxxx", 0, "BIG! a23|", &small_lit },
	{ "a23 APPEND x {99999999999999999999999}\r\na24 NOOP\r\n", 0, "BIG a23|DONE a24 NOOP|",
	  &small_lit },
	{ "a25 X 1 2 3 4 5\r\n", 0, "DONE a25 X 1 2 3 4 5|", &few_args },
	{ "a25 X 1 2 3 4 5 6\r\n", 0, "ERR a25 Too many arguments|", &few_args },
	{ "a25 X (1 2) (3 4)\r\n", 0, "ERR a25 Too many arguments|", &few_args },
};

static void test_table(void)
{
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(cases); i++) {
		const struct pcase *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		const struct limits *lim = c->lim ? c->lim : &deflt;
		size_t chunks[] = { 0, 1, 2, 3, 7 };
		size_t k;

		for (k = 0; k < BU_N_ELEMENTS(chunks); k++) {
			char *got = run(c->in, len, chunks[k], lim);

			checks++;
			if (strcmp(got, c->want) != 0) {
				fprintf(stderr,
					"case %zu (chunk %zu): input \"%s\"\n  got  \"%s\"\n  want \"%s\"\n",
					i, chunks[k], c->in, got, c->want);
				failures++;
			}
			free(got);
		}
	}
}

static void test_nesting(void)
{
	struct bu_buf in;
	char *got;
	int i;

	bu_buf_init(&in, 0);
	bu_buf_append_str(&in, "a1 X ");
	for (i = 0; i < 70; i++)
		bu_buf_append_byte(&in, '(');
	for (i = 0; i < 70; i++)
		bu_buf_append_byte(&in, ')');
	bu_buf_append_str(&in, "\r\na2 NOOP\r\n");
	got = run(bu_buf_cstr(&in), in.len, 0, &deflt);
	CHECK_STR(got, "ERR a1 Too deeply nested|DONE a2 NOOP|");
	free(got);
	bu_buf_deinit(&in);
}

/* A literal bigger than anything the connection buffers at once: fed in
 * 64 KiB pieces, it must come out intact and the input stays small. */
static void test_big_literal(void)
{
	const size_t size = 5 * 1024 * 1024 + 17;
	struct imap_parser *p = imap_parser_create(8192, 64 * 1024 * 1024, 1000);
	struct bu_arena *a = bu_arena_create(0);
	struct bu_buf in;
	struct imap_command cmd;
	const char *tag, *err;
	char head[64];
	size_t sent = 0;
	enum imap_parse_result r;
	bool ok = true;

	bu_buf_init(&in, 0);
	snprintf(head, sizeof(head), "A1 APPEND INBOX {%zu+}\r\n", size);
	bu_buf_append_str(&in, head);
	r = imap_parser_feed(p, a, &in, &cmd, &tag, &err);
	CHECK(r == IMAP_PARSE_NEED_MORE);
	while (sent < size) {
		uint8_t chunk[65536];
		size_t n = size - sent < sizeof(chunk) ? size - sent : sizeof(chunk), k;

		for (k = 0; k < n; k++)
			chunk[k] = (uint8_t)((sent + k) * 7);
		bu_buf_append(&in, chunk, n);
		sent += n;
		r = imap_parser_feed(p, a, &in, &cmd, &tag, &err);
		CHECK(r == IMAP_PARSE_NEED_MORE);
		CHECK(in.len == 0);
	}
	bu_buf_append_str(&in, " (\\Seen)\r\n");
	r = imap_parser_feed(p, a, &in, &cmd, &tag, &err);
	CHECK(r == IMAP_PARSE_DONE);
	if (r == IMAP_PARSE_DONE) {
		size_t k;

		CHECK(cmd.n_args == 3);
		CHECK(cmd.args[1].type == IMAP_ARG_LITERAL);
		CHECK(cmd.args[1].len == size);
		for (k = 0; k < size && ok; k++) {
			if ((uint8_t)cmd.args[1].str[k] != (uint8_t)(k * 7))
				ok = false;
		}
		CHECK(ok);
		CHECK(cmd.args[2].type == IMAP_ARG_LIST);
	}
	bu_buf_deinit(&in);
	bu_arena_destroy(&a);
	imap_parser_destroy(&p);
}

/* After login the session raises the literal limit. */
static void test_set_limits(void)
{
	struct imap_parser *p = imap_parser_create(1024, 10, 100);
	struct bu_arena *a = bu_arena_create(0);
	struct bu_buf in;
	struct imap_command cmd;
	const char *tag, *err;

	bu_buf_init(&in, 0);
	bu_buf_append_str(&in, "a X {20}\r\n");
	CHECK(imap_parser_feed(p, a, &in, &cmd, &tag, &err) == IMAP_PARSE_TOOBIG);
	imap_parser_reset(p);
	imap_parser_set_limits(p, 0, 100);
	bu_buf_append_str(&in, "a X {20}\r\n");
	CHECK(imap_parser_feed(p, a, &in, &cmd, &tag, &err) == IMAP_PARSE_CONTINUE);
	bu_buf_deinit(&in);
	bu_arena_destroy(&a);
	imap_parser_destroy(&p);
}

static void test_read_line(void)
{
	struct bu_arena *a = bu_arena_create(0);
	struct bu_buf in;
	char *line = NULL;

	bu_buf_init(&in, 0);
	bu_buf_append_str(&in, "DO");
	CHECK(imap_parser_read_line(&in, a, 100, &line) == 0);
	bu_buf_append_str(&in, "NE\r\nrest");
	CHECK(imap_parser_read_line(&in, a, 100, &line) == 1);
	CHECK_STR(line, "DONE");
	CHECK(in.len == 4);
	CHECK(imap_parser_read_line(&in, a, 100, &line) == 0);
	bu_buf_append_str(&in, "\n");
	CHECK(imap_parser_read_line(&in, a, 100, &line) == 1);
	CHECK_STR(line, "rest");
	bu_buf_append_str(&in, "0123456789\r\nx\r\n");
	CHECK(imap_parser_read_line(&in, a, 5, &line) == -1);
	CHECK(imap_parser_read_line(&in, a, 5, &line) == 1);
	CHECK_STR(line, "x");
	bu_buf_append_str(&in, "0123456789");
	CHECK(imap_parser_read_line(&in, a, 5, &line) == -1);
	CHECK(in.len == 0);
	bu_buf_deinit(&in);
	bu_arena_destroy(&a);
}

static char *seqstr(struct bu_arena *a, const char *set, uint32_t star)
{
	uint32_t *nums;
	size_t n;
	struct bu_buf b;
	char *r;

	if (imap_seqset_parse(a, set, star, &nums, &n) < 0)
		return bu_arena_strdup(a, "ERR");
	bu_buf_init(&b, 0);
	imap_seqset_write(&b, nums, n);
	r = bu_arena_strdup(a, bu_buf_cstr(&b));
	bu_buf_deinit(&b);
	return r;
}

static void test_seqset(void)
{
	struct bu_arena *a = bu_arena_create(0);
	struct imap_range *r;
	size_t n;

	CHECK_STR(seqstr(a, "1:3,5,7:*", 9), "1:3,5,7:9");
	CHECK_STR(seqstr(a, "*", 9), "9");
	CHECK_STR(seqstr(a, "3:1", 9), "1:3");
	CHECK_STR(seqstr(a, "5,1,3,2,4", 9), "1:5");
	CHECK_STR(seqstr(a, "1:4,3:6", 9), "1:6");
	CHECK_STR(seqstr(a, "*:4", 9), "4:9");
	/* numbers past '*' do not exist; "n:*" still contains '*' */
	CHECK_STR(seqstr(a, "20", 9), "");
	CHECK_STR(seqstr(a, "20:*", 9), "9");
	CHECK_STR(seqstr(a, "1:*", 0), "");
	CHECK_STR(seqstr(a, "4294967295", 9), "");
	CHECK_STR(seqstr(a, "0", 9), "ERR");
	CHECK_STR(seqstr(a, "", 9), "ERR");
	CHECK_STR(seqstr(a, "1,", 9), "ERR");
	CHECK_STR(seqstr(a, ",1", 9), "ERR");
	CHECK_STR(seqstr(a, "1::2", 9), "ERR");
	CHECK_STR(seqstr(a, "a", 9), "ERR");
	CHECK_STR(seqstr(a, "4294967296", 9), "ERR");
	CHECK_STR(seqstr(a, "$", 9), "ERR");
	CHECK_STR(seqstr(a, "1 2", 9), "ERR");
	/* ranges are not expanded */
	CHECK(imap_seqset_ranges(a, "1:4294967295,7", 100, &r, &n) == 0);
	CHECK(n == 1 && r[0].lo == 1 && r[0].hi == 4294967295u);
	CHECK(imap_seqset_ranges(a, "9,1:2,4:5,3", 100, &r, &n) == 0);
	CHECK(n == 2 && r[0].lo == 1 && r[0].hi == 5 && r[1].lo == 9 && r[1].hi == 9);
	bu_arena_destroy(&a);
}

int main(void)
{
	test_table();
	test_nesting();
	test_big_literal();
	test_set_limits();
	test_read_line();
	test_seqset();
	printf("%d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}

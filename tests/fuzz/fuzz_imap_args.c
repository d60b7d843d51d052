/*
 * fuzz_imap_args.c - libFuzzer target for the IMAP FETCH and SEARCH
 * argument parsers (protocols/imap/fetch_parse.c, search_parse.c).
 *
 * The first input byte picks the command: bit 0 FETCH or SEARCH, bit 1
 * flips the UID prefix (so the default pair is "FETCH 1:* " and
 * "UID SEARCH "), bit 2 the binary flag of the direct section parse. The
 * rest is appended to "A1 <command> " plus CRLF and goes through the real
 * command parser (parser.c, literals included); the parsed arguments then
 * go to imap_fetch_parse or RETURN/CHARSET/keys as cmd_fetch.c and
 * cmd_search.c call them, against a fake selected mailbox with a few UIDs
 * (no database, no network). Every body section parsed is resolved with
 * imap_section_bytes() against a small fixed MIME message, every string
 * argument goes through the date and date-time parsers (a parsed
 * date-time must survive imap_write_datetime and back), and the raw input
 * goes through imap_fetch_section_parse() directly too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/mailstore.h"
#include "groupware/mime.h"
#include "protocols/imap/fetch.h"
#include "protocols/imap/imap.h"
#include "protocols/imap/imap_int.h"
#include "protocols/imap/search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a message with nested parts: 1, 2 (message/rfc822 with 2.1, 2.2), 3 */
static const char fixed_msg[] =
	"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.org\r\n"
	"Subject: fuzz\r\n"
	"List-Id: dev <dev.example.org>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--outer\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"first part\r\n"
	"--outer\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: carol@example.org\r\n"
	"Subject: inner\r\n"
	"Content-Type: multipart/alternative; boundary=inner\r\n"
	"\r\n"
	"--inner\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"plain\r\n"
	"--inner\r\n"
	"Content-Type: text/html\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"PGI+aHRtbDwvYj4=\r\n"
	"--inner--\r\n"
	"--outer\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-Disposition: attachment; filename=a.bin\r\n"
	"\r\n"
	"AAECAwQF\r\n"
	"--outer--\r\n";

static struct bu_arena *msg_arena;
static struct mime_part *msg_root;

/* The fake selected mailbox: UIDs with gaps, some \Recent, a saved "$". */
static uint32_t mb_uids[] = { 3, 5, 7, 8, 20, 21, 100, 4000000000u };
static uint32_t mb_recent[] = { 21, 100 };
static uint32_t mb_searchres[] = { 5, 8, 99 };

static void setup(void)
{
	if (msg_root != NULL)
		return;
	msg_arena = bu_arena_create(0);
	msg_root = mime_parse(msg_arena, (const uint8_t *)fixed_msg, sizeof(fixed_msg) - 1);
	bu_assert(msg_root != NULL);
}

/* imap_section_bytes on the fixed message: the result lies in the message
 * or in tmp */
static void check_section(const struct fetch_section *sect)
{
	const uint8_t *raw = (const uint8_t *)fixed_msg, *p;
	size_t len = sizeof(fixed_msg) - 1, n, i;
	struct bu_buf tmp;
	int r;

	bu_assert(sect->path != NULL);
	if (sect->kind == FS_HEADER_FIELDS || sect->kind == FS_HEADER_FIELDS_NOT) {
		bu_assert(sect->n_fields > 0 && sect->fields != NULL);
		/* a quoted name may hold any byte, NUL included, so a name
		 * can come out empty: only presence is checked */
		for (i = 0; i < sect->n_fields; i++)
			bu_assert(sect->fields[i] != NULL);
		bu_assert(sect->fields[sect->n_fields] == NULL);
	}
	bu_buf_init(&tmp, 0);
	r = imap_section_bytes(msg_root, raw, len, sect, &tmp, &p, &n);
	bu_assert(r == 0 || r == 1);
	if (r == 1) {
		bool in_raw = p >= raw && p <= raw + len && n <= (size_t)(raw + len - p);
		bool in_tmp = tmp.data != NULL && p >= tmp.data && p <= tmp.data + tmp.len &&
			      n <= (size_t)(tmp.data + tmp.len - p);

		bu_assert(in_raw || in_tmp || n == 0);
		/* touch every byte so ASan sees a bad range */
		{
			volatile uint8_t sum = 0;

			for (i = 0; i < n; i++)
				sum ^= p[i];
			(void)sum;
		}
	}
	bu_buf_deinit(&tmp);
}

/* date and date-time parsers on one NUL-terminated string */
static void check_dates(const char *s)
{
	static int64_t t_min = 0, t_max = 0;
	int64_t t;

	if (t_max == 0) {
		t_min = imap_parse_datetime("01-Jan-0001 00:00:00 +0000");
		t_max = imap_parse_datetime("31-Dec-9999 23:59:59 +0000");
		bu_assert(t_min != -1 && t_max != -1 && t_min < t_max);
	}
	t = imap_parse_date(s);
	bu_assert(t == -1 || t % 86400 == 0);
	t = imap_parse_datetime(s);
	if (t != -1 && t >= t_min && t <= t_max) {
		struct bu_buf b;
		char *back;

		/* what INTERNALDATE writes parses back to the same instant */
		bu_buf_init(&b, 0);
		imap_write_datetime(&b, t);
		bu_assert(b.len >= 2 && b.data[0] == '"' && b.data[b.len - 1] == '"');
		back = bu_malloc(b.len - 1);
		memcpy(back, b.data + 1, b.len - 2);
		back[b.len - 2] = '\0';
		bu_assert(imap_parse_datetime(back) == t);
		bu_free(&back);
		bu_buf_deinit(&b);
	}
}

static void walk_strings(const struct imap_arg *args, size_t n, unsigned depth)
{
	size_t i;

	bu_assert(depth < 1000);
	for (i = 0; i < n; i++) {
		if (args[i].type == IMAP_ARG_LIST)
			walk_strings(args[i].list, args[i].n_list, depth + 1);
		else
			check_dates(args[i].str);
	}
}

/* every UID set in the tree is ascending */
static void walk_search(const struct ms_search *q, unsigned depth)
{
	size_t i;

	bu_assert(q != NULL && depth < 1000);
	switch (q->op) {
	case MSS_AND:
		bu_assert(q->n_kids == 0 || q->kids != NULL);
		break;
	case MSS_OR:
		bu_assert(q->n_kids == 2 && q->kids != NULL);
		break;
	case MSS_NOT:
		bu_assert(q->n_kids == 1 && q->kids != NULL);
		break;
	case MSS_UIDSET:
		bu_assert(q->n_uids == 0 || q->uids != NULL);
		for (i = 1; i < q->n_uids; i++)
			bu_assert(q->uids[i - 1] < q->uids[i]);
		break;
	default:
		break;
	}
	if (q->op == MSS_AND || q->op == MSS_OR || q->op == MSS_NOT) {
		for (i = 0; i < q->n_kids; i++)
			walk_search(&q->kids[i], depth + 1);
	}
}

static void run_fetch(struct imap_cmd *cmd)
{
	struct fetch_req req;
	const char *err = NULL;
	uint32_t *uids;
	size_t n, i;

	/* as imap_cmd_fetch */
	if (cmd->n_args < 2 || cmd->n_args > 3 || cmd->args[0].type != IMAP_ARG_ATOM)
		return;
	(void)imap_mailbox_set_uids(cmd, cmd->args[0].str, cmd->uid, &uids, &n);
	if (imap_fetch_parse(cmd->a, &cmd->args[1], cmd->n_args == 3 ? &cmd->args[2] : NULL,
			     &req, &err) < 0) {
		bu_assert(err != NULL);
		return;
	}
	bu_assert(req.n_bodies == 0 || req.bodies != NULL);
	bu_assert(req.changedsince >= -1);
	bu_assert(!req.vanished || req.changedsince >= 0);
	for (i = 0; i < req.n_bodies; i++) {
		const struct fetch_body *b = &req.bodies[i];

		bu_assert(b->label != NULL);
		bu_assert(!b->partial || b->count > 0);
		if (b->kind == FB_BINARY || b->kind == FB_BINARY_SIZE)
			bu_assert(b->sect.kind == FS_PART);
		check_section(&b->sect);
	}
}

static void run_search(struct imap_cmd *cmd)
{
	struct search_req req;
	const char *err = NULL;
	size_t i = 0;
	int cs;

	/* as imap_cmd_search */
	memset(&req, 0, sizeof(req));
	if (imap_search_return_parse(cmd->args, cmd->n_args, &i, &req, &err) < 0) {
		bu_assert(err != NULL);
		return;
	}
	bu_assert(i <= cmd->n_args);
	cs = imap_search_charset(cmd->args, cmd->n_args, &i, false, &err);
	bu_assert(cs >= -1 && cs <= 1);
	if (cs <= 0) {
		bu_assert(cs == 0 || err != NULL);
		return;
	}
	bu_assert(i <= cmd->n_args);
	err = NULL;
	/* no arguments at all: args is NULL, and NULL + 0 is undefined */
	if (imap_search_keys_parse(cmd, i < cmd->n_args ? cmd->args + i : cmd->args,
				   cmd->n_args - i, &req, &err) < 0) {
		bu_assert(err != NULL);
		return;
	}
	walk_search(req.q, 0);
}

/* section specs straight from the input, with the ']' that follows them
 * in a real command */
static void run_section_direct(struct bu_arena *a, const uint8_t *data, size_t size, bool binary)
{
	struct fetch_section sect;
	char *s = bu_arena_alloc(a, size + 2);

	memcpy(s, data, size);
	s[size] = ']';
	s[size + 1] = '\0';
	if (imap_fetch_section_parse(a, s, size, binary, &sect) == 0) {
		if (binary)
			bu_assert(sect.kind == FS_PART);
		check_section(&sect);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefixes[4] = {
		"A1 FETCH 1:* ", "A1 UID SEARCH ", "A1 UID FETCH 1:* ", "A1 SEARCH ",
	};
	struct imap_sess x;
	struct imap_mailbox mb;
	struct imap_parser *p;
	struct bu_arena *a;
	struct bu_buf in;
	unsigned mode;

	if (size < 1)
		return 0;
	setup();
	mode = data[0];
	data++;
	size--;

	memset(&mb, 0, sizeof(mb));
	mb.arena = bu_arena_create(0);
	mb.owner_id = 1;
	mb.collection_id = 2;
	mb.name = (char *)"INBOX";
	mb.uidvalidity = 1;
	mb.uidnext = 4000000001u;
	mb.highestmodseq = 10;
	mb.uids = mb_uids;
	mb.n = mb.cap = BU_N_ELEMENTS(mb_uids);
	mb.recent = mb_recent;
	mb.n_recent = BU_N_ELEMENTS(mb_recent);
	mb.searchres = mb_searchres;
	mb.n_searchres = BU_N_ELEMENTS(mb_searchres);
	memset(&x, 0, sizeof(x));
	x.pub.state = IMAP_STATE_SELECTED;
	x.pub.sel = &mb;
	x.pub.condstore = true;

	a = bu_arena_create(0);
	run_section_direct(a, data, size, (mode & 4) != 0);

	p = imap_parser_create(64 * 1024, 64 * 1024, 10000);
	bu_buf_init(&in, 0);
	bu_buf_append(&in, prefixes[mode & 3], strlen(prefixes[mode & 3]));
	bu_buf_append(&in, data, size);
	bu_buf_append(&in, "\r\n", 2);
	for (;;) {
		struct imap_command c;
		const char *tag = NULL, *err = NULL;
		enum imap_parse_result r;

		memset(&c, 0, sizeof(c));
		r = imap_parser_feed(p, a, &in, &c, &tag, &err);
		if (r == IMAP_PARSE_CONTINUE)
			continue;
		if (r == IMAP_PARSE_DONE) {
			struct imap_cmd cmd;

			bu_assert(c.tag != NULL && c.name != NULL);
			memset(&cmd, 0, sizeof(cmd));
			cmd.s = &x.pub;
			cmd.a = a;
			cmd.tag = c.tag;
			cmd.name = c.name;
			cmd.uid = c.uid;
			cmd.args = c.args;
			cmd.n_args = c.n_args;
			bu_buf_init(&cmd.out, 0);
			walk_strings(c.args, c.n_args, 0);
			if (strcmp(c.name, "FETCH") == 0)
				run_fetch(&cmd);
			else if (strcmp(c.name, "SEARCH") == 0)
				run_search(&cmd);
			bu_buf_deinit(&cmd.out);
		}
		/* only the first command carries the prefix */
		break;
	}
	bu_buf_deinit(&in);
	imap_parser_destroy(&p);
	bu_arena_destroy(&a);
	bu_arena_destroy(&mb.arena);
	return 0;
}

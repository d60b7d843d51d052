/*
 * fuzz_imap_parser.c - libFuzzer target for the IMAP command parser
 * (protocols/imap/parser.c), sequence sets and modified UTF-7.
 *
 * The input is fed to one parser in chunks whose sizes come from the
 * input itself (so resumption at every offset gets exercised), with small
 * limits so that the line, literal and argument limits are hit often.
 * Every parsed command is walked (all strings must be NUL-terminated at
 * their length), its atoms go through the sequence-set parser and its
 * strings through the modified UTF-7 decoder and back.
 */
#include <stdint.h>
#include <string.h>

#include "protocols/imap/imap.h"
#include "protocols/imap/imap_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(struct bu_arena *a, const struct imap_arg *args, size_t n, unsigned depth)
{
	size_t i;

	bu_assert(depth < 100);
	for (i = 0; i < n; i++) {
		const struct imap_arg *g = &args[i];

		if (g->type == IMAP_ARG_LIST) {
			bu_assert(g->n_list == 0 || g->list != NULL);
			walk(a, g->list, g->n_list, depth + 1);
			continue;
		}
		bu_assert(g->str != NULL && g->str[g->len] == '\0');
		if (g->type == IMAP_ARG_ATOM) {
			uint32_t *nums;
			size_t nn;
			struct imap_range *r;
			size_t nr;

			(void)imap_seqset_parse(a, g->str, 1000, &nums, &nn);
			(void)imap_seqset_ranges(a, g->str, 4000000000u, &r, &nr);
		}
		if (strlen(g->str) == g->len) {
			char *u8 = imap_utf7_to_utf8(a, g->str);
			char *u7 = imap_utf8_to_utf7(a, g->str);

			if (u8 != NULL) {
				char *back = imap_utf8_to_utf7(a, u8);

				/* canonical mUTF-7 round-trips exactly */
				bu_assert(back != NULL && strcmp(back, g->str) == 0);
			}
			if (u7 != NULL) {
				char *back = imap_utf7_to_utf8(a, u7);

				bu_assert(back != NULL && strcmp(back, g->str) == 0);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *p;
	struct bu_arena *a;
	struct bu_buf in;
	size_t pos = 0, step = 1;

	if (size < 1)
		return 0;
	a = bu_arena_create(0);
	/* first byte picks the chunking */
	step = (size_t)(data[0] % 17) + 1;
	data++;
	size--;
	p = imap_parser_create(256, 200, 64);
	bu_buf_init(&in, 0);
	while (pos < size) {
		size_t n = size - pos < step ? size - pos : step;

		bu_buf_append(&in, data + pos, n);
		pos += n;
		for (;;) {
			struct imap_command cmd;
			const char *tag = NULL, *err = NULL;
			enum imap_parse_result r;

			memset(&cmd, 0, sizeof(cmd));
			r = imap_parser_feed(p, a, &in, &cmd, &tag, &err);
			if (r == IMAP_PARSE_NEED_MORE) {
				bu_assert(in.len == 0);
				break;
			}
			if (r == IMAP_PARSE_CONTINUE)
				continue;
			if (r == IMAP_PARSE_DONE) {
				bu_assert(cmd.tag != NULL && cmd.name != NULL);
				walk(a, cmd.args, cmd.n_args, 0);
			} else {
				bu_assert(err != NULL);
				if (r == IMAP_PARSE_TOOBIG && imap_parser_must_close(p)) {
					bu_buf_reset(&in);
					pos = size;
					break;
				}
			}
			imap_parser_reset(p);
			bu_arena_reset(a);
		}
	}
	{
		/* the line reader on the raw input */
		struct bu_buf l;
		char *line;

		bu_buf_init(&l, 0);
		bu_buf_append(&l, data, size);
		while (imap_parser_read_line(&l, a, 64, &line) != 0)
			;
		bu_buf_deinit(&l);
	}
	bu_buf_deinit(&in);
	imap_parser_destroy(&p);
	bu_arena_destroy(&a);
	return 0;
}

/*
 * fuzz_mime.c - libFuzzer target for the MIME parser.
 *
 * The input is parsed as a message: the tree must satisfy its invariants
 * (root covers the input, children inside their parent, offsets in
 * bounds), serialize and deserialize back to the same bytes, and every
 * consumer (summary, search text, section lookup, header filter, body
 * decoding) must run cleanly. The same bytes are also fed to
 * mime_deserialize (garbage must give NULL or a consistent tree) and, as
 * a header value, to the RFC 2047, address, date and base subject code.
 *
 * Seeds: tests/fuzz/corpus/mime, dictionary: tests/fuzz/mime.dict.
 */
#include "groupware/mime.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_part(const struct mime_part *p, size_t lo, size_t hi, unsigned depth)
{
	size_t i;

	bu_assert(depth < MIME_MAX_DEPTH);
	bu_assert(p->hdr_off >= lo && p->body_off == p->hdr_off + p->hdr_len);
	bu_assert(p->body_off + p->body_len <= hi);
	bu_assert(p->type != NULL && p->subtype != NULL && p->encoding != NULL);
	bu_assert((strcmp(p->type, "multipart") == 0) == (p->n_children > 0));
	for (i = 0; i < p->n_children; i++)
		check_part(&p->children[i], p->body_off, p->body_off + p->body_len, depth + 1);
	if (p->message != NULL) {
		bu_assert(p->message->envelope != NULL);
		bu_assert(p->message->hdr_off == p->body_off);
		bu_assert(p->message->body_off + p->message->body_len == p->body_off + p->body_len);
		check_part(p->message, p->body_off, p->body_off + p->body_len, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const sections[] = { "", "1", "2", "1.1", "1.2", "2.1", "1.1.1", "2.2.1", "3" };
	static const char *const names[] = { "subject", "Content-Type", "x" };
	struct bu_arena *a = bu_arena_create(0);
	struct mime_part *root, *t;
	struct mime_summary sum;
	struct bu_buf b;
	char *s1, *s2, *str;
	size_t l1, l2, i, vlen;
	struct mime_address *addrs;

	root = mime_parse(a, data, size);
	bu_assert(root->hdr_off == 0 && root->body_off + root->body_len == size);
	bu_assert(root->envelope != NULL);
	check_part(root, 0, size, 0);

	s1 = mime_serialize(a, root, &l1);
	bu_assert(memchr(s1, '\0', l1) == NULL);
	t = mime_deserialize(a, s1, l1);
	bu_assert(t != NULL);
	s2 = mime_serialize(a, t, &l2);
	bu_assert(l1 == l2 && memcmp(s1, s2, l1) == 0);

	mime_summarize(a, root, data, size, &sum);
	bu_assert(sum.preview != NULL && sum.base_subject != NULL);
	bu_buf_init(&b, 1 << 20);
	mime_search_text(&b, root, data, size, true, true);
	bu_assert(memchr(bu_buf_cstr(&b), '\0', b.len) == NULL);
	bu_buf_reset(&b);
	for (i = 0; i < BU_N_ELEMENTS(sections); i++) {
		const struct mime_part *p = mime_find_part(root, sections[i]);
		const struct mime_part *q = mime_find_part(t, sections[i]);

		bu_assert((p == NULL) == (q == NULL));
		if (p == NULL)
			continue;
		bu_assert(q->body_off == p->body_off && q->body_len == p->body_len);
		mime_decode_body(&b, p, data, size, true);
		bu_buf_reset(&b);
		mime_header_filter(&b, data + p->hdr_off, p->hdr_len, names, 2, i % 2 == 0);
		bu_assert(b.len >= 2 && memcmp(b.data + b.len - 2, "\r\n", 2) == 0);
		bu_buf_reset(&b);
	}
	(void)mime_header_get(a, data, size, "subject");
	bu_buf_deinit(&b);

	/* the input as a serialized tree */
	t = mime_deserialize(a, (const char *)data, size);
	if (t != NULL) {
		check_part(t, 0, (size_t)-1, 0);
		s2 = mime_serialize(a, t, &l2);
		(void)mime_deserialize(a, s2, l2);
		(void)mime_find_part(t, "1.2");
	}

	/* the input as a header value */
	vlen = size < 4096 ? size : 4096;
	str = bu_arena_strndup(a, (const char *)data, vlen);
	(void)mime_decode_words(a, str);
	(void)mime_parse_addresses(a, str, &addrs);
	(void)mime_parse_date(str);
	(void)mime_base_subject(a, str);

	bu_arena_destroy(&a);
	return 0;
}

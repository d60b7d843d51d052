/*
 * test_imap_utf7.c - modified UTF-7 mailbox names (protocols/imap/utf7.c):
 * the RFC 3501 example, names real clients create, both directions, round
 * trips, and inputs that must be refused (non-canonical or malformed
 * mUTF-7, malformed UTF-8).
 */
#include "protocols/imap/imap.h"

#include <stdio.h>
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
			fprintf(stderr, "%s:%d: %s: got \"%s\", want \"%s\"\n", __FILE__,          \
				__LINE__, #a, a_ ? a_ : "(null)", b_);                             \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

struct pair {
	const char *utf8, *utf7;
};

static const struct pair pairs[] = {
	{ "INBOX", "INBOX" },
	{ "", "" },
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	  "~peter/mail/&U,BTFw-/&ZeVnLIqe-" }, /* RFC 3501 5.1.3 */
	{ "\xe2\x98\xba!", "&Jjo-!" },
	{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
	{ "\xf0\x9f\x98\x80", "&2D3eAA-" }, /* surrogate pair */
	{ "a&b", "a&-b" },
	{ "&", "&-" },
	{ "&&", "&-&-" },
	{ "\xc3\xa9&\xc3\xa9", "&AOk-&-&AOk-" },
	{ "\xd0\x9a\xd0\xbe\xd1\x80\xd0\xb7\xd0\xb8\xd0\xbd\xd0\xb0", "&BBoEPgRABDcEOAQ9BDA-" },
	{ "\xc3\xa9t\xc3\xa9", "&AOk-t&AOk-" },
	{ "x\xc3\xa9\xf0\x9f\x98\x80y", "x&AOnYPd4A-y" },
	{ "Gesendete Objekte", "Gesendete Objekte" },
	{ "a-b+c,d", "a-b+c,d" },
};

static void test_pairs(void)
{
	struct bu_arena *a = bu_arena_create(0);
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(pairs); i++) {
		char *u7 = imap_utf8_to_utf7(a, pairs[i].utf8);
		char *u8 = imap_utf7_to_utf8(a, pairs[i].utf7);

		CHECK_STR(u7, pairs[i].utf7);
		CHECK_STR(u8, pairs[i].utf8);
		/* round trips */
		if (u7 != NULL)
			CHECK_STR(imap_utf7_to_utf8(a, u7), pairs[i].utf8);
	}
	bu_arena_destroy(&a);
}

static const char *const bad_utf7[] = {
	"&",		   /* unterminated */
	"&Jjo",		   /* unterminated */
	"a&Jjo!",	   /* '!' is not base64 */
	"&AEE-",	   /* encodes 'A': must be written as itself */
	"&ACY-",	   /* encodes '&': must be "&-" */
	"&2D0-",	   /* lone high surrogate */
	"&3gA-",	   /* lone low surrogate */
	"&2D3YPQ-",	   /* high surrogate followed by high surrogate */
	"&Jjp-",	   /* non-zero padding bits */
	"&AOkA-",	   /* six leftover bits */
	"&AOk=-",	   /* padding character */
	"&AO/-",	   /* '/' is not modified base64 */
	"&AAA-",	   /* NUL */
	"&AOk-&AOk-",	   /* two shifted sequences in a row: "&AOkA6Q-" */
	"&2D3eAAAA-",	   /* ... and a NUL after a surrogate pair */
	"Entw\xc3\xbcrfe", /* raw 8-bit */
	"a\tb",		   /* control character */
	"a\x7f",
};

static const char *const bad_utf8[] = {
	"\xc3",		    /* truncated */
	"\xc0\xaf",	    /* overlong */
	"\xe0\x80\xaf",	    /* overlong */
	"\xed\xa0\x80",	    /* surrogate */
	"\xf4\x90\x80\x80", /* above U+10FFFF */
	"\xff",
	"a\x80z",
};

static void test_bad(void)
{
	struct bu_arena *a = bu_arena_create(0);
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(bad_utf7); i++) {
		char *r = imap_utf7_to_utf8(a, bad_utf7[i]);

		checks++;
		if (r != NULL) {
			fprintf(stderr, "utf7 \"%s\" accepted as \"%s\"\n", bad_utf7[i], r);
			failures++;
		}
	}
	for (i = 0; i < BU_N_ELEMENTS(bad_utf8); i++)
		CHECK(imap_utf8_to_utf7(a, bad_utf8[i]) == NULL);
	bu_arena_destroy(&a);
}

/* every BMP code point outside printable ASCII and the surrogates, and a
 * spread of astral ones, survive a round trip */
static void test_all_code_points(void)
{
	struct bu_arena *a = bu_arena_create(0);
	uint32_t cp;
	unsigned bad = 0;

	for (cp = 1; cp <= 0x10ffff; cp += (cp < 0x10000 ? 1 : 97)) {
		char u8[8];
		char *u7, *back;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		if (cp < 0x80) {
			u8[0] = (char)cp;
			u8[1] = 0;
		} else if (cp < 0x800) {
			u8[0] = (char)(0xc0 | (cp >> 6));
			u8[1] = (char)(0x80 | (cp & 0x3f));
			u8[2] = 0;
		} else if (cp < 0x10000) {
			u8[0] = (char)(0xe0 | (cp >> 12));
			u8[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u8[2] = (char)(0x80 | (cp & 0x3f));
			u8[3] = 0;
		} else {
			u8[0] = (char)(0xf0 | (cp >> 18));
			u8[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			u8[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u8[3] = (char)(0x80 | (cp & 0x3f));
			u8[4] = 0;
		}
		/* three copies so the base64 state crosses unit boundaries */
		{
			char s[32];

			snprintf(s, sizeof(s), "%s%s%s", u8, u8, u8);
			u7 = imap_utf8_to_utf7(a, s);
			back = u7 ? imap_utf7_to_utf8(a, u7) : NULL;
			if (back == NULL || strcmp(back, s) != 0)
				bad++;
		}
		if ((cp & 0xfff) == 0)
			bu_arena_reset(a);
	}
	CHECK(bad == 0);
	bu_arena_destroy(&a);
}

int main(void)
{
	test_pairs();
	test_bad();
	test_all_code_points();
	printf("%d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}

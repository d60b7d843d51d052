/*
 * test_util.c - unit tests for server/core/util.c: allocation, arenas,
 * buffers, slices, string helpers, sanitising and the panic path.
 */
#include "server/core/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
static int checks;

/* Under AddressSanitizer, let a huge malloc return NULL so that the OOM
 * test sees our own abort path rather than the sanitizer's report. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

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
		if (strcmp(a_, b_) != 0) {                                                         \
			fprintf(stderr,                                                            \
				"%s:%d: CHECK_STR failed: %s: got \"%s\", "                        \
				"want \"%s\"\n",                                                   \
				__FILE__, __LINE__, #a, a_, b_);                                   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

/* ---- helpers: run fn in a child, report how it ended and its stderr ---- */

struct child_result {
	bool aborted;
	int exit_code; /* -1 unless it exited */
	char err[4096];
};

static void run_child(void (*fn)(void *), void *arg, struct child_result *res)
{
	int pfd[2];
	pid_t pid;
	int status;
	size_t got = 0;
	ssize_t r;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (pipe(pfd) < 0) {
		perror("pipe");
		exit(2);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		struct sigaction sa;

		/* no core dumps from the expected aborts */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGABRT, &sa, NULL);
		close(pfd[0]);
		dup2(pfd[1], STDERR_FILENO);
		fn(arg);
		_exit(0);
	}
	close(pfd[1]);
	while (got < sizeof(res->err) - 1 &&
	       (r = read(pfd[0], res->err + got, sizeof(res->err) - 1 - got)) > 0)
		got += (size_t)r;
	res->err[got] = '\0';
	close(pfd[0]);
	waitpid(pid, &status, 0);
	res->aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
	if (WIFEXITED(status))
		res->exit_code = WEXITSTATUS(status);
}

/* ---- allocation ------------------------------------------------------ */

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (c[i] != 0)
			return false;
	}
	return true;
}

static void test_alloc(void)
{
	char *p = bu_malloc(100);
	int *ints;
	char *s;

	CHECK(p != NULL && all_zero(p, 100));
	p = bu_realloc(p, 200000);
	CHECK(p != NULL && all_zero(p, 100));
	bu_free(&p);
	CHECK(p == NULL);
	bu_free(&p); /* accepts NULL */

	p = bu_malloc(0);
	CHECK(p != NULL);
	free(p);

	ints = bu_calloc(10, sizeof(int));
	CHECK(all_zero(ints, 10 * sizeof(int)));
	free(ints);

	s = bu_strdup("hello");
	CHECK_STR(s, "hello");
	free(s);
	s = bu_strndup("hello", 3);
	CHECK_STR(s, "hel");
	free(s);
	s = bu_strndup("hi", 10);
	CHECK_STR(s, "hi");
	free(s);
	s = bu_memdup("a\0b", 3);
	CHECK(memcmp(s, "a\0b", 3) == 0);
	free(s);
	s = bu_asprintf("%s-%d-%05.1f", "x", 42, 3.14159);
	CHECK_STR(s, "x-42-003.1");
	free(s);

	CHECK(bu_size_add(1, 2) == 3);
	CHECK(bu_size_mul(3, 5) == 15);
	CHECK(bu_size_add(SIZE_MAX - 1, 1) == SIZE_MAX);
	CHECK(bu_size_mul(SIZE_MAX, 0) == 0);
}

static void child_size_add(void *arg)
{
	(void)bu_size_add(SIZE_MAX, 1);
}

static void child_size_mul(void *arg)
{
	(void)bu_size_mul(SIZE_MAX / 2, 3);
}

static void child_calloc_overflow(void *arg)
{
	(void)bu_calloc(SIZE_MAX / 4, 8);
}

static void child_assert(void *arg)
{
	int x = 1;

	bu_assert(x == 2);
}

static void child_panic(void *arg)
{
	bu_panic("broken %s", "invariant\nwith newline");
}

static void child_oom(void *arg)
{
	(void)bu_malloc(SIZE_MAX / 2);
}

static void test_panics(void)
{
	struct child_result r;

	run_child(child_size_add, NULL, &r);
	CHECK(r.aborted);
	CHECK(strstr(r.err, "size overflow") != NULL);

	run_child(child_size_mul, NULL, &r);
	CHECK(r.aborted);

	run_child(child_calloc_overflow, NULL, &r);
	CHECK(r.aborted);

	run_child(child_assert, NULL, &r);
	CHECK(r.aborted);
	CHECK(strstr(r.err, "level=fatal") != NULL);
	CHECK(strstr(r.err, "event=panic") != NULL);
	CHECK(strstr(r.err, "assertion failed: x == 2") != NULL);
	CHECK(strstr(r.err, "test_util.c") != NULL);

	run_child(child_panic, NULL, &r);
	CHECK(r.aborted);
	/* the message is quoted: the newline must not split the line */
	CHECK(strstr(r.err, "msg=\"broken invariant\\nwith newline\"") != NULL);
	CHECK(strchr(r.err, '\n') == r.err + strlen(r.err) - 1);

	run_child(child_oom, NULL, &r);
	CHECK(r.aborted);
	CHECK(strstr(r.err, "out of memory") != NULL);
}

/* ---- arenas ----------------------------------------------------------- */

static char cleanup_log[64];

static void note_cleanup(void *ptr)
{
	size_t n = strlen(cleanup_log);

	if (n + 1 < sizeof(cleanup_log)) {
		cleanup_log[n] = *(const char *)ptr;
		cleanup_log[n + 1] = '\0';
	}
}

static void free_cleanup(void *ptr)
{
	free(ptr);
}

static void test_arena_alloc(void)
{
	struct bu_arena *a = bu_arena_create(0);
	size_t sizes[] = { 0, 1, 3, 15, 16, 17, 31, 100, 1000, 2047, 2048, 2049, 5000, 100000 };
	size_t i, total = 0;
	char *p, *q;

	for (i = 0; i < BU_N_ELEMENTS(sizes); i++) {
		p = bu_arena_alloc(a, sizes[i]);
		CHECK(p != NULL);
		CHECK(((uintptr_t)p & 15) == 0);
		CHECK(all_zero(p, sizes[i]));
		memset(p, 0xaa, sizes[i]);
		total += sizes[i];
	}
	CHECK(bu_arena_used(a) == total);

	/* many small allocations across several blocks, all distinct */
	for (i = 0; i < 10000; i++) {
		unsigned *u = bu_arena_alloc(a, sizeof(unsigned) * 3);

		CHECK(((uintptr_t)u & 15) == 0);
		if (u[0] != 0 || u[1] != 0 || u[2] != 0) {
			CHECK(!"arena memory not zeroed");
			break;
		}
		u[0] = u[1] = u[2] = 0xffffffffu;
	}

	p = bu_arena_strdup(a, "hello");
	CHECK_STR(p, "hello");
	p = bu_arena_strndup(a, "hello", 2);
	CHECK_STR(p, "he");
	p = bu_arena_strndup(a, "hi", 99);
	CHECK_STR(p, "hi");
	p = bu_arena_memdup(a, "x\0y", 3);
	CHECK(memcmp(p, "x\0y", 3) == 0);
	p = bu_arena_printf(a, "%d/%s", 7, "z");
	CHECK_STR(p, "7/z");
	q = bu_arena_printf(a, "%0500d", 1);
	CHECK(strlen(q) == 500 && q[499] == '1' && q[0] == '0');

	bu_arena_reset(a);
	CHECK(bu_arena_used(a) == 0);
	bu_arena_destroy(&a);
	CHECK(a == NULL);
	bu_arena_destroy(&a); /* accepts NULL */
}

static void test_arena_big_and_reset(void)
{
	struct bu_arena *a = bu_arena_create(1024);
	char *s1, *s2, *big, *first;

	first = bu_arena_alloc(a, 16);
	s1 = bu_arena_alloc(a, 16);
	CHECK(s1 == first + 16);
	/* bigger than a quarter block: own block, small ones continue where
	 * they were */
	big = bu_arena_alloc(a, 100000);
	CHECK(((uintptr_t)big & 15) == 0);
	memset(big, 1, 100000);
	s2 = bu_arena_alloc(a, 16);
	CHECK(s2 == s1 + 16);
	CHECK(bu_arena_used(a) == 16 + 16 + 100000 + 16);

	/* exactly filling the first block then spilling to a new one */
	while (bu_arena_used(a) < 100000 + 4096)
		(void)bu_arena_alloc(a, 200);

	/* reset keeps the first block: the first allocation comes back */
	bu_arena_reset(a);
	CHECK(bu_arena_alloc(a, 16) == first);
	CHECK(all_zero(first, 16));
	bu_arena_destroy(&a);
}

static void test_arena_cleanups(void)
{
	struct bu_arena *a = bu_arena_create(256);
	static char letters[] = "abcdef";
	size_t used;
	int i;

	cleanup_log[0] = '\0';
	for (i = 0; i < 3; i++)
		bu_arena_cleanup(a, note_cleanup, &letters[i]);
	bu_arena_cleanup(a, free_cleanup, bu_strdup("heap")); /* leak check */
	used = bu_arena_used(a);
	CHECK(used == 0); /* bookkeeping is not counted */
	CHECK_STR(cleanup_log, "");
	bu_arena_reset(a);
	CHECK_STR(cleanup_log, "cba");

	/* a reset arena starts with no cleanups */
	cleanup_log[0] = '\0';
	bu_arena_reset(a);
	CHECK_STR(cleanup_log, "");

	/* cleanups registered across many blocks, then destroy */
	for (i = 3; i < 6; i++) {
		(void)bu_arena_alloc(a, 200);
		bu_arena_cleanup(a, note_cleanup, &letters[i]);
		(void)bu_arena_alloc(a, 5000);
	}
	bu_arena_destroy(&a);
	CHECK_STR(cleanup_log, "fed");
}

/* ---- buffers ---------------------------------------------------------- */

static void test_buf(void)
{
	struct bu_buf b;
	char *stolen;
	size_t len;
	int i;

	bu_buf_init(&b, 0);
	CHECK_STR(bu_buf_cstr(&b), "");
	CHECK(b.len == 0 && b.data == NULL);
	CHECK(bu_buf_append_str(&b, "hello") == 0);
	CHECK(b.len == 5 && b.data[5] == '\0');
	CHECK(bu_buf_append_byte(&b, ' ') == 0);
	CHECK(bu_buf_printf(&b, "%s %d", "world", 42) == 0);
	CHECK_STR(bu_buf_cstr(&b), "hello world 42");
	CHECK(bu_buf_append(&b, "\0x", 2) == 0);
	CHECK(b.len == 16 && b.data[16] == '\0' && b.data[14] == '\0');

	bu_buf_consume(&b, 6);
	CHECK(b.len == 10 && memcmp(b.data, "world 42\0x", 10) == 0 && b.data[10] == '\0');
	bu_buf_consume(&b, 100);
	CHECK(b.len == 0);
	CHECK_STR(bu_buf_cstr(&b), "");

	/* printf growing well past the first allocation */
	for (i = 0; i < 1000; i++)
		CHECK(bu_buf_printf(&b, "%04d,", i) == 0);
	CHECK(b.len == 5000);
	CHECK(memcmp(b.data + 4995, "0999,", 5) == 0 && b.data[5000] == '\0');
	CHECK(bu_buf_printf(&b, "%s", "") == 0 && b.len == 5000);

	bu_buf_reset(&b);
	CHECK(b.len == 0);
	CHECK_STR(bu_buf_cstr(&b), "");
	CHECK(bu_buf_reserve(&b, 100000) == 0 && b.cap >= 100001);

	stolen = bu_buf_steal(&b, &len);
	CHECK(len == 0 && stolen[0] == '\0');
	free(stolen);
	CHECK(b.data == NULL && b.len == 0);
	CHECK(bu_buf_append_str(&b, "abc") == 0);
	stolen = bu_buf_steal(&b, &len);
	CHECK(len == 3);
	CHECK_STR(stolen, "abc");
	free(stolen);
	stolen = bu_buf_steal(&b, NULL); /* empty, never allocated */
	CHECK(stolen != NULL && stolen[0] == '\0');
	free(stolen);
	bu_buf_deinit(&b);
	bu_buf_deinit(&b); /* twice is fine */
}

static void test_buf_max(void)
{
	struct bu_buf b;
	char big[200];

	memset(big, 'x', sizeof(big));
	bu_buf_init(&b, 10);
	CHECK(bu_buf_append(&b, "0123456789", 10) == 0); /* exactly max */
	CHECK(b.len == 10 && b.data[10] == '\0');
	CHECK(bu_buf_append_byte(&b, 'z') == -1);
	CHECK(b.len == 10);
	CHECK_STR(bu_buf_cstr(&b), "0123456789");
	CHECK(bu_buf_append_str(&b, "") == 0);
	CHECK(bu_buf_printf(&b, "%d", 1) == -1);
	CHECK_STR(bu_buf_cstr(&b), "0123456789");
	CHECK(bu_buf_reserve(&b, 1) == -1);
	CHECK(bu_buf_reserve(&b, SIZE_MAX) == -1);
	CHECK(bu_buf_reserve(&b, 0) == 0);
	CHECK(b.cap <= 11); /* never allocates past max + NUL */

	bu_buf_consume(&b, 5);
	CHECK_STR(bu_buf_cstr(&b), "56789");
	CHECK(bu_buf_printf(&b, "%s", "abcdef") == -1); /* 11 > 10 */
	CHECK_STR(bu_buf_cstr(&b), "56789");
	CHECK(bu_buf_printf(&b, "%s", "abcde") == 0);
	CHECK_STR(bu_buf_cstr(&b), "56789abcde");
	bu_buf_deinit(&b);

	/* printf that needs to grow and would pass max */
	bu_buf_init(&b, 100);
	CHECK(bu_buf_printf(&b, "%.*s", 150, big) == -1);
	CHECK(b.len == 0);
	CHECK_STR(bu_buf_cstr(&b), "");
	CHECK(bu_buf_printf(&b, "%.*s", 100, big) == 0);
	CHECK(b.len == 100);
	bu_buf_deinit(&b);

	/* a huge append on an unlimited buffer is fine */
	bu_buf_init(&b, 0);
	CHECK(bu_buf_reserve(&b, 1 << 20) == 0);
	bu_buf_deinit(&b);
}

/* ---- slices and strings ------------------------------------------------ */

/* bu_buf_take_line: CRLF and bare LF, partial lines, limits, NUL, and
 * fed byte by byte */
static void test_buf_take_line(void)
{
	struct bu_buf in;
	char *line = NULL;
	const char *feed = "USER a\r\nPASS b\nNOOP";

	bu_buf_init(&in, 0);
	bu_buf_append_str(&in, feed);
	CHECK(bu_buf_take_line(&in, 100, &line) == 1);
	CHECK_STR(line, "USER a");
	free(line);
	CHECK(bu_buf_take_line(&in, 100, &line) == 1);
	CHECK_STR(line, "PASS b");
	free(line);
	CHECK(bu_buf_take_line(&in, 100, &line) == 0 && line == NULL);
	CHECK(in.len == 4);
	bu_buf_append_str(&in, "\r\n");
	CHECK(bu_buf_take_line(&in, 100, &line) == 1);
	CHECK_STR(line, "NOOP");
	free(line);
	CHECK(in.len == 0);

	/* over the limit with and without a terminator */
	bu_buf_append_str(&in, "0123456789\r\nnext\r\n");
	CHECK(bu_buf_take_line(&in, 9, &line) == -1 && line == NULL);
	CHECK(bu_buf_take_line(&in, 9, &line) == 1);
	CHECK_STR(line, "next");
	free(line);
	CHECK(bu_buf_take_line(&in, 10, &line) == 0);
	bu_buf_append_str(&in, "0123456789A");
	CHECK(bu_buf_take_line(&in, 10, &line) == -1 && in.len == 0);
	/* exactly max is fine; CR does not count */
	bu_buf_append_str(&in, "0123456789\r\n");
	CHECK(bu_buf_take_line(&in, 10, &line) == 1);
	CHECK_STR(line, "0123456789");
	free(line);

	/* a NUL inside: refused, consumed, the next line still comes */
	bu_buf_append(&in, "a\0b\r\nok\n", 8);
	CHECK(bu_buf_take_line(&in, 100, &line) == -2 && line == NULL);
	CHECK(bu_buf_take_line(&in, 100, &line) == 1);
	CHECK_STR(line, "ok");
	free(line);

	/* byte by byte: nothing until the LF */
	for (const char *p = "LIST 1\r\n"; *p != '\0'; p++) {
		bu_buf_append_byte(&in, (uint8_t)*p);
		int ret = bu_buf_take_line(&in, 100, &line);

		CHECK(ret == (p[0] == '\n' ? 1 : 0));
	}
	CHECK_STR(line, "LIST 1");
	free(line);
	bu_buf_deinit(&in);
}

static void test_slices(void)
{
	static const struct {
		const char *in, *out;
	} trims[] = {
		{ "", "" },
		{ "   ", "" },
		{ "a", "a" },
		{ " a ", "a" },
		{ "\t\r\n a b \r\n", "a b" },
		{ "x\v", "x\v" }, /* only SP, HTAB, CR, LF */
	};
	struct bu_arena *a = bu_arena_create(0);
	struct bu_slice s;
	char *d;
	size_t i;

	s = bu_slice_cstr("abc");
	CHECK(s.len == 3);
	CHECK(bu_slice_eq(s, "abc"));
	CHECK(!bu_slice_eq(s, "ab"));
	CHECK(!bu_slice_eq(s, "abcd"));
	CHECK(!bu_slice_eq(s, "ABC"));
	CHECK(bu_slice_caseeq(s, "ABC"));
	CHECK(bu_slice_caseeq(s, "aBc"));
	CHECK(!bu_slice_caseeq(s, "ab"));
	CHECK(!bu_slice_caseeq(s, "abcd"));
	CHECK(bu_slice_eq(bu_slice("", 0), ""));
	CHECK(bu_slice_caseeq(bu_slice_cstr(NULL), ""));
	CHECK(bu_slice_eq(BU_SLICE("lit"), "lit"));
	CHECK(!bu_slice_caseeq(bu_slice("\xc4", 1), "\xe4")); /* ASCII only */

	for (i = 0; i < BU_N_ELEMENTS(trims); i++) {
		s = bu_slice_trim(bu_slice_cstr(trims[i].in));
		CHECK(bu_slice_eq(s, trims[i].out));
	}

	s = bu_slice("hello world", 5);
	d = bu_slice_dup(a, s);
	CHECK_STR(d, "hello");
	d = bu_slice_dup(NULL, s);
	CHECK_STR(d, "hello");
	free(d);
	d = bu_slice_dup(a, bu_slice("", 0));
	CHECK_STR(d, "");
	bu_arena_destroy(&a);
}

static void test_strings(void)
{
	static const struct {
		const char *s;
		size_t len; /* SIZE_MAX = strlen */
		uint64_t max;
		int ret;
		uint64_t val;
	} nums[] = {
		{ "0", SIZE_MAX, 10, 0, 0 },
		{ "10", SIZE_MAX, 10, 0, 10 },
		{ "11", SIZE_MAX, 10, -1, 0 },
		{ "007", SIZE_MAX, 100, 0, 7 },
		{ "", SIZE_MAX, 100, -1, 0 },
		{ "-1", SIZE_MAX, 100, -1, 0 },
		{ "+1", SIZE_MAX, 100, -1, 0 },
		{ " 1", SIZE_MAX, 100, -1, 0 },
		{ "1 ", SIZE_MAX, 100, -1, 0 },
		{ "1a", SIZE_MAX, 100, -1, 0 },
		{ "0x10", SIZE_MAX, 100, -1, 0 },
		{ "123456", 3, 1000, 0, 123 },
		{ "18446744073709551615", SIZE_MAX, UINT64_MAX, 0, UINT64_MAX },
		{ "18446744073709551616", SIZE_MAX, UINT64_MAX, -1, 0 },
		{ "99999999999999999999999", SIZE_MAX, UINT64_MAX, -1, 0 },
		{ "4294967295", SIZE_MAX, UINT32_MAX, 0, UINT32_MAX },
		{ "4294967296", SIZE_MAX, UINT32_MAX, -1, 0 },
		/* a single digit above a small max (max - digit must not wrap) */
		{ "7", SIZE_MAX, 5, -1, 0 },
		{ "5", SIZE_MAX, 5, 0, 5 },
		{ "1", SIZE_MAX, 0, -1, 0 },
		{ "0", SIZE_MAX, 0, 0, 0 },
		{ "9", SIZE_MAX, 8, -1, 0 },
		{ "19", SIZE_MAX, 18, -1, 0 },
	};
	size_t i;

	CHECK(bu_str_caseeq("Hello", "hELLO"));
	CHECK(bu_str_caseeq("", ""));
	CHECK(!bu_str_caseeq("Hello", "Hell"));
	CHECK(!bu_str_caseeq("Hell", "Hello"));
	CHECK(!bu_str_caseeq("a", "b"));
	CHECK(bu_str_startswith("INBOX.sub", "INBOX"));
	CHECK(bu_str_startswith("x", ""));
	CHECK(!bu_str_startswith("INB", "INBOX"));
	CHECK(!bu_str_startswith("inbox", "INBOX"));

	for (i = 0; i < BU_N_ELEMENTS(nums); i++) {
		uint64_t v = 12345;
		size_t len = nums[i].len == SIZE_MAX ? strlen(nums[i].s) : nums[i].len;
		int r = bu_parse_u64(nums[i].s, len, nums[i].max, &v);

		if (r != nums[i].ret || (r == 0 && v != nums[i].val) || (r < 0 && v != 12345)) {
			fprintf(stderr, "parse_u64 case %zu (\"%s\") failed: r=%d v=%llu\n", i,
				nums[i].s, r, (unsigned long long)v);
			failures++;
		}
		checks++;
	}
	{
		static const uint64_t vals[] = { 0, 7, 10, 99, 4294967295u, UINT64_MAX };
		char d[20], ref[32];

		for (i = 0; i < BU_N_ELEMENTS(vals); i++) {
			size_t n = bu_u64_dec(vals[i], d);

			snprintf(ref, sizeof(ref), "%llu", (unsigned long long)vals[i]);
			CHECK(n == strlen(ref) && memcmp(d, ref, n) == 0);
		}
	}
}

static void test_sanitize(void)
{
	static const struct {
		const char *in;
		size_t outsz;
		const char *out;
	} cases[] = {
		{ "plain", 64, "plain" },
		{ "", 64, "" },
		{ "a\r\nb\tc\x7f"
		  "d",
		  64, "a??b?c?d" },
		{ "caf\xc3\xa9", 64, "caf\xc3\xa9" }, /* valid UTF-8 kept */
		{ "bad\xc3(x", 64, "bad?(x" },	      /* truncated sequence */
		{ "\xff\xfe", 64, "??" },
		{ "\xc0\xaf", 64, "??" },			/* overlong '/' */
		{ "\xed\xa0\x80", 64, "???" },			/* surrogate */
		{ "\xf4\x90\x80\x80", 64, "????" },		/* > U+10FFFF */
		{ "\xf0\x9f\x98\x80", 64, "\xf0\x9f\x98\x80" }, /* emoji */
		{ "0123456789", 11, "0123456789" },		/* exactly fits */
		{ "0123456789", 10, "012345..." },
		{ "0123456789", 4, "..." },
		{ "0123456789", 3, "01" },
		{ "0123456789", 1, "" },
		{ "ab\xc3\xa9\xc3\xa9xyz", 8, "ab\xc3\xa9..." }, /* no split char */
		{ "abc\xc3\xa9xyz", 8, "abc..." },
	};
	char out[64];
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(cases); i++) {
		memset(out, 'Z', sizeof(out));
		CHECK(bu_sanitize(out, cases[i].outsz, cases[i].in, strlen(cases[i].in)) == out);
		if (strcmp(out, cases[i].out) != 0) {
			fprintf(stderr, "sanitize case %zu failed: got \"%s\" want \"%s\"\n", i,
				out, cases[i].out);
			failures++;
		}
		checks++;
	}
	/* embedded NUL is a control character */
	bu_sanitize(out, sizeof(out), "a\0b", 3);
	CHECK_STR(out, "a?b");
	/* outsz 0 writes nothing */
	out[0] = 'Q';
	bu_sanitize(out, 0, "abc", 3);
	CHECK(out[0] == 'Q');
	bu_sanitize(out, sizeof(out), NULL, 5);
	CHECK_STR(out, "");
}

static void test_wipe_time(void)
{
	char secret[16] = "hunter2hunter2!";
	int64_t m1, m2, u1, now;

	bu_wipe(secret, sizeof(secret));
	CHECK(all_zero(secret, sizeof(secret)));
	bu_wipe(NULL, 0);

	now = bu_now_ms();
	CHECK(now > INT64_C(1600000000000)); /* after 2020 */
	CHECK(now < INT64_C(5000000000000));
	m1 = bu_mono_ms();
	u1 = bu_mono_us();
	usleep(20000);
	m2 = bu_mono_ms();
	CHECK(m2 - m1 >= 15 && m2 - m1 < 5000);
	CHECK(bu_mono_us() - u1 >= 15000);
	CHECK(u1 / 1000 >= m1 - 1);
}

int main(void)
{
	test_alloc();
	test_panics();
	test_arena_alloc();
	test_arena_big_and_reset();
	test_arena_cleanups();
	test_buf();
	test_buf_max();
	test_buf_take_line();
	test_slices();
	test_strings();
	test_sanitize();
	test_wipe_time();
	printf("test_util: %d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}

/*
 * test_log.c - unit tests for server/core/log.c: line format, levels,
 * context, quoting, truncation, reopen, stderr and the fatal path.
 */
#include "server/core/log.h"

#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
		if (strcmp(a_, b_) != 0) {                                                         \
			fprintf(stderr,                                                            \
				"%s:%d: CHECK_STR failed: %s: got \"%s\", "                        \
				"want \"%s\"\n",                                                   \
				__FILE__, __LINE__, #a, a_, b_);                                   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static char tmpdir[] = "/tmp/bureau-test-log-XXXXXX";
static char logpath[256];

/* whole file as a heap string */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	struct bu_buf b;
	char chunk[4096];
	size_t n;

	bu_buf_init(&b, 0);
	if (f == NULL)
		return bu_buf_steal(&b, NULL);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		(void)bu_buf_append(&b, chunk, n);
	fclose(f);
	return bu_buf_steal(&b, NULL);
}

static void truncate_log(void)
{
	CHECK(truncate(logpath, 0) == 0);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void test_format(void)
{
	regex_t re;
	char *text;
	int rc;

	truncate_log();
	bu_log_ctx_set(NULL);
	bu_info("event=hello n=%d", 5);
	text = slurp(logpath);
	rc = regcomp(&re,
		     "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
		     "level=info event=hello n=5\n$",
		     REG_EXTENDED);
	CHECK(rc == 0);
	CHECK(regexec(&re, text, 0, NULL, 0) == 0);
	if (regexec(&re, text, 0, NULL, 0) != 0)
		fprintf(stderr, "got: %s", text);
	regfree(&re);
	free(text);

	/* context goes between level and message */
	truncate_log();
	bu_log_ctx_set("proto=imap conn=12");
	CHECK_STR(bu_log_ctx_get(), "proto=imap conn=12");
	bu_warn("event=x");
	bu_error("event=y");
	bu_log(BU_LOG_FATAL, "event=z");
	bu_log_ctx_set(NULL);
	CHECK_STR(bu_log_ctx_get(), "");
	bu_info("event=noctx");
	/* a message with its own newline does not produce an empty line */
	bu_info("event=nl\n");
	text = slurp(logpath);
	CHECK(strstr(text, "Z level=warning proto=imap conn=12 event=x\n") != NULL);
	CHECK(strstr(text, "Z level=error proto=imap conn=12 event=y\n") != NULL);
	CHECK(strstr(text, "Z level=fatal proto=imap conn=12 event=z\n") != NULL);
	CHECK(strstr(text, "Z level=info event=noctx\n") != NULL);
	CHECK(strstr(text, "Z level=info event=nl\nts=") == NULL);
	CHECK(strstr(text, "\n\n") == NULL);
	CHECK(count_lines(text) == 5);
	free(text);
}

static void test_levels(void)
{
	static const struct {
		const char *s;
		int ret;
		enum bu_log_level lvl;
	} cases[] = {
		{ "debug", 0, BU_LOG_DEBUG },	{ "info", 0, BU_LOG_INFO },
		{ "INFO", 0, BU_LOG_INFO },	{ "warning", 0, BU_LOG_WARNING },
		{ "warn", 0, BU_LOG_WARNING },	{ "error", 0, BU_LOG_ERROR },
		{ "fatal", 0, BU_LOG_FATAL },	{ "", -1, BU_LOG_INFO },
		{ "verbose", -1, BU_LOG_INFO }, { "info ", -1, BU_LOG_INFO },
	};
	enum bu_log_level lvl;
	char *text;
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(cases); i++) {
		lvl = BU_LOG_INFO;
		CHECK(bu_log_parse_level(cases[i].s, &lvl) == cases[i].ret);
		CHECK(lvl == cases[i].lvl);
	}
	CHECK(bu_log_parse_level(NULL, &lvl) == -1);

	truncate_log();
	bu_log_set_level(BU_LOG_WARNING);
	bu_debug("event=d");
	bu_info("event=i");
	bu_warn("event=w");
	bu_error("event=e");
	bu_log_set_level(BU_LOG_DEBUG);
	bu_debug("event=d2");
	bu_log_set_level(BU_LOG_INFO);
	bu_debug("event=d3");
	text = slurp(logpath);
	CHECK(strstr(text, "event=d\n") == NULL);
	CHECK(strstr(text, "event=i\n") == NULL);
	CHECK(strstr(text, "level=warning event=w\n") != NULL);
	CHECK(strstr(text, "level=error event=e\n") != NULL);
	CHECK(strstr(text, "level=debug event=d2\n") != NULL);
	CHECK(strstr(text, "event=d3") == NULL);
	free(text);
}

static void test_ctx(void)
{
	char long_ctx[600];

	memset(long_ctx, 'c', sizeof(long_ctx) - 1);
	long_ctx[sizeof(long_ctx) - 1] = '\0';
	bu_log_ctx_set(long_ctx);
	CHECK(strlen(bu_log_ctx_get()) == 255);
	bu_log_ctx_set("a=1");
	bu_log_ctx_set(bu_log_ctx_get()); /* self-assignment is fine */
	CHECK_STR(bu_log_ctx_get(), "a=1");
	bu_log_ctx_set(NULL);
}

static void *ctx_thread(void *arg)
{
	const char **seen = arg;

	*seen = bu_log_ctx_get()[0] == '\0' ? "empty" : "set";
	return NULL;
}

static void test_ctx_thread_local(void)
{
	const char *seen = NULL;
	pthread_t t;

	bu_log_ctx_set("user=alice");
	pthread_create(&t, NULL, ctx_thread, &seen);
	pthread_join(t, NULL);
	CHECK(seen != NULL && strcmp(seen, "empty") == 0);
	CHECK_STR(bu_log_ctx_get(), "user=alice");
	bu_log_ctx_set(NULL);
}

static void test_truncation(void)
{
	char *big = bu_malloc(10000), *text;
	size_t len;

	memset(big, 'x', 9999);
	truncate_log();
	bu_info("event=big v=%s", big);
	text = slurp(logpath);
	len = strlen(text);
	CHECK(len == 4096);
	CHECK(len >= 5 && memcmp(text + len - 4, "...\n", 4) == 0);
	CHECK(count_lines(text) == 1);
	free(text);

	/* exactly fitting: 4095 bytes plus newline, no "..." */
	truncate_log();
	bu_log_ctx_set(NULL);
	/* prefix "ts=2026-11-21T23:59:00.123Z level=info " is 39 bytes */
	bu_info("%.*s", 4095 - 39, big);
	text = slurp(logpath);
	len = strlen(text);
	CHECK(len == 4096);
	CHECK(len >= 5 && memcmp(text + len - 4, "xxx\n", 4) == 0);
	free(text);
	free(big);
}

static void test_errno(void)
{
	char *text;

	truncate_log();
	errno = ENOENT;
	bu_log_errno("event=open_failed path=%s", bu_log_q("/x y"));
	CHECK(errno == ENOENT); /* logging preserves errno */
	text = slurp(logpath);
	CHECK(strstr(text, "level=error event=open_failed path=\"/x y\" "
			   "err=\"No such file or directory\"\n") != NULL);
	free(text);
}

static void test_quote(void)
{
	static const struct {
		const char *in;
		size_t len; /* SIZE_MAX = strlen */
		const char *out;
	} cases[] = {
		{ "alice", SIZE_MAX, "alice" },
		{ "a=b", SIZE_MAX, "a=b" },
		{ "", SIZE_MAX, "\"\"" },
		{ "a b", SIZE_MAX, "\"a b\"" },
		{ "say \"hi\"", SIZE_MAX, "\"say \\\"hi\\\"\"" },
		{ "back\\slash", SIZE_MAX, "\"back\\\\slash\"" },
		{ "l1\r\nl2\t", SIZE_MAX, "\"l1\\r\\nl2\\t\"" },
		{ "\x01\x1f\x7f", SIZE_MAX, "\"\\x01\\x1f\\x7f\"" },
		{ "caf\xc3\xa9", SIZE_MAX, "\"caf\xc3\xa9\"" },
		{ "bad\xff\xc3", SIZE_MAX, "\"bad\\xff\\xc3\"" },
		{ "a\0b", 3, "\"a\\x00b\"" },
		{ "abcdef", 3, "abc" },
	};
	char in[400], want[400];
	const char *ring[8];
	const char *q;
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(cases); i++) {
		q = cases[i].len == SIZE_MAX ? bu_log_q(cases[i].in)
					     : bu_log_qn(cases[i].in, cases[i].len);
		if (strcmp(q, cases[i].out) != 0) {
			fprintf(stderr, "quote case %zu: got [%s] want [%s]\n", i, q, cases[i].out);
			failures++;
		}
		checks++;
	}
	CHECK_STR(bu_log_q(NULL), "\"\"");

	/* 200 bytes fit unquoted; 201 are cut inside quotes */
	memset(in, 'a', sizeof(in));
	in[200] = '\0';
	CHECK_STR(bu_log_q(in), in);
	in[200] = 'a';
	in[201] = '\0';
	q = bu_log_q(in);
	CHECK(strlen(q) == 202);
	memset(want, 'a', 197);
	memcpy(want + 197, "...", 4);
	CHECK(q[0] == '"' && strncmp(q + 1, want, 200) == 0 && q[201] == '"');

	/* escapes are never split by the cap; the body stays <= 200 bytes */
	for (i = 0; i < 300; i++)
		in[i] = '\n';
	in[300] = '\0';
	q = bu_log_q(in);
	CHECK(strlen(q) <= 202);
	CHECK(strcmp(q + strlen(q) - 4, "...\"") == 0);
	CHECK(strstr(q, "\\n\\n") != NULL);
	CHECK(q[strlen(q) - 5] == 'n');

	/* multi-byte characters are not split either */
	for (i = 0; i + 2 <= 300; i += 2) {
		in[i] = '\xc3';
		in[i + 1] = '\xa9';
	}
	in[300] = '\0';
	q = bu_log_q(in);
	CHECK(strlen(q) <= 202);
	CHECK(strcmp(q + strlen(q) - 4, "...\"") == 0);
	CHECK((unsigned char)q[strlen(q) - 5] == 0xa9);

	/* the ring: eight results stay valid at once */
	for (i = 0; i < 8; i++) {
		char v[8];

		snprintf(v, sizeof(v), "v%zu", i);
		ring[i] = bu_log_q(v);
	}
	for (i = 0; i < 8; i++) {
		char v[8];

		snprintf(v, sizeof(v), "v%zu", i);
		CHECK_STR(ring[i], v);
	}
}

static void test_reopen(void)
{
	char rotated[300];
	char *text;

	truncate_log();
	bu_info("event=before");
	snprintf(rotated, sizeof(rotated), "%s.1", logpath);
	CHECK(rename(logpath, rotated) == 0);
	bu_info("event=after_rename"); /* still goes to the renamed file */
	CHECK(bu_log_reopen() == 0);
	bu_info("event=after_reopen");
	text = slurp(rotated);
	CHECK(strstr(text, "event=before\n") != NULL);
	CHECK(strstr(text, "event=after_rename\n") != NULL);
	CHECK(strstr(text, "event=after_reopen") == NULL);
	free(text);
	text = slurp(logpath);
	CHECK(strstr(text, "event=after_reopen\n") != NULL);
	CHECK(count_lines(text) == 1);
	free(text);
	unlink(rotated);

	/* opening a file that cannot be created fails with errno, and the
	 * old destination stays */
	errno = 0;
	CHECK(bu_log_open("/nonexistent-dir/x/y.log", BU_LOG_INFO) == -1);
	CHECK(errno == ENOENT);
	truncate_log();
	bu_info("event=still_here");
	text = slurp(logpath);
	CHECK(strstr(text, "event=still_here\n") != NULL);
	free(text);
}

#define THREADS 4
#define LINES_PER_THREAD 2000

static void *writer_thread(void *arg)
{
	char pad[300];
	int i, id = (int)(intptr_t)arg;

	memset(pad, 'a' + id, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (i = 0; i < LINES_PER_THREAD; i++)
		bu_info("event=t id=%d i=%d pad=%s end", id, i, pad);
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	char *text, *line, *save = NULL;
	size_t lines = 0, bad = 0;
	int i;

	truncate_log();
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, writer_thread, (void *)(intptr_t)i);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	text = slurp(logpath);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		lines++;
		if (strncmp(line, "ts=", 3) != 0 || strstr(line + 3, "ts=") != NULL ||
		    strlen(line) < 4 || strcmp(line + strlen(line) - 4, " end") != 0)
			bad++;
	}
	CHECK(lines == THREADS * LINES_PER_THREAD);
	CHECK(bad == 0);
	free(text);
}

/* ---- stderr and fatal, in children ------------------------------------ */

static void run_child_capture(void (*fn)(void), int *status_r, char *out, size_t outsz)
{
	int pfd[2];
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	if (pipe(pfd) < 0)
		exit(2);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], STDERR_FILENO);
		fn();
		_exit(0);
	}
	close(pfd[1]);
	while (got < outsz - 1 && (r = read(pfd[0], out + got, outsz - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(pfd[0]);
	waitpid(pid, status_r, 0);
}

static void child_stderr(void)
{
	/* switching back from the file to stderr */
	if (bu_log_open("-", BU_LOG_DEBUG) < 0)
		_exit(3);
	bu_debug("event=on_stderr");
	if (bu_log_open(NULL, BU_LOG_INFO) < 0)
		_exit(3);
	bu_debug("event=filtered");
	bu_info("event=null_path");
	if (bu_log_reopen() < 0) /* no file: nothing to do */
		_exit(4);
	bu_info("event=after_reopen");
}

static void child_fatal(void)
{
	bu_log_open("", BU_LOG_ERROR);
	bu_fatal("event=cannot_start reason=%s", bu_log_q("bad config"));
}

static void test_stderr_and_fatal(void)
{
	char out[4096], *text;
	int status;

	truncate_log();
	run_child_capture(child_stderr, &status, out, sizeof(out));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(strstr(out, "level=debug event=on_stderr\n") != NULL);
	CHECK(strstr(out, "event=filtered") == NULL);
	CHECK(strstr(out, "level=info event=null_path\n") != NULL);
	CHECK(strstr(out, "level=info event=after_reopen\n") != NULL);
	text = slurp(logpath);
	CHECK(text[0] == '\0'); /* nothing went to the file */
	free(text);

	run_child_capture(child_fatal, &status, out, sizeof(out));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	CHECK(strstr(out, "level=fatal event=cannot_start reason=\"bad config\"\n") != NULL);
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(logpath, sizeof(logpath), "%s/bureau.log", tmpdir);
	if (bu_log_open(logpath, BU_LOG_INFO) < 0) {
		perror("bu_log_open");
		return 1;
	}
	test_format();
	test_levels();
	test_ctx();
	test_ctx_thread_local();
	test_truncation();
	test_errno();
	test_quote();
	test_reopen();
	test_threads();
	test_stderr_and_fatal();

	unlink(logpath);
	rmdir(tmpdir);
	printf("test_log: %d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}

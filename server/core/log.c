/*
 * log.c - one line per event, key=value (STYLE.md 36-40).
 *
 *   ts=2026-11-21T23:59:00.123Z level=info proto=imap conn=12 event=login ...
 *
 * Each line is built in a stack buffer (at most LOG_LINE_MAX bytes; longer
 * messages are cut and end in "...") and written with one write(2), so lines
 * from different threads never interleave.  No allocation happens on the
 * logging path, which lets bu_panic() log even when malloc has failed.
 *
 * The destination is a file descriptor number that never changes once a
 * file has been opened: bu_log_reopen() opens the file again and dup2()s the
 * new description over the old number.  A thread writing at that moment
 * writes to either the old or the new file, never to a closed or reused
 * descriptor.  Call bu_log_reopen() from the main loop after SIGHUP, not from
 * inside the signal handler (it takes a mutex).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_CTX_MAX 256
#define LOG_Q_MAX 200 /* bytes of value inside the quotes */
#define LOG_Q_RING 8

static atomic_int log_fd = STDERR_FILENO;
static atomic_int log_min_level = BU_LOG_INFO;
static bool log_fd_owned; /* log_fd is ours (a file, >= 3) */
static char *log_path;	  /* NULL = stderr */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static __thread char log_ctx[LOG_CTX_MAX];
static __thread char log_q_ring[LOG_Q_RING][LOG_Q_MAX + 8];
static __thread unsigned log_q_next;

/* clang-format off */
static const char *const level_names[] = {
	[BU_LOG_DEBUG] = "debug",
	[BU_LOG_INFO] = "info",
	[BU_LOG_WARNING] = "warning",
	[BU_LOG_ERROR] = "error",
	[BU_LOG_FATAL] = "fatal",
};
/* clang-format on */

/* ---- destination ------------------------------------------------------ */

static int open_log_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

/* Point the log at fd (ours to keep or close). Caller holds log_lock. */
static int install_fd(int fd)
{
	if (!log_fd_owned) {
		if (fd <= STDERR_FILENO) {
			/* Keep standard descriptors free for their owners. */
			int nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);

			if (nfd < 0)
				return -1;
			close(fd);
			fd = nfd;
		}
		atomic_store(&log_fd, fd);
		log_fd_owned = true;
		return 0;
	}
	if (dup3(fd, atomic_load(&log_fd), O_CLOEXEC) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

int bu_log_open(const char *path, enum bu_log_level min_level)
{
	int fd, ret = 0;

	pthread_mutex_lock(&log_lock);
	bu_log_set_level(min_level);
	if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0) {
		free(log_path);
		log_path = NULL;
		/* If a file was open, its number now refers to stderr. */
		if (log_fd_owned && dup3(STDERR_FILENO, atomic_load(&log_fd), O_CLOEXEC) < 0)
			ret = -1;
	} else {
		fd = open_log_file(path);
		if (fd < 0 || install_fd(fd) < 0) {
			ret = -1;
		} else {
			free(log_path);
			log_path = bu_strdup(path);
		}
	}
	pthread_mutex_unlock(&log_lock);
	return ret;
}

int bu_log_reopen(void)
{
	int fd, ret = 0;

	pthread_mutex_lock(&log_lock);
	if (log_path != NULL) {
		fd = open_log_file(log_path);
		if (fd < 0 || install_fd(fd) < 0)
			ret = -1;
	}
	pthread_mutex_unlock(&log_lock);
	return ret;
}

void bu_log_set_level(enum bu_log_level min_level)
{
	if ((int)min_level < BU_LOG_DEBUG)
		min_level = BU_LOG_DEBUG;
	if (min_level > BU_LOG_FATAL)
		min_level = BU_LOG_FATAL;
	atomic_store(&log_min_level, (int)min_level);
}

int bu_log_parse_level(const char *s, enum bu_log_level *out_r)
{
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < BU_N_ELEMENTS(level_names); i++) {
		if (bu_str_caseeq(s, level_names[i])) {
			*out_r = (enum bu_log_level)i;
			return 0;
		}
	}
	if (bu_str_caseeq(s, "warn")) {
		*out_r = BU_LOG_WARNING;
		return 0;
	}
	return -1;
}

/* ---- context ---------------------------------------------------------- */

void bu_log_ctx_set(const char *ctx)
{
	size_t n;

	if (ctx == NULL) {
		log_ctx[0] = '\0';
		return;
	}
	n = strnlen(ctx, LOG_CTX_MAX - 1);
	memmove(log_ctx, ctx, n);
	log_ctx[n] = '\0';
}

const char *bu_log_ctx_get(void)
{
	return log_ctx;
}

/* ---- writing ---------------------------------------------------------- */

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	bool truncated;
};

static void line_add(struct line *l, const char *s, size_t n)
{
	/* keep 1 byte for the newline */
	size_t room = sizeof(l->buf) - 1 - l->len;

	if (n > room) {
		n = room;
		l->truncated = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void line_add_str(struct line *l, const char *s)
{
	line_add(l, s, strlen(s));
}

static void line_add_vfmt(struct line *l, const char *fmt, va_list ap)
{
	size_t room = sizeof(l->buf) - 1 - l->len;
	int n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);

	if (n < 0)
		return;
	if ((size_t)n > room) {
		n = (int)room;
		l->truncated = true;
	}
	l->len += (size_t)n;
}

static void line_add_ts(struct line *l)
{
	struct timespec ts;
	struct tm tm;
	char tsbuf[64];
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(tsbuf, sizeof(tsbuf), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec / 1000000);
	if (n > 0)
		line_add(l, tsbuf, (size_t)n < sizeof(tsbuf) ? (size_t)n : sizeof(tsbuf) - 1);
}

static void line_write(struct line *l)
{
	const char *p = l->buf;
	size_t left;

	if (l->truncated) {
		bu_assert(l->len >= 3);
		memcpy(l->buf + l->len - 3, "...", 3);
	}
	/* A message may carry a newline of its own: never end on two. */
	while (l->len > 0 && l->buf[l->len - 1] == '\n')
		l->len--;
	l->buf[l->len++] = '\n';
	left = l->len;
	while (left > 0) {
		ssize_t r = write(atomic_load(&log_fd), p, left);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* nowhere to report it */
		p += r;
		left -= (size_t)r;
	}
}

static void vlog_line(enum bu_log_level lvl, const char *fmt, va_list ap, const char *suffix)
{
	struct line l;
	int saved_errno = errno;

	if ((int)lvl < atomic_load(&log_min_level))
		return;
	if ((int)lvl < BU_LOG_DEBUG || lvl > BU_LOG_FATAL)
		lvl = BU_LOG_ERROR;
	l.len = 0;
	l.truncated = false;
	line_add_ts(&l);
	line_add_str(&l, "level=");
	line_add_str(&l, level_names[lvl]);
	line_add_str(&l, " ");
	if (log_ctx[0] != '\0') {
		line_add_str(&l, log_ctx);
		line_add_str(&l, " ");
	}
	line_add_vfmt(&l, fmt, ap);
	if (suffix != NULL)
		line_add_str(&l, suffix);
	line_write(&l);
	errno = saved_errno;
}

void bu_vlog(enum bu_log_level lvl, const char *fmt, va_list ap)
{
	vlog_line(lvl, fmt, ap, NULL);
}

void bu_log(enum bu_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_line(lvl, fmt, ap, NULL);
	va_end(ap);
}

void bu_log_errno(const char *fmt, ...)
{
	char errbuf[128], suffix[LOG_Q_MAX + 16];
	const char *err;
	va_list ap;

	err = strerror_r(errno, errbuf, sizeof(errbuf));
	snprintf(suffix, sizeof(suffix), " err=%s", bu_log_q(err));
	va_start(ap, fmt);
	vlog_line(BU_LOG_ERROR, fmt, ap, suffix);
	va_end(ap);
}

void bu_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_line(BU_LOG_FATAL, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

/* ---- quoting ---------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p, or 0 (RFC 3629). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	}
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) ||
	    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
		return 0;
	return len;
}

static bool needs_quotes(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > LOG_Q_MAX)
		return true;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\')
			return true;
	}
	return false;
}

/*
 * Values made only of printable ASCII without spaces, quotes or
 * backslashes come back as they are; anything else is quoted, with '"',
 * '\\', \n, \r, \t and \xNN escapes for other control bytes and for bytes
 * that are not well-formed UTF-8.  The part between the quotes is at most
 * LOG_Q_MAX bytes; a longer value is cut and ends in "...".
 */
const char *bu_log_qn(const char *s, size_t n)
{
	char *out = log_q_ring[log_q_next++ % LOG_Q_RING];
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0;

	if (s == NULL) {
		s = "";
		n = 0;
	}
	if (!needs_quotes(s, n)) {
		memcpy(out, s, n);
		out[n] = '\0';
		return out;
	}
	out[o++] = '"';
	while (i < n) {
		char esc[5];
		size_t elen, ulen = utf8_len(p + i, n - i);
		const char *src = esc;

		if (p[i] == '"' || p[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)p[i];
			elen = 2;
		} else if (p[i] == '\n' || p[i] == '\r' || p[i] == '\t') {
			esc[0] = '\\';
			esc[1] = p[i] == '\n' ? 'n' : p[i] == '\r' ? 'r' : 't';
			elen = 2;
		} else if (ulen == 0 || p[i] < 0x20 || p[i] == 0x7f) {
			static const char hex[] = "0123456789abcdef";

			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[p[i] >> 4];
			esc[3] = hex[p[i] & 0xf];
			elen = 4;
		} else {
			src = s + i;
			elen = ulen;
		}
		/* 1 for the opening quote; leave room for "..." if cut */
		if (o - 1 + elen > LOG_Q_MAX - (i + (ulen ? ulen : 1) < n ? 3 : 0)) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, src, elen);
		o += elen;
		i += src == esc ? 1 : ulen;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

const char *bu_log_q(const char *s)
{
	return bu_log_qn(s, s != NULL ? strlen(s) : 0);
}

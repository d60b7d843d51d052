/*
 * log.h - one line per event, key=value.
 *
 *   ts=2026-11-21T23:59:00.123Z level=info proto=imap conn=12 user=alice event=login ...
 *
 * The caller writes "event=NAME key=value ..." in the format; the prefix
 * (ts, level and the thread's current context set with bu_log_ctx_set) is
 * added automatically. Values from clients must go through bu_log_q(), which
 * quotes and sanitises them (returns a pointer into a thread-local ring, valid
 * for the next 8 calls on the thread).
 * Safe from any thread; each line is one write(2).
 */
#ifndef BU_LOG_H
#define BU_LOG_H

#include "util.h"

enum bu_log_level { BU_LOG_DEBUG, BU_LOG_INFO, BU_LOG_WARNING, BU_LOG_ERROR, BU_LOG_FATAL };

/* path NULL or "" or "-" = stderr. Returns 0 or -1 (errno set). */
int bu_log_open(const char *path, enum bu_log_level min_level);
int bu_log_reopen(void);                /* SIGHUP */
void bu_log_set_level(enum bu_log_level min_level);
int bu_log_parse_level(const char *s, enum bu_log_level *out_r);

/* Thread-local context, e.g. "proto=imap conn=12 ip=127.0.0.1 user=alice".
 * The string is copied (max 255 bytes). NULL clears. */
void bu_log_ctx_set(const char *ctx);
const char *bu_log_ctx_get(void);

void bu_log(enum bu_log_level lvl, const char *fmt, ...) BU_PRINTF(2, 3);
void bu_vlog(enum bu_log_level lvl, const char *fmt, va_list ap);
/* like bu_log at ERROR level, appending err="strerror(errno)" */
void bu_log_errno(const char *fmt, ...) BU_PRINTF(1, 2);
BU_NORETURN void bu_fatal(const char *fmt, ...) BU_PRINTF(1, 2);   /* exit(1) */

#define bu_debug(...) bu_log(BU_LOG_DEBUG, __VA_ARGS__)
#define bu_info(...) bu_log(BU_LOG_INFO, __VA_ARGS__)
#define bu_warn(...) bu_log(BU_LOG_WARNING, __VA_ARGS__)
#define bu_error(...) bu_log(BU_LOG_ERROR, __VA_ARGS__)

/* quote a client-supplied value for a log line: "..." with control chars
 * escaped, capped at 200 bytes. */
const char *bu_log_q(const char *s);
const char *bu_log_qn(const char *s, size_t n);

#endif

/*
 * util.h - Bureau's dependency-free base: assertions, allocation, arenas,
 * growable buffers, string slices and checked size arithmetic.
 *
 * Everything here links against libc alone (libbu_util), so unit tests and
 * fuzz targets can use it without OpenSSL or libpq.
 *
 * Policy: allocation never fails (bu_malloc and friends abort on OOM and
 * return zeroed memory); assertions are always compiled in.
 */
#ifndef BU_UTIL_H
#define BU_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BU_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define BU_NORETURN __attribute__((noreturn))
#define BU_WARN_UNUSED __attribute__((warn_unused_result))
#define BU_N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- assertions ------------------------------------------------------ */

BU_NORETURN void bu_panic(const char *fmt, ...) BU_PRINTF(1, 2);
#define bu_assert(expr)                                                       \
	do {                                                                  \
		if (__builtin_expect(!(expr), 0))                             \
			bu_panic("assertion failed: %s (%s:%d %s)", #expr,   \
				 __FILE__, __LINE__, __func__);               \
	} while (0)

/* ---- allocation (never returns NULL, zeroed) ------------------------- */

void *bu_malloc(size_t size);
void *bu_calloc(size_t n, size_t size);          /* checks n*size overflow */
void *bu_realloc(void *p, size_t size);          /* new tail NOT zeroed */
char *bu_strdup(const char *s);
char *bu_strndup(const char *s, size_t n);
void *bu_memdup(const void *p, size_t n);
char *bu_asprintf(const char *fmt, ...) BU_PRINTF(1, 2);
/* free(*p) and set *p = NULL; accepts NULL and *p == NULL */
#define bu_free(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

/* checked size arithmetic: aborts on overflow */
size_t bu_size_add(size_t a, size_t b);
size_t bu_size_mul(size_t a, size_t b);

/* ---- arenas ----------------------------------------------------------- */
/*
 * An arena owns every allocation made from it; bu_arena_reset frees them all
 * at once (the command arena), bu_arena_destroy frees the arena too.
 * Cleanups registered with bu_arena_cleanup run (in reverse order) on reset
 * and destroy: use them for PGresult, xmlDoc, icalcomponent and friends.
 * An arena is not thread-safe; it has one owner at a time.
 */
struct bu_arena;
typedef void bu_cleanup_fn(void *ptr);

struct bu_arena *bu_arena_create(size_t block_size /* 0 = default 8 KiB */);
void bu_arena_destroy(struct bu_arena **a);
void bu_arena_reset(struct bu_arena *a);
void *bu_arena_alloc(struct bu_arena *a, size_t size);   /* zeroed, 16-aligned */
char *bu_arena_strdup(struct bu_arena *a, const char *s);
char *bu_arena_strndup(struct bu_arena *a, const char *s, size_t n);
void *bu_arena_memdup(struct bu_arena *a, const void *p, size_t n);
char *bu_arena_printf(struct bu_arena *a, const char *fmt, ...) BU_PRINTF(2, 3);
char *bu_arena_vprintf(struct bu_arena *a, const char *fmt, va_list ap);
void bu_arena_cleanup(struct bu_arena *a, bu_cleanup_fn *fn, void *ptr);
size_t bu_arena_used(const struct bu_arena *a);          /* bytes handed out */

/* ---- growable byte buffers ------------------------------------------- */
/*
 * A buf owns heap memory; data is always followed by a spare NUL byte so
 * that text built in it can be used as a C string (bu_buf_cstr).
 * max == 0 means unlimited; appends that would pass max return -1 and leave
 * the buffer unchanged (callers turn that into the protocol's error).
 */
struct bu_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
};

void bu_buf_init(struct bu_buf *b, size_t max);
void bu_buf_deinit(struct bu_buf *b);
void bu_buf_reset(struct bu_buf *b);                     /* len = 0 */
int bu_buf_reserve(struct bu_buf *b, size_t extra);      /* 0 ok, -1 over max */
int bu_buf_append(struct bu_buf *b, const void *p, size_t n);
int bu_buf_append_str(struct bu_buf *b, const char *s);
int bu_buf_append_byte(struct bu_buf *b, uint8_t c);
int bu_buf_printf(struct bu_buf *b, const char *fmt, ...) BU_PRINTF(2, 3);
int bu_buf_vprintf(struct bu_buf *b, const char *fmt, va_list ap);
void bu_buf_consume(struct bu_buf *b, size_t n);         /* drop n bytes from the front */
const char *bu_buf_cstr(const struct bu_buf *b);        /* "" when empty */
/* Take one LF- or CRLF-terminated line from the front of `in` (the line
 * protocols' reader: POP3, SMTP, IMAP continuation lines). 1 = *line_r is
 * the line without its terminator (heap, NUL-terminated, caller frees),
 * 0 = no complete line yet, -1 = the line is longer than max (consumed, or
 * everything buffered when no LF came within max), -2 = the line contains a
 * NUL byte (consumed). The consumed bytes are wiped: a line may carry a
 * password. */
int bu_buf_take_line(struct bu_buf *in, size_t max, char **line_r);
char *bu_buf_steal(struct bu_buf *b, size_t *len_r);    /* caller frees; b is reset */

/* ---- slices (borrowed, not NUL-terminated) ---------------------------- */

struct bu_slice {
	const char *p;
	size_t len;
};
#define BU_SLICE(s) ((struct bu_slice){ (s), sizeof(s) - 1 })
static inline struct bu_slice bu_slice(const char *p, size_t len)
{
	return (struct bu_slice){ p, len };
}
struct bu_slice bu_slice_cstr(const char *s);
bool bu_slice_eq(struct bu_slice a, const char *s);       /* exact */
bool bu_slice_caseeq(struct bu_slice a, const char *s);   /* ASCII case-insensitive */
char *bu_slice_dup(struct bu_arena *a, struct bu_slice s); /* NUL-terminated copy */
struct bu_slice bu_slice_trim(struct bu_slice s);          /* strip SP/HTAB/CR/LF */

/* ---- small string helpers -------------------------------------------- */

bool bu_str_caseeq(const char *a, const char *b);
bool bu_str_startswith(const char *s, const char *prefix);
/* parse a non-negative decimal; 0 ok, -1 bad/overflow (> max) */
int bu_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out_r);
/* v in decimal into buf (no NUL): the number of digits, 1-20. For output
 * loops that write thousands of numbers (no printf). */
size_t bu_u64_dec(uint64_t v, char buf[20]);
/* Replace control chars and cap the length for logs (Postfix printable());
 * writes into out (size outsz), returns out. */
char *bu_sanitize(char *out, size_t outsz, const char *in, size_t inlen);
/* wipe a secret */
void bu_wipe(void *p, size_t n);

/* ---- time ---------------------------------------------------------- */
int64_t bu_now_ms(void);        /* CLOCK_REALTIME, ms */
int64_t bu_mono_ms(void);       /* CLOCK_MONOTONIC, ms */
int64_t bu_mono_us(void);

#endif

/*
 * util.c - Bureau's dependency-free base: panics, allocation that never
 * fails, arenas, growable buffers, slices, small string helpers and clocks.
 *
 * Allocation policy (STYLE.md 15): every wrapper returns zeroed memory or
 * logs and aborts; callers never check for NULL.  Arenas are a list of
 * blocks; allocations larger than a quarter of the block size get a block of
 * their own so that one huge literal does not waste a normal block.  The
 * first block survives bu_arena_reset() so the per-command arena costs no
 * malloc in the steady state.
 *
 * Deliberately left out: thread safety for arenas (one owner at a time) and
 * any locale awareness (all case folding is ASCII, as the protocols want).
 */
#include "util.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ARENA_DEFAULT_BLOCK 8192
#define ARENA_ALIGN 16
#define BUF_MIN_CAP 64

/* ---- assertions ------------------------------------------------------ */

static __thread int panicking;

void bu_panic(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (panicking++ == 0) {
		bu_log(BU_LOG_FATAL, "event=panic msg=%s", bu_log_q(msg));
	} else {
		/* A panic inside the logger: write what we can, raw. */
		static const char pfx[] = "level=fatal event=panic msg=";

		/* a failed write has nowhere to be reported: stop there */
		if (write(STDERR_FILENO, pfx, sizeof(pfx) - 1) < 0 ||
		    write(STDERR_FILENO, msg, strlen(msg)) < 0 ||
		    write(STDERR_FILENO, "\n", 1) < 0)
			abort();
	}
	abort();
}

/* ---- allocation ------------------------------------------------------ */

BU_NORETURN static void oom(size_t size)
{
	bu_panic("out of memory allocating %zu bytes", size);
}

void *bu_malloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);

	if (p == NULL)
		oom(size);
	return p;
}

void *bu_calloc(size_t n, size_t size)
{
	return bu_malloc(bu_size_mul(n, size));
}

void *bu_realloc(void *p, size_t size)
{
	void *np = realloc(p, size ? size : 1);

	if (np == NULL)
		oom(size);
	return np;
}

char *bu_strdup(const char *s)
{
	return bu_memdup(s, strlen(s) + 1);
}

char *bu_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = bu_malloc(bu_size_add(len, 1));

	memcpy(p, s, len);
	return p;
}

void *bu_memdup(const void *p, size_t n)
{
	void *np = bu_malloc(n);

	if (n > 0)
		memcpy(np, p, n);
	return np;
}

static char *heap_vprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	char *p;

	bu_assert(fmt != NULL); /* also tells the compiler, for sanitizer builds */
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		bu_panic("vsnprintf failed for format \"%s\"", fmt);
	p = bu_malloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *bu_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = heap_vprintf(fmt, ap);
	va_end(ap);
	return p;
}

size_t bu_size_add(size_t a, size_t b)
{
	size_t r;

	if (__builtin_add_overflow(a, b, &r))
		bu_panic("size overflow: %zu + %zu", a, b);
	return r;
}

size_t bu_size_mul(size_t a, size_t b)
{
	size_t r;

	if (__builtin_mul_overflow(a, b, &r))
		bu_panic("size overflow: %zu * %zu", a, b);
	return r;
}

/* ---- arenas ----------------------------------------------------------- */

struct arena_block {
	struct arena_block *next; /* older block */
	size_t size;		  /* usable bytes in data[] */
	size_t used;
	unsigned char data[];
};

struct arena_cleanup {
	struct arena_cleanup *next; /* registered earlier */
	bu_cleanup_fn *fn;
	void *ptr;
};

struct bu_arena {
	struct arena_block *blocks;	/* every block, newest first */
	struct arena_block *cur;	/* where small allocations come from */
	struct arena_block *first;	/* kept across bu_arena_reset */
	struct arena_cleanup *cleanups; /* newest first */
	size_t block_size;
	size_t used;
};

static struct arena_block *arena_block_new(size_t size)
{
	/* ARENA_ALIGN spare bytes so the first allocation can be aligned
	 * whatever alignment malloc gave us. */
	size_t total = bu_size_add(bu_size_add(sizeof(struct arena_block), size), ARENA_ALIGN);
	struct arena_block *b = malloc(total);

	if (b == NULL)
		oom(total);
	b->next = NULL;
	b->size = size + ARENA_ALIGN;
	b->used = 0;
	return b;
}

/* offset in b->data where an aligned allocation would start */
static size_t arena_block_aligned_used(const struct arena_block *b)
{
	uintptr_t p = (uintptr_t)(b->data + b->used);
	uintptr_t aligned = (p + (ARENA_ALIGN - 1)) & ~(uintptr_t)(ARENA_ALIGN - 1);

	return b->used + (size_t)(aligned - p);
}

struct bu_arena *bu_arena_create(size_t block_size)
{
	struct bu_arena *a = bu_malloc(sizeof(*a));

	a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
	if (a->block_size < 256)
		a->block_size = 256;
	a->first = arena_block_new(a->block_size);
	a->blocks = a->first;
	a->cur = a->first;
	return a;
}

static void arena_run_cleanups(struct bu_arena *a)
{
	/* Detach first so a cleanup can never see a half-run list. */
	while (a->cleanups != NULL) {
		struct arena_cleanup *c = a->cleanups;

		a->cleanups = c->next;
		c->fn(c->ptr);
	}
}

void bu_arena_reset(struct bu_arena *a)
{
	struct arena_block *b, *next;

	arena_run_cleanups(a);
	for (b = a->blocks; b != NULL; b = next) {
		next = b->next;
		if (b != a->first)
			free(b);
	}
	a->first->next = NULL;
	a->first->used = 0;
	a->blocks = a->first;
	a->cur = a->first;
	a->used = 0;
}

void bu_arena_destroy(struct bu_arena **ap)
{
	struct bu_arena *a = *ap;
	struct arena_block *b, *next;

	if (a == NULL)
		return;
	arena_run_cleanups(a);
	for (b = a->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
	*ap = NULL;
}

void *bu_arena_alloc(struct bu_arena *a, size_t size)
{
	struct arena_block *b = a->cur;
	size_t want = size ? size : 1;
	size_t off = arena_block_aligned_used(b);
	void *p;

	if (off > b->size || b->size - off < want) {
		if (want > a->block_size / 4) {
			/* Big allocation: a block of its own, linked behind
			 * the current one (always the list head) so cur keeps
			 * serving small ones. */
			b = arena_block_new(want);
			bu_assert(a->cur == a->blocks);
			b->next = a->cur->next;
			a->cur->next = b;
		} else {
			b = arena_block_new(a->block_size);
			b->next = a->blocks;
			a->blocks = b;
			a->cur = b;
		}
		off = arena_block_aligned_used(b);
		bu_assert(off <= b->size && b->size - off >= want);
	}
	p = b->data + off;
	b->used = off + want;
	memset(p, 0, want);
	a->used += size;
	return p;
}

void *bu_arena_memdup(struct bu_arena *a, const void *p, size_t n)
{
	void *np = bu_arena_alloc(a, n);

	if (n > 0)
		memcpy(np, p, n);
	return np;
}

char *bu_arena_strdup(struct bu_arena *a, const char *s)
{
	return bu_arena_memdup(a, s, strlen(s) + 1);
}

char *bu_arena_strndup(struct bu_arena *a, const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = bu_arena_alloc(a, bu_size_add(len, 1));

	memcpy(p, s, len);
	return p;
}

char *bu_arena_vprintf(struct bu_arena *a, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	char *p;

	bu_assert(fmt != NULL); /* also tells the compiler, for sanitizer builds */
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		bu_panic("vsnprintf failed for format \"%s\"", fmt);
	p = bu_arena_alloc(a, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *bu_arena_printf(struct bu_arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = bu_arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void bu_arena_cleanup(struct bu_arena *a, bu_cleanup_fn *fn, void *ptr)
{
	struct arena_cleanup *c = bu_arena_alloc(a, sizeof(*c));

	/* bu_arena_used() counts what callers asked for, not bookkeeping. */
	a->used -= sizeof(*c);
	c->fn = fn;
	c->ptr = ptr;
	c->next = a->cleanups;
	a->cleanups = c;
}

size_t bu_arena_used(const struct bu_arena *a)
{
	return a->used;
}

/* ---- growable byte buffers ------------------------------------------- */

void bu_buf_init(struct bu_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void bu_buf_deinit(struct bu_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void bu_buf_reset(struct bu_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

int bu_buf_reserve(struct bu_buf *b, size_t extra)
{
	size_t need, cap;

	if (b->max != 0 && (extra > b->max || b->len > b->max - extra))
		return -1;
	/* +1: the spare NUL byte after the data */
	need = bu_size_add(bu_size_add(b->len, extra), 1);
	if (need <= b->cap)
		return 0;
	cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need)
		cap = bu_size_mul(cap, 2);
	if (b->max != 0 && cap > b->max + 1)
		cap = b->max + 1; /* never allocate more than max allows */
	b->data = bu_realloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';
	return 0;
}

int bu_buf_append(struct bu_buf *b, const void *p, size_t n)
{
	if (bu_buf_reserve(b, n) < 0)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int bu_buf_append_str(struct bu_buf *b, const char *s)
{
	return bu_buf_append(b, s, strlen(s));
}

int bu_buf_take_line(struct bu_buf *in, size_t max, char **line_r)
{
	const uint8_t *lf = in->len > 0 ? memchr(in->data, '\n', in->len) : NULL;
	size_t n, used;

	*line_r = NULL;
	if (lf == NULL) {
		if (in->len <= max)
			return 0;
		bu_wipe(in->data, in->len);
		bu_buf_consume(in, in->len);
		return -1;
	}
	used = (size_t)(lf - in->data) + 1;
	n = used - 1;
	if (n > 0 && in->data[n - 1] == '\r')
		n--;
	if (n > max || memchr(in->data, '\0', n) != NULL) {
		int ret = n > max ? -1 : -2;

		bu_wipe(in->data, used);
		bu_buf_consume(in, used);
		return ret;
	}
	*line_r = bu_strndup((const char *)in->data, n);
	bu_wipe(in->data, used);
	bu_buf_consume(in, used);
	return 1;
}

int bu_buf_append_byte(struct bu_buf *b, uint8_t c)
{
	/* fast path: room for the byte and the spare NUL, within max (the
	 * ENVELOPE/BODYSTRUCTURE writers append byte by byte) */
	if (b->len + 2 <= b->cap && (b->max == 0 || b->len < b->max)) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return 0;
	}
	return bu_buf_append(b, &c, 1);
}

int bu_buf_vprintf(struct bu_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	size_t room;

	/* First try: print into the free space, which usually suffices. */
	room = b->data != NULL ? b->cap - b->len : 0;
	va_copy(ap2, ap);
	n = vsnprintf(room ? (char *)b->data + b->len : NULL, room, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		bu_panic("vsnprintf failed for format \"%s\"", fmt);
	if ((size_t)n < room) {
		if (b->max != 0 && b->len + (size_t)n > b->max) {
			b->data[b->len] = '\0'; /* undo */
			return -1;
		}
		b->len += (size_t)n;
		return 0;
	}
	if (b->data != NULL)
		b->data[b->len] = '\0'; /* undo the truncated attempt */
	if (bu_buf_reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int bu_buf_printf(struct bu_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = bu_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void bu_buf_consume(struct bu_buf *b, size_t n)
{
	if (n >= b->len) {
		bu_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

const char *bu_buf_cstr(const struct bu_buf *b)
{
	return b->data != NULL ? (const char *)b->data : "";
}

char *bu_buf_steal(struct bu_buf *b, size_t *len_r)
{
	char *p = b->data != NULL ? (char *)b->data : bu_malloc(1);

	if (len_r != NULL)
		*len_r = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

/* ---- slices ------------------------------------------------------------ */

struct bu_slice bu_slice_cstr(const char *s)
{
	if (s == NULL)
		return bu_slice("", 0);
	return bu_slice(s, strlen(s));
}

bool bu_slice_eq(struct bu_slice a, const char *s)
{
	size_t n = strlen(s);

	return a.len == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

static inline unsigned char ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

bool bu_slice_caseeq(struct bu_slice a, const char *s)
{
	size_t i;

	for (i = 0; i < a.len; i++) {
		if (s[i] == '\0' ||
		    ascii_lower((unsigned char)a.p[i]) != ascii_lower((unsigned char)s[i]))
			return false;
	}
	return s[i] == '\0';
}

/* With a NULL arena the copy is on the heap (caller frees). */
char *bu_slice_dup(struct bu_arena *a, struct bu_slice s)
{
	char *p;

	if (a != NULL)
		p = bu_arena_alloc(a, bu_size_add(s.len, 1));
	else
		p = bu_malloc(bu_size_add(s.len, 1));
	if (s.len > 0)
		memcpy(p, s.p, s.len);
	return p;
}

static inline bool is_trim_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct bu_slice bu_slice_trim(struct bu_slice s)
{
	while (s.len > 0 && is_trim_space(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_trim_space(s.p[s.len - 1]))
		s.len--;
	return s;
}

/* ---- small string helpers -------------------------------------------- */

bool bu_str_caseeq(const char *a, const char *b)
{
	for (;; a++, b++) {
		if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
			return false;
		if (*a == '\0')
			return true;
	}
}

bool bu_str_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

size_t bu_u64_dec(uint64_t v, char buf[20])
{
	char tmp[20];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	memcpy(buf, tmp + i, sizeof(tmp) - i);
	return sizeof(tmp) - i;
}

int bu_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out_r)
{
	uint64_t v = 0;
	size_t i;

	if (s == NULL || len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		/* d > max first: max - d must not wrap (max 5, "7") */
		if (d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out_r = v;
	return 0;
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 when it is not one.
 */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
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
	if (c == 0xe0 && p[1] < 0xa0)
		return 0; /* overlong */
	if (c == 0xed && p[1] >= 0xa0)
		return 0; /* surrogate */
	if (c == 0xf0 && p[1] < 0x90)
		return 0; /* overlong */
	if (c == 0xf4 && p[1] >= 0x90)
		return 0; /* above U+10FFFF */
	return len;
}

/*
 * Copy in to out, replacing control characters and bytes that are not
 * well-formed UTF-8 with '?'.  When the result would not fit in outsz - 1
 * bytes it is cut at a character boundary and ends in "...".
 */
char *bu_sanitize(char *out, size_t outsz, const char *in, size_t inlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0, limit;

	if (outsz == 0)
		return out;
	if (in == NULL)
		inlen = 0;
	limit = outsz - 1;
	while (i < inlen) {
		size_t n = utf8_seq_len(p + i, inlen - i);
		size_t outn = n == 0 ? 1 : n;

		if (o + outn > limit) {
			/* Does not fit: make room for the ellipsis. */
			size_t keep = limit >= 3 ? limit - 3 : limit;

			while (o > keep) {
				o--;
				/* do not leave half a character behind */
				while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80)
					o--;
			}
			if (limit >= 3) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (n == 0 || p[i] < 0x20 || p[i] == 0x7f) {
			out[o++] = '?';
			i++;
		} else {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	return out;
}

void bu_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

/* ---- time ---------------------------------------------------------- */

int64_t bu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bu_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bu_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

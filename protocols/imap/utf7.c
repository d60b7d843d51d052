/*
 * utf7.c - modified UTF-7 mailbox names (RFC 3501 section 5.1.3) to and
 * from UTF-8.
 *
 * Printable US-ASCII except '&' stands for itself, '&' is "&-", anything
 * else is UTF-16BE in modified BASE64 (',' for '/', no padding) between
 * '&' and '-'. Decoding is strict: only canonical encodings are accepted
 * (no encoded printable ASCII or NUL, no non-zero padding bits, no lone
 * surrogates, no shifted sequence right after another), so every name has
 * exactly one spelling. Encoding refuses
 * input that is not well-formed UTF-8.
 */
#include <string.h>

#include "imap.h"

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static void put_utf8(struct bu_buf *b, uint32_t cp)
{
	uint8_t u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (uint8_t)(0xc0 | (cp >> 6));
		u[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (uint8_t)(0xe0 | (cp >> 12));
		u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xf0 | (cp >> 18));
		u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	bu_buf_append(b, u, n);
}

static char *buf_to_arena(struct bu_arena *a, struct bu_buf *b)
{
	char *r = bu_arena_strndup(a, bu_buf_cstr(b), b->len);

	bu_buf_deinit(b);
	return r;
}

char *imap_utf7_to_utf8(struct bu_arena *a, const char *s)
{
	struct bu_buf b;
	const unsigned char *p = (const unsigned char *)s, *after_shift = NULL;

	bu_buf_init(&b, 0);
	while (*p != '\0') {
		uint32_t bits = 0, high = 0;
		unsigned nbits = 0;
		size_t units = 0;

		/* two shifted sequences in a row would be one */
		if (*p == '&' && p[1] != '-' && p > (const unsigned char *)s && p[-1] == '-' &&
		    after_shift == p)
			goto bad;
		if (*p != '&') {
			if (*p < 0x20 || *p > 0x7e)
				goto bad;
			bu_buf_append_byte(&b, *p++);
			continue;
		}
		p++;
		if (*p == '-') {
			bu_buf_append_byte(&b, '&');
			p++;
			continue;
		}
		for (;;) {
			int v;

			if (*p == '-')
				break;
			v = b64val(*p);
			if (v < 0)
				goto bad;
			p++;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits >= 16) {
				uint32_t u = (bits >> (nbits - 16)) & 0xffff;

				nbits -= 16;
				bits &= (1u << nbits) - 1;
				units++;
				if (high != 0) {
					if (u < 0xdc00 || u > 0xdfff)
						goto bad;
					put_utf8(&b,
						 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
					high = 0;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					high = u;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					goto bad;
				} else {
					if ((u >= 0x20 && u <= 0x7e) || u == 0)
						goto bad; /* printable ASCII stands for itself; no NUL */
					put_utf8(&b, u);
				}
			}
		}
		p++; /* '-' */
		after_shift = p;
		/* empty "&-" is '&'; leftovers must be fewer than 6 zero bits */
		if (units == 0 || high != 0 || nbits >= 6 || bits != 0)
			goto bad;
	}
	return buf_to_arena(a, &b);
bad:
	bu_buf_deinit(&b);
	return NULL;
}

/* Next code point of well-formed UTF-8 at *pp, or -1. */
static int32_t next_cp(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t cp;
	size_t n, i;

	if (p[0] < 0x80) {
		*pp = p + 1;
		return p[0];
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		cp = p[0] & 0x1f;
		n = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		cp = p[0] & 0x0f;
		n = 3;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		cp = p[0] & 0x07;
		n = 4;
	} else {
		return -1;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*pp = p + n;
	return (int32_t)cp;
}

char *imap_utf8_to_utf7(struct bu_arena *a, const char *s)
{
	struct bu_buf b;
	const unsigned char *p = (const unsigned char *)s;

	bu_buf_init(&b, 0);
	while (*p != '\0') {
		uint32_t bits = 0;
		unsigned nbits = 0;

		if (*p >= 0x20 && *p <= 0x7e) {
			if (*p == '&')
				bu_buf_append_str(&b, "&-");
			else
				bu_buf_append_byte(&b, *p);
			p++;
			continue;
		}
		bu_buf_append_byte(&b, '&');
		while (*p != '\0' && !(*p >= 0x20 && *p <= 0x7e)) {
			int32_t cp = next_cp(&p);
			uint32_t units[2];
			size_t nu, k;

			if (cp < 0)
				goto bad;
			if (cp >= 0x10000) {
				units[0] = 0xd800 + (((uint32_t)cp - 0x10000) >> 10);
				units[1] = 0xdc00 + (((uint32_t)cp - 0x10000) & 0x3ff);
				nu = 2;
			} else {
				units[0] = (uint32_t)cp;
				nu = 1;
			}
			for (k = 0; k < nu; k++) {
				bits = (bits << 16) | units[k];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					bu_buf_append_byte(
						&b, (uint8_t)b64chars[(bits >> nbits) & 0x3f]);
				}
				bits &= (1u << nbits) - 1;
			}
		}
		if (nbits > 0)
			bu_buf_append_byte(&b, (uint8_t)b64chars[(bits << (6 - nbits)) & 0x3f]);
		bu_buf_append_byte(&b, '-');
	}
	return buf_to_arena(a, &b);
bad:
	bu_buf_deinit(&b);
	return NULL;
}

/*
 * mime_private.h - helpers shared by mime.c, mime_decode.c and
 * mime_envelope.c. Not for use outside the MIME module.
 */
#ifndef GW_MIME_PRIVATE_H
#define GW_MIME_PRIVATE_H

#include "mime.h"

/* ---- header fields (mime.c) ------------------------------------------ */

/* One header field as found in a header block: [start, end) are its bytes
 * including continuation lines and the final line terminator (if any);
 * the name is [name_off, name_off + name_len) with trailing white space
 * removed; the raw value is [value_off, value_end) (after the colon, up to
 * but excluding the final line terminator). A line without a colon is a
 * field with name_len 0 and has_colon false. */
struct mime_field {
	size_t start, end;
	size_t name_off, name_len;
	size_t value_off, value_end;
	bool has_colon;
};

/* Length of the header block at d[0..len): up to and including the first
 * empty line (CRLF or LF); len when there is none. */
size_t mime_header_block_len(const uint8_t *d, size_t len);
/* Next field of the header block d[0..len) starting at *pos; stops at the
 * empty line. Returns false at the end. */
bool mime_field_next(const uint8_t *d, size_t len, size_t *pos, struct mime_field *f);
/* true when the field's name equals name (ASCII case-insensitive) */
bool mime_field_is(const uint8_t *d, const struct mime_field *f, const char *name);
/* Unfolded raw value (CR, LF and NUL removed; leading and trailing white
 * space trimmed) in arena. */
char *mime_field_value(struct bu_arena *a, const uint8_t *d, const struct mime_field *f);
/* The same, appended to a buf. */
void mime_field_unfold(struct bu_buf *out, const uint8_t *d, const struct mime_field *f);

/* Content-Type / Content-Disposition style "token; name=value; ..."
 * parsing (RFC 2045, RFC 2231). *token_r gets the lower-cased leading
 * token (NULL when empty/invalid), params are decoded to UTF-8. */
void mime_params_parse(struct bu_arena *a, const char *value, char **token_r,
		       struct mime_param **params_r, size_t *n_r);
const char *mime_param_get(const struct mime_param *params, size_t n, const char *name);

/* ---- decoding (mime_decode.c) ------------------------------------------ */

/* Append code point cp as UTF-8 (invalid ones become U+FFFD). */
void mime_utf8_put(struct bu_buf *out, uint32_t cp);
/* Length of the valid UTF-8 sequence at p (1..4) or 0 when invalid;
 * the code point in *cp_r. */
size_t mime_utf8_next(const uint8_t *p, size_t n, uint32_t *cp_r);
/* Append bytes as UTF-8: valid sequences kept, each invalid byte replaced
 * by U+FFFD, or, with cp1252, read as windows-1252 (the usual meaning of
 * undeclared 8-bit text). NUL bytes are dropped when drop_nul. */
void mime_utf8_append(struct bu_buf *out, const uint8_t *p, size_t n, bool cp1252,
		      bool drop_nul);
/* Convert text in charset to UTF-8 (NULL/empty charset: undeclared). */
void mime_charset_convert(struct bu_buf *out, const char *charset,
			  const uint8_t *p, size_t n);
/* RFC 2047 decoding of s[0..n) into out (UTF-8, NULs dropped). */
void mime_decode_words_buf(struct bu_buf *out, const char *s, size_t n);
/* Transfer decoding (base64, quoted-printable; anything else copied). */
void mime_decode_transfer(struct bu_buf *out, const char *encoding,
			  const uint8_t *p, size_t n);
/* HTML (UTF-8) to plain text: tags, comments, script/style/head dropped,
 * entities decoded, block elements become line breaks. */
void mime_html_to_text(struct bu_buf *out, const uint8_t *p, size_t n);
/* Copy a buf into the arena as a C string. */
char *mime_buf_dup(struct bu_arena *a, const struct bu_buf *b);

static inline bool mime_is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static inline uint8_t mime_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* ---- envelope (mime_envelope.c) ------------------------------------ */

/* Envelope of the header block hdr[0..len) (raw values, names raw). */
struct mime_envelope *mime_envelope_parse(struct bu_arena *a, const uint8_t *hdr, size_t len);
/* Address list parser; decode_names: RFC 2047-decode display names. */
size_t mime_addresses_parse(struct bu_arena *a, const char *value,
			    struct mime_address **list_r, bool decode_names);

#endif

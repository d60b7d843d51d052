/*
 * mime.h - MIME parser for real-world mail (RFC 5322, 2045-2049, 2047, 2231).
 *
 * Pure code: libc and libbu_util only (the fuzz target links just this).
 *
 * mime_parse() never fails and never modifies or loses bytes: whatever it
 * cannot make sense of (missing or broken boundaries, bare LF, NULs, 8-bit
 * headers, lines of any length) becomes a leaf part covering those bytes.
 * All offsets refer to the original message, so any section can be served
 * byte for byte from the stored raw message.
 *
 * The parsed tree is stored once at delivery in a neutral serialized form
 * (mime_serialize) and read back at FETCH (mime_deserialize) without looking
 * at the message again; protocol layers render ENVELOPE/BODYSTRUCTURE (IMAP)
 * or ActiveSync bodies from the tree.
 */
#ifndef GW_MIME_H
#define GW_MIME_H

#include "server/core/util.h"

#define MIME_MAX_DEPTH 32      /* deeper nesting is treated as an opaque leaf */
#define MIME_MAX_PARTS 2000    /* per message; beyond that, opaque leaves */

struct mime_param {
	char *name;            /* lower-case */
	char *value;           /* decoded (RFC 2231 continuations/charsets -> UTF-8) */
};

struct mime_address {
	char *name;            /* display name or NULL: decoded to UTF-8 by
	                        * mime_parse_addresses(); in an envelope it is raw
	                        * (quotes removed, encoded words kept), as IMAP
	                        * ENVELOPE wants */
	char *mailbox;         /* local part, or group name when group_start */
	char *host;            /* domain or NULL */
	char *adl;             /* source route ("@a,@b") or NULL */
	bool group_start;      /* RFC 5322 group "name:" marker */
	bool group_end;        /* ";" */
};

struct mime_envelope {
	char *date;            /* raw header values (unfolded, not decoded), NULL = absent */
	char *subject;         /* raw (encoded words kept, as IMAP ENVELOPE wants) */
	struct mime_address *from, *sender, *reply_to, *to, *cc, *bcc;
	size_t n_from, n_sender, n_reply_to, n_to, n_cc, n_bcc;
	char *in_reply_to;
	char *message_id;
};

struct mime_part {
	/* offsets into the raw message */
	size_t hdr_off, hdr_len;   /* header block including the blank line */
	size_t body_off, body_len; /* body (for multipart: between the header and the end) */
	size_t body_lines;         /* number of lines in the body */
	char *type;                /* lower-case "text"; default "text" */
	char *subtype;             /* lower-case "plain" */
	struct mime_param *params; /* Content-Type parameters */
	size_t n_params;
	char *id;                  /* Content-ID or NULL */
	char *description;         /* Content-Description or NULL */
	char *encoding;            /* lower-case Content-Transfer-Encoding; default "7bit" */
	char *md5;                 /* Content-MD5 or NULL */
	char *disposition;         /* lower-case "attachment"/"inline" or NULL */
	struct mime_param *disp_params;
	size_t n_disp_params;
	char *language;            /* Content-Language or NULL */
	char *location;            /* Content-Location or NULL */
	struct mime_part *children;/* multipart children */
	size_t n_children;
	struct mime_part *message; /* message/rfc822 (and global): the embedded message */
	struct mime_envelope *envelope; /* of this part when it is a message (root, or the embedded one) */
};

/* Parse; the tree lives in arena a. data need not be NUL-terminated.
 * Returns the root (a message part whose envelope is set). */
struct mime_part *mime_parse(struct bu_arena *a, const uint8_t *data, size_t len);

/* Serialize / read back the tree (envelopes included). The format is
 * private to mime.c, versioned, and never contains raw NULs. Deserialize
 * returns NULL for input it does not recognise. */
char *mime_serialize(struct bu_arena *a, const struct mime_part *root, size_t *len_r);
struct mime_part *mime_deserialize(struct bu_arena *a, const char *s, size_t len);

/* Find an IMAP-style section number "1.2.3" (the part path only, no
 * HEADER/TEXT/MIME suffix; "" = the whole message). For a message/rfc822
 * part, numbering continues into the embedded message as RFC 3501 6.4.5 says.
 * Returns the part or NULL. */
const struct mime_part *mime_find_part(const struct mime_part *root, const char *path);

/* Header access on raw bytes: value of the first field `name` (unfolded, raw)
 * within [hdr, hdr+len), in arena; NULL if absent. */
char *mime_header_get(struct bu_arena *a, const uint8_t *hdr, size_t len, const char *name);
/* Copy only the header fields named (or, with not=true, all but those) from a
 * header block, keeping original bytes and order, followed by CRLF
 * (IMAP HEADER.FIELDS / HEADER.FIELDS.NOT). */
void mime_header_filter(struct bu_buf *out, const uint8_t *hdr, size_t len,
			const char *const *names, size_t n_names, bool not);

/* RFC 2047: decode encoded words in a header value to UTF-8 (unknown
 * charsets: bytes kept as they are, invalid UTF-8 replaced). */
char *mime_decode_words(struct bu_arena *a, const char *value);
/* Decode a body by transfer encoding (base64, quoted-printable, else
 * as is) and, for text parts, convert charset to UTF-8 (us-ascii, utf-8,
 * iso-8859-1..15, windows-1250..1258, koi8-r; others kept as bytes with
 * invalid UTF-8 replaced). Output in buf. */
void mime_decode_body(struct bu_buf *out, const struct mime_part *p,
		      const uint8_t *msg, size_t msg_len, bool to_utf8);

/* Derived fields, computed once at delivery and stored for SORT/THREAD/SEARCH. */
struct mime_summary {
	char *subject;            /* decoded UTF-8 */
	char *base_subject;       /* RFC 5256 base subject (for SORT/THREAD) */
	char *from;               /* decoded "Name <addr>" list */
	char *from_sort;          /* RFC 5256 sort key: first mailbox, lower-case */
	char *from_display;       /* RFC 5957 DISPLAYFROM key */
	char *to, *to_sort, *to_display;
	char *cc, *cc_sort;
	char *bcc;
	int64_t date;             /* Date: as unix seconds; 0 if absent/bad */
	char *message_id;         /* without <> */
	char *in_reply_to;        /* first msg-id, without <> */
	char *references;         /* space-separated msg-ids without <> */
	char *preview;            /* RFC 8970: <= 200 chars of text, UTF-8 */
	bool has_attachment;
};
void mime_summarize(struct bu_arena *a, const struct mime_part *root,
		    const uint8_t *msg, size_t len, struct mime_summary *out);
/* All searchable text: decoded header values and decoded text bodies
 * (UTF-8, HTML tags stripped), for the body/text index. */
void mime_search_text(struct bu_buf *out, const struct mime_part *root,
		      const uint8_t *msg, size_t len, bool headers, bool bodies);

/* RFC 5256 base subject of a decoded subject (arena). */
char *mime_base_subject(struct bu_arena *a, const char *subject);
/* Parse an RFC 5322 date to unix seconds (UTC); -1 when unparseable. */
int64_t mime_parse_date(const char *s);
/* Parse an address list header value into addresses (arena). */
size_t mime_parse_addresses(struct bu_arena *a, const char *value, struct mime_address **list_r);

#endif

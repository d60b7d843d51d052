/*
 * test_mime.c - MIME parser tests.
 *
 * Runs the corpus in tests/mime-corpus (every .eml listed in expect.txt):
 * structural invariants (no byte lost, offsets in bounds, children inside
 * their parent), the expected tree and derived values, serialization round
 * trips, and robustness of mime_deserialize against truncated/corrupted
 * input. Then table tests for sections, header filtering, RFC 2047/2231
 * decoding, transfer decoding, dates, addresses, base subjects, previews.
 *
 * The corpus directory is $BUREAU_SRCDIR/tests/mime-corpus (set by meson),
 * or the first argument.
 */
#include "groupware/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static int checks;

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		checks++;                                                     \
		if (!(cond)) {                                                \
			failures++;                                           \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                  \
		}                                                             \
	} while (0)

static const char *nz(const char *s)
{
	return s != NULL ? s : "NIL";
}

#define CHECK_STR(got, want, ...)                                             \
	do {                                                                  \
		const char *g_ = (got), *w_ = (want);                         \
		checks++;                                                     \
		if ((g_ == NULL) != (w_ == NULL) ||                           \
		    (g_ != NULL && strcmp(g_, w_) != 0)) {                    \
			failures++;                                           \
			fprintf(stderr, "FAIL %s:%d: got \"%s\" want \"%s\": ", \
				__FILE__, __LINE__, nz(g_), nz(w_));           \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                  \
		}                                                             \
	} while (0)

/* ---- helpers ------------------------------------------------------------ */

static uint8_t *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	uint8_t *d;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	d = bu_malloc((size_t)n + 1);
	if (n > 0 && fread(d, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(d);
		return NULL;
	}
	fclose(f);
	*len_r = (size_t)n;
	return d;
}

static void tree_str(struct bu_buf *b, const struct mime_part *p)
{
	size_t i;

	bu_buf_printf(b, "%s/%s:%zu:%zu", p->type, p->subtype, p->body_len, p->body_lines);
	if (p->n_children > 0) {
		bu_buf_append_byte(b, '(');
		for (i = 0; i < p->n_children; i++) {
			if (i > 0)
				bu_buf_append_byte(b, ' ');
			tree_str(b, &p->children[i]);
		}
		bu_buf_append_byte(b, ')');
	}
	if (p->message != NULL) {
		bu_buf_append_byte(b, '{');
		tree_str(b, p->message);
		bu_buf_append_byte(b, '}');
	}
}

static size_t count_lines_ref(const uint8_t *p, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += p[i] == '\n';
	if (n > 0 && p[n - 1] != '\n')
		c++;
	return c;
}

/* Invariants; returns the number of nodes, tracks max depth. */
static size_t check_invariants(const char *name, const struct mime_part *p, const uint8_t *msg,
			       size_t len, size_t lo, size_t hi, unsigned depth, unsigned *max_depth)
{
	size_t n = 1, i;

	if (depth > *max_depth)
		*max_depth = depth;
	CHECK(p->hdr_off >= lo && p->hdr_off <= hi, "%s: hdr_off %zu outside [%zu,%zu]", name, p->hdr_off, lo, hi);
	CHECK(p->body_off == p->hdr_off + p->hdr_len, "%s: body_off", name);
	CHECK(p->body_off + p->body_len <= hi, "%s: body end %zu > %zu", name, p->body_off + p->body_len, hi);
	CHECK(p->type != NULL && p->subtype != NULL && p->encoding != NULL, "%s: NULL type", name);
	if (p->body_off + p->body_len <= len)
		CHECK(p->body_lines == count_lines_ref(msg + p->body_off, p->body_len),
		      "%s: lines %zu", name, p->body_lines);
	CHECK((strcmp(p->type, "multipart") == 0) == (p->n_children > 0), "%s: multipart<->children (%s/%s)",
	      name, p->type, p->subtype);
	CHECK((strcmp(p->type, "message") == 0 && (strcmp(p->subtype, "rfc822") == 0 ||
						     strcmp(p->subtype, "global") == 0)) == (p->message != NULL),
	      "%s: message<->embedded", name);
	CHECK(depth < MIME_MAX_DEPTH, "%s: depth %u", name, depth);
	for (i = 0; i < p->n_children; i++) {
		const struct mime_part *c = &p->children[i];

		CHECK(c->envelope == NULL, "%s: child with envelope", name);
		if (i > 0)
			CHECK(c->hdr_off >= p->children[i - 1].body_off + p->children[i - 1].body_len,
			      "%s: children overlap", name);
		n += check_invariants(name, c, msg, len, p->body_off, p->body_off + p->body_len,
				      depth + 1, max_depth);
	}
	if (p->message != NULL) {
		CHECK(p->message->envelope != NULL, "%s: embedded without envelope", name);
		CHECK(p->message->hdr_off == p->body_off &&
		      p->message->body_off + p->message->body_len == p->body_off + p->body_len,
		      "%s: embedded message range", name);
		n += check_invariants(name, p->message, msg, len, p->body_off,
				      p->body_off + p->body_len, depth + 1, max_depth);
	}
	return n;
}

static const struct mime_part *deepest(const struct mime_part *p, unsigned depth, unsigned want)
{
	size_t i;

	if (depth == want)
		return p;
	for (i = 0; i < p->n_children; i++) {
		const struct mime_part *r = deepest(&p->children[i], depth + 1, want);

		if (r != NULL)
			return r;
	}
	return p->message != NULL ? deepest(p->message, depth + 1, want) : NULL;
}

static void addrs_str(struct bu_buf *b, const struct mime_address *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			bu_buf_append_byte(b, ';');
		if (a[i].group_start)
			bu_buf_printf(b, "G:%s", nz(a[i].mailbox));
		else if (a[i].group_end)
			bu_buf_append_str(b, "E");
		else
			bu_buf_printf(b, "%s|%s|%s", nz(a[i].name), nz(a[i].mailbox), nz(a[i].host));
		if (a[i].adl != NULL)
			bu_buf_printf(b, "@%s", a[i].adl);
	}
}

static const char *env_field(struct bu_arena *a, const struct mime_envelope *e, const char *f)
{
	struct bu_buf b;
	char *r;

	if (e == NULL)
		return "NOENVELOPE";
	if (strcmp(f, "subject") == 0)
		return e->subject;
	if (strcmp(f, "date") == 0)
		return e->date;
	if (strcmp(f, "message-id") == 0)
		return e->message_id;
	if (strcmp(f, "in-reply-to") == 0)
		return e->in_reply_to;
	bu_buf_init(&b, 0);
	if (strcmp(f, "from") == 0)
		addrs_str(&b, e->from, e->n_from);
	else if (strcmp(f, "sender") == 0)
		addrs_str(&b, e->sender, e->n_sender);
	else if (strcmp(f, "reply-to") == 0)
		addrs_str(&b, e->reply_to, e->n_reply_to);
	else if (strcmp(f, "to") == 0)
		addrs_str(&b, e->to, e->n_to);
	else if (strcmp(f, "cc") == 0)
		addrs_str(&b, e->cc, e->n_cc);
	else if (strcmp(f, "bcc") == 0)
		addrs_str(&b, e->bcc, e->n_bcc);
	else
		bu_buf_append_str(&b, "UNKNOWNFIELD");
	r = bu_arena_strdup(a, bu_buf_cstr(&b));
	bu_buf_deinit(&b);
	return r;
}

static const char *param_of(const struct mime_param *p, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(p[i].name, name) == 0)
			return p[i].value;
	}
	return NULL;
}

/* ---- the corpus ---------------------------------------------------------- */

struct corpus_msg {
	const char *name;
	struct bu_arena *a;
	uint8_t *data;
	size_t len;
	struct mime_part *root;
	struct mime_summary sum;
	char *search;
	size_t n_parts;
	unsigned depth;
};

/* "section.1.2" -> key "section", arg "1.2"; "env.2.subject" -> arg "2",
 * field "subject"; "env.subject" -> arg "", field "subject" */
static void check_key(struct corpus_msg *m, const char *key, const char *want)
{
	struct bu_arena *a = m->a;
	const char *dot = strchr(key, '.');
	char kind[32] = "";
	const char *arg = "";
	const char *got = NULL;
	char tmp[64];

	if (dot != NULL && (size_t)(dot - key) < sizeof(kind)) {
		memcpy(kind, key, (size_t)(dot - key));
		kind[dot - key] = '\0';
		arg = dot + 1;
	}
	if (strcmp(key, "tree") == 0) {
		struct bu_buf b;

		bu_buf_init(&b, 0);
		tree_str(&b, m->root);
		got = bu_arena_strdup(a, bu_buf_cstr(&b));
		bu_buf_deinit(&b);
	} else if (strcmp(key, "subject") == 0) {
		got = m->sum.subject != NULL ? m->sum.subject : "";
	} else if (strcmp(key, "base") == 0) {
		got = m->sum.base_subject;
	} else if (strcmp(key, "from") == 0) {
		got = m->sum.from;
	} else if (strcmp(key, "from_sort") == 0) {
		got = m->sum.from_sort;
	} else if (strcmp(key, "from_display") == 0) {
		got = m->sum.from_display;
	} else if (strcmp(key, "to") == 0) {
		got = m->sum.to;
	} else if (strcmp(key, "bcc") == 0) {
		got = m->sum.bcc;
	} else if (strcmp(key, "preview") == 0) {
		got = m->sum.preview;
	} else if (strcmp(key, "msgid") == 0) {
		got = m->sum.message_id;
	} else if (strcmp(key, "date") == 0) {
		snprintf(tmp, sizeof(tmp), "%lld", (long long)m->sum.date);
		got = tmp;
	} else if (strcmp(key, "attach") == 0) {
		got = m->sum.has_attachment ? "1" : "0";
	} else if (strcmp(key, "parts") == 0) {
		snprintf(tmp, sizeof(tmp), "%zu", m->n_parts);
		got = tmp;
	} else if (strcmp(key, "children") == 0) {
		snprintf(tmp, sizeof(tmp), "%zu", m->root->n_children);
		got = tmp;
	} else if (strcmp(key, "depth") == 0) {
		snprintf(tmp, sizeof(tmp), "%u", m->depth);
		got = tmp;
	} else if (strcmp(key, "hdrlen") == 0) {
		snprintf(tmp, sizeof(tmp), "%zu", m->root->hdr_len);
		got = tmp;
	} else if (strcmp(key, "leaf_type") == 0) {
		const struct mime_part *p = deepest(m->root, 0, m->depth);

		got = p != NULL ? bu_arena_printf(a, "%s/%s", p->type, p->subtype) : NULL;
	} else if (strncmp(key, "search", 6) == 0) {
		CHECK(strstr(m->search, want) != NULL, "%s: search text lacks \"%s\"", m->name, want);
		return;
	} else if (strcmp(key, "nosearch") == 0) {
		CHECK(strstr(m->search, want) == NULL, "%s: search text has \"%s\"", m->name, want);
		return;
	} else if (strcmp(key, "decoded1") == 0) {
		const struct mime_part *p = mime_find_part(m->root, "1");
		struct bu_buf b;

		bu_buf_init(&b, 0);
		if (p != NULL)
			mime_decode_body(&b, p, m->data, m->len, true);
		got = bu_arena_strndup(a, bu_buf_cstr(&b), b.len);
		bu_buf_deinit(&b);
	} else if (strcmp(kind, "section") == 0) {
		const struct mime_part *p = mime_find_part(m->root, arg);

		if (p == NULL)
			got = "NIL";
		else if (strchr(want, ':') != NULL)
			got = bu_arena_printf(a, "%s/%s:%zu", p->type, p->subtype, p->body_len);
		else
			got = bu_arena_printf(a, "%s/%s", p->type, p->subtype);
	} else if (strcmp(kind, "env") == 0) {
		/* env.FIELD (root) or env.SECTION.FIELD (embedded message) */
		const char *last = strrchr(key, '.');
		const struct mime_envelope *e = m->root->envelope;

		if (last != dot) {
			char *sec = bu_arena_strndup(a, arg, (size_t)(last - arg));
			const struct mime_part *p = mime_find_part(m->root, sec);

			e = p != NULL && p->message != NULL ? p->message->envelope : NULL;
		}
		got = env_field(a, e, last + 1);
	} else if (kind[0] != '\0') {
		/* param.SECTION.NAME, dparam.SECTION.NAME, disp/desc/id/enc/lang/loc/md5.SECTION */
		const char *sec = arg, *pname = NULL;
		const struct mime_part *p;

		if (strcmp(kind, "param") == 0 || strcmp(kind, "dparam") == 0) {
			const char *last = strrchr(key, '.');

			sec = bu_arena_strndup(a, arg, (size_t)(last - arg));
			pname = last + 1;
		}
		p = mime_find_part(m->root, sec);
		if (p == NULL)
			got = "NOPART";
		else if (strcmp(kind, "param") == 0)
			got = param_of(p->params, p->n_params, pname);
		else if (strcmp(kind, "dparam") == 0)
			got = param_of(p->disp_params, p->n_disp_params, pname);
		else if (strcmp(kind, "disp") == 0)
			got = p->disposition;
		else if (strcmp(kind, "desc") == 0)
			got = p->description;
		else if (strcmp(kind, "id") == 0)
			got = p->id;
		else if (strcmp(kind, "enc") == 0)
			got = p->encoding;
		else if (strcmp(kind, "lang") == 0)
			got = p->language;
		else if (strcmp(kind, "loc") == 0)
			got = p->location;
		else if (strcmp(kind, "md5") == 0)
			got = p->md5;
		else {
			CHECK(false, "%s: unknown key %s", m->name, key);
			return;
		}
	} else {
		CHECK(false, "%s: unknown key %s", m->name, key);
		return;
	}
	CHECK_STR(got, want, "%s: %s", m->name, key);
}

static bool valid_utf8(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t l, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			l = 2;
		else if (c >= 0xe0 && c <= 0xef)
			l = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			l = 4;
		else
			return false;
		if (i + l > n)
			return false;
		for (k = 1; k < l; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
		}
		if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] >= 0xa0) ||
		    (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] >= 0x90))
			return false;
		i += l;
	}
	return true;
}

static void check_roundtrip(struct corpus_msg *m)
{
	size_t l1, l2, cut;
	char *s1 = mime_serialize(m->a, m->root, &l1);
	struct mime_part *t = mime_deserialize(m->a, s1, l1);
	char *s2;
	struct bu_buf b1, b2;

	CHECK(l1 > 2 && strncmp(s1, "M1 ", 3) == 0, "%s: serialized prefix", m->name);
	CHECK(memchr(s1, '\0', l1) == NULL, "%s: NUL in serialized form", m->name);
	CHECK(valid_utf8(s1, l1), "%s: serialized form not UTF-8", m->name);
	CHECK(t != NULL, "%s: deserialize failed", m->name);
	if (t == NULL)
		return;
	s2 = mime_serialize(m->a, t, &l2);
	CHECK(l1 == l2 && memcmp(s1, s2, l1) == 0, "%s: round trip differs", m->name);
	bu_buf_init(&b1, 0);
	bu_buf_init(&b2, 0);
	tree_str(&b1, m->root);
	tree_str(&b2, t);
	CHECK_STR(bu_buf_cstr(&b2), bu_buf_cstr(&b1), "%s: tree after round trip", m->name);
	bu_buf_deinit(&b1);
	bu_buf_deinit(&b2);
	/* every proper prefix is rejected; corruptions never crash */
	if (l1 < 20000) {
		struct bu_arena *a = bu_arena_create(0);
		unsigned seed = 12345;

		for (cut = 0; cut < l1; cut++) {
			CHECK(mime_deserialize(a, s1, cut) == NULL, "%s: prefix %zu accepted", m->name, cut);
			bu_arena_reset(a);
		}
		for (cut = 0; cut < 2000; cut++) {
			char *c = bu_memdup(s1, l1);
			struct mime_part *x;

			seed = seed * 1103515245 + 12345;
			c[(seed >> 8) % l1] = (char)(seed >> 20);
			x = mime_deserialize(a, c, l1);
			if (x != NULL) {
				size_t lx;

				(void)mime_serialize(a, x, &lx);
				(void)mime_find_part(x, "1.2");
			}
			free(c);
			bu_arena_reset(a);
		}
		bu_arena_destroy(&a);
	}
}

static void check_prefixes(struct corpus_msg *m)
{
	/* parsing any prefix of a message keeps the invariants */
	struct bu_arena *a = bu_arena_create(0);
	size_t step = m->len > 4000 ? m->len / 200 : 1, cut;

	for (cut = 0; cut <= m->len; cut += step) {
		struct mime_part *r = mime_parse(a, m->data, cut);
		unsigned d = 0;
		struct mime_summary s;
		struct bu_buf b;

		(void)check_invariants(m->name, r, m->data, cut, 0, cut, 0, &d);
		CHECK(r->hdr_off == 0 && r->body_off + r->body_len == cut, "%s: prefix %zu root range",
		      m->name, cut);
		mime_summarize(a, r, m->data, cut, &s);
		bu_buf_init(&b, 0);
		mime_search_text(&b, r, m->data, cut, true, true);
		bu_buf_deinit(&b);
		bu_arena_reset(a);
	}
	bu_arena_destroy(&a);
}

static void unescape(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++) {
		if (*s == '\\' && s[1] != '\0') {
			s++;
			*w++ = *s == 'r' ? '\r' : *s == 'n' ? '\n' : *s;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static void finish_msg(struct corpus_msg *m)
{
	if (m->a != NULL)
		bu_arena_destroy(&m->a);
	free(m->data);
	memset(m, 0, sizeof(*m));
}

static int run_corpus(const char *dir)
{
	char *path;
	FILE *f;
	char line[8192];
	struct corpus_msg m;
	int files = 0;

	memset(&m, 0, sizeof(m));
	path = bu_asprintf("%s/expect.txt", dir);
	f = fopen(path, "r");
	CHECK(f != NULL, "cannot open %s", path);
	free(path);
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t l = strlen(line);
		char *eq;

		while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
			line[--l] = '\0';
		if (l == 0 || line[0] == '#')
			continue;
		if (line[0] == '[') {
			struct bu_buf b;
			size_t l1;

			finish_msg(&m);
			line[l - 1] = '\0';
			m.a = bu_arena_create(0);
			path = bu_arena_printf(m.a, "%s/%s", dir, line + 1);
			m.name = bu_arena_strdup(m.a, line + 1);
			m.data = read_file(path, &m.len);
			CHECK(m.data != NULL, "cannot read %s", path);
			if (m.data == NULL) {
				bu_arena_destroy(&m.a);
				continue;
			}
			files++;
			m.root = mime_parse(m.a, m.data, m.len);
			CHECK(m.root->hdr_off == 0 && m.root->body_off + m.root->body_len == m.len,
			      "%s: root does not cover the message", m.name);
			CHECK(m.root->envelope != NULL, "%s: root envelope", m.name);
			m.n_parts = check_invariants(m.name, m.root, m.data, m.len, 0, m.len, 0, &m.depth);
			mime_summarize(m.a, m.root, m.data, m.len, &m.sum);
			CHECK(m.sum.base_subject != NULL && m.sum.preview != NULL && m.sum.from_sort != NULL,
			      "%s: summary NULLs", m.name);
			CHECK(valid_utf8(m.sum.preview, strlen(m.sum.preview)), "%s: preview UTF-8", m.name);
			bu_buf_init(&b, 0);
			mime_search_text(&b, m.root, m.data, m.len, true, true);
			CHECK(memchr(bu_buf_cstr(&b), '\0', b.len) == NULL, "%s: NUL in search text", m.name);
			CHECK(valid_utf8(bu_buf_cstr(&b), b.len), "%s: search text UTF-8", m.name);
			m.search = bu_arena_strdup(m.a, bu_buf_cstr(&b));
			bu_buf_deinit(&b);
			check_roundtrip(&m);
			if (m.len < 200000)
				check_prefixes(&m);
			(void)l1;
			continue;
		}
		eq = strstr(line, " = ");
		if (eq == NULL) {
			/* "key =" with an empty value */
			if (l >= 2 && strcmp(line + l - 2, " =") == 0) {
				line[l - 2] = '\0';
				if (m.root != NULL)
					check_key(&m, line, "");
				continue;
			}
			CHECK(false, "bad expect line: %s", line);
			continue;
		}
		*eq = '\0';
		unescape(eq + 3);
		if (m.root != NULL)
			check_key(&m, line, eq + 3);
	}
	finish_msg(&m);
	fclose(f);
	CHECK(files >= 25, "only %d corpus files", files);
	return files;
}

/* ---- table tests ---------------------------------------------------------- */

static void test_sections(void)
{
	struct bu_arena *a = bu_arena_create(0);
	const char *msg =
		"Subject: s\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
		"--X\r\nContent-Type: text/plain\r\n\r\none\r\n"
		"--X\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
		"--X\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner2\r\n"
		"Content-Type: multipart/alternative; boundary=Y\r\n\r\n"
		"--Y\r\n\r\nalt1\r\n--Y\r\nContent-Type: text/html\r\n\r\nalt2\r\n--Y--\r\n"
		"--X--\r\n";
	struct mime_part *r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	const struct mime_part *p;

	CHECK(mime_find_part(r, "") == r, "root");
	p = mime_find_part(r, "1");
	CHECK(p != NULL && strcmp(p->subtype, "plain") == 0 && p->body_len == 3, "1");
	p = mime_find_part(r, "2");
	CHECK(p != NULL && strcmp(p->subtype, "rfc822") == 0, "2");
	p = mime_find_part(r, "2.1");
	CHECK(p != NULL && p == r->children[1].message && p->body_len == 10, "2.1 is the embedded body");
	CHECK(mime_find_part(r, "2.2") == NULL, "2.2");
	CHECK(mime_find_part(r, "2.1.1") == NULL, "2.1.1");
	p = mime_find_part(r, "3.2");
	CHECK(p != NULL && strcmp(p->subtype, "html") == 0 && p->body_len == 4, "3.2");
	p = mime_find_part(r, "3.1");
	CHECK(p != NULL && strcmp(p->subtype, "plain") == 0 && p->body_len == 4, "3.1");
	CHECK(mime_find_part(r, "4") == NULL, "4");
	CHECK(mime_find_part(r, "0") == NULL, "0");
	CHECK(mime_find_part(r, "1.") == NULL, "1.");
	CHECK(mime_find_part(r, ".1") == NULL, ".1");
	CHECK(mime_find_part(r, "1..2") == NULL, "1..2");
	CHECK(mime_find_part(r, "1a") == NULL, "1a");
	CHECK(mime_find_part(r, "99999999999999999999") == NULL, "huge");
	CHECK(mime_find_part(r, "1.1") == NULL, "1.1 of a leaf");

	/* a single-part message: 1 is the body, 2 does not exist */
	r = mime_parse(a, (const uint8_t *)"Subject: x\r\n\r\nbody", 18);
	CHECK(mime_find_part(r, "1") == r, "single 1");
	CHECK(mime_find_part(r, "2") == NULL, "single 2");
	/* a top-level message/rfc822 */
	msg = "Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx";
	r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	CHECK(mime_find_part(r, "1") == r, "top rfc822 1");
	CHECK(mime_find_part(r, "1.1") == r->message, "top rfc822 1.1");
	bu_arena_destroy(&a);
}

static void test_header_filter(void)
{
	const char *h = "From: a@b\r\nSubject: one\r\n two\r\nTo: c@d\nX-Lf: y\nsubject: again\r\nno colon line\r\n\r\nbody: not a header\r\n";
	const char *names[] = { "SUBJECT", "x-lf" };
	const char *none[] = { "x-absent" };
	struct bu_buf b;
	struct bu_arena *a = bu_arena_create(0);

	bu_buf_init(&b, 0);
	mime_header_filter(&b, (const uint8_t *)h, strlen(h), names, 2, false);
	CHECK_STR(bu_buf_cstr(&b), "Subject: one\r\n two\r\nX-Lf: y\nsubject: again\r\n\r\n", "filter");
	bu_buf_reset(&b);
	mime_header_filter(&b, (const uint8_t *)h, strlen(h), names, 2, true);
	CHECK_STR(bu_buf_cstr(&b), "From: a@b\r\nTo: c@d\nno colon line\r\n\r\n", "filter not");
	bu_buf_reset(&b);
	mime_header_filter(&b, (const uint8_t *)h, strlen(h), none, 1, false);
	CHECK_STR(bu_buf_cstr(&b), "\r\n", "filter nothing");
	bu_buf_reset(&b);
	/* last field without a line end gets one, then the blank line */
	mime_header_filter(&b, (const uint8_t *)"Subject: x", 10, names, 1, false);
	CHECK_STR(bu_buf_cstr(&b), "Subject: x\r\n\r\n", "filter unterminated");
	bu_buf_deinit(&b);

	CHECK_STR(mime_header_get(a, (const uint8_t *)h, strlen(h), "subject"), "one two", "get folded");
	CHECK_STR(mime_header_get(a, (const uint8_t *)h, strlen(h), "TO"), "c@d", "get");
	CHECK_STR(mime_header_get(a, (const uint8_t *)h, strlen(h), "body"), NULL, "get after header");
	CHECK_STR(mime_header_get(a, (const uint8_t *)"Subject  :  spaced  \r\n", 22, "subject"), "spaced",
		  "obsolete space before colon");
	CHECK_STR(mime_header_get(a, (const uint8_t *)"X: a\r\n\tb\r\n  c", 13, "x"), "a\tb  c", "unfold");
	bu_arena_destroy(&a);
}

static void test_decode_words(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "plain text", "plain text" },
		{ "=?utf-8?q?caf=C3=A9?=", "café" },
		{ "=?UTF-8?Q?a_b?=", "a b" },
		{ "=?iso-8859-1?q?a?= =?iso-8859-1?q?b?=", "ab" },
		{ "=?iso-8859-1?q?a?=\r\n  =?iso-8859-1?q?b?=", "ab" },
		{ "=?iso-8859-1?q?a?= x =?iso-8859-1?q?b?=", "a x b" },
		{ "x =?utf-8?b?w6k=?= y", "x é y" },
		{ "=?utf-8*en?q?lang?=", "lang" },
		{ "=?iso-8859-2?q?=B1=E6?=", "ąć" },
		{ "=?windows-1250?q?=9A?=", "š" },
		{ "=?windows-1251?b?7/Du4uXw6uA=?=", "проверка" },
		{ "=?koi8-r?q?=F0=D2=C9?=", "При" },
		{ "=?iso-8859-15?q?=A4?=", "€" },
		{ "=?iso-8859-1?q?=80?=", "€" },   /* read as windows-1252 */
		{ "=?utf-8?q?bad=FF?=", "bad\xef\xbf\xbd" },
		{ "=?nonexistent?q?ok?=", "ok" },
		{ "=?utf-8?q?no end", "=?utf-8?q?no end" },
		{ "=?utf-8?z?x?=", "=?utf-8?z?x?=" },
		{ "=??q?x?=", "=??q?x?=" },
		{ "=?utf-8?q?a b?=", "=?utf-8?q?a b?=" },
		{ "=?utf-8?q?nul=00byte?=", "nulbyte" },
		{ "=?utf-8?q?line=0D=0Abreak?=", "line  break" },
		{ "raw latin1 \xe9t\xe9", "raw latin1 été" },
		{ "raw utf8 \xc3\xa9t\xc3\xa9", "raw utf8 été" },
		{ "=?utf-8?b?4oI=?==?utf-8?b?rA==?=", "€" },   /* split sequence */
		{ "=?iso-2022-jp?B?GyRCRnxLXDhsGyhC?=", "日本語" },
		{ "=?gb2312?B?1tDOxA==?=", "中文" },
		{ "=?big5?B?pKSk5Q==?=", "中文" },
		{ "=?euc-kr?B?x9Gx2w==?=", "한글" },
		{ "", "" },
	};
	struct bu_arena *a = bu_arena_create(0);
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(t); i++)
		CHECK_STR(mime_decode_words(a, t[i].in), t[i].out, "decode_words #%zu", i);
	CHECK(mime_decode_words(a, NULL) == NULL, "NULL");
	bu_arena_destroy(&a);
}

static void decode_one(const char *hdr, const char *body, const char *want, bool to_utf8)
{
	struct bu_arena *a = bu_arena_create(0);
	char *msg = bu_arena_printf(a, "%s\r\n\r\n%s", hdr, body);
	struct mime_part *r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	struct bu_buf b;

	bu_buf_init(&b, 0);
	mime_decode_body(&b, r, (const uint8_t *)msg, strlen(msg), to_utf8);
	CHECK(b.len == strlen(want) && memcmp(bu_buf_cstr(&b), want, b.len) == 0,
	      "decode_body(%s): got \"%s\" want \"%s\"", hdr, bu_buf_cstr(&b), want);
	bu_buf_deinit(&b);
	bu_arena_destroy(&a);
}

static void test_decode_body(void)
{
	decode_one("Content-Transfer-Encoding: base64", "aGVsbG8gd29ybGQ=", "hello world", true);
	decode_one("Content-Transfer-Encoding: base64", "aGVs\r\nbG8g\r\n d29y bGQ", "hello world", true);
	decode_one("Content-Transfer-Encoding: base64", "aGk=aGk=", "hihi", true);
	decode_one("Content-Transfer-Encoding: base64", "####", "", true);
	decode_one("Content-Transfer-Encoding: quoted-printable", "a=3Db=\r\nc  \r\nd=\ne", "a=bc\r\nde", true);
	decode_one("Content-Transfer-Encoding: quoted-printable", "=4x=\r", "=4x=\r", true);
	decode_one("Content-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain; charset=iso-8859-1",
		   "caf=E9", "café", true);
	decode_one("Content-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain; charset=iso-8859-1",
		   "caf=E9", "caf\xe9", false);
	decode_one("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64",
		   "/w==", "\xff", true);
	decode_one("Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit",
		   "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет", true);
	decode_one("Content-Type: text/plain; charset=windows-1252", "\x93q\x94", "\xe2\x80\x9cq\xe2\x80\x9d", true);
	decode_one("Content-Type: text/plain; charset=us-ascii", "na\xefve", "naïve", true);
	decode_one("Content-Type: text/plain; charset=utf-8", "ok\xc3", "ok\xef\xbf\xbd", true);
	decode_one("Content-Type: text/plain; charset=shift_jis", "\x93\xfa\x96\x7b", "日本", true);
	decode_one("Content-Type: text/plain; charset=x-no-such-charset", "a\xc3\xa9\xff", "aé\xef\xbf\xbd", true);
	decode_one("Content-Transfer-Encoding: x-unknown", "as is=41", "as is=41", true);
}

static void test_params(void)
{
	struct bu_arena *a = bu_arena_create(0);
	const char *msg =
		"Content-Type: Text/HTML; CHARSET=\"UTF-8\" ; name=\"a \\\"q\\\" b.html\"; x=unquoted value ;\r\n"
		"  title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A; y*0=\"a\"; y*2=\"c\"; y*1=b;"
		" dup=1; dup=2\r\n"
		"Content-Disposition: ATTACHMENT; filename*0*=UTF-8''%e2%82; filename*1*=%ac.txt\r\n"
		"\r\nx";
	struct mime_part *r = mime_parse(a, (const uint8_t *)msg, strlen(msg));

	CHECK_STR(r->type, "text", "type lower-cased");
	CHECK_STR(r->subtype, "html", "subtype lower-cased");
	CHECK_STR(param_of(r->params, r->n_params, "charset"), "UTF-8", "charset");
	CHECK_STR(param_of(r->params, r->n_params, "name"), "a \"q\" b.html", "quoted-pair");
	CHECK_STR(param_of(r->params, r->n_params, "x"), "unquoted value", "lenient unquoted");
	CHECK_STR(param_of(r->params, r->n_params, "title"), "This is ***fun***", "RFC 2231 example");
	CHECK_STR(param_of(r->params, r->n_params, "y"), "abc", "sections out of order");
	CHECK_STR(param_of(r->params, r->n_params, "dup"), "1", "first duplicate wins");
	CHECK_STR(r->disposition, "attachment", "disposition lower-cased");
	CHECK_STR(param_of(r->disp_params, r->n_disp_params, "filename"), "€.txt",
		  "encoded sections split inside a character");

	msg = "Content-Type: multipart/mixed boundary=\"b\"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
	r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	CHECK(r->n_children == 1 && r->children[0].body_len == 1, "missing ';' before boundary");
	msg = "Content-Type: text\r\n\r\nx";
	r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	CHECK_STR(r->subtype, "plain", "text without subtype");
	msg = "Content-Type: text/plain\r\nContent-Type: image/gif\r\n\r\nx";
	r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	CHECK_STR(r->subtype, "plain", "first Content-Type wins");
	CHECK(r->n_params == 0, "explicit type without parameters keeps none");
	msg = "Subject: x\r\n\r\nx";
	r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	CHECK_STR(param_of(r->params, r->n_params, "charset"), "us-ascii", "default charset");
	CHECK_STR(r->encoding, "7bit", "default encoding");
	msg = "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in\r\n\r\nx\r\n--d--";
	r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	CHECK(r->n_children == 1 && strcmp(r->children[0].type, "message") == 0 &&
	      r->children[0].message != NULL, "digest default");
	msg = "Content-Type: image/png; name=\"x.png\"\r\nContent-Transfer-Encoding: BASE64 (comment)\r\n\r\nx";
	r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	CHECK_STR(r->encoding, "base64", "encoding lower-cased, comment dropped");
	bu_arena_destroy(&a);
}

static void test_dates(void)
{
	static const struct {
		const char *in;
		int64_t out;
	} t[] = {
		{ "Mon, 12 Jan 2004 10:00:00 +0100", 1073898000 },
		{ "12 Jan 2004 10:00:00 +0100", 1073898000 },
		{ "Mon, 12 Jan 2004 10:00 +0100", 1073898000 },
		{ "Mon,  12  Jan  2004  09:00:00  GMT", 1073898000 },
		{ "Mon, 12 Jan 2004 09:00:00 UT", 1073898000 },
		{ "Mon, 12 Jan 04 04:00:00 EST", 1073898000 },
		{ "Mon, 12 Jan 04 05:00:00 EDT", 1073898000 },
		{ "Mon, 12 Jan 04 01:00:00 PST", 1073898000 },
		{ "Mon, 12 Jan 104 09:00:00 Z", 1073898000 },
		{ "Mon (day), 12 (of) Jan 2004 09:00:00 +0000 (GMT)", 1073898000 },
		{ "Mon, 12 Jan 2004 09:00:00", 1073898000 },
		{ "Mon, 12 Jan 2004 09:00:00 -0000", 1073898000 },
		{ "Mon, 12 January 2004 09:00:00 +0000", 1073898000 },
		{ "Mon Jan 12 09:00:00 2004", 1073898000 },
		{ "12-Jan-2004 10:00:00 +0100", 1073898000 },
		{ "Mon, 12 Jan 2004 09:00:00 A", 1073898000 },
		{ "Thu, 01 Jan 1970 00:00:00 +0000", 0 },
		{ "Fri, 13 Feb 2009 23:31:30 +0000", 1234567890 },
		{ "1 Jan 99 00:00:00 +0000", 915148800 },
		{ "1 Jan 49 00:00:00 +0000", 2493072000LL },
		{ "29 Feb 2024 12:00:00 +0530", 1709188200 },
		{ "31 Dec 2023 23:59:60 +0000", 1704067199 },
		{ "", -1 },
		{ "garbage", -1 },
		{ "Mon, 32 Jan 2004 10:00:00 +0100", -1 },
		{ "Mon, 12 Foo 2004 10:00:00 +0100", -1 },
		{ "Mon, 12 Jan 2004 25:00:00 +0100", -1 },
		{ "12 Jan", -1 },
	};
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(t); i++)
		CHECK(mime_parse_date(t[i].in) == t[i].out, "date #%zu \"%s\": got %lld want %lld", i,
		      t[i].in, (long long)mime_parse_date(t[i].in), (long long)t[i].out);
	CHECK(mime_parse_date(NULL) == -1, "NULL date");
}

static void test_addresses(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "a@b.c", "NIL|a|b.c" },
		{ "John Doe <jdoe@example.com>", "John Doe|jdoe|example.com" },
		{ "\"Doe, John\" <jdoe@example.com>, x@y", "Doe, John|jdoe|example.com;NIL|x|y" },
		{ "jdoe@example.com (John Doe)", "John Doe|jdoe|example.com" },
		{ "=?utf-8?q?J=C3=B6rg?= <j@x.de>", "Jörg|j|x.de" },
		{ "\"=?utf-8?q?J=C3=B6rg?=\" <j@x.de>", "Jörg|j|x.de" },
		{ "undisclosed-recipients:;", "G:undisclosed-recipients;E" },
		{ "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
		  "G:A Group;Ed Jones|c|a.test;NIL|joe|where.test;John|jdoe|one.test;E" },
		{ "g: a@b", "G:g;NIL|a|b;E" },
		{ "<@route1,@route2:user@host>", "NIL|user|host@@route1,@route2" },
		{ "user", "NIL|user|NIL" },
		{ "<>", "NIL||NIL" },
		{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
		  "Pete|pete|silly.test" },
		{ "\"quoted local\"@example.com", "NIL|quoted local|example.com" },
		{ "john . doe @ example . com", "NIL|john.doe|example.com" },
		{ ",,, a@b ,,", "NIL|a|b" },
		{ "<a@b", "NIL|a|b" },
		{ "Name <a@b, c@d", "Name|a|b;NIL|c|d" },
		{ "\"unterminated", "NIL|unterminated|NIL" },
		{ "@@@", "NIL||NIL" },
		{ ">>> a@b", "NIL|a|b" },
		{ "a@[127.0.0.1]", "NIL|a|[127.0.0.1]" },
		{ "Müller <m@x.de>", "Müller|m|x.de" },
		{ "\"\" <a@b>", "NIL|a|b" },
		{ "\"\"@b", "NIL||b" },
		{ "", "" },
	};
	struct bu_arena *a = bu_arena_create(0);
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(t); i++) {
		struct mime_address *l;
		size_t n = mime_parse_addresses(a, t[i].in, &l);
		struct bu_buf b;

		bu_buf_init(&b, 0);
		addrs_str(&b, l, n);
		CHECK_STR(bu_buf_cstr(&b), t[i].out, "address #%zu \"%s\"", i, t[i].in);
		bu_buf_deinit(&b);
	}
	bu_arena_destroy(&a);
}

static void test_base_subject(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "Hello", "Hello" },
		{ "Re: Hello", "Hello" },
		{ "RE: re: Fwd: fw: Hello", "Hello" },
		{ "Re[2]: Hello", "Hello" },   /* subj-refwd allows a blob before ':' */
		{ "Re [2]: Hello", "Hello" },
		{ "[list] Re: Hello", "Hello" },
		{ "[list] Hello", "Hello" },
		{ "[list]", "[list]" },
		{ "Hello (fwd)", "Hello" },
		{ "Hello (fwd) (FWD)  ", "Hello" },
		{ "[fwd: Hello]", "Hello" },
		{ "[Fwd: Re: Hello (fwd)]", "Hello" },
		{ "Re: [fwd: [list] Hello]", "Hello" },
		{ "  Hello \t  world  ", "Hello world" },
		{ "Re:", "" },
		{ "", "" },
		{ "Re: Re: ", "" },
		{ "Fwd:Hello", "Hello" },
		{ "Reply: Hello", "Reply: Hello" },
		{ "[a][b] Re: x", "x" },
		{ "Re: [a] [b] x", "x" },
		{ "[unclosed Re: x", "[unclosed Re: x" },
	};
	struct bu_arena *a = bu_arena_create(0);
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(t); i++)
		CHECK_STR(mime_base_subject(a, t[i].in), t[i].out, "base subject #%zu \"%s\"", i, t[i].in);
	CHECK_STR(mime_base_subject(a, NULL), "", "NULL subject");
	bu_arena_destroy(&a);
}

static void summary_of(struct bu_arena *a, const char *msg, struct mime_summary *s)
{
	struct mime_part *r = mime_parse(a, (const uint8_t *)msg, strlen(msg));

	mime_summarize(a, r, (const uint8_t *)msg, strlen(msg), s);
}

static void test_summary(void)
{
	struct bu_arena *a = bu_arena_create(0);
	struct mime_summary s;
	char *msg;
	size_t i;

	summary_of(a, "From: \"Ann\" <ANN@Example.COM>\r\nTo: x@y, Bob <b@c>\r\nCc: g:;\r\n"
		   "Message-ID: <  id@host >\r\nIn-Reply-To: <p1@h> (comment <no>) <p2@h>\r\n"
		   "References: <r1@h>\r\n <r2@h> garbage <r3@h>\r\nDate: bad\r\n\r\n"
		   "  \t Hello\r\n\r\n  world  ", &s);
	CHECK_STR(s.from, "Ann <ANN@Example.COM>", "from");
	CHECK_STR(s.from_sort, "ann", "from sort");
	CHECK_STR(s.from_display, "Ann", "display from");
	CHECK_STR(s.to, "x@y, Bob <b@c>", "to");
	CHECK_STR(s.to_sort, "x", "to sort");
	CHECK_STR(s.to_display, "x@y", "display to without a name");
	CHECK_STR(s.cc_sort, "", "cc sort of an empty group");
	CHECK_STR(s.message_id, "id@host", "message id");
	CHECK_STR(s.in_reply_to, "p1@h", "in-reply-to");
	CHECK_STR(s.references, "r1@h r2@h r3@h", "references");
	CHECK(s.date == 0, "bad date");
	CHECK_STR(s.preview, "Hello world", "preview trimmed and collapsed");
	CHECK_STR(s.subject, NULL, "no subject");
	CHECK_STR(s.base_subject, "", "base of no subject");
	CHECK(!s.has_attachment, "no attachment");

	/* preview: 200 characters, cut on a character boundary */
	msg = bu_arena_strdup(a, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (i = 0; i < 300; i++)
		msg = bu_arena_printf(a, "%s\xc3\xa9", msg);
	summary_of(a, msg, &s);
	CHECK(strlen(s.preview) == 400, "preview of 200 two-byte characters: %zu", strlen(s.preview));
	/* preview prefers text/plain, falls back to html, skips attachments */
	summary_of(a, "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		   "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n"
		   "--b\r\nContent-Type: text/html\r\n\r\n<p>from&nbsp;<i>html</i></p>\r\n--b--\r\n", &s);
	CHECK_STR(s.preview, "from html", "html preview");
	CHECK(s.has_attachment, "attachment");
	summary_of(a, "Message-ID: bare@id\r\n\r\n", &s);
	CHECK_STR(s.message_id, "bare@id", "bare message id");
	summary_of(a, "Subject: =?utf-8?q?Re=3A_caf=C3=A9?=\r\n\r\n", &s);
	CHECK_STR(s.subject, "Re: café", "decoded subject");
	CHECK_STR(s.base_subject, "café", "base subject after decoding");
	bu_arena_destroy(&a);
}

static void test_search_text(void)
{
	struct bu_arena *a = bu_arena_create(0);
	const char *msg =
		"Subject: =?utf-8?q?sp=C3=A9cial?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve\r\n"
		"--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\naW1hZ2VieXRlcw==\r\n"
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner subject\r\n\r\ninner body &amp;\r\n"
		"--b\r\nContent-Type: text/html\r\n\r\n<b>bold</b>&amp;&#233;&#x20AC;&bogus;<style>hidden</style>\r\n"
		"--b--\r\n";
	struct mime_part *r = mime_parse(a, (const uint8_t *)msg, strlen(msg));
	struct bu_buf b;

	bu_buf_init(&b, 0);
	mime_search_text(&b, r, (const uint8_t *)msg, strlen(msg), true, false);
	CHECK(strstr(bu_buf_cstr(&b), "spécial") != NULL, "decoded header");
	CHECK(strstr(bu_buf_cstr(&b), "naïve") == NULL, "no bodies");
	bu_buf_reset(&b);
	mime_search_text(&b, r, (const uint8_t *)msg, strlen(msg), false, true);
	CHECK(strstr(bu_buf_cstr(&b), "spécial") == NULL, "no headers");
	CHECK(strstr(bu_buf_cstr(&b), "naïve") != NULL, "qp + charset");
	CHECK(strstr(bu_buf_cstr(&b), "imagebytes") == NULL, "image skipped");
	CHECK(strstr(bu_buf_cstr(&b), "inner subject") != NULL, "embedded header");
	CHECK(strstr(bu_buf_cstr(&b), "inner body &amp;") != NULL, "embedded plain body as is");
	CHECK(strstr(bu_buf_cstr(&b), "bold&é€&bogus;") != NULL, "html entities: %s", bu_buf_cstr(&b));
	CHECK(strstr(bu_buf_cstr(&b), "hidden") == NULL, "style dropped");
	bu_buf_deinit(&b);
	/* a buffer with a maximum stops cleanly */
	bu_buf_init(&b, 10);
	mime_search_text(&b, r, (const uint8_t *)msg, strlen(msg), true, true);
	CHECK(b.len <= 10, "max respected");
	bu_buf_deinit(&b);
	bu_arena_destroy(&a);
}

static void test_garbage_deserialize(void)
{
	static const char *const bad[] = {
		"", "M", "M1", "M2 0 0 0 0 0 .text .plain 0 - - .7bit - - 0 - - 1 - - 0 0 0 0 0 0 - - 0",
		"M1 0 0 0 0 0 .text .plain 0 - - .7bit - - 0 - - 0 0",   /* root without envelope */
		"M1 0 0 0 0 0 .multipart .mixed 0 - - .7bit - - 0 - - 1 - - 0 0 0 0 0 0 - - 0",
		"M1 0 0 0 0 0 .text .plain 99999999999 - - .7bit - - 0 - - 1 - - 0 0 0 0 0 0 - - 0",
		"M1 0 0 1 0 0 .text .plain 0 - - .7bit - - 0 - - 1 - - 0 0 0 0 0 0 - - 0",
		"M1 0 0 0 0 0 .text .plain 0 - - .7bit - - 0 - - 1 - .%00 0 0 0 0 0 0 - - 0",
		"M1 0 0 0 0 0 .text .plain 0 - - .7bit - - 0 - - 1 - - 0 0 0 0 0 0 - - 0 ",
		"M1  0 0 0 0 0 .text .plain 0 - - .7bit - - 0 - - 1 - - 0 0 0 0 0 0 - - 0",
		"M1 00 0 0 0 0 .text .plain 0 - - .7bit - - 0 - - 1 - - 0 0 0 0 0 0 - - 0",
	};
	const char *good = "M1 0 0 0 0 0 .text .plain 0 - - .7bit - - 0 - - 1 - - 0 0 0 0 0 0 - - 0";
	struct bu_arena *a = bu_arena_create(0);
	size_t i, l;
	struct mime_part *r;

	for (i = 0; i < BU_N_ELEMENTS(bad); i++)
		CHECK(mime_deserialize(a, bad[i], strlen(bad[i])) == NULL, "garbage #%zu accepted", i);
	CHECK(mime_deserialize(a, NULL, 0) == NULL, "NULL");
	r = mime_deserialize(a, good, strlen(good));
	CHECK(r != NULL, "minimal tree");
	if (r != NULL)
		CHECK_STR(mime_serialize(a, r, &l), good, "minimal round trip");
	bu_arena_destroy(&a);
}

static void test_never_loses_bytes(void)
{
	/* all bytes of a message are reachable: root covers [0,len) and an
	 * unparseable part is a leaf covering its bytes */
	struct bu_arena *a = bu_arena_create(0);
	static const char *const msgs[] = {
		"\r\n",
		"\n",
		"\r",
		"no colon at all",
		"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a--",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r",
		"Content-Type: message/rfc822\r\n\r\n",
		"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a--\r\n",
	};
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(msgs); i++) {
		size_t len = strlen(msgs[i]);
		struct mime_part *r = mime_parse(a, (const uint8_t *)msgs[i], len);
		unsigned d = 0;

		check_invariants("edge", r, (const uint8_t *)msgs[i], len, 0, len, 0, &d);
		CHECK(r->hdr_off == 0 && r->body_off + r->body_len == len, "edge #%zu root range", i);
	}
	CHECK(mime_parse(a, NULL, 0) != NULL, "NULL data");
	bu_arena_destroy(&a);
}

int main(int argc, char **argv)
{
	const char *src = getenv("BUREAU_SRCDIR");
	char *dir;

	if (argc > 1)
		dir = bu_strdup(argv[1]);
	else
		dir = bu_asprintf("%s/tests/mime-corpus", src != NULL ? src : ".");
	run_corpus(dir);
	free(dir);
	test_sections();
	test_header_filter();
	test_decode_words();
	test_decode_body();
	test_params();
	test_dates();
	test_addresses();
	test_base_subject();
	test_summary();
	test_search_text();
	test_garbage_deserialize();
	test_never_loses_bytes();
	printf("test_mime: %d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}

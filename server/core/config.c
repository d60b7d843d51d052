/*
 * config.c - bureau.conf.
 *
 * The file is a list of "key = value" lines.  '#' starts a comment when it
 * begins a line or follows whitespace; blank lines are ignored; a value may
 * be written in double quotes (needed for "" and for values with a '#', a
 * '"' or surrounding spaces), where \" and \\ are the only escapes.
 *
 * Every key is one row of keys[] below: name, type, where it lives in struct
 * bu_config, its default (written as it would appear in the file, and parsed
 * by the same code as the file) and a one-line doc.  bu_config_write_sample()
 * prints the table, docs/CONFIG.md describes it; keep the three in step.
 *
 * Errors name the file, the line and the key, say what is wrong and what to
 * write instead.  Unknown keys get a did-you-mean by edit distance.  A key
 * given twice is an error: silently taking the last one hides typos in long
 * files.  bu_config_load() is all or nothing: on error cfg is untouched.
 *
 * Error strings live in a thread-local buffer, valid until the next call
 * that fails on the same thread.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KIB (INT64_C(1) << 10)
#define MIB (INT64_C(1) << 20)
#define GIB (INT64_C(1) << 30)
#define TIB (INT64_C(1) << 40)

#define ERR_MAX 1024
#define SHOW_MAX 64 /* bytes of an offending value quoted back */

enum key_type {
	KEY_STRING, /* char * */
	KEY_INT,    /* int, decimal digits */
	KEY_INT64,  /* int64_t, decimal digits */
	KEY_BOOL,   /* bool */
	KEY_PORT,   /* int, 0-65535 (0 = service disabled) */
	KEY_SIZE,   /* int, bytes with optional K/M/G suffix */
	KEY_SIZE64, /* int64_t, bytes with optional K/M/G/T suffix */
};

/* Extra check for a string value: NULL if fine, else what to write. */
typedef const char *key_check_fn(const char *value);

struct key_def {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;     /* default, in file syntax */
	int64_t min, max;    /* numeric types */
	key_check_fn *check; /* string types, optional */
	const char *doc;     /* one line */
	const char *def_doc; /* how to show the default if not def */
};

static const char *check_nonempty(const char *v);
static const char *check_address(const char *v);
static const char *check_log_level(const char *v);
static const char *check_password_scheme(const char *v);

#define OFF(field) offsetof(struct bu_config, field)
/* clang-format off */
#define PORT(key, id, num, doc) \
	{ key, KEY_PORT, OFF(svc[id].port), #num, 0, 65535, NULL, doc, NULL }
/* clang-format on */

static const struct key_def keys[] = {
	{ "state_dir", KEY_STRING, OFF(state_dir), "/var/lib/bureau", 0, 0, check_nonempty,
	  "directory for the embedded database, TLS files and other state", NULL },
	{ "listen.address", KEY_STRING, OFF(listen_address), "127.0.0.1", 0, 0, check_address,
	  "IP address the listeners bind to; 0.0.0.0 or :: = all interfaces", NULL },
	{ "hostname", KEY_STRING, OFF(hostname), "", 0, 0, NULL,
	  "name used in greetings and EHLO; \"\" = this machine's host name",
	  "\"\" (this machine's host name)" },
	{ "user", KEY_STRING, OFF(user), "bureau", 0, 0, NULL,
	  "user to switch to after binding ports when started as root; \"\" = do not switch",
	  NULL },
	PORT("imap.port", BU_SVC_IMAP, 143, "IMAP with STARTTLS; 0 = disabled"),
	PORT("imaps.port", BU_SVC_IMAPS, 993, "IMAP over implicit TLS; 0 = disabled"),
	PORT("pop3.port", BU_SVC_POP3, 110, "POP3 with STARTTLS; 0 = disabled"),
	PORT("pop3s.port", BU_SVC_POP3S, 995, "POP3 over implicit TLS; 0 = disabled"),
	PORT("smtp.port", BU_SVC_SMTP, 25, "SMTP for incoming mail, with STARTTLS; 0 = disabled"),
	PORT("submission.port", BU_SVC_SUBMISSION, 587,
	     "mail submission with STARTTLS; 0 = disabled"),
	PORT("submissions.port", BU_SVC_SUBMISSIONS, 465,
	     "mail submission over implicit TLS; 0 = disabled"),
	PORT("lmtp.port", BU_SVC_LMTP, 24, "LMTP delivery from a local MTA, no TLS; 0 = disabled"),
	PORT("http.port", BU_SVC_HTTP, 80,
	     "HTTP (CalDAV, CardDAV, ActiveSync), no TLS; 0 = disabled"),
	PORT("https.port", BU_SVC_HTTPS, 443, "HTTPS (CalDAV, CardDAV, ActiveSync); 0 = disabled"),
	{ "database.url", KEY_STRING, OFF(database_url), "", 0, 0, NULL,
	  "libpq connection string or URI of an existing database; "
	  "\"\" = embedded PostgreSQL under state_dir",
	  NULL },
	{ "database.pg_bindir", KEY_STRING, OFF(pg_bindir), "", 0, 0, NULL,
	  "directory with initdb and pg_ctl for the embedded database; "
	  "\"\" = newest /usr/lib/postgresql/*/bin",
	  NULL },
	{ "database.pool_size", KEY_INT, OFF(db_pool_size), "8", 1, 1024, NULL,
	  "database connections, one per worker thread", NULL },
	{ "io_threads", KEY_INT, OFF(io_threads), "0", 0, 1024, NULL,
	  "network I/O threads; 0 = one per CPU core", NULL },
	{ "tls.cert", KEY_STRING, OFF(tls_cert), "", 0, 0, NULL,
	  "PEM certificate chain; \"\" = state_dir/tls/cert.pem", NULL },
	{ "tls.key", KEY_STRING, OFF(tls_key), "", 0, 0, NULL,
	  "PEM private key; \"\" = state_dir/tls/key.pem", NULL },
	{ "tls.selfsigned", KEY_BOOL, OFF(tls_selfsigned), "true", 0, 0, NULL,
	  "create a self-signed certificate if the files are missing (for testing)", NULL },
	{ "auth.allow_plaintext_loopback", KEY_BOOL, OFF(allow_plaintext_loopback), "false", 0, 0,
	  NULL, "allow password logins without TLS from 127.0.0.0/8 and ::1 (local tools, tests)",
	  NULL },
	{ "log.file", KEY_STRING, OFF(log_file), "", 0, 0, NULL,
	  "log file, reopened on SIGHUP; \"\" = standard error", NULL },
	{ "log.level", KEY_STRING, OFF(log_level), "info", 0, 0, check_log_level,
	  "least severe level logged: debug, info, warning, error or fatal", NULL },
	{ "limits.max_line", KEY_SIZE, OFF(max_line), "64K", 1 * KIB, 16 * MIB, NULL,
	  "longest protocol command line, bytes (K/M suffixes allowed)", NULL },
	{ "limits.max_literal", KEY_SIZE, OFF(max_literal), "64M", 1 * KIB, 1 * GIB, NULL,
	  "largest IMAP literal and largest message accepted, bytes (K/M/G suffixes allowed)",
	  NULL },
	{ "limits.max_sessions_per_ip", KEY_INT, OFF(max_sessions_per_ip), "50", 0, 1000000, NULL,
	  "concurrent connections from one IP address; 0 = no limit", NULL },
	{ "limits.idle_timeout", KEY_INT, OFF(idle_timeout), "1800", 1, 7 * 86400, NULL,
	  "seconds a logged-in session may stay silent (IMAP wants at least 1800)", NULL },
	{ "limits.preauth_timeout", KEY_INT, OFF(preauth_timeout), "60", 1, 3600, NULL,
	  "seconds a new connection has to log in", NULL },
	{ "auth.fail_limit", KEY_INT, OFF(auth_fail_limit), "10", 0, 1000000, NULL,
	  "failed logins per IP address within auth.fail_window before throttling; "
	  "0 = never throttle",
	  NULL },
	{ "auth.fail_window", KEY_INT, OFF(auth_fail_window), "300", 1, 86400, NULL,
	  "seconds over which failed logins are counted", NULL },
	{ "auth.cache_ttl", KEY_INT, OFF(auth_cache_ttl), "300", 0, 86400, NULL,
	  "seconds a successful password check is remembered (as a keyed MAC, never the "
	  "password) so that the next login skips the slow hash; 0 = always hash", NULL },
	{ "cache.message_bytes", KEY_SIZE64, OFF(message_cache_bytes), "256M", 0, INT64_MAX, NULL,
	  "memory for the contents of recently stored or read messages, served without a "
	  "database round trip (K/M/G suffixes allowed); 0 = no cache", NULL },
	{ "quota.storage", KEY_SIZE64, OFF(default_quota_storage), "0", 0, INT64_MAX, NULL,
	  "default storage quota per account, bytes (K/M/G/T suffixes allowed); 0 = unlimited",
	  NULL },
	{ "quota.messages", KEY_INT64, OFF(default_quota_messages), "0", 0, INT64_MAX, NULL,
	  "default number of messages per account; 0 = unlimited", NULL },
	{ "password.scheme", KEY_STRING, OFF(password_scheme), "yescrypt", 0, 0,
	  check_password_scheme, "hash for new passwords: yescrypt, sha512 or bcrypt", NULL },
	{ "password.min_length", KEY_INT, OFF(min_password_length), "8", 1, 1024, NULL,
	  "shortest password accepted when a password is set", NULL },
};

static const struct {
	const char *name;
	enum bu_tls_mode tls;
} services[BU_SVC_COUNT] = {
	[BU_SVC_IMAP] = { "imap", BU_TLS_STARTTLS },
	[BU_SVC_IMAPS] = { "imaps", BU_TLS_IMPLICIT },
	[BU_SVC_POP3] = { "pop3", BU_TLS_STARTTLS },
	[BU_SVC_POP3S] = { "pop3s", BU_TLS_IMPLICIT },
	[BU_SVC_SMTP] = { "smtp", BU_TLS_STARTTLS },
	[BU_SVC_SUBMISSION] = { "submission", BU_TLS_STARTTLS },
	[BU_SVC_SUBMISSIONS] = { "submissions", BU_TLS_IMPLICIT },
	[BU_SVC_LMTP] = { "lmtp", BU_TLS_NONE },
	[BU_SVC_HTTP] = { "http", BU_TLS_NONE },
	[BU_SVC_HTTPS] = { "https", BU_TLS_IMPLICIT },
};

static __thread char config_err[ERR_MAX];

BU_PRINTF(1, 2) static const char *set_error(const char *fmt, ...)
{
	char tmp[ERR_MAX];
	va_list ap;

	/* format via tmp: an argument may point into config_err */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(config_err, tmp, sizeof(tmp));
	return config_err;
}

/* a value quoted back in an error message, cleaned for the terminal */
static const char *show(char *out, size_t outsz, const char *v, size_t n)
{
	return bu_sanitize(out, outsz, v, n);
}

/* ---- string checks ---------------------------------------------------- */

static const char *check_nonempty(const char *v)
{
	return v[0] == '\0' ? "must not be empty (write a directory path)" : NULL;
}

static const char *check_address(const char *v)
{
	unsigned char sa[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, v, sa) == 1 || inet_pton(AF_INET6, v, sa) == 1)
		return NULL;
	return "is not an IP address (write e.g. 127.0.0.1, 0.0.0.0 or ::)";
}

static const char *check_log_level(const char *v)
{
	static const char *const levels[] = { "debug", "info", "warning", "error", "fatal" };
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(levels); i++) {
		if (strcmp(v, levels[i]) == 0)
			return NULL;
	}
	return "is not a log level (write debug, info, warning, error or fatal)";
}

static const char *check_password_scheme(const char *v)
{
	if (strcmp(v, "yescrypt") == 0 || strcmp(v, "sha512") == 0 || strcmp(v, "bcrypt") == 0)
		return NULL;
	return "is not a password scheme (write yescrypt, sha512 or bcrypt)";
}

/* ---- key lookup --------------------------------------------------------- */

static const struct key_def *find_key(const char *name)
{
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(keys); i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

/* Levenshtein distance, capped: anything above 'cap' returns cap + 1. */
static size_t edit_distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64];

	if (la >= BU_N_ELEMENTS(row) || lb >= BU_N_ELEMENTS(row))
		return cap + 1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0], best;

		row[0] = i;
		best = row[0];
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t v = diag + cost;

			if (up + 1 < v)
				v = up + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			diag = up;
			if (v < best)
				best = v;
		}
		if (best > cap)
			return cap + 1;
	}
	return row[lb];
}

static const char *suggest_key(const char *name)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, i, cap;

	/* short keys tolerate fewer edits before a guess becomes noise */
	cap = strlen(name) <= 6 ? 1 : strlen(name) <= 12 ? 2 : 3;
	for (i = 0; i < BU_N_ELEMENTS(keys); i++) {
		size_t d = edit_distance(name, keys[i].name, cap);

		if (d <= cap && d < best_d) {
			best = keys[i].name;
			best_d = d;
		}
	}
	return best;
}

/* ---- value parsing ---------------------------------------------------- */

static int parse_bool(const char *v, bool *out_r)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(yes); i++) {
		if (bu_str_caseeq(v, yes[i])) {
			*out_r = true;
			return 0;
		}
		if (bu_str_caseeq(v, no[i])) {
			*out_r = false;
			return 0;
		}
	}
	return -1;
}

/* digits with an optional K/M/G/T suffix (binary multiples): 0, -1 syntax,
 * -2 overflow */
static int parse_size(const char *v, int64_t *out_r)
{
	size_t len = strlen(v);
	uint64_t n, mult = 1;

	if (len > 0) {
		switch (v[len - 1]) {
		case 'k':
		case 'K':
			mult = KIB;
			break;
		case 'm':
		case 'M':
			mult = MIB;
			break;
		case 'g':
		case 'G':
			mult = GIB;
			break;
		case 't':
		case 'T':
			mult = TIB;
			break;
		default:
			break;
		}
	}
	if (mult != 1)
		len--;
	if (bu_parse_u64(v, len, UINT64_MAX, &n) < 0) {
		/* all digits but too long is overflow, not a syntax error */
		if (len > 0 && strspn(v, "0123456789") == len)
			return -2;
		return -1;
	}
	if (n > (uint64_t)INT64_MAX / mult)
		return -2;
	*out_r = (int64_t)(n * mult);
	return 0;
}

/* bytes, with the largest suffix that represents it exactly */
static void format_size(char *out, size_t outsz, int64_t v)
{
	if (v != 0 && v % TIB == 0)
		snprintf(out, outsz, "%" PRId64 "T", v / TIB);
	else if (v != 0 && v % GIB == 0)
		snprintf(out, outsz, "%" PRId64 "G", v / GIB);
	else if (v != 0 && v % MIB == 0)
		snprintf(out, outsz, "%" PRId64 "M", v / MIB);
	else if (v != 0 && v % KIB == 0)
		snprintf(out, outsz, "%" PRId64 "K", v / KIB);
	else
		snprintf(out, outsz, "%" PRId64, v);
}

static void store_num(struct bu_config *cfg, const struct key_def *k, int64_t v)
{
	void *field = (char *)cfg + k->offset;

	switch (k->type) {
	case KEY_INT:
	case KEY_PORT:
	case KEY_SIZE:
		*(int *)field = (int)v;
		break;
	case KEY_INT64:
	case KEY_SIZE64:
		*(int64_t *)field = v;
		break;
	case KEY_STRING:
	case KEY_BOOL:
		bu_assert(!"not a numeric key");
	}
}

static int64_t load_num(const struct bu_config *cfg, const struct key_def *k)
{
	const void *field = (const char *)cfg + k->offset;

	switch (k->type) {
	case KEY_INT:
	case KEY_PORT:
	case KEY_SIZE:
		return *(const int *)field;
	case KEY_INT64:
	case KEY_SIZE64:
		return *(const int64_t *)field;
	case KEY_STRING:
	case KEY_BOOL:
		break;
	}
	bu_assert(!"not a numeric key");
	return 0;
}

static const char *range_error(const struct key_def *k, const char *shown)
{
	char lo[32], hi[32];

	if (k->type == KEY_SIZE || k->type == KEY_SIZE64) {
		format_size(lo, sizeof(lo), k->min);
		format_size(hi, sizeof(hi), k->max);
		if (k->max == INT64_MAX)
			return set_error("%s: '%s' is too large", k->name, shown);
		return set_error("%s: '%s' is out of range (write a size from %s to %s)", k->name,
				 shown, lo, hi);
	}
	if (k->max == INT64_MAX)
		return set_error("%s: '%s' is too large", k->name, shown);
	return set_error("%s: '%s' is out of range (write a number from %" PRId64 " to %" PRId64
			 ")",
			 k->name, shown, k->min, k->max);
}

static int set_value(struct bu_config *cfg, const struct key_def *k, const char *value,
		     const char **error_r)
{
	void *field = (char *)cfg + k->offset;
	char shown[SHOW_MAX];
	const char *why;
	uint64_t u;
	int64_t n;
	bool b;
	int r;

	show(shown, sizeof(shown), value, strlen(value));
	switch (k->type) {
	case KEY_STRING:
		for (why = value; *why != '\0'; why++) {
			if ((unsigned char)*why < 0x20 || *why == 0x7f) {
				*error_r = set_error("%s: '%s' contains a control character "
						     "(remove it)",
						     k->name, shown);
				return -1;
			}
		}
		if (k->check != NULL && (why = k->check(value)) != NULL) {
			*error_r = set_error("%s: '%s' %s", k->name, shown, why);
			return -1;
		}
		free(*(char **)field);
		if (k->offset == OFF(hostname) && value[0] == '\0') {
			char host[256] = "";

			if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
				memcpy(host, "localhost", sizeof("localhost"));
			*(char **)field = bu_strdup(host);
		} else {
			*(char **)field = bu_strdup(value);
		}
		return 0;
	case KEY_BOOL:
		if (parse_bool(value, &b) < 0) {
			*error_r = set_error("%s: '%s' is not a boolean (write true or false)",
					     k->name, shown);
			return -1;
		}
		*(bool *)field = b;
		return 0;
	case KEY_PORT:
		if (bu_parse_u64(value, strlen(value), 65535, &u) < 0) {
			*error_r = set_error("%s: '%s' is not a port number "
					     "(1-65535, or 0 to disable)",
					     k->name, shown);
			return -1;
		}
		store_num(cfg, k, (int64_t)u);
		return 0;
	case KEY_INT:
	case KEY_INT64:
		if (bu_parse_u64(value, strlen(value), UINT64_MAX, &u) < 0) {
			if (value[0] != '\0' && strspn(value, "0123456789") == strlen(value)) {
				*error_r = range_error(k, shown);
				return -1;
			}
			*error_r = set_error("%s: '%s' is not a whole number "
					     "(write digits only, e.g. %s)",
					     k->name, shown, k->def);
			return -1;
		}
		if (u < (uint64_t)k->min || u > (uint64_t)k->max) {
			*error_r = range_error(k, shown);
			return -1;
		}
		store_num(cfg, k, (int64_t)u);
		return 0;
	case KEY_SIZE:
	case KEY_SIZE64:
		r = parse_size(value, &n);
		if (r == -1) {
			*error_r = set_error("%s: '%s' is not a size (write bytes, or a number "
					     "with K, M or G, e.g. %s)",
					     k->name, shown, k->def[0] != '0' ? k->def : "64M");
			return -1;
		}
		if (r == -2 || n < k->min || n > k->max) {
			*error_r = range_error(k, shown);
			return -1;
		}
		store_num(cfg, k, n);
		return 0;
	}
	bu_assert(!"unknown key type");
	return -1;
}

int bu_config_set(struct bu_config *cfg, const char *key, const char *value, const char **error_r)
{
	const struct key_def *k;
	const char *dummy;
	char shown[SHOW_MAX];

	if (error_r == NULL)
		error_r = &dummy;
	if (key == NULL || value == NULL) {
		*error_r = set_error("missing key or value");
		return -1;
	}
	k = find_key(key);
	if (k == NULL) {
		const char *s = suggest_key(key);

		show(shown, sizeof(shown), key, strlen(key));
		if (s != NULL)
			*error_r = set_error("%s: unknown key (see docs/CONFIG.md; "
					     "did you mean '%s'?)",
					     shown, s);
		else
			*error_r = set_error("%s: unknown key (see docs/CONFIG.md)", shown);
		return -1;
	}
	return set_value(cfg, k, value, error_r);
}

/* ---- whole configs ---------------------------------------------------- */

void bu_config_defaults(struct bu_config *cfg)
{
	const char *error;
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < BU_SVC_COUNT; i++) {
		cfg->svc[i].name = services[i].name;
		cfg->svc[i].tls = services[i].tls;
	}
	for (i = 0; i < BU_N_ELEMENTS(keys); i++) {
		if (set_value(cfg, &keys[i], keys[i].def, &error) < 0)
			bu_panic("bad default in config table: %s", error);
	}
}

void bu_config_free(struct bu_config *cfg)
{
	size_t i;

	for (i = 0; i < BU_N_ELEMENTS(keys); i++) {
		if (keys[i].type == KEY_STRING)
			bu_free((char **)((char *)cfg + keys[i].offset));
	}
	bu_free(&cfg->path);
}

/* deep copy; dst is overwritten */
static void config_copy(struct bu_config *dst, const struct bu_config *src)
{
	size_t i;

	*dst = *src;
	for (i = 0; i < BU_N_ELEMENTS(keys); i++) {
		if (keys[i].type == KEY_STRING) {
			char **f = (char **)((char *)dst + keys[i].offset);

			if (*f != NULL)
				*f = bu_strdup(*f);
		}
	}
	if (dst->path != NULL)
		dst->path = bu_strdup(dst->path);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Split one line into key and value (both NUL-terminated, in place).
 * Returns 1 for a key = value line, 0 for a blank or comment line, -1 with
 * *error_r on a syntax error.  *key_r is set whenever a key was seen, so
 * that errors can name it.
 */
static int parse_line(char *line, size_t len, char **key_r, char **value_r, const char **error_r)
{
	char shown[SHOW_MAX];
	char *p = line, *end, *eq, *k_end, *v, *out;

	*key_r = NULL;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	end = line + len;
	*end = '\0';
	if (memchr(line, '\0', len) != NULL) {
		*error_r = set_error("line contains a NUL byte (the file must be text)");
		return -1;
	}
	while (p < end && is_space(*p))
		p++;
	if (p == end || *p == '#')
		return 0;
	eq = memchr(p, '=', (size_t)(end - p));
	if (eq == NULL) {
		show(shown, sizeof(shown), p, (size_t)(end - p));
		*error_r = set_error("'%s': expected 'key = value'", shown);
		return -1;
	}
	k_end = eq;
	while (k_end > p && is_space(k_end[-1]))
		k_end--;
	if (k_end == p) {
		*error_r = set_error("missing key before '=' (write 'key = value')");
		return -1;
	}
	*k_end = '\0';
	*key_r = p;

	v = eq + 1;
	while (v < end && is_space(*v))
		v++;
	if (v < end && *v == '"') {
		/* quoted: \" and \\ are the escapes; unquote in place */
		char *q = v + 1;

		out = v;
		for (;;) {
			if (q == end) {
				*error_r = set_error("%s: missing closing '\"' in quoted value",
						     *key_r);
				return -1;
			}
			if (*q == '"')
				break;
			if (*q == '\\') {
				if (q + 1 < end && (q[1] == '"' || q[1] == '\\')) {
					q++;
				} else {
					*error_r = set_error("%s: unknown escape in quoted value "
							     "(only \\\" and \\\\ are allowed)",
							     *key_r);
					return -1;
				}
			}
			*out++ = *q++;
		}
		q++; /* closing quote */
		while (q < end && is_space(*q))
			q++;
		if (q < end && *q != '#') {
			show(shown, sizeof(shown), q, (size_t)(end - q));
			*error_r = set_error("%s: unexpected '%s' after the closing quote "
					     "(comments start with '#')",
					     *key_r, shown);
			return -1;
		}
		*out = '\0';
		*value_r = v;
		return 1;
	}
	/* unquoted: a '#' at the start or after whitespace starts a comment */
	for (out = v; out < end; out++) {
		if (*out == '#' && (out == v || is_space(out[-1])))
			break;
	}
	while (out > v && is_space(out[-1]))
		out--;
	*out = '\0';
	*value_r = v;
	return 1;
}

int bu_config_load(struct bu_config *cfg, const char *path, const char **error_r)
{
	struct bu_config tmp;
	bool seen[BU_N_ELEMENTS(keys)] = { false };
	unsigned lineno = 0;
	char *line = NULL;
	size_t linecap = 0;
	ssize_t n;
	const char *dummy, *err = NULL;
	FILE *f;
	int ret = 0;

	if (error_r == NULL)
		error_r = &dummy;
	if (cfg->state_dir == NULL)
		bu_config_defaults(cfg); /* caller skipped it: be safe */
	f = fopen(path, "re");
	if (f == NULL) {
		*error_r = set_error("%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	config_copy(&tmp, cfg);
	while ((n = getline(&line, &linecap, f)) >= 0) {
		const struct key_def *k;
		char *key, *value;
		int r;

		lineno++;
		r = parse_line(line, (size_t)n, &key, &value, &err);
		if (r == 0)
			continue;
		if (r > 0) {
			k = find_key(key);
			if (k == NULL) {
				(void)bu_config_set(&tmp, key, value, &err);
				r = -1;
			} else if (seen[k - keys]) {
				err = set_error("%s: given twice (remove one of the lines)",
						k->name);
				r = -1;
			} else {
				seen[k - keys] = true;
				r = set_value(&tmp, k, value, &err);
			}
		}
		if (r < 0) {
			*error_r = set_error("%s:%u: %s", path, lineno, err);
			ret = -1;
			break;
		}
	}
	if (ret == 0 && ferror(f)) {
		*error_r = set_error("%s: read error: %s", path, strerror(errno));
		ret = -1;
	}
	free(line);
	fclose(f);
	if (ret < 0) {
		bu_config_free(&tmp);
		return -1;
	}
	free(tmp.path);
	tmp.path = bu_strdup(path);
	bu_config_free(cfg);
	*cfg = tmp;
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

/* a string in file syntax: bare when that reads back the same, else quoted */
static void write_string(FILE *f, const char *s)
{
	size_t len = strlen(s);
	bool quote = len == 0 || is_space(s[0]) || is_space(s[len - 1]) || s[0] == '"' ||
		     strchr(s, '#') != NULL || strchr(s, '\\') != NULL;

	if (!quote) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void write_value(FILE *f, const struct bu_config *cfg, const struct key_def *k)
{
	const void *field = (const char *)cfg + k->offset;
	char num[32];

	switch (k->type) {
	case KEY_STRING:
		write_string(f, *(char *const *)field != NULL ? *(char *const *)field : "");
		return;
	case KEY_BOOL:
		fputs(*(const bool *)field ? "true" : "false", f);
		return;
	case KEY_SIZE:
	case KEY_SIZE64:
		format_size(num, sizeof(num), load_num(cfg, k));
		fputs(num, f);
		return;
	case KEY_INT:
	case KEY_INT64:
	case KEY_PORT:
		fprintf(f, "%" PRId64, load_num(cfg, k));
		return;
	}
}

int bu_config_write_sample(const char *path, const struct bu_config *overrides)
{
	struct bu_config defaults;
	bool to_stdout = path == NULL || path[0] == '\0' || strcmp(path, "-") == 0;
	FILE *f = to_stdout ? stdout : fopen(path, "we");
	size_t i;
	int ret = 0;

	if (f == NULL)
		return -1;
	bu_config_defaults(&defaults);
	if (overrides == NULL)
		overrides = &defaults;
	fputs("# bureau.conf - Bureau server configuration.\n"
	      "#\n"
	      "# Syntax: 'key = value'; '#' starts a comment; quote values that are\n"
	      "# empty or contain '#' or '\"' (\\\" and \\\\ escape inside quotes).\n"
	      "# Every key is listed below with its default; see docs/CONFIG.md.\n\n",
	      f);
	for (i = 0; i < BU_N_ELEMENTS(keys); i++) {
		const struct key_def *k = &keys[i];

		fprintf(f, "# %s\n# default: ", k->doc);
		if (k->def_doc != NULL)
			fputs(k->def_doc, f);
		else
			write_value(f, &defaults, k);
		fprintf(f, "\n%s = ", k->name);
		if (k->def_doc != NULL && k->type == KEY_STRING &&
		    strcmp(*(char *const *)((const char *)overrides + k->offset),
			   *(char *const *)((const char *)&defaults + k->offset)) == 0)
			/* a default computed on this machine (hostname): write
			 * the symbolic default so that the file stays portable */
			write_string(f, k->def);
		else
			write_value(f, overrides, k);
		fputs("\n\n", f);
	}
	bu_config_free(&defaults);
	if (to_stdout) {
		if (fflush(f) != 0 || ferror(f))
			ret = -1;
	} else {
		if (ferror(f))
			ret = -1;
		if (fclose(f) != 0)
			ret = -1;
	}
	return ret;
}

char *bu_config_state_path(const struct bu_config *cfg, const char *rel)
{
	const char *dir =
		cfg->state_dir != NULL && cfg->state_dir[0] != '\0' ? cfg->state_dir : ".";
	size_t dlen = strlen(dir);

	if (rel == NULL || rel[0] == '\0')
		return bu_strdup(dir);
	if (rel[0] == '/')
		return bu_strdup(rel);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	return bu_asprintf("%.*s%s%s", (int)dlen, dir, dir[dlen - 1] == '/' ? "" : "/", rel);
}

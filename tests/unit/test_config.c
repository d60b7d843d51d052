/*
 * test_config.c - unit tests for server/core/config.c: defaults, every value
 * type, syntax, error messages (file, line, key, hint), all-or-nothing
 * loading, the sample file round trip and docs/CONFIG.md staying in step
 * with the key table.
 */
#include "server/core/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
		if (a_ == NULL || strcmp(a_, b_) != 0) {                                           \
			fprintf(stderr,                                                            \
				"%s:%d: CHECK_STR failed: %s: got \"%s\", "                        \
				"want \"%s\"\n",                                                   \
				__FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_);                   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static char tmpdir[] = "/tmp/bureau-test-config-XXXXXX";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	struct bu_buf b;
	char chunk[4096];
	size_t n;

	bu_buf_init(&b, 0);
	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		(void)bu_buf_append(&b, chunk, n);
	fclose(f);
	return bu_buf_steal(&b, NULL);
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* every field but path; returns the name of the first difference */
static const char *config_diff(const struct bu_config *a, const struct bu_config *b)
{
	size_t i;

#define S(f)                                                                                       \
	if (!str_eq(a->f, b->f))                                                                   \
	return #f
#define N(f)                                                                                       \
	if (a->f != b->f)                                                                          \
	return #f
	S(state_dir);
	S(listen_address);
	S(hostname);
	S(user);
	S(database_url);
	S(pg_bindir);
	S(tls_cert);
	S(tls_key);
	S(log_file);
	S(log_level);
	S(password_scheme);
	N(db_pool_size);
	N(io_threads);
	N(tls_selfsigned);
	N(allow_plaintext_loopback);
	N(max_line);
	N(max_literal);
	N(max_sessions_per_ip);
	N(idle_timeout);
	N(preauth_timeout);
	N(auth_fail_limit);
	N(auth_fail_window);
	N(default_quota_storage);
	N(default_quota_messages);
	N(min_password_length);
#undef S
#undef N
	for (i = 0; i < BU_SVC_COUNT; i++) {
		if (!str_eq(a->svc[i].name, b->svc[i].name) || a->svc[i].port != b->svc[i].port ||
		    a->svc[i].tls != b->svc[i].tls)
			return "svc";
	}
	return NULL;
}

static void test_defaults(void)
{
	static const struct {
		enum bu_service_id id;
		const char *name;
		int port;
		enum bu_tls_mode tls;
	} svcs[] = {
		{ BU_SVC_IMAP, "imap", 143, BU_TLS_STARTTLS },
		{ BU_SVC_IMAPS, "imaps", 993, BU_TLS_IMPLICIT },
		{ BU_SVC_POP3, "pop3", 110, BU_TLS_STARTTLS },
		{ BU_SVC_POP3S, "pop3s", 995, BU_TLS_IMPLICIT },
		{ BU_SVC_SMTP, "smtp", 25, BU_TLS_STARTTLS },
		{ BU_SVC_SUBMISSION, "submission", 587, BU_TLS_STARTTLS },
		{ BU_SVC_SUBMISSIONS, "submissions", 465, BU_TLS_IMPLICIT },
		{ BU_SVC_LMTP, "lmtp", 24, BU_TLS_NONE },
		{ BU_SVC_HTTP, "http", 80, BU_TLS_NONE },
		{ BU_SVC_HTTPS, "https", 443, BU_TLS_IMPLICIT },
	};
	struct bu_config c;
	size_t i;

	bu_config_defaults(&c);
	CHECK(c.path == NULL);
	CHECK_STR(c.state_dir, "/var/lib/bureau");
	CHECK_STR(c.listen_address, "127.0.0.1");
	CHECK(c.hostname != NULL && c.hostname[0] != '\0');
	CHECK_STR(c.user, "bureau");
	CHECK_STR(c.database_url, "");
	CHECK_STR(c.pg_bindir, "");
	CHECK(c.db_pool_size == 8);
	CHECK(c.io_threads == 0);
	CHECK_STR(c.tls_cert, "");
	CHECK_STR(c.tls_key, "");
	CHECK(c.tls_selfsigned == true);
	CHECK(c.allow_plaintext_loopback == false);
	CHECK_STR(c.log_file, "");
	CHECK_STR(c.log_level, "info");
	CHECK(c.max_line == 65536);
	CHECK(c.max_literal == 64 * 1024 * 1024);
	CHECK(c.max_sessions_per_ip == 50);
	CHECK(c.idle_timeout == 1800);
	CHECK(c.preauth_timeout == 60);
	CHECK(c.auth_fail_limit == 10);
	CHECK(c.auth_fail_window == 300);
	CHECK(c.default_quota_storage == 0);
	CHECK(c.default_quota_messages == 0);
	CHECK_STR(c.password_scheme, "yescrypt");
	CHECK(c.min_password_length == 8);
	for (i = 0; i < BU_N_ELEMENTS(svcs); i++) {
		CHECK_STR(c.svc[svcs[i].id].name, svcs[i].name);
		CHECK(c.svc[svcs[i].id].port == svcs[i].port);
		CHECK(c.svc[svcs[i].id].tls == svcs[i].tls);
	}
	bu_config_free(&c);
	CHECK(c.state_dir == NULL && c.hostname == NULL);
	bu_config_free(&c); /* twice is harmless */
}

static void test_set(void)
{
	static const struct {
		const char *key, *value;
		const char *error; /* NULL = must succeed */
	} cases[] = {
		{ "imap.port", "1143", NULL },
		{ "imap.port", "0", NULL },
		{ "imap.port", "65535", NULL },
		{ "imap.port", "65536",
		  "imap.port: '65536' is not a port number (1-65535, or 0 to disable)" },
		{ "imap.port", "abc",
		  "imap.port: 'abc' is not a port number (1-65535, or 0 to disable)" },
		{ "imap.port", "-1",
		  "imap.port: '-1' is not a port number (1-65535, or 0 to disable)" },
		{ "imap.port", "",
		  "imap.port: '' is not a port number (1-65535, or 0 to disable)" },
		{ "https.port", "8443", NULL },
		{ "tls.selfsigned", "false", NULL },
		{ "tls.selfsigned", "Yes", NULL },
		{ "tls.selfsigned", "off", NULL },
		{ "tls.selfsigned", "1", NULL },
		{ "tls.selfsigned", "maybe",
		  "tls.selfsigned: 'maybe' is not a boolean (write true or false)" },
		{ "database.pool_size", "16", NULL },
		{ "database.pool_size", "0",
		  "database.pool_size: '0' is out of range (write a number from 1 to 1024)" },
		{ "database.pool_size", "99999999999999999999999",
		  "database.pool_size: '99999999999999999999999' is out of range "
		  "(write a number from 1 to 1024)" },
		{ "database.pool_size", "8x",
		  "database.pool_size: '8x' is not a whole number (write digits only, e.g. 8)" },
		{ "limits.max_literal", "1G", NULL },
		{ "limits.max_literal", "512k", NULL },
		{ "limits.max_literal", "2G",
		  "limits.max_literal: '2G' is out of range (write a size from 1K to 1G)" },
		{ "limits.max_literal", "12X",
		  "limits.max_literal: '12X' is not a size (write bytes, or a number with K, "
		  "M or G, e.g. 64M)" },
		{ "limits.max_literal", "M",
		  "limits.max_literal: 'M' is not a size (write bytes, or a number with K, "
		  "M or G, e.g. 64M)" },
		{ "quota.storage", "10G", NULL },
		{ "quota.storage", "8191T", NULL },
		{ "quota.storage", "9999999T", "quota.storage: '9999999T' is too large" },
		{ "quota.messages", "100000", NULL },
		{ "password.scheme", "bcrypt", NULL },
		{ "password.scheme", "md5",
		  "password.scheme: 'md5' is not a password scheme (write yescrypt, sha512 or "
		  "bcrypt)" },
		{ "log.level", "debug", NULL },
		{ "log.level", "loud",
		  "log.level: 'loud' is not a log level (write debug, info, warning, error or "
		  "fatal)" },
		{ "listen.address", "::", NULL },
		{ "listen.address", "0.0.0.0", NULL },
		{ "listen.address", "localhost",
		  "listen.address: 'localhost' is not an IP address (write e.g. 127.0.0.1, "
		  "0.0.0.0 or ::)" },
		{ "state_dir", "", "state_dir: '' must not be empty (write a directory path)" },
		{ "user", "", NULL },
		{ "imapport", "1",
		  "imapport: unknown key (see docs/CONFIG.md; did you mean 'imap.port'?)" },
		{ "Imap.Port", "1",
		  "Imap.Port: unknown key (see docs/CONFIG.md; did you mean 'imap.port'?)" },
		{ "database.poolsize", "1",
		  "database.poolsize: unknown key (see docs/CONFIG.md; did you mean "
		  "'database.pool_size'?)" },
		{ "zzz", "1", "zzz: unknown key (see docs/CONFIG.md)" },
		{ "completely.unrelated.thing", "1",
		  "completely.unrelated.thing: unknown key (see docs/CONFIG.md)" },
		{ "bad\x01key", "1", "bad?key: unknown key (see docs/CONFIG.md)" },
		{ "user", "ctl\x01", "user: 'ctl?' contains a control character (remove it)" },
		{ "tls.cert", "a\nb", "tls.cert: 'a?b' contains a control character (remove it)" },
		{ "imap.port", "\x1b[31m",
		  "imap.port: '?[31m' is not a port number "
		  "(1-65535, or 0 to disable)" },
	};
	struct bu_config c;
	const char *error;
	size_t i;

	bu_config_defaults(&c);
	for (i = 0; i < BU_N_ELEMENTS(cases); i++) {
		int r;

		error = NULL;
		r = bu_config_set(&c, cases[i].key, cases[i].value, &error);
		if (cases[i].error == NULL) {
			if (r != 0) {
				fprintf(stderr, "set case %zu (%s = %s) failed: %s\n", i,
					cases[i].key, cases[i].value, error);
				failures++;
			}
		} else if (r != -1 || error == NULL || strcmp(error, cases[i].error) != 0) {
			fprintf(stderr, "set case %zu (%s = %s): r=%d\n  got  %s\n  want %s\n", i,
				cases[i].key, cases[i].value, r, error ? error : "(null)",
				cases[i].error);
			failures++;
		}
		checks++;
	}
	bu_config_free(&c);

	/* values really land in the struct */
	bu_config_defaults(&c);
	CHECK(bu_config_set(&c, "imaps.port", "10993", NULL) == 0);
	CHECK(c.svc[BU_SVC_IMAPS].port == 10993);
	CHECK(bu_config_set(&c, "limits.max_literal", "2M", NULL) == 0);
	CHECK(c.max_literal == 2 * 1024 * 1024);
	CHECK(bu_config_set(&c, "quota.storage", "3T", NULL) == 0);
	CHECK(c.default_quota_storage == INT64_C(3) << 40);
	CHECK(bu_config_set(&c, "quota.messages", "9223372036854775807", NULL) == 0);
	CHECK(c.default_quota_messages == INT64_MAX);
	CHECK(bu_config_set(&c, "auth.allow_plaintext_loopback", "TRUE", NULL) == 0);
	CHECK(c.allow_plaintext_loopback == true);
	CHECK(bu_config_set(&c, "tls.cert", "/etc/ssl/x.pem", NULL) == 0);
	CHECK_STR(c.tls_cert, "/etc/ssl/x.pem");
	CHECK(bu_config_set(&c, "hostname", "mail.example.org", NULL) == 0);
	CHECK_STR(c.hostname, "mail.example.org");
	CHECK(bu_config_set(&c, "hostname", "", NULL) == 0); /* back to the host's */
	CHECK(c.hostname[0] != '\0' && strcmp(c.hostname, "mail.example.org") != 0);
	/* a failed set leaves the old value */
	CHECK(bu_config_set(&c, "imaps.port", "x", NULL) == -1);
	CHECK(c.svc[BU_SVC_IMAPS].port == 10993);
	CHECK(bu_config_set(&c, NULL, "x", &error) == -1);
	bu_config_free(&c);
}

struct load_case {
	const char *text;
	const char *error; /* exact; NULL = must load */
};

static void test_load_errors(void)
{
	static const struct load_case cases[] = {
		{ "# comment\n\nimap.port = 1143\n", NULL },
		{ "imap.port = 1143\nimap.port = 1144\n",
		  "bureau.conf:2: imap.port: given twice (remove one of the lines)" },
		{ "# a\n# b\n\n\n\n\n\n\n\n\n\nimap.port = abc\n",
		  "bureau.conf:12: imap.port: 'abc' is not a port number (1-65535, or 0 to disable)" },
		{ "\n\nimapport = 143\n",
		  "bureau.conf:3: imapport: unknown key (see docs/CONFIG.md; did you mean "
		  "'imap.port'?)" },
		{ "imap.port 143\n", "bureau.conf:1: 'imap.port 143': expected 'key = value'" },
		{ "= 5\n", "bureau.conf:1: missing key before '=' (write 'key = value')" },
		{ "user = \"abc\n", "bureau.conf:1: user: missing closing '\"' in quoted value" },
		{ "user = \"a\\nb\"\n",
		  "bureau.conf:1: user: unknown escape in quoted value (only \\\" and \\\\ are "
		  "allowed)" },
		{ "user = \"abc\" x\n",
		  "bureau.conf:1: user: unexpected 'x' after the closing quote (comments start "
		  "with '#')" },
		{ "limits.max_line = 100\n",
		  "bureau.conf:1: limits.max_line: '100' is out of range (write a size from 1K "
		  "to 16M)" },
		{ "user = a\0b\n", NULL }, /* cut at the NUL by the C string: fine */
		{ "imap.port=\n",
		  "bureau.conf:1: imap.port: '' is not a port number (1-65535, or 0 to disable)" },
		{ "tls.selfsigned = true # trailing comment\r\n", NULL },
		{ "   \t\n\t# indented comment\n", NULL },
	};
	struct bu_config c, before;
	const char *error;
	size_t i;

	bu_config_defaults(&before);
	for (i = 0; i < BU_N_ELEMENTS(cases); i++) {
		int r;

		write_file("bureau.conf", cases[i].text);
		bu_config_defaults(&c);
		error = NULL;
		r = bu_config_load(&c, "bureau.conf", &error);
		if (cases[i].error == NULL) {
			if (r != 0) {
				fprintf(stderr, "load case %zu failed: %s\n", i, error);
				failures++;
			}
		} else {
			if (r != -1 || error == NULL || strcmp(error, cases[i].error) != 0) {
				fprintf(stderr, "load case %zu: r=%d\n  got  %s\n  want %s\n", i, r,
					error ? error : "(null)", cases[i].error);
				failures++;
			}
			/* all or nothing: cfg is untouched */
			CHECK(config_diff(&c, &before) == NULL);
			CHECK(c.path == NULL);
		}
		checks++;
		bu_config_free(&c);
	}
	bu_config_free(&before);

	/* a NUL byte inside a line */
	{
		FILE *f = fopen("bureau.conf", "w");

		fwrite("user = a\0b\n", 1, 11, f);
		fclose(f);
		bu_config_defaults(&c);
		CHECK(bu_config_load(&c, "bureau.conf", &error) == -1);
		CHECK_STR(error, "bureau.conf:1: line contains a NUL byte (the file must be text)");
		bu_config_free(&c);
	}

	/* missing file */
	bu_config_defaults(&c);
	CHECK(bu_config_load(&c, "does-not-exist.conf", &error) == -1);
	CHECK_STR(error, "does-not-exist.conf: cannot open: No such file or directory");
	bu_config_free(&c);
}

static void test_load_values(void)
{
	struct bu_config c;
	const char *error = NULL;

	write_file("bureau.conf", "# Bureau test configuration\n"
				  "state_dir = var\n"
				  "  listen.address   =   ::1   \n"
				  "hostname = mail.example.org # the public name\n"
				  "user = \"\"\n"
				  "database.url = \"host=/tmp dbname=x # not a comment\"\n"
				  "tls.cert = /etc/ssl/a#b.pem\n"
				  "tls.key = \"  spaced \\\"q\\\" \\\\ \"\n"
				  "imap.port = 10143\n"
				  "smtp.port = 0\n"
				  "limits.max_literal = 10M\n"
				  "quota.storage = 1G\n"
				  "auth.allow_plaintext_loopback = yes\n"
				  "log.level = debug\n"
				  "password.scheme = sha512\n"
				  "io_threads = 4\n");
	bu_config_defaults(&c);
	CHECK(bu_config_load(&c, "bureau.conf", &error) == 0);
	if (error != NULL)
		fprintf(stderr, "unexpected error: %s\n", error);
	CHECK_STR(c.path, "bureau.conf");
	CHECK_STR(c.state_dir, "var");
	CHECK_STR(c.listen_address, "::1");
	CHECK_STR(c.hostname, "mail.example.org");
	CHECK_STR(c.user, "");
	CHECK_STR(c.database_url, "host=/tmp dbname=x # not a comment");
	CHECK_STR(c.tls_cert, "/etc/ssl/a#b.pem");
	CHECK_STR(c.tls_key, "  spaced \"q\" \\ ");
	CHECK(c.svc[BU_SVC_IMAP].port == 10143);
	CHECK(c.svc[BU_SVC_SMTP].port == 0);
	CHECK(c.svc[BU_SVC_IMAPS].port == 993); /* untouched default */
	CHECK(c.max_literal == 10 * 1024 * 1024);
	CHECK(c.default_quota_storage == INT64_C(1) << 30);
	CHECK(c.allow_plaintext_loopback);
	CHECK_STR(c.log_level, "debug");
	CHECK_STR(c.password_scheme, "sha512");
	CHECK(c.io_threads == 4);

	/* -o style override after load */
	CHECK(bu_config_set(&c, "imap.port", "20143", &error) == 0);
	CHECK(c.svc[BU_SVC_IMAP].port == 20143);

	/* loading again over a loaded config replaces path, keeps values */
	write_file("second.conf", "pop3.port = 0\n");
	CHECK(bu_config_load(&c, "second.conf", &error) == 0);
	CHECK_STR(c.path, "second.conf");
	CHECK(c.svc[BU_SVC_POP3].port == 0);
	CHECK(c.svc[BU_SVC_IMAP].port == 20143);
	bu_config_free(&c);

	/* a zeroed struct gets defaults first */
	memset(&c, 0, sizeof(c));
	CHECK(bu_config_load(&c, "second.conf", &error) == 0);
	CHECK_STR(c.state_dir, "/var/lib/bureau");
	CHECK(c.svc[BU_SVC_IMAP].port == 143);
	CHECK(c.svc[BU_SVC_POP3].port == 0);
	bu_config_free(&c);
}

static void round_trip(const struct bu_config *src, const char *name)
{
	struct bu_config back;
	const char *error = NULL, *diff;

	CHECK(bu_config_write_sample("sample.conf", src) == 0);
	/* load over different values to be sure every key is written */
	memset(&back, 0, sizeof(back));
	bu_config_defaults(&back);
	back.svc[BU_SVC_IMAP].port = 1;
	back.tls_selfsigned = !src->tls_selfsigned;
	CHECK(bu_config_load(&back, "sample.conf", &error) == 0);
	if (error != NULL)
		fprintf(stderr, "%s: sample does not load: %s\n", name, error);
	diff = config_diff(src, &back);
	if (diff != NULL) {
		fprintf(stderr, "%s: round trip differs in %s\n", name, diff);
		failures++;
	}
	checks++;
	bu_config_free(&back);
}

static void test_sample(void)
{
	struct bu_config c;
	char *text, *p;
	size_t keys = 0, defaults = 0;

	/* defaults (NULL overrides) */
	bu_config_defaults(&c);
	CHECK(bu_config_write_sample("sample.conf", NULL) == 0);
	text = slurp("sample.conf");
	CHECK(text != NULL);
	if (text == NULL)
		return;
	for (p = text; (p = strstr(p, "\n# default: ")) != NULL; p++)
		defaults++;
	for (p = text; (p = strchr(p, '\n')) != NULL; p++) {
		if (p[1] != '#' && p[1] != '\n' && p[1] != '\0')
			keys++;
	}
	CHECK(keys == 37);
	CHECK(defaults == keys);
	CHECK(strstr(text, "\n# default: 143\nimap.port = 143\n") != NULL);
	CHECK(strstr(text, "\n# default: 64M\nlimits.max_literal = 64M\n") != NULL);
	CHECK(strstr(text, "\n# default: \"\"\ndatabase.url = \"\"\n") != NULL);
	CHECK(strstr(text, "\n# default: true\ntls.selfsigned = true\n") != NULL);
	CHECK(strstr(text, "\n# default: 127.0.0.1\nlisten.address = 127.0.0.1\n") != NULL);
	CHECK(strstr(text, "# hash for new passwords: yescrypt, sha512 or bcrypt\n"
			   "# default: yescrypt\npassword.scheme = yescrypt\n") != NULL);
	/* the host name is written symbolically, so the file is portable */
	CHECK(strstr(text, "\nhostname = \"\"\n") != NULL);
	free(text);
	round_trip(&c, "defaults");
	CHECK(bu_config_write_sample("sample.conf", &c) == 0);
	text = slurp("sample.conf");
	CHECK(text != NULL && strstr(text, "\nhostname = \"\"\n") != NULL);
	free(text);

	/* every field changed, including strings that need quoting */
	CHECK(bu_config_set(&c, "state_dir", "/srv/bureau state", NULL) == 0);
	CHECK(bu_config_set(&c, "listen.address", "::", NULL) == 0);
	CHECK(bu_config_set(&c, "hostname", "mx.example.net", NULL) == 0);
	CHECK(bu_config_set(&c, "user", "", NULL) == 0);
	CHECK(bu_config_set(&c, "database.url", "postgresql:///bureau?host=/run/pg#x", NULL) == 0);
	CHECK(bu_config_set(&c, "database.pg_bindir", " lead and trail ", NULL) == 0);
	CHECK(bu_config_set(&c, "tls.cert", "\"quoted\" \\ back", NULL) == 0);
	CHECK(bu_config_set(&c, "tls.key", "#hash", NULL) == 0);
	CHECK(bu_config_set(&c, "log.file", "-", NULL) == 0);
	CHECK(bu_config_set(&c, "log.level", "warning", NULL) == 0);
	CHECK(bu_config_set(&c, "password.scheme", "bcrypt", NULL) == 0);
	CHECK(bu_config_set(&c, "imap.port", "0", NULL) == 0);
	CHECK(bu_config_set(&c, "https.port", "8443", NULL) == 0);
	CHECK(bu_config_set(&c, "database.pool_size", "3", NULL) == 0);
	CHECK(bu_config_set(&c, "io_threads", "2", NULL) == 0);
	CHECK(bu_config_set(&c, "tls.selfsigned", "no", NULL) == 0);
	CHECK(bu_config_set(&c, "auth.allow_plaintext_loopback", "yes", NULL) == 0);
	CHECK(bu_config_set(&c, "limits.max_line", "100000", NULL) == 0);
	CHECK(bu_config_set(&c, "limits.max_literal", "1536K", NULL) == 0);
	CHECK(bu_config_set(&c, "limits.max_sessions_per_ip", "0", NULL) == 0);
	CHECK(bu_config_set(&c, "limits.idle_timeout", "31", NULL) == 0);
	CHECK(bu_config_set(&c, "limits.preauth_timeout", "7", NULL) == 0);
	CHECK(bu_config_set(&c, "auth.fail_limit", "0", NULL) == 0);
	CHECK(bu_config_set(&c, "auth.fail_window", "61", NULL) == 0);
	CHECK(bu_config_set(&c, "quota.storage", "1000001", NULL) == 0);
	CHECK(bu_config_set(&c, "quota.messages", "77", NULL) == 0);
	CHECK(bu_config_set(&c, "password.min_length", "12", NULL) == 0);
	round_trip(&c, "changed");
	text = slurp("sample.conf");
	CHECK(text != NULL && strstr(text, "\nlimits.max_literal = 1536K\n") != NULL);
	CHECK(text != NULL && strstr(text, "\ntls.key = \"#hash\"\n") != NULL);
	CHECK(text != NULL && strstr(text, "\nstate_dir = /srv/bureau state\n") != NULL);
	CHECK(text != NULL && strstr(text, "\nhostname = mx.example.net\n") != NULL);
	free(text);
	bu_config_free(&c);

	/* unwritable destination */
	CHECK(bu_config_write_sample("/nonexistent-dir/sample.conf", NULL) == -1);
}

/* every key in the sample is documented in docs/CONFIG.md */
static void test_docs_in_sync(void)
{
	const char *srcdir = getenv("BUREAU_SRCDIR");
	char path[4096], *doc, *sample, *line, *save = NULL;
	size_t documented = 0;

	if (srcdir == NULL) {
		fprintf(stderr, "BUREAU_SRCDIR unset: skipping the docs/CONFIG.md check\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/docs/CONFIG.md", srcdir);
	doc = slurp(path);
	CHECK(doc != NULL);
	if (doc == NULL)
		return;
	CHECK(bu_config_write_sample("sample.conf", NULL) == 0);
	sample = slurp("sample.conf");
	for (line = strtok_r(sample, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[128], pat[160];
		size_t n;

		if (line[0] == '#')
			continue;
		n = strcspn(line, " =");
		if (n == 0 || n >= sizeof(key))
			continue;
		memcpy(key, line, n);
		key[n] = '\0';
		/* each key has a heading "### `key`" */
		snprintf(pat, sizeof(pat), "### `%s`\n", key);
		if (strstr(doc, pat) == NULL) {
			fprintf(stderr, "docs/CONFIG.md does not document %s\n", key);
			failures++;
		} else {
			documented++;
		}
		checks++;
	}
	CHECK(documented == 37);
	free(sample);
	free(doc);
}

static void test_state_path(void)
{
	static const struct {
		const char *dir, *rel, *out;
	} cases[] = {
		{ "/var/lib/bureau", "tls/cert.pem", "/var/lib/bureau/tls/cert.pem" },
		{ "/var/lib/bureau/", "pg", "/var/lib/bureau/pg" },
		{ "/var/lib/bureau//", "pg", "/var/lib/bureau/pg" },
		{ "var", "pg", "var/pg" },
		{ "/", "pg", "/pg" },
		{ "/var/lib/bureau", "/etc/ssl/cert.pem", "/etc/ssl/cert.pem" },
		{ "/var/lib/bureau", "", "/var/lib/bureau" },
	};
	struct bu_config c;
	size_t i;

	bu_config_defaults(&c);
	for (i = 0; i < BU_N_ELEMENTS(cases); i++) {
		char *p;

		CHECK(bu_config_set(&c, "state_dir", cases[i].dir, NULL) == 0);
		p = bu_config_state_path(&c, cases[i].rel);
		CHECK_STR(p, cases[i].out);
		free(p);
	}
	bu_config_free(&c);
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL || chdir(tmpdir) < 0) {
		perror(tmpdir);
		return 1;
	}
	test_defaults();
	test_set();
	test_load_errors();
	test_load_values();
	test_sample();
	test_docs_in_sync();
	test_state_path();

	unlink("bureau.conf");
	unlink("second.conf");
	unlink("sample.conf");
	if (chdir("/") == 0)
		rmdir(tmpdir);
	printf("test_config: %d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}

/*
 * gwtest.h - shared helper for unit tests that need PostgreSQL.
 *
 *   struct bu_db *db = gwtest_db("principal");
 *
 * reads a libpq conninfo (key=value string or URL) from BUREAU_TEST_DB,
 * creates a fresh database <prefix>_<pid>_<random> on that server, applies
 * the .sql files of schema/ in name order (from $BUREAU_SRCDIR/schema, which meson sets,
 * else ./schema, ../schema or ../../schema) and returns a connection to it.
 * The database is dropped at exit (WITH (FORCE), so open connections do not
 * keep it alive) unless BUREAU_TEST_KEEP_DB is set. Without BUREAU_TEST_DB
 * the test is skipped: exit status 77. Any other setup failure exits 1.
 *
 * gwtest_conninfo() gives the conninfo of that database, for tests that
 * open more connections (threads).
 *
 * GW_CHECK(expr) counts failures and goes on; main() ends with
 * `return gwtest_status();`.
 */
#ifndef GWTEST_H
#define GWTEST_H

#include <dirent.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/core/db.h"
#include "server/core/util.h"

static int gwtest_failures;
static int gwtest_checks;

#define GW_CHECK(expr)                                                        \
	do {                                                                  \
		gwtest_checks++;                                              \
		if (!(expr)) {                                                \
			gwtest_failures++;                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n",          \
				__FILE__, __LINE__, #expr);                   \
		}                                                             \
	} while (0)

static inline int gwtest_status(void)
{
	fprintf(stderr, "%d checks, %d failed\n", gwtest_checks, gwtest_failures);
	return gwtest_failures == 0 ? 0 : 1;
}

static PGconn *gwtest_admin;
static char gwtest_dbname[96];
static char *gwtest_conninfo_str;

static inline void gwtest_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static inline const char *gwtest_conninfo(void)
{
	return gwtest_conninfo_str;
}

static inline void gwtest_drop(void)
{
	char sql[160];
	PGresult *res;

	if (gwtest_admin == NULL || gwtest_dbname[0] == '\0')
		return;
	if (getenv("BUREAU_TEST_KEEP_DB") != NULL) {
		fprintf(stderr, "gwtest: keeping database %s\n", gwtest_dbname);
	} else {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
			 gwtest_dbname);
		res = PQexec(gwtest_admin, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fprintf(stderr, "gwtest: %s: %s", sql, PQerrorMessage(gwtest_admin));
		PQclear(res);
	}
	PQfinish(gwtest_admin);
	gwtest_admin = NULL;
	free(gwtest_conninfo_str);
	gwtest_conninfo_str = NULL;
}

/* conninfo of base with dbname replaced (works for URLs and key=value) */
static inline char *gwtest_make_conninfo(const char *base, const char *dbname)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(base, &err);
	struct bu_buf b;

	if (opts == NULL) {
		fprintf(stderr, "gwtest: BUREAU_TEST_DB: %s", err != NULL ? err : "bad conninfo\n");
		PQfreemem(err);
		exit(1);
	}
	bu_buf_init(&b, 0);
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;

		if (v == NULL)
			continue;
		bu_buf_printf(&b, "%s%s='", b.len > 0 ? " " : "", o->keyword);
		for (const char *p = v; *p != '\0'; p++) {
			if (*p == '\'' || *p == '\\')
				bu_buf_append_byte(&b, '\\');
			bu_buf_append_byte(&b, (uint8_t)*p);
		}
		bu_buf_append_byte(&b, '\'');
	}
	PQconninfoFree(opts);
	return bu_buf_steal(&b, NULL);
}

static inline int gwtest_sql_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 4 && d->d_name[0] != '.' && strcmp(d->d_name + n - 4, ".sql") == 0;
}

static inline char *gwtest_schema_dir(void)
{
	const char *src = getenv("BUREAU_SRCDIR");
	static const char *const tries[] = { "schema", "../schema", "../../schema" };
	struct stat st;

	if (src != NULL && *src != '\0')
		return bu_asprintf("%s/schema", src);
	for (size_t i = 0; i < BU_N_ELEMENTS(tries); i++) {
		if (stat(tries[i], &st) == 0 && S_ISDIR(st.st_mode))
			return bu_strdup(tries[i]);
	}
	fprintf(stderr, "gwtest: cannot find the schema directory (set BUREAU_SRCDIR)\n");
	exit(1);
}

static inline void gwtest_apply_schema(const char *conninfo)
{
	char *dir = gwtest_schema_dir();
	struct dirent **ents = NULL;
	PGconn *c = PQconnectdb(conninfo);
	int n;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "gwtest: cannot connect to the test database: %s",
			PQerrorMessage(c));
		exit(1);
	}
	PQsetNoticeProcessor(c, gwtest_quiet, NULL);
	n = scandir(dir, &ents, gwtest_sql_filter, alphasort);
	if (n <= 0) {
		fprintf(stderr, "gwtest: no .sql files in %s\n", dir);
		exit(1);
	}
	for (int i = 0; i < n; i++) {
		char *path = bu_asprintf("%s/%s", dir, ents[i]->d_name);
		FILE *f = fopen(path, "re");
		struct bu_buf sql;
		char chunk[4096];
		size_t got;
		PGresult *res;

		if (f == NULL) {
			fprintf(stderr, "gwtest: cannot open %s\n", path);
			exit(1);
		}
		bu_buf_init(&sql, 0);
		while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
			bu_buf_append(&sql, chunk, got);
		fclose(f);
		/* one file, one transaction, like the migration runner */
		res = PQexec(c, "BEGIN");
		PQclear(res);
		res = PQexec(c, bu_buf_cstr(&sql));
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "gwtest: %s: %s", path, PQerrorMessage(c));
			exit(1);
		}
		PQclear(res);
		res = PQexec(c, "COMMIT");
		PQclear(res);
		bu_buf_deinit(&sql);
		free(path);
		free(ents[i]);
	}
	free(ents);
	free(dir);
	PQfinish(c);
}

static inline struct bu_db *gwtest_db(const char *name_prefix)
{
	const char *base = getenv("BUREAU_TEST_DB");
	char sql[160], prefix[32];
	uint32_t rnd = 0;
	size_t n = 0;
	PGresult *res;

	if (base == NULL || *base == '\0') {
		fprintf(stderr, "skipped: BUREAU_TEST_DB is not set\n");
		exit(77);
	}
	/* database names are identifiers: keep the prefix to [a-z0-9_] */
	for (const char *p = name_prefix; p != NULL && *p != '\0' && n + 1 < sizeof(prefix); p++) {
		char c = *p;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
			prefix[n++] = c;
	}
	prefix[n] = '\0';
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)getpid() * 2654435761u;
	snprintf(gwtest_dbname, sizeof(gwtest_dbname), "%s_%ld_%08x",
		 n > 0 ? prefix : "gwtest", (long)getpid(), rnd);

	gwtest_admin = PQconnectdb(base);
	if (PQstatus(gwtest_admin) != CONNECTION_OK) {
		fprintf(stderr, "gwtest: cannot connect to BUREAU_TEST_DB: %s",
			PQerrorMessage(gwtest_admin));
		exit(1);
	}
	PQsetNoticeProcessor(gwtest_admin, gwtest_quiet, NULL);
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", gwtest_dbname);
	res = PQexec(gwtest_admin, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "gwtest: %s: %s", sql, PQerrorMessage(gwtest_admin));
		exit(1);
	}
	PQclear(res);
	atexit(gwtest_drop);
	gwtest_conninfo_str = gwtest_make_conninfo(base, gwtest_dbname);
	gwtest_apply_schema(gwtest_conninfo_str);
	return bu_db_create(gwtest_conninfo_str);
}

#endif

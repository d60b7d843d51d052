/*
 * migrate.c - apply schema/NNN_name.sql in order (schema/000_README.md).
 *
 * Each file runs in one transaction that first takes a transaction-level
 * advisory lock and then re-reads schema_version, so any number of bureaud
 * processes starting at once apply each migration exactly once: the second
 * waits for the lock, sees the version recorded and skips it.
 *
 * The file's text runs with PQexec (several statements in one string). That
 * is the one place where SQL is not parameterised, and it is our own schema
 * from the installation, never input. A migration must not contain BEGIN,
 * COMMIT or anything that cannot run inside a transaction block (CREATE
 * INDEX CONCURRENTLY, VACUUM, ALTER TYPE ... ADD VALUE before PG 12); a file
 * that ends the transaction itself is reported as an error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "log.h"

/* pg_advisory_xact_lock key: "BURM" */
#define MIGRATE_LOCK_KEY "1112888909"
/* a migration file larger than this is a mistake */
#define MIGRATE_MAX_FILE (16 * 1024 * 1024)

struct migration {
	int version;
	char *name;     /* file name */
	char *path;
};

static __thread char migrate_errbuf[1024];

BU_PRINTF(1, 2)
static const char *migrate_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(migrate_errbuf, sizeof(migrate_errbuf), fmt, ap);
	va_end(ap);
	return migrate_errbuf;
}

static int migration_cmp(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	return x->version < y->version ? -1 : x->version > y->version;
}

/* "001_core.sql" -> 1; -1 if the name is not NNN_*.sql */
static int migration_version(const char *name)
{
	size_t digits = strspn(name, "0123456789");
	size_t len = strlen(name);
	uint64_t v;

	if (digits == 0 || name[digits] != '_' || len < digits + 1 + 4 ||
	    strcmp(name + len - 4, ".sql") != 0)
		return -1;
	if (bu_parse_u64(name, digits, 1000000, &v) < 0)
		return -1;
	return (int)v;
}

static void migrations_free(struct migration *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].name);
		free(m[i].path);
	}
	free(m);
}

static int migrations_list(const char *dir, struct migration **list_r, size_t *n_r,
			   const char **error_r)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct migration *list = NULL;
	size_t n = 0, cap = 0;

	if (d == NULL) {
		*error_r = migrate_err("schema directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		int v = migration_version(de->d_name);

		if (v < 0)
			continue;   /* 000_README.md and friends */
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			list = bu_realloc(list, bu_size_mul(cap, sizeof(*list)));
		}
		list[n].version = v;
		list[n].name = bu_strdup(de->d_name);
		list[n].path = bu_asprintf("%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(list, n, sizeof(*list), migration_cmp);
	for (size_t i = 1; i < n; i++) {
		if (list[i].version == list[i - 1].version) {
			*error_r = migrate_err("schema directory %s: %s and %s have the "
					       "same version number", dir, list[i - 1].name,
					       list[i].name);
			migrations_free(list, n);
			return -1;
		}
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

static char *migration_read(const char *path, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct bu_buf buf;
	char chunk[8192];

	if (fd < 0) {
		*error_r = migrate_err("%s: %s", path, strerror(errno));
		return NULL;
	}
	bu_buf_init(&buf, MIGRATE_MAX_FILE);
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*error_r = migrate_err("%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		if (bu_buf_append(&buf, chunk, (size_t)r) < 0) {
			*error_r = migrate_err("%s: larger than %d bytes", path,
					       MIGRATE_MAX_FILE);
			goto fail;
		}
	}
	close(fd);
	if (memchr(buf.data, '\0', buf.len) != NULL) {
		*error_r = migrate_err("%s: contains a NUL byte", path);
		bu_buf_deinit(&buf);
		return NULL;
	}
	if (buf.len == 0) {
		bu_buf_deinit(&buf);
		return bu_strdup("");
	}
	return bu_buf_steal(&buf, NULL);
fail:
	close(fd);
	bu_buf_deinit(&buf);
	return NULL;
}

/* BEGIN + the advisory lock; 0 or -1 with *error_r */
static int migrate_begin_locked(struct bu_db *db, const char **error_r)
{
	if (bu_db_begin(db) < 0) {
		*error_r = migrate_err("migrations: BEGIN: %s", bu_db_errmsg(db));
		return -1;
	}
	if (bu_db_exec(db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")",
		       0, NULL) < 0) {
		*error_r = migrate_err("migrations: advisory lock: %s", bu_db_errmsg(db));
		bu_db_rollback(db);
		return -1;
	}
	return 0;
}

static int migrate_init_table(struct bu_db *db, const char **error_r)
{
	if (migrate_begin_locked(db, error_r) < 0)
		return -1;
	/* IF NOT EXISTS is not safe against a concurrent CREATE; the lock is */
	if (bu_db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
		       "version int PRIMARY KEY, "
		       "name text NOT NULL, "
		       "applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL) < 0) {
		*error_r = migrate_err("migrations: create schema_version: %s",
				       bu_db_errmsg(db));
		bu_db_rollback(db);
		return -1;
	}
	if (bu_db_commit(db) < 0) {
		*error_r = migrate_err("migrations: COMMIT: %s", bu_db_errmsg(db));
		return -1;
	}
	return 0;
}

/* 1 applied, 0 already there, -1 error */
static int migrate_one(struct bu_db *db, const struct migration *m,
		       const char **error_r)
{
	char version[16];
	const char *params[2] = { version, m->name };
	PGresult *res;
	char *sql;

	snprintf(version, sizeof(version), "%d", m->version);
	if (migrate_begin_locked(db, error_r) < 0)
		return -1;
	res = bu_db_query(db, "SELECT name FROM schema_version WHERE version = $1",
			  1, params);
	if (res == NULL) {
		*error_r = migrate_err("migrations: %s", bu_db_errmsg(db));
		bu_db_rollback(db);
		return -1;
	}
	if (PQntuples(res) > 0) {
		if (strcmp(PQgetvalue(res, 0, 0), m->name) != 0)
			bu_warn("event=migrate.name_mismatch version=%d file=%s recorded=%s",
				m->version, bu_log_q(m->name),
				bu_log_q(PQgetvalue(res, 0, 0)));
		PQclear(res);
		bu_db_rollback(db);
		return 0;
	}
	PQclear(res);

	sql = migration_read(m->path, error_r);
	if (sql == NULL) {
		bu_db_rollback(db);
		return -1;
	}
	int64_t start = bu_mono_ms();
	PGconn *conn = bu_db_pg(db);
	res = PQexec(conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_EMPTY_QUERY) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
		const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
		char clean[512];

		if (msg == NULL)
			msg = PQerrorMessage(conn);
		bu_sanitize(clean, sizeof(clean), msg, strcspn(msg, "\n"));
		bu_error("event=migrate.failed file=%s sqlstate=%s msg=%s position=%s context=%s",
			 bu_log_q(m->name), state != NULL ? state : "-", bu_log_q(clean),
			 pos != NULL ? pos : "-", bu_log_q(ctx != NULL ? ctx : ""));
		*error_r = migrate_err("migration %s failed: %s (SQLSTATE %s%s%s)",
				       m->path, clean, state != NULL ? state : "-",
				       pos != NULL ? ", at character " : "",
				       pos != NULL ? pos : "");
		PQclear(res);
		bu_db_rollback(db);
		return -1;
	}
	PQclear(res);
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		*error_r = migrate_err("migration %s ended the transaction itself (it "
				       "must not contain BEGIN/COMMIT/ROLLBACK)", m->path);
		bu_db_rollback(db);
		return -1;
	}
	if (bu_db_exec(db, "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
		       2, params) < 0) {
		*error_r = migrate_err("migrations: recording %s: %s", m->name,
				       bu_db_errmsg(db));
		bu_db_rollback(db);
		return -1;
	}
	if (bu_db_commit(db) < 0) {
		*error_r = migrate_err("migration %s: COMMIT failed: %s", m->path,
				       bu_db_errmsg(db));
		return -1;
	}
	bu_info("event=migrate.applied version=%d file=%s ms=%lld", m->version,
		bu_log_q(m->name), (long long)(bu_mono_ms() - start));
	return 1;
}

int bu_db_migrate(struct bu_db *db, const char *dir, const char **error_r)
{
	struct migration *list = NULL;
	size_t n = 0;
	int applied = 0;
	PGresult *res;

	if (bu_db_ensure(db) < 0) {
		*error_r = migrate_err("cannot connect to the database: %s",
				       bu_db_errmsg(db));
		return -1;
	}
	if (migrations_list(dir, &list, &n, error_r) < 0)
		return -1;
	if (migrate_init_table(db, error_r) < 0) {
		migrations_free(list, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = migrate_one(db, &list[i], error_r);

		if (rc < 0) {
			migrations_free(list, n);
			return -1;
		}
		applied += rc;
	}

	/* A database migrated by a newer bureaud: say so, keep going. */
	res = bu_db_query(db, "SELECT max(version) FROM schema_version", 0, NULL);
	if (res != NULL) {
		if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
			long max = strtol(PQgetvalue(res, 0, 0), NULL, 10);

			if (n == 0 || max > list[n - 1].version)
				bu_warn("event=migrate.newer_schema db_version=%ld "
					"files_version=%d", max,
					n > 0 ? list[n - 1].version : 0);
		}
		PQclear(res);
	}
	migrations_free(list, n);
	return applied;
}

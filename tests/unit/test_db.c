/*
 * test_db.c - server/core/db.c, migrate.c and hub.c against a real
 * PostgreSQL (BUREAU_TEST_DB, a libpq conninfo; skipped with 77 without it).
 *
 * The test creates its own database (bureau_test_db_PID) and drops it at the
 * end, so it can share a cluster with other tests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "server/core/config.h"
#include "server/core/db.h"
#include "server/core/log.h"
#include "server/core/net.h"

static int failures;
static int checks;

#define CHECK(expr)                                                           \
	do {                                                                  \
		checks++;                                                     \
		if (!(expr)) {                                                \
			failures++;                                           \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #expr); \
		}                                                             \
	} while (0)

static char *base_conninfo;   /* BUREAU_TEST_DB */
static char *test_conninfo;   /* same, dbname = our database */
static char dbname[64];

/* conninfo with dbname replaced (works for key=value strings and URLs) */
static char *conninfo_with_db(const char *conninfo, const char *db)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	struct bu_buf b;

	if (opts == NULL) {
		fprintf(stderr, "bad BUREAU_TEST_DB: %s\n", err != NULL ? err : "?");
		exit(1);
	}
	bu_buf_init(&b, 0);
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = strcmp(o->keyword, "dbname") == 0 ? db : o->val;

		if (v == NULL)
			continue;
		(void)bu_buf_printf(&b, "%s='", o->keyword);
		for (const char *p = v; *p != '\0'; p++) {
			if (*p == '\'' || *p == '\\')
				(void)bu_buf_append_byte(&b, '\\');
			(void)bu_buf_append_byte(&b, (uint8_t)*p);
		}
		(void)bu_buf_append_str(&b, "' ");
	}
	PQconninfoFree(opts);
	return bu_buf_steal(&b, NULL);
}

static PGconn *admin_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static void admin_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "admin SQL failed: %s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(r);
}

/* terminate a backend and wait until it is gone */
static bool terminate_backend(const char *pid)
{
	PGconn *c = admin_connect(test_conninfo);
	const char *params[] = { pid };
	PGresult *r = PQexecParams(c, "SELECT pg_terminate_backend($1::int, 5000)", 1,
				   NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		strcmp(PQgetvalue(r, 0, 0), "t") == 0;

	PQclear(r);
	PQfinish(c);
	return ok;
}

/* ---- query / exec / error codes ------------------------------------------ */

static void test_query(void)
{
	struct bu_db *db = bu_db_create(test_conninfo);
	PGresult *r;

	CHECK(bu_db_ensure(db) == 0);
	CHECK(bu_db_pg(db) != NULL);
	CHECK(bu_db_exec(db, "CREATE TABLE parent (id int PRIMARY KEY, v text)", 0, NULL) == 0);
	CHECK(bu_db_exec(db, "CREATE TABLE child (id int PRIMARY KEY, "
			 "parent int NOT NULL REFERENCES parent(id))", 0, NULL) == 0);

	const char *p1[] = { "1", "one" };
	const char *p2[] = { "2", NULL };
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p1) == 0);
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p2) == 0);
	CHECK(bu_db_errcode(db) == BU_DB_OK);

	r = bu_db_query(db, "SELECT id, v FROM parent ORDER BY id", 0, NULL);
	CHECK(r != NULL);
	if (r != NULL) {
		CHECK(PQntuples(r) == 2);
		CHECK(strcmp(PQgetvalue(r, 0, 1), "one") == 0);
		CHECK(PQgetisnull(r, 1, 1));
		PQclear(r);
	}

	/* a client-looking value is a parameter, never SQL */
	const char *evil[] = { "3", "x'); DROP TABLE parent; --" };
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, evil) == 0);
	r = bu_db_query(db, "SELECT count(*) FROM parent", 0, NULL);
	CHECK(r != NULL && strcmp(PQgetvalue(r, 0, 0), "3") == 0);
	PQclear(r);

	/* unique violation, expected: not logged at error level */
	bu_db_expect(db, BU_DB_ERR_UNIQUE);
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p1) == -1);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_UNIQUE);
	CHECK(strlen(bu_db_errmsg(db)) > 0);

	/* foreign key violation */
	const char *fk[] = { "1", "99" };
	bu_db_expect(db, BU_DB_ERR_FOREIGN);
	CHECK(bu_db_exec(db, "INSERT INTO child VALUES ($1, $2)", 2, fk) == -1);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_FOREIGN);

	/* anything else */
	bu_db_expect(db, BU_DB_ERR_OTHER);
	CHECK(bu_db_query(db, "SELECT * FROM no_such_table", 0, NULL) == NULL);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_OTHER);

	/* success clears the code */
	CHECK(bu_db_exec(db, "SELECT 1", 0, NULL) == 0);
	CHECK(bu_db_errcode(db) == BU_DB_OK);
	CHECK(strcmp(bu_db_errmsg(db), "") == 0);

	/* serialization failures are classified for retry */
	bu_db_expect(db, BU_DB_ERR_SERIAL);
	CHECK(bu_db_exec(db, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = "
			 "'serialization_failure'; END $$", 0, NULL) == -1);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_SERIAL);
	bu_db_expect(db, BU_DB_ERR_SERIAL);
	CHECK(bu_db_exec(db, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = "
			 "'deadlock_detected'; END $$", 0, NULL) == -1);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_SERIAL);

	/* transactions */
	const char *p4[] = { "4", "four" };
	CHECK(bu_db_begin(db) == 0);
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p4) == 0);
	bu_db_rollback(db);
	r = bu_db_query(db, "SELECT count(*) FROM parent WHERE id = 4", 0, NULL);
	CHECK(r != NULL && strcmp(PQgetvalue(r, 0, 0), "0") == 0);
	PQclear(r);

	CHECK(bu_db_begin(db) == 0);
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p4) == 0);
	CHECK(bu_db_commit(db) == 0);
	r = bu_db_query(db, "SELECT count(*) FROM parent WHERE id = 4", 0, NULL);
	CHECK(r != NULL && strcmp(PQgetvalue(r, 0, 0), "1") == 0);
	PQclear(r);

	/* a failed statement aborts the transaction; COMMIT must say so */
	const char *p5[] = { "5", "five" };
	CHECK(bu_db_begin(db) == 0);
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p5) == 0);
	bu_db_expect(db, BU_DB_ERR_UNIQUE);
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p1) == -1);
	CHECK(bu_db_commit(db) == -1);
	r = bu_db_query(db, "SELECT count(*) FROM parent WHERE id = 5", 0, NULL);
	CHECK(r != NULL && strcmp(PQgetvalue(r, 0, 0), "0") == 0);
	PQclear(r);

	/* rollback keeps the error that caused it */
	CHECK(bu_db_begin(db) == 0);
	bu_db_expect(db, BU_DB_ERR_UNIQUE);
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p1) == -1);
	bu_db_rollback(db);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_UNIQUE);

	/* binary parameters: bytes with NUL inside */
	static const char bytes[] = { 'a', '\0', 'b', '\xff' };
	const char *bp[] = { bytes };
	const int lens[] = { sizeof(bytes) };
	const int fmts[] = { 1 };
	r = bu_db_query_bin(db, "SELECT length($1::bytea), encode($1::bytea, 'hex')", 1, bp,
			    lens, fmts);
	CHECK(r != NULL);
	if (r != NULL) {
		CHECK(strcmp(PQgetvalue(r, 0, 0), "4") == 0);
		CHECK(strcmp(PQgetvalue(r, 0, 1), "610062ff") == 0);
		CHECK(PQfformat(r, 0) == 0);   /* text results */
		PQclear(r);
	}

	/* application_name */
	r = bu_db_query(db, "SELECT current_setting('application_name')", 0, NULL);
	CHECK(r != NULL && strcmp(PQgetvalue(r, 0, 0), "bureaud") == 0);
	PQclear(r);

	bu_db_destroy(&db);
	CHECK(db == NULL);
	bu_db_destroy(&db);   /* NULL is fine */
}

/* ---- connection loss and reconnect --------------------------------------- */

static char *backend_pid(struct bu_db *db)
{
	PGresult *r = bu_db_query(db, "SELECT pg_backend_pid()", 0, NULL);
	char *pid;

	if (r == NULL)
		return NULL;
	pid = bu_strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return pid;
}

static void test_reconnect(void)
{
	struct bu_db *db = bu_db_create(test_conninfo);
	char *pid = backend_pid(db), *pid2;
	PGresult *r;

	CHECK(pid != NULL);
	CHECK(terminate_backend(pid));
	/* one failing call ... */
	r = bu_db_query(db, "SELECT 1", 0, NULL);
	CHECK(r == NULL);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_CONN);
	/* ... then the next one reconnects */
	r = bu_db_query(db, "SELECT 1", 0, NULL);
	CHECK(r != NULL);
	PQclear(r);
	CHECK(bu_db_errcode(db) == BU_DB_OK);
	pid2 = backend_pid(db);
	CHECK(pid != NULL && pid2 != NULL && strcmp(pid, pid2) != 0);
	free(pid);
	free(pid2);

	/* lost inside a transaction: the rest of it fails, COMMIT too, and
	 * nothing runs outside a transaction by accident */
	const char *p[] = { "77", "x" };
	CHECK(bu_db_begin(db) == 0);
	pid = backend_pid(db);
	CHECK(terminate_backend(pid));
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p) == -1);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_CONN);
	CHECK(bu_db_exec(db, "INSERT INTO parent VALUES ($1, $2)", 2, p) == -1);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_CONN);
	CHECK(bu_db_commit(db) == -1);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_CONN);
	r = bu_db_query(db, "SELECT count(*) FROM parent WHERE id = 77", 0, NULL);
	CHECK(r != NULL && strcmp(PQgetvalue(r, 0, 0), "0") == 0);
	PQclear(r);
	free(pid);

	/* same, ended by ROLLBACK */
	CHECK(bu_db_begin(db) == 0);
	pid = backend_pid(db);
	CHECK(terminate_backend(pid));
	CHECK(bu_db_exec(db, "SELECT 1", 0, NULL) == -1);
	bu_db_rollback(db);
	CHECK(bu_db_exec(db, "SELECT 1", 0, NULL) == 0);
	free(pid);
	bu_db_destroy(&db);

	/* a server that is not there: fails with CONN, never crashes */
	db = bu_db_create("host=/nonexistent-bureau-dir dbname=x user=x");
	CHECK(bu_db_ensure(db) == -1);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_CONN);
	CHECK(bu_db_query(db, "SELECT 1", 0, NULL) == NULL);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_CONN);
	CHECK(bu_db_exec(db, "SELECT 1", 0, NULL) == -1);
	bu_db_rollback(db);
	bu_db_destroy(&db);
}

/* ---- prepared statement cache -------------------------------------------- */

/* how many prepared statements of this session have exactly this text */
static int prepared_count(struct bu_db *db, const char *sql)
{
	const char *params[] = { sql };
	PGresult *r = bu_db_query(db, "SELECT count(*) FROM pg_prepared_statements "
				  "WHERE statement = $1", 1, params);
	int n = -1;

	if (r != NULL) {
		n = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	return n;
}

static bool query_is(struct bu_db *db, const char *sql, int nparams,
		     const char *const *params, const char *want)
{
	PGresult *r = bu_db_query(db, sql, nparams, params);
	bool ok = r != NULL && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), want) == 0;

	PQclear(r);
	return ok;
}

static void test_prepared(void)
{
	static const char q[] = "SELECT $1::int + 1";
	struct bu_db *db = bu_db_create(test_conninfo);
	const char *p1[] = { "41" }, *p2[] = { "1" };
	char *pid;

	/* used once: not prepared; from the second use on: prepared once */
	CHECK(query_is(db, q, 1, p1, "42"));
	CHECK(prepared_count(db, q) == 0);
	CHECK(query_is(db, q, 1, p2, "2"));
	CHECK(prepared_count(db, q) == 1);
	CHECK(query_is(db, q, 1, p1, "42"));
	/* same text from another buffer: same entry */
	{
		char *copy = bu_strdup(q);

		CHECK(query_is(db, copy, 1, p2, "2"));
		free(copy);
	}
	CHECK(prepared_count(db, q) == 1);
	/* the lookup query itself is prepared too (used 3 times by now) */
	CHECK(prepared_count(db, "SELECT count(*) FROM pg_prepared_statements "
			     "WHERE statement = $1") == 1);

	/* transaction control and multi-statement texts are never prepared */
	for (int i = 0; i < 3; i++) {
		CHECK(bu_db_begin(db) == 0);
		CHECK(bu_db_commit(db) == 0);
		CHECK(bu_db_exec(db, "SELECT 1; SELECT 2", 0, NULL) == -1);
	}
	CHECK(prepared_count(db, "BEGIN") == 0);
	CHECK(prepared_count(db, "COMMIT") == 0);

	/* error classification is the same for prepared statements */
	CHECK(bu_db_exec(db, "CREATE TABLE prep (id int PRIMARY KEY)", 0, NULL) == 0);
	CHECK(bu_db_exec(db, "INSERT INTO prep VALUES ($1)", 1, p1) == 0);
	CHECK(bu_db_exec(db, "INSERT INTO prep VALUES ($1)", 1, p2) == 0);
	CHECK(prepared_count(db, "INSERT INTO prep VALUES ($1)") == 1);
	bu_db_expect(db, BU_DB_ERR_UNIQUE);
	CHECK(bu_db_exec(db, "INSERT INTO prep VALUES ($1)", 1, p1) == -1);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_UNIQUE);
	for (int i = 0; i < 2; i++) {
		bu_db_expect(db, BU_DB_ERR_OTHER);
		CHECK(bu_db_query(db, "SELECT * FROM no_such_prep", 0, NULL) == NULL);
		CHECK(bu_db_errcode(db) == BU_DB_ERR_OTHER);
	}

	/* a schema change under a prepared SELECT *: re-planned or re-parsed */
	CHECK(query_is(db, "SELECT count(*) FROM (SELECT * FROM prep) x", 0, NULL, "2"));
	CHECK(query_is(db, "SELECT * FROM prep ORDER BY id LIMIT 1", 0, NULL, "1"));
	CHECK(query_is(db, "SELECT * FROM prep ORDER BY id LIMIT 1", 0, NULL, "1"));
	CHECK(bu_db_exec(db, "ALTER TABLE prep ADD COLUMN v text", 0, NULL) == 0);
	{
		PGresult *r = bu_db_query(db, "SELECT * FROM prep ORDER BY id LIMIT 1", 0, NULL);

		CHECK(r != NULL && PQnfields(r) == 2);
		PQclear(r);
	}

	/* the server forgot them (DISCARD ALL): retried unprepared, then
	 * prepared again */
	PQclear(PQexec(bu_db_pg(db), "DEALLOCATE ALL"));
	CHECK(query_is(db, q, 1, p1, "42"));
	CHECK(bu_db_errcode(db) == BU_DB_OK);
	CHECK(query_is(db, q, 1, p1, "42"));
	CHECK(prepared_count(db, q) == 1);

	/* reconnect empties the cache: inside a transaction (where a stale
	 * entry could not be retried) the statement still runs */
	pid = backend_pid(db);
	CHECK(pid != NULL && terminate_backend(pid));
	free(pid);
	CHECK(bu_db_query(db, "SELECT 1", 0, NULL) == NULL);
	CHECK(bu_db_errcode(db) == BU_DB_ERR_CONN);
	CHECK(bu_db_begin(db) == 0);
	CHECK(query_is(db, q, 1, p1, "42"));
	CHECK(query_is(db, q, 1, p2, "2"));
	CHECK(bu_db_commit(db) == 0);
	CHECK(prepared_count(db, q) == 1);

	/* bounded: past the limit, new texts run unprepared */
	for (int i = 0; i < 600; i++) {
		char *sql = bu_asprintf("SELECT $1::int + %d", i);
		char want[16];

		snprintf(want, sizeof(want), "%d", 1 + i);
		for (int k = 0; k < 2; k++)
			CHECK(query_is(db, sql, 1, p2, want));
		free(sql);
	}
	{
		PGresult *r = bu_db_query(db, "SELECT count(*) FROM pg_prepared_statements", 0, NULL);
		int n = r != NULL ? atoi(PQgetvalue(r, 0, 0)) : -1;

		CHECK(n >= 500 && n <= 512);
		PQclear(r);
	}
	CHECK(query_is(db, q, 1, p1, "42"));
	bu_db_destroy(&db);
}

/* ---- migrations ---------------------------------------------------------- */

static char schema_dir[128];

static void write_file(const char *name, const char *text)
{
	char *path = bu_asprintf("%s/%s", schema_dir, name);
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	free(path);
}

static void remove_file(const char *name)
{
	char *path = bu_asprintf("%s/%s", schema_dir, name);

	unlink(path);
	free(path);
}

struct migrate_thread {
	int applied;
	const char *error;
};

static void *migrate_thread_main(void *arg)
{
	struct migrate_thread *t = arg;
	struct bu_db *db = bu_db_create(test_conninfo);

	t->applied = bu_db_migrate(db, schema_dir, &t->error);
	bu_db_destroy(&db);
	return NULL;
}

static int count_rows(const char *sql)
{
	struct bu_db *db = bu_db_create(test_conninfo);
	PGresult *r;
	int n = -1;

	bu_db_expect(db, BU_DB_ERR_OTHER);
	r = bu_db_query(db, sql, 0, NULL);
	if (r != NULL) {
		n = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
	bu_db_destroy(&db);
	return n;
}

static void test_migrate(void)
{
	struct migrate_thread t[2] = { { 0 }, { 0 } };
	pthread_t tid[2];
	struct bu_db *db;
	const char *error = NULL;

	snprintf(schema_dir, sizeof(schema_dir), "/tmp/bureau-test-schema-%ld", (long)getpid());
	if (mkdir(schema_dir, 0700) < 0) {
		fprintf(stderr, "mkdir %s: %s\n", schema_dir, strerror(errno));
		exit(1);
	}
	write_file("000_README.md", "not a migration\n");
	/* the sleep makes the two starters overlap */
	write_file("001_first.sql",
		   "-- first\nCREATE TABLE m_one (id int PRIMARY KEY);\n"
		   "SELECT pg_sleep(0.3);\n"
		   "INSERT INTO m_one VALUES (1);\n"
		   "CREATE FUNCTION m_f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n");
	write_file("002_second.sql",
		   "CREATE TABLE m_two (id int PRIMARY KEY, one int REFERENCES m_one(id));\n"
		   "INSERT INTO m_two VALUES (1, 1);\n");
	write_file("notes.txt", "ignored\n");

	for (int i = 0; i < 2; i++)
		pthread_create(&tid[i], NULL, migrate_thread_main, &t[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	CHECK(t[0].applied >= 0 && t[1].applied >= 0);
	CHECK(t[0].applied + t[1].applied == 2);
	CHECK(count_rows("SELECT count(*) FROM schema_version") == 2);
	CHECK(count_rows("SELECT count(*) FROM m_one") == 1);
	CHECK(count_rows("SELECT count(*) FROM m_two") == 1);
	CHECK(count_rows("SELECT count(*) FROM schema_version WHERE version = 2 "
			 "AND name = '002_second.sql'") == 1);

	/* again: nothing to do */
	db = bu_db_create(test_conninfo);
	CHECK(bu_db_migrate(db, schema_dir, &error) == 0);

	/* a failing migration changes nothing and is not recorded */
	write_file("003_bad.sql", "CREATE TABLE m_three (id int);\nSELEC oops;\n");
	error = NULL;
	CHECK(bu_db_migrate(db, schema_dir, &error) == -1);
	CHECK(error != NULL && strstr(error, "003_bad.sql") != NULL);
	CHECK(count_rows("SELECT count(*) FROM schema_version") == 2);
	CHECK(count_rows("SELECT count(*) FROM pg_tables WHERE tablename = 'm_three'") == 0);
	remove_file("003_bad.sql");

	/* a migration may not end the transaction itself */
	write_file("003_commit.sql", "CREATE TABLE m_four (id int);\nCOMMIT;\n");
	error = NULL;
	CHECK(bu_db_migrate(db, schema_dir, &error) == -1);
	CHECK(error != NULL && strstr(error, "003_commit.sql") != NULL);
	CHECK(count_rows("SELECT count(*) FROM schema_version") == 2);
	remove_file("003_commit.sql");

	/* two files with one number */
	write_file("003_a.sql", "SELECT 1;\n");
	write_file("3_b.sql", "SELECT 1;\n");
	error = NULL;
	CHECK(bu_db_migrate(db, schema_dir, &error) == -1);
	CHECK(error != NULL && strstr(error, "same version") != NULL);
	remove_file("3_b.sql");

	/* and a good third one on top */
	CHECK(bu_db_migrate(db, schema_dir, &error) == 1);
	CHECK(count_rows("SELECT count(*) FROM schema_version") == 3);
	remove_file("003_a.sql");

	/* a missing directory */
	error = NULL;
	CHECK(bu_db_migrate(db, "/nonexistent/bureau/schema", &error) == -1);
	CHECK(error != NULL);
	bu_db_destroy(&db);

	remove_file("000_README.md");
	remove_file("001_first.sql");
	remove_file("002_second.sql");
	remove_file("notes.txt");
	rmdir(schema_dir);
}

/* ---- notification hub ---------------------------------------------------- */

struct hub_seen {
	pthread_mutex_t lock;
	int calls;
	int64_t account, collection;
};

static void hub_cb(void *ctx, int64_t account_id, int64_t collection_id)
{
	struct hub_seen *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->calls++;
	s->account = account_id;
	s->collection = collection_id;
	pthread_mutex_unlock(&s->lock);
}

static void hub_seen_reset(struct hub_seen *s)
{
	pthread_mutex_lock(&s->lock);
	s->calls = 0;
	s->account = s->collection = -1;
	pthread_mutex_unlock(&s->lock);
}

static bool hub_seen_wait(struct hub_seen *s, int64_t account, int64_t collection,
			  const char *notify_payload, int timeout_ms)
{
	PGconn *c = admin_connect(test_conninfo);
	bool got = false;

	for (int waited = 0; waited < timeout_ms && !got; waited += 100) {
		if (notify_payload != NULL) {
			const char *params[] = { notify_payload };
			PGresult *r = PQexecParams(c, "SELECT pg_notify('bureau', $1)", 1,
						   NULL, params, NULL, NULL, 0);
			PQclear(r);
		}
		usleep(100 * 1000);
		pthread_mutex_lock(&s->lock);
		got = s->calls > 0 && s->account == account && s->collection == collection;
		pthread_mutex_unlock(&s->lock);
	}
	PQfinish(c);
	return got;
}

static void test_hub(void)
{
	struct hub_seen one = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct hub_seen all = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct bu_hub *hub = bu_hub_start(test_conninfo, NULL);
	uint64_t h1, h2;
	PGconn *c;
	PGresult *r;

	hub_seen_reset(&one);
	hub_seen_reset(&all);
	h1 = bu_hub_subscribe(hub, 42, hub_cb, &one);
	h2 = bu_hub_subscribe(hub, 0, hub_cb, &all);
	CHECK(h1 != 0 && h2 != 0 && h1 != h2);

	/* delivered (retry until the hub has connected and LISTENs) */
	CHECK(hub_seen_wait(&one, 42, 7, "42 7", 10000));
	CHECK(hub_seen_wait(&all, 42, 7, NULL, 1000));

	/* other accounts: only the wildcard subscriber */
	hub_seen_reset(&one);
	hub_seen_reset(&all);
	c = admin_connect(test_conninfo);
	admin_exec(c, "SELECT pg_notify('bureau', 'garbage')");
	admin_exec(c, "SELECT pg_notify('bureau', '43 1')");
	CHECK(hub_seen_wait(&all, 43, 1, NULL, 3000));
	pthread_mutex_lock(&one.lock);
	CHECK(one.calls == 0);
	pthread_mutex_unlock(&one.lock);

	/* the LISTEN connection is killed: the hub reconnects and wakes
	 * everybody with collection 0 */
	hub_seen_reset(&one);
	hub_seen_reset(&all);
	r = PQexec(c, "SELECT pid FROM pg_stat_activity WHERE application_name = "
		   "'bureaud-hub' AND datname = current_database()");
	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		CHECK(terminate_backend(PQgetvalue(r, 0, 0)));
	PQclear(r);
	CHECK(hub_seen_wait(&one, 42, 0, NULL, 10000));
	CHECK(hub_seen_wait(&all, 0, 0, NULL, 1000));
	/* and delivers again */
	hub_seen_reset(&one);
	CHECK(hub_seen_wait(&one, 42, 9, "42 9", 10000));

	/* unsubscribed: silence */
	bu_hub_unsubscribe(hub, h1);
	hub_seen_reset(&one);
	hub_seen_reset(&all);
	CHECK(hub_seen_wait(&all, 42, 10, "42 10", 5000));
	pthread_mutex_lock(&one.lock);
	CHECK(one.calls == 0);
	pthread_mutex_unlock(&one.lock);

	PQfinish(c);
	bu_hub_unsubscribe(hub, h2);
	bu_hub_unsubscribe(hub, 12345);   /* unknown: ignored */
	bu_hub_stop(&hub);
	CHECK(hub == NULL);

	/* a hub that cannot connect still stops promptly */
	int64_t t0 = bu_mono_ms();
	hub = bu_hub_start("host=/nonexistent-bureau-dir dbname=x user=x", NULL);
	usleep(200 * 1000);
	bu_hub_stop(&hub);
	CHECK(bu_mono_ms() - t0 < 3000);
}

/* ---- change generations --------------------------------------------------- */

/* bumped after COMMIT, never for a rolled-back change, at once outside a
 * transaction; a collection-less change moves every account */
static void test_changes(void)
{
	struct bu_db *db = bu_db_create(test_conninfo);
	uint64_t g7, g8;

	CHECK(bu_db_ensure(db) == 0);
	g7 = bu_changes_gen(7001);
	g8 = bu_changes_gen(7002);

	CHECK(bu_db_begin(db) == 0);
	bu_db_note_change(db, 7001, 5);
	CHECK(bu_changes_gen(7001) == g7);   /* not before the COMMIT */
	CHECK(bu_db_commit(db) == 0);
	CHECK(bu_changes_gen(7001) > g7);
	g7 = bu_changes_gen(7001);

	CHECK(bu_db_begin(db) == 0);
	bu_db_note_change(db, 7001, 5);
	bu_db_rollback(db);
	CHECK(bu_changes_gen(7001) == g7);   /* rolled back: nothing */
	CHECK(bu_db_begin(db) == 0);
	CHECK(bu_db_commit(db) == 0);
	CHECK(bu_changes_gen(7001) == g7);   /* and not at a later COMMIT */

	/* a failed COMMIT (aborted transaction) bumps nothing of its own */
	CHECK(bu_db_begin(db) == 0);
	bu_db_note_change(db, 7001, 5);
	bu_db_expect(db, BU_DB_ERR_OTHER);
	CHECK(bu_db_exec(db, "SELECT 1/0", 0, NULL) == -1);
	CHECK(bu_db_commit(db) == -1);
	CHECK(bu_changes_gen(7001) == g7);

	bu_db_note_change(db, 7001, 5);      /* outside a transaction */
	CHECK(bu_changes_gen(7001) == g7 + 1);

	g8 = bu_changes_gen(7002);
	bu_changes_bump(7001, 0);             /* principal-level change */
	CHECK(bu_changes_gen(7002) > g8);
	bu_db_destroy(&db);
}

/* ---- connection options ------------------------------------------------- */

/* the value libpq uses for key on c, or "" */
static void conn_option(PGconn *c, const char *key, char *out, size_t outsz)
{
	PQconninfoOption *opts = PQconninfo(c);

	snprintf(out, outsz, "%s", "");
	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
		if (strcmp(o->keyword, key) == 0 && o->val != NULL)
			snprintf(out, outsz, "%s", o->val);
	}
	PQconninfoFree(opts);
}

/* A server that vanishes without a word (half-open TCP) must not hold a
 * worker for a quarter of an hour: keepalives and tcp_user_timeout are on
 * by default, and the operator's conninfo can change them. */
static void test_conn_options(void)
{
	struct bu_db *db = bu_db_create(test_conninfo);
	char *custom = bu_asprintf("%s keepalives_idle='99' application_name='mine'",
				   test_conninfo);
	char v[64];

	CHECK(bu_db_ensure(db) == 0);
	conn_option(bu_db_pg(db), "keepalives", v, sizeof(v));
	CHECK(strcmp(v, "1") == 0);
	conn_option(bu_db_pg(db), "keepalives_idle", v, sizeof(v));
	CHECK(strcmp(v, "30") == 0);
	conn_option(bu_db_pg(db), "tcp_user_timeout", v, sizeof(v));
	CHECK(strcmp(v, "60000") == 0);
	conn_option(bu_db_pg(db), "application_name", v, sizeof(v));
	CHECK(strcmp(v, "bureaud") == 0);
	bu_db_destroy(&db);

	db = bu_db_create(custom);
	CHECK(bu_db_ensure(db) == 0);
	conn_option(bu_db_pg(db), "keepalives_idle", v, sizeof(v));
	CHECK(strcmp(v, "99") == 0);
	conn_option(bu_db_pg(db), "application_name", v, sizeof(v));
	CHECK(strcmp(v, "mine") == 0);
	bu_db_destroy(&db);
	free(custom);
}

/* A hub whose server accepts the TCP connection and then says nothing
 * (a PostgreSQL that hangs, a black-holing proxy) still stops promptly:
 * the connection attempt must not block the hub thread. */
static void test_hub_silent_server(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct bu_hub *hub;
	char *conninfo;
	int64_t t0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 8) < 0 || getsockname(lfd, (struct sockaddr *)&sin, &sl) < 0) {
		CHECK(!"listening socket");
		if (lfd >= 0)
			close(lfd);
		return;
	}
	/* the kernel completes the handshake; nobody ever answers */
	conninfo = bu_asprintf("host=127.0.0.1 port=%d dbname=x user=x connect_timeout=30",
			       ntohs(sin.sin_port));
	hub = bu_hub_start(conninfo, NULL);
	usleep(500 * 1000);
	t0 = bu_mono_ms();
	bu_hub_stop(&hub);
	CHECK(bu_mono_ms() - t0 < 2000);
	CHECK(hub == NULL);
	free(conninfo);
	close(lfd);
}

/* bureauctl shows the conninfo it could not reach, with every password
 * masked: in a URL's user info and query, and in key = value form with
 * spaces and quotes. Runs the built bureauctl (skipped if not built). */
static void test_bureauctl_redacts(void)
{
	static const char *const urls[] = {
		"postgresql://bob:hunter2@127.0.0.1:1/db?sslmode=disable&password=hunter3",
		"postgres://127.0.0.1:1/db?password=hunter4",
		"host=127.0.0.1 port=1 dbname=db password = 'hun\\'ter5 x' user=bob",
		"host=127.0.0.1 password=hunter6 port=1",
	};
	char exe[4096], conf[64], out[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash, *dir;

	if (n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return;
	*slash = '\0';
	dir = bu_asprintf("%s/../../server/bureauctl", exe);
	if (access(dir, X_OK) < 0) {
		fprintf(stderr, "note: %s not built, skipping the bureauctl check\n", dir);
		free(dir);
		return;
	}
	snprintf(conf, sizeof(conf), "/tmp/bureau-test-db-%ld.conf", (long)getpid());
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		FILE *f = fopen(conf, "w");
		FILE *p;
		char *cmd;
		size_t got;
		int status;

		CHECK(f != NULL);
		if (f == NULL)
			break;
		fprintf(f, "state_dir = /tmp\ndatabase.url = \"");
		for (const char *s = urls[i]; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				fputc('\\', f);
			fputc(*s, f);
		}
		fprintf(f, "\"\n");
		fclose(f);
		cmd = bu_asprintf("'%s' -c '%s' domain list 2>&1", dir, conf);
		p = popen(cmd, "r");   /* NOLINT(cert-env33-c): a test running our binary */
		free(cmd);
		CHECK(p != NULL);
		if (p == NULL)
			break;
		got = fread(out, 1, sizeof(out) - 1, p);
		out[got] = '\0';
		status = pclose(p);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
		CHECK(strstr(out, "cannot reach the database") != NULL);
		CHECK(strstr(out, "hunter") == NULL && strstr(out, "ter5") == NULL &&
		      strstr(out, "hun\\") == NULL);
		CHECK(strstr(out, "***") != NULL);
		if (strstr(out, "hunter") != NULL || strstr(out, "ter5") != NULL ||
		    strstr(out, "***") == NULL)
			fprintf(stderr, "bureauctl said: %s", out);
	}

	/* a password on stdin longer than bureauctl reads is refused, not cut
	 * (the account would get a password its owner never typed) */
	{
		FILE *f = fopen(conf, "w");
		char *cmd, *pw = malloc(3001);
		int status = -1;

		CHECK(f != NULL && pw != NULL);
		if (f != NULL && pw != NULL) {
			fprintf(f, "state_dir = /tmp\ndatabase.url = \"");
			for (const char *s = test_conninfo; *s != '\0'; s++) {
				if (*s == '"' || *s == '\\')
					fputc('\\', f);
				fputc(*s, f);
			}
			fprintf(f, "\"\n");
			fclose(f);
			f = NULL;
			memset(pw, 'a', 3000);
			pw[3000] = '\0';
			cmd = bu_asprintf("printf '%%s\\n' '%s' | '%s' -c '%s' user add "
					  "long@x.test --password-stdin 2>&1", pw, dir, conf);
			/* NOLINTNEXTLINE(cert-env33-c): a test running our binary */
			FILE *p = popen(cmd, "r");
			size_t got = p != NULL ? fread(out, 1, sizeof(out) - 1, p) : 0;

			out[got] = '\0';
			if (p != NULL)
				status = pclose(p);
			free(cmd);
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
			CHECK(strstr(out, "longer than") != NULL);
		}
		if (f != NULL)
			fclose(f);
		free(pw);
	}
	unlink(conf);
	free(dir);
}

/* ---- the hub feeding a running server ------------------------------------- */

/* a line protocol: "watch N" makes the conn watch account N; every
 * notification is written back as "notify A C" */
static atomic_int notify_calls;

static void *w_open(struct bu_conn *c)
{
	bu_conn_puts(c, "hi\r\n");
	return c;
}

static void w_input(void *sess)
{
	struct bu_conn *c = sess;
	struct bu_buf *in = bu_conn_in(c);
	uint8_t *nl;

	while ((nl = memchr(in->data, '\n', in->len)) != NULL) {
		char line[64];
		size_t n = (size_t)(nl - in->data);

		snprintf(line, sizeof(line), "%.*s", (int)(n < 63 ? n : 63), (char *)in->data);
		bu_buf_consume(in, n + 1);
		if (strncmp(line, "watch ", 6) == 0) {
			bu_conn_watch(c, strtoll(line + 6, NULL, 10));
			bu_conn_puts(c, "ok\r\n");
		}
	}
}

static void w_notify(void *sess, int64_t account, int64_t coll)
{
	atomic_fetch_add(&notify_calls, 1);
	bu_conn_printf(sess, "notify %lld %lld\r\n", (long long)account, (long long)coll);
}

static void w_close(void *sess)
{
	(void)sess;
}

static const struct bu_proto_ops w_ops = {
	.name = "imap", .open = w_open, .input = w_input, .notify = w_notify,
	.close = w_close,
};

/* one line from fd within timeout_ms, CRLF stripped; false on timeout/EOF */
static bool read_line(int fd, char *out, size_t outsz, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < outsz) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char ch;

		if (poll(&pfd, 1, timeout_ms) <= 0 || read(fd, &ch, 1) != 1)
			return false;
		if (ch == '\n')
			break;
		if (ch != '\r')
			out[n++] = ch;
	}
	out[n] = '\0';
	return true;
}

struct spammer {
	atomic_bool stop;
	int sent;
};

static void *spam_main(void *arg)
{
	struct spammer *sp = arg;
	PGconn *c = admin_connect(test_conninfo);

	while (!atomic_load(&sp->stop)) {
		PGresult *r = PQexec(c, "SELECT pg_notify('bureau', '77 1')");

		PQclear(r);
		sp->sent++;
	}
	PQfinish(c);
	return NULL;
}

/* NOTIFY -> hub thread -> bu_server_notify -> the I/O thread's mailbox ->
 * ops->notify, and shutdown in bureaud's order (server, hub, destroy)
 * while notifications keep arriving. Run under ThreadSanitizer too. */
static void test_hub_server(void)
{
	struct bu_config cfg;
	struct bu_server_params p;
	struct bu_server *srv;
	struct bu_hub *hub;
	struct sockaddr_in sin;
	struct spammer sp = { .stop = false };
	pthread_t spam;
	const char *err = NULL;
	char line[128];
	int fd, port;
	bool got = false;

	/* a free port */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	{
		socklen_t sl = sizeof(sin);

		if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
			CHECK(!"free port");
			return;
		}
	}
	port = ntohs(sin.sin_port);
	close(fd);

	bu_config_defaults(&cfg);
	for (int i = 0; i < BU_SVC_COUNT; i++)
		cfg.svc[i].port = 0;
	cfg.svc[BU_SVC_IMAP].port = port;
	cfg.io_threads = 2;
	cfg.db_pool_size = 2;
	memset(&p, 0, sizeof(p));
	p.cfg = &cfg;
	p.ops[BU_SVC_IMAP] = &w_ops;
	srv = bu_server_create(&p, &err);
	CHECK(srv != NULL);
	if (srv == NULL) {
		fprintf(stderr, "bu_server_create: %s\n", err);
		bu_config_free(&cfg);
		return;
	}
	CHECK(bu_server_start(srv, NULL, NULL, &err) == 0);
	hub = bu_hub_start(test_conninfo, srv);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(read_line(fd, line, sizeof(line), 5000) && strcmp(line, "hi") == 0);
	CHECK(write(fd, "watch 77\r\n", 10) == 10);
	CHECK(read_line(fd, line, sizeof(line), 5000) && strcmp(line, "ok") == 0);

	/* NOTIFY travels through PostgreSQL to the session (retry until the
	 * hub LISTENs) */
	{
		PGconn *c = admin_connect(test_conninfo);

		for (int i = 0; i < 100 && !got; i++) {
			PGresult *r = PQexec(c, "SELECT pg_notify('bureau', '77 5')");

			PQclear(r);
			got = read_line(fd, line, sizeof(line), 100) &&
				strcmp(line, "notify 77 5") == 0;
		}
		PQfinish(c);
	}
	CHECK(got);

	/* shut down while notifications pour in */
	CHECK(pthread_create(&spam, NULL, spam_main, &sp) == 0);
	usleep(300 * 1000);
	bu_server_shutdown(srv, 0);
	usleep(200 * 1000);      /* the hub keeps notifying a stopped server */
	bu_hub_stop(&hub);
	bu_server_destroy(&srv);
	atomic_store(&sp.stop, true);
	pthread_join(spam, NULL);
	CHECK(sp.sent > 0 && atomic_load(&notify_calls) > 1);
	/* the session was closed by the shutdown */
	while (read_line(fd, line, sizeof(line), 2000))
		;
	close(fd);
	bu_config_free(&cfg);
}

int main(void)
{
	const char *env = getenv("BUREAU_TEST_DB");
	PGconn *admin;

	if (env == NULL || env[0] == '\0') {
		fprintf(stderr, "BUREAU_TEST_DB not set: skipping\n");
		return 77;
	}
	bu_log_open(NULL, getenv("BUREAU_TEST_VERBOSE") != NULL ? BU_LOG_DEBUG : BU_LOG_FATAL);
	base_conninfo = bu_strdup(env);
	snprintf(dbname, sizeof(dbname), "bureau_test_db_%ld", (long)getpid());
	admin = admin_connect(base_conninfo);
	{
		char *sql = bu_asprintf("DROP DATABASE IF EXISTS %s", dbname);

		admin_exec(admin, sql);
		free(sql);
		sql = bu_asprintf("CREATE DATABASE %s", dbname);
		admin_exec(admin, sql);
		free(sql);
	}
	test_conninfo = conninfo_with_db(base_conninfo, dbname);

	test_query();
	test_reconnect();
	test_prepared();
	test_migrate();
	test_hub();
	test_changes();
	test_conn_options();
	test_hub_silent_server();
	test_hub_server();
	test_bureauctl_redacts();

	{
		char *sql = bu_asprintf("DROP DATABASE %s WITH (FORCE)", dbname);

		admin_exec(admin, sql);
		free(sql);
	}
	PQfinish(admin);
	free(test_conninfo);
	free(base_conninfo);
	printf("test_db: %d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}

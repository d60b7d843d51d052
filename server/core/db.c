/*
 * db.c - one libpq connection used by one thread at a time.
 *
 * A struct bu_db is created without connecting (bu_db_create never fails);
 * every call first makes sure the connection is up (bu_db_ensure), so a
 * PostgreSQL restart costs the statement in flight one BU_DB_ERR_CONN and
 * nothing more. Reconnect attempts after a failed one are rate limited so a
 * dead server does not turn every command into a connect storm.
 *
 * Transactions and reconnects: if the connection is lost while a transaction
 * is open, the statements that follow (until COMMIT or ROLLBACK) fail with
 * BU_DB_ERR_CONN instead of silently running outside any transaction on the
 * new connection, and the COMMIT fails too. Only ROLLBACK clears the state.
 *
 * Errors are classified by SQLSTATE (PG_DIAG_SQLSTATE) and logged as
 * "event=db.error sqlstate=... msg=..." with the server's primary message
 * sanitised; the SQL text itself is never logged (it may be long, and the
 * interesting part is which caller failed, which the log context says).
 *
 * Prepared statements: bu_db_query_bin prepares each distinct SQL text once
 * per connection (PQprepare as "bu_N", then PQexecPrepared), which saves
 * PostgreSQL the parse, analysis and planning of the same text on every
 * call. A text is prepared on its second use (a small table of hashes
 * remembers the texts seen once), so SQL built for one call only (a search)
 * costs no extra round trip and takes no cache slot. The cache is keyed by
 * content (hash, then strcmp with a private copy), holds at most
 * DB_STMT_MAX texts (new texts beyond that run unprepared), and is emptied
 * whenever the connection goes away: prepared statements live in the
 * session. Transaction control and multi-statement texts are never
 * prepared. If the server no longer knows a statement (26000, e.g. after a
 * DISCARD ALL) or refuses a changed result type after a schema change, the
 * entry is dropped and, outside a transaction, the call is retried once
 * unprepared (inside one, the error has already aborted the transaction).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "metrics.h"

/* after a failed connect attempt, fail fast for this long */
#define DB_RECONNECT_DELAY_MS 250
#define DB_ERRMSG_MAX 512
/* prepared statements per connection, and the hash table's buckets */
#define DB_STMT_MAX 512
#define DB_STMT_BUCKETS 256
/* direct-mapped table of the hashes of texts seen once */
#define DB_SEEN_SLOTS 1024

struct db_stmt {
	struct db_stmt *next;
	uint64_t hash;
	uint32_t id;            /* statement name "bu_<id>" */
	char *sql;              /* private copy */
};

#define DB_PEND_MAX 8

struct bu_db {
	char *conninfo;
	PGconn *conn;
	enum bu_db_err err;
	char errmsg[DB_ERRMSG_MAX];
	char sqlstate[6];
	/* bu_db_expect: suppress the log of the next call if it fails with it */
	bool expect_armed;
	enum bu_db_err expect;
	/* the connection died inside a transaction: see the file comment */
	bool tx_lost;
	bool ever_connected;
	int64_t last_fail_ms;
	/* prepared statements of the current connection */
	struct db_stmt *stmts[DB_STMT_BUCKETS];
	unsigned int stmt_count;
	uint32_t stmt_next_id;
	uint64_t seen[DB_SEEN_SLOTS];
	int own_slot;           /* in db_own_pids, -1 none */
	/* bu_db_note_change: applied at COMMIT */
	int64_t pend[DB_PEND_MAX][2];
	size_t n_pend;
	bool pend_overflow;
};

static atomic_int db_connections;
static pthread_once_t db_metrics_once = PTHREAD_ONCE_INIT;

static int64_t db_connections_gauge(void *ctx)
{
	(void)ctx;
	return atomic_load(&db_connections);
}

static void db_metrics_init(void)
{
	bu_metric_gauge_fn_register("bureau_db_connections", db_connections_gauge, NULL);
}

static const char *db_err_name(enum bu_db_err e)
{
	switch (e) {
	case BU_DB_OK: return "ok";
	case BU_DB_ERR_CONN: return "conn";
	case BU_DB_ERR_UNIQUE: return "unique";
	case BU_DB_ERR_FOREIGN: return "foreign";
	case BU_DB_ERR_SERIAL: return "serial";
	case BU_DB_ERR_OTHER: return "other";
	}
	return "other";
}

static void db_notice_processor(void *arg, const char *message)
{
	(void)arg;
	size_t n = strlen(message);

	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
		n--;
	bu_debug("event=db.notice msg=%s", bu_log_qn(message, n));
}

struct bu_db *bu_db_create(const char *conninfo)
{
	struct bu_db *db = bu_malloc(sizeof(*db));

	pthread_once(&db_metrics_once, db_metrics_init);
	db->conninfo = bu_strdup(conninfo != NULL ? conninfo : "");
	db->own_slot = -1;
	return db;
}

/* Forget the prepared statements (they die with the session). */
static void db_stmt_clear(struct bu_db *db)
{
	for (size_t i = 0; i < DB_STMT_BUCKETS; i++) {
		struct db_stmt *e = db->stmts[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e->sql);
			free(e);
		}
		db->stmts[i] = NULL;
	}
	db->stmt_count = 0;
}

/* backend PIDs of this process's connections (bu_db_own_backend) */
#define DB_OWN_MAX 512
static atomic_int db_own_pids[DB_OWN_MAX];

static void db_own_add(struct bu_db *db)
{
	int pid = PQbackendPID(db->conn);

	db->own_slot = -1;
	for (int i = 0; i < DB_OWN_MAX && pid > 0; i++) {
		int zero = 0;

		if (atomic_compare_exchange_strong(&db_own_pids[i], &zero, pid)) {
			db->own_slot = i;
			return;
		}
	}
}

bool bu_db_own_backend(int pid)
{
	for (int i = 0; i < DB_OWN_MAX && pid > 0; i++) {
		if (atomic_load(&db_own_pids[i]) == pid)
			return true;
	}
	return false;
}

static void db_disconnect(struct bu_db *db)
{
	db_stmt_clear(db);
	if (db->own_slot >= 0) {
		atomic_store(&db_own_pids[db->own_slot], 0);
		db->own_slot = -1;
	}
	if (db->conn != NULL) {
		PQfinish(db->conn);
		db->conn = NULL;
		atomic_fetch_sub(&db_connections, 1);
	}
}

void bu_db_destroy(struct bu_db **dbp)
{
	struct bu_db *db = *dbp;

	if (db == NULL)
		return;
	db_disconnect(db);
	bu_wipe(db->conninfo, strlen(db->conninfo));   /* may hold a password */
	free(db->conninfo);
	free(db);
	*dbp = NULL;
}

static void db_set_error(struct bu_db *db, enum bu_db_err err,
			 const char *sqlstate, const char *msg)
{
	size_t n;

	/* libpq's connection messages run over several lines; the first one
	 * says what happened, the rest are generic hints */
	if (msg == NULL)
		msg = "";
	if (strncmp(msg, "FATAL:  ", 8) == 0)
		msg += 8;
	n = strcspn(msg, "\r\n");
	while (n > 0 && msg[n - 1] == ' ')
		n--;
	db->err = err;
	bu_sanitize(db->errmsg, sizeof(db->errmsg), msg, n);
	if (sqlstate != NULL && strlen(sqlstate) == 5)
		memcpy(db->sqlstate, sqlstate, 6);
	else
		db->sqlstate[0] = '\0';
}

/* Log the error just recorded (unless bu_db_expect asked not to). */
static void db_log_error(struct bu_db *db)
{
	char series[80];
	bool quiet = db->expect_armed && db->expect == db->err;

	db->expect_armed = false;
	snprintf(series, sizeof(series), "bureau_db_errors_total{code=\"%s\"}",
		 db_err_name(db->err));
	bu_metric_add(series, 1);
	bu_log(quiet ? BU_LOG_DEBUG : BU_LOG_ERROR,
	       "event=db.error code=%s sqlstate=%s msg=%s", db_err_name(db->err),
	       db->sqlstate[0] != '\0' ? db->sqlstate : "-", bu_log_q(db->errmsg));
}

static enum bu_db_err db_classify(const char *sqlstate)
{
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return BU_DB_ERR_OTHER;
	if (strcmp(sqlstate, "23505") == 0)
		return BU_DB_ERR_UNIQUE;
	if (strcmp(sqlstate, "23503") == 0)
		return BU_DB_ERR_FOREIGN;
	if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
		return BU_DB_ERR_SERIAL;
	/* class 08 connection exception; 57P01 admin_shutdown, 57P02
	 * crash_shutdown, 57P03 cannot_connect_now; 53300 too_many_connections */
	if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
	    strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0 ||
	    strcmp(sqlstate, "53300") == 0)
		return BU_DB_ERR_CONN;
	return BU_DB_ERR_OTHER;
}

static int db_connect(struct bu_db *db)
{
	/* Later keywords override earlier ones, and the expanded conninfo
	 * ("dbname" with expand_dbname) overrides what comes before it: our
	 * defaults go first so that the operator's URL can change them.
	 * TCP keepalives (for an idle connection) and tcp_user_timeout (for
	 * a statement sent and never acknowledged) make a server that
	 * vanished, a crash or a network split leaving the connection
	 * half-open, an error within a minute instead of a worker waiting for
	 * an answer until TCP gives up a quarter of an hour later. Neither
	 * limits how long a statement may run. */
	const char *const keys[] = {
		"connect_timeout", "application_name", "client_encoding",
		"keepalives", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "tcp_user_timeout", "dbname", NULL
	};
	const char *const values[] = {
		"10", "bureaud", "UTF8", "1", "30", "10", "3", "60000",
		db->conninfo, NULL
	};
	int64_t now = bu_mono_ms();

	if (db->last_fail_ms != 0 && now - db->last_fail_ms < DB_RECONNECT_DELAY_MS) {
		db->err = BU_DB_ERR_CONN;   /* keep the message of the last try */
		return -1;
	}
	db_stmt_clear(db);
	db->conn = PQconnectdbParams(keys, values, 1);
	if (db->conn == NULL)
		bu_panic("PQconnectdbParams: out of memory");
	atomic_fetch_add(&db_connections, 1);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db_set_error(db, BU_DB_ERR_CONN, NULL, PQerrorMessage(db->conn));
		db_disconnect(db);
		db->last_fail_ms = now != 0 ? now : 1;
		db->expect_armed = false;
		bu_metric_add("bureau_db_errors_total{code=\"conn\"}", 1);
		bu_error("event=db.error code=conn sqlstate=- msg=%s",
			 bu_log_q(db->errmsg));
		return -1;
	}
	PQsetNoticeProcessor(db->conn, db_notice_processor, NULL);
	db_own_add(db);
	if (db->ever_connected) {
		bu_metric_add("bureau_db_reconnects_total", 1);
		bu_info("event=db.reconnect");
	}
	db->ever_connected = true;
	db->last_fail_ms = 0;
	return 0;
}

int bu_db_ensure(struct bu_db *db)
{
	if (db->conn != NULL) {
		if (PQstatus(db->conn) == CONNECTION_OK)
			return 0;
		/* A dead connection is replaced by a new one (PQreset would do
		 * the same, with the old settings). */
		db_disconnect(db);
	}
	return db_connect(db);
}

PGconn *bu_db_pg(struct bu_db *db)
{
	return db->conn;
}

static bool db_sql_is(const char *sql, const char *word)
{
	size_t n = strlen(word);

	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
		sql++;
	return strncasecmp(sql, word, n) == 0 &&
		(sql[n] == '\0' || sql[n] == ' ' || sql[n] == ';' ||
		 sql[n] == '\n' || sql[n] == '\t');
}

/* The transaction this conn was in is gone with the old connection. */
static PGresult *db_tx_lost_call(struct bu_db *db, const char *sql)
{
	if (db_sql_is(sql, "ROLLBACK") || db_sql_is(sql, "ABORT")) {
		db->tx_lost = false;
		db->err = BU_DB_OK;
		return NULL;
	}
	if (db_sql_is(sql, "COMMIT") || db_sql_is(sql, "END"))
		db->tx_lost = false;
	db_set_error(db, BU_DB_ERR_CONN, NULL,
		     "connection lost during the transaction");
	db_log_error(db);
	return NULL;
}

/* FNV-1a over the text */
static uint64_t db_sql_hash(const char *sql)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Texts that are never prepared: transaction control (cheap to run, and
 * the tx_lost logic looks at them) and, without parameters, anything that
 * may hold several statements. */
static bool db_sql_preparable(const char *sql, int nparams)
{
	static const char *const tx_words[] = {
		"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT",
		"SAVEPOINT", "RELEASE", "PREPARE", "DEALLOCATE", "DISCARD", NULL
	};

	if (nparams == 0 && strchr(sql, ';') != NULL)
		return false;
	for (size_t i = 0; tx_words[i] != NULL; i++) {
		if (db_sql_is(sql, tx_words[i]))
			return false;
	}
	return true;
}

static struct db_stmt **db_stmt_find(struct bu_db *db, const char *sql, uint64_t hash)
{
	struct db_stmt **ep = &db->stmts[hash % DB_STMT_BUCKETS];

	for (; *ep != NULL; ep = &(*ep)->next) {
		if ((*ep)->hash == hash && strcmp((*ep)->sql, sql) == 0)
			break;
	}
	return ep;
}

static void db_stmt_drop(struct bu_db *db, const char *sql, uint64_t hash)
{
	struct db_stmt **ep = db_stmt_find(db, sql, hash), *e = *ep;

	if (e == NULL)
		return;
	*ep = e->next;
	free(e->sql);
	free(e);
	db->stmt_count--;
}

/* Prepare sql (on its second use) and fill name; false: run it unprepared.
 * A failed PQprepare leaves its result in *res_r (the call's outcome). */
static bool db_stmt_get(struct bu_db *db, const char *sql, uint64_t hash, int nparams,
			char *name, size_t namesz, PGresult **res_r)
{
	struct db_stmt *e = *db_stmt_find(db, sql, hash);
	uint64_t *seen = &db->seen[hash % DB_SEEN_SLOTS];
	PGresult *res;

	*res_r = NULL;
	if (e == NULL) {
		if (db->stmt_count >= DB_STMT_MAX)
			return false;
		if (*seen != hash) {
			*seen = hash;
			return false;
		}
		e = bu_malloc(sizeof(*e));
		e->hash = hash;
		e->id = db->stmt_next_id++;
		snprintf(name, namesz, "bu_%u", (unsigned int)e->id);
		res = PQprepare(db->conn, name, sql, nparams, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			/* the error is the call's outcome (without a result,
			 * the unprepared run reports what went wrong) */
			free(e);
			*res_r = res;
			return res != NULL;
		}
		PQclear(res);
		e->sql = bu_strdup(sql);
		e->next = db->stmts[hash % DB_STMT_BUCKETS];
		db->stmts[hash % DB_STMT_BUCKETS] = e;
		db->stmt_count++;
		return true;
	}
	snprintf(name, namesz, "bu_%u", (unsigned int)e->id);
	return true;
}

/* The server refused a cached statement in a way that a fresh parse fixes. */
static bool db_stmt_stale(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (state == NULL)
		return false;
	if (strcmp(state, "26000") == 0)   /* invalid_sql_statement_name */
		return true;
	return strcmp(state, "0A000") == 0 && msg != NULL &&
		strncmp(msg, "cached plan must not change result type", 39) == 0;
}

PGresult *bu_db_query_bin(struct bu_db *db, const char *sql, int nparams,
			  const char *const *params, const int *lengths,
			  const int *formats)
{
	return bu_db_query_fmt(db, sql, nparams, params, lengths, formats, 0);
}

PGresult *bu_db_query_fmt(struct bu_db *db, const char *sql, int nparams,
			  const char *const *params, const int *lengths,
			  const int *formats, int result_format)
{
	PGresult *res = NULL;
	PGTransactionStatusType tx_before;
	ExecStatusType st;
	int64_t start;
	char name[24];
	uint64_t hash = 0;
	bool prepared = false;

	bu_assert(sql != NULL && nparams >= 0);
	if (db->tx_lost)
		return db_tx_lost_call(db, sql);
	if (bu_db_ensure(db) < 0) {
		db->expect_armed = false;
		return NULL;
	}
	tx_before = PQtransactionStatus(db->conn);
	start = bu_mono_us();
	if (db_sql_preparable(sql, nparams)) {
		hash = db_sql_hash(sql);
		prepared = db_stmt_get(db, sql, hash, nparams, name, sizeof(name), &res);
	}
	if (prepared && res == NULL) {
		res = PQexecPrepared(db->conn, name, nparams, params, lengths, formats,
				     result_format);
		if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR &&
		    db_stmt_stale(res)) {
			db_stmt_drop(db, sql, hash);
			bu_debug("event=db.stmt_stale name=%s", name);
			if (tx_before == PQTRANS_IDLE) {
				PQclear(res);
				res = NULL;
				prepared = false;
			}
		}
	}
	if (!prepared)
		res = PQexecParams(db->conn, sql, nparams, NULL, params, lengths,
				   formats, result_format);
	bu_metric_observe("bureau_db_query_seconds", NULL,
			  (double)(bu_mono_us() - start) / 1e6);
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		db->err = BU_DB_OK;
		db->expect_armed = false;
		return res;
	}

	const char *sqlstate = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	enum bu_db_err err = db_classify(sqlstate);

	if (msg == NULL)
		msg = PQerrorMessage(db->conn);
	/* An error libpq made itself (no SQLSTATE) is a connection failure:
	 * after an immediate shutdown of the server, the first statement on a
	 * pooled connection fails with "server closed the connection
	 * unexpectedly" while PQstatus may still say CONNECTION_OK. */
	if (PQstatus(db->conn) != CONNECTION_OK ||
	    (st == PGRES_FATAL_ERROR && (sqlstate == NULL || sqlstate[0] == '\0')))
		err = BU_DB_ERR_CONN;
	else if (st != PGRES_FATAL_ERROR && st != PGRES_NONFATAL_ERROR && sqlstate == NULL)
		msg = "unexpected result status (COPY is not supported here)";
	db_set_error(db, err, sqlstate, msg);
	PQclear(res);
	if (err == BU_DB_ERR_CONN) {
		db_disconnect(db);
		if (tx_before == PQTRANS_INTRANS || tx_before == PQTRANS_INERROR ||
		    tx_before == PQTRANS_ACTIVE) {
			/* unless the failing statement ended it anyway */
			if (!db_sql_is(sql, "ROLLBACK") && !db_sql_is(sql, "ABORT") &&
			    !db_sql_is(sql, "COMMIT") && !db_sql_is(sql, "END"))
				db->tx_lost = true;
		}
	}
	db_log_error(db);
	return NULL;
}

PGresult *bu_db_query(struct bu_db *db, const char *sql, int nparams,
		      const char *const *params)
{
	return bu_db_query_bin(db, sql, nparams, params, NULL, NULL);
}

int bu_db_exec(struct bu_db *db, const char *sql, int nparams,
	       const char *const *params)
{
	PGresult *res = bu_db_query(db, sql, nparams, params);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

static void db_pend_done(struct bu_db *db, bool ok);

int bu_db_begin(struct bu_db *db)
{
	db_pend_done(db, false);
	return bu_db_exec(db, "BEGIN", 0, NULL);
}

void bu_db_note_change(struct bu_db *db, int64_t account_id, int64_t collection_id)
{
	if (db->conn == NULL || PQtransactionStatus(db->conn) == PQTRANS_IDLE) {
		bu_changes_bump(account_id, collection_id);
		return;
	}
	for (size_t i = 0; i < db->n_pend; i++) {
		if (db->pend[i][0] == account_id && db->pend[i][1] == collection_id)
			return;
	}
	if (db->n_pend < DB_PEND_MAX) {
		db->pend[db->n_pend][0] = account_id;
		db->pend[db->n_pend][1] = collection_id;
		db->n_pend++;
	} else {
		db->pend_overflow = true;
	}
}

/* after the COMMIT (ok) or when the transaction is gone (!ok) */
static void db_pend_done(struct bu_db *db, bool ok)
{
	if (ok) {
		for (size_t i = 0; i < db->n_pend; i++)
			bu_changes_bump(db->pend[i][0], db->pend[i][1]);
		if (db->pend_overflow)
			bu_changes_bump(0, 0);
	}
	db->n_pend = 0;
	db->pend_overflow = false;
}

int bu_db_commit(struct bu_db *db)
{
	PGresult *res;

	if (db->tx_lost) {
		(void)db_tx_lost_call(db, "COMMIT");
		db_pend_done(db, false);
		return -1;
	}
	res = bu_db_query(db, "COMMIT", 0, NULL);
	if (res == NULL) {
		/* the outcome is unknown: re-check everything */
		db_pend_done(db, false);
		bu_changes_bump(0, 0);
		return -1;
	}
	/* COMMIT of a failed transaction "succeeds" as ROLLBACK */
	if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
		PQclear(res);
		db_pend_done(db, false);
		db_set_error(db, BU_DB_ERR_OTHER, NULL,
			     "COMMIT of an aborted transaction rolled back");
		db_log_error(db);
		return -1;
	}
	PQclear(res);
	db_pend_done(db, true);
	return 0;
}

void bu_db_rollback(struct bu_db *db)
{
	enum bu_db_err saved_err = db->err;
	char saved_msg[DB_ERRMSG_MAX];
	char saved_state[6];

	/* keep the error of the statement that made the caller roll back */
	memcpy(saved_msg, db->errmsg, sizeof(saved_msg));
	memcpy(saved_state, db->sqlstate, sizeof(saved_state));
	db_pend_done(db, false);
	if (db->tx_lost) {
		db->tx_lost = false;
	} else if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
		   PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
		PGresult *res = PQexec(db->conn, "ROLLBACK");

		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQstatus(db->conn) != CONNECTION_OK)
			db_disconnect(db);
		PQclear(res);
	}
	db->err = saved_err;
	memcpy(db->errmsg, saved_msg, sizeof(saved_msg));
	memcpy(db->sqlstate, saved_state, sizeof(saved_state));
	db->expect_armed = false;
}

enum bu_db_err bu_db_errcode(const struct bu_db *db)
{
	return db->err;
}

const char *bu_db_errmsg(const struct bu_db *db)
{
	return db->err == BU_DB_OK ? "" : db->errmsg;
}

void bu_db_expect(struct bu_db *db, enum bu_db_err code)
{
	db->expect_armed = true;
	db->expect = code;
}

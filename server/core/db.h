/*
 * db.h - PostgreSQL connections (libpq), the embedded cluster, migrations
 * and the notification hub.
 *
 * A struct bu_db is one libpq connection used by one thread at a time (a
 * worker owns one for its life). Queries are always parameterised. A lost
 * connection makes the failing call return -1 with BU_DB_ERR_CONN in
 * bu_db_errcode(); the next bu_db_* call reconnects first (so a PostgreSQL
 * restart costs the commands in flight a temporary error, nothing more).
 *
 * Only groupware/ writes SQL text; core code here runs the generic parts
 * (BEGIN/COMMIT, the migration runner, LISTEN).
 */
#ifndef BU_DB_H
#define BU_DB_H

#include <libpq-fe.h>
#include "util.h"

struct bu_db;
struct bu_server;

enum bu_db_err {
	BU_DB_OK = 0,
	BU_DB_ERR_CONN,        /* connection lost/refused: temporary */
	BU_DB_ERR_UNIQUE,      /* unique_violation 23505 */
	BU_DB_ERR_FOREIGN,     /* foreign_key_violation 23503 */
	BU_DB_ERR_SERIAL,      /* serialization_failure / deadlock: retry */
	BU_DB_ERR_OTHER,
};

/* conninfo: a libpq connection string or URL. Never fails: a connection
 * that cannot be made now is retried on use. */
struct bu_db *bu_db_create(const char *conninfo);
void bu_db_destroy(struct bu_db **db);
/* Connected (reconnects if needed)? 0 / -1 */
int bu_db_ensure(struct bu_db *db);
PGconn *bu_db_pg(struct bu_db *db);

/* Run a parameterised statement. params may contain NULL (SQL NULL).
 * Returns the PGresult (caller PQclear()s it) for PGRES_COMMAND_OK and
 * PGRES_TUPLES_OK, or NULL on error (logged at error level with the SQLSTATE,
 * error code available from bu_db_errcode). */
PGresult *bu_db_query(struct bu_db *db, const char *sql, int nparams,
		      const char *const *params);
/* Same, with explicit lengths and formats (binary bytea parameters). */
PGresult *bu_db_query_bin(struct bu_db *db, const char *sql, int nparams,
			  const char *const *params, const int *lengths,
			  const int *formats);
/* the same with results in text (0) or binary (1) format */
PGresult *bu_db_query_fmt(struct bu_db *db, const char *sql, int nparams,
			  const char *const *params, const int *lengths,
			  const int *formats, int result_format);
/* Convenience: run and discard the result; 0 ok, -1 error. */
int bu_db_exec(struct bu_db *db, const char *sql, int nparams,
	       const char *const *params);
int bu_db_begin(struct bu_db *db);      /* BEGIN */
int bu_db_commit(struct bu_db *db);     /* COMMIT; -1 if it failed */
void bu_db_rollback(struct bu_db *db);  /* ROLLBACK, ignoring errors */
enum bu_db_err bu_db_errcode(const struct bu_db *db);
const char *bu_db_errmsg(const struct bu_db *db);   /* for logs only */
/* Suppress the error log for the next failing call whose code is `code`
 * (e.g. an expected unique violation). */
void bu_db_expect(struct bu_db *db, enum bu_db_err code);

/* ---- embedded cluster -------------------------------------------- */
/*
 * Create (initdb, first time) and start a private PostgreSQL in dir, listening
 * on a Unix socket in dir only (listen_addresses=''). When running as root,
 * initdb and postgres run as run_as_user (created if missing? no: must
 * exist; "postgres" by default). Fills *conninfo_r (heap) for bu_db_create.
 * Returns 0 or -1 with *error_r telling the operator what to do.
 */
struct bu_pgembed;
struct bu_pgembed *bu_pgembed_start(const char *dir, const char *bindir,
				    const char *run_as_user, char **conninfo_r,
				    const char **error_r);
/* The conninfo of the embedded cluster in dir (heap): both bureaud and
 * bureauctl use it, e.g. "host=/abs/dir dbname=bureau user=bureau".
 * The cluster trusts local connections; its socket directory is mode 0700,
 * so only the service user (and root) can connect. */
char *bu_pgembed_conninfo(const char *dir);
/* Stop it (fast shutdown) and free. */
void bu_pgembed_stop(struct bu_pgembed **pg);

/* ---- migrations ---------------------------------------------------- */
/*
 * Apply schema/NNN_name.sql files from dir that are not yet recorded in
 * table schema_version, in order, each in one transaction, under a
 * transaction-level advisory lock so that concurrent starters migrate once.
 * Returns the number applied (>= 0) or -1 with *error_r.
 */
int bu_db_migrate(struct bu_db *db, const char *dir, const char **error_r);

/* ---- notification hub ---------------------------------------------- */
/*
 * One LISTEN connection per process on channel "bureau". Payload:
 * "ACCOUNT_ID COLLECTION_ID". Each notification goes to
 * bu_server_notify() and to every callback registered with
 * bu_hub_subscribe (HTTP long polls). Runs its own thread; reconnects with
 * backoff if PostgreSQL goes away (and then wakes every watcher once, with
 * collection 0, since notifications may have been missed).
 */
struct bu_hub;
typedef void bu_hub_fn(void *ctx, int64_t account_id, int64_t collection_id);
struct bu_hub *bu_hub_start(const char *conninfo, struct bu_server *srv);
/* returns a handle for unsubscribe; fn is called on the hub thread */
uint64_t bu_hub_subscribe(struct bu_hub *hub, int64_t account_id, bu_hub_fn *fn, void *ctx);
void bu_hub_unsubscribe(struct bu_hub *hub, uint64_t handle);
void bu_hub_stop(struct bu_hub **hub);

/* ---- change generations (changes.c) -------------------------------- */
/*
 * A counter per account (hashed), bumped after a committed write to it in
 * this process and for every notification the hub receives. A reader that
 * loaded the same value before its snapshot and again later knows that no
 * write to the account has committed in between (other processes: up to the
 * hub's delivery delay). collection_id 0 (principal changes, the hub's
 * broadcast after a reconnect) bumps every account.
 */
uint64_t bu_changes_gen(int64_t account_id);
void bu_changes_bump(int64_t account_id, int64_t collection_id);
/*
 * changelog_notify() tells the connection what it changed: applied with
 * bu_changes_bump after the COMMIT succeeds (at once outside a
 * transaction), dropped on ROLLBACK.
 */
void bu_db_note_change(struct bu_db *db, int64_t account_id, int64_t collection_id);
/* pid is the backend of one of this process's connections: the hub skips
 * the generation bump for such notifications (the commit made it). */
bool bu_db_own_backend(int pid);

#endif

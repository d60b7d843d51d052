/*
 * net.h - I/O threads, connections, TLS and the worker pool.
 *
 * Model (ARCHITECTURE.md, Concurrency):
 *  - N I/O threads, each one epoll loop. A connection belongs to one I/O
 *    thread for its whole life; every bu_conn_* function below except
 *    bu_conn_id() must be called on that thread (from a bu_proto_ops
 *    callback or a task's done callback).
 *  - Protocol code parses complete commands from bu_conn_in() on the I/O
 *    thread. Work that needs the database goes to the worker pool as a
 *    struct bu_task with bu_conn_submit(): task->run() runs on a worker with a
 *    borrowed database connection; task->done() then runs back on the
 *    connection's I/O thread. A connection with a task in flight is never
 *    freed: if it closes meanwhile, done() still runs (with the conn marked
 *    closing: bu_conn_closing() is true) and the conn is freed after it.
 *  - Output is buffered; bu_conn_out_pending() tells how much is queued so
 *    that streaming producers can stop at a high-water mark and continue in
 *    ops->drained().
 *  - A waiting session (IDLE) holds no thread and no DB connection: it only
 *    calls bu_conn_watch() and gets ops->notify() when its account changes.
 */
#ifndef BU_NET_H
#define BU_NET_H

#include "config.h"
#include "util.h"

/* Output thresholds: producers stop queueing at BU_CONN_OUT_HIWAT and
 * continue in ops->drained(), called when the queue falls below
 * BU_CONN_OUT_LOWAT after having been above it. */
#define BU_CONN_OUT_HIWAT (256 * 1024)
#define BU_CONN_OUT_LOWAT (64 * 1024)

/* Protocols enforce their own line limit (cfg->max_line): the input buffer
 * holds at most 1 MiB, and when input() never consumes, reading stops until
 * the read timeout closes the connection. */

struct bu_conn;
struct bu_db;
struct bu_server;

struct bu_proto_ops {
	const char *name;                       /* "imap" ... for logs/metrics */
	/* New connection (after the TLS handshake for implicit TLS). Return the
	 * protocol session; write the greeting here. */
	void *(*open)(struct bu_conn *c);
	/* More input arrived in bu_conn_in(c). Consume what you parsed with
	 * bu_buf_consume(). Not called while input is paused. */
	void (*input)(void *sess);
	/* Output queue fell below the low-water mark (optional). */
	void (*drained)(void *sess);
	/* An account this conn watches changed (optional). */
	void (*notify)(void *sess, int64_t account_id, int64_t collection_id);
	/* The timer set with bu_conn_set_timer fired (optional). */
	void (*timer)(void *sess);
	/* The read timeout expired (optional; default: close). */
	void (*timeout)(void *sess);
	/* The connection is going away: free the session. Called exactly once,
	 * never while a task is in flight. */
	void (*close)(void *sess);
};

/* ---- connection (I/O thread only) ---------------------------------- */

uint64_t bu_conn_id(const struct bu_conn *c);
struct bu_buf *bu_conn_in(struct bu_conn *c);     /* plaintext input */
void bu_conn_write(struct bu_conn *c, const void *p, size_t n);
void bu_conn_puts(struct bu_conn *c, const char *s);
void bu_conn_printf(struct bu_conn *c, const char *fmt, ...) BU_PRINTF(2, 3);
size_t bu_conn_out_pending(const struct bu_conn *c);
/* Close after the queued output is written. */
void bu_conn_close(struct bu_conn *c, const char *reason);
bool bu_conn_closing(const struct bu_conn *c);
/* Stop (true) or resume (false) calling ops->input. Resuming with buffered
 * input schedules an input() call. */
void bu_conn_pause_input(struct bu_conn *c, bool pause);
/* Start TLS now (server side). Consume the STARTTLS command line from
 * bu_conn_in() first: whatever is still buffered is discarded. Queued output is flushed first in plaintext
 * (write the protocol's "go ahead" before calling this); input already
 * buffered is discarded (RFC 3207 section 4.2 / RFC 2595 section 3.1).
 * Returns 0, or -1 when TLS is not configured or already active. */
int bu_conn_starttls(struct bu_conn *c);
bool bu_conn_is_tls(const struct bu_conn *c);
bool bu_conn_is_loopback(const struct bu_conn *c);
const char *bu_conn_peer(const struct bu_conn *c);     /* "127.0.0.1" */
int bu_conn_local_port(const struct bu_conn *c);
enum bu_service_id bu_conn_service(const struct bu_conn *c);
struct bu_server *bu_conn_server(const struct bu_conn *c);
/* Read timeout in seconds (reset by every input), 0 = none. */
void bu_conn_set_timeout(struct bu_conn *c, int seconds);
/* One-shot timer in milliseconds, 0 cancels; fires ops->timer. */
void bu_conn_set_timer(struct bu_conn *c, int64_t ms);
/* Receive ops->notify for changes to account_id (0 = stop watching).
 * One account per conn. */
void bu_conn_watch(struct bu_conn *c, int64_t account_id);
/* (Consume the COMPRESS command line first: bytes still buffered are taken
 * as compressed, RFC 4978 section 3.) Install a zlib deflate layer (IMAP COMPRESS, RFC 4978) after the queued
 * output: 0 ok, -1 already active. */
int bu_conn_compress(struct bu_conn *c);
/* Per-connection log context ("proto=imap conn=12 ip=..."); call again
 * after login to add user=. */
void bu_conn_set_log_user(struct bu_conn *c, const char *user);

/* ---- tasks on the worker pool ------------------------------------- */

struct bu_task {
	/* worker thread: do the database work; db is borrowed for this call.
	 * Must not touch the conn. */
	void (*run)(struct bu_task *t, struct bu_db *db);
	/* I/O thread of the conn: deliver the result (write the reply), then
	 * free the task. */
	void (*done)(struct bu_task *t, struct bu_conn *c);
	/* filled in by bu_conn_submit */
	struct bu_conn *conn;
	struct bu_task *next;
	int64_t submitted_us;
};

/* Queue t for a worker. At most one task per conn is in flight: the caller
 * pauses input meanwhile (bu_conn_submit does it and resumes after done()). */
void bu_conn_submit(struct bu_conn *c, struct bu_task *t);

/* Run a task with no connection (HTTP handlers, bureauctl-style admin
 * calls inside the daemon): blocks the calling thread (never an I/O
 * thread) until a worker has run fn(arg, db). Returns fn's result. */
int bu_worker_call(struct bu_server *srv, int (*fn)(void *arg, struct bu_db *db), void *arg);

/* ---- server ------------------------------------------------------- */

struct bu_server_params {
	const struct bu_config *cfg;
	/* protocol ops per service id; NULL = service not offered */
	const struct bu_proto_ops *ops[BU_SVC_COUNT];
};

/* Bind every configured listener (as root if needed); returns NULL and
 * *error_r on failure ("imap: bind 127.0.0.1:143: Address in use"). */
struct bu_server *bu_server_create(const struct bu_server_params *p, const char **error_r);
/* Load or reload certificate and key (SIGHUP). 0 / -1 with *error_r. */
int bu_server_tls_load(struct bu_server *s, const char **error_r);
/* Start I/O threads and workers (after privilege drop). db_connect makes a
 * fresh connection for each worker. */
int bu_server_start(struct bu_server *s, struct bu_db *(*db_connect)(void *arg),
		    void *db_arg, const char **error_r);
/* Called by the hub (any thread): wake the conns watching account_id.
 * account_id 0 means "everyone": the hub lost its LISTEN connection and may
 * have missed changes, so every watching conn gets ops->notify(sess, its
 * own account, 0). */
void bu_server_notify(struct bu_server *s, int64_t account_id, int64_t collection_id);
/* Stop accepting, let sessions finish for up to grace_s seconds, then close
 * them and join all threads. */
void bu_server_shutdown(struct bu_server *s, int grace_s);
/* Stop the hub (bu_hub_stop) before destroying: bu_server_notify after
 * destroy is a use-after-free (after shutdown it is a safe no-op). */
void bu_server_destroy(struct bu_server **s);
const struct bu_config *bu_server_config(const struct bu_server *s);
/* for /metrics: sessions currently open per service */
int bu_server_sessions(const struct bu_server *s, enum bu_service_id svc);

#endif

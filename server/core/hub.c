/*
 * hub.c - the notification hub: one LISTEN connection per process.
 *
 * Writers send NOTIFY bureau, 'ACCOUNT COLLECTION' after their commit
 * (ARCHITECTURE.md, "The one idea"). The hub thread owns a dedicated PGconn,
 * LISTENs on channel "bureau" and poll()s its socket (1 s timeout, so that a
 * stop request or a dead connection is noticed promptly). Each notification
 * goes to bu_server_notify() (sessions on the I/O threads) and to every
 * callback subscribed for that account (HTTP long polls).
 *
 * When the connection drops, the hub reconnects with backoff (0.5 s doubling
 * to 5 s). Notifications sent meanwhile are lost, so after every reconnect
 * it wakes everybody once: every subscriber gets (its account, 0) and the
 * server gets bu_server_notify(srv, 0, 0), "everyone re-check".
 *
 * Nothing on the hub thread blocks on the network for long, so that
 * bu_hub_stop() returns within about a second whatever PostgreSQL does: the
 * connection is made with PQconnectStartParams/PQconnectPoll, polled
 * together with the stop eventfd (with our own 10 s limit, as libpq ignores
 * connect_timeout there), and the idle-time liveness check is an
 * asynchronous "SELECT 1" that must be answered within 10 s. TCP keepalives
 * are on as well (the URL may override them).
 *
 * Subscriptions with account 0 receive every notification (and account 0
 * with collection 0 after a reconnect).
 *
 * Callbacks run on the hub thread with the subscription lock held, which is
 * what makes bu_hub_unsubscribe() safe: once it returns (on another thread),
 * the callback is not running and will not run again, so ctx may be freed.
 * A callback may itself call bu_hub_subscribe/unsubscribe (the lock is
 * recursive); it must not block.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "net.h"

#define HUB_CHANNEL "bureau"
#define HUB_POLL_MS 1000
#define HUB_BACKOFF_MIN_MS 500
#define HUB_BACKOFF_MAX_MS 5000
/* with no traffic, check the connection with a query this often, and give
 * up on it when the answer takes longer than HUB_PING_TIMEOUT_MS */
#define HUB_PING_MS 30000
#define HUB_PING_TIMEOUT_MS 10000
#define HUB_CONNECT_TIMEOUT_MS 10000

struct hub_sub {
	uint64_t handle;      /* 0 = removed during dispatch */
	int64_t account_id;   /* 0 = every account */
	bu_hub_fn *fn;
	void *ctx;
};

struct bu_hub {
	char *conninfo;
	struct bu_server *srv;
	pthread_t thread;
	int wake_fd;          /* eventfd: stop request */
	atomic_bool stopping;

	pthread_mutex_t lock; /* recursive; guards everything below */
	struct hub_sub *subs;
	size_t nsubs, subs_cap;
	uint64_t next_handle;
	bool dispatching;
	bool dirty;           /* removed entries to compact after dispatch */
};

uint64_t bu_hub_subscribe(struct bu_hub *hub, int64_t account_id, bu_hub_fn *fn, void *ctx)
{
	uint64_t handle;

	bu_assert(fn != NULL && account_id >= 0);
	pthread_mutex_lock(&hub->lock);
	if (hub->nsubs == hub->subs_cap) {
		hub->subs_cap = hub->subs_cap == 0 ? 16 : hub->subs_cap * 2;
		hub->subs = bu_realloc(hub->subs, bu_size_mul(hub->subs_cap, sizeof(*hub->subs)));
	}
	handle = ++hub->next_handle;
	hub->subs[hub->nsubs++] = (struct hub_sub){
		.handle = handle, .account_id = account_id, .fn = fn, .ctx = ctx,
	};
	pthread_mutex_unlock(&hub->lock);
	return handle;
}

void bu_hub_unsubscribe(struct bu_hub *hub, uint64_t handle)
{
	if (handle == 0)
		return;
	pthread_mutex_lock(&hub->lock);
	for (size_t i = 0; i < hub->nsubs; i++) {
		if (hub->subs[i].handle != handle)
			continue;
		if (hub->dispatching) {
			hub->subs[i].handle = 0;
			hub->dirty = true;
		} else {
			hub->subs[i] = hub->subs[--hub->nsubs];
		}
		break;
	}
	pthread_mutex_unlock(&hub->lock);
}

static void hub_compact(struct bu_hub *hub)
{
	size_t j = 0;

	for (size_t i = 0; i < hub->nsubs; i++) {
		if (hub->subs[i].handle != 0)
			hub->subs[j++] = hub->subs[i];
	}
	hub->nsubs = j;
	hub->dirty = false;
}

/* account_id 0 = broadcast after a reconnect */
static void hub_dispatch(struct bu_hub *hub, int64_t account_id, int64_t collection_id,
			 int be_pid)
{
	/* before waking anyone: a woken session must see the new generation
	 * (our own connections' writes moved it at their commit already) */
	if (!bu_db_own_backend(be_pid))
		bu_changes_bump(account_id, collection_id);
	if (hub->srv != NULL)
		bu_server_notify(hub->srv, account_id, collection_id);

	pthread_mutex_lock(&hub->lock);
	hub->dispatching = true;
	/* entries added by a callback are appended and not called this round */
	size_t n = hub->nsubs;
	for (size_t i = 0; i < n; i++) {
		struct hub_sub s = hub->subs[i];

		if (s.handle == 0)
			continue;
		if (account_id == 0)
			s.fn(s.ctx, s.account_id, 0);
		else if (s.account_id == 0 || s.account_id == account_id)
			s.fn(s.ctx, account_id, collection_id);
	}
	hub->dispatching = false;
	if (hub->dirty)
		hub_compact(hub);
	pthread_mutex_unlock(&hub->lock);
}

/* "ACCOUNT COLLECTION" (or just "ACCOUNT"): 0 ok, -1 malformed */
static int hub_parse_payload(const char *p, int64_t *account_r, int64_t *collection_r)
{
	size_t n = strspn(p, "0123456789");
	uint64_t a, c = 0;

	if (n == 0 || bu_parse_u64(p, n, INT64_MAX, &a) < 0 || a == 0)
		return -1;
	p += n;
	if (*p == ' ') {
		p++;
		n = strspn(p, "0123456789");
		if (n == 0 || bu_parse_u64(p, n, INT64_MAX, &c) < 0)
			return -1;
		p += n;
	}
	if (*p != '\0')
		return -1;
	*account_r = (int64_t)a;
	*collection_r = (int64_t)c;
	return 0;
}

static void hub_notice_processor(void *arg, const char *message)
{
	(void)arg;
	bu_debug("event=hub.notice msg=%s", bu_log_qn(message, strcspn(message, "\n")));
}

static void hub_log_conn_error(const char *event, PGconn *conn)
{
	const char *msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";

	bu_error("event=%s msg=%s", event, bu_log_qn(msg, strcspn(msg, "\n")));
}

/* Connect and LISTEN; NULL when it failed (logged) or a stop was asked. */
static PGconn *hub_connect(struct bu_hub *hub)
{
	/* our defaults first: the operator's conninfo (expanded from
	 * "dbname") overrides them */
	const char *const keys[] = {
		"application_name", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout",
		"dbname", NULL
	};
	const char *const values[] = {
		"bureaud-hub", "1", "30", "10", "3", "60000", hub->conninfo, NULL
	};
	PGconn *conn = PQconnectStartParams(keys, values, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	int64_t deadline = bu_mono_ms() + HUB_CONNECT_TIMEOUT_MS;
	PGresult *res;

	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD) {
		hub_log_conn_error("hub.connect_failed", conn);
		PQfinish(conn);
		return NULL;
	}
	/* libpq: start as if PQconnectPoll had said "writing" */
	while (st != PGRES_POLLING_OK) {
		struct pollfd pfd[2] = {
			{ .fd = PQsocket(conn),
			  .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT },
			{ .fd = hub->wake_fd, .events = POLLIN },
		};
		int64_t left = deadline - bu_mono_ms();
		int r;

		if (st == PGRES_POLLING_FAILED) {
			hub_log_conn_error("hub.connect_failed", conn);
			PQfinish(conn);
			return NULL;
		}
		if (left <= 0) {
			bu_error("event=hub.connect_failed msg=\"no answer within %d s\"",
				 HUB_CONNECT_TIMEOUT_MS / 1000);
			PQfinish(conn);
			return NULL;
		}
		if (pfd[0].fd < 0) {
			/* no socket to wait on: let libpq say what now */
			st = PQconnectPoll(conn);
			continue;
		}
		r = poll(pfd, 2, (int)(left < HUB_POLL_MS ? left : HUB_POLL_MS));
		if (atomic_load(&hub->stopping)) {
			PQfinish(conn);
			return NULL;
		}
		if (r < 0 && errno != EINTR) {
			bu_log_errno("event=hub.poll_failed");
			PQfinish(conn);
			return NULL;
		}
		if (r > 0 && pfd[0].revents != 0)
			st = PQconnectPoll(conn);
	}
	PQsetNoticeProcessor(conn, hub_notice_processor, NULL);
	/* the server has just answered: this round trip is quick */
	res = PQexec(conn, "LISTEN " HUB_CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *msg = PQresultErrorMessage(res);

		bu_error("event=hub.listen_failed msg=%s",
			 bu_log_qn(msg, strcspn(msg, "\n")));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	/* from here on only PQsendQuery: never wait for a write */
	if (PQsetnonblocking(conn, 1) != 0) {
		hub_log_conn_error("hub.connect_failed", conn);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* sleep ms unless stopped; true if stopping */
static bool hub_sleep(struct bu_hub *hub, int ms)
{
	struct pollfd pfd = { .fd = hub->wake_fd, .events = POLLIN };

	if (atomic_load(&hub->stopping))
		return true;
	(void)poll(&pfd, 1, ms);
	return atomic_load(&hub->stopping);
}

/* Read what arrived: the answer to a liveness check in flight (clears
 * *ping_out) and notifications. -1 if the connection is gone. */
static int hub_read(struct bu_hub *hub, PGconn *conn, bool *ping_out)
{
	PGnotify *n;

	if (PQconsumeInput(conn) == 0)
		return -1;
	while (*ping_out && !PQisBusy(conn)) {
		PGresult *res = PQgetResult(conn);
		bool ok;

		if (res == NULL) {
			*ping_out = false;
			break;
		}
		ok = PQresultStatus(res) == PGRES_TUPLES_OK;
		PQclear(res);
		if (!ok)
			return -1;
	}
	while ((n = PQnotifies(conn)) != NULL) {
		int64_t a, c;

		if (hub_parse_payload(n->extra, &a, &c) == 0) {
			bu_metric_add("bureau_hub_notifications_total", 1);
			hub_dispatch(hub, a, c, n->be_pid);
		} else {
			bu_warn("event=hub.bad_payload payload=%s", bu_log_q(n->extra));
		}
		PQfreemem(n);
	}
	return PQstatus(conn) == CONNECTION_OK ? 0 : -1;
}

static void *hub_thread(void *arg)
{
	struct bu_hub *hub = arg;
	int backoff = HUB_BACKOFF_MIN_MS;
	bool first = true;

	bu_log_ctx_set("component=hub");
	while (!atomic_load(&hub->stopping)) {
		PGconn *conn = hub_connect(hub);

		if (conn == NULL) {
			first = false;   /* whoever waits meanwhile misses changes */
			if (hub_sleep(hub, backoff))
				break;
			backoff = backoff * 2 > HUB_BACKOFF_MAX_MS ? HUB_BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		backoff = HUB_BACKOFF_MIN_MS;
		if (first) {
			bu_info("event=hub.listening channel=" HUB_CHANNEL);
		} else {
			bu_info("event=hub.reconnected channel=" HUB_CHANNEL);
			bu_metric_add("bureau_hub_reconnects_total", 1);
			hub_dispatch(hub, 0, 0, 0);
		}
		first = false;

		int64_t last_traffic = bu_mono_ms(), ping_sent = 0;
		bool ping_out = false;
		while (!atomic_load(&hub->stopping)) {
			/* an unsent part of the check waits for POLLOUT */
			int flush = ping_out ? PQflush(conn) : 0;
			struct pollfd pfd[2] = {
				{ .fd = PQsocket(conn),
				  .events = POLLIN | (flush > 0 ? POLLOUT : 0) },
				{ .fd = hub->wake_fd, .events = POLLIN },
			};
			int r;

			if (flush < 0)
				break;
			r = poll(pfd, 2, HUB_POLL_MS);
			if (r < 0 && errno != EINTR) {
				bu_log_errno("event=hub.poll_failed");
				break;
			}
			if (atomic_load(&hub->stopping))
				break;
			if (r > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
				if (hub_read(hub, conn, &ping_out) < 0)
					break;
				last_traffic = bu_mono_ms();
			} else if (ping_out) {
				if (bu_mono_ms() - ping_sent >= HUB_PING_TIMEOUT_MS) {
					bu_warn("event=hub.ping_timeout ms=%d",
						HUB_PING_TIMEOUT_MS);
					break;
				}
			} else if (bu_mono_ms() - last_traffic >= HUB_PING_MS) {
				/* a half-open TCP connection never becomes
				 * readable: ask something, without waiting */
				if (PQsendQuery(conn, "SELECT 1") != 1)
					break;
				ping_out = true;
				ping_sent = bu_mono_ms();
			}
		}
		if (!atomic_load(&hub->stopping)) {
			const char *msg = PQerrorMessage(conn);

			bu_warn("event=hub.disconnected msg=%s",
				bu_log_qn(msg, strcspn(msg, "\n")));
		}
		PQfinish(conn);
		if (!atomic_load(&hub->stopping) && hub_sleep(hub, backoff))
			break;
		backoff = backoff * 2 > HUB_BACKOFF_MAX_MS ? HUB_BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

struct bu_hub *bu_hub_start(const char *conninfo, struct bu_server *srv)
{
	struct bu_hub *hub = bu_malloc(sizeof(*hub));
	pthread_mutexattr_t attr;
	sigset_t all, old;
	int err;

	hub->conninfo = bu_strdup(conninfo);
	hub->srv = srv;
	atomic_init(&hub->stopping, false);
	hub->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (hub->wake_fd < 0)
		bu_panic("eventfd: %s", strerror(errno));
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&hub->lock, &attr);
	pthread_mutexattr_destroy(&attr);

	/* signals are the main thread's business */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&hub->thread, NULL, hub_thread, hub);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0)
		bu_panic("pthread_create: %s", strerror(err));
	return hub;
}

void bu_hub_stop(struct bu_hub **hubp)
{
	struct bu_hub *hub = *hubp;
	uint64_t one = 1;

	if (hub == NULL)
		return;
	atomic_store(&hub->stopping, true);
	if (write(hub->wake_fd, &one, sizeof(one)) < 0)
		bu_log_errno("event=hub.wake_failed");
	pthread_join(hub->thread, NULL);
	close(hub->wake_fd);
	pthread_mutex_destroy(&hub->lock);
	bu_wipe(hub->conninfo, strlen(hub->conninfo));
	free(hub->conninfo);
	free(hub->subs);
	free(hub);
	*hubp = NULL;
}

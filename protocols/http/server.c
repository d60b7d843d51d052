/*
 * server.c - HTTP over libmicrohttpd: listeners, the routing table, request
 * bodies, responses, long-poll suspension and the request log.
 *
 * Each port (http, https) is one MHD daemon in epoll mode with a small
 * thread pool, serving a socket we bound ourselves before the privilege drop
 * (MHD_OPTION_LISTEN_SOCKET). HTTPS uses the same certificate and key as the
 * mail ports, handed over as PEM text (MHD_OPTION_HTTPS_MEM_CERT/KEY; this
 * needs a libmicrohttpd built with GnuTLS, as Debian's is).
 *
 * Built-in routes: GET /metrics (Prometheus text) and GET /health (200 "ok"
 * when a worker can run SELECT 1, else 503).
 *
 * One log line per request: event=http.request method path status ms ip.
 *
 * Left out for now: authentication (arrives with DAV/ActiveSync), HTTP/2,
 * request pipelining beyond what MHD does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "protocols/http/http.h"
#include "server/core/db.h"
#include "server/core/log.h"
#include "server/core/metrics.h"
#include "server/core/net.h"

#define HTTP_THREADS 4
#define HTTP_CONN_TIMEOUT_S 120
#define HTTP_CONN_LIMIT 4096
#define HTTP_CONN_MEMORY (128 * 1024)
#define HTTP_LISTEN_BACKLOG 128
#define HTTP_MAX_HEADERS 32

static void http_handle_metrics(struct http_req *req);
static void http_handle_health(struct http_req *req);

/*
 * The routing table: first match wins, so list longer prefixes first.
 * Later protocols add their rows here (DAV: "/dav/", "/.well-known/caldav";
 * ActiveSync: "/Microsoft-Server-ActiveSync"; Autodiscover ...).
 */
static const struct http_route http_routes[] = {
	{ "GET", "/metrics", http_handle_metrics, 0 },
	{ "GET", "/health", http_handle_health, 0 },
};

struct http_daemon {
	struct MHD_Daemon *mhd;
	bool tls;
	struct http_server *h;
};

struct http_server {
	const struct bu_config *cfg;
	struct bu_server *srv;
	struct bu_hub *hub;
	int http_fd;                  /* ours until handed to MHD */
	int https_fd;
	struct http_daemon plain;
	struct http_daemon secure;
	char *cert_pem, *key_pem;

	pthread_mutex_t lock;         /* guards suspended, stopping */
	struct http_req *suspended;   /* list of suspended requests */
	int forced_pending;           /* answered by http_answer_suspended,
				       * not yet completed */
	bool stopping;
	/* 1 for the server itself + 1 per suspender still holding a request:
	 * a long-poll owner may answer after http_server_stop returned */
	atomic_int refs;
};

struct http_hdr {
	char *name, *value;
};

struct http_req {
	struct http_server *h;
	struct MHD_Connection *mc;
	bool tls;
	struct bu_arena *arena;
	char *method;
	char *path;
	char peer[INET6_ADDRSTRLEN];
	const struct http_route *route;
	int64_t start_us;

	struct bu_buf body;
	bool body_too_large;
	bool handled;                 /* handler has been called */

	/* response: built under lock (another thread may respond) */
	pthread_mutex_t lock;
	struct http_hdr hdrs[HTTP_MAX_HEADERS];
	size_t nhdrs;
	struct MHD_Response *resp;
	int status;
	bool responded;
	bool want_suspend;            /* handler asked for it */
	bool suspended;               /* MHD connection is suspended */
	bool owner_ref;               /* the suspender holds a reference */
	bool forced;                  /* answered by the server (stop/reload) */
	bool forced_counted;          /* in h->forced_pending */
	bool finished;                /* MHD completed the request */
	int refs;                     /* MHD's + the suspender's */
	struct http_req *next_suspended, *prev_suspended;
};

/* ---- /metrics ------------------------------------------------------------ */

/* Sessions per service are net.c's gauges (bureau_sessions); the pool size
 * is known only here and in bureaud. */
static void http_metrics_register(struct http_server *h)
{
	bu_metric_set("bureau_db_pool_size", h->cfg->db_pool_size);
}

/* ---- request accessors --------------------------------------------------- */

const char *http_req_method(const struct http_req *req) { return req->method; }
const char *http_req_path(const struct http_req *req) { return req->path; }
const char *http_req_peer(const struct http_req *req) { return req->peer; }
bool http_req_is_tls(const struct http_req *req) { return req->tls; }
struct bu_server *http_req_server(const struct http_req *req) { return req->h->srv; }
struct bu_hub *http_req_hub(const struct http_req *req) { return req->h->hub; }
struct bu_arena *http_req_arena(struct http_req *req) { return req->arena; }

const char *http_req_header(struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->mc, MHD_HEADER_KIND, name);
}

const char *http_req_arg(struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->mc, MHD_GET_ARGUMENT_KIND, name);
}

const uint8_t *http_req_body(const struct http_req *req, size_t *len_r)
{
	*len_r = req->body.len;
	return req->body.len > 0 ? req->body.data : (const uint8_t *)"";
}

/* ---- responses ------------------------------------------------------------ */

void http_resp_header(struct http_req *req, const char *name, const char *value)
{
	pthread_mutex_lock(&req->lock);
	bu_assert(!req->responded);
	bu_assert(req->nhdrs < HTTP_MAX_HEADERS);
	req->hdrs[req->nhdrs].name = bu_strdup(name);
	req->hdrs[req->nhdrs].value = bu_strdup(value);
	req->nhdrs++;
	pthread_mutex_unlock(&req->lock);
}

static void http_server_unlink_suspended(struct http_server *h, struct http_req *req)
{
	if (req->prev_suspended != NULL)
		req->prev_suspended->next_suspended = req->next_suspended;
	else if (h->suspended == req)
		h->suspended = req->next_suspended;
	if (req->next_suspended != NULL)
		req->next_suspended->prev_suspended = req->prev_suspended;
	req->next_suspended = req->prev_suspended = NULL;
}

static void http_req_free(struct http_req *req);

static void http_server_unref(struct http_server *h)
{
	if (atomic_fetch_sub(&h->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&h->lock);
	if (h->key_pem != NULL)
		bu_wipe(h->key_pem, strlen(h->key_pem));
	free(h->cert_pem);
	free(h->key_pem);
	free(h);
}

static void http_req_release(struct http_req *req)
{
	int refs;

	pthread_mutex_lock(&req->lock);
	refs = --req->refs;
	pthread_mutex_unlock(&req->lock);
	if (refs == 0)
		http_req_free(req);
}

static struct MHD_Response *http_make_response(const char *content_type,
					       const void *body, size_t len)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(len, (void *)(len > 0 ? body : ""),
					       MHD_RESPMEM_MUST_COPY);
	bu_assert(resp != NULL);
	if (content_type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	return resp;
}

/* with h->lock and req->lock held */
static void http_set_response(struct http_server *h, struct http_req *req, int status,
			      struct MHD_Response *resp)
{
	for (size_t i = 0; i < req->nhdrs; i++)
		MHD_add_response_header(resp, req->hdrs[i].name, req->hdrs[i].value);
	req->resp = resp;
	req->status = status;
	req->responded = true;
	if (req->suspended) {
		/* a long poll answered from another thread: the access
		 * handler runs again and queues the response */
		req->suspended = false;
		http_server_unlink_suspended(h, req);
		MHD_resume_connection(req->mc);
	}
}

void http_respond(struct http_req *req, int status, const char *content_type,
		  const void *body, size_t len)
{
	struct http_server *h = req->h;
	struct MHD_Response *resp = http_make_response(content_type, body, len);
	bool release = false;

	/* lock order: server, then request */
	pthread_mutex_lock(&h->lock);
	pthread_mutex_lock(&req->lock);
	if (req->owner_ref) {
		req->owner_ref = false;
		release = true;
	}
	if (req->forced || req->finished) {
		/* the server answered it already (stopping), or it is gone */
		MHD_destroy_response(resp);
	} else {
		bu_assert(!req->responded);
		http_set_response(h, req, status, resp);
	}
	pthread_mutex_unlock(&req->lock);
	pthread_mutex_unlock(&h->lock);
	if (release) {
		http_req_release(req);
		http_server_unref(h);
	}
}

/* Answer suspended requests (all, or only those of the HTTPS daemon) with
 * 503: the server is stopping or replacing that daemon. Their owners'
 * later http_respond calls become no-ops. */
static void http_answer_suspended(struct http_server *h, bool only_tls, const char *why)
{
	pthread_mutex_lock(&h->lock);
	struct http_req *req = h->suspended;
	while (req != NULL) {
		struct http_req *next = req->next_suspended;

		if (!only_tls || req->tls) {
			pthread_mutex_lock(&req->lock);
			req->forced = true;
			req->forced_counted = true;
			h->forced_pending++;
			http_set_response(h, req, 503,
					  http_make_response("text/plain; charset=utf-8",
							     why, strlen(why)));
			pthread_mutex_unlock(&req->lock);
		}
		req = next;
	}
	pthread_mutex_unlock(&h->lock);
}

/* Give the requests answered by http_answer_suspended up to a second to
 * go out before their daemon is stopped (which closes connections). */
static void http_wait_forced(struct http_server *h)
{
	for (int i = 0; i < 100; i++) {
		int pending;

		pthread_mutex_lock(&h->lock);
		pending = h->forced_pending;
		pthread_mutex_unlock(&h->lock);
		if (pending == 0)
			return;
		usleep(10 * 1000);
	}
}

void http_respond_text(struct http_req *req, int status, const char *text)
{
	http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

void http_respond_buf(struct http_req *req, int status, const char *content_type,
		      struct bu_buf *body)
{
	http_respond(req, status, content_type, body->data, body->len);
	bu_buf_reset(body);
}

void http_req_suspend(struct http_req *req)
{
	pthread_mutex_lock(&req->lock);
	bu_assert(!req->want_suspend);
	req->want_suspend = true;
	req->owner_ref = true;
	req->refs++;
	pthread_mutex_unlock(&req->lock);
	atomic_fetch_add(&req->h->refs, 1);
}

/* ---- built-in handlers -------------------------------------------------- */

static void http_handle_metrics(struct http_req *req)
{
	struct bu_buf out;

	bu_buf_init(&out, 16 * 1024 * 1024);
	bu_metrics_render(&out);
	http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &out);
	bu_buf_deinit(&out);
}

static int http_health_fn(void *arg, struct bu_db *db)
{
	PGresult *res = bu_db_query(db, "SELECT 1", 0, NULL);

	(void)arg;
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

static void http_handle_health(struct http_req *req)
{
	if (req->h->srv == NULL || bu_worker_call(req->h->srv, http_health_fn, NULL) < 0) {
		http_respond_text(req, 503, "database unavailable\n");
		return;
	}
	http_respond_text(req, 200, "ok\n");
}

/* ---- routing and the MHD callbacks ---------------------------------------- */

static bool http_prefix_match(const char *prefix, const char *path)
{
	size_t n = strlen(prefix);

	if (strncmp(path, prefix, n) != 0)
		return false;
	return prefix[n - 1] == '/' || path[n] == '\0' || path[n] == '/';
}

static bool http_method_match(const char *want, const char *method)
{
	if (want == NULL || strcmp(want, method) == 0)
		return true;
	return strcmp(want, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

/* route for (method, path); *path_known_r tells 405 from 404 */
static const struct http_route *http_route_find(const char *method, const char *path,
						bool *path_known_r)
{
	*path_known_r = false;
	for (size_t i = 0; i < BU_N_ELEMENTS(http_routes); i++) {
		const struct http_route *r = &http_routes[i];

		if (!http_prefix_match(r->prefix, path))
			continue;
		*path_known_r = true;
		if (http_method_match(r->method, method))
			return r;
	}
	return NULL;
}

static void http_allow_header(struct http_req *req)
{
	char allow[128] = "";
	size_t used = 0;

	for (size_t i = 0; i < BU_N_ELEMENTS(http_routes); i++) {
		const struct http_route *r = &http_routes[i];
		const char *m = r->method != NULL ? r->method : "GET";
		int n;

		if (!http_prefix_match(r->prefix, req->path))
			continue;
		n = snprintf(allow + used, sizeof(allow) - used, "%s%s%s",
			     used > 0 ? ", " : "", m, strcmp(m, "GET") == 0 ? ", HEAD" : "");
		if (n < 0 || (size_t)n >= sizeof(allow) - used)
			break;
		used += (size_t)n;
	}
	if (used > 0)
		http_resp_header(req, "Allow", allow);
}

static enum MHD_Result http_queue(struct http_req *req)
{
	enum MHD_Result r;

	pthread_mutex_lock(&req->lock);
	bu_assert(req->resp != NULL);
	r = MHD_queue_response(req->mc, (unsigned)req->status, req->resp);
	MHD_destroy_response(req->resp);
	req->resp = NULL;
	pthread_mutex_unlock(&req->lock);
	return r;
}

static struct http_req *http_req_create(struct http_server *h, struct MHD_Connection *mc,
					bool tls, const char *method, const char *url)
{
	struct http_req *req = bu_malloc(sizeof(*req));
	const union MHD_ConnectionInfo *ci;

	req->h = h;
	req->mc = mc;
	req->tls = tls;
	req->arena = bu_arena_create(0);
	req->method = bu_strdup(method);
	req->path = bu_strdup(url);
	req->start_us = bu_mono_us();
	req->refs = 1;      /* MHD's, dropped in http_completed */
	pthread_mutex_init(&req->lock, NULL);
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL) {
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
				  req->peer, sizeof(req->peer));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
				  req->peer, sizeof(req->peer));
	}
	if (req->peer[0] == '\0')
		memcpy(req->peer, "-", 2);
	return req;
}

static void http_req_free(struct http_req *req)
{
	bu_assert(req->refs == 0);
	for (size_t i = 0; i < req->nhdrs; i++) {
		free(req->hdrs[i].name);
		free(req->hdrs[i].value);
	}
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	bu_buf_deinit(&req->body);
	bu_arena_destroy(&req->arena);
	pthread_mutex_destroy(&req->lock);
	free(req->method);
	free(req->path);
	free(req);
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *mc, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_data_size,
				   void **req_cls)
{
	struct http_daemon *d = cls;
	struct http_server *h = d->h;
	struct http_req *req = *req_cls;

	(void)version;
	if (req == NULL) {
		bool path_known;
		const char *cl;

		req = http_req_create(h, mc, d->tls, method, url);
		*req_cls = req;
		req->route = http_route_find(method, url, &path_known);
		if (req->route == NULL) {
			if (path_known) {
				http_allow_header(req);
				http_respond_text(req, 405, "method not allowed\n");
			} else {
				http_respond_text(req, 404, "not found\n");
			}
			return http_queue(req);
		}
		size_t max = req->route->max_body != 0 ? req->route->max_body :
			HTTP_DEFAULT_MAX_BODY;
		bu_buf_init(&req->body, max);
		cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL) {
			uint64_t n;

			if (bu_parse_u64(cl, strlen(cl), UINT64_MAX, &n) == 0 && n > max) {
				http_respond_text(req, 413, "request body too large\n");
				return http_queue(req);
			}
		}
		return MHD_YES;
	}

	if (req->responded) {
		/* resumed after a long poll, or a response queued early */
		if (req->resp != NULL)
			return http_queue(req);
		*upload_data_size = 0;   /* already queued: drop any body */
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!req->body_too_large &&
		    bu_buf_append(&req->body, upload_data, *upload_data_size) < 0)
			req->body_too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->body_too_large) {
		http_respond_text(req, 413, "request body too large\n");
		return http_queue(req);
	}
	if (!req->handled) {
		req->handled = true;
		req->route->handler(req);
	}

	pthread_mutex_lock(&h->lock);
	pthread_mutex_lock(&req->lock);
	if (!req->responded && req->want_suspend) {
		if (!h->stopping) {
			req->suspended = true;
			req->next_suspended = h->suspended;
			if (h->suspended != NULL)
				h->suspended->prev_suspended = req;
			h->suspended = req;
			MHD_suspend_connection(mc);
			pthread_mutex_unlock(&req->lock);
			pthread_mutex_unlock(&h->lock);
			return MHD_YES;
		}
		static const char stopping[] = "server is stopping\n";
		req->forced = true;
		http_set_response(h, req, 503,
				  http_make_response("text/plain; charset=utf-8",
						     stopping, sizeof(stopping) - 1));
	}
	pthread_mutex_unlock(&req->lock);
	pthread_mutex_unlock(&h->lock);
	if (!req->responded) {
		bu_error("event=http.no_response method=%s path=%s", bu_log_q(req->method),
			 bu_log_q(req->path));
		http_respond_text(req, 500, "internal error\n");
	}
	return http_queue(req);
}

static void http_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct http_req *req = *req_cls;
	char series[64];
	double secs;

	(void)cls;
	(void)mc;
	if (req == NULL)
		return;
	secs = (double)(bu_mono_us() - req->start_us) / 1e6;
	if (req->status != 0) {
		snprintf(series, sizeof(series), "bureau_http_requests_total{code=\"%d\"}",
			 req->status);
		bu_metric_add(series, 1);
		bu_metric_observe("bureau_http_request_seconds", NULL, secs);
	}
	bu_info("event=http.request method=%s path=%s status=%d ms=%lld ip=%s tls=%s%s",
		bu_log_q(req->method), bu_log_q(req->path), req->status,
		(long long)(secs * 1000), req->peer, req->tls ? "yes" : "no",
		toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" :
		toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " end=client_abort" :
		toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " end=timeout" :
		toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " end=shutdown" :
		" end=error");
	*req_cls = NULL;
	if (req->forced_counted) {
		pthread_mutex_lock(&req->h->lock);
		req->h->forced_pending--;
		pthread_mutex_unlock(&req->h->lock);
	}
	pthread_mutex_lock(&req->lock);
	req->finished = true;
	req->mc = NULL;
	pthread_mutex_unlock(&req->lock);
	http_req_release(req);
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	bu_warn("event=http.mhd msg=%s", bu_log_qn(buf, n));
}

/* ---- listeners ------------------------------------------------------------ */

static int http_bind_one(const struct bu_config *cfg, enum bu_service_id svc, int *fd_r,
			 const char **error_r)
{
	static __thread char errbuf[256];
	struct sockaddr_storage ss;
	socklen_t sslen;
	int port = cfg->svc[svc].port;
	int fd, one = 1;

	*fd_r = -1;
	if (port == 0)
		return 0;
	memset(&ss, 0, sizeof(ss));
	if (strchr(cfg->listen_address, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, cfg->listen_address, &s6->sin6_addr) != 1)
			goto bad_addr;
		sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, cfg->listen_address, &s4->sin_addr) != 1)
			goto bad_addr;
		sslen = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(errbuf, sizeof(errbuf), "%s: socket: %s", cfg->svc[svc].name,
			 strerror(errno));
		*error_r = errbuf;
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, HTTP_LISTEN_BACKLOG) < 0) {
		int err = errno;
		/* the same words and hints as the mail listeners (net.c) */
		const char *hint = err == EADDRINUSE ? "; set %s.port or stop the other server" :
			err == EACCES ? "; ports below 1024 need root or "
			"CAP_NET_BIND_SERVICE, or set %s.port" :
			err == EADDRNOTAVAIL ? "; set listen.address to an address of this "
			"host%.0s" : "%.0s";
		char h[160];

		snprintf(h, sizeof(h), hint, cfg->svc[svc].name);
		snprintf(errbuf, sizeof(errbuf), "%s: cannot listen on %s%s%s:%d: %s%s",
			 cfg->svc[svc].name, ss.ss_family == AF_INET6 ? "[" : "",
			 cfg->listen_address, ss.ss_family == AF_INET6 ? "]" : "", port,
			 strerror(err), h);
		*error_r = errbuf;
		close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
bad_addr:
	snprintf(errbuf, sizeof(errbuf), "%s: bad listen.address %s", cfg->svc[svc].name,
		 cfg->listen_address);
	*error_r = errbuf;
	return -1;
}

int http_bind(const struct bu_config *cfg, int *http_fd_r, int *https_fd_r,
	      const char **error_r)
{
	if (http_bind_one(cfg, BU_SVC_HTTP, http_fd_r, error_r) < 0)
		return -1;
	if (http_bind_one(cfg, BU_SVC_HTTPS, https_fd_r, error_r) < 0) {
		if (*http_fd_r >= 0)
			close(*http_fd_r);
		*http_fd_r = -1;
		return -1;
	}
	return 0;
}

static struct MHD_Daemon *http_daemon_start(struct http_server *h, struct http_daemon *d,
					    int fd, const char *cert, const char *key)
{
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
		MHD_USE_ERROR_LOG | MHD_USE_ITC;
	int per_ip = h->cfg->max_sessions_per_ip;
	struct MHD_OptionItem opts[] = {
		/* the logger first, or MHD logs the options before it itself */
		{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)http_mhd_log, h },
		{ MHD_OPTION_LISTEN_SOCKET, fd, NULL },
		{ MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONN_TIMEOUT_S, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, HTTP_CONN_LIMIT, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONN_MEMORY, NULL },
		{ MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, NULL },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_completed, h },
		{ MHD_OPTION_END, 0, NULL },    /* TLS options go here */
		{ MHD_OPTION_END, 0, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	size_t n = 0;

	while (opts[n].option != MHD_OPTION_END)
		n++;
	if (d->tls) {
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key };
	}
	bu_assert(n < BU_N_ELEMENTS(opts));
	return MHD_start_daemon(flags, 0, NULL, NULL, http_access, d,
				MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
}

struct http_server *http_server_start(const struct http_params *p, const char **error_r)
{
	struct http_server *h = bu_malloc(sizeof(*h));

	h->cfg = p->cfg;
	h->srv = p->srv;
	h->hub = p->hub;
	atomic_init(&h->refs, 1);
	h->http_fd = p->http_fd;
	h->https_fd = p->https_fd;
	h->plain.tls = false;
	h->plain.h = h;
	h->secure.tls = true;
	h->secure.h = h;
	pthread_mutex_init(&h->lock, NULL);

	if (h->https_fd >= 0) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			*error_r = "https: this libmicrohttpd has no TLS support "
				"(install a libmicrohttpd built with GnuTLS) or set https.port = 0";
			goto fail;
		}
		if (p->cert_pem == NULL || p->key_pem == NULL) {
			*error_r = "https: no certificate/key";
			goto fail;
		}
		h->cert_pem = bu_strdup(p->cert_pem);
		h->key_pem = bu_strdup(p->key_pem);
	}
	if (h->http_fd >= 0) {
		h->plain.mhd = http_daemon_start(h, &h->plain, h->http_fd, NULL, NULL);
		if (h->plain.mhd == NULL) {
			*error_r = "http: cannot start the HTTP server (see the log)";
			goto fail;
		}
		h->http_fd = -1;   /* MHD closes it */
	}
	if (h->https_fd >= 0) {
		h->secure.mhd = http_daemon_start(h, &h->secure, h->https_fd, h->cert_pem,
						  h->key_pem);
		if (h->secure.mhd == NULL) {
			*error_r = "https: cannot start the HTTPS server: is tls.key a key "
				"GnuTLS reads, matching tls.cert? (see the log)";
			goto fail;
		}
		h->https_fd = -1;
	}
	http_metrics_register(h);
	return h;
fail:
	http_server_stop(&h);
	return NULL;
}

int http_server_tls_reload(struct http_server *h, const char *cert_pem,
			   const char *key_pem, const char **error_r)
{
	struct MHD_Daemon *old = h->secure.mhd, *fresh;
	char *cert, *key;
	const union MHD_DaemonInfo *di;
	MHD_socket fd;

	if (old == NULL)
		return 0;
	di = MHD_get_daemon_info(old, MHD_DAEMON_INFO_LISTEN_FD);
	if (di == NULL) {
		*error_r = "https: cannot find the listening socket";
		return -1;
	}
	cert = bu_strdup(cert_pem);
	key = bu_strdup(key_pem);
	/* both daemons accept on the socket until the old one is quiesced */
	fresh = http_daemon_start(h, &h->secure, di->listen_fd, cert, key);
	if (fresh == NULL) {
		free(cert);
		bu_wipe(key, strlen(key));
		free(key);
		*error_r = "https: the new certificate/key cannot be used (see the log)";
		return -1;
	}
	fd = MHD_quiesce_daemon(old);
	(void)fd;   /* now owned by the new daemon */
	h->secure.mhd = fresh;

	/* answer the old daemon's long polls before it closes its connections */
	http_answer_suspended(h, true, "server is reloading\n");
	http_wait_forced(h);
	MHD_stop_daemon(old);
	free(h->cert_pem);
	bu_wipe(h->key_pem, strlen(h->key_pem));
	free(h->key_pem);
	h->cert_pem = cert;
	h->key_pem = key;
	return 0;
}

void http_server_stop(struct http_server **hp)
{
	struct http_server *h = *hp;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_mutex_unlock(&h->lock);
	/* answer the long polls; they resume and finish before MHD stops */
	http_answer_suspended(h, false, "server is stopping\n");
	http_wait_forced(h);
	if (h->plain.mhd != NULL)
		MHD_stop_daemon(h->plain.mhd);
	if (h->secure.mhd != NULL)
		MHD_stop_daemon(h->secure.mhd);
	if (h->http_fd >= 0)
		close(h->http_fd);
	if (h->https_fd >= 0)
		close(h->https_fd);
	h->plain.mhd = h->secure.mhd = NULL;
	http_server_unref(h);
	*hp = NULL;
}

/*
 * http.h - the HTTP server (libmicrohttpd glue): listeners, routing table,
 * requests and responses.
 *
 * libmicrohttpd runs its own threads (epoll, a small thread pool); handlers
 * run on those threads and may block briefly, e.g. in bu_worker_call() for
 * database work. Routing is one static table in server.c of
 * {method, path prefix, handler, body limit}: a later protocol (DAV,
 * ActiveSync, the admin API) adds its rows there and keeps its handlers in
 * its own folder.
 *
 * A handler is called once per request, after the whole body has arrived
 * (bodies beyond the route's limit are answered 413 without calling it). It
 * must either respond (http_respond*) before returning, or suspend the
 * request (http_req_suspend, long polls) and respond later from any thread;
 * a handler that does neither produces a 500.
 *
 * Ports are bound before the privilege drop (http_bind) and served after it
 * (http_server_start), like the other listeners.
 */
#ifndef HTTP_H
#define HTTP_H

#include "server/core/config.h"
#include "server/core/util.h"

struct bu_server;
struct bu_hub;
struct http_server;
struct http_req;

/* default request body limit (a route may set its own) */
#define HTTP_DEFAULT_MAX_BODY (1024 * 1024)

typedef void http_handler_fn(struct http_req *req);

struct http_route {
	const char *method;       /* "GET" also serves HEAD; NULL = any method */
	/* Matches the path itself and anything below it: "/metrics" matches
	 * "/metrics" and "/metrics/x" but not "/metricsx"; "/dav/" matches
	 * everything starting with "/dav/". */
	const char *prefix;
	http_handler_fn *handler;
	size_t max_body;          /* 0 = HTTP_DEFAULT_MAX_BODY */
};

/* ---- server ---------------------------------------------------------- */

/* Bind http.port and https.port (0 = disabled: fd -1) on listen.address.
 * Returns 0, or -1 with *error_r ("http: bind 127.0.0.1:80: ..."). */
int http_bind(const struct bu_config *cfg, int *http_fd_r, int *https_fd_r,
	      const char **error_r);

struct http_params {
	const struct bu_config *cfg;
	struct bu_server *srv;    /* bu_worker_call, session counts */
	struct bu_hub *hub;       /* long polls (may be NULL) */
	int http_fd, https_fd;    /* from http_bind; ownership passes */
	const char *cert_pem;     /* for https: PEM text (copied) */
	const char *key_pem;
};

/* Start serving. Returns NULL with *error_r on failure (e.g. HTTPS asked
 * for but libmicrohttpd built without TLS, or a key it cannot read). */
struct http_server *http_server_start(const struct http_params *p,
				      const char **error_r);
/* SIGHUP: serve HTTPS with a new certificate/key from now on. The old
 * HTTPS daemon stops accepting; its connections are closed. 0 / -1 with
 * *error_r (the old certificate stays in use). */
int http_server_tls_reload(struct http_server *h, const char *cert_pem,
			   const char *key_pem, const char **error_r);
/* Stop: suspended requests get 503, then every connection is closed. */
void http_server_stop(struct http_server **h);

/* ---- requests (handler thread, or any thread while suspended) -------- */

const char *http_req_method(const struct http_req *req);
const char *http_req_path(const struct http_req *req);   /* no query string */
/* request header / query argument, or NULL (valid for the request's life) */
const char *http_req_header(struct http_req *req, const char *name);
const char *http_req_arg(struct http_req *req, const char *name);
const uint8_t *http_req_body(const struct http_req *req, size_t *len_r);
const char *http_req_peer(const struct http_req *req);   /* "127.0.0.1" */
bool http_req_is_tls(const struct http_req *req);
struct bu_server *http_req_server(const struct http_req *req);
struct bu_hub *http_req_hub(const struct http_req *req);
/* a per-request arena, reset when the request ends */
struct bu_arena *http_req_arena(struct http_req *req);

/* Add a response header (before http_respond*). */
void http_resp_header(struct http_req *req, const char *name, const char *value);
/* Respond once. body is copied; content_type NULL = no Content-Type. */
void http_respond(struct http_req *req, int status, const char *content_type,
		  const void *body, size_t len);
/* text/plain; charset=utf-8 */
void http_respond_text(struct http_req *req, int status, const char *text);
/* takes the buffer's contents (body is reset) */
void http_respond_buf(struct http_req *req, int status, const char *content_type,
		      struct bu_buf *body);

/* Long poll: keep the request open after the handler returns, holding no
 * thread. Respond later from any thread with http_respond*; after that the
 * req pointer is no longer valid. A suspended request that gets no answer
 * is answered 503 when the server stops. */
void http_req_suspend(struct http_req *req);

#endif

/*
 * net.c - listeners, I/O threads and connections.
 *
 * Each I/O thread runs one level-triggered epoll loop. Every thread
 * registers every listener with EPOLLEXCLUSIVE, so the kernel wakes one
 * (occasionally a few) of them per incoming connection and the accepting
 * thread owns the connection for its whole life. Other threads talk to an
 * I/O thread only through its mailbox (mutex-protected lists plus an
 * eventfd): completed tasks, hub notifications and shutdown requests.
 *
 * A loop iteration: epoll_wait (timeout = the nearest timer, or 0 when
 * connections are waiting on the pending list), handle the events, fire due
 * timers, run the pending list, then free the connections that died in this
 * iteration. Protocol callbacks only mark state (close, write, pause...) and
 * put the connection on the pending list; flushing, closing and freeing
 * happen in conn_process()/conn_maybe_finish() from the loop, never inside a
 * callback of the same connection (Redis freeClientAsync).
 *
 * Layers on a connection, top down: the protocol's plaintext, optional
 * deflate (RFC 4978), optional TLS (implicit, or STARTTLS per RFC 3207 /
 * RFC 2595 with pre-handshake input discarded), the socket.
 *
 * Timers are a per-thread binary min-heap of deadlines embedded in the
 * connections (read timeout / close-flush deadline / linger, and the one-shot
 * protocol timer).
 *
 * Left out: SO_REUSEPORT sharding, TCP_DEFER_ACCEPT, PROXY protocol.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "metrics.h"
#include "net_private.h"

struct ip_slot {
	struct ip_slot *next;
	uint8_t key[16];
	int count;
};

static atomic_uint_least64_t next_conn_id = 1;
static __thread struct io_thread *tl_th;

/* process-wide session gauges (metrics outlive any one server) */
static pthread_mutex_t gauge_mu = PTHREAD_MUTEX_INITIALIZER;
static bool gauge_registered[BU_SVC_COUNT];
static atomic_int_least64_t gauge_sessions[BU_SVC_COUNT];

static void conn_process(struct bu_conn *c, uint32_t ev);
static void conn_close_internal(struct bu_conn *c, const char *reason);

const char *net_err(const char *fmt, ...)
{
	static __thread char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

bool net_on_io_thread(void)
{
	return tl_th != NULL;
}

static const char *svc_name(const struct bu_server *s, enum bu_service_id svc)
{
	const char *n = s->cfg->svc[svc].name;

	return n != NULL ? n : "?";
}

/* ---- sessions per IP ------------------------------------------------ */

static void ip_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		key[10] = 0xff;
		key[11] = 0xff;
		memcpy(key + 12, &sin->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		memcpy(key, &sin6->sin6_addr, 16);
	}
}

static unsigned ip_hash(const uint8_t key[16])
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return (unsigned)(h % NET_IP_BUCKETS);
}

/* NULL when the address already has limit sessions (limit <= 0: none) */
static struct ip_slot *ip_acquire(struct bu_server *s, const uint8_t key[16],
				  int limit)
{
	unsigned h = ip_hash(key);
	struct ip_slot *e;

	pthread_mutex_lock(&s->ip_mu);
	for (e = s->ip_tab[h]; e != NULL; e = e->next)
		if (memcmp(e->key, key, 16) == 0)
			break;
	if (e != NULL && limit > 0 && e->count >= limit) {
		pthread_mutex_unlock(&s->ip_mu);
		return NULL;
	}
	if (e == NULL) {
		e = bu_malloc(sizeof(*e));
		memcpy(e->key, key, 16);
		e->next = s->ip_tab[h];
		s->ip_tab[h] = e;
	}
	e->count++;
	pthread_mutex_unlock(&s->ip_mu);
	return e;
}

static void ip_release(struct bu_server *s, struct ip_slot *slot)
{
	unsigned h = ip_hash(slot->key);

	pthread_mutex_lock(&s->ip_mu);
	bu_assert(slot->count > 0);
	if (--slot->count == 0) {
		struct ip_slot **pp;

		for (pp = &s->ip_tab[h]; *pp != slot; pp = &(*pp)->next)
			bu_assert(*pp != NULL);
		*pp = slot->next;
		free(slot);
	}
	pthread_mutex_unlock(&s->ip_mu);
}

/* ---- timers: binary min-heap per thread ----------------------------- */

static void heap_place(struct io_thread *th, size_t i, struct net_timer *t)
{
	th->heap[i] = t;
	t->idx = (int)i;
}

static void heap_up(struct io_thread *th, size_t i)
{
	struct net_timer *t = th->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (th->heap[parent]->at <= t->at)
			break;
		heap_place(th, i, th->heap[parent]);
		i = parent;
	}
	heap_place(th, i, t);
}

static void heap_down(struct io_thread *th, size_t i)
{
	struct net_timer *t = th->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		int64_t best = t->at;

		if (l < th->nheap && th->heap[l]->at < best) {
			m = l;
			best = th->heap[l]->at;
		}
		if (r < th->nheap && th->heap[r]->at < best)
			m = r;
		if (m == i)
			break;
		heap_place(th, i, th->heap[m]);
		i = m;
	}
	heap_place(th, i, t);
}

static void timer_clear(struct io_thread *th, struct net_timer *t)
{
	size_t i;
	struct net_timer *last;

	if (t->idx < 0)
		return;
	i = (size_t)t->idx;
	t->idx = -1;
	last = th->heap[--th->nheap];
	if (i == th->nheap)
		return;
	heap_place(th, i, last);
	heap_up(th, i);
	heap_down(th, (size_t)last->idx);
}

static void timer_set(struct io_thread *th, struct net_timer *t, int64_t at)
{
	if (t->idx >= 0) {
		t->at = at;
		heap_up(th, (size_t)t->idx);
		heap_down(th, (size_t)t->idx);
		return;
	}
	if (th->nheap == th->capheap) {
		th->capheap = th->capheap ? th->capheap * 2 : 64;
		th->heap = bu_realloc(th->heap, bu_size_mul(th->capheap,
							    sizeof(struct net_timer *)));
	}
	t->at = at;
	th->heap[th->nheap] = t;
	t->idx = (int)th->nheap;
	th->nheap++;
	heap_up(th, (size_t)t->idx);
}

/* ---- lists ----------------------------------------------------------- */

static void pend_add(struct bu_conn *c)
{
	struct io_thread *th = c->th;

	if (c->pending || c->dead)
		return;
	c->pending = true;
	c->p_next = NULL;
	c->p_prev = th->pend_tail;
	if (th->pend_tail != NULL)
		th->pend_tail->p_next = c;
	else
		th->pend_head = c;
	th->pend_tail = c;
}

static void pend_remove(struct bu_conn *c)
{
	struct io_thread *th = c->th;

	if (!c->pending)
		return;
	if (c->p_prev != NULL)
		c->p_prev->p_next = c->p_next;
	else
		th->pend_head = c->p_next;
	if (c->p_next != NULL)
		c->p_next->p_prev = c->p_prev;
	else
		th->pend_tail = c->p_prev;
	c->p_next = c->p_prev = NULL;
	c->pending = false;
}

static unsigned watch_hash(int64_t account)
{
	return (unsigned)(((uint64_t)account * 0x9E3779B97F4A7C15ULL) >> 54) %
		NET_WATCH_BUCKETS;
}

static void watch_unlink(struct bu_conn *c)
{
	if (c->watch_account == 0)
		return;
	if (c->w_prev != NULL)
		c->w_prev->w_next = c->w_next;
	else
		c->th->watch[watch_hash(c->watch_account)] = c->w_next;
	if (c->w_next != NULL)
		c->w_next->w_prev = c->w_prev;
	c->w_next = c->w_prev = NULL;
	c->watch_account = 0;
}

static void watch_link(struct bu_conn *c, int64_t account)
{
	unsigned h = watch_hash(account);

	c->watch_account = account;
	c->w_prev = NULL;
	c->w_next = c->th->watch[h];
	if (c->w_next != NULL)
		c->w_next->w_prev = c;
	c->th->watch[h] = c;
}

/* ---- helpers ---------------------------------------------------------- */

static void conn_assert_thread(const struct bu_conn *c)
{
	bu_assert(c->th == tl_th);
}

static size_t conn_out_wire(const struct bu_conn *c)
{
	return c->out.len - c->out_off;
}

static size_t conn_out_pending(const struct bu_conn *c)
{
	return conn_out_wire(c) + c->zin.len;
}

static bool conn_can_read(const struct bu_conn *c)
{
	if (c->rd_eof || c->peer_gone || c->dead)
		return false;
	if (c->lingering)
		return true;
	if (c->closing || c->tls == TLS_WAIT_FLUSH || c->tls == TLS_HANDSHAKE)
		return false;
	if (c->zi != NULL)
		return c->zraw.len < NET_ZRAW_MAX;
	return c->in.len < NET_IN_MAX;
}

static void conn_update_events(struct bu_conn *c)
{
	struct epoll_event ev;
	uint32_t m = 0;

	if (!c->registered || c->dead)
		return;
	if (c->lingering) {
		m = EPOLLIN;
	} else if (c->tls == TLS_HANDSHAKE) {
		if (!c->peer_gone)
			m = c->hs_want_write ? EPOLLOUT : EPOLLIN;
	} else {
		if (conn_can_read(c))
			m |= EPOLLIN;
		if (!c->peer_gone && conn_out_wire(c) > 0) {
			if (c->tls != TLS_WAIT_FLUSH || c->out_off < c->out_plain_end)
				m |= EPOLLOUT;
			if (c->tls == TLS_ON && c->ssl_wr_want_r)
				m |= EPOLLIN;
		}
		if (c->tls == TLS_ON && c->ssl_rd_want_w)
			m |= EPOLLOUT;
	}
	if (m == c->ev_mask)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = m;
	ev.data.ptr = &c->src;
	if (epoll_ctl(c->th->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		bu_log_errno("event=epoll_ctl_failed op=mod");
	c->ev_mask = m;
}

static void conn_unregister(struct bu_conn *c)
{
	if (!c->registered)
		return;
	if (epoll_ctl(c->th->epfd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
		bu_log_errno("event=epoll_ctl_failed op=del");
	c->registered = false;
}

static void conn_build_log_ctx(struct bu_conn *c)
{
	if (c->user != NULL)
		snprintf(c->log_ctx, sizeof(c->log_ctx), "proto=%s conn=%llu ip=%s user=%s",
			 c->ops->name, (unsigned long long)c->id, c->peer,
			 bu_log_q(c->user));
	else
		snprintf(c->log_ctx, sizeof(c->log_ctx), "proto=%s conn=%llu ip=%s",
			 c->ops->name, (unsigned long long)c->id, c->peer);
}

static void conn_rearm_read_timeout(struct bu_conn *c)
{
	if (c->timeout_s > 0 && !c->closing && !c->lingering)
		timer_set(c->th, &c->rto, bu_mono_ms() + (int64_t)c->timeout_s * 1000);
}

/* ---- connection API (I/O thread) ------------------------------------ */

uint64_t bu_conn_id(const struct bu_conn *c)
{
	return c->id;
}

struct bu_buf *bu_conn_in(struct bu_conn *c)
{
	conn_assert_thread(c);
	return &c->in;
}

static void conn_after_write(struct bu_conn *c)
{
	if (conn_out_pending(c) >= NET_OUT_LOWAT)
		c->out_above = true;
	pend_add(c);
}

void bu_conn_write(struct bu_conn *c, const void *p, size_t n)
{
	conn_assert_thread(c);
	if (n == 0 || c->finished || c->peer_gone)
		return;
	/* max 0: never fails */
	(void)bu_buf_append(c->zd != NULL ? &c->zin : &c->out, p, n);
	conn_after_write(c);
}

void bu_conn_puts(struct bu_conn *c, const char *s)
{
	bu_conn_write(c, s, strlen(s));
}

void bu_conn_printf(struct bu_conn *c, const char *fmt, ...)
{
	va_list ap;

	conn_assert_thread(c);
	if (c->finished || c->peer_gone)
		return;
	va_start(ap, fmt);
	(void)bu_buf_vprintf(c->zd != NULL ? &c->zin : &c->out, fmt, ap);
	va_end(ap);
	conn_after_write(c);
}

size_t bu_conn_out_pending(const struct bu_conn *c)
{
	return conn_out_pending(c);
}

void bu_conn_close(struct bu_conn *c, const char *reason)
{
	conn_assert_thread(c);
	conn_close_internal(c, reason);
}

static void conn_close_internal(struct bu_conn *c, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_reason = bu_strdup(reason != NULL ? reason : "closed");
	timer_clear(c->th, &c->utm);
	timer_set(c->th, &c->rto, bu_mono_ms() +
		  (c->th->stopping_conns ? NET_SHUTDOWN_FLUSH_MS : NET_CLOSE_FLUSH_MS));
	pend_add(c);
}

bool bu_conn_closing(const struct bu_conn *c)
{
	return c->closing;
}

void bu_conn_pause_input(struct bu_conn *c, bool pause)
{
	conn_assert_thread(c);
	if (c->paused == pause)
		return;
	c->paused = pause;
	if (!pause) {
		if (c->in.len > 0)
			c->in_new = true;
		pend_add(c);
	}
}

int bu_conn_starttls(struct bu_conn *c)
{
	SSL *ssl;

	conn_assert_thread(c);
	if (c->tls != TLS_OFF || c->zd != NULL || c->closing)
		return -1;
	ssl = tls_new_ssl(c->srv);
	if (ssl == NULL)
		return -1;
	if (SSL_set_fd(ssl, c->fd) != 1) {
		bu_error("event=tls_error err=%s", bu_log_q(tls_error_text()));
		SSL_free(ssl);
		return -1;
	}
	SSL_set_accept_state(ssl);
	c->ssl = ssl;
	c->tls = TLS_WAIT_FLUSH;
	c->out_plain_end = c->out.len;
	/* RFC 3207 section 4.2, RFC 2595 section 3.1: whatever the client
	 * sent before the handshake must not be acted on after it */
	bu_buf_reset(&c->in);
	c->in_new = false;
	c->force_read = false;
	pend_add(c);
	return 0;
}

bool bu_conn_is_tls(const struct bu_conn *c)
{
	return c->tls == TLS_ON;
}

bool bu_conn_is_loopback(const struct bu_conn *c)
{
	return c->loopback;
}

const char *bu_conn_peer(const struct bu_conn *c)
{
	return c->peer;
}

int bu_conn_local_port(const struct bu_conn *c)
{
	return c->local_port;
}

enum bu_service_id bu_conn_service(const struct bu_conn *c)
{
	return c->svc;
}

struct bu_server *bu_conn_server(const struct bu_conn *c)
{
	return c->srv;
}

void bu_conn_set_timeout(struct bu_conn *c, int seconds)
{
	conn_assert_thread(c);
	if (c->closing || c->lingering)
		return;
	c->timeout_s = seconds > 0 ? seconds : 0;
	if (c->timeout_s > 0)
		conn_rearm_read_timeout(c);
	else
		timer_clear(c->th, &c->rto);
}

void bu_conn_set_timer(struct bu_conn *c, int64_t ms)
{
	conn_assert_thread(c);
	if (ms > 0 && !c->closing)
		timer_set(c->th, &c->utm, bu_mono_ms() + ms);
	else
		timer_clear(c->th, &c->utm);
}

void bu_conn_watch(struct bu_conn *c, int64_t account_id)
{
	conn_assert_thread(c);
	if (c->watch_account == account_id)
		return;
	watch_unlink(c);
	if (account_id != 0 && !c->finished)
		watch_link(c, account_id);
}

int bu_conn_compress(struct bu_conn *c)
{
	conn_assert_thread(c);
	if (c->zd != NULL || c->tls == TLS_WAIT_FLUSH || c->tls == TLS_HANDSHAKE)
		return -1;
	c->zd = bu_malloc(sizeof(*c->zd));
	c->zi = bu_malloc(sizeof(*c->zi));
	/* raw deflate, RFC 4978 section 3 / RFC 1951 */
	if (deflateInit2(c->zd, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK ||
	    inflateInit2(c->zi, -15) != Z_OK)
		bu_panic("zlib init failed (out of memory)");
	/* zraw has no max: conn_can_read bounds what is read into it, and
	 * what the protocol had buffered may exceed NET_ZRAW_MAX once.
	 * The client compresses from right after the COMPRESS command line,
	 * so what is buffered past it (already consumed by the protocol) is
	 * compressed data. */
	if (c->in.len > 0) {
		(void)bu_buf_append(&c->zraw, c->in.data, c->in.len);
		bu_buf_reset(&c->in);
	}
	c->in_new = false;
	pend_add(c);
	return 0;
}

void bu_conn_set_log_user(struct bu_conn *c, const char *user)
{
	conn_assert_thread(c);
	bu_free(&c->user);
	if (user != NULL)
		c->user = bu_strdup(user);
	conn_build_log_ctx(c);
	/* we are inside one of this conn's callbacks */
	bu_log_ctx_set(c->log_ctx);
}

void bu_conn_submit(struct bu_conn *c, struct bu_task *t)
{
	conn_assert_thread(c);
	bu_assert(!c->task_inflight);
	/* not from ops->close: the conn is about to be freed */
	bu_assert(!c->finished);
	bu_assert(t->run != NULL && t->done != NULL);
	t->conn = c;
	t->next = NULL;
	t->submitted_us = bu_mono_us();
	c->task_inflight = true;
	memcpy(c->task_ctx, c->log_ctx, sizeof(c->task_ctx));
	workers_push(c->srv, t);
}

/* ---- connection I/O --------------------------------------------------- */

static void conn_read(struct bu_conn *c)
{
	struct io_thread *th = c->th;
	struct bu_buf *dst = c->zi != NULL ? &c->zraw : &c->in;
	size_t max = c->zi != NULL ? NET_ZRAW_MAX : NET_IN_MAX;
	size_t room = dst->len < max ? max - dst->len : 0;
	ssize_t n;

	c->force_read = false;
	if (room == 0)
		return;
	if (room > sizeof(th->rbuf))
		room = sizeof(th->rbuf);

	if (c->tls == TLS_ON) {
		int r, e;

		c->ssl_rd_want_w = false;
		ERR_clear_error();
		/* SSL_ERROR_SYSCALL looks at errno: not a stale one */
		errno = 0;
		r = SSL_read(c->ssl, th->rbuf, (int)room);
		if (r <= 0) {
			e = SSL_get_error(c->ssl, r);
			switch (e) {
			case SSL_ERROR_WANT_READ:
				return;
			case SSL_ERROR_WANT_WRITE:
				c->ssl_rd_want_w = true;
				return;
			case SSL_ERROR_ZERO_RETURN:
				c->rd_eof = true;
				return;
			case SSL_ERROR_SYSCALL:
				ERR_clear_error();
				c->rd_eof = true;
				c->peer_gone = errno != 0 && errno != EAGAIN;
				return;
			default:
				bu_info("event=tls_error err=%s",
					bu_log_q(tls_error_text()));
				c->rd_eof = true;
				c->peer_gone = true;
				return;
			}
		}
		n = r;
		if (SSL_has_pending(c->ssl))
			c->force_read = true;
	} else {
		n = recv(c->fd, th->rbuf, room, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			c->rd_eof = true;
			c->peer_gone = true;
			return;
		}
		if (n == 0) {
			c->rd_eof = true;
			return;
		}
	}
	c->bytes_in += (uint64_t)n;
	bu_assert(bu_buf_append(dst, th->rbuf, (size_t)n) == 0);
	if (c->zi == NULL)
		c->in_new = true;
	conn_rearm_read_timeout(c);
}

/* zlib may hold decoded bytes it could not hand out (zi_more) */
static bool conn_inflate(struct bu_conn *c)
{
	struct io_thread *th = c->th;
	bool more = false;

	while (c->in.len < NET_IN_MAX) {
		size_t room = NET_IN_MAX - c->in.len;
		size_t used, produced;
		int r;

		if (room > sizeof(th->rbuf))
			room = sizeof(th->rbuf);
		c->zi->next_in = c->zraw.data;
		c->zi->avail_in = (uInt)c->zraw.len;
		c->zi->next_out = th->rbuf;
		c->zi->avail_out = (uInt)room;
		r = inflate(c->zi, Z_SYNC_FLUSH);
		used = c->zraw.len - c->zi->avail_in;
		produced = room - c->zi->avail_out;
		if (used > 0)
			bu_buf_consume(&c->zraw, used);
		if (produced > 0) {
			bu_assert(bu_buf_append(&c->in, th->rbuf, produced) == 0);
			c->in_new = true;
		}
		if (r == Z_STREAM_END || (r != Z_OK && r != Z_BUF_ERROR)) {
			bu_info("event=inflate_error err=%s",
				bu_log_q(c->zi->msg != NULL ? c->zi->msg : "stream end"));
			c->rd_eof = true;
			conn_close_internal(c, "compression error");
			return false;
		}
		more = c->zi->avail_out == 0;
		if (!more && c->zraw.len == 0)
			break;
		if (produced == 0 && used == 0)
			break;
	}
	return more || c->zraw.len > 0;
}

static void conn_deflate(struct bu_conn *c)
{
	struct io_thread *th = c->th;

	if (c->zd == NULL || c->zin.len == 0)
		return;
	c->zd->next_in = c->zin.data;
	c->zd->avail_in = (uInt)c->zin.len;
	do {
		int r;

		c->zd->next_out = th->rbuf;
		c->zd->avail_out = sizeof(th->rbuf);
		/* one sync flush per write batch (RFC 4978 section 4) */
		r = deflate(c->zd, Z_SYNC_FLUSH);
		bu_assert(r == Z_OK || r == Z_BUF_ERROR);
		(void)bu_buf_append(&c->out, th->rbuf,
				    sizeof(th->rbuf) - c->zd->avail_out);
	} while (c->zd->avail_out == 0);
	bu_assert(c->zd->avail_in == 0);
	bu_buf_reset(&c->zin);
}

static void conn_out_compact(struct bu_conn *c)
{
	if (c->out_off == 0)
		return;
	if (c->out_off == c->out.len) {
		c->out_plain_end = 0;
		c->out_off = 0;
		if (c->out.cap > NET_KEEP_BUF) {
			/* don't keep a big buffer for an idle session */
			bu_buf_deinit(&c->out);
			bu_buf_init(&c->out, 0);
		} else {
			bu_buf_reset(&c->out);
		}
	} else if (c->out_off >= NET_READ_CHUNK && c->out_off * 2 >= c->out.len) {
		bu_buf_consume(&c->out, c->out_off);
		c->out_plain_end = c->out_plain_end > c->out_off ?
			c->out_plain_end - c->out_off : 0;
		c->out_off = 0;
	}
}

static void conn_flush(struct bu_conn *c)
{
	bool progress = false;
	size_t end;

	if (c->peer_gone) {
		bu_buf_reset(&c->out);
		bu_buf_reset(&c->zin);
		c->out_off = c->out_plain_end = 0;
		return;
	}
	if (c->tls == TLS_HANDSHAKE)
		return;
	if (c->tls != TLS_WAIT_FLUSH)
		conn_deflate(c);
	end = c->tls == TLS_WAIT_FLUSH ? c->out_plain_end : c->out.len;
	while (c->out_off < end) {
		size_t len = end - c->out_off;
		ssize_t n;

		if (c->tls == TLS_ON) {
			int r;

			if (len > 65536)
				len = 65536;
			c->ssl_wr_want_r = false;
			ERR_clear_error();
			r = SSL_write(c->ssl, c->out.data + c->out_off, (int)len);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_WRITE)
					break;
				if (e == SSL_ERROR_WANT_READ) {
					c->ssl_wr_want_r = true;
					break;
				}
				ERR_clear_error();
				c->peer_gone = true;
				break;
			}
			n = r;
		} else {
			n = send(c->fd, c->out.data + c->out_off, len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					c->peer_gone = true;
				break;
			}
		}
		c->out_off += (size_t)n;
		c->bytes_out += (uint64_t)n;
		progress = true;
	}
	if (c->peer_gone) {
		bu_buf_reset(&c->out);
		bu_buf_reset(&c->zin);
		c->out_off = c->out_plain_end = 0;
		if (!c->closing)
			conn_close_internal(c, "write error");
		return;
	}
	conn_out_compact(c);
	if (progress)
		conn_rearm_read_timeout(c);
	if (c->out_above && conn_out_pending(c) < NET_OUT_LOWAT) {
		c->out_above = false;
		if (c->opened && !c->closing && c->ops->drained != NULL)
			c->ops->drained(c->sess);
		/* drained() usually writes more: next round flushes it */
	}
}

static void conn_open(struct bu_conn *c)
{
	c->opened = true;
	c->sess = c->ops->open(c);
}

static void conn_handshake(struct bu_conn *c)
{
	int r, e;
	const char *why;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->tls = TLS_ON;
		c->hs_want_write = false;
		/* the client's first command may already sit in the SSL buffer */
		c->force_read = true;
		bu_debug("event=tls_established version=%s cipher=%s mode=%s",
			 SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
			 c->implicit_tls ? "implicit" : "starttls");
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		c->hs_want_write = false;
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		c->hs_want_write = true;
		return;
	}
	if (e == SSL_ERROR_SYSCALL)
		why = errno != 0 ? strerror(errno) : "connection closed";
	else
		why = tls_error_text();
	ERR_clear_error();
	bu_info("event=tls_failed err=%s", bu_log_q(why));
	bu_metric_add("bureau_tls_handshake_failures_total", 1);
	/* nothing more can be sent on this connection */
	c->peer_gone = true;
	conn_close_internal(c, "tls handshake failed");
}

static void conn_start_handshake(struct bu_conn *c)
{
	c->tls = TLS_HANDSHAKE;
	c->hs_want_write = false;
	/* the plaintext part is out: what remains was written after
	 * bu_conn_starttls() and goes through TLS */
	c->out_plain_end = 0;
	conn_out_compact(c);
}

static void conn_dispatch_input(struct bu_conn *c)
{
	if (!c->opened || c->closing || c->paused || c->task_inflight ||
	    !c->in_new || c->tls == TLS_WAIT_FLUSH || c->tls == TLS_HANDSHAKE)
		return;
	c->in_new = false;
	if (c->in.len == 0)
		return;
	c->ops->input(c->sess);
}

static void conn_kill(struct bu_conn *c)
{
	struct io_thread *th = c->th;

	if (c->dead)
		return;
	c->dead = true;
	pend_remove(c);
	timer_clear(th, &c->rto);
	timer_clear(th, &c->utm);
	conn_unregister(c);
	c->d_next = th->dead;
	th->dead = c;
}

/* the session is over: ops->close, counters, the log line */
static void conn_finish_session(struct bu_conn *c)
{
	struct bu_server *s = c->srv;
	int64_t dur = bu_mono_ms() - c->start_ms;

	c->finished = true;
	watch_unlink(c);
	timer_clear(c->th, &c->utm);
	if (c->opened && c->ops->close != NULL)
		c->ops->close(c->sess);
	c->sess = NULL;
	atomic_fetch_sub(&s->sessions[c->svc], 1);
	atomic_fetch_sub(&gauge_sessions[c->svc], 1);
	atomic_fetch_sub(&s->total_sessions, 1);
	bu_info("event=disconnect reason=%s duration=%lld.%03lld in=%llu out=%llu",
		bu_log_q(c->close_reason != NULL ? c->close_reason : "closed"),
		(long long)(dur / 1000), (long long)(dur % 1000),
		(unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
}

static void conn_maybe_finish(struct bu_conn *c)
{
	size_t pending;

	if (!c->closing || c->task_inflight || c->dead || c->lingering)
		return;
	if (c->tls == TLS_WAIT_FLUSH)
		pending = c->out_plain_end > c->out_off ? c->out_plain_end - c->out_off : 0;
	else if (c->tls == TLS_HANDSHAKE)
		pending = 0;
	else
		pending = conn_out_pending(c);
	if (!c->peer_gone && pending > 0)
		return;         /* still flushing; the rto timer bounds this */

	if (!c->finished)
		conn_finish_session(c);
	if (c->peer_gone || c->rd_eof || c->th->stopping_conns) {
		conn_kill(c);
		return;
	}
	/* Half-close and read until the client closes too: closing with
	 * unread input would send an RST that can destroy our last reply
	 * before the client read it. */
	if (c->tls == TLS_ON) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	(void)shutdown(c->fd, SHUT_WR);
	c->lingering = true;
	c->force_read = true;
	timer_set(c->th, &c->rto, bu_mono_ms() + NET_LINGER_MS);
	pend_add(c);
}

static void conn_linger_read(struct bu_conn *c)
{
	for (int i = 0; i < 4; i++) {
		ssize_t n = recv(c->fd, c->th->rbuf, sizeof(c->th->rbuf), 0);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		conn_kill(c);
		return;
	}
}

/* An idle session keeps small buffers only: a 30 MB APPEND or a big FETCH
 * must not leave megabytes behind in each of ten thousand IDLE sessions. */
static void buf_trim(struct bu_buf *b)
{
	size_t max = b->max;

	if (b->len == 0 && b->cap > NET_KEEP_BUF) {
		bu_buf_deinit(b);
		bu_buf_init(b, max);
	}
}

static void conn_trim_buffers(struct bu_conn *c)
{
	buf_trim(&c->in);
	buf_trim(&c->zin);
	buf_trim(&c->zraw);
	if (c->out_off == c->out.len && c->out.len == 0)
		buf_trim(&c->out);
}

static bool conn_want_again(struct bu_conn *c, bool zmore)
{
	if (c->dead || c->lingering)
		return false;
	if (c->tls == TLS_WAIT_FLUSH)
		return !c->closing && !c->peer_gone && c->out_off >= c->out_plain_end;
	if (c->force_read && conn_can_read(c))
		return true;
	/* input was full and the protocol consumed, or bu_conn_compress()
	 * moved buffered bytes to zraw: inflate more */
	if (c->zi != NULL && (zmore || c->zraw.len > 0) && !c->closing &&
	    c->in.len < NET_IN_MAX)
		return true;
	return false;
}

/* Drive one connection: handshake, read, inflate, input(), flush, close. */
static void conn_process(struct bu_conn *c, uint32_t ev)
{
	bool again = false;

	if (c->dead)
		return;
	bu_log_ctx_set(c->log_ctx);
	if (c->lingering) {
		if (ev != 0 || c->force_read) {
			c->force_read = false;
			conn_linger_read(c);
		}
		bu_log_ctx_set(NULL);
		return;
	}
	if ((ev & (EPOLLERR | EPOLLHUP)) != 0 && !conn_can_read(c)) {
		/* Level-triggered HUP/ERR is reported even with an empty mask:
		 * nothing can be read now, so treat the peer as gone. */
		c->rd_eof = true;
		c->peer_gone = true;
		conn_unregister(c);
	} else if ((ev & (EPOLLERR | EPOLLHUP)) != 0) {
		ev |= EPOLLIN;
	}

	for (int round = 0; round < 8; round++) {
		bool zmore = false;

		if (c->tls == TLS_WAIT_FLUSH) {
			conn_flush(c);
			if (c->closing || c->peer_gone || c->out_off < c->out_plain_end)
				break;
			conn_start_handshake(c);
		}
		if (c->tls == TLS_HANDSHAKE) {
			if (c->peer_gone || c->closing)
				break;
			conn_handshake(c);
			if (c->tls != TLS_ON)
				break;
		}
		if (!c->opened && !c->closing)
			conn_open(c);
		if (conn_can_read(c) &&
		    ((ev & EPOLLIN) != 0 || c->force_read ||
		     (c->ssl_rd_want_w && (ev & EPOLLOUT) != 0))) {
			ev &= ~(uint32_t)EPOLLIN;
			conn_read(c);
		}
		if (c->zi != NULL && !c->closing)
			zmore = conn_inflate(c);
		conn_dispatch_input(c);
		if (c->rd_eof && !c->closing)
			conn_close_internal(c, c->peer_gone ? "connection reset" : "disconnected");
		conn_flush(c);
		again = conn_want_again(c, zmore);
		if (!again)
			break;
	}
	if (again)
		pend_add(c);
	if (c->rd_eof && !c->closing)
		conn_close_internal(c, c->peer_gone ? "connection reset" : "disconnected");
	conn_maybe_finish(c);
	if (!c->dead)
		conn_trim_buffers(c);
	if (c->lingering && c->force_read) {
		c->force_read = false;
		conn_linger_read(c);
	}
	conn_update_events(c);
	bu_log_ctx_set(NULL);
}

static void conn_free(struct bu_conn *c)
{
	struct io_thread *th = c->th;

	bu_assert(c->dead && !c->task_inflight && c->finished);
	conn_unregister(c);
	watch_unlink(c);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	close(c->fd);
	if (c->ip != NULL)
		ip_release(c->srv, c->ip);
	if (c->zd != NULL) {
		deflateEnd(c->zd);
		inflateEnd(c->zi);
		free(c->zd);
		free(c->zi);
	}
	bu_buf_deinit(&c->in);
	bu_buf_deinit(&c->out);
	bu_buf_deinit(&c->zin);
	bu_buf_deinit(&c->zraw);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		th->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	th->nconns--;
	free(c->close_reason);
	free(c->user);
	free(c);
}

/* ---- timers firing ------------------------------------------------------ */

static void listeners_add(struct io_thread *th);

static void timer_fire(struct io_thread *th, struct net_timer *t)
{
	struct bu_conn *c = t->conn;

	if (t->kind == TM_ACCEPT) {
		listeners_add(th);
		return;
	}
	bu_log_ctx_set(c->log_ctx);
	if (t->kind == TM_USER) {
		if (c->opened && !c->closing && !c->finished && c->ops->timer != NULL)
			c->ops->timer(c->sess);
	} else if (c->lingering) {
		conn_kill(c);
	} else if (c->closing) {
		/* could not flush in time: give up on the output */
		c->peer_gone = true;
	} else if (!c->opened || c->tls == TLS_WAIT_FLUSH || c->tls == TLS_HANDSHAKE) {
		/* implicit TLS or STARTTLS handshake that did not finish */
		bu_metric_add("bureau_tls_handshake_failures_total", 1);
		c->peer_gone = true;
		conn_close_internal(c, "tls handshake timeout");
	} else if (c->task_inflight) {
		/* the client is waiting for us, not idle */
		conn_rearm_read_timeout(c);
	} else if (c->ops->timeout != NULL) {
		c->ops->timeout(c->sess);
	} else {
		conn_close_internal(c, "timeout");
	}
	pend_add(c);
	bu_log_ctx_set(NULL);
}

static void timers_run(struct io_thread *th)
{
	int64_t now = bu_mono_ms();

	while (th->nheap > 0 && th->heap[0]->at <= now) {
		struct net_timer *t = th->heap[0];

		timer_clear(th, t);
		timer_fire(th, t);
	}
}

/* ---- accepting -------------------------------------------------------- */

static void listeners_add(struct io_thread *th)
{
	struct bu_server *s = th->srv;

	if (th->listeners_added || !th->accepting)
		return;
	for (int i = 0; i < s->nlisteners; i++) {
		struct epoll_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.ptr = &s->listeners[i].src;
		if (epoll_ctl(th->epfd, EPOLL_CTL_ADD, s->listeners[i].fd, &ev) < 0)
			bu_log_errno("event=epoll_ctl_failed op=add listener=%s",
				     svc_name(s, s->listeners[i].svc));
	}
	th->listeners_added = true;
}

static void listeners_remove(struct io_thread *th)
{
	struct bu_server *s = th->srv;

	if (!th->listeners_added)
		return;
	for (int i = 0; i < s->nlisteners; i++)
		(void)epoll_ctl(th->epfd, EPOLL_CTL_DEL, s->listeners[i].fd, NULL);
	th->listeners_added = false;
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t outsz,
			bool *loopback_r)
{
	*loopback_r = false;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)outsz);
		*loopback_r = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], out,
				  (socklen_t)outsz);
			*loopback_r = sin6->sin6_addr.s6_addr[12] == 127;
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, out, (socklen_t)outsz);
			*loopback_r = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
		}
	} else {
		snprintf(out, outsz, "unknown");
	}
}

static void conn_accepted(struct io_thread *th, struct net_listener *l, int fd,
			  const struct sockaddr_storage *ss)
{
	struct bu_server *s = th->srv;
	const struct bu_config *cfg = s->cfg;
	struct bu_conn *c;
	struct ip_slot *slot;
	struct epoll_event ev;
	struct sockaddr_storage local = { .ss_family = AF_UNSPEC };
	socklen_t llen = sizeof(local);
	uint8_t key[16];
	char peer[64], series[96];
	bool loopback;
	int one = 1;

	format_peer(ss, peer, sizeof(peer), &loopback);
	ip_key(ss, key);
	slot = ip_acquire(s, key, cfg->max_sessions_per_ip);
	if (slot == NULL) {
		/* the protocol has not greeted: just close, and say why here */
		bu_info("event=reject reason=too_many_sessions_per_ip svc=%s ip=%s limit=%d",
			svc_name(s, l->svc), peer, cfg->max_sessions_per_ip);
		snprintf(series, sizeof(series),
			 "bureau_connections_rejected_total{proto=\"%s\",reason=\"per_ip\"}",
			 svc_name(s, l->svc));
		bu_metric_add(series, 1);
		close(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));

	c = bu_malloc(sizeof(*c));
	c->src.kind = EV_CONN;
	c->id = atomic_fetch_add(&next_conn_id, 1);
	c->fd = fd;
	c->th = th;
	c->srv = s;
	c->svc = l->svc;
	c->ops = s->ops[l->svc];
	memcpy(&c->peer_sa, ss, sizeof(*ss));
	memcpy(c->peer, peer, sizeof(c->peer));
	c->loopback = loopback;
	c->ip = slot;
	c->local_port = l->port;
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0) {
		if (local.ss_family == AF_INET)
			c->local_port = ntohs(((struct sockaddr_in *)&local)->sin_port);
		else if (local.ss_family == AF_INET6)
			c->local_port = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
	}
	bu_buf_init(&c->in, NET_IN_MAX);
	bu_buf_init(&c->out, 0);
	bu_buf_init(&c->zin, 0);
	bu_buf_init(&c->zraw, 0);
	c->rto.idx = -1;
	c->rto.kind = TM_READ;
	c->rto.conn = c;
	c->utm.idx = -1;
	c->utm.kind = TM_USER;
	c->utm.conn = c;
	c->start_ms = bu_mono_ms();
	conn_build_log_ctx(c);

	c->next = th->conns;
	if (th->conns != NULL)
		th->conns->prev = c;
	th->conns = c;
	th->nconns++;

	atomic_fetch_add(&s->sessions[c->svc], 1);
	atomic_fetch_add(&gauge_sessions[c->svc], 1);
	atomic_fetch_add(&s->total_sessions, 1);
	snprintf(series, sizeof(series), "bureau_connections_total{proto=\"%s\"}",
		 svc_name(s, c->svc));
	bu_metric_add(series, 1);

	bu_log_ctx_set(c->log_ctx);
	bu_info("event=connect svc=%s port=%d", svc_name(s, c->svc), c->local_port);
	bu_log_ctx_set(NULL);

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &c->src;
	if (epoll_ctl(th->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		bu_log_errno("event=epoll_ctl_failed op=add");
		c->peer_gone = true;
		conn_close_internal(c, "internal error");
	} else {
		c->registered = true;
		c->ev_mask = EPOLLIN;
	}
	/* until the protocol sets its own (and bounds the TLS handshake) */
	c->timeout_s = cfg->preauth_timeout > 0 ? cfg->preauth_timeout : 0;
	conn_rearm_read_timeout(c);

	if (cfg->svc[c->svc].tls == BU_TLS_IMPLICIT && !c->closing) {
		c->implicit_tls = true;
		c->ssl = tls_new_ssl(s);
		if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
			bu_log_ctx_set(c->log_ctx);
			bu_error("event=tls_unavailable svc=%s hint=\"no certificate loaded\"",
				 svc_name(s, c->svc));
			bu_log_ctx_set(NULL);
			c->peer_gone = true;
			conn_close_internal(c, "tls not configured");
		} else {
			SSL_set_accept_state(c->ssl);
			c->tls = TLS_HANDSHAKE;
		}
	}
	/* opens the session (or starts the handshake) and flushes the greeting */
	conn_process(c, 0);
}

static void listener_accept(struct io_thread *th, struct net_listener *l)
{
	for (int i = 0; i < 64 && th->accepting; i++) {
		struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_accepted(th, l, fd, &ss);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* out of descriptors: stop accepting for a moment
			 * rather than spin on a readable listener */
			if (bu_mono_ms() - th->last_emfile_log > 60000) {
				th->last_emfile_log = bu_mono_ms();
				bu_log_errno("event=accept_paused svc=%s hint=\"raise the open files limit\"",
					     svc_name(th->srv, l->svc));
			}
			listeners_remove(th);
			timer_set(th, &th->accept_tm, bu_mono_ms() + 500);
			return;
		default:
			bu_log_errno("event=accept_failed svc=%s", svc_name(th->srv, l->svc));
			return;
		}
	}
}

/* ---- mailbox ---------------------------------------------------------- */

static void thread_wake(struct io_thread *th)
{
	uint64_t one = 1;

	while (write(th->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void net_post_done(struct io_thread *th, struct bu_task *t)
{
	t->next = NULL;
	pthread_mutex_lock(&th->mu);
	if (th->done_tail != NULL)
		th->done_tail->next = t;
	else
		th->done_head = t;
	th->done_tail = t;
	pthread_mutex_unlock(&th->mu);
	thread_wake(th);
}

static void thread_post_ctl(struct io_thread *th, unsigned ctl)
{
	pthread_mutex_lock(&th->mu);
	th->ctl |= ctl;
	pthread_mutex_unlock(&th->mu);
	thread_wake(th);
}

static void thread_task_done(struct io_thread *th, struct bu_task *t)
{
	struct bu_conn *c = t->conn;
	struct bu_server *s = th->srv;

	bu_assert(c != NULL && c->th == th && c->task_inflight);
	c->task_inflight = false;
	bu_metric_observe("bureau_task_seconds", s->task_labels[c->svc],
			  (double)(bu_mono_us() - t->submitted_us) / 1e6);
	bu_log_ctx_set(c->log_ctx);
	t->done(t, c);          /* frees t */
	bu_log_ctx_set(NULL);
	if (!c->task_inflight && c->in.len > 0)
		c->in_new = true;
	pend_add(c);
}

static void thread_notify(struct io_thread *th, int64_t account, int64_t coll)
{
	struct bu_conn **list = NULL;
	size_t n = 0, cap = 0;

	/* collect first: notify() may unwatch, which edits the lists */
	for (unsigned b = 0; b < NET_WATCH_BUCKETS; b++) {
		if (account != 0 && b != watch_hash(account))
			continue;
		for (struct bu_conn *c = th->watch[b]; c != NULL; c = c->w_next) {
			if (account != 0 && c->watch_account != account)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				list = bu_realloc(list, bu_size_mul(cap, sizeof(struct bu_conn *)));
			}
			list[n++] = c;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct bu_conn *c = list[i];
		int64_t acc = c->watch_account;

		/* conns are freed only at the end of the loop iteration */
		if (acc == 0 || (account != 0 && acc != account) || c->dead ||
		    c->closing || c->finished || !c->opened || c->ops->notify == NULL)
			continue;
		bu_log_ctx_set(c->log_ctx);
		c->ops->notify(c->sess, acc, account != 0 ? coll : 0);
		bu_log_ctx_set(NULL);
		pend_add(c);
	}
	free(list);
}

static void thread_ack(struct bu_server *s)
{
	pthread_mutex_lock(&s->ack_mu);
	s->acks++;
	pthread_cond_broadcast(&s->ack_cv);
	pthread_mutex_unlock(&s->ack_mu);
}

static void thread_mailbox(struct io_thread *th)
{
	struct bu_task *done;
	struct notify_msg *ntf;
	unsigned ctl;
	uint64_t cnt;

	while (read(th->evfd, &cnt, sizeof(cnt)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&th->mu);
	done = th->done_head;
	th->done_head = th->done_tail = NULL;
	ntf = th->ntf_head;
	th->ntf_head = th->ntf_tail = NULL;
	ctl = th->ctl;
	th->ctl = 0;
	pthread_mutex_unlock(&th->mu);

	if (ctl & CTL_STOP_ACCEPT) {
		th->accepting = false;
		timer_clear(th, &th->accept_tm);
		listeners_remove(th);
		thread_ack(th->srv);
	}
	while (done != NULL) {
		struct bu_task *next = done->next;

		thread_task_done(th, done);
		done = next;
	}
	while (ntf != NULL) {
		struct notify_msg *next = ntf->next;

		thread_notify(th, ntf->account_id, ntf->collection_id);
		free(ntf);
		ntf = next;
	}
	if (ctl & CTL_CLOSE_ALL) {
		th->stopping_conns = true;
		for (struct bu_conn *c = th->conns; c != NULL; c = c->next) {
			if (c->dead)
				continue;
			if (c->lingering) {
				conn_kill(c);
				continue;
			}
			bu_log_ctx_set(c->log_ctx);
			if (c->closing)
				timer_set(th, &c->rto, bu_mono_ms() + NET_SHUTDOWN_FLUSH_MS);
			else
				conn_close_internal(c, "shutdown");
			bu_log_ctx_set(NULL);
			pend_add(c);
		}
	}
	if (ctl & CTL_EXIT)
		th->exiting = true;
}

/* ---- the loop ------------------------------------------------------------ */

static void *io_main(void *arg)
{
	struct io_thread *th = arg;
	struct epoll_event evs[256];
	char name[16];

	tl_th = th;
	snprintf(name, sizeof(name), "bu-io-%d", th->idx);
	pthread_setname_np(pthread_self(), name);

	for (;;) {
		int timeout = -1, n;
		size_t npend;

		if (th->exiting && th->nconns == 0)
			break;
		if (th->pend_head != NULL) {
			timeout = 0;
		} else if (th->nheap > 0) {
			int64_t d = th->heap[0]->at - bu_mono_ms();

			timeout = d <= 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
		}
		n = epoll_wait(th->epfd, evs, (int)BU_N_ELEMENTS(evs), timeout);
		if (n < 0) {
			if (errno != EINTR)
				bu_log_errno("event=epoll_wait_failed");
			n = 0;
		}
		for (int i = 0; i < n; i++) {
			struct ev_src *src = evs[i].data.ptr;

			switch (src->kind) {
			case EV_WAKE:
				thread_mailbox(th);
				break;
			case EV_LISTENER:
				if (th->accepting && th->listeners_added)
					listener_accept(th, (struct net_listener *)src);
				break;
			case EV_CONN:
				conn_process((struct bu_conn *)src, evs[i].events);
				break;
			}
		}
		timers_run(th);
		/* only those pending now; re-added ones wait for the next round */
		npend = 0;
		for (struct bu_conn *c = th->pend_head; c != NULL; c = c->p_next)
			npend++;
		while (npend-- > 0 && th->pend_head != NULL) {
			struct bu_conn *c = th->pend_head;

			pend_remove(c);
			conn_process(c, 0);
		}
		while (th->dead != NULL) {
			struct bu_conn *c = th->dead;

			th->dead = c->d_next;
			conn_free(c);
		}
	}
	tl_th = NULL;
	return NULL;
}

/* ---- server ---------------------------------------------------------- */

static int parse_listen_address(const char *addr, int port,
				struct sockaddr_storage *ss, socklen_t *len_r,
				char *disp, size_t dispsz)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (addr == NULL || addr[0] == '\0' || strcmp(addr, "localhost") == 0)
		addr = "127.0.0.1";
	n = strlen(addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return -1;
	memcpy(host, addr, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len_r = sizeof(*sin);
		snprintf(disp, dispsz, "%s:%d", host, port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len_r = sizeof(*sin6);
		snprintf(disp, dispsz, "[%s]:%d", host, port);
		return 0;
	}
	return -1;
}

static int listener_open(struct bu_server *s, enum bu_service_id svc,
			 const char **error_r)
{
	const struct bu_config *cfg = s->cfg;
	const char *name = svc_name(s, svc);
	struct sockaddr_storage ss;
	socklen_t sl;
	char disp[INET6_ADDRSTRLEN + 16];
	int fd, one = 1, err;
	const char *hint = "";

	if (parse_listen_address(cfg->listen_address, cfg->svc[svc].port, &ss, &sl,
				 disp, sizeof(disp)) < 0) {
		*error_r = net_err("%s: listen.address %s is not an IPv4 or IPv6 "
				   "address; set listen.address (e.g. 127.0.0.1, ::1, 0.0.0.0)",
				   name, cfg->listen_address);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = net_err("%s: cannot create socket: %s", name, strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, SOMAXCONN) < 0) {
		err = errno;
		close(fd);
		if (err == EADDRINUSE)
			hint = "; set %s.port or stop the other server";
		else if (err == EACCES)
			hint = "; ports below 1024 need root or CAP_NET_BIND_SERVICE, or set %s.port";
		else if (err == EADDRNOTAVAIL)
			hint = "; set listen.address to an address of this host";
		{
			char h[160];

			snprintf(h, sizeof(h), hint, name);
			*error_r = net_err("%s: cannot listen on %s: %s%s", name, disp,
					   strerror(err), h);
		}
		return -1;
	}
	s->listeners[s->nlisteners].src.kind = EV_LISTENER;
	s->listeners[s->nlisteners].fd = fd;
	s->listeners[s->nlisteners].svc = svc;
	s->listeners[s->nlisteners].port = cfg->svc[svc].port;
	s->nlisteners++;
	return 0;
}

static void listeners_close(struct bu_server *s)
{
	if (s->listeners_closed)
		return;
	for (int i = 0; i < s->nlisteners; i++)
		close(s->listeners[i].fd);
	s->listeners_closed = true;
}

struct bu_server *bu_server_create(const struct bu_server_params *p, const char **error_r)
{
	struct bu_server *s;

	/* writes to a vanished peer return EPIPE instead of killing us */
	signal(SIGPIPE, SIG_IGN);

	s = bu_malloc(sizeof(*s));
	s->cfg = p->cfg;
	memcpy(s->ops, p->ops, sizeof(s->ops));
	pthread_mutex_init(&s->tls_mu, NULL);
	pthread_mutex_init(&s->ack_mu, NULL);
	pthread_cond_init(&s->ack_cv, NULL);
	pthread_mutex_init(&s->ip_mu, NULL);
	pthread_mutex_init(&s->workers.mu, NULL);
	pthread_cond_init(&s->workers.cv, NULL);
	s->listeners = bu_calloc(BU_SVC_COUNT, sizeof(*s->listeners));
	for (int i = 0; i < BU_SVC_COUNT; i++) {
		snprintf(s->task_labels[i], sizeof(s->task_labels[i]), "proto=\"%s\"",
			 svc_name(s, (enum bu_service_id)i));
		if (p->ops[i] == NULL || p->cfg->svc[i].port <= 0)
			continue;
		bu_assert(p->ops[i]->open != NULL && p->ops[i]->input != NULL);
		if (listener_open(s, (enum bu_service_id)i, error_r) < 0) {
			bu_server_destroy(&s);
			return NULL;
		}
	}
	return s;
}

const struct bu_config *bu_server_config(const struct bu_server *s)
{
	return s->cfg;
}

int bu_server_sessions(const struct bu_server *s, enum bu_service_id svc)
{
	bu_assert(svc < BU_SVC_COUNT);
	return atomic_load(&s->sessions[svc]);
}

static int64_t gauge_read(void *ctx)
{
	return atomic_load((atomic_int_least64_t *)ctx);
}

static void gauges_register(struct bu_server *s)
{
	pthread_mutex_lock(&gauge_mu);
	for (int i = 0; i < BU_SVC_COUNT; i++) {
		char series[96];

		if (s->ops[i] == NULL || gauge_registered[i])
			continue;
		snprintf(series, sizeof(series), "bureau_sessions{proto=\"%s\"}",
			 svc_name(s, (enum bu_service_id)i));
		/* ctx is process-wide: the gauge stays valid after the
		 * server is destroyed */
		bu_metric_gauge_fn_register(series, gauge_read, &gauge_sessions[i]);
		gauge_registered[i] = true;
	}
	pthread_mutex_unlock(&gauge_mu);
}

static struct io_thread *thread_create(struct bu_server *s, int idx, const char **error_r)
{
	struct io_thread *th = bu_malloc(sizeof(*th));
	struct epoll_event ev;

	th->srv = s;
	th->idx = idx;
	th->wake_src.kind = EV_WAKE;
	th->accept_tm.idx = -1;
	th->accept_tm.kind = TM_ACCEPT;
	pthread_mutex_init(&th->mu, NULL);
	th->evfd = -1;
	th->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (th->epfd < 0) {
		*error_r = net_err("cannot create epoll instance: %s", strerror(errno));
		return th;
	}
	th->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (th->evfd < 0) {
		*error_r = net_err("cannot create eventfd: %s", strerror(errno));
		return th;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &th->wake_src;
	if (epoll_ctl(th->epfd, EPOLL_CTL_ADD, th->evfd, &ev) < 0) {
		*error_r = net_err("cannot register eventfd: %s", strerror(errno));
		return th;
	}
	th->accepting = true;
	listeners_add(th);
	return th;
}

static void thread_destroy(struct io_thread *th)
{
	struct notify_msg *m;

	if (th == NULL)
		return;
	bu_assert(th->conns == NULL && th->done_head == NULL);
	while ((m = th->ntf_head) != NULL) {
		th->ntf_head = m->next;
		free(m);
	}
	if (th->epfd >= 0)
		close(th->epfd);
	if (th->evfd >= 0)
		close(th->evfd);
	free(th->heap);
	pthread_mutex_destroy(&th->mu);
	free(th);
}

/* stop and join every running I/O thread (they exit once their conns are
 * gone) */
static void threads_stop(struct bu_server *s)
{
	for (int i = 0; i < s->nthreads; i++)
		if (s->threads[i] != NULL && s->threads[i]->running)
			thread_post_ctl(s->threads[i], CTL_CLOSE_ALL | CTL_EXIT);
	for (int i = 0; i < s->nthreads; i++) {
		if (s->threads[i] != NULL && s->threads[i]->running) {
			pthread_join(s->threads[i]->tid, NULL);
			s->threads[i]->running = false;
		}
	}
}

int bu_server_start(struct bu_server *s, struct bu_db *(*db_connect)(void *arg),
		    void *db_arg, const char **error_r)
{
	const struct bu_config *cfg = s->cfg;
	sigset_t all, old;
	int n;

	if (s->started || s->shut_down) {
		*error_r = "server already started";
		return -1;
	}
	n = cfg->io_threads > 0 ? cfg->io_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (workers_start(s, db_connect, db_arg, error_r) < 0)
		return -1;

	s->threads = bu_calloc((size_t)n, sizeof(struct io_thread *));
	s->nthreads = n;
	for (int i = 0; i < n; i++) {
		const char *err = NULL;

		s->threads[i] = thread_create(s, i, &err);
		if (err != NULL) {
			*error_r = err;
			goto fail;
		}
	}
	/* I/O threads take no signals; the main thread handles them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < n; i++) {
		int err = pthread_create(&s->threads[i]->tid, NULL, io_main, s->threads[i]);

		if (err != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			*error_r = net_err("cannot start I/O thread: %s", strerror(err));
			goto fail;
		}
		s->threads[i]->running = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	s->started = true;
	atomic_store(&s->running, true);
	gauges_register(s);
	bu_info("event=server_started io_threads=%d workers=%d listeners=%d",
		n, s->workers.n, s->nlisteners);
	return 0;

fail:
	threads_stop(s);
	for (int i = 0; i < n; i++)
		thread_destroy(s->threads[i]);
	bu_free(&s->threads);
	s->nthreads = 0;
	workers_stop(s);
	return -1;
}

void bu_server_notify(struct bu_server *s, int64_t account_id, int64_t collection_id)
{
	if (!atomic_load(&s->running))
		return;
	for (int i = 0; i < s->nthreads; i++) {
		struct io_thread *th = s->threads[i];
		struct notify_msg *m = bu_malloc(sizeof(*m));

		m->account_id = account_id;
		m->collection_id = collection_id;
		pthread_mutex_lock(&th->mu);
		if (th->ntf_tail != NULL)
			th->ntf_tail->next = m;
		else
			th->ntf_head = m;
		th->ntf_tail = m;
		pthread_mutex_unlock(&th->mu);
		thread_wake(th);
	}
}

void bu_server_shutdown(struct bu_server *s, int grace_s)
{
	int64_t deadline;

	if (s->shut_down)
		return;
	s->shut_down = true;
	if (!s->started) {
		listeners_close(s);
		return;
	}
	atomic_store(&s->stopping, true);

	/* stop accepting on every thread before closing the listeners, so
	 * that no thread is inside accept() on a closed descriptor */
	pthread_mutex_lock(&s->ack_mu);
	s->acks = 0;
	pthread_mutex_unlock(&s->ack_mu);
	for (int i = 0; i < s->nthreads; i++)
		thread_post_ctl(s->threads[i], CTL_STOP_ACCEPT);
	pthread_mutex_lock(&s->ack_mu);
	while (s->acks < s->nthreads)
		pthread_cond_wait(&s->ack_cv, &s->ack_mu);
	pthread_mutex_unlock(&s->ack_mu);
	listeners_close(s);

	bu_info("event=shutdown sessions=%d grace=%d", atomic_load(&s->total_sessions),
		grace_s);
	deadline = bu_mono_ms() + (int64_t)(grace_s > 0 ? grace_s : 0) * 1000;
	while (atomic_load(&s->total_sessions) > 0 && bu_mono_ms() < deadline)
		usleep(20 * 1000);

	atomic_store(&s->running, false);
	threads_stop(s);
	/* every conn is gone, so no task is in flight for one; run what
	 * bu_worker_call queued and stop */
	workers_stop(s);
	bu_info("event=shutdown_done");
}

void bu_server_destroy(struct bu_server **sp)
{
	struct bu_server *s = *sp;

	if (s == NULL)
		return;
	bu_server_shutdown(s, 0);
	for (int i = 0; i < s->nthreads; i++)
		thread_destroy(s->threads[i]);
	free(s->threads);
	listeners_close(s);
	free(s->listeners);
	tls_free_ctx(s);
	for (int i = 0; i < NET_IP_BUCKETS; i++)
		bu_assert(s->ip_tab[i] == NULL);
	pthread_mutex_destroy(&s->tls_mu);
	pthread_mutex_destroy(&s->ack_mu);
	pthread_cond_destroy(&s->ack_cv);
	pthread_mutex_destroy(&s->ip_mu);
	pthread_mutex_destroy(&s->workers.mu);
	pthread_cond_destroy(&s->workers.cv);
	free(s);
	*sp = NULL;
}

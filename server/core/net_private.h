/*
 * net_private.h - internals shared by net.c (I/O threads, connections),
 * tls.c (certificates, SSL_CTX) and worker.c (worker pool).
 *
 * Nothing outside server/core/{net,tls,worker}.c includes this file.
 */
#ifndef BU_NET_PRIVATE_H
#define BU_NET_PRIVATE_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <zlib.h>

#include "net.h"

/* input buffer maximum: large enough for an IMAP literal to be streamed
 * through by the protocol, which consumes as it goes */
#define NET_IN_MAX (1024 * 1024)
/* ops->drained is called when the queue falls below this after having
 * been at or above it; producers stop at NET_OUT_HIWAT */
#define NET_OUT_LOWAT BU_CONN_OUT_LOWAT
#define NET_OUT_HIWAT BU_CONN_OUT_HIWAT
/* compressed input waiting to be inflated */
#define NET_ZRAW_MAX (256 * 1024)
/* one read(2)/SSL_read per round, into the thread's scratch buffer */
#define NET_READ_CHUNK (64 * 1024)
/* how long a closing conn may take to flush its output */
#define NET_CLOSE_FLUSH_MS 10000
#define NET_SHUTDOWN_FLUSH_MS 1000
/* how long we read and discard after our half-close (avoids an RST that
 * would destroy the last reply before the client read it) */
#define NET_LINGER_MS 2000
/* buffers larger than this are freed when they empty */
#define NET_KEEP_BUF (16 * 1024)
#define NET_WATCH_BUCKETS 1024
#define NET_IP_BUCKETS 4096

enum ev_kind { EV_CONN = 1, EV_LISTENER, EV_WAKE };

/* first member of everything registered with epoll */
struct ev_src {
	enum ev_kind kind;
};

struct net_listener {
	struct ev_src src;
	int fd;
	enum bu_service_id svc;
	int port;
};

/* timer entry, embedded in its owner; idx < 0 when not armed */
enum tm_kind { TM_READ, TM_USER, TM_ACCEPT };
struct net_timer {
	int64_t at;               /* bu_mono_ms() deadline */
	int idx;
	enum tm_kind kind;
	struct bu_conn *conn;     /* NULL for TM_ACCEPT */
};

struct notify_msg {
	struct notify_msg *next;
	int64_t account_id;
	int64_t collection_id;
};

/* control requests posted to an I/O thread */
#define CTL_STOP_ACCEPT 0x1u
#define CTL_CLOSE_ALL 0x2u
#define CTL_EXIT 0x4u

struct io_thread {
	struct bu_server *srv;
	int idx;
	pthread_t tid;
	bool running;
	int epfd;
	int evfd;
	struct ev_src wake_src;

	/* mailbox: written by any thread under mu, then evfd is signalled */
	pthread_mutex_t mu;
	struct bu_task *done_head, *done_tail;
	struct notify_msg *ntf_head, *ntf_tail;
	unsigned ctl;

	/* everything below belongs to the thread itself */
	struct bu_conn *conns;        /* all conns, doubly linked */
	int nconns;
	struct bu_conn *pend_head, *pend_tail;
	struct bu_conn *dead;
	struct net_timer **heap;
	size_t nheap, capheap;
	struct bu_conn *watch[NET_WATCH_BUCKETS];
	bool accepting;
	bool listeners_added;
	bool exiting;
	bool stopping_conns;
	struct net_timer accept_tm;
	int64_t last_emfile_log;
	uint8_t rbuf[NET_READ_CHUNK];
};

enum tls_state { TLS_OFF, TLS_WAIT_FLUSH, TLS_HANDSHAKE, TLS_ON };

struct ip_slot;

struct bu_conn {
	struct ev_src src;
	uint64_t id;
	int fd;
	struct io_thread *th;
	struct bu_server *srv;
	enum bu_service_id svc;
	const struct bu_proto_ops *ops;
	void *sess;

	struct sockaddr_storage peer_sa;
	char peer[64];
	int local_port;
	bool loopback;
	struct ip_slot *ip;

	/* state */
	bool opened;          /* ops->open returned */
	bool finished;        /* ops->close called, session counters released */
	bool closing;
	bool paused;          /* by the protocol */
	bool task_inflight;
	bool in_new;          /* input arrived or resume since last input() */
	bool rd_eof;
	bool peer_gone;       /* write error / hangup: nothing more to send */
	bool lingering;
	bool dead;            /* on the thread's dead list */
	bool registered;      /* fd in epoll */
	bool pending;         /* on the thread's pending list */
	bool in_callback;
	bool out_above;       /* queue was >= NET_OUT_LOWAT */
	bool force_read;      /* try a read without an epoll event */
	uint32_t ev_mask;

	struct bu_buf in;
	struct bu_buf out;    /* bytes for the wire (below TLS) */
	size_t out_off;       /* written part of out */
	size_t out_plain_end; /* STARTTLS: send out[..end] before the handshake */

	/* TLS */
	SSL *ssl;
	enum tls_state tls;
	bool hs_want_write;
	bool ssl_rd_want_w;
	bool ssl_wr_want_r;
	bool implicit_tls;

	/* COMPRESS=DEFLATE */
	z_stream *zd, *zi;
	struct bu_buf zin;    /* application bytes not yet deflated */
	struct bu_buf zraw;   /* compressed input not yet inflated */

	/* timers */
	int timeout_s;
	struct net_timer rto;
	struct net_timer utm;

	/* watch */
	int64_t watch_account;
	struct bu_conn *w_next, *w_prev;

	/* lists */
	struct bu_conn *next, *prev;          /* th->conns */
	struct bu_conn *p_next, *p_prev;      /* th->pend */
	struct bu_conn *d_next;               /* th->dead */

	/* stats and logging */
	int64_t start_ms;
	uint64_t bytes_in, bytes_out;
	char *close_reason;
	char *user;
	char log_ctx[256];
	char task_ctx[256];
};

struct bu_workers {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct bu_task *head, *tail;
	bool stop;
	bool started;
	int n;
	pthread_t *tids;
	struct bu_db *(*db_connect)(void *arg);
	void *db_arg;
};

struct bu_server {
	const struct bu_config *cfg;
	const struct bu_proto_ops *ops[BU_SVC_COUNT];
	struct net_listener *listeners;
	int nlisteners;
	bool listeners_closed;

	/* TLS */
	pthread_mutex_t tls_mu;
	SSL_CTX *tls_ctx;

	/* I/O threads */
	struct io_thread **threads;
	int nthreads;
	bool started;
	bool shut_down;
	atomic_bool running;          /* notifications accepted */
	atomic_bool stopping;
	pthread_mutex_t ack_mu;
	pthread_cond_t ack_cv;
	int acks;

	struct bu_workers workers;

	/* accounting */
	atomic_int sessions[BU_SVC_COUNT];
	atomic_int total_sessions;
	char task_labels[BU_SVC_COUNT][48];

	pthread_mutex_t ip_mu;
	struct ip_slot *ip_tab[NET_IP_BUCKETS];
};

/* net.c */
const char *net_err(const char *fmt, ...) BU_PRINTF(1, 2);
void net_post_done(struct io_thread *th, struct bu_task *t);
bool net_on_io_thread(void);

/* tls.c */
SSL *tls_new_ssl(struct bu_server *s);
void tls_free_ctx(struct bu_server *s);
/* last OpenSSL error as text (thread-local buffer); clears the queue */
const char *tls_error_text(void);

/* worker.c */
int workers_start(struct bu_server *s, struct bu_db *(*db_connect)(void *arg),
		  void *db_arg, const char **error_r);
void workers_push(struct bu_server *s, struct bu_task *t);
void workers_stop(struct bu_server *s);

#endif

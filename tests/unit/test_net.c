/*
 * test_net.c - I/O threads, connections, TLS, compression, tasks and
 * notifications, exercised over real loopback sockets.
 *
 * The server runs a small line protocol ("echo") defined below; clients are
 * plain blocking sockets and OpenSSL / zlib client code written here, so
 * what goes over the wire is checked independently of the server's own
 * buffering code.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <zlib.h>

#include "server/core/config.h"
#include "server/core/log.h"
#include "server/core/metrics.h"
#include "server/core/net.h"

static atomic_int failures;

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			atomic_fetch_add(&failures, 1);                       \
		}                                                             \
	} while (0)

#define CHECK_STR(got, want)                                                  \
	do {                                                                  \
		const char *g_ = (got), *w_ = (want);                         \
		if (g_ == NULL || strcmp(g_, w_) != 0) {                      \
			fprintf(stderr, "FAIL %s:%d: got \"%s\", want \"%s\"\n", \
				__FILE__, __LINE__, g_ ? g_ : "(null)", w_);  \
			atomic_fetch_add(&failures, 1);                       \
		}                                                             \
	} while (0)

/* ====================================================================== */
/* the server side: a line protocol                                         */
/* ====================================================================== */

static atomic_int n_open, n_close, n_drained, n_timeouts;
static atomic_int task_on_io_thread;    /* run() found itself on an I/O thread */
static atomic_int done_wrong_thread;

struct echo_sess {
	struct bu_conn *c;
	pthread_t io_thread;
	size_t big_left;       /* "big": bytes still to produce */
	size_t big_pos;
	size_t sink_left;      /* "sink": raw bytes still to swallow */
	size_t sink_total;
	uint32_t sink_sum;
	bool pause_timer;
};

struct echo_task {
	struct bu_task t;
	struct echo_sess *s;
	int sleep_ms;
	pthread_t worker;
};

static char big_byte(size_t i)
{
	return (char)('a' + (i * 7 + i / 13) % 26);
}

static void echo_big_produce(struct echo_sess *s)
{
	char chunk[8192];

	while (s->big_left > 0 && bu_conn_out_pending(s->c) < 256 * 1024) {
		size_t n = s->big_left < sizeof(chunk) ? s->big_left : sizeof(chunk);

		for (size_t i = 0; i < n; i++)
			chunk[i] = big_byte(s->big_pos + i);
		bu_conn_write(s->c, chunk, n);
		s->big_pos += n;
		s->big_left -= n;
		if (s->big_left == 0)
			bu_conn_puts(s->c, "\r\nbig done\r\n");
	}
}

static void *echo_open(struct bu_conn *c)
{
	struct echo_sess *s = bu_malloc(sizeof(*s));

	s->c = c;
	s->io_thread = pthread_self();
	atomic_fetch_add(&n_open, 1);
	bu_conn_set_timeout(c, 30);
	bu_conn_puts(c, "* hello\r\n");
	return s;
}

static void task_run(struct bu_task *t, struct bu_db *db)
{
	struct echo_task *et = (struct echo_task *)t;

	(void)db;
	et->worker = pthread_self();
	if (pthread_equal(et->worker, et->s->io_thread))
		atomic_fetch_add(&task_on_io_thread, 1);
	usleep((useconds_t)et->sleep_ms * 1000);
}

static void task_done(struct bu_task *t, struct bu_conn *c)
{
	struct echo_task *et = (struct echo_task *)t;

	if (!pthread_equal(pthread_self(), et->s->io_thread) || et->s->c != c)
		atomic_fetch_add(&done_wrong_thread, 1);
	if (!bu_conn_closing(c))
		bu_conn_printf(c, "worked %d\r\n", et->sleep_ms);
	free(et);
}

static void echo_submit(struct echo_sess *s, int ms)
{
	struct echo_task *et = bu_malloc(sizeof(*et));

	et->t.run = task_run;
	et->t.done = task_done;
	et->s = s;
	et->sleep_ms = ms;
	bu_conn_submit(s->c, &et->t);
}

static void echo_input(void *p)
{
	struct echo_sess *s = p;
	struct bu_buf *in = bu_conn_in(s->c);

	for (;;) {
		char line[512];
		uint8_t *nl;
		size_t n, len;

		if (bu_conn_closing(s->c))
			return;
		if (s->sink_left > 0) {
			n = in->len < s->sink_left ? in->len : s->sink_left;
			for (size_t i = 0; i < n; i++)
				s->sink_sum = s->sink_sum * 31 + in->data[i];
			bu_buf_consume(in, n);
			s->sink_left -= n;
			if (s->sink_left > 0)
				return;
			bu_conn_printf(s->c, "sunk %zu %u\r\n", s->sink_total, s->sink_sum);
			continue;
		}
		nl = memchr(in->data, '\n', in->len);
		if (nl == NULL)
			return;
		n = (size_t)(nl - in->data) + 1;
		len = n - 1;
		if (len > 0 && in->data[len - 1] == '\r')
			len--;
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		memcpy(line, in->data, len);
		line[len] = '\0';
		bu_buf_consume(in, n);

		if (strcmp(line, "work") == 0) {
			echo_submit(s, 10);
			return;         /* input is paused until done() */
		} else if (strcmp(line, "slow") == 0) {
			echo_submit(s, 300);
			return;
		} else if (strcmp(line, "starttls") == 0) {
			bu_conn_puts(s->c, "OK starttls\r\n");
			if (bu_conn_starttls(s->c) < 0)
				bu_conn_puts(s->c, "NO starttls\r\n");
			return;
		} else if (strcmp(line, "compress") == 0) {
			bu_conn_puts(s->c, "OK compress\r\n");
			if (bu_conn_compress(s->c) < 0)
				bu_conn_puts(s->c, "NO compress\r\n");
			/* what follows in the buffer is compressed: loop on */
		} else if (strcmp(line, "close") == 0) {
			bu_conn_puts(s->c, "bye\r\n");
			bu_conn_close(s->c, "client asked");
			return;
		} else if (strncmp(line, "timeout ", 8) == 0) {
			bu_conn_set_timeout(s->c, (int)strtol(line + 8, NULL, 10));
			bu_conn_puts(s->c, "ok\r\n");
		} else if (strncmp(line, "timer ", 6) == 0) {
			s->pause_timer = false;
			bu_conn_set_timer(s->c, (int)strtol(line + 6, NULL, 10));
			bu_conn_puts(s->c, "ok\r\n");
		} else if (strncmp(line, "pause ", 6) == 0) {
			s->pause_timer = true;
			bu_conn_set_timer(s->c, (int)strtol(line + 6, NULL, 10));
			bu_conn_pause_input(s->c, true);
			bu_conn_puts(s->c, "paused\r\n");
			return;
		} else if (strncmp(line, "watch ", 6) == 0) {
			bu_conn_watch(s->c, strtoll(line + 6, NULL, 10));
			bu_conn_printf(s->c, "watching %s\r\n", line + 6);
		} else if (strcmp(line, "tls") == 0) {
			bu_conn_printf(s->c, "tls %s\r\n", bu_conn_is_tls(s->c) ? "yes" : "no");
		} else if (strcmp(line, "peer") == 0) {
			bu_conn_printf(s->c, "peer %s loopback=%d\r\n", bu_conn_peer(s->c),
				       bu_conn_is_loopback(s->c));
		} else if (strcmp(line, "port") == 0) {
			bu_conn_printf(s->c, "port %d\r\n", bu_conn_local_port(s->c));
		} else if (strncmp(line, "user ", 5) == 0) {
			bu_conn_set_log_user(s->c, line + 5);
			bu_conn_puts(s->c, "ok\r\n");
		} else if (strncmp(line, "big ", 4) == 0) {
			s->big_left = (size_t)strtol(line + 4, NULL, 10);
			s->big_pos = 0;
			echo_big_produce(s);
		} else if (strncmp(line, "sink ", 5) == 0) {
			s->sink_total = s->sink_left = (size_t)strtol(line + 5, NULL, 10);
			s->sink_sum = 0;
		} else {
			bu_conn_printf(s->c, "echo: %s\r\n", line);
		}
	}
}

static void echo_drained(void *p)
{
	struct echo_sess *s = p;

	atomic_fetch_add(&n_drained, 1);
	echo_big_produce(s);
}

static void echo_notify(void *p, int64_t account, int64_t coll)
{
	struct echo_sess *s = p;

	bu_conn_printf(s->c, "notify %lld %lld\r\n", (long long)account, (long long)coll);
}

static void echo_timer(void *p)
{
	struct echo_sess *s = p;

	if (s->pause_timer) {
		s->pause_timer = false;
		bu_conn_pause_input(s->c, false);
	} else {
		bu_conn_puts(s->c, "timer fired\r\n");
	}
}

static void echo_timeout(void *p)
{
	struct echo_sess *s = p;

	atomic_fetch_add(&n_timeouts, 1);
	bu_conn_puts(s->c, "* timeout\r\n");
	bu_conn_close(s->c, "idle timeout");
}

static void echo_close(void *p)
{
	atomic_fetch_add(&n_close, 1);
	free(p);
}

static const struct bu_proto_ops echo_ops = {
	.name = "echo",
	.open = echo_open,
	.input = echo_input,
	.drained = echo_drained,
	.notify = echo_notify,
	.timer = echo_timer,
	.timeout = echo_timeout,
	.close = echo_close,
};

/* ====================================================================== */
/* the client side                                                          */
/* ====================================================================== */

static char cert_path[512];

struct cli {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	z_stream *zd, *zi;
	uint8_t raw[65536];
	size_t rawlen;           /* compressed bytes not yet inflated */
	uint8_t buf[1 << 17];
	size_t len;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int free_port(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
		perror("free_port");
		exit(1);
	}
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static struct cli *cli_connect_af(int af, int port)
{
	struct cli *c = calloc(1, sizeof(*c));
	struct timeval tv = { 5, 0 };
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	if (af == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
	}
	c->fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&ss, sl) < 0) {
		fprintf(stderr, "connect to port %d: %s\n", port, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return NULL;
	}
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}

static struct cli *cli_connect(int port)
{
	return cli_connect_af(AF_INET, port);
}

static void cli_free(struct cli *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->ctx != NULL)
		SSL_CTX_free(c->ctx);
	if (c->zd != NULL) {
		deflateEnd(c->zd);
		inflateEnd(c->zi);
		free(c->zd);
		free(c->zi);
	}
	close(c->fd);
	free(c);
}

static int cli_send_raw(struct cli *c, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, b, (int)(n > 65536 ? 65536 : n));

			if (r <= 0)
				return -1;
			w = r;
		} else {
			w = send(c->fd, b, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int cli_send(struct cli *c, const void *p, size_t n)
{
	uint8_t out[65536];

	if (c->zd == NULL)
		return cli_send_raw(c, p, n);
	c->zd->next_in = (Bytef *)p;
	c->zd->avail_in = (uInt)n;
	do {
		c->zd->next_out = out;
		c->zd->avail_out = sizeof(out);
		if (deflate(c->zd, Z_SYNC_FLUSH) == Z_STREAM_ERROR)
			return -1;
		if (cli_send_raw(c, out, sizeof(out) - c->zd->avail_out) < 0)
			return -1;
	} while (c->zd->avail_out == 0);
	return 0;
}

static int cli_puts(struct cli *c, const char *s)
{
	return cli_send(c, s, strlen(s));
}

/* bytes into c->buf; -1 on EOF / error / timeout */
static int cli_fill(struct cli *c)
{
	uint8_t tmp[16384];
	ssize_t n;

	if (c->len == sizeof(c->buf))
		return -1;
	for (;;) {
		if (c->zi != NULL && c->rawlen > 0) {
			size_t room = sizeof(c->buf) - c->len, used, produced;
			int r;

			c->zi->next_in = c->raw;
			c->zi->avail_in = (uInt)c->rawlen;
			c->zi->next_out = c->buf + c->len;
			c->zi->avail_out = (uInt)room;
			r = inflate(c->zi, Z_SYNC_FLUSH);
			if (r != Z_OK && r != Z_BUF_ERROR)
				return -1;
			used = c->rawlen - c->zi->avail_in;
			produced = room - c->zi->avail_out;
			memmove(c->raw, c->raw + used, c->rawlen - used);
			c->rawlen -= used;
			c->len += produced;
			if (produced > 0)
				return 0;
		}
		if (c->ssl != NULL) {
			int r = SSL_read(c->ssl, tmp, sizeof(tmp));

			if (r <= 0)
				return -1;
			n = r;
		} else {
			n = recv(c->fd, tmp, sizeof(tmp), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
		}
		if (c->zi == NULL) {
			memcpy(c->buf + c->len, tmp, (size_t)n);
			c->len += (size_t)n;
			return 0;
		}
		if (c->rawlen + (size_t)n > sizeof(c->raw))
			return -1;
		memcpy(c->raw + c->rawlen, tmp, (size_t)n);
		c->rawlen += (size_t)n;
	}
}

/* one line without CRLF into a static-per-call buffer; NULL on EOF */
static const char *cli_line(struct cli *c, char *out, size_t outsz)
{
	for (;;) {
		uint8_t *nl = memchr(c->buf, '\n', c->len);

		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf) + 1, len = n - 1;

			if (len > 0 && c->buf[len - 1] == '\r')
				len--;
			if (len >= outsz)
				len = outsz - 1;
			memcpy(out, c->buf, len);
			out[len] = '\0';
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			return out;
		}
		if (cli_fill(c) < 0)
			return NULL;
	}
}

static const char *cli_read_line(struct cli *c)
{
	static __thread char line[1024];

	return cli_line(c, line, sizeof(line));
}

/* exactly n bytes */
static int cli_read_n(struct cli *c, uint8_t *out, size_t n)
{
	while (c->len < n) {
		size_t take = c->len;

		memcpy(out, c->buf, take);
		out += take;
		n -= take;
		c->len = 0;
		if (cli_fill(c) < 0)
			return -1;
	}
	memcpy(out, c->buf, n);
	/* n <= c->len here, whatever the checker's path says */
	/* cppcheck-suppress pointerOutOfBounds */
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return 0;
}

/* true when the server closed (EOF or reset) without sending a line */
static bool cli_eof(struct cli *c)
{
	return cli_read_line(c) == NULL;
}

static int cli_starttls(struct cli *c)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL)
		return -1;
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(c->ctx, cert_path, NULL) != 1)
		return -1;
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	/* verify the name as a client would: the self-signed cert names
	 * localhost in its subjectAltName */
	SSL_set1_host(c->ssl, "localhost");
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	if (SSL_connect(c->ssl) != 1) {
		ERR_print_errors_fp(stderr);
		return -1;
	}
	return 0;
}

static void cli_compress(struct cli *c)
{
	c->zd = calloc(1, sizeof(*c->zd));
	c->zi = calloc(1, sizeof(*c->zi));
	deflateInit2(c->zd, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	inflateInit2(c->zi, -15);
	/* what arrived after the OK line is already compressed */
	memcpy(c->raw, c->buf, c->len);
	c->rawlen = c->len;
	c->len = 0;
}

/* ====================================================================== */
/* tests                                                                    */
/* ====================================================================== */

static struct bu_server *srv;
static struct bu_config cfg;
static int port_plain, port_tls;

static void expect_line(struct cli *c, const char *want)
{
	CHECK_STR(cli_read_line(c), want);
}

static struct cli *connect_greeted(int port)
{
	struct cli *c = cli_connect(port);

	CHECK(c != NULL);
	if (c != NULL)
		expect_line(c, "* hello");
	return c;
}

static void test_echo(void)
{
	struct cli *c = connect_greeted(port_plain);

	if (c == NULL)
		return;
	cli_puts(c, "hello world\r\n");
	expect_line(c, "echo: hello world");
	cli_puts(c, "peer\r\n");
	expect_line(c, "peer 127.0.0.1 loopback=1");
	cli_puts(c, "port\r\n");
	{
		char want[32];

		snprintf(want, sizeof(want), "port %d", port_plain);
		expect_line(c, want);
	}
	cli_puts(c, "tls\r\n");
	expect_line(c, "tls no");
	cli_puts(c, "user alice\"\x01\r\n");   /* sanitised in the log context */
	expect_line(c, "ok");
	/* a line split over several segments */
	cli_puts(c, "spl");
	usleep(20000);
	cli_puts(c, "it\r");
	usleep(20000);
	cli_puts(c, "\n");
	expect_line(c, "echo: split");
	cli_puts(c, "close\r\n");
	expect_line(c, "bye");
	CHECK(cli_eof(c));
	cli_free(c);
}

static void test_task(void)
{
	struct cli *c = connect_greeted(port_plain);
	int64_t t0;

	if (c == NULL)
		return;
	t0 = now_ms();
	cli_puts(c, "work\r\n");
	expect_line(c, "worked 10");
	CHECK(now_ms() - t0 >= 10);
	/* input is paused while the task runs: the next line is answered
	 * after the task's reply, in order */
	cli_puts(c, "work\r\nafter\r\nwork\r\nlast\r\n");
	expect_line(c, "worked 10");
	expect_line(c, "echo: after");
	expect_line(c, "worked 10");
	expect_line(c, "echo: last");
	/* a line that arrives while the task runs waits for it */
	cli_puts(c, "slow\r\n");
	usleep(50 * 1000);
	cli_puts(c, "during\r\n");
	expect_line(c, "worked 300");
	expect_line(c, "echo: during");
	cli_free(c);
	CHECK(atomic_load(&task_on_io_thread) == 0);
	CHECK(atomic_load(&done_wrong_thread) == 0);
}

static void test_pipelined(void)
{
	struct cli *c = connect_greeted(port_plain);
	struct bu_buf b;
	char want[64];
	int bad = 0;

	if (c == NULL)
		return;
	bu_buf_init(&b, 0);
	for (int i = 0; i < 3000; i++)
		bu_buf_printf(&b, "line %d\r\n", i);
	cli_send(c, b.data, b.len);
	for (int i = 0; i < 3000; i++) {
		const char *l = cli_read_line(c);

		snprintf(want, sizeof(want), "echo: line %d", i);
		if (l == NULL || strcmp(l, want) != 0) {
			bad++;
			if (l == NULL)
				break;
		}
	}
	CHECK(bad == 0);
	bu_buf_deinit(&b);
	cli_free(c);
}

/* 200 clients at once, from 20 threads */
#define CONC_THREADS 20
#define CONC_PER_THREAD 10
static pthread_barrier_t conc_barrier;
static atomic_int conc_ok;

static void *conc_thread(void *arg)
{
	struct cli *cs[CONC_PER_THREAD];
	int id = (int)(intptr_t)arg;
	bool ok = true;

	for (int i = 0; i < CONC_PER_THREAD; i++) {
		const char *l;

		cs[i] = cli_connect(port_plain);
		l = cs[i] != NULL ? cli_read_line(cs[i]) : NULL;
		if (l == NULL || strcmp(l, "* hello") != 0)
			ok = false;
	}
	/* all 200 are connected now */
	pthread_barrier_wait(&conc_barrier);
	pthread_barrier_wait(&conc_barrier);
	for (int round = 0; round < 3 && ok; round++) {
		for (int i = 0; i < CONC_PER_THREAD; i++) {
			char msg[64];

			snprintf(msg, sizeof(msg), "c%d-%d r%d\r\nwork\r\n", id, i, round);
			if (cs[i] == NULL || cli_puts(cs[i], msg) < 0)
				ok = false;
		}
		for (int i = 0; i < CONC_PER_THREAD && ok; i++) {
			char want[64];
			const char *l = cli_read_line(cs[i]);

			snprintf(want, sizeof(want), "echo: c%d-%d r%d", id, i, round);
			if (l == NULL || strcmp(l, want) != 0)
				ok = false;
			l = cli_read_line(cs[i]);
			if (l == NULL || strcmp(l, "worked 10") != 0)
				ok = false;
		}
	}
	for (int i = 0; i < CONC_PER_THREAD; i++)
		cli_free(cs[i]);
	if (ok)
		atomic_fetch_add(&conc_ok, 1);
	return NULL;
}

static void wait_sessions(int want, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (bu_server_sessions(srv, BU_SVC_IMAP) != want && now_ms() < end)
		usleep(5000);
}

static void test_concurrent(void)
{
	pthread_t th[CONC_THREADS];
	int base;

	/* the previous tests' clients are gone; let the server notice */
	wait_sessions(0, 3000);
	base = bu_server_sessions(srv, BU_SVC_IMAP);

	pthread_barrier_init(&conc_barrier, NULL, CONC_THREADS + 1);
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_create(&th[i], NULL, conc_thread, (void *)(intptr_t)i);
	pthread_barrier_wait(&conc_barrier);
	wait_sessions(base + CONC_THREADS * CONC_PER_THREAD, 5000);
	CHECK(bu_server_sessions(srv, BU_SVC_IMAP) == base + CONC_THREADS * CONC_PER_THREAD);
	pthread_barrier_wait(&conc_barrier);
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&conc_barrier);
	CHECK(atomic_load(&conc_ok) == CONC_THREADS);
	wait_sessions(base, 5000);
	CHECK(bu_server_sessions(srv, BU_SVC_IMAP) == base);
}

static void test_starttls(void)
{
	struct cli *c = connect_greeted(port_plain);

	if (c == NULL)
		return;
	cli_puts(c, "tls\r\n");
	expect_line(c, "tls no");
	/* a plaintext command pipelined behind STARTTLS must be dropped,
	 * not executed after the handshake (CVE-2011-0411 class) */
	cli_puts(c, "starttls\r\ninjected\r\n");
	expect_line(c, "OK starttls");
	CHECK(c->len == 0);
	CHECK(cli_starttls(c) == 0);
	cli_puts(c, "tls\r\n");
	expect_line(c, "tls yes");
	cli_puts(c, "work\r\n");
	expect_line(c, "worked 10");
	/* STARTTLS again is refused */
	cli_puts(c, "starttls\r\n");
	expect_line(c, "OK starttls");
	expect_line(c, "NO starttls");
	/* COMPRESS on top of TLS */
	cli_puts(c, "compress\r\n");
	expect_line(c, "OK compress");
	cli_compress(c);
	cli_puts(c, "zipped\r\n");
	expect_line(c, "echo: zipped");
	cli_puts(c, "close\r\n");
	expect_line(c, "bye");
	CHECK(cli_eof(c));
	cli_free(c);
}

static void test_starttls_failures(void)
{
	struct cli *c = connect_greeted(port_plain);
	int64_t t0;

	/* the client never starts the handshake: the read timeout ends it */
	if (c != NULL) {
		cli_puts(c, "timeout 1\r\n");
		expect_line(c, "ok");
		t0 = now_ms();
		cli_puts(c, "starttls\r\n");
		expect_line(c, "OK starttls");
		CHECK(cli_eof(c));
		CHECK(now_ms() - t0 >= 800 && now_ms() - t0 < 4000);
		cli_free(c);
	}
	/* plaintext instead of a ClientHello: the handshake fails, the
	 * session ends, nothing is executed */
	c = connect_greeted(port_plain);
	if (c != NULL) {
		cli_puts(c, "starttls\r\n");
		expect_line(c, "OK starttls");
		cli_puts(c, "close\r\n");
		CHECK(cli_eof(c));
		cli_free(c);
	}
}

static void test_close_flush(void)
{
	struct cli *c = connect_greeted(port_plain);
	uint8_t *buf;
	bool same = true;

	if (c == NULL)
		return;
	/* close right behind a big reply: all of it arrives before the FIN */
	cli_puts(c, "big 200000\r\nclose\r\n");
	usleep(100 * 1000);
	buf = malloc(200000);
	CHECK(cli_read_n(c, buf, 200000) == 0);
	for (size_t i = 0; i < 200000; i++)
		if (buf[i] != (uint8_t)big_byte(i)) {
			same = false;
			break;
		}
	CHECK(same);
	free(buf);
	expect_line(c, "");
	expect_line(c, "big done");
	expect_line(c, "bye");
	CHECK(cli_eof(c));
	cli_free(c);
}

static void test_implicit_tls(void)
{
	struct cli *c = cli_connect(port_tls);
	struct stat st;
	char key_path[512];

	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK(cli_starttls(c) == 0);
	expect_line(c, "* hello");
	cli_puts(c, "tls\r\n");
	expect_line(c, "tls yes");
	CHECK(SSL_version(c->ssl) >= TLS1_2_VERSION);
	/* the self-signed certificate */
	{
		X509 *x = SSL_get1_peer_certificate(c->ssl);

		CHECK(x != NULL);
		if (x != NULL) {
			char cn[256] = "";

			X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
						  cn, sizeof(cn));
			CHECK_STR(cn, "mail.test.example");
			CHECK(X509_check_host(x, "mail.test.example", 0, 0, NULL) == 1);
			CHECK(X509_check_ip_asc(x, "127.0.0.1", 0) == 1);
			CHECK(X509_check_host(x, "other.example", 0, 0, NULL) != 1);
			X509_free(x);
		}
	}
	snprintf(key_path, sizeof(key_path), "%s/tls/key.pem", cfg.state_dir);
	CHECK(stat(key_path, &st) == 0 && (st.st_mode & 0777) == 0600);
	/* a big reply through TLS */
	cli_puts(c, "big 300000\r\n");
	{
		uint8_t *buf = malloc(300000);
		bool same = true;

		CHECK(cli_read_n(c, buf, 300000) == 0);
		for (size_t i = 0; i < 300000; i++)
			if (buf[i] != (uint8_t)big_byte(i)) {
				same = false;
				break;
			}
		CHECK(same);
		free(buf);
		expect_line(c, "");
		expect_line(c, "big done");
	}
	cli_free(c);

	/* not TLS at all: the handshake fails and the conn closes */
	c = cli_connect(port_tls);
	if (c != NULL) {
		cli_puts(c, "hello\r\n");
		CHECK(cli_eof(c));
		cli_free(c);
	}
	/* silent client: closed after preauth_timeout (1 s) */
	c = cli_connect(port_tls);
	if (c != NULL) {
		int64_t t0 = now_ms();

		CHECK(cli_eof(c));
		CHECK(now_ms() - t0 >= 800 && now_ms() - t0 < 4000);
		cli_free(c);
	}
}

static void test_tls_reload(void)
{
	struct cli *c = cli_connect(port_tls), *c2;
	const char *err = NULL;

	if (c == NULL || cli_starttls(c) != 0) {
		CHECK(!"tls connect");
		cli_free(c);
		return;
	}
	expect_line(c, "* hello");
	CHECK(bu_server_tls_load(srv, &err) == 0);
	/* the session in progress keeps working on the old context */
	cli_puts(c, "still\r\n");
	expect_line(c, "echo: still");
	c2 = cli_connect(port_tls);
	CHECK(c2 != NULL && cli_starttls(c2) == 0);
	if (c2 != NULL) {
		expect_line(c2, "* hello");
		cli_free(c2);
	}
	cli_free(c);
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	if (f == NULL)
		return buf;
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* a fresh P-256 key, optionally encrypted with a passphrase */
static bool write_new_key(const char *path, bool encrypt)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	FILE *f = fopen(path, "w");
	bool ok;

	if (k == NULL || f == NULL) {
		EVP_PKEY_free(k);
		if (f != NULL)
			fclose(f);
		return false;
	}
	ok = PEM_write_PrivateKey(f, k, encrypt ? EVP_aes_128_cbc() : NULL,
				  encrypt ? (unsigned char *)"secret" : NULL,
				  encrypt ? 6 : 0, NULL, NULL) == 1;
	EVP_PKEY_free(k);
	return fclose(f) == 0 && ok;
}

/* a new TLS connection completes its handshake with the certificate in
 * verify_pem (and only with that one) */
static void expect_tls_cert(const char *verify_pem)
{
	char saved[sizeof(cert_path)];
	struct cli *c = cli_connect(port_tls);

	memcpy(saved, cert_path, sizeof(saved));
	snprintf(cert_path, sizeof(cert_path), "%s", verify_pem);
	CHECK(c != NULL && cli_starttls(c) == 0);
	if (c != NULL) {
		expect_line(c, "* hello");
		cli_free(c);
	}
	memcpy(cert_path, saved, sizeof(cert_path));
}

/* SIGHUP with a broken certificate or key: the reload fails with a message
 * that says what to fix, and the certificate in use stays in use. */
static void test_tls_reload_broken(void)
{
	char key_path[512], orig_cert[512], orig_key[512];
	char *cert_pem = read_file(cert_path);
	char *key_pem;
	const char *err = NULL;
	struct cli *c = cli_connect(port_tls);

	snprintf(key_path, sizeof(key_path), "%s/tls/key.pem", cfg.state_dir);
	snprintf(orig_cert, sizeof(orig_cert), "%s/tls/orig-cert.pem", cfg.state_dir);
	snprintf(orig_key, sizeof(orig_key), "%s/tls/orig-key.pem", cfg.state_dir);
	key_pem = read_file(key_path);
	CHECK(strstr(cert_pem, "BEGIN CERTIFICATE") != NULL);
	CHECK(write_file(orig_cert, cert_pem) && write_file(orig_key, key_pem));
	/* a session made before keeps working through all of this */
	CHECK(c != NULL && cli_starttls(c) == 0);
	expect_line(c, "* hello");

	/* not PEM at all */
	CHECK(write_file(cert_path, "this is not a certificate\n"));
	CHECK(bu_server_tls_load(srv, &err) < 0);
	CHECK(err != NULL && strstr(err, cert_path) != NULL &&
	      strstr(err, "not a PEM certificate") != NULL &&
	      strstr(err, "stays in use") != NULL && strstr(err, "SIGHUP") != NULL);
	expect_tls_cert(orig_cert);

	/* a key of another certificate */
	CHECK(write_file(cert_path, cert_pem));
	CHECK(write_new_key(key_path, false));
	err = NULL;
	CHECK(bu_server_tls_load(srv, &err) < 0);
	CHECK(err != NULL && strstr(err, "does not match") != NULL &&
	      strstr(err, "stays in use") != NULL);
	expect_tls_cert(orig_cert);

	/* a key with a passphrase: refused, never a prompt on the terminal */
	CHECK(write_new_key(key_path, true));
	err = NULL;
	CHECK(bu_server_tls_load(srv, &err) < 0);
	CHECK(err != NULL && strstr(err, key_path) != NULL &&
	      strstr(err, "passphrase") != NULL);
	expect_tls_cert(orig_cert);

	/* both files gone: a reload does not mint a self-signed pair over the
	 * certificate in use */
	CHECK(unlink(cert_path) == 0 && unlink(key_path) == 0);
	err = NULL;
	CHECK(bu_server_tls_load(srv, &err) < 0);
	CHECK(err != NULL && strstr(err, "missing") != NULL);
	CHECK(access(cert_path, F_OK) < 0);
	expect_tls_cert(orig_cert);

	/* fixed: loads again */
	CHECK(write_file(cert_path, cert_pem) && write_file(key_path, key_pem));
	CHECK(chmod(key_path, 0600) == 0);
	err = NULL;
	CHECK(bu_server_tls_load(srv, &err) == 0);
	expect_tls_cert(orig_cert);
	if (c != NULL) {
		cli_puts(c, "still\r\n");
		expect_line(c, "echo: still");
	}
	cli_free(c);
	free(cert_pem);
	bu_wipe(key_pem, strlen(key_pem));
	free(key_pem);
}

static void test_compress(void)
{
	struct cli *c = connect_greeted(port_plain);
	uint8_t cmd[256];
	z_stream z;
	size_t n;

	if (c == NULL)
		return;
	/* the client compresses right after the command's CRLF (RFC 4978
	 * section 3): send the command and compressed bytes in one segment */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): bytes, no NUL */
	memcpy(cmd, "compress\r\n", 10);
	memset(&z, 0, sizeof(z));
	deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)"early\r\n";
	z.avail_in = 7;
	z.next_out = cmd + 10;
	z.avail_out = sizeof(cmd) - 10;
	deflate(&z, Z_SYNC_FLUSH);
	n = sizeof(cmd) - z.avail_out;
	cli_send_raw(c, cmd, n);
	expect_line(c, "OK compress");
	cli_compress(c);
	/* continue the client's deflate stream from where it stopped */
	deflateEnd(c->zd);
	CHECK(deflateCopy(c->zd, &z) == Z_OK);
	deflateEnd(&z);
	expect_line(c, "echo: early");
	cli_puts(c, "ping\r\n");
	expect_line(c, "echo: ping");
	cli_puts(c, "big 1000000\r\n");
	{
		uint8_t *buf = malloc(1000000);
		bool same = true;

		CHECK(cli_read_n(c, buf, 1000000) == 0);
		for (size_t i = 0; i < 1000000; i++)
			if (buf[i] != (uint8_t)big_byte(i)) {
				same = false;
				break;
			}
		CHECK(same);
		free(buf);
		expect_line(c, "");
		expect_line(c, "big done");
	}
	/* a large compressible upload through the inflate path */
	{
		size_t total = 3 * 1000 * 1000;
		uint8_t *data = malloc(total);
		uint32_t sum = 0;
		char want[64];

		for (size_t i = 0; i < total; i++) {
			data[i] = (uint8_t)('A' + i % 7);
			sum = sum * 31 + data[i];
		}
		cli_puts(c, "sink 3000000\r\n");
		cli_send(c, data, total);
		snprintf(want, sizeof(want), "sunk %zu %u", total, sum);
		expect_line(c, want);
		free(data);
	}
	cli_puts(c, "compress\r\n");
	expect_line(c, "OK compress");
	expect_line(c, "NO compress");
	cli_free(c);
}

static void test_big_output(void)
{
	struct cli *c = connect_greeted(port_plain);
	size_t total = 5 * 1000 * 1000;
	uint8_t *buf;
	bool same = true;
	int drained0 = atomic_load(&n_drained);

	if (c == NULL)
		return;
	cli_puts(c, "big 5000000\r\n");
	usleep(200 * 1000);     /* let the server hit its high-water mark */
	buf = malloc(total);
	CHECK(cli_read_n(c, buf, total) == 0);
	for (size_t i = 0; i < total; i++)
		if (buf[i] != (uint8_t)big_byte(i)) {
			same = false;
			break;
		}
	CHECK(same);
	free(buf);
	expect_line(c, "");
	expect_line(c, "big done");
	CHECK(atomic_load(&n_drained) > drained0);
	cli_free(c);
}

struct sender {
	struct cli *c;
	const uint8_t *p;
	size_t n;
	int rc;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	s->rc = cli_send(s->c, s->p, s->n);
	return NULL;
}

/* input paused while the client keeps sending: the buffer fills, reading
 * stops, nothing is dropped */
static void test_backpressure(void)
{
	struct cli *c = connect_greeted(port_plain);
	size_t total = 4 * 1000 * 1000;
	struct bu_buf b;
	struct sender snd;
	pthread_t th;
	uint32_t sum = 0;
	size_t hdr;
	char want[64];

	if (c == NULL)
		return;
	bu_buf_init(&b, 0);
	bu_buf_printf(&b, "pause 300\r\nsink %zu\r\n", total);
	hdr = b.len;
	for (size_t i = 0; i < total; i++) {
		uint8_t ch = (uint8_t)(i * 2654435761u >> 13);

		bu_buf_append_byte(&b, ch);
		sum = sum * 31 + ch;
	}
	bu_buf_append_str(&b, "after\r\n");
	(void)hdr;
	snd.c = c;
	snd.p = b.data;
	snd.n = b.len;
	pthread_create(&th, NULL, sender_main, &snd);
	expect_line(c, "paused");
	snprintf(want, sizeof(want), "sunk %zu %u", total, sum);
	expect_line(c, want);
	expect_line(c, "echo: after");
	pthread_join(th, NULL);
	CHECK(snd.rc == 0);
	bu_buf_deinit(&b);
	cli_free(c);
}

static void test_timers(void)
{
	struct cli *c = connect_greeted(port_plain);
	int64_t t0;

	if (c == NULL)
		return;
	t0 = now_ms();
	cli_puts(c, "timer 100\r\n");
	expect_line(c, "ok");
	expect_line(c, "timer fired");
	CHECK(now_ms() - t0 >= 90 && now_ms() - t0 < 2000);
	/* cancelled timer does not fire */
	cli_puts(c, "timer 100\r\ntimer 0\r\n");
	expect_line(c, "ok");
	expect_line(c, "ok");
	usleep(250 * 1000);
	cli_puts(c, "ping\r\n");
	expect_line(c, "echo: ping");

	/* read timeout: reset by input, then fires ops->timeout */
	t0 = now_ms();
	cli_puts(c, "timeout 1\r\n");
	expect_line(c, "ok");
	usleep(600 * 1000);
	cli_puts(c, "ping\r\n");            /* resets the timeout */
	expect_line(c, "echo: ping");
	expect_line(c, "* timeout");
	CHECK(now_ms() - t0 >= 1400 && now_ms() - t0 < 4000);
	CHECK(cli_eof(c));
	cli_free(c);
}

static void test_notify(void)
{
	struct cli *a = connect_greeted(port_plain);
	struct cli *b = connect_greeted(port_plain);
	struct cli *d = connect_greeted(port_plain);

	if (a == NULL || b == NULL || d == NULL)
		goto out;
	cli_puts(a, "watch 42\r\n");
	expect_line(a, "watching 42");
	cli_puts(b, "watch 42\r\n");
	expect_line(b, "watching 42");
	cli_puts(d, "watch 43\r\n");
	expect_line(d, "watching 43");

	bu_server_notify(srv, 42, 7);
	expect_line(a, "notify 42 7");
	expect_line(b, "notify 42 7");
	/* d watches another account: its next line is the echo */
	cli_puts(d, "ping\r\n");
	expect_line(d, "echo: ping");

	/* account 0 = everyone, with their own account and collection 0 */
	bu_server_notify(srv, 0, 0);
	expect_line(a, "notify 42 0");
	expect_line(b, "notify 42 0");
	expect_line(d, "notify 43 0");

	/* unwatch */
	cli_puts(a, "watch 0\r\n");
	expect_line(a, "watching 0");
	bu_server_notify(srv, 42, 9);
	expect_line(b, "notify 42 9");
	cli_puts(a, "ping\r\n");
	expect_line(a, "echo: ping");
out:
	cli_free(a);
	cli_free(b);
	cli_free(d);
}

static int call_fn(void *arg, struct bu_db *db)
{
	*(int *)arg = db == NULL ? 42 : -1;
	return 7;
}

static void *caller_main(void *arg)
{
	int x = 0;
	int rc = bu_worker_call(srv, call_fn, &x);

	*(int *)arg = rc == 7 && x == 42;
	return NULL;
}

static void test_worker_call(void)
{
	pthread_t th[8];
	int ok[8];

	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, caller_main, &ok[i]);
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK(ok[i] == 1);
	}
}

static void test_peer_close(void)
{
	struct cli *c = connect_greeted(port_plain);
	int base = bu_server_sessions(srv, BU_SVC_IMAP);

	if (c == NULL)
		return;
	/* the client vanishes while a task is in flight */
	cli_puts(c, "slow\r\n");
	usleep(50 * 1000);
	cli_free(c);
	wait_sessions(base - 1, 3000);
	CHECK(bu_server_sessions(srv, BU_SVC_IMAP) == base - 1);
}

static void test_metrics(void)
{
	struct bu_buf b;
	const char *m;

	bu_buf_init(&b, 0);
	bu_metrics_render(&b);
	m = bu_buf_cstr(&b);
	CHECK(strstr(m, "bureau_sessions{proto=\"imap\"}") != NULL);
	CHECK(strstr(m, "bureau_connections_total{proto=\"imap\"}") != NULL);
	CHECK(strstr(m, "bureau_connections_total{proto=\"imaps\"}") != NULL);
	{
		const char *h = strstr(m, "\nbureau_tls_handshake_failures_total ");

		/* garbage on the imaps port, garbage after STARTTLS, two
		 * handshake timeouts */
		CHECK(h != NULL && (int)strtol(h + 37, NULL, 10) >= 4);
	}
	CHECK(strstr(m, "bureau_task_seconds") != NULL);
	bu_buf_deinit(&b);
}

static void set(struct bu_config *c, const char *key, const char *value)
{
	const char *err = NULL;

	if (bu_config_set(c, key, value, &err) < 0) {
		fprintf(stderr, "config %s=%s: %s\n", key, value, err);
		exit(1);
	}
}

static void set_int(struct bu_config *c, const char *key, int v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", v);
	set(c, key, buf);
}

static void test_per_ip_limit(void)
{
	struct bu_config c2;
	struct bu_server_params p;
	struct bu_server *s2;
	struct cli *cs[3], *extra;
	const char *err = NULL;
	int port = free_port();

	bu_config_defaults(&c2);
	set(&c2, "state_dir", cfg.state_dir);
	set_int(&c2, "imap.port", port);
	set_int(&c2, "imaps.port", 0);
	set_int(&c2, "limits.max_sessions_per_ip", 3);
	set_int(&c2, "io_threads", 1);
	set_int(&c2, "database.pool_size", 1);
	for (int i = 0; i < BU_SVC_COUNT; i++)
		if (i != BU_SVC_IMAP)
			c2.svc[i].port = 0;
	memset(&p, 0, sizeof(p));
	p.cfg = &c2;
	p.ops[BU_SVC_IMAP] = &echo_ops;
	s2 = bu_server_create(&p, &err);
	CHECK(s2 != NULL);
	if (s2 == NULL) {
		fprintf(stderr, "%s\n", err);
		bu_config_free(&c2);
		return;
	}
	CHECK(bu_server_start(s2, NULL, NULL, &err) == 0);
	for (int i = 0; i < 3; i++)
		cs[i] = connect_greeted(port);
	extra = cli_connect(port);
	CHECK(extra != NULL && cli_eof(extra));
	cli_free(extra);
	/* one leaves, a new one gets in */
	cli_free(cs[0]);
	{
		int64_t end = now_ms() + 3000;

		while (bu_server_sessions(s2, BU_SVC_IMAP) > 2 && now_ms() < end)
			usleep(5000);
	}
	cs[0] = connect_greeted(port);

	/* graceful shutdown: a task in flight completes, a client that says
	 * "close" gets its bye, idle ones are closed after the grace period */
	cli_puts(cs[1], "slow\r\n");
	usleep(50 * 1000);
	{
		int64_t t0 = now_ms();

		bu_server_shutdown(s2, 1);
		CHECK(now_ms() - t0 >= 900 && now_ms() - t0 < 5000);
	}
	expect_line(cs[1], "worked 300");
	CHECK(cli_eof(cs[1]));
	CHECK(cli_eof(cs[0]));
	CHECK(cli_eof(cs[2]));
	CHECK(bu_server_sessions(s2, BU_SVC_IMAP) == 0);
	/* the listener is gone */
	{
		struct cli *late = cli_connect(port);

		CHECK(late == NULL);
		cli_free(late);
	}
	for (int i = 0; i < 3; i++)
		cli_free(cs[i]);
	bu_server_destroy(&s2);
	CHECK(s2 == NULL);
	bu_config_free(&c2);
}

static void test_errors(void)
{
	struct bu_config c2;
	struct bu_server_params p;
	struct bu_server *s2;
	const char *err = NULL;
	char want[128];

	/* port taken */
	bu_config_defaults(&c2);
	set(&c2, "state_dir", cfg.state_dir);
	for (int i = 0; i < BU_SVC_COUNT; i++)
		c2.svc[i].port = 0;
	c2.svc[BU_SVC_IMAP].port = port_plain;
	memset(&p, 0, sizeof(p));
	p.cfg = &c2;
	p.ops[BU_SVC_IMAP] = &echo_ops;
	s2 = bu_server_create(&p, &err);
	CHECK(s2 == NULL);
	snprintf(want, sizeof(want),
		 "imap: cannot listen on 127.0.0.1:%d: Address already in use; "
		 "set imap.port or stop the other server", port_plain);
	CHECK_STR(err, want);

	/* services without ops are not bound; TLS files missing */
	c2.svc[BU_SVC_IMAP].port = 0;
	set(&c2, "tls.cert", "/nonexistent/cert.pem");
	set(&c2, "tls.key", "/nonexistent/key.pem");
	set(&c2, "tls.selfsigned", "false");
	err = NULL;
	s2 = bu_server_create(&p, &err);
	CHECK(s2 != NULL);
	if (s2 != NULL) {
		CHECK(bu_server_tls_load(s2, &err) < 0);
		CHECK(err != NULL && strstr(err, "/nonexistent/cert.pem") != NULL);
		/* STARTTLS with no certificate: never started, destroy only */
		bu_server_destroy(&s2);
	}
	bu_config_free(&c2);

	/* IPv6 loopback, when the host has it */
	{
		int fd = socket(AF_INET6, SOCK_STREAM, 0);
		struct sockaddr_in6 s6;
		bool have6;

		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_addr = in6addr_loopback;
		have6 = fd >= 0 && bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;
		if (fd >= 0)
			close(fd);
		if (!have6) {
			fprintf(stderr, "note: no IPv6 loopback, skipping the ::1 listener\n");
			return;
		}
	}
	bu_config_defaults(&c2);
	set(&c2, "state_dir", cfg.state_dir);
	set(&c2, "listen.address", "::1");
	set_int(&c2, "io_threads", 1);
	for (int i = 0; i < BU_SVC_COUNT; i++)
		c2.svc[i].port = 0;
	c2.svc[BU_SVC_IMAP].port = free_port();
	s2 = bu_server_create(&p, &err);
	CHECK(s2 != NULL);
	if (s2 != NULL && bu_server_start(s2, NULL, NULL, &err) == 0) {
		struct cli *c = cli_connect_af(AF_INET6, c2.svc[BU_SVC_IMAP].port);

		CHECK(c != NULL);
		if (c != NULL) {
			expect_line(c, "* hello");
			cli_puts(c, "peer\r\n");
			expect_line(c, "peer ::1 loopback=1");
			cli_free(c);
		}
	}
	bu_server_destroy(&s2);
	bu_config_free(&c2);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static int rm_rf(const char *dir)
{
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- bu_worker_call from a worker -------------------------------------- */

static struct bu_server *nested_srv;

static int nested_inner(void *arg, struct bu_db *db)
{
	(void)arg;
	(void)db;
	return 1;
}

static int nested_outer(void *arg, struct bu_db *db)
{
	(void)db;
	/* waits for a worker while holding the only one */
	return bu_worker_call(nested_srv, nested_inner, arg);
}

/* the child process of test_nested_worker_call: must abort */
static int nested_child(void)
{
	struct bu_config c;
	struct bu_server_params p;
	const char *err = NULL;

	bu_log_open(NULL, BU_LOG_FATAL);
	bu_config_defaults(&c);
	for (int i = 0; i < BU_SVC_COUNT; i++)
		c.svc[i].port = 0;
	c.io_threads = 1;
	c.db_pool_size = 1;
	memset(&p, 0, sizeof(p));
	p.cfg = &c;
	nested_srv = bu_server_create(&p, &err);
	if (nested_srv == NULL || bu_server_start(nested_srv, NULL, NULL, &err) < 0)
		return 2;
	(void)bu_worker_call(nested_srv, nested_outer, NULL);
	return 0;       /* not reached when the assertion works */
}

/* A task that calls bu_worker_call would deadlock the pool (one worker
 * here; all of them under load): it is a bug, so it must abort loudly. */
static void test_nested_worker_call(const char *self)
{
	char *const argv[] = { (char *)self, "--nested-worker-call", NULL };
	int devnull = open("/dev/null", O_WRONLY);
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status = 0;
	int64_t t0 = now_ms();
	bool exited = false;

	posix_spawn_file_actions_init(&fa);
	if (devnull >= 0)
		posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	CHECK(posix_spawn(&pid, self, &fa, NULL, argv, environ) == 0);
	posix_spawn_file_actions_destroy(&fa);
	if (devnull >= 0)
		close(devnull);
	while (now_ms() - t0 < 5000) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			exited = true;
			break;
		}
		usleep(20 * 1000);
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	CHECK(exited && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(int argc, char **argv)
{
	struct bu_server_params p;
	const char *err = NULL;
	char tmpl[] = "/tmp/bureau-test-net-XXXXXX";
	char *dir;
	int64_t t0;

	if (argc > 1 && strcmp(argv[1], "--nested-worker-call") == 0)
		return nested_child();
	bu_log_open(NULL, getenv("BUREAU_TEST_VERBOSE") ? BU_LOG_DEBUG : BU_LOG_WARNING);
	dir = mkdtemp(tmpl);
	if (dir == NULL) {
		perror("mkdtemp");
		return 1;
	}
	port_plain = free_port();
	do
		port_tls = free_port();
	while (port_tls == port_plain);

	bu_config_defaults(&cfg);
	set(&cfg, "state_dir", dir);
	set(&cfg, "hostname", "mail.test.example");
	for (int i = 0; i < BU_SVC_COUNT; i++)
		cfg.svc[i].port = 0;
	cfg.svc[BU_SVC_IMAP].port = port_plain;
	cfg.svc[BU_SVC_IMAPS].port = port_tls;
	set_int(&cfg, "io_threads", 2);
	set_int(&cfg, "database.pool_size", 4);
	set_int(&cfg, "limits.max_sessions_per_ip", 1000);
	set_int(&cfg, "limits.preauth_timeout", 1);
	snprintf(cert_path, sizeof(cert_path), "%s/tls/cert.pem", dir);

	memset(&p, 0, sizeof(p));
	p.cfg = &cfg;
	p.ops[BU_SVC_IMAP] = &echo_ops;
	p.ops[BU_SVC_IMAPS] = &echo_ops;
	srv = bu_server_create(&p, &err);
	if (srv == NULL) {
		fprintf(stderr, "bu_server_create: %s\n", err);
		return 1;
	}
	CHECK(bu_server_config(srv) == &cfg);
	if (bu_server_tls_load(srv, &err) < 0) {
		fprintf(stderr, "bu_server_tls_load: %s\n", err);
		return 1;
	}
	if (bu_server_start(srv, NULL, NULL, &err) < 0) {
		fprintf(stderr, "bu_server_start: %s\n", err);
		return 1;
	}

#define RUN(fn) do { fprintf(stderr, "-- %s\n", #fn); fn(); } while (0)
	RUN(test_echo);
	RUN(test_task);
	RUN(test_pipelined);
	RUN(test_concurrent);
	RUN(test_starttls);
	RUN(test_starttls_failures);
	RUN(test_close_flush);
	RUN(test_implicit_tls);
	RUN(test_tls_reload);
	RUN(test_tls_reload_broken);
	RUN(test_compress);
	RUN(test_big_output);
	RUN(test_backpressure);
	RUN(test_timers);
	RUN(test_notify);
	RUN(test_worker_call);
	RUN(test_peer_close);
	RUN(test_metrics);
	RUN(test_per_ip_limit);
	RUN(test_errors);
	fprintf(stderr, "-- test_nested_worker_call\n");
	test_nested_worker_call("/proc/self/exe");

	/* idle clients at shutdown are closed after the grace period */
	{
		struct cli *idle = connect_greeted(port_plain);

		t0 = now_ms();
		bu_server_shutdown(srv, 1);
		CHECK(now_ms() - t0 < 5000);
		CHECK(idle == NULL || cli_eof(idle));
		cli_free(idle);
	}
	bu_server_destroy(&srv);
	CHECK(srv == NULL);
	CHECK(atomic_load(&n_open) == atomic_load(&n_close));
	CHECK(atomic_load(&n_timeouts) >= 1);
	bu_config_free(&cfg);
	rm_rf(dir);

	if (atomic_load(&failures) > 0) {
		fprintf(stderr, "%d check(s) failed\n", atomic_load(&failures));
		return 1;
	}
	fprintf(stderr, "all net tests passed\n");
	return 0;
}

/*
 * tls.c - the server's SSL_CTX: loading the certificate and key, creating
 * a self-signed pair on first start, and swapping contexts on reload.
 *
 * TLS 1.2 is the minimum (RFC 8996 retired 1.0 and 1.1; RFC 8314 section
 * 4.1 asks mail servers for 1.2 or later). The certificate file may hold a
 * chain (leaf first). A reload builds a complete new SSL_CTX and swaps the
 * pointer under a mutex; every SSL holds its own reference to the context
 * it was made from, so sessions in progress keep the old one until they end.
 *
 * The self-signed certificate is for development and first start: an
 * ECDSA P-256 key, CN = hostname, subjectAltName hostname, localhost,
 * 127.0.0.1 and ::1, valid ten years, key file mode 0600. It is made with
 * the OpenSSL API, not by running the openssl command.
 *
 * Errors tell the operator what to fix: a file bureaud cannot read (after
 * the privilege drop a SIGHUP reload reads as the service user), a file
 * that is not PEM, an encrypted key, a key that does not match. A reload
 * that fails keeps the context in use and says so.
 *
 * Left out: SNI with several certificates, OCSP stapling, client
 * certificates.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "net_private.h"

#define SELFSIGNED_DAYS 3650

const char *tls_error_text(void)
{
	static __thread char buf[256];
	unsigned long e, last = 0;

	/* the last error in the queue is usually the most specific */
	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		return "unknown TLS error";
	ERR_error_string_n(last, buf, sizeof(buf));
	return buf;
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* mkdir -p with mode for the last component, 0755 for its parents */
static int mkdir_p(const char *path, mode_t mode)
{
	char *tmp = bu_strdup(path);
	int ret = 0;

	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			ret = -1;
			break;
		}
		*p = '/';
	}
	if (ret == 0 && mkdir(tmp, mode) < 0 && errno != EEXIST)
		ret = -1;
	free(tmp);
	return ret;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return bu_strdup(".");
	if (slash == path)
		return bu_strdup("/");
	return bu_strndup(path, (size_t)(slash - path));
}

static bool is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* write data through a temp file + rename so that a crash never leaves a
 * half-written key behind */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert,
		     const char **error_r)
{
	char *tmp = bu_asprintf("%s.tmp.%ld", path, (long)getpid());
	FILE *f;
	int fd, ok;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		*error_r = net_err("tls: cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	(void)fchmod(fd, mode);   /* regardless of the umask */
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(tmp);
		*error_r = net_err("tls: cannot write %s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	if (key != NULL)
		ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_X509(f, cert);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) < 0) {
		*error_r = net_err("tls: cannot write %s: %s", path,
				   ok ? strerror(errno) : tls_error_text());
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

static int make_selfsigned(const struct bu_config *cfg, const char *cert_path,
			   const char *key_path, const char **error_r)
{
	const char *host = cfg->hostname;
	char hostbuf[256];
	EVP_PKEY_CTX *kctx = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	BIGNUM *serial = NULL;
	struct bu_buf san;
	char *dir;
	int ret = -1;

	if (host == NULL || host[0] == '\0') {
		/* "" means this machine's name (bureau.conf hostname) */
		if (gethostname(hostbuf, sizeof(hostbuf)) == 0 && hostbuf[0] != '\0') {
			hostbuf[sizeof(hostbuf) - 1] = '\0';
			host = hostbuf;
		} else {
			host = "localhost";
		}
	}
	bu_buf_init(&san, 0);
	dir = dir_of(cert_path);
	if (mkdir_p(dir, 0700) < 0) {
		*error_r = net_err("tls: cannot create directory %s: %s", dir,
				   strerror(errno));
		free(dir);
		bu_buf_deinit(&san);
		return -1;
	}
	free(dir);
	dir = dir_of(key_path);
	if (mkdir_p(dir, 0700) < 0) {
		*error_r = net_err("tls: cannot create directory %s: %s", dir,
				   strerror(errno));
		free(dir);
		bu_buf_deinit(&san);
		return -1;
	}
	free(dir);

	kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	if (kctx == NULL || EVP_PKEY_keygen_init(kctx) <= 0 ||
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx, NID_X9_62_prime256v1) <= 0 ||
	    EVP_PKEY_keygen(kctx, &pkey) <= 0)
		goto ossl_fail;

	x = X509_new();
	serial = BN_new();
	if (x == NULL || serial == NULL)
		goto ossl_fail;
	if (!X509_set_version(x, 2) ||
	    !BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), SELFSIGNED_DAYS, 0, NULL) == NULL ||
	    !X509_set_pubkey(x, pkey))
		goto ossl_fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					(const unsigned char *)host, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
					(const unsigned char *)"Bureau self-signed",
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto ossl_fail;

	if (is_ip_literal(host))
		bu_buf_printf(&san, "IP:%s", host);
	else
		bu_buf_printf(&san, "DNS:%s", host);
	if (!bu_str_caseeq(host, "localhost"))
		bu_buf_append_str(&san, ",DNS:localhost");
	if (strcmp(host, "127.0.0.1") != 0)
		bu_buf_append_str(&san, ",IP:127.0.0.1");
	if (strcmp(host, "::1") != 0)
		bu_buf_append_str(&san, ",IP:::1");
	/* A leaf, not a CA: browsers refuse a CA certificate as a server's
	 * own; clients that pin this file as a trust anchor accept it. */
	if (add_ext(x, NID_subject_alt_name, bu_buf_cstr(&san)) < 0 ||
	    add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(x, NID_subject_key_identifier, "hash") < 0)
		goto ossl_fail;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto ossl_fail;

	/* key first: a cert without its key is worse than neither */
	if (write_pem(key_path, 0600, pkey, NULL, error_r) < 0)
		goto out;
	if (write_pem(cert_path, 0644, NULL, x, error_r) < 0) {
		unlink(key_path);
		goto out;
	}
	bu_info("event=tls_selfsigned cert=%s key=%s cn=%s days=%d",
		bu_log_q(cert_path), bu_log_q(key_path), bu_log_q(host),
		SELFSIGNED_DAYS);
	ret = 0;
	goto out;

ossl_fail:
	*error_r = net_err("tls: cannot create a self-signed certificate: %s",
			   tls_error_text());
out:
	BN_free(serial);
	X509_free(x);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(kctx);
	bu_buf_deinit(&san);
	return ret;
}

/* Set when OpenSSL asked for a passphrase: it does so only for an
 * encrypted key, which is a surer sign than the error texts (they differ
 * between OpenSSL versions and decoders). */
static __thread bool passphrase_asked;

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	passphrase_asked = true;
	return 0;
}

/* Why we cannot read path (what: "certificate", "private key"), or NULL
 * when we can and OpenSSL has to say what is wrong with it. */
static const char *file_unreadable(const char *what, const char *path)
{
	struct passwd pw, *pwp = NULL;
	char pwbuf[1024];
	int e;

	if (access(path, R_OK) == 0)
		return NULL;
	e = errno;
	if (e == EACCES && geteuid() != 0 &&
	    getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp != NULL)
		return net_err("tls: cannot read %s %s: %s (bureaud runs as user %s "
			       "after start-up: make the file readable by it, e.g. "
			       "chgrp %s FILE and chmod g+r FILE)", what, path,
			       strerror(e), pwp->pw_name, pwp->pw_name);
	return net_err("tls: cannot read %s %s: %s", what, path, strerror(e));
}

/* OpenSSL's reason for a PEM file it refused, with what to do about it.
 * The queue holds the root cause first and generic wrappers ("PEM lib")
 * after it: look at all of it. Clears the queue. */
static const char *pem_problem(bool key, const char *cert_path)
{
	/* not net_err(): the caller formats its message with that buffer */
	static __thread char buf[600];
	unsigned long e, first = 0;
	const char *hint = NULL;

	while ((e = ERR_get_error()) != 0) {
		/* reason texts, not codes: the library that reports a failed
		 * decryption differs between OpenSSL versions (EVP, PEM, the
		 * 3.x providers) */
		const char *r = ERR_reason_error_string(e);

		if (first == 0)
			first = e;
		if (hint != NULL || r == NULL)
			continue;
		if (strcmp(r, "no start line") == 0)
			hint = key ? "not a PEM private key (expected -----BEGIN ... "
				"PRIVATE KEY-----)"
				: "not a PEM certificate (expected -----BEGIN CERTIFICATE-----)";
		else if (key && (strcmp(r, "bad decrypt") == 0 ||
				 strcmp(r, "bad password read") == 0 ||
				 strcmp(r, "problems getting password") == 0))
			hint = "the key is protected by a passphrase: store it unencrypted "
				"(openssl pkey -in KEY -out KEY.new), mode 0600";
		else if (key && (strcmp(r, "key values mismatch") == 0 ||
				 strcmp(r, "key type mismatch") == 0))
		{
			snprintf(buf, sizeof(buf), "it does not match certificate %s: "
				 "install the key and certificate of one pair", cert_path);
			hint = buf;
		}
	}
	if (hint != NULL)
		return hint;
	if (first == 0)
		return "unknown TLS error";
	ERR_error_string_n(first, buf, sizeof(buf));
	return buf;
}

static SSL_CTX *ctx_create(const char *cert_path, const char *key_path, bool reload,
			   const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	static const unsigned char sid_ctx[] = "bureau";

	if (ctx == NULL) {
		*error_r = net_err("tls: %s", tls_error_text());
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		*error_r = net_err("tls: %s", tls_error_text());
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
			    SSL_OP_CIPHER_SERVER_PREFERENCE |
			    SSL_OP_NO_RENEGOTIATION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* Most mail clients just close the socket without close_notify.
	 * IMAP, POP3 and SMTP frame their own data, so a truncation cannot
	 * pass for a complete command: treat it as an ordinary EOF. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	/* partial writes from a buffer that may move between retries; release
	 * the record buffers of idle sessions (ten thousand IDLE clients) */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			 SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/* never prompt on the terminal for a passphrase */
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);

	if ((*error_r = file_unreadable("certificate", cert_path)) != NULL ||
	    (*error_r = file_unreadable("private key", key_path)) != NULL) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		*error_r = net_err("tls: cannot load certificate %s: %s%s",
				   cert_path, pem_problem(false, cert_path), reload ? "" :
				   "; set tls.cert and tls.key, or enable tls.selfsigned");
		SSL_CTX_free(ctx);
		return NULL;
	}
	passphrase_asked = false;
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		const char *why = pem_problem(true, cert_path);

		if (passphrase_asked)
			why = "the key is protected by a passphrase: store it unencrypted "
				"(openssl pkey -in KEY -out KEY.new), mode 0600";
		*error_r = net_err("tls: cannot load private key %s: %s", key_path, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = net_err("tls: private key %s does not match certificate %s: "
				   "install the key and certificate of one pair",
				   key_path, cert_path);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int bu_server_tls_load(struct bu_server *s, const char **error_r)
{
	const struct bu_config *cfg = s->cfg;
	char *cert_path, *key_path;
	SSL_CTX *ctx, *old;
	bool have_cert, have_key, reload;
	int ret = -1;

	pthread_mutex_lock(&s->tls_mu);
	reload = s->tls_ctx != NULL;
	pthread_mutex_unlock(&s->tls_mu);

	cert_path = cfg->tls_cert != NULL && cfg->tls_cert[0] != '\0'
		? bu_strdup(cfg->tls_cert) : bu_config_state_path(cfg, "tls/cert.pem");
	key_path = cfg->tls_key != NULL && cfg->tls_key[0] != '\0'
		? bu_strdup(cfg->tls_key) : bu_config_state_path(cfg, "tls/key.pem");

	have_cert = file_exists(cert_path);
	have_key = file_exists(key_path);
	/* Only the first load makes a self-signed pair: a reload that finds
	 * the files gone must not swap a real certificate for one. */
	if (!have_cert && !have_key && cfg->tls_selfsigned && !reload) {
		if (make_selfsigned(cfg, cert_path, key_path, error_r) < 0)
			goto out;
	} else if (!have_cert || !have_key) {
		*error_r = net_err("tls: %s %s is missing; set tls.cert and tls.key%s",
				   have_cert ? "key" : "certificate",
				   have_cert ? key_path : cert_path,
				   have_cert || have_key ? "" :
				   ", or enable tls.selfsigned");
		goto out;
	}

	ctx = ctx_create(cert_path, key_path, reload, error_r);
	if (ctx == NULL)
		goto out;
	pthread_mutex_lock(&s->tls_mu);
	old = s->tls_ctx;
	s->tls_ctx = ctx;
	pthread_mutex_unlock(&s->tls_mu);
	/* sessions made from the old context hold their own reference */
	SSL_CTX_free(old);
	bu_info("event=tls_loaded cert=%s reload=%s", bu_log_q(cert_path),
		old != NULL ? "yes" : "no");
	ret = 0;
out:
	if (ret < 0 && reload) {
		char why[512];

		snprintf(why, sizeof(why), "%s", *error_r);
		*error_r = net_err("%s; the certificate loaded before stays in use: "
				   "fix this and send SIGHUP again", why);
	}
	free(cert_path);
	free(key_path);
	return ret;
}

SSL *tls_new_ssl(struct bu_server *s)
{
	SSL *ssl = NULL;
	bool have_ctx;

	pthread_mutex_lock(&s->tls_mu);
	have_ctx = s->tls_ctx != NULL;
	if (have_ctx)
		ssl = SSL_new(s->tls_ctx);
	pthread_mutex_unlock(&s->tls_mu);
	if (ssl == NULL && have_ctx)
		bu_error("event=tls_error err=%s", bu_log_q(tls_error_text()));
	return ssl;
}

void tls_free_ctx(struct bu_server *s)
{
	pthread_mutex_lock(&s->tls_mu);
	SSL_CTX_free(s->tls_ctx);
	s->tls_ctx = NULL;
	pthread_mutex_unlock(&s->tls_mu);
}

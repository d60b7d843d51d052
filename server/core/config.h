/*
 * config.h - bureau.conf: "key = value" lines, '#' comments, dotted keys.
 *
 * Every key is declared once in config.c's table with its type, default and
 * a one-line doc; bu_config_write_sample() prints the commented sample file
 * from that table, so the docs and the parser cannot drift apart.
 * Unknown keys, bad values and duplicate keys are errors naming the key and
 * the line: "bureau.conf:12: imap.port: not a port number (1-65535)".
 */
#ifndef BU_CONFIG_H
#define BU_CONFIG_H

#include "util.h"

enum bu_tls_mode { BU_TLS_NONE, BU_TLS_STARTTLS, BU_TLS_IMPLICIT };

/* one listening service; port 0 = disabled */
struct bu_listen_cfg {
	const char *name;      /* "imap", "imaps", "pop3", ... */
	int port;
	enum bu_tls_mode tls;
};

enum bu_service_id {
	BU_SVC_IMAP, BU_SVC_IMAPS, BU_SVC_POP3, BU_SVC_POP3S, BU_SVC_SMTP,
	BU_SVC_SUBMISSION, BU_SVC_SUBMISSIONS, BU_SVC_LMTP, BU_SVC_HTTP,
	BU_SVC_HTTPS, BU_SVC_COUNT
};

struct bu_config {
	char *path;                   /* file it was read from, or NULL */
	char *state_dir;              /* "var" in dev; everything lives below */
	char *listen_address;         /* default 127.0.0.1 */
	struct bu_listen_cfg svc[BU_SVC_COUNT];
	char *hostname;               /* greeting / EHLO name */
	char *user;                   /* drop root to this user ("" = stay) */
	char *database_url;           /* "" = embedded PostgreSQL */
	char *pg_bindir;              /* where initdb/pg_ctl live ("" = search) */
	int db_pool_size;             /* worker threads == DB connections */
	int io_threads;               /* 0 = number of cores */
	char *tls_cert;               /* PEM; "" = state_dir/tls/cert.pem */
	char *tls_key;
	bool tls_selfsigned;          /* create a self-signed pair if missing */
	bool allow_plaintext_loopback;/* cleartext login from 127/8 and ::1 */
	char *log_file;               /* "" = stderr */
	char *log_level;
	int max_line;                 /* protocol command line limit, bytes */
	int max_literal;              /* IMAP literal / message size limit */
	int max_sessions_per_ip;
	int idle_timeout;             /* seconds, authenticated idle */
	int preauth_timeout;          /* seconds before login */
	int auth_fail_limit;          /* failures per window before throttling */
	int auth_fail_window;         /* seconds */
	int auth_cache_ttl;           /* seconds; 0 = no verified-password cache */
	int64_t message_cache_bytes;  /* 0 = no message cache */
	int64_t default_quota_storage;/* bytes, 0 = unlimited */
	int64_t default_quota_messages;
	char *password_scheme;        /* "yescrypt" | "sha512" | "bcrypt" */
	int min_password_length;
};

/* fill with defaults */
void bu_config_defaults(struct bu_config *cfg);
/* Read path over the defaults. Returns 0, or -1 with *error_r (static or
 * heap, caller does not free) naming file, line and key. */
int bu_config_load(struct bu_config *cfg, const char *path, const char **error_r);
/* set one key from a string (used by the loader and by -o key=value). */
int bu_config_set(struct bu_config *cfg, const char *key, const char *value,
		  const char **error_r);
/* write a fully commented sample (every key, its default and doc) */
int bu_config_write_sample(const char *path, const struct bu_config *overrides);
void bu_config_free(struct bu_config *cfg);
/* resolved absolute-or-relative path under state_dir (heap, caller frees) */
char *bu_config_state_path(const struct bu_config *cfg, const char *rel);

#endif

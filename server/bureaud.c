/*
 * bureaud.c - the Bureau server: wiring only.
 *
 *   bureaud [-c FILE] [-o key=value ...] [--foreground]
 *   bureaud [-c FILE] [-o key=value ...] --check-config
 *   bureaud --write-config FILE [-o key=value ...]
 *
 * Start-up, in order (ARCHITECTURE.md, "Start-up" and "Security"):
 *  1. read bureau.conf (+ -o overrides), open the log, create state_dir;
 *  2. bind every listener (mail ports through bu_server_create, HTTP and
 *     HTTPS here) while still root, load the TLS certificate;
 *  3. the database: database.url, or the embedded cluster in STATE/pg
 *     (initdb/pg_ctl as the service user when root), then the migrations
 *     from the schema directory (BUREAU_SCHEMA_DIR, else <exe>/../../schema
 *     in a build tree, else /usr/share/bureau/schema). A database.url that
 *     does not answer is waited for, with one log line per attempt
 *     (ARCHITECTURE.md: a lost database costs commands a temporary error,
 *     never the daemon; a database that is still starting at boot is the
 *     same case). SIGTERM/SIGINT end the wait. Errors that waiting cannot
 *     fix (a broken migration, an embedded cluster that will not start)
 *     end bureaud with exit status 1;
 *  4. drop root to `user` (initgroups, setgid, setuid);
 *  5. start the I/O threads and workers, the notification hub and HTTP;
 *  6. log event=ready with every port and write STATE/bureaud.pid.
 *
 * Signals are taken synchronously with signalfd in the main thread (all
 * threads are created with them blocked): SIGTERM/SIGINT shut down
 * gracefully (sessions get 10 s), SIGHUP reopens the log and reloads the
 * certificate.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "groupware/auth.h"
#include "groupware/msgcache.h"
#include "server/core/config.h"
#include "server/core/db.h"
#include "server/core/log.h"
#include "server/core/net.h"
#include "protocols/http/http.h"
#include "protocols/pop3/pop3.h"
#include "protocols/smtp/smtp.h"
#if __has_include("protocols/imap/imap.h")
#include "protocols/imap/imap.h"
#define BUREAUD_HAVE_IMAP 1
#endif

#define BUREAUD_DEFAULT_CONFIG "/etc/bureau/bureau.conf"
#define BUREAUD_SHUTDOWN_GRACE_S 10
#define BUREAUD_MAX_OVERRIDES 128
#define BUREAUD_PEM_MAX (1024 * 1024)
/* waiting for an unreachable database.url: 1 s doubling to 30 s */
#define BUREAUD_DB_RETRY_MIN_S 1
#define BUREAUD_DB_RETRY_MAX_S 30

struct bureaud_opts {
	const char *config_path;
	bool config_given;
	bool check_config;
	const char *write_config;
	const char *overrides[BUREAUD_MAX_OVERRIDES];
	size_t noverrides;
};

struct bureaud {
	struct bu_config cfg;
	struct bu_server *srv;
	struct http_server *http;
	struct bu_hub *hub;
	struct bu_pgembed *pg;
	char *conninfo;
	char *pidfile;
	int http_fd, https_fd;
	bool drop;              /* root and user != "" */
	uid_t uid;
	gid_t gid;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bureaud [-c FILE] [-o key=value ...] [--foreground]\n"
		"       bureaud [-c FILE] [-o key=value ...] --check-config\n"
		"       bureaud --write-config FILE [-o key=value ...]\n"
		"\n"
		"  -c FILE              configuration file (default " BUREAUD_DEFAULT_CONFIG ")\n"
		"  -o key=value         override one setting of the file (repeatable)\n"
		"  --check-config       read and check the configuration, then exit\n"
		"  --write-config FILE  write a commented sample configuration ('-' = stdout)\n"
		"  --foreground         stay in the foreground (the default; bureaud never\n"
		"                       forks: run it under systemd or a supervisor)\n");
}

static int parse_args(int argc, char **argv, struct bureaud_opts *o)
{
	o->config_path = BUREAUD_DEFAULT_CONFIG;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (++i == argc)
				goto missing;
			o->config_path = argv[i];
			o->config_given = true;
		} else if (strcmp(a, "-o") == 0) {
			if (++i == argc)
				goto missing;
			if (o->noverrides == BUREAUD_MAX_OVERRIDES) {
				fprintf(stderr, "bureaud: too many -o options\n");
				return -1;
			}
			o->overrides[o->noverrides++] = argv[i];
		} else if (strcmp(a, "--check-config") == 0) {
			o->check_config = true;
		} else if (strcmp(a, "--write-config") == 0) {
			if (++i == argc)
				goto missing;
			o->write_config = argv[i];
		} else if (strcmp(a, "--foreground") == 0 || strcmp(a, "-F") == 0) {
			/* the default */
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else {
			fprintf(stderr, "bureaud: unknown option %s\n", a);
			usage(stderr);
			return -1;
		}
		continue;
missing:
		fprintf(stderr, "bureaud: %s needs an argument\n", a);
		return -1;
	}
	return 0;
}

static int apply_overrides(struct bu_config *cfg, const struct bureaud_opts *o)
{
	for (size_t i = 0; i < o->noverrides; i++) {
		const char *kv = o->overrides[i];
		const char *eq = strchr(kv, '=');
		const char *err = NULL;

		if (eq == NULL) {
			fprintf(stderr, "bureaud: -o %s: expected key=value\n", kv);
			return -1;
		}
		char *key = bu_strndup(kv, (size_t)(eq - kv));
		struct bu_slice k = bu_slice_trim(bu_slice_cstr(key));
		char *kt = bu_strndup(k.p, k.len);
		struct bu_slice v = bu_slice_trim(bu_slice_cstr(eq + 1));
		char *vt = bu_strndup(v.p, v.len);
		int rc = bu_config_set(cfg, kt, vt, &err);

		free(key);
		free(kt);
		free(vt);
		if (rc < 0) {
			fprintf(stderr, "bureaud: -o %s: %s\n", kv, err);
			return -1;
		}
	}
	return 0;
}

/* Checks across keys that the per-key parser cannot make. */
static int check_config(const struct bu_config *cfg, const char **error_r)
{
	static char buf[256];

	for (int i = 0; i < BU_SVC_COUNT; i++) {
		for (int j = i + 1; j < BU_SVC_COUNT; j++) {
			if (cfg->svc[i].port != 0 && cfg->svc[i].port == cfg->svc[j].port) {
				snprintf(buf, sizeof(buf), "%s.port and %s.port are both %d: "
					 "give each service its own port (0 disables one)",
					 cfg->svc[i].name, cfg->svc[j].name, cfg->svc[i].port);
				*error_r = buf;
				return -1;
			}
		}
	}
	return 0;
}

/* ---- files and directories ------------------------------------------- */

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

static void chown_to(struct bureaud *b, const char *path)
{
	struct stat st;

	if (!b->drop || lstat(path, &st) < 0 || S_ISLNK(st.st_mode))
		return;
	if ((st.st_uid != b->uid || st.st_gid != b->gid) && chown(path, b->uid, b->gid) < 0)
		bu_warn("event=chown_failed path=%s err=%s", bu_log_q(path), strerror(errno));
}

static char *read_pem(const char *path, const char **error_r)
{
	static char errbuf[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct bu_buf b;

	if (fd < 0) {
		snprintf(errbuf, sizeof(errbuf), "%s: %s", path, strerror(errno));
		*error_r = errbuf;
		return NULL;
	}
	bu_buf_init(&b, BUREAUD_PEM_MAX);
	for (;;) {
		char chunk[4096];
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || bu_buf_append(&b, chunk, (size_t)r) < 0) {
			if (r != 0) {
				snprintf(errbuf, sizeof(errbuf), "%s: %s", path,
					 r < 0 ? strerror(errno) : "too large");
				*error_r = errbuf;
				close(fd);
				bu_buf_deinit(&b);
				return NULL;
			}
			break;
		}
		bu_wipe(chunk, sizeof(chunk));
	}
	close(fd);
	if (b.len == 0) {
		bu_buf_deinit(&b);
		snprintf(errbuf, sizeof(errbuf), "%s: empty", path);
		*error_r = errbuf;
		return NULL;
	}
	return bu_buf_steal(&b, NULL);
}

static void free_secret(char **p)
{
	if (*p != NULL)
		bu_wipe(*p, strlen(*p));
	bu_free(p);
}

static char *tls_path(const struct bu_config *cfg, bool key)
{
	const char *set = key ? cfg->tls_key : cfg->tls_cert;

	if (set != NULL && set[0] != '\0')
		return bu_strdup(set);
	return bu_config_state_path(cfg, key ? "tls/key.pem" : "tls/cert.pem");
}

static int read_tls_pems(const struct bu_config *cfg, char **cert_r, char **key_r,
			 const char **error_r)
{
	char *cp = tls_path(cfg, false), *kp = tls_path(cfg, true);

	*cert_r = read_pem(cp, error_r);
	*key_r = *cert_r != NULL ? read_pem(kp, error_r) : NULL;
	free(cp);
	free(kp);
	if (*key_r == NULL) {
		free(*cert_r);
		*cert_r = NULL;
		return -1;
	}
	return 0;
}

/* the schema directory: see the file comment */
static char *find_schema_dir(void)
{
	const char *env = getenv("BUREAU_SCHEMA_DIR");
	char exe[PATH_MAX];
	ssize_t n;
	struct stat st;

	if (env != NULL && env[0] != '\0')
		return bu_strdup(env);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *dir = bu_asprintf("%s/../../schema", dirname(exe));
		char *real = realpath(dir, NULL);

		free(dir);
		if (real != NULL) {
			if (stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
				char *ret = bu_strdup(real);

				free(real);
				return ret;
			}
			free(real);
		}
	}
	return bu_strdup("/usr/share/bureau/schema");
}

/* ---- start-up steps ------------------------------------------------------ */

static struct bu_db *db_connect(void *arg)
{
	return bu_db_create(arg);
}

/* Sleep up to seconds, or until one of sigs arrives. true if SIGTERM or
 * SIGINT did (stop now); SIGHUP reopens the log and ends the wait early. */
static bool wait_or_signal(const sigset_t *sigs, int seconds)
{
	struct timespec ts = { .tv_sec = seconds, .tv_nsec = 0 };
	siginfo_t si;
	int sig = sigtimedwait(sigs, &si, &ts);

	if (sig == SIGTERM || sig == SIGINT) {
		bu_info("event=shutdown signal=%s pid=%d", sig == SIGTERM ? "TERM" : "INT",
			(int)si.si_pid);
		return true;
	}
	if (sig == SIGHUP && bu_log_reopen() < 0)
		bu_log_errno("event=reload.log_failed");
	return false;
}

/* The migrations; waits while the database cannot be reached. 0 done,
 * 1 stopped by a signal while waiting, -1 with *error_r. */
static int migrate_database(struct bureaud *b, const sigset_t *sigs, const char **error_r)
{
	char *schema = find_schema_dir();
	int delay = BUREAUD_DB_RETRY_MIN_S;

	for (int attempt = 1;; attempt++) {
		struct bu_db *db = bu_db_create(b->conninfo);
		const char *err = NULL;
		int applied = bu_db_migrate(db, schema, &err);
		/* no connection left: it failed or died under the migration */
		bool conn_lost = applied < 0 && (bu_db_errcode(db) == BU_DB_ERR_CONN ||
						 bu_db_pg(db) == NULL);

		bu_db_destroy(&db);
		if (applied >= 0) {
			bu_info("event=migrate dir=%s applied=%d", bu_log_q(schema), applied);
			free(schema);
			return 0;
		}
		if (!conn_lost || b->pg != NULL) {
			free(schema);
			*error_r = err;
			return -1;
		}
		bu_error("event=database_unreachable attempt=%d retry_in=%d err=%s "
			 "hint=\"bureaud starts serving once the database answers; "
			 "check database.url\"", attempt, delay, bu_log_q(err));
		if (attempt == 1)
			fprintf(stderr, "bureaud: database: %s\nbureaud: waiting for the "
				"database (retrying every %d s at most; check database.url; "
				"SIGTERM or Ctrl-C stops)\n", err, BUREAUD_DB_RETRY_MAX_S);
		if (wait_or_signal(sigs, delay)) {
			free(schema);
			return 1;
		}
		delay = delay * 2 > BUREAUD_DB_RETRY_MAX_S ? BUREAUD_DB_RETRY_MAX_S : delay * 2;
	}
}

static int setup_database(struct bureaud *b, const sigset_t *sigs, const char **error_r)
{
	struct bu_config *cfg = &b->cfg;
	const char *err = NULL;

	if (cfg->database_url != NULL && cfg->database_url[0] != '\0') {
		b->conninfo = bu_strdup(cfg->database_url);
	} else {
		char *dir = bu_config_state_path(cfg, "pg");

		b->pg = bu_pgembed_start(dir, cfg->pg_bindir,
					 geteuid() == 0 ? cfg->user : NULL,
					 &b->conninfo, &err);
		free(dir);
		if (b->pg == NULL) {
			*error_r = err;
			return -1;
		}
	}
	return migrate_database(b, sigs, error_r);
}

static int drop_privileges(struct bureaud *b, const char **error_r)
{
	static char buf[256];

	if (!b->drop)
		return 0;
	if (initgroups(b->cfg.user, b->gid) < 0 || setgid(b->gid) < 0 || setuid(b->uid) < 0) {
		snprintf(buf, sizeof(buf), "cannot switch to user %s: %s", b->cfg.user,
			 strerror(errno));
		*error_r = buf;
		return -1;
	}
	if (setuid(0) == 0) {
		*error_r = "privilege drop did not stick (setuid(0) succeeded)";
		return -1;
	}
	bu_info("event=privileges_dropped user=%s uid=%u gid=%u", bu_log_q(b->cfg.user),
		(unsigned)b->uid, (unsigned)b->gid);
	return 0;
}

static void write_pidfile(struct bureaud *b)
{
	char *tmp = bu_asprintf("%s.tmp", b->pidfile);
	FILE *f = fopen(tmp, "we");

	if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0 ||
	    rename(tmp, b->pidfile) < 0) {
		bu_log_errno("event=pidfile_failed path=%s", bu_log_q(b->pidfile));
		(void)unlink(tmp);
	}
	free(tmp);
}

static void remove_pidfile(struct bureaud *b)
{
	FILE *f = fopen(b->pidfile, "re");
	char line[32];

	if (f == NULL)
		return;
	if (fgets(line, sizeof(line), f) != NULL &&
	    strtol(line, NULL, 10) == (long)getpid())
		(void)unlink(b->pidfile);
	fclose(f);
}

/* A port in use because this bureaud runs already (STATE/bureaud.pid
 * names a live process)? Then say so: that is the usual cause. */
static const char *listen_error(struct bureaud *b, const char *err)
{
	static char buf[1024];
	char *path = bu_config_state_path(&b->cfg, "bureaud.pid");
	FILE *f = strstr(err, strerror(EADDRINUSE)) != NULL ? fopen(path, "re") : NULL;
	char line[32];
	long pid = 0;

	free(path);
	if (f == NULL)
		return err;
	if (fgets(line, sizeof(line), f) != NULL)
		pid = strtol(line, NULL, 10);
	fclose(f);
	if (pid <= 0 || pid == (long)getpid() || (kill((pid_t)pid, 0) < 0 && errno != EPERM))
		return err;
	snprintf(buf, sizeof(buf), "%s (bureaud pid %ld is already running with "
		 "state_dir %s)", err, pid, b->cfg.state_dir);
	return buf;
}

static void log_ready(struct bureaud *b, const struct bu_server_params *p)
{
	struct bu_buf line;

	bu_buf_init(&line, 0);
	for (int i = 0; i < BU_SVC_COUNT; i++) {
		int port = b->cfg.svc[i].port;
		bool on = i == BU_SVC_HTTP ? b->http_fd >= 0 || b->http != NULL :
			i == BU_SVC_HTTPS ? b->https_fd >= 0 || b->http != NULL :
			p->ops[i] != NULL;

		if (port != 0 && on)
			(void)bu_buf_printf(&line, " %s=%d", b->cfg.svc[i].name, port);
	}
	bu_info("event=ready pid=%ld address=%s%s database=%s", (long)getpid(),
		b->cfg.listen_address, bu_buf_cstr(&line),
		b->pg != NULL ? "embedded" : "url");
	bu_buf_deinit(&line);
}

static void reload(struct bureaud *b)
{
	const char *err = NULL;

	if (bu_log_reopen() < 0)
		bu_log_errno("event=reload.log_failed");
	if (bu_server_tls_load(b->srv, &err) < 0) {
		/* err may be cut in the log: the keys say the essentials */
		bu_error("event=reload.tls_failed result=\"previous certificate kept\" "
			 "hint=\"fix tls.cert/tls.key and send SIGHUP again\" err=%s",
			 bu_log_q(err));
	} else if (b->http != NULL && b->cfg.svc[BU_SVC_HTTPS].port != 0) {
		char *cert, *key;

		if (read_tls_pems(&b->cfg, &cert, &key, &err) < 0 ||
		    http_server_tls_reload(b->http, cert, key, &err) < 0)
			bu_error("event=reload.https_failed err=%s", bu_log_q(err));
		free_secret(&cert);
		free_secret(&key);
	}
	bu_info("event=reload");
}

static void shutdown_all(struct bureaud *b)
{
	http_server_stop(&b->http);
	if (b->srv != NULL)
		bu_server_shutdown(b->srv, BUREAUD_SHUTDOWN_GRACE_S);
	bu_hub_stop(&b->hub);
	bu_server_destroy(&b->srv);
	if (b->http_fd >= 0)
		close(b->http_fd);
	if (b->https_fd >= 0)
		close(b->https_fd);
	b->http_fd = b->https_fd = -1;
	bu_pgembed_stop(&b->pg);
	if (b->pidfile != NULL)
		remove_pidfile(b);
}

BU_NORETURN static void die(struct bureaud *b, const char *what, const char *err)
{
	/* to the log (where long values are capped) and, in full, to the
	 * terminal of whoever started us */
	bu_log(BU_LOG_FATAL, "event=startup_failed step=%s err=%s", what, bu_log_q(err));
	fprintf(stderr, "bureaud: %s: %s\n", what, err);
	shutdown_all(b);
	exit(1);
}

int main(int argc, char **argv)
{
	struct bureaud_opts o = { 0 };
	struct bureaud b = { .http_fd = -1, .https_fd = -1 };
	struct bu_server_params params = { 0 };
	enum bu_log_level level;
	const char *err = NULL;
	sigset_t sigs;
	int sfd;

	if (parse_args(argc, argv, &o) < 0)
		return 2;

	/* signals: blocked in every thread, read from a signalfd here */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0) {
		perror("bureaud: sigprocmask");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	bu_config_defaults(&b.cfg);
	if (o.write_config != NULL) {
		if (apply_overrides(&b.cfg, &o) < 0)
			goto early_exit_fail;
		if (bu_config_write_sample(o.write_config, &b.cfg) < 0) {
			fprintf(stderr, "bureaud: %s: %s\n", o.write_config, strerror(errno));
			goto early_exit_fail;
		}
		goto early_exit_ok;
	}
	if (bu_config_load(&b.cfg, o.config_path, &err) < 0) {
		fprintf(stderr, "bureaud: %s\n", err);
		if (!o.config_given && access(o.config_path, F_OK) < 0)
			fprintf(stderr, "bureaud: write one with: bureaud --write-config %s\n",
				o.config_path);
		goto early_exit_fail;
	}
	if (apply_overrides(&b.cfg, &o) < 0)
		goto early_exit_fail;
	if (check_config(&b.cfg, &err) < 0) {
		fprintf(stderr, "bureaud: %s: %s\n", o.config_path, err);
		goto early_exit_fail;
	}
	if (o.check_config) {
		printf("%s: OK\n", o.config_path);
		goto early_exit_ok;
	}

	if (bu_log_parse_level(b.cfg.log_level, &level) < 0)
		level = BU_LOG_INFO;
	if (bu_log_open(b.cfg.log_file, level) < 0) {
		fprintf(stderr, "bureaud: log.file %s: %s\n", b.cfg.log_file, strerror(errno));
		return 1;
	}
	bu_log_ctx_set("component=main");
	bu_info("event=start pid=%ld config=%s", (long)getpid(), bu_log_q(o.config_path));
	auth_cache_configure(b.cfg.auth_cache_ttl);
	mc_configure(b.cfg.message_cache_bytes);

	/* who we become */
	if (geteuid() == 0 && b.cfg.user != NULL && b.cfg.user[0] != '\0') {
		struct passwd *pw = getpwnam(b.cfg.user);
		static char ebuf[256];

		if (pw == NULL) {
			snprintf(ebuf, sizeof(ebuf), "user %s does not exist: create it "
				 "(useradd --system --no-create-home %s) or set user = \"\" "
				 "to stay root", b.cfg.user, b.cfg.user);
			die(&b, "user", ebuf);
		}
		b.drop = pw->pw_uid != 0;
		b.uid = pw->pw_uid;
		b.gid = pw->pw_gid;
	}

	/* state directory, owned by the service user */
	if (mkdir_p(b.cfg.state_dir, 0750) < 0) {
		static char ebuf[512];

		snprintf(ebuf, sizeof(ebuf), "%s: %s", b.cfg.state_dir, strerror(errno));
		die(&b, "state_dir", ebuf);
	}
	chown_to(&b, b.cfg.state_dir);
	if (b.cfg.log_file != NULL && b.cfg.log_file[0] != '\0' &&
	    strcmp(b.cfg.log_file, "-") != 0)
		chown_to(&b, b.cfg.log_file);   /* so that SIGHUP can reopen it */

	/* listeners, while root */
#ifdef BUREAUD_HAVE_IMAP
	params.ops[BU_SVC_IMAP] = &imap_proto_ops;
	params.ops[BU_SVC_IMAPS] = &imap_proto_ops;
#else
	if (b.cfg.svc[BU_SVC_IMAP].port != 0 || b.cfg.svc[BU_SVC_IMAPS].port != 0)
		bu_warn("event=service_unavailable service=imap reason=not_built");
#endif
	params.cfg = &b.cfg;
	params.ops[BU_SVC_POP3] = &pop3_proto_ops;
	params.ops[BU_SVC_POP3S] = &pop3_proto_ops;
	params.ops[BU_SVC_SMTP] = &smtp_proto_ops;
	params.ops[BU_SVC_SUBMISSION] = &smtp_proto_ops;
	params.ops[BU_SVC_SUBMISSIONS] = &smtp_proto_ops;
	params.ops[BU_SVC_LMTP] = &lmtp_proto_ops;
	b.srv = bu_server_create(&params, &err);
	if (b.srv == NULL)
		die(&b, "listen", listen_error(&b, err));
	if (http_bind(&b.cfg, &b.http_fd, &b.https_fd, &err) < 0)
		die(&b, "listen", listen_error(&b, err));
	if (bu_server_tls_load(b.srv, &err) < 0)
		die(&b, "tls", err);
	if (b.drop) {
		/* the self-signed pair made by the TLS loader, for SIGHUP */
		char *tlsdir = bu_config_state_path(&b.cfg, "tls");
		char *cp = tls_path(&b.cfg, false), *kp = tls_path(&b.cfg, true);
		char *dcp = bu_config_state_path(&b.cfg, "tls/cert.pem");
		char *dkp = bu_config_state_path(&b.cfg, "tls/key.pem");

		chown_to(&b, tlsdir);
		if (strcmp(cp, dcp) == 0)
			chown_to(&b, cp);
		if (strcmp(kp, dkp) == 0)
			chown_to(&b, kp);
		free(tlsdir);
		free(cp);
		free(kp);
		free(dcp);
		free(dkp);
	}

	char *cert_pem = NULL, *key_pem = NULL;
	if (b.https_fd >= 0 && read_tls_pems(&b.cfg, &cert_pem, &key_pem, &err) < 0)
		die(&b, "tls", err);

	/* database and migrations */
	switch (setup_database(&b, &sigs, &err)) {
	case 0:
		break;
	case 1:
		/* asked to stop while waiting for the database */
		free_secret(&cert_pem);
		free_secret(&key_pem);
		shutdown_all(&b);
		bu_info("event=stopped");
		free(b.conninfo);
		bu_config_free(&b.cfg);
		return 0;
	default:
		free_secret(&cert_pem);
		free_secret(&key_pem);
		die(&b, "database", err);
	}

	if (drop_privileges(&b, &err) < 0)
		die(&b, "privileges", err);

	/* threads */
	if (bu_server_start(b.srv, db_connect, b.conninfo, &err) < 0)
		die(&b, "start", err);
	b.hub = bu_hub_start(b.conninfo, b.srv);

	struct http_params hp = {
		.cfg = &b.cfg, .srv = b.srv, .hub = b.hub,
		.http_fd = b.http_fd, .https_fd = b.https_fd,
		.cert_pem = cert_pem, .key_pem = key_pem,
	};
	b.http_fd = b.https_fd = -1;     /* handed over, also on failure */
	if (hp.http_fd >= 0 || hp.https_fd >= 0) {
		b.http = http_server_start(&hp, &err);
		free_secret(&cert_pem);
		free_secret(&key_pem);
		if (b.http == NULL)
			die(&b, "http", err);
	}

	b.pidfile = bu_config_state_path(&b.cfg, "bureaud.pid");
	write_pidfile(&b);
	log_ready(&b, &params);

	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		bu_log_errno("event=signalfd_failed");
		shutdown_all(&b);
		return 1;
	}
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t r = read(sfd, &si, sizeof(si));

		if (r < 0 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof(si)) {
			bu_log_errno("event=signalfd_read_failed");
			break;
		}
		if (si.ssi_signo == SIGHUP) {
			reload(&b);
			continue;
		}
		bu_info("event=shutdown signal=%s pid=%u",
			si.ssi_signo == SIGTERM ? "TERM" : "INT", si.ssi_pid);
		break;
	}
	close(sfd);
	shutdown_all(&b);
	bu_info("event=stopped");
	free(b.conninfo);
	free(b.pidfile);
	bu_config_free(&b.cfg);
	return 0;

early_exit_ok:
	bu_config_free(&b.cfg);
	return 0;
early_exit_fail:
	bu_config_free(&b.cfg);
	return 1;
}

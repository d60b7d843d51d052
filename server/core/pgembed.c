/*
 * pgembed.c - the embedded PostgreSQL cluster (ARCHITECTURE.md, "Start-up and
 * the embedded default").
 *
 * Layout under dir (STATE/pg):
 *   data/            the cluster (initdb -D), superuser "bureau", trust auth
 *   run/             Unix socket directory (mode 0700), no TCP listener
 *   postgresql.log   server log (pg_ctl -l)
 *
 * PostgreSQL refuses to run as root, so when bureaud starts as root, initdb
 * and pg_ctl run as run_as_user (fork, setgid/initgroups/setuid, exec) and
 * dir is chowned to that user. Otherwise they run as ourselves.
 *
 * A cluster that is already running (another bureaud on the same state dir,
 * or one left over from a previous run) is reused and not stopped on exit:
 * only the process that started it stops it. A stale postmaster.pid from a
 * killed server is pg_ctl's business (it checks the pid and starts anyway).
 *
 * Error messages tell the operator what to do.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db.h"
#include "log.h"

#define PGEMBED_DB "bureau"
#define PGEMBED_SUPERUSER "bureau"
#define PGEMBED_START_TIMEOUT "60"

struct bu_pgembed {
	char *dir;          /* absolute */
	char *bindir;
	char *user;         /* run_as_user when we were root, else NULL */
	bool started_by_us;
};

/* error_r strings live here: start-up is single threaded and the caller
 * reports them before anything else runs */
static char pgembed_errbuf[1024];

BU_PRINTF(1, 2)
static const char *pgembed_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pgembed_errbuf, sizeof(pgembed_errbuf), fmt, ap);
	va_end(ap);
	return pgembed_errbuf;
}

static bool pgembed_is_exec(const char *dir, const char *prog)
{
	char *p = bu_asprintf("%s/%s", dir, prog);
	bool ok = access(p, X_OK) == 0;

	free(p);
	return ok;
}

/* PostgreSQL major version from "15" or "9.6" style names; -1 if not one */
static int pgembed_parse_version(const char *s)
{
	int major = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s)) {
		major = major * 10 + (*s - '0');
		if (major > 10000)
			return -1;
		s++;
	}
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		long minor = strtol(s, NULL, 10);

		if (minor < 0 || minor > 99)
			return -1;
		major = major * 100 + (int)minor;   /* 9.6 sorts below 10 (1000) */
	} else {
		major *= 100;
	}
	return major;
}

/* Major version of an existing cluster (data/PG_VERSION), or NULL. */
static char *pgembed_cluster_version(const char *datadir)
{
	char *path = bu_asprintf("%s/PG_VERSION", datadir);
	FILE *f = fopen(path, "r");
	char line[32];
	char *ret = NULL;

	free(path);
	if (f == NULL)
		return NULL;
	if (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (pgembed_parse_version(line) >= 0)
			ret = bu_strdup(line);
	}
	fclose(f);
	return ret;
}

/*
 * Find initdb and pg_ctl: the configured bindir, else the bin directory of the
 * version that created an existing cluster, else the newest
 * /usr/lib/postgresql/N/bin (Debian), else /usr/lib/pgsql or /usr/bin.
 */
static char *pgembed_find_bindir(const char *bindir, const char *want_version,
				 const char **error_r)
{
	if (bindir != NULL && bindir[0] != '\0') {
		if (!pgembed_is_exec(bindir, "initdb") || !pgembed_is_exec(bindir, "pg_ctl")) {
			*error_r = pgembed_err("initdb/pg_ctl not found in %s "
				"(database.pg_bindir): install postgresql "
				"(apt-get install postgresql) or fix database.pg_bindir",
				bindir);
			return NULL;
		}
		return bu_strdup(bindir);
	}
	if (want_version != NULL) {
		char *p = bu_asprintf("/usr/lib/postgresql/%s/bin", want_version);

		if (pgembed_is_exec(p, "initdb") && pgembed_is_exec(p, "pg_ctl"))
			return p;
		free(p);
	}

	DIR *d = opendir("/usr/lib/postgresql");
	char *best = NULL;
	int best_ver = -1;

	if (d != NULL) {
		struct dirent *de;

		while ((de = readdir(d)) != NULL) {
			int v = pgembed_parse_version(de->d_name);
			char *p;

			if (v < 0 || v <= best_ver)
				continue;
			p = bu_asprintf("/usr/lib/postgresql/%s/bin", de->d_name);
			if (pgembed_is_exec(p, "initdb") && pgembed_is_exec(p, "pg_ctl")) {
				free(best);
				best = p;
				best_ver = v;
			} else {
				free(p);
			}
		}
		closedir(d);
	}
	if (best != NULL)
		return best;

	static const char *const fallback[] = { "/usr/pgsql/bin", "/usr/local/pgsql/bin",
						 "/usr/bin", "/usr/local/bin" };
	for (size_t i = 0; i < BU_N_ELEMENTS(fallback); i++) {
		if (pgembed_is_exec(fallback[i], "initdb") &&
		    pgembed_is_exec(fallback[i], "pg_ctl"))
			return bu_strdup(fallback[i]);
	}
	*error_r = pgembed_err("initdb not found: install postgresql "
			       "(apt-get install postgresql) or set database.pg_bindir");
	return NULL;
}

/* Major version of the server binaries in bindir ("15"), from PG_VERSION
 * files is not possible before initdb, so ask pg_ctl --version. */
static char *pgembed_bindir_version(const char *bindir)
{
	char *cmd = bu_asprintf("%s/pg_ctl", bindir);
	int pfd[2];
	pid_t pid;
	char out[256];
	size_t n = 0;
	char *ret = NULL;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		free(cmd);
		return NULL;
	}
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		execl(cmd, "pg_ctl", "--version", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (pid > 0 && n < sizeof(out) - 1) {
		ssize_t r = read(pfd[0], out + n, sizeof(out) - 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(pfd[0]);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	out[n] = '\0';
	free(cmd);
	/* "pg_ctl (PostgreSQL) 15.4 (Debian 15.4-1)" */
	char *p = strstr(out, ") ");
	if (p != NULL) {
		p += 2;
		size_t len = strspn(p, "0123456789.");
		char *ver = bu_strndup(p, len);
		char *dot = strchr(ver, '.');

		/* 10+ : major is before the dot; 9.x : major is "9.x" */
		if (dot != NULL && strtol(ver, NULL, 10) < 10)
			dot = strchr(dot + 1, '.');
		if (dot != NULL)
			*dot = '\0';
		if (pgembed_parse_version(ver) >= 0)
			ret = ver;
		else
			free(ver);
	}
	return ret;
}

struct pgembed_user {
	bool switch_user;
	uid_t uid;
	gid_t gid;
	const char *name;
};

/*
 * Run argv (argv[0] a full path) as u, with cwd = dir, stdin /dev/null and
 * stdout+stderr captured into *out_r (heap, NUL-terminated, capped).
 * Returns the exit status (0..255), or -1 if it could not run or was killed.
 */
static int pgembed_run(const struct pgembed_user *u, const char *dir,
		       char *const argv[], char **out_r)
{
	int pfd[2];
	pid_t pid;
	struct bu_buf out;
	int status;

	bu_buf_init(&out, 64 * 1024);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		*out_r = bu_asprintf("pipe: %s", strerror(errno));
		bu_buf_deinit(&out);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		*out_r = bu_asprintf("fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		bu_buf_deinit(&out);
		return -1;
	}
	if (pid == 0) {
		/* child: no async-signal-unsafe calls that could deadlock
		 * beyond what exec needs */
		sigset_t none;
		int devnull = open("/dev/null", O_RDONLY);

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		/* own session: a ^C meant for bureaud must not reach the
		 * postmaster, which bureaud stops itself */
		setsid();
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		/* listening sockets, the log file... are not the postmaster's */
		if (close_range(3, ~0U, 0) < 0) {
			for (int fd = 3; fd < 1024; fd++)
				close(fd);
		}
		if (u->switch_user) {
			if (setgid(u->gid) < 0 || initgroups(u->name, u->gid) < 0 ||
			    setuid(u->uid) < 0) {
				dprintf(2, "cannot switch to user %s: %s\n", u->name,
					strerror(errno));
				_exit(126);
			}
			setenv("HOME", dir, 1);
			setenv("USER", u->name, 1);
			setenv("LOGNAME", u->name, 1);
		}
		if (chdir(dir) < 0) {
			dprintf(2, "chdir %s: %s\n", dir, strerror(errno));
			_exit(126);
		}
		/* the environment must not point libpq/pg_ctl elsewhere */
		unsetenv("PGDATA");
		unsetenv("PGHOST");
		unsetenv("PGPORT");
		unsetenv("PGUSER");
		unsetenv("PGDATABASE");
		unsetenv("PGOPTIONS");
		execv(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char chunk[4096];
		ssize_t r = read(pfd[0], chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		(void)bu_buf_append(&out, chunk, (size_t)r);   /* capped: drop the rest */
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	/* trim trailing newlines for log lines */
	while (out.len > 0 && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == '\r'))
		out.len--;
	if (out.data != NULL)
		out.data[out.len] = '\0';
	*out_r = bu_buf_steal(&out, NULL);
	if (*out_r == NULL)
		*out_r = bu_strdup("");
	if (status == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* last line of a program's output, for a one-line error */
static const char *pgembed_last_line(const char *out)
{
	const char *nl = strrchr(out, '\n');

	return nl != NULL ? nl + 1 : out;
}

static int pgembed_mkdir(const char *path, mode_t mode, const struct pgembed_user *u,
			 const char **error_r)
{
	struct stat st;

	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		*error_r = pgembed_err("mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*error_r = pgembed_err("%s is not a directory", path);
		return -1;
	}
	if (u->switch_user && (st.st_uid != u->uid || st.st_gid != u->gid)) {
		if (chown(path, u->uid, u->gid) < 0) {
			*error_r = pgembed_err("chown %s to %s: %s", path, u->name,
					       strerror(errno));
			return -1;
		}
	}
	if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0) {
		*error_r = pgembed_err("chmod %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Characters that survive pg_ctl's shell command line and PostgreSQL's
 * list syntax for unix_socket_directories without quoting. */
static bool pgembed_path_ok(const char *p)
{
	for (; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr("/._-+@~", *p) == NULL)
			return false;
	}
	return true;
}

static char *pgembed_abs_dir(const char *dir)
{
	char *abs = realpath(dir, NULL);

	if (abs == NULL)
		return NULL;
	char *ret = bu_strdup(abs);
	free(abs);
	return ret;
}

char *bu_pgembed_conninfo(const char *dir)
{
	char *abs = pgembed_abs_dir(dir);
	char *ret;

	if (abs == NULL) {
		/* not created yet: best effort, relative to the cwd */
		if (dir[0] == '/') {
			abs = bu_strdup(dir);
		} else {
			char cwd[4096];

			if (getcwd(cwd, sizeof(cwd)) == NULL)
				abs = bu_strdup(dir);
			else
				abs = bu_asprintf("%s/%s", cwd, dir);
		}
	}
	ret = bu_asprintf("host=%s/run dbname=%s user=%s", abs, PGEMBED_DB,
			  PGEMBED_SUPERUSER);
	free(abs);
	return ret;
}

/* pg_ctl status: 0 running, 3 not running, 4 no cluster */
static int pgembed_status(struct bu_pgembed *pg, const struct pgembed_user *u)
{
	char *pgctl = bu_asprintf("%s/pg_ctl", pg->bindir);
	char *datadir = bu_asprintf("%s/data", pg->dir);
	char *argv[] = { pgctl, "-D", datadir, "status", NULL };
	char *out = NULL;
	int rc = pgembed_run(u, pg->dir, argv, &out);

	free(out);
	free(pgctl);
	free(datadir);
	return rc;
}

/* postmaster.pid names a live process (not a zombie left by kill -9 whose
 * parent has not reaped it yet: pg_ctl status counts those as running) */
static bool pgembed_postmaster_alive(const char *datadir)
{
	char *path = bu_asprintf("%s/postmaster.pid", datadir);
	FILE *f = fopen(path, "re");
	char line[64], stat[512];
	long pid = 0;
	bool alive = false;

	free(path);
	if (f == NULL)
		return false;
	if (fgets(line, sizeof(line), f) != NULL)
		pid = strtol(line, NULL, 10);
	fclose(f);
	if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno != EPERM))
		return false;
	path = bu_asprintf("/proc/%ld/stat", pid);
	f = fopen(path, "re");
	free(path);
	if (f == NULL)
		return true;    /* no /proc: trust kill() */
	if (fgets(stat, sizeof(stat), f) != NULL) {
		/* "pid (comm) S ...": the state follows the last ')' */
		char *rp = strrchr(stat, ')');

		alive = rp == NULL || (rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X');
	} else {
		alive = true;
	}
	fclose(f);
	return alive;
}

static int pgembed_initdb(struct bu_pgembed *pg, const struct pgembed_user *u,
			  const char **error_r)
{
	char *initdb = bu_asprintf("%s/initdb", pg->bindir);
	char *datadir = bu_asprintf("%s/data", pg->dir);
	/* C.UTF-8 gives UTF-8 character classes with byte-order collation;
	 * plain C where the C library lacks it */
	locale_t loc = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
	const char *locale = loc != (locale_t)0 ? "--locale=C.UTF-8" : "--locale=C";
	char *argv[] = { initdb, "-D", datadir, "-U", PGEMBED_SUPERUSER,
			 "--auth=trust", "-E", "UTF8", (char *)locale,
			 "--no-instructions", NULL };
	char *out = NULL;
	int rc;

	if (loc != (locale_t)0)
		freelocale(loc);
	bu_info("event=pg.initdb dir=%s bindir=%s user=%s", bu_log_q(datadir),
		bu_log_q(pg->bindir), u->switch_user ? u->name : "self");
	rc = pgembed_run(u, pg->dir, argv, &out);
	if (rc != 0) {
		bu_error("event=pg.initdb.failed rc=%d output=%s", rc, bu_log_q(out));
		*error_r = pgembed_err("initdb -D %s failed: %s (see the log; remove %s "
				       "and try again once fixed)", datadir,
				       pgembed_last_line(out), datadir);
	} else {
		bu_debug("event=pg.initdb.output output=%s", bu_log_q(out));
	}
	free(out);
	free(initdb);
	free(datadir);
	return rc == 0 ? 0 : -1;
}

/* The last FATAL message in the server log (heap), or NULL: pg_ctl itself
 * only says "Examine the log output." */
static char *pgembed_log_fatal(const char *logfile)
{
	FILE *f = fopen(logfile, "re");
	char line[1024];
	char *last = NULL;

	if (f == NULL)
		return NULL;
	if (fseek(f, -65536, SEEK_END) < 0)
		rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = strstr(line, "FATAL:  ");

		if (p == NULL)
			continue;
		p += 8;
		p[strcspn(p, "\r\n")] = '\0';
		free(last);
		last = bu_strdup(p);
	}
	fclose(f);
	return last;
}

static int pgembed_pg_start(struct bu_pgembed *pg, const struct pgembed_user *u,
			    const char **error_r)
{
	char *pgctl = bu_asprintf("%s/pg_ctl", pg->bindir);
	char *datadir = bu_asprintf("%s/data", pg->dir);
	char *logfile = bu_asprintf("%s/postgresql.log", pg->dir);
	/* pg_ctl hands -o to /bin/sh: the path was checked by pgembed_path_ok */
	char *opts = bu_asprintf("-c listen_addresses='' -c unix_socket_directories=%s/run "
				 "-c unix_socket_permissions=0700 -c fsync=on "
				 "-c shared_buffers=128MB -c max_connections=200",
				 pg->dir);
	char *argv[] = { pgctl, "-D", datadir, "-l", logfile, "-w", "-t",
			 PGEMBED_START_TIMEOUT, "start", "-o", opts, NULL };
	char *out = NULL;
	int rc;

	bu_info("event=pg.start dir=%s", bu_log_q(datadir));
	rc = pgembed_run(u, pg->dir, argv, &out);
	if (rc != 0) {
		char *fatal = pgembed_log_fatal(logfile);

		bu_error("event=pg.start.failed rc=%d output=%s", rc, bu_log_q(out));
		*error_r = pgembed_err("starting PostgreSQL in %s failed: %s "
				       "(see %s)", datadir,
				       fatal != NULL ? fatal : pgembed_last_line(out),
				       logfile);
		free(fatal);
	}
	free(out);
	free(pgctl);
	free(datadir);
	free(logfile);
	free(opts);
	return rc == 0 ? 0 : -1;
}

static void pgembed_pg_stop(struct bu_pgembed *pg)
{
	struct pgembed_user u = { .switch_user = false };
	struct passwd *pw;
	char *pgctl = bu_asprintf("%s/pg_ctl", pg->bindir);
	char *datadir = bu_asprintf("%s/data", pg->dir);
	char *argv[] = { pgctl, "-D", datadir, "-m", "fast", "-w", "-t", "60",
			 "stop", NULL };
	char *out = NULL;
	int rc;

	/* still root (no privilege drop happened): switch as at start */
	if (geteuid() == 0 && pg->user != NULL && (pw = getpwnam(pg->user)) != NULL) {
		u.switch_user = true;
		u.uid = pw->pw_uid;
		u.gid = pw->pw_gid;
		u.name = pg->user;
	}
	rc = pgembed_run(&u, pg->dir, argv, &out);
	if (rc != 0)
		bu_error("event=pg.stop.failed rc=%d output=%s", rc, bu_log_q(out));
	else
		bu_info("event=pg.stop dir=%s", bu_log_q(datadir));
	free(out);
	free(pgctl);
	free(datadir);
}

/* Connect to the postgres database, retrying for up to wait_ms (a cluster
 * still starting answers "the database system is starting up"). NULL with
 * *error_r when it does not answer. */
static PGconn *pgembed_connect_wait(struct bu_pgembed *pg, int wait_ms, const char **error_r)
{
	char *conninfo = bu_asprintf("host=%s/run dbname=postgres user=%s "
				     "application_name=bureaud connect_timeout=10",
				     pg->dir, PGEMBED_SUPERUSER);
	int64_t deadline = bu_mono_ms() + wait_ms;
	PGconn *conn;

	for (;;) {
		conn = PQconnectdb(conninfo);
		if (PQstatus(conn) == CONNECTION_OK || bu_mono_ms() >= deadline)
			break;
		PQfinish(conn);
		usleep(250 * 1000);
	}
	free(conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(conn);
		char clean[300];

		bu_sanitize(clean, sizeof(clean), msg, strcspn(msg, "\n"));
		*error_r = pgembed_err("cannot connect to the embedded PostgreSQL in "
				       "%s/run: %s (see %s/postgresql.log)", pg->dir,
				       clean, pg->dir);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Create database "bureau" unless it exists (two starters may race).
 * Takes conn. */
static int pgembed_create_db(PGconn *conn, const char **error_r)
{
	PGresult *res;
	int ret = -1;

	const char *params[] = { PGEMBED_DB };
	res = PQexecParams(conn, "SELECT 1 FROM pg_database WHERE datname = $1",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		ret = 0;
	} else if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		PQclear(res);
		/* CREATE DATABASE takes no parameters; the name is our constant */
		res = PQexec(conn, "CREATE DATABASE " PGEMBED_DB
			     " ENCODING 'UTF8' TEMPLATE template0");
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			bu_info("event=pg.createdb db=" PGEMBED_DB);
			ret = 0;
		} else if (state != NULL && (strcmp(state, "42P04") == 0 ||
					     strcmp(state, "23505") == 0)) {
			ret = 0;   /* another starter was faster */
		}
	}
	if (ret < 0) {
		const char *msg = PQresultErrorMessage(res);
		char clean[300];

		bu_sanitize(clean, sizeof(clean), msg, strcspn(msg, "\n"));
		*error_r = pgembed_err("cannot create database " PGEMBED_DB ": %s", clean);
	}
	PQclear(res);
	PQfinish(conn);
	return ret;
}

struct bu_pgembed *bu_pgembed_start(const char *dir, const char *bindir,
				    const char *run_as_user, char **conninfo_r,
				    const char **error_r)
{
	struct pgembed_user u = { .switch_user = false };
	struct bu_pgembed *pg;
	struct stat st;
	char *datadir = NULL;
	char *version = NULL;
	int lock_fd = -1;
	int rc;

	*conninfo_r = NULL;
	if (geteuid() == 0) {
		const char *name = run_as_user != NULL && run_as_user[0] != '\0' ?
			run_as_user : "postgres";
		struct passwd *pw = getpwnam(name);

		if (pw == NULL) {
			*error_r = pgembed_err("user %s does not exist: PostgreSQL cannot "
					       "run as root; create it (useradd --system "
					       "--no-create-home %s) or set user", name, name);
			return NULL;
		}
		if (pw->pw_uid == 0) {
			*error_r = pgembed_err("user %s is root: PostgreSQL cannot run as "
					       "root; set user to an unprivileged account", name);
			return NULL;
		}
		u.switch_user = true;
		u.uid = pw->pw_uid;
		u.gid = pw->pw_gid;
		u.name = name;
	}

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = pgembed_err("mkdir %s: %s", dir, strerror(errno));
		return NULL;
	}
	pg = bu_malloc(sizeof(*pg));
	pg->dir = pgembed_abs_dir(dir);
	if (pg->dir == NULL) {
		*error_r = pgembed_err("%s: %s", dir, strerror(errno));
		goto fail;
	}
	if (!pgembed_path_ok(pg->dir)) {
		*error_r = pgembed_err("embedded PostgreSQL directory %s: use a state_dir "
				       "path of letters, digits and / . _ - only", pg->dir);
		goto fail;
	}
	/* the socket path must fit sockaddr_un.sun_path */
	if (strlen(pg->dir) + strlen("/run/.s.PGSQL.5432") >=
	    sizeof(((struct sockaddr_un *)0)->sun_path)) {
		*error_r = pgembed_err("embedded PostgreSQL directory %s is too long for "
				       "a Unix socket path: use a shorter state_dir", pg->dir);
		goto fail;
	}
	if (u.switch_user)
		pg->user = bu_strdup(u.name);
	if (pgembed_mkdir(pg->dir, 0700, &u, error_r) < 0)
		goto fail;
	char *rundir = bu_asprintf("%s/run", pg->dir);
	rc = pgembed_mkdir(rundir, 0700, &u, error_r);
	free(rundir);
	if (rc < 0)
		goto fail;

	/* two starters on one state dir: one runs initdb/pg_ctl at a time */
	char *lockpath = bu_asprintf("%s/start.lock", pg->dir);
	lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(lockpath);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0) {
		*error_r = pgembed_err("%s/start.lock: %s", pg->dir, strerror(errno));
		goto fail;
	}
	if (u.switch_user && fchown(lock_fd, u.uid, u.gid) < 0) {
		*error_r = pgembed_err("chown %s/start.lock: %s", pg->dir, strerror(errno));
		goto fail;
	}

	datadir = bu_asprintf("%s/data", pg->dir);
	version = pgembed_cluster_version(datadir);
	pg->bindir = pgembed_find_bindir(bindir, version, error_r);
	if (pg->bindir == NULL)
		goto fail;

	if (version != NULL) {
		char *binver = pgembed_bindir_version(pg->bindir);

		if (binver != NULL && strcmp(binver, version) != 0) {
			*error_r = pgembed_err("the cluster in %s was created by PostgreSQL "
					       "%s but %s is PostgreSQL %s: install "
					       "postgresql-%s and set database.pg_bindir, or "
					       "upgrade the cluster with pg_upgrade", datadir,
					       version, pg->bindir, binver, version);
			free(binver);
			goto fail;
		}
		free(binver);
		if (stat(datadir, &st) == 0 && u.switch_user && st.st_uid != u.uid) {
			*error_r = pgembed_err("%s belongs to uid %u, not to %s: chown -R %s %s",
					       datadir, (unsigned)st.st_uid, u.name, u.name,
					       pg->dir);
			goto fail;
		}
	} else {
		if (stat(datadir, &st) == 0) {
			DIR *d = opendir(datadir);
			struct dirent *de;
			bool empty = true;

			while (d != NULL && (de = readdir(d)) != NULL) {
				if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
					empty = false;
			}
			if (d != NULL)
				closedir(d);
			if (!empty) {
				*error_r = pgembed_err("%s exists but is not a PostgreSQL "
						       "cluster (no PG_VERSION): move it "
						       "away", datadir);
				goto fail;
			}
		}
		if (pgembed_initdb(pg, &u, error_r) < 0)
			goto fail;
	}

	/*
	 * Running already (another bureaud, or left over after bureaud was
	 * killed)? Reuse it if it answers. A postmaster killed with -9 may
	 * still look alive for a moment (a zombie, or children holding its
	 * shared memory): then pg_ctl start fails and we look again.
	 */
	PGconn *conn = NULL;
	for (int attempt = 0; conn == NULL; attempt++) {
		if (attempt > 0) {
			if (attempt == 5)
				goto fail;
			bu_warn("event=pg.retry attempt=%d err=%s", attempt, bu_log_q(*error_r));
			sleep(1);
		}
		if (pgembed_status(pg, &u) == 0 && pgembed_postmaster_alive(datadir)) {
			conn = pgembed_connect_wait(pg, 10000, error_r);
			if (conn != NULL)
				bu_info("event=pg.reuse dir=%s", bu_log_q(datadir));
			continue;
		}
		if (pgembed_pg_start(pg, &u, error_r) < 0)
			continue;
		pg->started_by_us = true;
		conn = pgembed_connect_wait(pg, 30000, error_r);
		if (conn == NULL) {
			pgembed_pg_stop(pg);
			goto fail;
		}
	}
	if (pgembed_create_db(conn, error_r) < 0) {
		if (pg->started_by_us)
			pgembed_pg_stop(pg);
		goto fail;
	}
	*conninfo_r = bu_asprintf("host=%s/run dbname=%s user=%s", pg->dir,
				  PGEMBED_DB, PGEMBED_SUPERUSER);
	free(datadir);
	free(version);
	close(lock_fd);
	return pg;

fail:
	if (lock_fd >= 0)
		close(lock_fd);
	free(datadir);
	free(version);
	free(pg->dir);
	free(pg->bindir);
	free(pg->user);
	free(pg);
	return NULL;
}

void bu_pgembed_stop(struct bu_pgembed **pgp)
{
	struct bu_pgembed *pg = *pgp;

	if (pg == NULL)
		return;
	if (pg->started_by_us)
		pgembed_pg_stop(pg);
	free(pg->dir);
	free(pg->bindir);
	free(pg->user);
	free(pg);
	*pgp = NULL;
}

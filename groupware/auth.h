/*
 * auth.h - the one authenticate() every protocol calls, plus password
 * hashing (libxcrypt).
 *
 * Throttling: failures are counted in the database per client address and
 * per account over cfg auth_fail_window seconds; past auth_fail_limit the
 * attempt is refused with AUTH_THROTTLED *without checking the password*,
 * so guessing gets no signal. A success clears the account's counter.
 * Every attempt logs one line: event=auth proto= mech= user= ip= result=.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include "principal.h"

struct bu_db;

enum auth_result {
	AUTH_OK = 1,
	AUTH_FAILED = 0,        /* wrong user or password: say so, generically */
	AUTH_TEMPFAIL = -1,     /* database down: a temporary error */
	AUTH_THROTTLED = -2,    /* too many failures: try later */
	AUTH_DISABLED = -3,     /* account disabled (reported as FAILED to client) */
};

struct auth_request {
	const char *login;        /* address (or alias) */
	const char *password;
	const char *client_ip;
	const char *proto;        /* "imap", "pop3", "smtp", "http", ... */
	const char *mech;         /* "PLAIN", "LOGIN", "basic", ... */
	int fail_limit;           /* from config */
	int fail_window;          /* seconds */
};

/* On AUTH_OK, *p_r is the principal (arena). Also accepts the account's
 * app passwords (and records last_used). */
enum auth_result auth_authenticate(struct bu_db *db, struct bu_arena *a,
				   const struct auth_request *req, struct principal **p_r);

/* Verified-password cache lifetime in seconds (0 = off, the default until
 * called); also empties the cache. bureaud calls it with auth.cache_ttl. */
void auth_cache_configure(int ttl_seconds);

/* ---- hashing (password.c) ---- */
/* scheme: "yescrypt" (default, $y$), "sha512" ($6$), "bcrypt" ($2b$).
 * Returns heap string, NULL on failure. */
char *password_hash(const char *password, const char *scheme);
/* true when password matches hash (any scheme crypt_r understands);
 * constant-time comparison. */
bool password_verify(const char *password, const char *hash);
/* Random printable password of n chars (app passwords), heap. */
char *password_random(size_t n);

#endif

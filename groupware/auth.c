/*
 * auth.c - the one authenticate() every protocol calls.
 *
 * 1. Find the account by primary address or alias (full address only).
 * 2. Throttle: rows 'ip:<client address>' and 'acct:<address>' in
 *    auth_failures count failures in a window of fail_window seconds that
 *    starts with the first failure; a row whose window is over counts as
 *    zero. At fail_limit failures in either row the attempt is refused as
 *    AUTH_THROTTLED before any password is looked at.
 *    The account row is named by the account's primary address, so that
 *    ALICE@Example.TEST and every alias of alice count against alice. The
 *    address row of an IPv6 client is its /48 network ("ip:2001:db8::/48"):
 *    one site is given a /48 (or a /56 inside one) and could otherwise
 *    guess from each of its addresses in turn (Dovecot's auth penalty masks
 *    48 bits likewise); an IPv4-mapped address counts as the IPv4 one.
 * 3. Verify the password against the account's hash, then against each of
 *    its app passwords (recording last_used for the one that matched).
 *    Groups and shared mailboxes never log in, whatever hashes their rows
 *    hold (members reach a shared mailbox through its ACL).
 *    Unknown logins, and accounts without a password, are verified against
 *    a dummy yescrypt hash so that the answer takes as long as for a real
 *    account: timing does not tell who exists.
 * 4. Success clears the account's row; a failure increments both rows (one
 *    upsert, window logic in SQL). Failures for logins that do not exist
 *    are counted under 'acct:<login>' too, so that throttling does not tell
 *    either. Disabled accounts fail (AUTH_DISABLED) and count as failures.
 *
 * Verified-password cache: verifying a yescrypt hash costs ~20 ms of CPU
 * by design, and clients log in often (IMAP clients open a connection per
 * folder, ActiveSync sends credentials with every request). A successful
 * verification is remembered as HMAC-SHA256(process secret, account id,
 * stored hash, password) for auth.cache_ttl seconds; a later login whose
 * MAC is in the cache skips the hash function. Neither the password nor a
 * plain digest of it is kept, the secret is random per process, a changed
 * password (a new stored hash) or a removed app password never matches,
 * and only successes are cached, so throttling and failure counting are
 * unchanged. auth.cache_ttl = 0 turns it off.
 *
 * Every attempt logs one line (event=auth proto= mech= user= ip= result=)
 * and counts bureau_auth_total{proto,result}.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>

#include "groupware/auth.h"
#include "server/core/db.h"
#include "server/core/log.h"
#include "server/core/metrics.h"

#define LOGIN_MAX 320

/* yescrypt (libxcrypt default cost) of a random string nobody knows */
static const char dummy_hash[] =
	"$y$j9T$VQZqVQ00xx7Ltr7eg1xz20$Urhb6d0xaWIvo5Vea9H0wH..bP3FckWg.LSzUAgx946";

/* ---- verified-password cache ----------------------------------------- */

#define AUTH_CACHE_SLOTS 4096

struct auth_cache_entry {
	uint8_t mac[32];
	int64_t expires_ms;   /* 0: empty */
};

static pthread_mutex_t auth_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct auth_cache_entry auth_cache[AUTH_CACHE_SLOTS];
static uint8_t auth_cache_secret[32];
static bool auth_cache_keyed;
static int auth_cache_ttl_s;

void auth_cache_configure(int ttl_seconds)
{
	pthread_mutex_lock(&auth_cache_lock);
	if (!auth_cache_keyed && ttl_seconds > 0) {
		if (RAND_bytes(auth_cache_secret, sizeof(auth_cache_secret)) == 1)
			auth_cache_keyed = true;
		else
			ttl_seconds = 0;   /* no secret, no cache */
	}
	auth_cache_ttl_s = ttl_seconds > 0 ? ttl_seconds : 0;
	memset(auth_cache, 0, sizeof(auth_cache));
	pthread_mutex_unlock(&auth_cache_lock);
}

/* false when the cache is off */
static bool auth_cache_mac(int64_t account_id, const char *hash, const char *password,
			   uint8_t mac[32])
{
	size_t hlen = strlen(hash), plen = strlen(password), n = 8 + hlen + 1 + plen;
	unsigned int len = 32;
	uint8_t *msg;
	bool ok;

	if (auth_cache_ttl_s <= 0)
		return false;
	msg = bu_malloc(n);
	for (int i = 0; i < 8; i++)
		msg[i] = (uint8_t)((uint64_t)account_id >> (8 * i));
	memcpy(msg + 8, hash, hlen + 1);
	memcpy(msg + 8 + hlen + 1, password, plen);
	ok = HMAC(EVP_sha256(), auth_cache_secret, sizeof(auth_cache_secret), msg, n, mac,
		  &len) != NULL && len == 32;
	OPENSSL_cleanse(msg, n);
	free(msg);
	return ok;
}

static size_t auth_cache_slot(const uint8_t mac[32])
{
	return ((size_t)mac[0] | (size_t)mac[1] << 8) % AUTH_CACHE_SLOTS;
}

static bool auth_cache_hit(const uint8_t mac[32])
{
	struct auth_cache_entry *e = &auth_cache[auth_cache_slot(mac)];
	int64_t now = bu_mono_ms();
	bool hit;

	pthread_mutex_lock(&auth_cache_lock);
	hit = e->expires_ms > now && CRYPTO_memcmp(e->mac, mac, 32) == 0;
	pthread_mutex_unlock(&auth_cache_lock);
	return hit;
}

static void auth_cache_put(const uint8_t mac[32])
{
	struct auth_cache_entry *e = &auth_cache[auth_cache_slot(mac)];

	pthread_mutex_lock(&auth_cache_lock);
	if (auth_cache_ttl_s > 0) {
		memcpy(e->mac, mac, 32);
		e->expires_ms = bu_mono_ms() + (int64_t)auth_cache_ttl_s * 1000;
	}
	pthread_mutex_unlock(&auth_cache_lock);
}

/* password against one stored hash, through the cache */
static bool verify_cached(int64_t account_id, const char *password, const char *hash)
{
	uint8_t mac[32];
	bool cacheable = auth_cache_mac(account_id, hash, password, mac);

	if (cacheable && auth_cache_hit(mac)) {
		bu_metric_add("bureau_auth_cache_hits_total", 1);
		return true;
	}
	if (!password_verify(password, hash))
		return false;
	if (cacheable)
		auth_cache_put(mac);
	return true;
}

static const char *result_name(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return "ok";
	case AUTH_FAILED:
		return "failed";
	case AUTH_TEMPFAIL:
		return "tempfail";
	case AUTH_THROTTLED:
		return "throttled";
	case AUTH_DISABLED:
		return "disabled";
	}
	return "failed";
}

static enum auth_result finish(const struct auth_request *req, enum auth_result r)
{
	char proto[24], series[96];
	size_t n = 0;

	bu_info("event=auth proto=%s mech=%s user=%s ip=%s result=%s",
		bu_log_q(req->proto != NULL ? req->proto : ""),
		bu_log_q(req->mech != NULL ? req->mech : ""),
		bu_log_q(req->login != NULL ? req->login : ""),
		bu_log_q(req->client_ip != NULL ? req->client_ip : ""),
		result_name(r));
	/* label value from our own protocol names; keep it tame anyway */
	for (const char *p = req->proto != NULL ? req->proto : ""; *p != '\0' &&
	     n + 1 < sizeof(proto); p++) {
		char c = *p;

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
			proto[n++] = c;
	}
	proto[n] = '\0';
	snprintf(series, sizeof(series), "bureau_auth_total{proto=\"%s\",result=\"%s\"}",
		 proto, result_name(r));
	bu_metric_add(series, 1);
	return r;
}

/* The throttle row of a client address: see step 2 in the file comment. */
static void ip_throttle_key(const char *ip, char *out, size_t outsz)
{
	struct in6_addr a6;
	struct in_addr a4;
	char text[INET6_ADDRSTRLEN];

	if (ip == NULL || ip[0] == '\0')
		ip = "unknown";
	if (inet_pton(AF_INET6, ip, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(&a4, &a6.s6_addr[12], sizeof(a4));
			if (inet_ntop(AF_INET, &a4, text, sizeof(text)) != NULL) {
				snprintf(out, outsz, "ip:%s", text);
				return;
			}
		} else {
			memset(&a6.s6_addr[6], 0, sizeof(a6.s6_addr) - 6);
			if (inet_ntop(AF_INET6, &a6, text, sizeof(text)) != NULL) {
				snprintf(out, outsz, "ip:%s/48", text);
				return;
			}
		}
	} else if (inet_pton(AF_INET, ip, &a4) == 1 &&
		   inet_ntop(AF_INET, &a4, text, sizeof(text)) != NULL) {
		snprintf(out, outsz, "ip:%s", text);
		return;
	}
	/* not an address (a test, or a transport without one): as given,
	 * within the printable ASCII an address has */
	snprintf(out, outsz, "ip:%.64s", ip);
	for (char *p = out + 3; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	}
}

/* 1 throttled, 0 not, -1 error */
static int throttled(struct bu_db *db, const char *ip_key, const char *acct_key,
		     int limit, int window)
{
	char lim[16], win[16];
	const char *params[4] = { ip_key, acct_key, lim, win };
	PGresult *res;
	int ret;

	if (limit <= 0)
		return 0;
	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(win, sizeof(win), "%d", window);
	res = bu_db_query(db, "SELECT 1 FROM auth_failures WHERE key IN ($1, $2)"
			  " AND failures >= $3::int"
			  " AND window_start > now() - make_interval(secs => $4::int)"
			  " LIMIT 1", 4, params);
	if (res == NULL)
		return -1;
	ret = PQntuples(res) > 0 ? 1 : 0;
	PQclear(res);
	return ret;
}

static int record_failure(struct bu_db *db, const char *ip_key, const char *acct_key,
			  int window)
{
	static __thread unsigned failures_seen;
	char win[16];
	const char *params[3] = { ip_key, acct_key, win };

	snprintf(win, sizeof(win), "%d", window);
	if (bu_db_exec(db,
		"INSERT INTO auth_failures AS f (key, failures, window_start)"
		" VALUES ($1, 1, now()), ($2, 1, now())"
		" ON CONFLICT (key) DO UPDATE SET"
		"  failures = CASE WHEN f.window_start <= now() - make_interval(secs => $3::int)"
		"             THEN 1 ELSE f.failures + 1 END,"
		"  window_start = CASE WHEN f.window_start <= now() - make_interval(secs => $3::int)"
		"             THEN now() ELSE f.window_start END", 3, params) < 0)
		return -1;
	/* now and then, forget windows that are long over */
	if (++failures_seen % 64 == 0)
		(void)bu_db_exec(db, "DELETE FROM auth_failures"
				 " WHERE window_start < now() - make_interval(secs => $1::int)",
				 1, params + 2);
	return 0;
}

/* The account's password hash (id 0) and app password hashes, in that
 * order. NULL on error. */
static PGresult *load_hashes(struct bu_db *db, int64_t account_id)
{
	char ids[24];
	const char *params[1] = { ids };

	snprintf(ids, sizeof(ids), "%" PRId64, account_id);
	return bu_db_query(db,
		"SELECT 0 AS id, password_hash FROM accounts"
		"  WHERE id = $1 AND password_hash IS NOT NULL"
		" UNION ALL"
		" SELECT id, password_hash FROM app_passwords WHERE account_id = $1"
		" ORDER BY 1", 1, params);
}

enum auth_result auth_authenticate(struct bu_db *db, struct bu_arena *a,
				   const struct auth_request *req, struct principal **p_r)
{
	const char *login = req->login != NULL ? req->login : "";
	const char *password = req->password != NULL ? req->password : "";
	int window = req->fail_window > 0 ? req->fail_window : 300;
	char ip_key[80], acct_key[LOGIN_MAX + 8];
	struct principal *p = NULL;
	PGresult *res;
	int64_t matched = -1;   /* 0: account password, > 0: app password id */
	size_t n;
	int ret;

	*p_r = NULL;
	if (strlen(login) <= LOGIN_MAX) {
		ret = principal_lookup(db, a, login, &p);
		if (ret < 0)
			return finish(req, AUTH_TEMPFAIL);
	}
	ip_throttle_key(req->client_ip, ip_key, sizeof(ip_key));
	if (p != NULL) {
		snprintf(acct_key, sizeof(acct_key), "acct:%s", p->address);
	} else {
		/* lower-case, like the addresses of real accounts; bytes no
		 * address has (and invalid UTF-8) become '?' */
		n = (size_t)snprintf(acct_key, sizeof(acct_key), "acct:%.*s", LOGIN_MAX, login);
		for (size_t i = 5; i < n && i < sizeof(acct_key); i++) {
			unsigned char ch = (unsigned char)acct_key[i];

			if (ch >= 'A' && ch <= 'Z')
				acct_key[i] = (char)(ch - 'A' + 'a');
			else if (ch <= 0x20 || ch >= 0x7f)
				acct_key[i] = '?';
		}
	}

	ret = throttled(db, ip_key, acct_key, req->fail_limit, window);
	if (ret < 0)
		return finish(req, AUTH_TEMPFAIL);
	if (ret > 0)
		return finish(req, AUTH_THROTTLED);

	/* groups and shared mailboxes do not log in: for them, as for unknown
	 * logins, the same cost and the same count as a wrong password */
	if (p != NULL && p->kind != PRINCIPAL_GROUP && p->kind != PRINCIPAL_SHARED) {
		res = load_hashes(db, p->id);
		if (res == NULL)
			return finish(req, AUTH_TEMPFAIL);
		for (int i = 0; i < PQntuples(res) && matched < 0; i++) {
			if (verify_cached(p->id, password, PQgetvalue(res, i, 1)))
				matched = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		}
		if (PQntuples(res) == 0)
			(void)password_verify(password, dummy_hash);
		PQclear(res);
	} else {
		(void)password_verify(password, dummy_hash);
	}

	if (matched < 0 || p->disabled) {
		if (record_failure(db, ip_key, acct_key, window) < 0)
			return finish(req, AUTH_TEMPFAIL);
		/* "disabled" only when the password was right: otherwise it is
		 * an ordinary failure (the client hears "failed" either way) */
		return finish(req, matched >= 0 ? AUTH_DISABLED : AUTH_FAILED);
	}

	{
		char ids[24], aps[24];
		const char *kparams[1] = { acct_key };
		const char *params[2] = { ids, aps };

		snprintf(ids, sizeof(ids), "%" PRId64, p->id);
		snprintf(aps, sizeof(aps), "%" PRId64, matched);
		if (bu_db_exec(db, "DELETE FROM auth_failures WHERE key = $1", 1, kparams) < 0)
			return finish(req, AUTH_TEMPFAIL);
		if (matched > 0 &&
		    bu_db_exec(db, "UPDATE app_passwords SET last_used = now()"
			       " WHERE account_id = $1 AND id = $2", 2, params) < 0)
			return finish(req, AUTH_TEMPFAIL);
	}
	*p_r = p;
	return finish(req, AUTH_OK);
}

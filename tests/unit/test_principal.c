/*
 * test_principal - domains, accounts, aliases, catch-all, plus-addressing,
 * members, app passwords and authentication with throttling, against a
 * real PostgreSQL (BUREAU_TEST_DB; skipped without it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/acl.h"
#include "groupware/auth.h"
#include "groupware/collection.h"
#include "groupware/principal.h"
#include "server/core/log.h"
#include "server/core/metrics.h"
#include "tests/unit/gwtest.h"

static struct bu_db *db;
static struct bu_arena *ar;

static bool contains(const char *s, const char *needle)
{
	return s != NULL && strstr(s, needle) != NULL;
}

static int64_t add(const char *address, enum principal_kind kind, const char *password)
{
	struct principal_new pn = {
		.address = address, .kind = kind, .password = password,
		.display_name = "Test", .min_password_length = 8,
	};
	const char *err = NULL;
	int64_t id = 0;
	int ret = principal_add(db, &pn, &id, &err);

	if (ret != 1)
		fprintf(stderr, "principal_add(%s): %d %s\n", address, ret, err);
	GW_CHECK(ret == 1 && id > 0);
	return id;
}

static enum auth_result auth(const char *login, const char *password, const char *ip,
			     int limit, struct principal **p_r)
{
	struct auth_request req = {
		.login = login, .password = password, .client_ip = ip,
		.proto = "imap", .mech = "PLAIN", .fail_limit = limit, .fail_window = 600,
	};
	struct principal *p = NULL;
	enum auth_result r = auth_authenticate(db, ar, &req, &p);

	if (p_r != NULL)
		*p_r = p;
	return r;
}

static void test_domains(void)
{
	const char *err = NULL;
	struct domain_info *dl;
	size_t n;

	GW_CHECK(domain_add(db, "Example.TEST", &err) == 1);
	GW_CHECK(domain_add(db, "example.test", &err) == -1 &&
		 strcmp(err, "domain example.test already exists") == 0);
	GW_CHECK(domain_add(db, "other.test", &err) == 1);
	GW_CHECK(domain_add(db, "bad_domain.test", &err) == -1);
	GW_CHECK(domain_add(db, "-bad.test", &err) == -1);
	GW_CHECK(domain_add(db, "bad-.test", &err) == -1);
	GW_CHECK(domain_add(db, "a..test", &err) == -1);
	GW_CHECK(domain_add(db, "", &err) == -1);
	GW_CHECK(domain_add(db, "bücher.test", &err) == -1 && contains(err, "punycode"));
	GW_CHECK(domain_list(db, ar, &dl, &n, &err) == 1);
	GW_CHECK(n == 2 && strcmp(dl[0].name, "example.test") == 0 &&
		 strcmp(dl[1].name, "other.test") == 0 && dl[0].accounts == 0 &&
		 dl[0].catchall == NULL);
}

static void test_accounts(void)
{
	struct principal_new pn = { .kind = PRINCIPAL_USER, .min_password_length = 8 };
	struct principal *p, *list;
	struct collection *colls;
	const char *err = NULL;
	int64_t alice, bob, id;
	size_t n;

	alice = add("alice@example.test", PRINCIPAL_USER, "alice-password");
	bob = add("Bob@Example.Test", PRINCIPAL_USER, "bob-password");
	GW_CHECK(alice != bob);

	/* validation, one line each */
	pn.address = "carol@nowhere.test";
	pn.password = "carol-password";
	GW_CHECK(principal_add(db, &pn, &id, &err) == 0 &&
		 strcmp(err, "domain nowhere.test does not exist; add it with:"
			" bureauctl domain add nowhere.test") == 0);
	pn.address = "ALICE@example.test";
	GW_CHECK(principal_add(db, &pn, &id, &err) == -1 &&
		 strcmp(err, "alice@example.test already exists") == 0);
	pn.address = "carol@example.test";
	pn.password = "short";
	GW_CHECK(principal_add(db, &pn, &id, &err) == -1 &&
		 strcmp(err, "password too short: at least 8 characters") == 0);
	pn.password = "carol-password";
	pn.scheme = "md5";
	GW_CHECK(principal_add(db, &pn, &id, &err) == -1 && contains(err, "scheme"));
	pn.scheme = NULL;
	static const char *const bad[] = {
		"carol", "@example.test", "carol@", "a..b@example.test", ".a@example.test",
		"a.@example.test", "a+b@example.test", "a/b@example.test", "a b@example.test",
		"a@b@example.test", "carol@exa_mple.test",
	};
	for (size_t i = 0; i < BU_N_ELEMENTS(bad); i++) {
		pn.address = bad[i];
		err = NULL;
		GW_CHECK(principal_add(db, &pn, &id, &err) == -1 && err != NULL);
	}
	pn.address = "team@example.test";
	pn.kind = PRINCIPAL_GROUP;
	GW_CHECK(principal_add(db, &pn, &id, &err) == -1 && contains(err, "no password"));
	pn.kind = PRINCIPAL_SHARED;
	GW_CHECK(principal_add(db, &pn, &id, &err) == -1 && contains(err, "no password"));

	/* lookups */
	GW_CHECK(principal_lookup(db, ar, "ALICE@Example.Test", &p) == 1);
	GW_CHECK(p != NULL && p->id == alice && strcmp(p->address, "alice@example.test") == 0 &&
		 strcmp(p->localpart, "alice") == 0 && strcmp(p->domain, "example.test") == 0 &&
		 p->kind == PRINCIPAL_USER && !p->disabled && p->created > 1600000000 &&
		 strcmp(p->display_name, "Test") == 0);
	GW_CHECK(principal_lookup(db, ar, "bob@example.test", &p) == 1 && p->id == bob);
	GW_CHECK(principal_lookup(db, ar, "nobody@example.test", &p) == 0 && p == NULL);
	GW_CHECK(principal_lookup(db, ar, "garbage", &p) == 0);
	GW_CHECK(principal_lookup(db, ar, "al\xffice@example.test", &p) == 0);
	GW_CHECK(principal_lookup(db, ar, "alice@example.test\r\n", &p) == 0);
	GW_CHECK(principal_resolve_rcpt(db, ar, "\xc3\xa9@example.test", &p) == 0);
	GW_CHECK(principal_get(db, ar, bob, &p) == 1 && strcmp(p->address, "bob@example.test") == 0);
	GW_CHECK(principal_get(db, ar, 999999, &p) == 0);

	/* default collections */
	GW_CHECK(collection_list(db, ar, alice, -1, &colls, &n) == 1 && n == 9);
	GW_CHECK(collection_list(db, ar, alice, COLL_MAIL, &colls, &n) == 1 && n == 6);
	if (n == 6) {
		static const char *const names[] = {
			"INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"
		};
		static const char *const uses[] = {
			NULL, "\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"
		};
		for (size_t i = 0; i < 6; i++) {
			GW_CHECK(strcmp(colls[i].name, names[i]) == 0);
			GW_CHECK(uses[i] == NULL ? colls[i].special_use == NULL
				 : colls[i].special_use != NULL &&
				 strcmp(colls[i].special_use, uses[i]) == 0);
			GW_CHECK(colls[i].uidvalidity != 0 && colls[i].uidnext == 1);
			for (size_t j = 0; j < i; j++)
				GW_CHECK(colls[i].uidvalidity != colls[j].uidvalidity);
		}
	}
	GW_CHECK(collection_list(db, ar, alice, COLL_CALENDAR, &colls, &n) == 1 && n == 1 &&
		 strcmp(colls[0].name, "Calendar") == 0);
	GW_CHECK(collection_list(db, ar, alice, COLL_TASKS, &colls, &n) == 1 && n == 1 &&
		 strcmp(colls[0].name, "Tasks") == 0);
	GW_CHECK(collection_list(db, ar, alice, COLL_ADDRESSBOOK, &colls, &n) == 1 && n == 1 &&
		 strcmp(colls[0].name, "Contacts") == 0);

	id = add("room1@example.test", PRINCIPAL_RESOURCE, NULL);
	GW_CHECK(collection_list(db, ar, id, -1, &colls, &n) == 1 && n == 1 &&
		 colls[0].kind == COLL_CALENDAR);
	id = add("team@example.test", PRINCIPAL_GROUP, NULL);
	GW_CHECK(collection_list(db, ar, id, -1, &colls, &n) == 1 && n == 0);
	id = add("support@example.test", PRINCIPAL_SHARED, NULL);
	GW_CHECK(collection_list(db, ar, id, -1, &colls, &n) == 1 && n == 9);

	/* listings */
	GW_CHECK(principal_list(db, ar, NULL, -1, &list, &n, &err) == 1 && n == 5);
	GW_CHECK(principal_list(db, ar, "example.test", PRINCIPAL_USER, &list, &n, &err) == 1 &&
		 n == 2 && strcmp(list[0].address, "alice@example.test") == 0);
	GW_CHECK(principal_list(db, ar, "other.test", -1, &list, &n, &err) == 1 && n == 0);
	GW_CHECK(principal_list(db, ar, "nowhere.test", -1, &list, &n, &err) == 0 &&
		 contains(err, "does not exist"));

	/* changes */
	GW_CHECK(principal_set_quota(db, "alice@example.test", 1 << 30, 5000, &err) == 1);
	GW_CHECK(principal_lookup(db, ar, "alice@example.test", &p) == 1 &&
		 p->quota_storage == 1 << 30 && p->quota_messages == 5000);
	GW_CHECK(principal_set_quota(db, "alice@example.test", -1, 0, &err) == -1);
	GW_CHECK(principal_set_quota(db, "nobody@example.test", 1, 1, &err) == 0 &&
		 contains(err, "no such account"));
	GW_CHECK(principal_set_password(db, "team@example.test", "whatever-long", NULL, 8,
					&err) == -1);
	GW_CHECK(principal_set_password(db, "alice@example.test", "short", NULL, 8, &err) == -1);
}

static void test_aliases_and_rcpt(void)
{
	struct principal *p;
	const char *err = NULL;
	struct domain_info *dl;
	char **list;
	size_t n;
	int64_t alice, bob;

	GW_CHECK(principal_lookup(db, ar, "alice@example.test", &p) == 1);
	alice = p->id;
	GW_CHECK(principal_lookup(db, ar, "bob@example.test", &p) == 1);
	bob = p->id;

	GW_CHECK(alias_add(db, "Al@Example.test", "alice@example.test", &err) == 1);
	GW_CHECK(alias_add(db, "alice@other.test", "al@example.test", &err) == 1);
	GW_CHECK(alias_add(db, "al@example.test", "bob@example.test", &err) == -1 &&
		 strcmp(err, "al@example.test is already an alias of alice@example.test") == 0);
	GW_CHECK(alias_add(db, "alice@example.test", "bob@example.test", &err) == -1 &&
		 contains(err, "already exists"));
	GW_CHECK(alias_add(db, "x@nowhere.test", "bob@example.test", &err) == 0 &&
		 contains(err, "bureauctl domain add nowhere.test"));
	GW_CHECK(alias_add(db, "y@example.test", "nobody@example.test", &err) == 0 &&
		 contains(err, "no such account"));
	GW_CHECK(alias_add(db, "y+z@example.test", "bob@example.test", &err) == -1);
	{
		struct principal_new pn = {
			.address = "al@example.test", .kind = PRINCIPAL_USER,
			.password = "long-enough",
		};
		int64_t id;

		GW_CHECK(principal_add(db, &pn, &id, &err) == -1 &&
			 contains(err, "already an alias of alice@example.test"));
	}
	GW_CHECK(principal_lookup(db, ar, "AL@example.test", &p) == 1 && p->id == alice &&
		 strcmp(p->address, "alice@example.test") == 0);
	GW_CHECK(alias_list(db, ar, "alice@example.test", &list, &n, &err) == 1 && n == 2 &&
		 strcmp(list[0], "al@example.test") == 0 &&
		 strcmp(list[1], "alice@other.test") == 0);
	GW_CHECK(alias_list(db, ar, NULL, &list, &n, &err) == 1 && n == 2);
	GW_CHECK(alias_list(db, ar, "nobody@example.test", &list, &n, &err) == 0);

	/* delivery */
	GW_CHECK(principal_resolve_rcpt(db, ar, "alice@example.test", &p) == 1 && p->id == alice);
	GW_CHECK(principal_resolve_rcpt(db, ar, "Alice+Lists@Example.TEST", &p) == 1 &&
		 p->id == alice);
	GW_CHECK(principal_resolve_rcpt(db, ar, "al+x+y@example.test", &p) == 1 && p->id == alice);
	GW_CHECK(principal_resolve_rcpt(db, ar, "alice@other.test", &p) == 1 && p->id == alice);
	GW_CHECK(principal_resolve_rcpt(db, ar, "unknown@example.test", &p) == 0 && p == NULL);
	GW_CHECK(principal_resolve_rcpt(db, ar, "alice@nowhere.test", &p) == 0);
	GW_CHECK(domain_set_catchall(db, "example.test", "bob@example.test", &err) == 1);
	GW_CHECK(domain_list(db, ar, &dl, &n, &err) == 1 && n == 2 && dl[0].catchall != NULL &&
		 strcmp(dl[0].catchall, "bob@example.test") == 0 && dl[0].accounts == 5);
	GW_CHECK(principal_resolve_rcpt(db, ar, "unknown@example.test", &p) == 1 && p->id == bob);
	GW_CHECK(principal_resolve_rcpt(db, ar, "unknown+tag@example.test", &p) == 1 &&
		 p->id == bob);
	GW_CHECK(principal_resolve_rcpt(db, ar, "alice+tag@example.test", &p) == 1 &&
		 p->id == alice);
	GW_CHECK(principal_resolve_rcpt(db, ar, "unknown@other.test", &p) == 0);
	GW_CHECK(domain_set_catchall(db, "example.test", "nobody@example.test", &err) == 0);
	GW_CHECK(domain_set_catchall(db, "nowhere.test", "bob@example.test", &err) == 0 &&
		 contains(err, "does not exist"));
	GW_CHECK(domain_set_catchall(db, "example.test", NULL, &err) == 1);
	GW_CHECK(principal_resolve_rcpt(db, ar, "unknown@example.test", &p) == 0);

	GW_CHECK(alias_remove(db, "alice@other.test", &err) == 1);
	GW_CHECK(alias_remove(db, "alice@other.test", &err) == 0 && contains(err, "no such alias"));
	GW_CHECK(principal_resolve_rcpt(db, ar, "alice@other.test", &p) == 0);
}

static void test_members(void)
{
	struct principal *alice, *team, *staff;
	const char *err = NULL;
	int64_t *ids, support;
	char **list;
	size_t n;
	uint32_t r, def;

	GW_CHECK(principal_lookup(db, ar, "alice@example.test", &alice) == 1);
	GW_CHECK(principal_lookup(db, ar, "team@example.test", &team) == 1);
	add("staff@example.test", PRINCIPAL_GROUP, NULL);
	GW_CHECK(principal_lookup(db, ar, "staff@example.test", &staff) == 1);

	GW_CHECK(member_add(db, "team@example.test", "al@example.test", NULL, &err) == 1);
	GW_CHECK(member_add(db, "team@example.test", "alice@example.test", NULL, &err) == 1);
	GW_CHECK(member_add(db, "staff@example.test", "team@example.test", NULL, &err) == 1);
	GW_CHECK(member_add(db, "team@example.test", "staff@example.test", NULL, &err) == -1 &&
		 contains(err, "cycle"));
	GW_CHECK(member_add(db, "team@example.test", "team@example.test", NULL, &err) == -1);
	GW_CHECK(member_add(db, "team@example.test", "bob@example.test", "lr", &err) == -1);
	GW_CHECK(member_add(db, "alice@example.test", "bob@example.test", NULL, &err) == -1);
	GW_CHECK(member_add(db, "team@example.test", "room1@example.test", NULL, &err) == -1);
	GW_CHECK(member_add(db, "nogroup@example.test", "bob@example.test", NULL, &err) == 0);
	GW_CHECK(member_add(db, "team@example.test", "nobody@example.test", NULL, &err) == 0);
	GW_CHECK(member_list(db, ar, "team@example.test", &list, &n, &err) == 1 && n == 1 &&
		 strcmp(list[0], "alice@example.test") == 0);
	GW_CHECK(principal_groups(db, ar, alice->id, &ids, &n) == 1 && n == 2 &&
		 ((ids[0] == team->id && ids[1] == staff->id) ||
		  (ids[1] == team->id && ids[0] == staff->id)));

	/* shared mailbox members get rights on the whole account */
	GW_CHECK(principal_lookup(db, ar, "support@example.test", &staff) == 1);
	support = staff->id;
	GW_CHECK(member_add(db, "support@example.test", "bob@example.test", NULL, &err) == 1);
	GW_CHECK(member_add(db, "support@example.test", "alice@example.test", "lr", &err) == 1);
	GW_CHECK(member_add(db, "support@example.test", "alice@example.test", "lq", &err) == -1);
	GW_CHECK(principal_lookup(db, ar, "bob@example.test", &staff) == 1);
	GW_CHECK(acl_parse("lrswipkxtecd", &def) == 0);
	GW_CHECK(acl_rights(db, staff->id, support, 0, &r) == 0 && r == def);
	GW_CHECK(acl_rights(db, alice->id, support, 0, &r) == 0 &&
		 r == (ACL_LOOKUP | ACL_READ));
	GW_CHECK(member_list(db, ar, "support@example.test", &list, &n, &err) == 1 && n == 2);
	GW_CHECK(member_remove(db, "support@example.test", "bob@example.test", &err) == 1);
	GW_CHECK(acl_rights(db, staff->id, support, 0, &r) == 0 && r == 0);
	GW_CHECK(member_remove(db, "support@example.test", "bob@example.test", &err) == 0 &&
		 contains(err, "not a member"));
}

static void test_app_passwords(void)
{
	struct app_password *aps;
	struct principal *p;
	const char *err = NULL;
	char *pw = NULL;
	int64_t id = 0;
	size_t n;

	GW_CHECK(app_password_add(db, ar, "alice@example.test", "Alice's phone", &id, &pw,
				  &err) == 1);
	GW_CHECK(pw != NULL && strlen(pw) == 19 && pw[4] == '-' && id > 0);
	GW_CHECK(app_password_add(db, ar, "team@example.test", "x", &id, &pw, &err) == -1);
	GW_CHECK(app_password_add(db, ar, "nobody@example.test", "x", &id, &pw, &err) == 0);
	GW_CHECK(app_password_add(db, ar, "alice@example.test", "", &id, &pw, &err) == -1);
	GW_CHECK(app_password_add(db, ar, "alice@example.test", "Alice's phone", &id, &pw,
				  &err) == 1);
	GW_CHECK(app_password_list(db, ar, "alice@example.test", &aps, &n, &err) == 1 && n == 2 &&
		 strcmp(aps[1].name, "Alice's phone") == 0 && aps[1].id == id &&
		 aps[1].last_used == 0 && aps[1].created > 0);

	/* both the password and the app password log in; the last_used stamp */
	GW_CHECK(auth("alice@example.test", "alice-password", "127.0.0.1", 10, &p) == AUTH_OK);
	GW_CHECK(auth("alice@example.test", pw, "127.0.0.1", 10, &p) == AUTH_OK &&
		 p != NULL && strcmp(p->address, "alice@example.test") == 0);
	GW_CHECK(app_password_list(db, ar, "alice@example.test", &aps, &n, &err) == 1 && n == 2 &&
		 aps[1].last_used > 0 && aps[0].last_used == 0);
	GW_CHECK(app_password_revoke(db, "alice@example.test", id, &err) == 1);
	GW_CHECK(auth("alice@example.test", pw, "127.0.0.1", 10, &p) == AUTH_FAILED && p == NULL);
	GW_CHECK(app_password_revoke(db, "alice@example.test", id, &err) == 0);
	GW_CHECK(app_password_list(db, ar, "alice@example.test", &aps, &n, &err) == 1 && n == 1);
}

static int64_t failures_of(const char *key)
{
	const char *params[1] = { key };
	PGresult *res = bu_db_query(db, "SELECT failures FROM auth_failures WHERE key = $1",
				    1, params);
	int64_t v = -1;

	if (res != NULL && PQntuples(res) == 1)
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void test_auth(void)
{
	struct principal *p;
	const char *err = NULL;
	int64_t t0, t_unknown, t_known;

	GW_CHECK(domain_add(db, "th.test", &err) == 1);
	add("t@th.test", PRINCIPAL_USER, "throttle-pass");
	add("u@th.test", PRINCIPAL_USER, "second-pass");
	GW_CHECK(alias_add(db, "tee@th.test", "t@th.test", &err) == 1);

	GW_CHECK(auth("t@th.test", "throttle-pass", "192.0.2.1", 3, &p) == AUTH_OK &&
		 p != NULL && strcmp(p->address, "t@th.test") == 0);
	GW_CHECK(auth("TEE@th.test", "throttle-pass", "192.0.2.1", 3, &p) == AUTH_OK &&
		 strcmp(p->address, "t@th.test") == 0);
	GW_CHECK(auth("t", "throttle-pass", "192.0.2.1", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("t@th.test", "", "192.0.2.1", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth(NULL, NULL, "192.0.2.1", 3, &p) == AUTH_FAILED);
	GW_CHECK(failures_of("ip:192.0.2.1") == 3);
	/* bytes no address has (invalid UTF-8 included) fail, never tempfail */
	GW_CHECK(auth("t\xff\xfe@th.test", "throttle-pass", "192.0.2.5", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("T\r\n@th.test", "throttle-pass", "192.0.2.5", 3, &p) == AUTH_FAILED);
	GW_CHECK(failures_of("ip:192.0.2.5") == 2);
	GW_CHECK(failures_of("acct:t??@th.test") == 2);   /* both logins map to it */
	GW_CHECK(failures_of("acct:t@th.test") == 1);
	GW_CHECK(auth("t@th.test", "throttle-pass", "192.0.2.99", 3, &p) == AUTH_OK);
	GW_CHECK(failures_of("acct:t@th.test") == -1);     /* success clears it */

	/* the limit: refused even with the right password */
	GW_CHECK(auth("t@th.test", "wrong-1", "192.0.2.2", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("t@th.test", "wrong-2", "192.0.2.2", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("t@th.test", "wrong-3", "192.0.2.2", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("t@th.test", "throttle-pass", "192.0.2.2", 3, &p) == AUTH_THROTTLED &&
		 p == NULL);
	/* per account, from another address too */
	GW_CHECK(auth("t@th.test", "throttle-pass", "192.0.2.3", 3, &p) == AUTH_THROTTLED);
	/* other accounts from a clean address are fine */
	GW_CHECK(auth("u@th.test", "second-pass", "192.0.2.3", 3, &p) == AUTH_OK);
	/* but the throttled address is throttled for every account */
	GW_CHECK(auth("u@th.test", "second-pass", "192.0.2.2", 3, &p) == AUTH_THROTTLED);
	/* throttling off */
	GW_CHECK(auth("u@th.test", "second-pass", "192.0.2.2", 0, &p) == AUTH_OK);

	/* the window ends */
	GW_CHECK(bu_db_exec(db, "UPDATE auth_failures SET window_start = now() - interval '1 hour'",
			    0, NULL) == 0);
	GW_CHECK(auth("t@th.test", "throttle-pass", "192.0.2.2", 3, &p) == AUTH_OK);
	GW_CHECK(failures_of("acct:t@th.test") == -1);
	/* an expired window starts again at 1 */
	GW_CHECK(auth("u@th.test", "wrong", "192.0.2.2", 3, &p) == AUTH_FAILED);
	GW_CHECK(failures_of("ip:192.0.2.2") == 1);

	/* a success resets the account counter */
	GW_CHECK(auth("t@th.test", "wrong", "192.0.2.10", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("t@th.test", "wrong", "192.0.2.11", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("t@th.test", "throttle-pass", "192.0.2.12", 3, &p) == AUTH_OK);
	GW_CHECK(auth("t@th.test", "wrong", "192.0.2.13", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("t@th.test", "wrong", "192.0.2.14", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("t@th.test", "throttle-pass", "192.0.2.15", 3, &p) == AUTH_OK);

	/* unknown users are counted per address */
	GW_CHECK(auth("ghost1@th.test", "x", "192.0.2.20", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("ghost2@th.test", "x", "192.0.2.20", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("ghost3@nowhere.test", "x", "192.0.2.20", 3, &p) == AUTH_FAILED);
	GW_CHECK(failures_of("ip:192.0.2.20") == 3);
	GW_CHECK(failures_of("acct:ghost1@th.test") == 1);
	GW_CHECK(auth("u@th.test", "second-pass", "192.0.2.20", 3, &p) == AUTH_THROTTLED);

	/* disabled accounts */
	GW_CHECK(principal_set_disabled(db, "u@th.test", true, &err) == 1);
	GW_CHECK(auth("u@th.test", "second-pass", "192.0.2.30", 10, &p) == AUTH_DISABLED &&
		 p == NULL);
	GW_CHECK(auth("u@th.test", "wrong", "192.0.2.30", 10, &p) == AUTH_FAILED);
	GW_CHECK(principal_set_disabled(db, "u@th.test", false, &err) == 1);
	GW_CHECK(auth("u@th.test", "second-pass", "192.0.2.30", 10, &p) == AUTH_OK);

	/* password change, and a hash of another scheme */
	GW_CHECK(principal_set_password(db, "u@th.test", "changed-pass", "sha512", 8, &err) == 1);
	GW_CHECK(auth("u@th.test", "second-pass", "192.0.2.31", 10, &p) == AUTH_FAILED);
	GW_CHECK(auth("u@th.test", "changed-pass", "192.0.2.31", 10, &p) == AUTH_OK);
	GW_CHECK(principal_set_password(db, "u@th.test", "bcrypt-pass", "bcrypt", 8, &err) == 1);
	GW_CHECK(auth("u@th.test", "bcrypt-pass", "192.0.2.31", 10, &p) == AUTH_OK);

	/* accounts without a password (groups) never log in */
	add("grp@th.test", PRINCIPAL_GROUP, NULL);
	GW_CHECK(auth("grp@th.test", "", "192.0.2.32", 10, &p) == AUTH_FAILED);

	/* timing: an unknown user costs about as much as a wrong password
	 * (the fastest of five each, so that a busy machine does not decide) */
	t_unknown = t_known = INT64_MAX;
	for (int i = 0; i < 5; i++) {
		int64_t d;

		t0 = bu_mono_us();
		(void)auth("nobody@th.test", "guess", "192.0.2.40", 0, &p);
		d = bu_mono_us() - t0;
		t_unknown = d < t_unknown ? d : t_unknown;
		t0 = bu_mono_us();
		(void)auth("t@th.test", "guess", "192.0.2.41", 0, &p);
		d = bu_mono_us() - t0;
		t_known = d < t_known ? d : t_known;
	}
	fprintf(stderr, "auth timing: unknown %lld us, known %lld us\n",
		(long long)t_unknown, (long long)t_known);
	GW_CHECK(t_unknown * 2 > t_known && t_known * 2 > t_unknown);
}

/* bureau_auth_cache_hits_total from the metrics page */
static long long cache_hits(void)
{
	struct bu_buf b;
	const char *v;
	long long n = 0;

	bu_buf_init(&b, 0);
	bu_metrics_render(&b);
	v = strstr(bu_buf_cstr(&b), "\nbureau_auth_cache_hits_total ");
	if (v != NULL)
		n = strtoll(v + strlen("\nbureau_auth_cache_hits_total "), NULL, 10);
	bu_buf_deinit(&b);
	return n;
}

/* The verified-password cache saves the hash, never a decision: wrong
 * passwords, changed passwords, disabled accounts and throttling behave
 * as without it. */
static void test_auth_cache(void)
{
	struct principal *p;
	const char *err = NULL;
	long long h0;

	auth_cache_configure(300);
	GW_CHECK(domain_add(db, "ca.test", &err) == 1);
	add("c@ca.test", PRINCIPAL_USER, "cached-pass");
	h0 = cache_hits();
	GW_CHECK(auth("c@ca.test", "cached-pass", "192.0.2.60", 3, &p) == AUTH_OK);
	GW_CHECK(cache_hits() == h0);                 /* first: hashed */
	GW_CHECK(auth("c@ca.test", "cached-pass", "192.0.2.60", 3, &p) == AUTH_OK &&
		 p != NULL && strcmp(p->address, "c@ca.test") == 0);
	GW_CHECK(cache_hits() == h0 + 1);             /* second: cached */
	GW_CHECK(auth("c@ca.test", "cached-pasS", "192.0.2.60", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("c@ca.test", "cached-pas", "192.0.2.60", 3, &p) == AUTH_FAILED);
	GW_CHECK(cache_hits() == h0 + 1);

	/* disabled: the cached password does not let it in */
	GW_CHECK(principal_set_disabled(db, "c@ca.test", true, &err) == 1);
	GW_CHECK(auth("c@ca.test", "cached-pass", "192.0.2.61", 10, &p) == AUTH_DISABLED);
	GW_CHECK(principal_set_disabled(db, "c@ca.test", false, &err) == 1);

	/* changed password: the old one fails at once */
	GW_CHECK(principal_set_password(db, "c@ca.test", "new-cached-pass", "yescrypt", 8, &err) == 1);
	GW_CHECK(auth("c@ca.test", "cached-pass", "192.0.2.62", 10, &p) == AUTH_FAILED);
	GW_CHECK(auth("c@ca.test", "new-cached-pass", "192.0.2.62", 10, &p) == AUTH_OK);

	/* throttled: refused before any password is looked at */
	for (int i = 0; i < 3; i++)
		GW_CHECK(auth("c@ca.test", "wrong", "192.0.2.63", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("c@ca.test", "new-cached-pass", "192.0.2.63", 3, &p) == AUTH_THROTTLED);

	/* off: nothing is remembered */
	auth_cache_configure(0);
	h0 = cache_hits();
	GW_CHECK(auth("c@ca.test", "new-cached-pass", "192.0.2.64", 0, &p) == AUTH_OK);
	GW_CHECK(auth("c@ca.test", "new-cached-pass", "192.0.2.64", 0, &p) == AUTH_OK);
	GW_CHECK(cache_hits() == h0);
}

/* Throttling cannot be side-stepped by writing the login or the client
 * address another way. */
static void test_auth_variants(void)
{
	struct principal *p;
	const char *err = NULL;
	char *hash;
	int64_t grp;

	GW_CHECK(domain_add(db, "var.test", &err) == 1);
	add("alice@var.test", PRINCIPAL_USER, "alice-var-pass");
	GW_CHECK(alias_add(db, "ally@var.test", "alice@var.test", &err) == 1);

	/* the account's primary address names its row, whatever the login */
	GW_CHECK(auth("ALICE@VAR.TEST", "wrong", "192.0.2.60", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("Ally@Var.Test", "wrong", "192.0.2.61", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("alice@var.test", "wrong", "192.0.2.62", 3, &p) == AUTH_FAILED);
	GW_CHECK(failures_of("acct:alice@var.test") == 3);
	GW_CHECK(failures_of("acct:ally@var.test") == -1);
	/* so every spelling is throttled now, even with the right password */
	GW_CHECK(auth("aLiCe@var.TEST", "alice-var-pass", "192.0.2.63", 3, &p) ==
		 AUTH_THROTTLED);
	GW_CHECK(auth("ALLY@var.test", "alice-var-pass", "192.0.2.64", 3, &p) ==
		 AUTH_THROTTLED);
	GW_CHECK(bu_db_exec(db, "DELETE FROM auth_failures", 0, NULL) == 0);

	/* IPv6: one /48 is one client; an IPv4-mapped address is the IPv4 one */
	GW_CHECK(auth("ghost@var.test", "x", "2001:db8:1:2::1", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("ghost@var.test", "x", "2001:db8:1:3::beef", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("ghost@var.test", "x", "2001:DB8:1:ffff:1:2:3:4", 3, &p) == AUTH_FAILED);
	GW_CHECK(failures_of("ip:2001:db8:1::/48") == 3);
	GW_CHECK(bu_db_exec(db, "DELETE FROM auth_failures WHERE key LIKE 'acct:%'",
			    0, NULL) == 0);
	GW_CHECK(auth("alice@var.test", "alice-var-pass", "2001:db8:1:99::7", 3, &p) ==
		 AUTH_THROTTLED);
	GW_CHECK(auth("alice@var.test", "alice-var-pass", "2001:db8:2::1", 3, &p) == AUTH_OK);
	GW_CHECK(auth("ghost@var.test", "x", "::ffff:192.0.2.70", 3, &p) == AUTH_FAILED);
	GW_CHECK(auth("ghost@var.test", "x", "192.0.2.70", 3, &p) == AUTH_FAILED);
	GW_CHECK(failures_of("ip:192.0.2.70") == 2);
	/* not an address: kept as printable text */
	GW_CHECK(auth("ghost@var.test", "x", "local\n\xff", 0, &p) == AUTH_FAILED);
	GW_CHECK(failures_of("ip:local??") == 1);

	/* a group never logs in, even if its row holds a password hash */
	grp = add("crew@var.test", PRINCIPAL_GROUP, NULL);
	hash = password_hash("crew-password", NULL);
	GW_CHECK(hash != NULL);
	if (hash != NULL) {
		char ids[24];
		const char *params[2] = { ids, hash };

		snprintf(ids, sizeof(ids), "%lld", (long long)grp);
		GW_CHECK(bu_db_exec(db, "UPDATE accounts SET password_hash = $2 WHERE id = $1",
				    2, params) == 0);
		GW_CHECK(auth("crew@var.test", "crew-password", "192.0.2.71", 10, &p) ==
			 AUTH_FAILED && p == NULL);
		GW_CHECK(failures_of("acct:crew@var.test") == 1);
		free(hash);
	}
}

static void test_remove(void)
{
	struct principal *p;
	struct collection *colls;
	struct acl_entry *acl;
	struct app_password *aps;
	const char *err = NULL;
	int64_t alice, bob;
	char **list;
	size_t n;

	GW_CHECK(principal_lookup(db, ar, "alice@example.test", &p) == 1);
	alice = p->id;
	GW_CHECK(principal_lookup(db, ar, "bob@example.test", &p) == 1);
	bob = p->id;
	GW_CHECK(acl_set(db, bob, 0, "alice@example.test", ACL_LOOKUP | ACL_READ, &err) == 1);
	GW_CHECK(acl_list(db, ar, bob, 0, &acl, &n) == 0 && n == 1);

	GW_CHECK(principal_remove(db, "al@example.test", &err) == -1 &&
		 contains(err, "is an alias of alice@example.test"));
	GW_CHECK(principal_remove(db, "alice@example.test", &err) == 1);
	GW_CHECK(principal_remove(db, "alice@example.test", &err) == 0 &&
		 contains(err, "no such account"));
	GW_CHECK(principal_lookup(db, ar, "alice@example.test", &p) == 0);
	GW_CHECK(principal_lookup(db, ar, "al@example.test", &p) == 0);
	GW_CHECK(collection_list(db, ar, alice, -1, &colls, &n) == 1 && n == 0);
	GW_CHECK(acl_list(db, ar, bob, 0, &acl, &n) == 0 && n == 0);
	GW_CHECK(member_list(db, ar, "team@example.test", &list, &n, &err) == 1 && n == 0);
	GW_CHECK(app_password_list(db, ar, "alice@example.test", &aps, &n, &err) == 0);

	/* a new alice is a new account */
	GW_CHECK(add("alice@example.test", PRINCIPAL_USER, "alice-password") != alice);

	GW_CHECK(domain_remove(db, "example.test", false, &err) == -1 &&
		 contains(err, "still has 6 accounts") && contains(err, "--force"));
	GW_CHECK(domain_remove(db, "nowhere.test", false, &err) == 0);
	GW_CHECK(domain_remove(db, "other.test", false, &err) == 1);
	GW_CHECK(domain_remove(db, "example.test", true, &err) == 1);
	GW_CHECK(principal_lookup(db, ar, "bob@example.test", &p) == 0);
	GW_CHECK(collection_list(db, ar, bob, -1, &colls, &n) == 1 && n == 0);
}

int main(void)
{
	db = gwtest_db("principal");
	bu_log_open(NULL, BU_LOG_WARNING);
	ar = bu_arena_create(0);
	test_domains();
	test_accounts();
	test_aliases_and_rcpt();
	test_members();
	test_app_passwords();
	test_auth();
	test_auth_cache();
	test_auth_variants();
	test_remove();
	bu_arena_destroy(&ar);
	bu_db_destroy(&db);
	return gwtest_status();
}

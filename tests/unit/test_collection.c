/*
 * test_collection - create / rename (with children) / delete (tombstone) of
 * collections, UIDVALIDITY never reused, the change counter under two
 * concurrent connections, notifications. Real PostgreSQL (BUREAU_TEST_DB).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/collection.h"
#include "groupware/principal.h"
#include "server/core/log.h"
#include "tests/unit/gwtest.h"

static struct bu_db *db;
static struct bu_arena *ar;
static int64_t acct_id;

static bool exists(enum collection_kind kind, const char *name)
{
	struct collection *c;

	return collection_get_by_name(db, ar, acct_id, kind, name, &c) == 1;
}

static bool contains_into(const char *err)
{
	return err != NULL && strstr(err, "into itself") != NULL;
}

static int64_t id_of(enum collection_kind kind, const char *name)
{
	struct collection *c;

	if (collection_get_by_name(db, ar, acct_id, kind, name, &c) != 1)
		return 0;
	return c->id;
}

static void test_create(void)
{
	struct collection *c, *list;
	const char *err = NULL;
	int64_t id = 0, m0;
	size_t n;

	m0 = changelog_current(db, acct_id);
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Projects", NULL, &id, &err) == 1 && id > 0);
	GW_CHECK(changelog_current(db, acct_id) == m0 + 1);
	GW_CHECK(collection_get(db, ar, acct_id, id, &c) == 1 && strcmp(c->name, "Projects") == 0 &&
		 c->kind == COLL_MAIL && c->modseq == m0 + 1 && c->created_modseq == m0 + 1 &&
		 c->uidnext == 1 && c->uidvalidity != 0 && c->subscribed && c->account_id == acct_id);
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Projects", NULL, &id, &err) == 0 &&
		 strcmp(err, "Projects already exists") == 0 && id == 0);
	GW_CHECK(changelog_current(db, acct_id) == m0 + 1);       /* rolled back */
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "projects", NULL, &id, &err) == 1);
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "inbox", NULL, &id, &err) == 0);
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Inbox/Sub", NULL, &id, &err) == 1);
	GW_CHECK(exists(COLL_MAIL, "INBOX/Sub") && exists(COLL_MAIL, "inbox/sub") == false);
	GW_CHECK(exists(COLL_MAIL, "inbox") && exists(COLL_MAIL, "iNbOx/Sub"));
	/* superiors appear */
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "A/B/C", NULL, &id, &err) == 1);
	GW_CHECK(exists(COLL_MAIL, "A") && exists(COLL_MAIL, "A/B") && exists(COLL_MAIL, "A/B/C"));
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "A/B", NULL, &id, &err) == 0);
	/* UTF-8 names */
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Bücher/Δ", NULL, &id, &err) == 1);
	static const char *const bad[] = {
		"", "/x", "x/", "a//b", "a*b", "a%b", "bad\001name", "bad\xff", "over\xc0\xaflong",
		"tab\there",
	};
	for (size_t i = 0; i < BU_N_ELEMENTS(bad); i++) {
		err = NULL;
		GW_CHECK(collection_create(db, acct_id, COLL_MAIL, bad[i], NULL, &id, &err) == 0 &&
			 err != NULL);
	}
	/* special use */
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Starred", "\\Flagged", &id, &err) == 1);
	GW_CHECK(collection_get(db, ar, acct_id, id, &c) == 1 && c->special_use != NULL &&
		 strcmp(c->special_use, "\\Flagged") == 0);
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Odd", "\\Bogus", &id, &err) == 0);
	GW_CHECK(collection_create(db, acct_id, COLL_CALENDAR, "Cal", "\\Sent", &id, &err) == 0);
	GW_CHECK(collection_set_special_use(db, acct_id, id_of(COLL_MAIL, "Projects"), "\\Archive") == 1);
	GW_CHECK(collection_get(db, ar, acct_id, id_of(COLL_MAIL, "Projects"), &c) == 1 &&
		 strcmp(c->special_use, "\\Archive") == 0);
	GW_CHECK(collection_set_special_use(db, acct_id, id_of(COLL_MAIL, "Projects"), NULL) == 1);
	GW_CHECK(collection_get(db, ar, acct_id, id_of(COLL_MAIL, "Projects"), &c) == 1 &&
		 c->special_use == NULL);
	GW_CHECK(collection_set_special_use(db, acct_id, 999999, NULL) == 0);
	/* subscriptions */
	GW_CHECK(collection_set_subscribed(db, acct_id, id_of(COLL_MAIL, "Projects"), false) == 1);
	GW_CHECK(collection_get(db, ar, acct_id, id_of(COLL_MAIL, "Projects"), &c) == 1 &&
		 !c->subscribed);
	GW_CHECK(collection_set_subscribed(db, acct_id, 999999, true) == 0);
	/* other kinds: display names, '/' allowed */
	GW_CHECK(collection_create(db, acct_id, COLL_CALENDAR, "Home / Family", NULL, &id, &err) == 1);
	GW_CHECK(collection_create(db, acct_id, COLL_CALENDAR, "Calendar", NULL, &id, &err) == 0);
	GW_CHECK(collection_create(db, acct_id, COLL_ADDRESSBOOK, "Calendar", NULL, &id, &err) == 1);
	/* listing: INBOX first, then by name */
	GW_CHECK(collection_list(db, ar, acct_id, COLL_MAIL, &list, &n) == 1 && n > 3 &&
		 strcmp(list[0].name, "INBOX") == 0 && strcmp(list[1].name, "A") == 0);
	GW_CHECK(collection_list(db, ar, acct_id, COLL_CALENDAR, &list, &n) == 1 && n == 2);
	GW_CHECK(collection_list(db, ar, 999999, -1, &list, &n) == 1 && n == 0);
	GW_CHECK(collection_create(db, 999999, COLL_MAIL, "X", NULL, &id, &err) == -1);
}

static void test_rename(void)
{
	struct collection *c;
	const char *err = NULL;
	int64_t a, ab, abc, m0, id;
	uint32_t uv;

	a = id_of(COLL_MAIL, "A");
	ab = id_of(COLL_MAIL, "A/B");
	abc = id_of(COLL_MAIL, "A/B/C");
	GW_CHECK(collection_get(db, ar, acct_id, ab, &c) == 1);
	uv = c->uidvalidity;
	m0 = changelog_current(db, acct_id);
	GW_CHECK(collection_rename(db, acct_id, a, "Z", &err) == 1);
	GW_CHECK(changelog_current(db, acct_id) == m0 + 1);
	GW_CHECK(!exists(COLL_MAIL, "A") && !exists(COLL_MAIL, "A/B") && !exists(COLL_MAIL, "A/B/C"));
	GW_CHECK(id_of(COLL_MAIL, "Z") == a && id_of(COLL_MAIL, "Z/B") == ab &&
		 id_of(COLL_MAIL, "Z/B/C") == abc);
	GW_CHECK(collection_get(db, ar, acct_id, ab, &c) == 1 && c->uidvalidity == uv &&
		 c->modseq == m0 + 1);

	/* collisions and nonsense are refused, nothing changes */
	GW_CHECK(collection_rename(db, acct_id, a, "Z/B/X", &err) == 0 && contains_into(err));
	GW_CHECK(collection_rename(db, acct_id, ab, "Projects", &err) == 0 &&
		 strcmp(err, "Projects already exists") == 0);
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "R/C", NULL, &id, &err) == 1);
	GW_CHECK(collection_delete(db, acct_id, id_of(COLL_MAIL, "R"), &err) == 1);
	GW_CHECK(!exists(COLL_MAIL, "R") && exists(COLL_MAIL, "R/C"));
	/* R is free, but Z/B/C would become R/C */
	GW_CHECK(collection_rename(db, acct_id, ab, "R", &err) == 0 &&
		 strcmp(err, "R already exists") == 0);
	GW_CHECK(collection_rename(db, acct_id, ab, "Z/B", &err) == 0);
	GW_CHECK(collection_rename(db, acct_id, ab, "inbox", &err) == 0);
	GW_CHECK(collection_rename(db, acct_id, ab, "bad//name", &err) == 0);
	GW_CHECK(collection_rename(db, acct_id, 999999, "Whatever", &err) == 0 &&
		 strcmp(err, "no such collection") == 0);
	GW_CHECK(id_of(COLL_MAIL, "Z/B") == ab && id_of(COLL_MAIL, "Z/B/C") == abc);
	GW_CHECK(collection_rename(db, acct_id, id_of(COLL_MAIL, "INBOX"), "Old", &err) == -1 &&
		 strcmp(err, "renaming INBOX is handled by the mail store") == 0);

	/* moving up into the superior's place, and into a new hierarchy */
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Z/B/B", NULL, &id, &err) == 1);
	GW_CHECK(collection_rename(db, acct_id, a, "Zed", &err) == 1);
	GW_CHECK(id_of(COLL_MAIL, "Zed/B/B") == id);
	GW_CHECK(collection_delete(db, acct_id, a, &err) == 1);       /* "Zed" itself */
	GW_CHECK(collection_rename(db, acct_id, ab, "Zed", &err) == 1);  /* Zed/B -> Zed */
	GW_CHECK(id_of(COLL_MAIL, "Zed") == ab && id_of(COLL_MAIL, "Zed/B") == id &&
		 id_of(COLL_MAIL, "Zed/C") == abc);
	GW_CHECK(collection_rename(db, acct_id, ab, "New/Deep/Zed", &err) == 1);
	GW_CHECK(exists(COLL_MAIL, "New") && exists(COLL_MAIL, "New/Deep") &&
		 id_of(COLL_MAIL, "New/Deep/Zed/C") == abc);
	/* a child of INBOX renames like any folder */
	GW_CHECK(collection_rename(db, acct_id, id_of(COLL_MAIL, "INBOX/Sub"), "Sub", &err) == 1);
	GW_CHECK(exists(COLL_MAIL, "INBOX") && exists(COLL_MAIL, "Sub"));

	/* other kinds: just the name */
	id = id_of(COLL_CALENDAR, "Calendar");
	GW_CHECK(collection_rename(db, acct_id, id, "Work", &err) == 1);
	GW_CHECK(id_of(COLL_CALENDAR, "Work") == id);
	GW_CHECK(collection_rename(db, acct_id, id, "Home / Family", &err) == 0 &&
		 strcmp(err, "Home / Family already exists") == 0);
	GW_CHECK(collection_rename(db, acct_id, id, "Tasks", &err) == 1);  /* other kind's name */
}

static void test_delete(void)
{
	struct collection *c;
	const char *err = NULL;
	int64_t id, m0, *ids;
	char **names;
	size_t n;
	uint32_t uv1, uv2;

	m0 = changelog_current(db, acct_id);
	id = id_of(COLL_MAIL, "Projects");
	GW_CHECK(collection_delete(db, acct_id, id, &err) == 1);
	GW_CHECK(changelog_current(db, acct_id) == m0 + 1);
	GW_CHECK(collection_get(db, ar, acct_id, id, &c) == 0);
	GW_CHECK(collection_delete(db, acct_id, id, &err) == 0 && strcmp(err, "no such collection") == 0);
	GW_CHECK(collection_deleted_since(db, ar, acct_id, m0, &ids, &names, &n) == 1 && n == 1 &&
		 ids[0] == id && strcmp(names[0], "Projects") == 0);
	GW_CHECK(collection_deleted_since(db, ar, acct_id, m0 + 1, &ids, &names, &n) == 1 && n == 0);
	/* with "R" and "Zed" deleted in test_rename */
	GW_CHECK(collection_deleted_since(db, ar, acct_id, 0, &ids, &names, &n) == 1 && n == 3);
	GW_CHECK(collection_delete(db, acct_id, id_of(COLL_MAIL, "INBOX"), &err) == 0 &&
		 strcmp(err, "INBOX cannot be deleted") == 0);
	GW_CHECK(exists(COLL_MAIL, "INBOX"));
	/* children stay */
	GW_CHECK(collection_delete(db, acct_id, id_of(COLL_MAIL, "New"), &err) == 1);
	GW_CHECK(exists(COLL_MAIL, "New/Deep"));
	/* deleting a default calendar is allowed */
	GW_CHECK(collection_delete(db, acct_id, id_of(COLL_CALENDAR, "Tasks"), &err) == 1);

	/* UIDVALIDITY of a name created again is new, and larger */
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Reuse", NULL, &id, &err) == 1);
	GW_CHECK(collection_get(db, ar, acct_id, id, &c) == 1);
	uv1 = c->uidvalidity;
	GW_CHECK(collection_delete(db, acct_id, id, &err) == 1);
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Reuse", NULL, &id, &err) == 1);
	GW_CHECK(collection_get(db, ar, acct_id, id, &c) == 1);
	uv2 = c->uidvalidity;
	GW_CHECK(uv2 != uv1 && uv2 > uv1);
	/* all distinct within the account */
	{
		char ids_s[24];
		PGresult *res;

		snprintf(ids_s, sizeof(ids_s), "%lld", (long long)acct_id);
		const char *p1[1] = { ids_s };
		res = bu_db_query(db, "SELECT count(*) = count(DISTINCT uidvalidity) FROM collections"
				  " WHERE account_id = $1", 1, p1);
		GW_CHECK(res != NULL && strcmp(PQgetvalue(res, 0, 0), "t") == 0);
		PQclear(res);
	}
}

/* ---- the counter under concurrency ---------------------------------- */

#define ROUNDS 200

struct worker {
	pthread_t thread;
	int64_t values[ROUNDS];
	int errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bu_db *wdb = bu_db_create(gwtest_conninfo());

	for (int i = 0; i < ROUNDS; i++) {
		if (bu_db_begin(wdb) < 0) {
			w->errors++;
			continue;
		}
		w->values[i] = changelog_next(wdb, acct_id);
		if (w->values[i] < 0)
			w->errors++;
		if (bu_db_commit(wdb) < 0)
			w->errors++;
	}
	bu_db_destroy(&wdb);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_counter(void)
{
	static struct worker w[2];
	int64_t all[2 * ROUNDS], start = changelog_current(db, acct_id);

	for (int t = 0; t < 2; t++)
		GW_CHECK(pthread_create(&w[t].thread, NULL, worker_main, &w[t]) == 0);
	for (int t = 0; t < 2; t++)
		pthread_join(w[t].thread, NULL);
	for (int t = 0; t < 2; t++) {
		GW_CHECK(w[t].errors == 0);
		for (int i = 1; i < ROUNDS; i++)
			GW_CHECK(w[t].values[i] > w[t].values[i - 1]);
		memcpy(all + t * ROUNDS, w[t].values, sizeof(w[t].values));
	}
	qsort(all, 2 * ROUNDS, sizeof(all[0]), cmp_i64);
	for (int i = 0; i < 2 * ROUNDS; i++)
		GW_CHECK(all[i] == start + 1 + i);      /* no value twice, none lost */
	GW_CHECK(changelog_current(db, acct_id) == start + 2 * ROUNDS);
	GW_CHECK(changelog_current(db, 999999) == -1);

	/* a rolled-back change gives its value back: readers never see gaps
	 * that matter, and a failed write leaves no trace */
	GW_CHECK(bu_db_begin(db) == 0);
	GW_CHECK(changelog_next(db, acct_id) == start + 2 * ROUNDS + 1);
	bu_db_rollback(db);
	GW_CHECK(changelog_current(db, acct_id) == start + 2 * ROUNDS);
}

/* ---- notifications --------------------------------------------------- */

static void test_notify(void)
{
	PGconn *l = PQconnectdb(gwtest_conninfo());
	PGresult *res;
	PGnotify *nt;
	const char *err = NULL;
	char want[64];
	int64_t id = 0;
	int seen = 0;

	GW_CHECK(PQstatus(l) == CONNECTION_OK);
	res = PQexec(l, "LISTEN bureau");
	GW_CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
	PQclear(res);

	/* nothing arrives for a rolled-back change */
	GW_CHECK(bu_db_begin(db) == 0);
	GW_CHECK(changelog_notify(db, acct_id, 4242) == 0);
	bu_db_rollback(db);
	GW_CHECK(collection_create(db, acct_id, COLL_MAIL, "Notified", NULL, &id, &err) == 1);
	snprintf(want, sizeof(want), "%lld %lld", (long long)acct_id, (long long)id);
	for (int tries = 0; tries < 50 && seen == 0; tries++) {
		PQconsumeInput(l);
		while ((nt = PQnotifies(l)) != NULL) {
			GW_CHECK(strcmp(nt->relname, "bureau") == 0);
			GW_CHECK(strstr(nt->extra, "4242") == NULL);
			if (strcmp(nt->extra, want) == 0)
				seen++;
			PQfreemem(nt);
		}
		if (seen == 0)
			usleep(10000);
	}
	GW_CHECK(seen == 1);
	PQfinish(l);
}

int main(void)
{
	struct principal_new pn = {
		.address = "coll@coll.test", .kind = PRINCIPAL_USER, .password = "long-password",
	};
	const char *err = NULL;

	db = gwtest_db("collection");
	bu_log_open(NULL, BU_LOG_WARNING);
	ar = bu_arena_create(0);
	GW_CHECK(domain_add(db, "coll.test", &err) == 1);
	GW_CHECK(principal_add(db, &pn, &acct_id, &err) == 1);
	test_create();
	test_rename();
	test_delete();
	test_counter();
	test_notify();
	bu_arena_destroy(&ar);
	bu_db_destroy(&db);
	return gwtest_status();
}

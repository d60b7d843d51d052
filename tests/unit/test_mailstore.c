/*
 * test_mailstore.c - the mail store against a real PostgreSQL (gwtest.h):
 * append/open/fetch, flags and keywords, CONDSTORE, changes and
 * tombstones, copy/move, expunge, per-user \Seen, rights, quota, search,
 * sort, thread, metadata, delivery and blob sharing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gwtest.h"

#include "groupware/acl.h"
#include "groupware/collection.h"
#include "groupware/mailstore.h"
#include "groupware/mailstore_private.h"
#include "groupware/mime.h"
#include "groupware/principal.h"
#include "server/core/log.h"

static struct bu_db *db;
static struct bu_arena *A;
static int64_t alice, bob, carol, dave;

/* ---- helpers ---------------------------------------------------------- */

static int64_t add_user(const char *address, int64_t qs, int64_t qm)
{
	struct principal_new p;
	const char *err = NULL;
	int64_t id = 0;

	memset(&p, 0, sizeof(p));
	p.address = address;
	p.kind = PRINCIPAL_USER;
	p.display_name = address;
	p.quota_storage = qs;
	p.quota_messages = qm;
	if (principal_add(db, &p, &id, &err) != 1) {
		fprintf(stderr, "principal_add %s: %s\n", address, err ? err : "?");
		exit(1);
	}
	return id;
}

static int64_t folder(int64_t acct, const char *name)
{
	struct collection *c = NULL;
	const char *err = NULL;
	int64_t id = 0;

	if (collection_get_by_name(db, A, acct, COLL_MAIL, name, &c) == 1)
		return c->id;
	if (collection_create(db, acct, COLL_MAIL, name, NULL, &id, &err) != 1) {
		fprintf(stderr, "collection_create %s: %s\n", name, err ? err : "?");
		exit(1);
	}
	return id;
}

static uint32_t append_kw(int64_t viewer, int64_t owner, int64_t coll, const char *msg,
			  uint32_t flags, const char *const *kw, int64_t idate)
{
	struct ms_append m = {
		.data = (const uint8_t *)msg, .len = strlen(msg), .flags = flags,
		.keywords = kw, .internaldate = idate,
	};
	uint32_t uid = 0, uidv = 0;
	int ret = ms_append(db, viewer, owner, coll, &m, 1, &uidv, &uid);

	if (ret < 0) {
		fprintf(stderr, "ms_append failed: %d\n", ret);
		return 0;
	}
	return uid;
}

static uint32_t append1(int64_t owner, int64_t coll, const char *msg)
{
	return append_kw(owner, owner, coll, msg, 0, NULL, 0);
}

static int64_t sql_i64(const char *sql, int64_t a1, int64_t a2)
{
	char s1[32], s2[32];
	const char *params[2] = { s1, s2 };
	PGresult *r;
	int64_t v = -1;

	snprintf(s1, sizeof(s1), "%lld", (long long)a1);
	snprintf(s2, sizeof(s2), "%lld", (long long)a2);
	r = bu_db_query(db, sql, 2, params);
	if (r != NULL && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static int64_t blob_count(int64_t acct)
{
	return sql_i64("SELECT count(*) FROM mail_blobs WHERE account_id = $1 AND $2 = $2",
		       acct, 0);
}

static const struct ms_msg *find_msg(const struct ms_mailbox *mb, uint32_t uid)
{
	for (size_t i = 0; i < mb->n_msgs; i++) {
		if (mb->msgs[i].uid == uid)
			return &mb->msgs[i];
	}
	return NULL;
}

static bool kw_has(char **kw, const char *k)
{
	for (size_t i = 0; kw != NULL && kw[i] != NULL; i++) {
		if (strcasecmp(kw[i], k) == 0)
			return true;
	}
	return false;
}

static size_t kw_count(char **kw)
{
	size_t n = 0;

	while (kw != NULL && kw[n] != NULL)
		n++;
	return n;
}

/* "1,2,3" of a UID list */
static const char *uidstr(const uint32_t *u, size_t n)
{
	static char buf[4][512];
	static int which;
	char *b = buf[which++ & 3];
	size_t off = 0;

	b[0] = '\0';
	for (size_t i = 0; i < n && off < 480; i++)
		off += (size_t)snprintf(b + off, 512 - off, i ? ",%u" : "%u", u[i]);
	return b;
}

static int64_t day(int y, int mo, int d)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	return (int64_t)timegm(&tm);
}

/* ---- private helpers ---------------------------------------------------- */

static void test_helpers(void)
{
	char **kw;
	struct bu_buf b;
	const char *in[] = { "A", "a", "b\001c", "", "\002", "D", NULL };

	GW_CHECK(strcmp(ms_utf8_clean(A, "a\xe9" "b", 3, 0), "a\xef\xbf\xbd" "b") == 0);
	GW_CHECK(strcmp(ms_utf8_clean(A, "a\xc3\xa9" "b", 4, 0), "a\xc3\xa9" "b") == 0);
	GW_CHECK(strcmp(ms_utf8_clean(A, "a\xc3\xa9" "b", 4, 2), "a") == 0);
	GW_CHECK(strcmp(ms_utf8_clean(A, "ab\0cd", 5, 0), "abcd") == 0);
	GW_CHECK(strcmp(ms_utf8_clean(A, "abcdef", 6, 3), "abc") == 0);
	GW_CHECK(strcmp(ms_utf8_clean(A, "\xc0\xaf\xed\xa0\x80", 5, 0),
			"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd") == 0);
	GW_CHECK(ms_utf8_clean(A, NULL, 0, 0) == NULL);
	GW_CHECK(strcmp(ms_like_pattern(A, "50%_\\x"), "%50\\%\\_\\\\x%") == 0);
	bu_buf_init(&b, 0);
	GW_CHECK(ms_kw_join(&b, in) == 3);
	kw = ms_split_keywords(A, bu_buf_cstr(&b));
	GW_CHECK(kw_count(kw) == 3 && strcmp(kw[0], "A") == 0 && strcmp(kw[1], "bc") == 0 &&
		 strcmp(kw[2], "D") == 0);
	bu_buf_deinit(&b);
	GW_CHECK(kw_count(ms_split_keywords(A, "")) == 0);
}

/* ---- append, open, fetch ------------------------------------------------ */

static const char msg_plain[] =
	"From: Alice <alice@example.test>\r\n"
	"To: Bob <bob@example.test>\r\n"
	"Subject: Hello\r\n"
	"Date: Mon, 6 Jan 2020 10:00:00 +0000\r\n"
	"Message-ID: <hello1@example.test>\r\n"
	"\r\n"
	"Hi Bob,\r\nhow are you?\r\n";

static void test_append_fetch(void)
{
	int64_t inbox = folder(alice, "INBOX");
	/* odd bytes: bare LF, 8-bit, a NUL in the body */
	static const uint8_t odd[] = "Subject: odd\n\nline1\nbyte \xe9\xff and NUL:\0:end\n";
	struct ms_append m[2] = {
		{ .data = (const uint8_t *)msg_plain, .len = strlen(msg_plain),
		  .flags = MF_SEEN | MF_RECENT, .internaldate = day(2020, 1, 6) },
		{ .data = odd, .len = sizeof(odd) - 1 },
	};
	const char *kw[] = { "$Forwarded", NULL };
	uint32_t uids[2] = { 0, 0 }, uidv = 0;
	struct ms_mailbox *mb = NULL;
	struct ms_fetch *f = NULL;
	size_t n = 0;

	m[1].keywords = kw;
	GW_CHECK(ms_append(db, alice, alice, inbox, m, 2, &uidv, uids) == 0);
	GW_CHECK(uidv != 0);
	GW_CHECK(uids[0] == 1 && uids[1] == 2);

	GW_CHECK(ms_mailbox_open(db, A, alice, alice, inbox, &mb) == 0);
	if (mb == NULL)
		return;
	GW_CHECK(mb->n_msgs == 2);
	GW_CHECK(mb->uidnext == 3);
	GW_CHECK(mb->uidvalidity == uidv);
	GW_CHECK(strcmp(mb->name, "INBOX") == 0);
	GW_CHECK(mb->rights == ACL_ALL);
	GW_CHECK(mb->n_msgs == 2 && mb->msgs[0].flags == MF_SEEN);  /* \Recent never stored */
	GW_CHECK(mb->n_msgs == 2 && kw_has(mb->msgs[1].keywords, "$Forwarded"));
	GW_CHECK(mb->n_msgs == 2 && kw_count(mb->msgs[0].keywords) == 0);
	GW_CHECK(kw_has(mb->keywords, "$Forwarded"));
	GW_CHECK(mb->highestmodseq >= mb->msgs[0].modseq && mb->msgs[0].modseq > 0);
	GW_CHECK(mb->msgs[0].modseq == mb->msgs[1].modseq);   /* one transaction */

	GW_CHECK(ms_fetch(db, A, alice, alice, inbox, uids, 2,
			  MSF_META | MSF_STRUCTURE | MSF_RAW | MSF_PREVIEW, &f, &n) == 0);
	GW_CHECK(n == 2);
	if (n == 2) {
		struct mime_part *root;

		GW_CHECK(f[0].uid == 1 && f[1].uid == 2);
		GW_CHECK(f[0].raw_len == strlen(msg_plain) &&
			 memcmp(f[0].raw, msg_plain, f[0].raw_len) == 0);
		GW_CHECK(f[1].raw_len == sizeof(odd) - 1 &&
			 memcmp(f[1].raw, odd, sizeof(odd) - 1) == 0);
		GW_CHECK(f[0].size == (int64_t)strlen(msg_plain));
		GW_CHECK(f[0].internaldate == day(2020, 1, 6));
		GW_CHECK(f[1].internaldate > day(2024, 1, 1));        /* 0 = now */
		GW_CHECK(f[0].savedate > day(2024, 1, 1));
		GW_CHECK(f[0].emailid != NULL && f[0].emailid[0] == 'M' && strlen(f[0].emailid) == 25);
		GW_CHECK(f[0].threadid != NULL && f[0].threadid[0] == 'T' && strlen(f[0].threadid) == 25);
		GW_CHECK(strcmp(f[0].emailid, f[1].emailid) != 0);
		GW_CHECK(f[0].preview != NULL && strstr(f[0].preview, "how are you") != NULL);
		GW_CHECK(f[0].flags == MF_SEEN);
		GW_CHECK(kw_has(f[1].keywords, "$forwarded"));
		root = mime_deserialize(A, f[0].structure, f[0].structure_len);
		GW_CHECK(root != NULL && root->envelope != NULL &&
			 root->envelope->subject != NULL &&
			 strcmp(root->envelope->subject, "Hello") == 0);
	}
	/* absent UIDs are skipped; without MSF_RAW no bytes */
	{
		uint32_t some[3] = { 1, 5, 99 };

		GW_CHECK(ms_fetch(db, A, alice, alice, inbox, some, 3, MSF_META, &f, &n) == 0);
		GW_CHECK(n == 1 && f[0].uid == 1 && f[0].raw == NULL && f[0].structure == NULL);
	}
	/* quota usage follows */
	{
		struct ms_quota q;

		GW_CHECK(ms_quota_get(db, alice, &q) == 0);
		GW_CHECK(q.messages_used == 2);
		GW_CHECK(q.storage_used == (int64_t)(strlen(msg_plain) + sizeof(odd) - 1));
		GW_CHECK(q.storage_limit == 0 && q.messages_limit == 0);
	}
	/* status */
	{
		struct ms_status st;

		GW_CHECK(ms_mailbox_status(db, alice, alice, inbox, &st) == 0);
		GW_CHECK(st.messages == 2 && st.unseen == 1 && st.uidnext == 3 &&
			 st.uidvalidity == uidv && st.deleted == 0 &&
			 st.size == (int64_t)(strlen(msg_plain) + sizeof(odd) - 1));
		GW_CHECK(ms_mailbox_status(db, alice, alice, 999999, &st) == MS_NOTFOUND);
	}
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, 999999, &mb) == MS_NOTFOUND);
	/* folder lookup */
	{
		struct collection *c = NULL;

		GW_CHECK(ms_folder_resolve(db, A, alice, alice, "inbox", &c) == 0 &&
			 c != NULL && c->id == inbox);
		GW_CHECK(ms_folder_resolve(db, A, alice, alice, "Nope", &c) == MS_NOTFOUND);
	}
}

/* ---- store, UNCHANGEDSINCE, changes, expunge ---------------------------- */

static void test_store_changes(void)
{
	int64_t f = folder(alice, "Flags");
	uint32_t u[3], all[3];
	struct ms_store_result res;
	struct ms_mailbox *mb = NULL;
	struct ms_changes ch;
	const char *kw1[] = { "$Label1", "Work", NULL };
	const char *kw2[] = { "work", NULL };
	const char *kw3[] = { "Home", NULL };
	int64_t hms, ms1;
	uint32_t *exp = NULL;
	size_t n_exp = 0;

	for (int i = 0; i < 3; i++)
		all[i] = u[i] = append1(alice, f, msg_plain);
	GW_CHECK(u[0] == 1 && u[2] == 3);
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, f, &mb) == 0);
	hms = mb->highestmodseq;

	/* add */
	GW_CHECK(ms_store(db, A, alice, alice, f, u, 2, MS_STORE_ADD, MF_FLAGGED | MF_SEEN,
			  kw1, -1, &res) == 2);
	GW_CHECK(res.n_changed == 2 && res.n_modified == 0);
	GW_CHECK(res.n_changed == 2 && res.changed[0].flags == (MF_FLAGGED | MF_SEEN) &&
		 kw_count(res.changed[0].keywords) == 2 && res.changed[0].modseq > hms);
	ms1 = res.n_changed ? res.changed[0].modseq : 0;
	/* the same again: no change, no modseq spent */
	GW_CHECK(ms_store(db, A, alice, alice, f, u, 2, MS_STORE_ADD, MF_FLAGGED, kw2, -1, &res) == 0);
	GW_CHECK(res.n_changed == 0);
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, f, &mb) == 0 && mb->highestmodseq == ms1);
	/* remove */
	GW_CHECK(ms_store(db, A, alice, alice, f, u, 1, MS_STORE_REMOVE, MF_SEEN, kw2, -1, &res) == 1);
	GW_CHECK(res.n_changed == 1 && res.changed[0].flags == MF_FLAGGED &&
		 kw_count(res.changed[0].keywords) == 1 && kw_has(res.changed[0].keywords, "$label1"));
	/* replace */
	GW_CHECK(ms_store(db, A, alice, alice, f, u + 1, 1, MS_STORE_REPLACE, MF_ANSWERED | MF_DRAFT,
			  kw3, -1, &res) == 1);
	GW_CHECK(res.n_changed == 1 && res.changed[0].uid == 2 &&
		 res.changed[0].flags == (MF_ANSWERED | MF_DRAFT) &&
		 kw_count(res.changed[0].keywords) == 1 && kw_has(res.changed[0].keywords, "Home"));
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, f, &mb) == 0);
	{
		const struct ms_msg *m1 = find_msg(mb, 1), *m2 = find_msg(mb, 2), *m3 = find_msg(mb, 3);

		GW_CHECK(m1 && m1->flags == MF_FLAGGED && kw_count(m1->keywords) == 1);
		GW_CHECK(m2 && m2->flags == (MF_ANSWERED | MF_DRAFT) && kw_has(m2->keywords, "home"));
		GW_CHECK(m3 && m3->flags == 0 && kw_count(m3->keywords) == 0);
		/* the keyword set of the folder keeps what was ever used */
		GW_CHECK(kw_has(mb->keywords, "$Label1") && kw_has(mb->keywords, "Work") &&
			 kw_has(mb->keywords, "Home"));
	}

	/* UNCHANGEDSINCE (RFC 7162 3.1.3): uid 1 and 2 changed after ms1's
	 * predecessor... uid 3 was not touched since its append */
	{
		struct ms_msg *m3 = (struct ms_msg *)find_msg(mb, 3);
		int64_t since = m3 ? m3->modseq : 0;

		GW_CHECK(ms_store(db, A, alice, alice, f, all, 3, MS_STORE_ADD, MF_DELETED, NULL,
				  since, &res) == 1);
		GW_CHECK(res.n_changed == 1 && res.changed[0].uid == 3);
		GW_CHECK(res.n_modified == 2 && res.modified[0] == 1 && res.modified[1] == 2);
		/* nothing changes when every message fails */
		GW_CHECK(ms_store(db, A, alice, alice, f, all, 2, MS_STORE_ADD, MF_DELETED, NULL,
				  since, &res) == 0);
		GW_CHECK(res.n_modified == 2 && res.n_changed == 0);
	}

	/* changes since hms: all three changed; then expunge uid 3 */
	GW_CHECK(ms_mailbox_changes(db, A, alice, alice, f, hms, &ch) == 0);
	GW_CHECK(ch.n_changed == 3 && ch.n_expunged == 0);
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, f, &mb) == 0);
	hms = mb->highestmodseq;
	GW_CHECK(ms_mailbox_changes(db, A, alice, alice, f, hms, &ch) == 0);
	GW_CHECK(ch.n_changed == 0 && ch.n_expunged == 0 && ch.highestmodseq == hms);

	GW_CHECK(ms_expunge(db, A, alice, alice, f, NULL, 0, &exp, &n_exp) == 1);
	GW_CHECK(n_exp == 1 && exp[0] == 3);
	GW_CHECK(ms_store(db, A, alice, alice, f, u, 1, MS_STORE_ADD, MF_SEEN, NULL, -1, &res) == 1);
	GW_CHECK(ms_mailbox_changes(db, A, alice, alice, f, hms, &ch) == 0);
	GW_CHECK(ch.n_changed == 1 && ch.changed[0].uid == 1 &&
		 ch.changed[0].flags == (MF_FLAGGED | MF_SEEN));
	GW_CHECK(ch.n_expunged == 1 && ch.expunged[0] == 3);
	GW_CHECK(ch.highestmodseq > hms && ch.uidnext == 4);
	GW_CHECK(kw_has(ch.keywords, "Home"));
	/* since 0: everything present, every tombstone */
	GW_CHECK(ms_mailbox_changes(db, A, alice, alice, f, 0, &ch) == 0);
	GW_CHECK(ch.n_changed == 2 && ch.n_expunged == 1);

	/* UID EXPUNGE of a subset: only \Deleted among the given UIDs */
	GW_CHECK(ms_store(db, A, alice, alice, f, u, 2, MS_STORE_ADD, MF_DELETED, NULL, -1, &res) == 2);
	GW_CHECK(ms_expunge(db, A, alice, alice, f, u + 1, 1, &exp, &n_exp) == 1);
	GW_CHECK(n_exp == 1 && exp[0] == 2);
	GW_CHECK(ms_expunge(db, A, alice, alice, f, u + 1, 1, &exp, &n_exp) == 0 && n_exp == 0);
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, f, &mb) == 0 && mb->n_msgs == 1 &&
		 mb->msgs[0].uid == 1);
	GW_CHECK(ms_expunge(db, A, alice, alice, f, NULL, 0, &exp, &n_exp) == 1 && exp[0] == 1);
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, f, &mb) == 0 && mb->n_msgs == 0 &&
		 mb->uidnext == 4);
	GW_CHECK(ms_mailbox_changes(db, A, alice, alice, f, hms, &ch) == 0);
	GW_CHECK(ch.n_changed == 0 && ch.n_expunged == 3 &&
		 strcmp(uidstr(ch.expunged, ch.n_expunged), "1,2,3") == 0);
}

/* ---- copy / move, blobs -------------------------------------------------- */

static void test_copy_move_blobs(void)
{
	int64_t src = folder(alice, "CopySrc"), dst = folder(alice, "CopyDst");
	int64_t bob_inbox = folder(bob, "INBOX");
	static const char unique_msg[] =
		"Subject: blob test\r\nMessage-ID: <blob@example.test>\r\n\r\nunique body 7f3a\r\n";
	uint32_t u[3], *su = NULL, *du = NULL, uidv = 0, *exp = NULL;
	size_t n = 0, n_exp = 0;
	int64_t blobs0 = blob_count(alice), used0, used1;
	struct ms_store_result res;
	struct ms_mailbox *mb = NULL;
	struct ms_changes ch;
	struct ms_quota q;
	const char *err = NULL;

	GW_CHECK(ms_quota_get(db, alice, &q) == 0);
	used0 = q.messages_used;
	u[0] = append1(alice, src, unique_msg);
	u[1] = append_kw(alice, alice, src, msg_plain, MF_FLAGGED, NULL, 0);
	u[2] = append1(alice, src, "Subject: third\r\n\r\nthird body\r\n");
	GW_CHECK(blob_count(alice) == blobs0 + 2);     /* msg_plain's blob exists already */

	/* copy 1 and 3 (and a missing uid) */
	{
		uint32_t want[3] = { u[0], u[2], 77 };

		GW_CHECK(ms_copy(db, A, alice, alice, src, want, 3, alice, dst, false,
				 &su, &du, &n, &uidv) == 2);
		GW_CHECK(n == 2 && su[0] == u[0] && su[1] == u[2] && du[0] == 1 && du[1] == 2);
		GW_CHECK(uidv != 0);
	}
	GW_CHECK(blob_count(alice) == blobs0 + 2);     /* same bytes, no new blob */
	GW_CHECK(ms_quota_get(db, alice, &q) == 0 && q.messages_used == used0 + 5);

	/* move 2 (flagged): new UID 3 in dst, tombstone in src */
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, src, &mb) == 0);
	{
		int64_t hms = mb->highestmodseq;

		GW_CHECK(ms_copy(db, A, alice, alice, src, u + 1, 1, alice, dst, true,
				 &su, &du, &n, &uidv) == 1);
		GW_CHECK(n == 1 && su[0] == u[1] && du[0] == 3);
		GW_CHECK(ms_mailbox_changes(db, A, alice, alice, src, hms, &ch) == 0);
		GW_CHECK(ch.n_expunged == 1 && ch.expunged[0] == u[1] && ch.n_changed == 0);
	}
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, dst, &mb) == 0);
	GW_CHECK(mb->n_msgs == 3 && find_msg(mb, 3) && find_msg(mb, 3)->flags == MF_FLAGGED);
	GW_CHECK(ms_quota_get(db, alice, &q) == 0 && q.messages_used == used0 + 5);

	/* the blob of unique_msg: two messages, one blob; gone with the last */
	used1 = q.storage_used;
	GW_CHECK(sql_i64("SELECT count(*) FROM mail_messages WHERE account_id = $1 AND blob ="
			 " (SELECT blob FROM mail_messages WHERE account_id = $1 AND collection_id = $2"
			 "  AND uid = 1)", alice, src) == 2);
	GW_CHECK(ms_store(db, A, alice, alice, src, u, 1, MS_STORE_ADD, MF_DELETED, NULL, -1, &res) == 1);
	GW_CHECK(ms_expunge(db, A, alice, alice, src, NULL, 0, &exp, &n_exp) == 1);
	GW_CHECK(blob_count(alice) == blobs0 + 2);
	GW_CHECK(ms_quota_get(db, alice, &q) == 0 &&
		 q.storage_used == used1 - (int64_t)strlen(unique_msg));
	{
		uint32_t one = 1;

		GW_CHECK(ms_store(db, A, alice, alice, dst, &one, 1, MS_STORE_ADD, MF_DELETED, NULL,
				  -1, &res) == 1);
		GW_CHECK(ms_expunge(db, A, alice, alice, dst, NULL, 0, &exp, &n_exp) == 1);
	}
	GW_CHECK(blob_count(alice) == blobs0 + 1);
	GW_CHECK(sql_i64("SELECT count(*) FROM mail_blobs WHERE account_id = $1 AND size = $2",
			 alice, (int64_t)strlen(unique_msg)) == 0);
	/* the reference counts (schema 005) are exactly the messages per blob,
	 * and every blob has its count */
	GW_CHECK(sql_i64("SELECT count(*) FROM mail_blob_refs r FULL JOIN"
			 " (SELECT account_id, blob, count(*) AS n FROM mail_messages"
			 "  WHERE account_id = $1 GROUP BY account_id, blob) c"
			 " ON c.account_id = r.account_id AND c.blob = r.sha256"
			 " WHERE (r.account_id = $1 OR c.account_id = $1) AND $2 = $2"
			 " AND r.refs IS DISTINCT FROM c.n", alice, 0) == 0);
	GW_CHECK(sql_i64("SELECT count(*) FROM mail_blobs b WHERE b.account_id = $1 AND $2 = $2"
			 " AND NOT EXISTS (SELECT 1 FROM mail_blob_refs r WHERE"
			 " r.account_id = b.account_id AND r.sha256 = b.sha256)", alice, 0) == 0);

	/* into another account's folder (alice may insert into bob's INBOX):
	 * the blob is stored in bob's account too */
	GW_CHECK(acl_set(db, bob, bob_inbox, "alice@example.test",
			 ACL_LOOKUP | ACL_READ | ACL_INSERT, &err) == 1);
	{
		int64_t bob_blobs = blob_count(bob);
		uint32_t third = u[2];

		GW_CHECK(ms_copy(db, A, alice, alice, src, &third, 1, bob, bob_inbox, false,
				 &su, &du, &n, &uidv) == 1);
		GW_CHECK(blob_count(bob) == bob_blobs + 1);
		/* the search text is copied with the blob, and bob finds it */
		GW_CHECK(sql_i64("SELECT count(*) FROM mail_blobs b JOIN mail_blobs x"
				 " ON x.sha256 = b.sha256 WHERE b.account_id = $1"
				 " AND x.account_id = $2 AND b.body_text = x.body_text"
				 " AND b.header_text = x.header_text AND b.body_text LIKE '%third body%'",
				 bob, alice) == 1);
		{
			struct ms_search tq = { .op = MSS_TEXT, .str = "third body" };
			uint32_t *hits = NULL;
			size_t nh = 0;

			GW_CHECK(ms_search(db, A, bob, bob, bob_inbox, &tq, NULL, 0, &hits, &nh) == 1 &&
				 nh == 1 && hits[0] == du[0]);
		}
		/* alice had no "w": the flags she may not set are dropped */
	}
	/* rights: no "i" on bob's Trash */
	GW_CHECK(ms_copy(db, A, alice, alice, src, u + 2, 1, bob, folder(bob, "Trash"), false,
			 &su, &du, &n, &uidv) == MS_NOPERM);
	/* a move out of bob's INBOX needs t and e there */
	GW_CHECK(ms_copy(db, A, alice, bob, bob_inbox, du, 1, alice, dst, true,
			 &su, &du, &n, &uidv) == MS_NOPERM);
}

/* ---- per-user \Seen, rights --------------------------------------------- */

static void test_shared_seen_rights(void)
{
	int64_t sh = folder(alice, "Shared"), ro = folder(alice, "ReadOnly");
	uint32_t u[2], *su = NULL, *du = NULL, uidv = 0, *exp = NULL, *found = NULL;
	struct ms_store_result res;
	struct ms_mailbox *mb = NULL;
	struct ms_changes ch;
	struct ms_status st;
	const char *err = NULL;
	size_t n = 0;
	int64_t hms;

	u[0] = append1(alice, sh, msg_plain);
	u[1] = append1(alice, sh, msg_plain);
	GW_CHECK(acl_set(db, alice, sh, "bob@example.test",
			 ACL_LOOKUP | ACL_READ | ACL_SEEN | ACL_WRITE, &err) == 1);
	GW_CHECK(acl_set(db, alice, ro, "dave@example.test", ACL_LOOKUP | ACL_READ, &err) == 1);

	GW_CHECK(ms_mailbox_open(db, A, alice, alice, sh, &mb) == 0);
	hms = mb->highestmodseq;
	/* bob marks uid 1 seen: only for him */
	GW_CHECK(ms_store(db, A, bob, alice, sh, u, 1, MS_STORE_ADD, MF_SEEN, NULL, -1, &res) == 1);
	GW_CHECK(res.n_changed == 1 && res.changed[0].flags == MF_SEEN);
	GW_CHECK(ms_mailbox_open(db, A, bob, alice, sh, &mb) == 0);
	GW_CHECK(mb->rights == (ACL_LOOKUP | ACL_READ | ACL_SEEN | ACL_WRITE));
	GW_CHECK(find_msg(mb, 1) && find_msg(mb, 1)->flags == MF_SEEN);
	GW_CHECK(find_msg(mb, 2) && find_msg(mb, 2)->flags == 0);
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, sh, &mb) == 0);
	GW_CHECK(find_msg(mb, 1) && find_msg(mb, 1)->flags == 0);
	/* ... but the modseq moved for everybody (CONDSTORE) */
	GW_CHECK(ms_mailbox_changes(db, A, alice, alice, sh, hms, &ch) == 0);
	GW_CHECK(ch.n_changed == 1 && ch.changed[0].uid == 1 && ch.changed[0].flags == 0);
	/* alice marks uid 2 seen: bob still sees it unseen */
	GW_CHECK(ms_store(db, A, alice, alice, sh, u + 1, 1, MS_STORE_ADD, MF_SEEN, NULL, -1, &res) == 1);
	GW_CHECK(ms_mailbox_status(db, alice, alice, sh, &st) == 0 && st.unseen == 1);
	GW_CHECK(ms_mailbox_status(db, bob, alice, sh, &st) == 0 && st.unseen == 1);
	{
		struct ms_fetch *f = NULL;

		GW_CHECK(ms_fetch(db, A, bob, alice, sh, u, 2, MSF_META, &f, &n) == 0 && n == 2);
		GW_CHECK(n == 2 && f[0].flags == MF_SEEN && f[1].flags == 0);
	}
	/* search \Seen per viewer */
	{
		struct ms_search q = { .op = MSS_FLAG, .num = MF_SEEN };

		GW_CHECK(ms_search(db, A, bob, alice, sh, &q, NULL, 0, &found, &n) == 1 &&
			 found[0] == 1);
		GW_CHECK(ms_search(db, A, alice, alice, sh, &q, NULL, 0, &found, &n) == 1 &&
			 found[0] == 2);
		q.op = MSS_NOFLAG;
		GW_CHECK(ms_search(db, A, bob, alice, sh, &q, NULL, 0, &found, &n) == 1 &&
			 found[0] == 2);
	}
	/* bob may set \Flagged (w) but not \Deleted (no t); asked for both,
	 * the allowed one is applied (RFC 4314 4) */
	GW_CHECK(ms_store(db, A, bob, alice, sh, u + 1, 1, MS_STORE_ADD, MF_DELETED, NULL, -1,
			  &res) == MS_NOPERM);
	GW_CHECK(ms_store(db, A, bob, alice, sh, u + 1, 1, MS_STORE_ADD, MF_DELETED | MF_FLAGGED,
			  NULL, -1, &res) == 1);
	GW_CHECK(res.n_changed == 1 && res.changed[0].flags == MF_FLAGGED);
	/* bob removes his \Seen again */
	GW_CHECK(ms_store(db, A, bob, alice, sh, u, 1, MS_STORE_REMOVE, MF_SEEN, NULL, -1, &res) == 1);
	GW_CHECK(ms_mailbox_status(db, bob, alice, sh, &st) == 0 && st.unseen == 2);
	/* no i, no e for bob */
	GW_CHECK(append_kw(bob, alice, sh, msg_plain, 0, NULL, 0) == 0);
	GW_CHECK(ms_expunge(db, A, bob, alice, sh, NULL, 0, &exp, &n) == MS_NOPERM);

	/* dave has only l r on ReadOnly: no flag at all may be stored */
	{
		uint32_t v = append1(alice, ro, msg_plain);

		GW_CHECK(ms_store(db, A, dave, alice, ro, &v, 1, MS_STORE_ADD, MF_DELETED, NULL, -1,
				  &res) == MS_NOPERM);
		GW_CHECK(ms_store(db, A, dave, alice, ro, &v, 1, MS_STORE_ADD, MF_SEEN, NULL, -1,
				  &res) == MS_NOPERM);
		GW_CHECK(ms_mailbox_open(db, A, dave, alice, ro, &mb) == 0 && mb->n_msgs == 1 &&
			 mb->msgs[0].flags == 0);
	}

	/* carol, a stranger, gets MS_NOPERM from every function */
	{
		struct collection *c = NULL;
		struct ms_fetch *f = NULL;
		struct ms_search q = { .op = MSS_ALL };
		struct ms_thread *th = NULL;
		struct ms_meta_entry *me = NULL;
		struct ms_append m = { .data = (const uint8_t *)msg_plain, .len = strlen(msg_plain) };
		uint32_t nu = 0;
		int64_t cdst = folder(carol, "INBOX");

		GW_CHECK(ms_folder_resolve(db, A, carol, alice, "Shared", &c) == MS_NOPERM);
		GW_CHECK(ms_mailbox_open(db, A, carol, alice, sh, &mb) == MS_NOPERM);
		GW_CHECK(ms_mailbox_changes(db, A, carol, alice, sh, 0, &ch) == MS_NOPERM);
		GW_CHECK(ms_mailbox_status(db, carol, alice, sh, &st) == MS_NOPERM);
		GW_CHECK(ms_append(db, carol, alice, sh, &m, 1, &uidv, &nu) == MS_NOPERM);
		GW_CHECK(ms_fetch(db, A, carol, alice, sh, u, 2, MSF_RAW, &f, &n) == MS_NOPERM);
		GW_CHECK(ms_store(db, A, carol, alice, sh, u, 2, MS_STORE_ADD, MF_SEEN, NULL, -1,
				  &res) == MS_NOPERM);
		GW_CHECK(ms_copy(db, A, carol, alice, sh, u, 2, carol, cdst, false, &su, &du, &n,
				 &uidv) == MS_NOPERM);
		GW_CHECK(ms_copy(db, A, carol, carol, cdst, u, 1, alice, sh, false, &su, &du, &n,
				 &uidv) == MS_NOPERM);
		GW_CHECK(ms_expunge(db, A, carol, alice, sh, NULL, 0, &exp, &n) == MS_NOPERM);
		GW_CHECK(ms_search(db, A, carol, alice, sh, &q, NULL, 0, &found, &n) == MS_NOPERM);
		GW_CHECK(ms_thread(db, A, carol, alice, sh, &q, MS_THREAD_REFERENCES, &th) == MS_NOPERM);
		GW_CHECK(ms_metadata_get(db, A, carol, alice, sh, "/shared/comment", 0, &me, &n) ==
			 MS_NOPERM);
		GW_CHECK(ms_metadata_set(db, carol, alice, sh, "/private/comment",
					 (const uint8_t *)"x", 1) == MS_NOPERM);
		GW_CHECK(ms_mailbox_status(db, alice, alice, sh, &st) == 0 && st.messages == 2);
	}
}

/* ---- quota ---------------------------------------------------------------- */

static void test_quota(void)
{
	int64_t q1 = add_user("quota1@example.test", 0, 2);
	int64_t q2 = add_user("quota2@example.test", 300, 0);
	int64_t in1 = folder(q1, "INBOX"), in2 = folder(q2, "INBOX");
	char big[400];
	struct ms_append m[2];
	uint32_t uids[2], uidv;
	struct ms_quota q;
	struct ms_status st;

	GW_CHECK(append1(q1, in1, msg_plain) == 1);
	GW_CHECK(append1(q1, in1, "Subject: two\r\n\r\n2\r\n") == 2);
	memset(m, 0, sizeof(m));
	m[0].data = (const uint8_t *)"Subject: three\r\n\r\n3\r\n";
	m[0].len = strlen((const char *)m[0].data);
	GW_CHECK(ms_append(db, q1, q1, in1, m, 1, &uidv, uids) == MS_OVERQUOTA);
	GW_CHECK(ms_deliver(db, q1, NULL, m[0].data, m[0].len, 0, uids) == MS_OVERQUOTA);
	GW_CHECK(ms_mailbox_status(db, q1, q1, in1, &st) == 0 && st.messages == 2 && st.uidnext == 3);
	GW_CHECK(ms_quota_get(db, q1, &q) == 0 && q.messages_used == 2 && q.messages_limit == 2);

	/* storage: a small one fits, small + big do not, and nothing of the
	 * pair is stored */
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	big[sizeof(big) - 1] = '\0';
	m[0].data = (const uint8_t *)"Subject: s\r\n\r\ns\r\n";
	m[0].len = strlen((const char *)m[0].data);
	m[1].data = (const uint8_t *)big;
	m[1].len = strlen(big);
	GW_CHECK(ms_append(db, q2, q2, in2, m, 2, &uidv, uids) == MS_OVERQUOTA);
	GW_CHECK(ms_mailbox_status(db, q2, q2, in2, &st) == 0 && st.messages == 0);
	GW_CHECK(ms_quota_get(db, q2, &q) == 0 && q.storage_used == 0 && q.storage_limit == 300);
	GW_CHECK(blob_count(q2) == 0);
	GW_CHECK(ms_append(db, q2, q2, in2, m, 1, &uidv, uids) == 0);
	GW_CHECK(ms_quota_get(db, q2, &q) == 0 && q.storage_used == (int64_t)m[0].len &&
		 q.messages_used == 1);
	/* a copy counts too */
	{
		uint32_t *su, *du, one = 1;
		size_t n;
		int64_t other = folder(q1, "Other");

		GW_CHECK(ms_copy(db, A, q1, q1, in1, &one, 1, q1, other, false, &su, &du, &n,
				 &uidv) == MS_OVERQUOTA);
		/* a move inside the account does not need room */
		GW_CHECK(ms_copy(db, A, q1, q1, in1, &one, 1, q1, other, true, &su, &du, &n,
				 &uidv) == 1);
		GW_CHECK(ms_quota_get(db, q1, &q) == 0 && q.messages_used == 2);
	}
	GW_CHECK(ms_quota_get(db, 987654321, &q) == MS_NOTFOUND);
}

/* ---- search and sort ------------------------------------------------------ */

static int64_t search_folder;
static uint32_t s_uid[4];

static const char *search_q(int64_t viewer, const struct ms_search *q,
			    const struct ms_sort *s, size_t ns)
{
	uint32_t *u = NULL;
	size_t n = 0;
	int ret = ms_search(db, A, viewer, alice, search_folder, q, s, ns, &u, &n);

	if (ret < 0)
		return "ERROR";
	return uidstr(u, n);
}

#define SQ(q) search_q(alice, &(q), NULL, 0)

static void test_search_sort(void)
{
	static const char s1[] =
		"From: Alice Example <alice@example.test>\r\n"
		"To: bob@example.test\r\n"
		"Cc: carol@other.test\r\n"
		"Subject: Quarterly report\r\n"
		"Date: Mon, 6 Jan 2020 10:00:00 +0000\r\n"
		"Message-ID: <q1@example.test>\r\n"
		"X-Spam: yes\r\n"
		"\r\n"
		"The revenue grew by 50% this_quarter.\r\n";
	static const char s2[] =
		"From: Bob <bob@example.test>\r\n"
		"To: alice@example.test\r\n"
		"Bcc: dave@other.test\r\n"
		"Subject: Re: Quarterly report\r\n"
		"Date: Tue, 7 Jan 2020 10:00:00 +0000\r\n"
		"Message-ID: <q2@example.test>\r\n"
		"In-Reply-To: <q1@example.test>\r\n"
		"References: <q1@example.test>\r\n"
		"\r\n"
		"Great news, about 50 percent. "
		"Padding padding padding padding padding padding padding padding padding.\r\n"
		"Padding padding padding padding padding padding padding padding padding.\r\n";
	static const char s3[] =
		"From: Zed <zed@z.test>\r\n"
		"To: Yvonne <y@z.test>\r\n"
		"Subject: Lunch plans\r\n"
		"Date: Sun, 5 Jan 2020 10:00:00 +0000\r\n"
		"X-Spam: no\r\n"
		"\r\n"
		"Pizza? thisXquarter\r\n";
	const char *imp[] = { "$Important", NULL };
	struct ms_store_result res;
	struct ms_fetch *f = NULL;
	size_t n;
	int64_t modseq_flag;

	search_folder = folder(alice, "Search");
	s_uid[1] = append_kw(alice, alice, search_folder, s1, 0, NULL, day(2020, 1, 6) + 3600);
	s_uid[2] = append_kw(alice, alice, search_folder, s2, 0, NULL, day(2020, 1, 7) + 3600);
	s_uid[3] = append_kw(alice, alice, search_folder, s3, 0, imp, day(2020, 1, 8) + 3600);
	GW_CHECK(s_uid[1] == 1 && s_uid[2] == 2 && s_uid[3] == 3);
	GW_CHECK(ms_store(db, A, alice, alice, search_folder, &s_uid[2], 1, MS_STORE_ADD,
			  MF_FLAGGED, NULL, -1, &res) == 1);
	modseq_flag = res.n_changed ? res.changed[0].modseq : 0;
	GW_CHECK(ms_fetch(db, A, alice, alice, search_folder, s_uid + 1, 3, MSF_META, &f, &n) == 0 &&
		 n == 3);
	if (n != 3)
		return;

	{
		struct ms_search q = { .op = MSS_ALL };

		GW_CHECK(strcmp(SQ(q), "1,2,3") == 0);
		GW_CHECK(strcmp(search_q(alice, NULL, NULL, 0), "1,2,3") == 0);
	}
	{
		struct ms_search q = { .op = MSS_FROM, .str = "alice" };

		GW_CHECK(strcmp(SQ(q), "1") == 0);
		q.op = MSS_TO;
		GW_CHECK(strcmp(SQ(q), "2") == 0);
		q.op = MSS_CC;
		q.str = "CAROL";
		GW_CHECK(strcmp(SQ(q), "1") == 0);
		q.op = MSS_BCC;
		q.str = "dave";
		GW_CHECK(strcmp(SQ(q), "2") == 0);
		q.op = MSS_SUBJECT;
		q.str = "quarterly";
		GW_CHECK(strcmp(SQ(q), "1,2") == 0);
		/* % and _ are literal characters in the needle */
		q.op = MSS_BODY;
		q.str = "50%";
		GW_CHECK(strcmp(SQ(q), "1") == 0);
		q.op = MSS_TEXT;
		q.str = "this_quarter";
		GW_CHECK(strcmp(SQ(q), "1") == 0);
		q.str = "s_q";
		GW_CHECK(strcmp(SQ(q), "1") == 0);
		q.str = "yvonne";          /* a header value */
		GW_CHECK(strcmp(SQ(q), "3") == 0);
		q.op = MSS_BODY;           /* ... which BODY does not see */
		GW_CHECK(strcmp(SQ(q), "") == 0);
		q.str = "PIZZA";
		GW_CHECK(strcmp(SQ(q), "3") == 0);
	}
	{
		/* the search text lives with the blob, not the message row: a
		 * flag change leaves it alone, and BODY/TEXT still work under
		 * NOT and OR and on a message whose flags changed */
		struct ms_search k[2] = { { .op = MSS_BODY, .str = "pizza" },
					  { .op = MSS_TEXT, .str = "50%" } };
		struct ms_search or = { .op = MSS_OR, .kids = k, .n_kids = 2 };
		struct ms_search not = { .op = MSS_NOT, .kids = k, .n_kids = 1 };

		GW_CHECK(sql_i64("SELECT count(*) FROM information_schema.columns"
				 " WHERE table_name = 'mail_messages' AND column_name"
				 " IN ('header_text', 'body_text') AND $1 = $2", 0, 0) == 0);
		GW_CHECK(sql_i64("SELECT count(*) FROM mail_blobs b JOIN mail_messages m"
				 " ON m.account_id = b.account_id AND m.blob = b.sha256"
				 " WHERE m.account_id = $1 AND m.collection_id = $2"
				 " AND b.body_text ILIKE '%pizza%'", alice, search_folder) == 1);
		GW_CHECK(strcmp(SQ(or), "1,3") == 0);
		GW_CHECK(strcmp(SQ(not), "1,2") == 0);
		GW_CHECK(ms_store(db, A, alice, alice, search_folder, &s_uid[2], 1, MS_STORE_ADD,
				  MF_ANSWERED, NULL, -1, &res) == 1);
		k[1].str = "PERCENT";
		GW_CHECK(strcmp(SQ(k[1]), "2") == 0);
		GW_CHECK(ms_store(db, A, alice, alice, search_folder, &s_uid[2], 1,
				  MS_STORE_REMOVE, MF_ANSWERED, NULL, -1, &res) == 1);
	}
	{
		struct ms_search q = { .op = MSS_HEADER, .str = "x-spam", .str2 = "yes" };

		GW_CHECK(strcmp(SQ(q), "1") == 0);
		q.str2 = "";
		GW_CHECK(strcmp(SQ(q), "1,3") == 0);
		q.str = "subject";
		q.str2 = "LUNCH";
		GW_CHECK(strcmp(SQ(q), "3") == 0);
		q.str = "in-reply-to";
		q.str2 = "q1@";
		GW_CHECK(strcmp(SQ(q), "2") == 0);
		q.str = "bcc";
		q.str2 = "";
		GW_CHECK(strcmp(SQ(q), "2") == 0);
	}
	{
		struct ms_search q = { .op = MSS_BEFORE, .num = day(2020, 1, 7) };

		GW_CHECK(strcmp(SQ(q), "1") == 0);
		q.op = MSS_ON;
		GW_CHECK(strcmp(SQ(q), "2") == 0);
		q.op = MSS_SINCE;
		GW_CHECK(strcmp(SQ(q), "2,3") == 0);
		q.op = MSS_SENTBEFORE;
		GW_CHECK(strcmp(SQ(q), "1,3") == 0);
		q.op = MSS_SENTON;
		GW_CHECK(strcmp(SQ(q), "2") == 0);
		q.op = MSS_SENTSINCE;
		q.num = day(2020, 1, 6);
		GW_CHECK(strcmp(SQ(q), "1,2") == 0);
		q.op = MSS_SAVEDSINCE;
		q.num = day(2024, 1, 1);
		GW_CHECK(strcmp(SQ(q), "1,2,3") == 0);
		q.op = MSS_SAVEDBEFORE;
		GW_CHECK(strcmp(SQ(q), "") == 0);
		q.op = MSS_SAVEDON;
		q.num = day(2020, 1, 6);
		GW_CHECK(strcmp(SQ(q), "") == 0);
		q.op = MSS_SAVEDATESUPPORTED;
		GW_CHECK(strcmp(SQ(q), "1,2,3") == 0);
		q.op = MSS_OLDER;
		q.num = 3600;
		GW_CHECK(strcmp(SQ(q), "1,2,3") == 0);
		q.op = MSS_YOUNGER;
		GW_CHECK(strcmp(SQ(q), "") == 0);
	}
	{
		struct ms_search q = { .op = MSS_LARGER, .num = f[0].size };

		GW_CHECK(strcmp(SQ(q), "2") == 0);         /* s2 is the biggest */
		q.op = MSS_SMALLER;
		q.num = f[1].size;
		GW_CHECK(strcmp(SQ(q), "1,3") == 0);
		q.op = MSS_MODSEQ;
		q.num = modseq_flag;
		GW_CHECK(strcmp(SQ(q), "2") == 0);
		q.op = MSS_FLAG;
		q.num = MF_FLAGGED;
		GW_CHECK(strcmp(SQ(q), "2") == 0);
		q.op = MSS_NOFLAG;
		GW_CHECK(strcmp(SQ(q), "1,3") == 0);
		q.op = MSS_FLAG;
		q.num = MF_RECENT;
		GW_CHECK(strcmp(SQ(q), "") == 0);
		q.op = MSS_KEYWORD;
		q.str = "$important";
		GW_CHECK(strcmp(SQ(q), "3") == 0);
		q.op = MSS_UNKEYWORD;
		GW_CHECK(strcmp(SQ(q), "1,2") == 0);
		q.op = MSS_EMAILID;
		q.str = f[0].emailid;
		GW_CHECK(strcmp(SQ(q), "1") == 0);
		q.op = MSS_THREADID;
		q.str = f[0].threadid;
		GW_CHECK(strcmp(SQ(q), "1,2") == 0);          /* s2 answers s1 */
	}
	{
		uint32_t set[2] = { 1, 3 };
		struct ms_search q = { .op = MSS_UIDSET, .uids = set, .n_uids = 2 };

		GW_CHECK(strcmp(SQ(q), "1,3") == 0);
	}
	/* trees */
	{
		struct ms_search k1[2] = {
			{ .op = MSS_FROM, .str = "alice" }, { .op = MSS_SUBJECT, .str = "quarterly" },
		};
		struct ms_search and = { .op = MSS_AND, .kids = k1, .n_kids = 2 };
		struct ms_search k2[2] = {
			{ .op = MSS_FROM, .str = "zed" }, { .op = MSS_BCC, .str = "dave" },
		};
		struct ms_search or = { .op = MSS_OR, .kids = k2, .n_kids = 2 };
		struct ms_search k3 = { .op = MSS_SUBJECT, .str = "quarterly" };
		struct ms_search not = { .op = MSS_NOT, .kids = &k3, .n_kids = 1 };
		struct ms_search k4 = { .op = MSS_HEADER, .str = "x-spam", .str2 = "" };
		struct ms_search not_hdr = { .op = MSS_NOT, .kids = &k4, .n_kids = 1 };
		struct ms_search k5 = { .op = MSS_CC, .str = "carol" };   /* NULL cc on 2, 3 */
		struct ms_search not_cc = { .op = MSS_NOT, .kids = &k5, .n_kids = 1 };
		struct ms_search k6[2] = { or, not };
		struct ms_search nested = { .op = MSS_AND, .kids = k6, .n_kids = 2 };
		struct ms_search empty_and = { .op = MSS_AND, .n_kids = 0 };

		GW_CHECK(strcmp(SQ(and), "1") == 0);
		GW_CHECK(strcmp(SQ(or), "2,3") == 0);
		GW_CHECK(strcmp(SQ(not), "3") == 0);
		GW_CHECK(strcmp(SQ(not_hdr), "2") == 0);
		GW_CHECK(strcmp(SQ(not_cc), "2,3") == 0);
		GW_CHECK(strcmp(SQ(nested), "3") == 0);
		GW_CHECK(strcmp(SQ(empty_and), "1,2,3") == 0);
	}

	/* SORT (RFC 5256, RFC 5957) */
	{
		struct ms_search all = { .op = MSS_ALL };
		struct ms_sort s[2];

		s[0] = (struct ms_sort){ MSK_ARRIVAL, false };
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "1,2,3") == 0);
		s[0].reverse = true;
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "3,2,1") == 0);
		s[0] = (struct ms_sort){ MSK_DATE, false };
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "3,1,2") == 0);
		s[0] = (struct ms_sort){ MSK_FROM, false };
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "1,2,3") == 0);
		s[0].reverse = true;
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "3,2,1") == 0);
		s[0] = (struct ms_sort){ MSK_SUBJECT, false };
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "3,1,2") == 0);
		s[1] = (struct ms_sort){ MSK_DATE, true };
		GW_CHECK(strcmp(search_q(alice, &all, s, 2), "3,2,1") == 0);
		s[0] = (struct ms_sort){ MSK_SIZE, false };
		GW_CHECK(strcmp(search_q(alice, &all, s, 1),
				f[0].size < f[2].size ? "1,3,2" : "3,1,2") == 0);
		s[0] = (struct ms_sort){ MSK_TO, false };
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "2,1,3") == 0);
		s[0] = (struct ms_sort){ MSK_CC, false };
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "2,3,1") == 0);
		s[0] = (struct ms_sort){ MSK_DISPLAYFROM, false };
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "1,2,3") == 0);
		s[0] = (struct ms_sort){ MSK_DISPLAYTO, false };
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "2,1,3") == 0);
		s[0].reverse = true;
		GW_CHECK(strcmp(search_q(alice, &all, s, 1), "3,1,2") == 0);
		/* sort of a subset */
		{
			struct ms_search q = { .op = MSS_SUBJECT, .str = "quarterly" };

			s[0] = (struct ms_sort){ MSK_ARRIVAL, true };
			GW_CHECK(strcmp(search_q(alice, &q, s, 1), "2,1") == 0);
		}
	}
	/* an empty folder and a missing one */
	{
		struct ms_search all = { .op = MSS_ALL };
		uint32_t *u = NULL;

		GW_CHECK(ms_search(db, A, alice, alice, folder(alice, "Empty"), &all, NULL, 0, &u,
				   &n) == 0 && n == 0);
		GW_CHECK(ms_search(db, A, alice, alice, 999999, &all, NULL, 0, &u, &n) == MS_NOTFOUND);
	}
}

/* ---- thread --------------------------------------------------------------- */

static void fmt_thread(struct bu_buf *b, const struct ms_thread *t)
{
	const struct ms_thread *kids;
	bool any = false;

	if (t->uid != 0) {
		bu_buf_printf(b, "%u", t->uid);
		any = true;
	}
	kids = t->children;
	while (kids != NULL && kids->next == NULL) {
		bu_buf_printf(b, any ? " %u" : "%u", kids->uid);
		any = true;
		kids = kids->children;
	}
	if (kids != NULL) {
		if (any)
			bu_buf_append_byte(b, ' ');
		for (; kids != NULL; kids = kids->next) {
			bu_buf_append_byte(b, '(');
			fmt_thread(b, kids);
			bu_buf_append_byte(b, ')');
		}
	}
}

static const char *fmt_threads(const struct ms_thread *roots)
{
	static char out[1024];
	struct bu_buf b;

	bu_buf_init(&b, 0);
	for (; roots != NULL; roots = roots->next) {
		bu_buf_append_byte(&b, '(');
		fmt_thread(&b, roots);
		bu_buf_append_byte(&b, ')');
	}
	snprintf(out, sizeof(out), "%s", bu_buf_cstr(&b));
	bu_buf_deinit(&b);
	return out;
}

/* SORT on subjects longer than the stored sort-key prefix (200
 * characters): keys equal in their first 200 characters must still order
 * by the whole subject; HEADER on a field that is not a column, with a
 * needle the trigram prefilter is used for and one it is not. */
static void test_search_sort_long_keys(void)
{
	static const char *const tails[] = { "zz", "aa", "mm" };
	struct bu_buf pre, msg;
	int64_t coll = folder(alice, "LongKeys");
	uint32_t uids[4];
	uint32_t *u = NULL;
	size_t n = 0;

	bu_buf_init(&pre, 0);
	for (int i = 0; i < 30; i++)
		bu_buf_append_str(&pre, "Longsubject ");        /* 360 characters */
	for (int i = 0; i < 3; i++) {
		bu_buf_init(&msg, 0);
		bu_buf_printf(&msg, "From: x%d@example.test\r\nSubject: %s%s\r\n"
			      "List-Id: <list%d.example.test>\r\n\r\nbody\r\n",
			      i, bu_buf_cstr(&pre), tails[i], i);
		uids[i] = append1(alice, coll, bu_buf_cstr(&msg));
		bu_buf_deinit(&msg);
	}
	uids[3] = append1(alice, coll, "From: short@example.test\r\nSubject: B short\r\n"
			  "X-Other: list1.example.test\r\n\r\nbody\r\n");
	bu_buf_deinit(&pre);
	GW_CHECK(uids[0] == 1 && uids[3] == 4);
	{
		struct ms_search all = { .op = MSS_ALL };
		struct ms_sort subj = { .key = MSK_SUBJECT, .reverse = false };
		struct ms_sort rsubj = { .key = MSK_SUBJECT, .reverse = true };
		struct ms_sort two[2] = { { .key = MSK_SUBJECT, .reverse = false },
					  { .key = MSK_SIZE, .reverse = true } };
		struct ms_sort to = { .key = MSK_TO, .reverse = false };

		GW_CHECK(ms_search(db, A, alice, alice, coll, &all, &subj, 1, &u, &n) == 4 &&
			 u[0] == 4 && u[1] == 2 && u[2] == 3 && u[3] == 1);
		GW_CHECK(ms_search(db, A, alice, alice, coll, &all, &rsubj, 1, &u, &n) == 4 &&
			 u[0] == 1 && u[1] == 3 && u[2] == 2 && u[3] == 4);
		GW_CHECK(ms_search(db, A, alice, alice, coll, &all, two, 2, &u, &n) == 4 &&
			 u[0] == 4 && u[1] == 2 && u[2] == 3 && u[3] == 1);
		/* not held by the index: sorted in SQL; all To: empty, UID order */
		GW_CHECK(ms_search(db, A, alice, alice, coll, &all, &to, 1, &u, &n) == 4 &&
			 u[0] == 1 && u[3] == 4);
	}
	{
		struct ms_search h1 = { .op = MSS_HEADER, .str = "List-Id", .str2 = "LIST1.example" };
		struct ms_search h2 = { .op = MSS_HEADER, .str = "list-id", .str2 = "t>" };
		struct ms_search h3 = { .op = MSS_HEADER, .str = "X-Other", .str2 = "" };
		struct ms_search h4 = { .op = MSS_HEADER, .str = "List-Id", .str2 = "nowhere" };

		GW_CHECK(ms_search(db, A, alice, alice, coll, &h1, NULL, 0, &u, &n) == 1 &&
			 u[0] == 2);
		GW_CHECK(ms_search(db, A, alice, alice, coll, &h2, NULL, 0, &u, &n) == 3);
		GW_CHECK(ms_search(db, A, alice, alice, coll, &h3, NULL, 0, &u, &n) == 1 &&
			 u[0] == 4);
		GW_CHECK(ms_search(db, A, alice, alice, coll, &h4, NULL, 0, &u, &n) == 0);
	}
}

static void test_thread(void)
{
	static const char *const msgs[] = {
		/* 1 */ "Message-ID: <a@x>\r\nSubject: Meeting\r\n"
			"Date: Wed, 1 Jan 2020 10:00:00 +0000\r\n\r\nx\r\n",
		/* 2 */ "Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nReferences: <a@x>\r\n"
			"Subject: Re: Meeting\r\nDate: Wed, 1 Jan 2020 10:05:00 +0000\r\n\r\nx\r\n",
		/* 3 */ "Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\n"
			"Subject: Re: Meeting\r\nDate: Wed, 1 Jan 2020 10:10:00 +0000\r\n\r\nx\r\n",
		/* 4 */ "Message-ID: <d@x>\r\nReferences: <a@x>\r\n"
			"Subject: Re: Meeting\r\nDate: Wed, 1 Jan 2020 10:07:00 +0000\r\n\r\nx\r\n",
		/* 5 */ "Message-ID: <e@x>\r\nSubject: Lunch\r\n"
			"Date: Wed, 1 Jan 2020 09:00:00 +0000\r\n\r\nx\r\n",
		/* 6 */ "Message-ID: <f@x>\r\nReferences: <missing@x>\r\nSubject: Re: Party\r\n"
			"Date: Wed, 1 Jan 2020 11:00:00 +0000\r\n\r\nx\r\n",
		/* 7 */ "Message-ID: <g@x>\r\nReferences: <missing@x>\r\nSubject: Re: Party\r\n"
			"Date: Wed, 1 Jan 2020 11:30:00 +0000\r\n\r\nx\r\n",
		/* 8 */ "Message-ID: <h@x>\r\nSubject: Re: Lunch\r\n"
			"Date: Wed, 1 Jan 2020 12:00:00 +0000\r\n\r\nx\r\n",
		/* 9: duplicate Message-ID, own thread (no subject to merge on) */
		"Message-ID: <a@x>\r\nSubject: \r\n"
			"Date: Wed, 1 Jan 2020 13:00:00 +0000\r\n\r\nx\r\n",
	};
	int64_t th = folder(alice, "Threads");
	struct ms_thread *roots = NULL;
	struct ms_search all = { .op = MSS_ALL };
	struct ms_search sub = { .op = MSS_SUBJECT, .str = "party" };

	for (size_t i = 0; i < BU_N_ELEMENTS(msgs); i++)
		GW_CHECK(append1(alice, th, msgs[i]) == i + 1);
	GW_CHECK(ms_thread(db, A, alice, alice, th, &all, MS_THREAD_REFERENCES, &roots) == 0);
	fprintf(stderr, "thread references: %s\n", fmt_threads(roots));
	GW_CHECK(strcmp(fmt_threads(roots), "(5 8)(1 (2 3)(4))((6)(7))(9)") == 0);
	GW_CHECK(ms_thread(db, A, alice, alice, th, &all, MS_THREAD_ORDEREDSUBJECT, &roots) == 0);
	fprintf(stderr, "thread orderedsubject: %s\n", fmt_threads(roots));
	GW_CHECK(strcmp(fmt_threads(roots), "(5 8)(1 (2)(4)(3))(6 7)(9)") == 0);
	/* a subset: the dummy parent of 6 and 7 stays */
	GW_CHECK(ms_thread(db, A, alice, alice, th, &sub, MS_THREAD_REFERENCES, &roots) == 0);
	GW_CHECK(strcmp(fmt_threads(roots), "((6)(7))") == 0);
	/* 2 without 1: 2's dummy parent with one child is pruned */
	{
		uint32_t set[3] = { 2, 3, 5 };
		struct ms_search q = { .op = MSS_UIDSET, .uids = set, .n_uids = 3 };

		GW_CHECK(ms_thread(db, A, alice, alice, th, &q, MS_THREAD_REFERENCES, &roots) == 0);
		GW_CHECK(strcmp(fmt_threads(roots), "(5)(2 3)") == 0);
	}
	GW_CHECK(ms_thread(db, A, alice, alice, folder(alice, "Empty"), &all,
			   MS_THREAD_REFERENCES, &roots) == 0 && roots == NULL);
}

/* ---- metadata ------------------------------------------------------------- */

static void test_metadata(void)
{
	int64_t sh = folder(alice, "Shared");
	struct ms_meta_entry *e = NULL;
	size_t n = 0;
	static const uint8_t bin[3] = { 'a', 0, 'b' };
	uint8_t huge[70000];

	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/comment",
				 (const uint8_t *)"team folder", 11) == 0);
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/private/Comment", bin, 3) == 0);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/shared/comment", 0, &e, &n) == 1);
	GW_CHECK(n == 1 && e[0].value_len == 11 && memcmp(e[0].value, "team folder", 11) == 0);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/PRIVATE/comment", 0, &e, &n) == 1);
	GW_CHECK(n == 1 && e[0].value_len == 3 && memcmp(e[0].value, bin, 3) == 0 &&
		 strcmp(e[0].entry, "/private/comment") == 0);
	/* replace */
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/comment",
				 (const uint8_t *)"new", 3) == 0);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/shared/comment", 0, &e, &n) == 1 &&
		 e[0].value_len == 3);
	/* depth */
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/vendor/a", (const uint8_t *)"1", 1) == 0);
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/vendor/a/b", (const uint8_t *)"2", 1) == 0);
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/vendor/c", (const uint8_t *)"3", 1) == 0);
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/vendorx", (const uint8_t *)"4", 1) == 0);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/shared/vendor", 0, &e, &n) == 0);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/shared/vendor", 1, &e, &n) == 2);
	GW_CHECK(n == 2 && strcmp(e[0].entry, "/shared/vendor/a") == 0 &&
		 strcmp(e[1].entry, "/shared/vendor/c") == 0);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/shared/vendor", -1, &e, &n) == 3);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/shared", -1, &e, &n) == 5);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/private", -1, &e, &n) == 1);
	/* delete */
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/vendor/c", NULL, 0) == 0);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/shared/vendor", -1, &e, &n) == 2);
	/* per-user /private; bob (l r s w) may write /shared here */
	GW_CHECK(ms_metadata_set(db, bob, alice, sh, "/private/comment", (const uint8_t *)"b", 1) == 0);
	GW_CHECK(ms_metadata_get(db, A, bob, alice, sh, "/private/comment", 0, &e, &n) == 1 &&
		 e[0].value_len == 1 && e[0].value[0] == 'b');
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/private/comment", 0, &e, &n) == 1 &&
		 e[0].value_len == 3);
	GW_CHECK(ms_metadata_get(db, A, bob, alice, sh, "/shared/comment", 0, &e, &n) == 1);
	/* dave (l r only on ReadOnly) may keep /private but not /shared there */
	{
		int64_t ro = folder(alice, "ReadOnly");

		GW_CHECK(ms_metadata_set(db, dave, alice, ro, "/private/x", (const uint8_t *)"1", 1) == 0);
		GW_CHECK(ms_metadata_set(db, dave, alice, ro, "/shared/x", (const uint8_t *)"1", 1) ==
			 MS_NOPERM);
	}
	/* names and limits */
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/other/x", (const uint8_t *)"1", 1) == MS_NOPERM);
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/a//b", (const uint8_t *)"1", 1) == MS_NOPERM);
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/a*", (const uint8_t *)"1", 1) == MS_NOPERM);
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/a/", (const uint8_t *)"1", 1) == MS_NOPERM);
	memset(huge, 'h', sizeof(huge));
	GW_CHECK(ms_metadata_set(db, alice, alice, sh, "/shared/big", huge, sizeof(huge)) == MS_TOOBIG);
	GW_CHECK(ms_metadata_set(db, alice, alice, 999999, "/shared/x", (const uint8_t *)"1", 1) ==
		 MS_NOTFOUND);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, 999999, "/shared/x", 0, &e, &n) == MS_NOTFOUND);
	/* server (account) level */
	GW_CHECK(ms_metadata_set(db, alice, alice, 0, "/private/vendor/theme", (const uint8_t *)"dark", 4) == 0);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, 0, "/private/vendor/theme", 0, &e, &n) == 1 &&
		 e[0].value_len == 4);
	GW_CHECK(ms_metadata_get(db, A, alice, alice, sh, "/private/vendor/theme", 0, &e, &n) == 0);
	/* a deleted folder takes its entries along */
	{
		int64_t tmp = folder(alice, "MetaTmp");
		const char *err = NULL;

		GW_CHECK(ms_metadata_set(db, alice, alice, tmp, "/shared/x", (const uint8_t *)"1", 1) == 0);
		GW_CHECK(collection_delete(db, alice, tmp, &err) == 1);
		GW_CHECK(sql_i64("SELECT count(*) FROM mail_metadata WHERE account_id = $1"
				 " AND collection_id = $2", alice, tmp) == 0);
	}
}

/* ---- delivery -------------------------------------------------------------- */

static void test_deliver(void)
{
	int64_t inbox = folder(alice, "INBOX"), lists = folder(alice, "Lists");
	struct ms_status st0, st1, sl0, sl1;
	uint32_t uid = 0;
	const uint8_t *m = (const uint8_t *)msg_plain;
	size_t len = strlen(msg_plain);

	GW_CHECK(ms_mailbox_status(db, alice, alice, inbox, &st0) == 0);
	GW_CHECK(ms_mailbox_status(db, alice, alice, lists, &sl0) == 0);
	GW_CHECK(ms_deliver(db, alice, NULL, m, len, 0, &uid) == 0 && uid == st0.uidnext);
	GW_CHECK(ms_deliver(db, alice, "inbox", m, len, 0, &uid) == 0 && uid == st0.uidnext + 1);
	GW_CHECK(ms_deliver(db, alice, "No/Such/Folder", m, len, 0, &uid) == 0 &&
		 uid == st0.uidnext + 2);
	GW_CHECK(ms_deliver(db, alice, "Lists", m, len, MF_FLAGGED, &uid) == 0 && uid == sl0.uidnext);
	GW_CHECK(ms_mailbox_status(db, alice, alice, inbox, &st1) == 0 &&
		 st1.messages == st0.messages + 3 && st1.unseen == st0.unseen + 3);
	GW_CHECK(ms_mailbox_status(db, alice, alice, lists, &sl1) == 0 &&
		 sl1.messages == sl0.messages + 1);
	{
		struct ms_fetch *f = NULL;
		size_t n = 0;

		GW_CHECK(ms_fetch(db, A, alice, alice, lists, &uid, 1, MSF_RAW, &f, &n) == 0 && n == 1 &&
			 f[0].flags == MF_FLAGGED && f[0].raw_len == len &&
			 memcmp(f[0].raw, m, len) == 0);
	}
	GW_CHECK(ms_deliver(db, 987654321, NULL, m, len, 0, &uid) < 0);
}

/* ---- RENAME INBOX ------------------------------------------------------------ */

static void test_rename_inbox(void)
{
	int64_t erin = add_user("erin@example.test", 0, 0);
	int64_t inbox = folder(erin, "INBOX"), moved = 0;
	struct ms_mailbox *mb = NULL;
	struct ms_changes ch;
	const char *err = NULL;
	int64_t hms;
	uint32_t u1, u2;

	u1 = append_kw(erin, erin, inbox, msg_plain, MF_SEEN, NULL, 0);
	u2 = append1(erin, inbox, "Subject: two\r\n\r\n2\r\n");
	GW_CHECK(u1 == 1 && u2 == 2);
	GW_CHECK(ms_mailbox_open(db, A, erin, erin, inbox, &mb) == 0);
	hms = mb->highestmodseq;
	GW_CHECK(ms_rename_inbox(db, erin, "Old Inbox", &moved, &err) == 0 && moved > 0);
	GW_CHECK(ms_mailbox_open(db, A, erin, erin, inbox, &mb) == 0 && mb->n_msgs == 0 &&
		 mb->uidnext == 3);
	GW_CHECK(ms_mailbox_changes(db, A, erin, erin, inbox, hms, &ch) == 0 &&
		 ch.n_expunged == 2);
	GW_CHECK(ms_mailbox_open(db, A, erin, erin, moved, &mb) == 0 && mb->n_msgs == 2 &&
		 mb->uidnext == 3 && find_msg(mb, 1) && find_msg(mb, 1)->flags == MF_SEEN);
	GW_CHECK(folder(erin, "Old Inbox") == moved);
	GW_CHECK(ms_rename_inbox(db, erin, "Old Inbox", &moved, &err) == MS_EXISTS);
	/* INBOX goes on taking mail */
	GW_CHECK(ms_deliver(db, erin, NULL, (const uint8_t *)msg_plain, strlen(msg_plain), 0, &u1) == 0 &&
		 u1 == 3);
}

/* ---- concurrent writers --------------------------------------------------- */

struct conc_arg {
	int64_t owner, coll;
	int fails;
};

static void *conc_thread(void *p)
{
	struct conc_arg *c = p;
	struct bu_db *tdb = bu_db_create(gwtest_conninfo());
	struct bu_arena *ta = bu_arena_create(0);

	for (int i = 0; i < 50; i++) {
		struct ms_append m = { .data = (const uint8_t *)msg_plain, .len = strlen(msg_plain) };
		struct ms_store_result res;
		uint32_t uid = 0, uidv;

		if (ms_append(tdb, c->owner, c->owner, c->coll, &m, 1, &uidv, &uid) != 0 ||
		    ms_store(tdb, ta, c->owner, c->owner, c->coll, &uid, 1, MS_STORE_ADD,
			     MF_FLAGGED, NULL, -1, &res) != 1)
			c->fails++;
		bu_arena_reset(ta);
	}
	bu_arena_destroy(&ta);
	bu_db_destroy(&tdb);
	return NULL;
}

static void test_concurrent(void)
{
	int64_t frank = add_user("frank@example.test", 0, 0);
	int64_t inbox = folder(frank, "INBOX");
	struct conc_arg args[4];
	pthread_t th[4];
	struct ms_mailbox *mb = NULL;
	bool ok = true;

	for (int i = 0; i < 4; i++) {
		args[i] = (struct conc_arg){ .owner = frank, .coll = inbox };
		pthread_create(&th[i], NULL, conc_thread, &args[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		GW_CHECK(args[i].fails == 0);
	}
	GW_CHECK(ms_mailbox_open(db, A, frank, frank, inbox, &mb) == 0 && mb->n_msgs == 200);
	/* UIDs 1..200, every message flagged, every modseq distinct */
	for (size_t i = 0; mb != NULL && i < mb->n_msgs; i++) {
		if (mb->msgs[i].uid != i + 1 || mb->msgs[i].flags != MF_FLAGGED)
			ok = false;
		for (size_t j = 0; j < i; j++) {
			if (mb->msgs[j].modseq == mb->msgs[i].modseq)
				ok = false;
		}
	}
	GW_CHECK(ok);
	GW_CHECK(mb != NULL && mb->uidnext == 201);
}

/* ---- a bigger mailbox ------------------------------------------------------ */

static void test_bulk(void)
{
	enum { N = 2000 };
	int64_t bulk = folder(alice, "Bulk");
	struct ms_append *m = bu_arena_alloc(A, N * sizeof(*m));
	uint32_t *uids = bu_arena_alloc(A, N * sizeof(uint32_t)), uidv;
	struct ms_mailbox *mb = NULL;
	struct ms_fetch *f = NULL;
	size_t n = 0;
	int64_t t0;

	for (int i = 0; i < N; i++) {
		char *s = bu_arena_printf(A, "From: sender%d@example.test\r\nSubject: bulk %d\r\n"
					  "Message-ID: <bulk%d@example.test>\r\n\r\nbody %d\r\n",
					  i, i, i, i);

		m[i].data = (const uint8_t *)s;
		m[i].len = strlen(s);
	}
	t0 = bu_mono_us();
	GW_CHECK(ms_append(db, alice, alice, bulk, m, N, &uidv, uids) == 0);
	fprintf(stderr, "bulk: append of %d in one transaction: %lld ms\n", N,
		(long long)(bu_mono_us() - t0) / 1000);
	GW_CHECK(uids[0] == 1 && uids[N - 1] == N);
	t0 = bu_mono_us();
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, bulk, &mb) == 0 && mb->n_msgs == N);
	fprintf(stderr, "bulk: open of %d: %lld ms\n", N, (long long)(bu_mono_us() - t0) / 1000);
	t0 = bu_mono_us();
	GW_CHECK(ms_fetch(db, A, alice, alice, bulk, uids, N, MSF_RAW | MSF_STRUCTURE, &f, &n) == 0 &&
		 n == N);
	fprintf(stderr, "bulk: fetch of %d with bodies: %lld ms\n", N,
		(long long)(bu_mono_us() - t0) / 1000);
	GW_CHECK(n == N && f[N - 1].raw_len == m[N - 1].len &&
		 memcmp(f[N - 1].raw, m[N - 1].data, m[N - 1].len) == 0);
	t0 = bu_mono_us();
	for (int i = 0; i < 200; i++)
		append1(alice, bulk, msg_plain);
	fprintf(stderr, "bulk: 200 single appends: %lld ms\n",
		(long long)(bu_mono_us() - t0) / 1000);
}

/* SELECT's one-row read (binary arrays, keywords only where present, rows
 * out of UID order after updates) and FETCH's UID forms: one UID, a range,
 * a list with gaps, duplicates, absent UIDs and out-of-order input. */
static void test_open_fetch_forms(void)
{
	int64_t f = folder(alice, "Forms");
	static const char *const kw1[] = { "$Label1", NULL };
	static const char *const kw2[] = { "Foo", "Bar", NULL };
	struct ms_store_result res;
	struct ms_mailbox *mb = NULL;
	struct ms_fetch *r = NULL;
	uint32_t u[8], *exp = NULL;
	size_t n = 0;

	GW_CHECK(ms_mailbox_open(db, A, alice, alice, f, &mb) == 0 && mb->n_msgs == 0 &&
		 mb->msgs != NULL && mb->keywords != NULL && mb->keywords[0] == NULL);
	for (int i = 0; i < 8; i++) {
		char msg[160];

		snprintf(msg, sizeof(msg), "Subject: form %d\r\nMessage-ID: <form%d@x>\r\n\r\n"
			 "body %d\r\n", i, i, i);
		u[i] = append_kw(alice, alice, f, msg, i == 3 ? MF_SEEN : 0,
				 i == 1 ? kw1 : i == 5 ? kw2 : NULL, 0);
	}
	/* updates move rows: the table order is no longer the UID order */
	GW_CHECK(ms_store(db, A, alice, alice, f, u, 1, MS_STORE_ADD, MF_FLAGGED, NULL, -1,
			  &res) == 1);
	GW_CHECK(ms_store(db, A, alice, alice, f, u + 2, 1, MS_STORE_ADD, 0, kw1, -1, &res) == 1);
	GW_CHECK(ms_store(db, A, alice, alice, f, u + 6, 1, MS_STORE_ADD, MF_DELETED, NULL, -1,
			  &res) == 1);
	GW_CHECK(ms_expunge(db, A, alice, alice, f, NULL, 0, &exp, &n) == 1 && exp[0] == u[6]);
	GW_CHECK(ms_mailbox_open(db, A, alice, alice, f, &mb) == 0 && mb->n_msgs == 7);
	for (size_t i = 1; mb != NULL && i < mb->n_msgs; i++)
		GW_CHECK(mb->msgs[i - 1].uid < mb->msgs[i].uid);
	GW_CHECK(find_msg(mb, u[0]) && find_msg(mb, u[0])->flags == MF_FLAGGED &&
		 kw_count(find_msg(mb, u[0])->keywords) == 0);
	GW_CHECK(find_msg(mb, u[1]) && kw_count(find_msg(mb, u[1])->keywords) == 1 &&
		 kw_has(find_msg(mb, u[1])->keywords, "$Label1"));
	GW_CHECK(find_msg(mb, u[2]) && kw_count(find_msg(mb, u[2])->keywords) == 1 &&
		 kw_has(find_msg(mb, u[2])->keywords, "$label1"));
	GW_CHECK(find_msg(mb, u[3]) && find_msg(mb, u[3])->flags == MF_SEEN);
	GW_CHECK(find_msg(mb, u[5]) && kw_count(find_msg(mb, u[5])->keywords) == 2 &&
		 kw_has(find_msg(mb, u[5])->keywords, "Foo") &&
		 kw_has(find_msg(mb, u[5])->keywords, "Bar"));
	GW_CHECK(find_msg(mb, u[6]) == NULL && find_msg(mb, u[7]) != NULL &&
		 kw_count(find_msg(mb, u[7])->keywords) == 0);
	GW_CHECK(mb->uidnext == u[7] + 1 && kw_count(mb->keywords) == 3);
	GW_CHECK(find_msg(mb, u[2]) && find_msg(mb, u[0]) &&
		 mb->highestmodseq >= find_msg(mb, u[2])->modseq &&
		 find_msg(mb, u[2])->modseq > find_msg(mb, u[0])->modseq);

	/* one UID; an absent one */
	GW_CHECK(ms_fetch(db, A, alice, alice, f, u + 5, 1, MSF_META | MSF_RAW, &r, &n) == 0 &&
		 n == 1 && r[0].uid == u[5] && kw_count(r[0].keywords) == 2 && r[0].raw_len > 0);
	GW_CHECK(ms_fetch(db, A, alice, alice, f, u + 6, 1, MSF_META, &r, &n) == 0 && n == 0);
	/* a range over the expunged UID */
	{
		uint32_t range[4] = { u[4], u[5], u[6], u[7] };

		GW_CHECK(ms_fetch(db, A, alice, alice, f, range, 4, MSF_META | MSF_STRUCTURE, &r,
				  &n) == 0 && n == 3 && r[0].uid == u[4] && r[1].uid == u[5] &&
			 r[2].uid == u[7] && r[2].structure_len > 0);
	}
	/* a list with gaps, duplicates, out of order */
	{
		uint32_t list[6] = { u[7], u[1], u[1], u[3], u[6], u[0] };
		uint32_t dup[3] = { u[1], u[1], u[3] };

		GW_CHECK(ms_fetch(db, A, alice, alice, f, list, 6, MSF_META, &r, &n) == 0 &&
			 n == 4 && r[0].uid == u[0] && r[1].uid == u[1] && r[2].uid == u[3] &&
			 r[3].uid == u[7] && r[2].flags == MF_SEEN);
		/* 3 UIDs spanning 3 values but with a gap: not a range */
		GW_CHECK(ms_fetch(db, A, alice, alice, f, dup, 3, MSF_META, &r, &n) == 0 &&
			 n == 2 && r[0].uid == u[1] && r[1].uid == u[3]);
	}
	/* another viewer's \Seen in the one-row read */
	{
		const char *err = NULL;

		GW_CHECK(acl_set(db, alice, f, "bob@example.test", ACL_LOOKUP | ACL_READ | ACL_SEEN,
				 &err) == 1);
		GW_CHECK(ms_store(db, A, bob, alice, f, u + 4, 1, MS_STORE_ADD, MF_SEEN, NULL, -1,
				  &res) == 1);
		GW_CHECK(ms_mailbox_open(db, A, bob, alice, f, &mb) == 0 && mb->n_msgs == 7 &&
			 find_msg(mb, u[4]) && find_msg(mb, u[4])->flags == MF_SEEN &&
			 find_msg(mb, u[3]) && find_msg(mb, u[3])->flags == 0 &&
			 find_msg(mb, u[0]) && find_msg(mb, u[0])->flags == MF_FLAGGED &&
			 kw_count(find_msg(mb, u[5])->keywords) == 2);
	}
}

/* MSF_RAW_FIRST: bodies for a prefix of the result bounded in bytes, the
 * others NULL (the caller fetches them with MSF_RAW) */
static void test_fetch_raw_first(void)
{
	int64_t f = folder(alice, "RawFirst");
	size_t big = (size_t)(MS_FETCH_RAW_FIRST / 2) + 100000, n = 0;
	char *msg = malloc(big + 1);
	struct ms_fetch *r = NULL;
	uint32_t u[4];

	GW_CHECK(msg != NULL);
	if (msg == NULL)
		return;
	memset(msg, 'x', big);
	memcpy(msg, "Subject: big\r\n\r\n", 16);
	for (size_t i = 80; i < big; i += 80) {
		msg[i - 2] = '\r';
		msg[i - 1] = '\n';
	}
	msg[big] = '\0';
	for (int i = 0; i < 3; i++)
		u[i] = append1(alice, f, msg);
	u[3] = append1(alice, f, msg_plain);
	GW_CHECK(ms_fetch(db, A, alice, alice, f, u, 4, MSF_META | MSF_RAW_FIRST, &r, &n) == 0 &&
		 n == 4);
	if (n == 4) {
		GW_CHECK(r[0].raw != NULL && r[0].raw_len == big && memcmp(r[0].raw, msg, big) == 0);
		GW_CHECK(r[1].raw != NULL && r[1].raw_len == big);
		GW_CHECK(r[2].raw == NULL && r[3].raw == NULL && r[3].size > 0);
	}
	/* the first one always, however big */
	GW_CHECK(ms_fetch(db, A, alice, alice, f, u + 2, 2, MSF_META | MSF_RAW_FIRST, &r, &n) == 0 &&
		 n == 2 && r[0].raw != NULL && r[0].raw_len == big && r[1].raw != NULL &&
		 r[1].raw_len == strlen(msg_plain));
	/* a list, not a range */
	{
		uint32_t l[2] = { u[0], u[3] };

		GW_CHECK(ms_fetch(db, A, alice, alice, f, l, 2, MSF_RAW_FIRST, &r, &n) == 0 &&
			 n == 2 && r[0].raw_len == big && r[1].raw != NULL &&
			 memcmp(r[1].raw, msg_plain, r[1].raw_len) == 0);
	}
	free(msg);
}

int main(void)
{
	const char *err = NULL;

	bu_log_open(NULL, BU_LOG_WARNING);
	db = gwtest_db("mailstore");
	A = bu_arena_create(0);
	if (domain_add(db, "example.test", &err) != 1) {
		fprintf(stderr, "domain_add: %s\n", err ? err : "?");
		return 1;
	}
	alice = add_user("alice@example.test", 0, 0);
	bob = add_user("bob@example.test", 0, 0);
	carol = add_user("carol@example.test", 0, 0);
	dave = add_user("dave@example.test", 0, 0);

	test_helpers();
	test_append_fetch();
	test_store_changes();
	test_copy_move_blobs();
	test_shared_seen_rights();
	test_quota();
	test_search_sort();
	test_search_sort_long_keys();
	test_thread();
	test_metadata();
	test_deliver();
	test_rename_inbox();
	test_concurrent();
	test_bulk();
	test_open_fetch_forms();
	test_fetch_raw_first();

	bu_arena_destroy(&A);
	bu_db_destroy(&db);
	return gwtest_status();
}

/*
 * test_acl - the authorization matrix: owner / grantee with each right /
 * group member (nested) / anyone / authenticated / stranger / not logged
 * in, on account-wide and per-collection entries; acl_parse/acl_format;
 * acl_set bumps the owner's counter. Real PostgreSQL (BUREAU_TEST_DB).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/acl.h"
#include "groupware/collection.h"
#include "groupware/principal.h"
#include "server/core/log.h"
#include "tests/unit/gwtest.h"

static struct bu_db *db;
static struct bu_arena *ar;

static int64_t add(const char *address, enum principal_kind kind)
{
	struct principal_new pn = {
		.address = address, .kind = kind,
		.password = kind == PRINCIPAL_USER ? "password-123" : NULL,
	};
	const char *err = NULL;
	int64_t id = 0;

	if (principal_add(db, &pn, &id, &err) != 1)
		fprintf(stderr, "principal_add(%s): %s\n", address, err);
	GW_CHECK(id > 0);
	return id;
}

static uint32_t rights(int64_t who, int64_t owner, int64_t coll)
{
	uint32_t r = 0xffffffff;

	GW_CHECK(acl_rights(db, who, owner, coll, &r) == 0);
	return r;
}

static void test_parse_format(void)
{
	uint32_t r;
	char buf[16];

	GW_CHECK(acl_parse("lrswipkxtea", &r) == 0 && r == ACL_ALL);
	GW_CHECK(acl_parse("", &r) == 0 && r == 0);
	GW_CHECK(acl_parse("l", &r) == 0 && r == ACL_LOOKUP);
	GW_CHECK(acl_parse("a", &r) == 0 && r == ACL_ADMIN);
	GW_CHECK(acl_parse("c", &r) == 0 && r == (ACL_CREATE | ACL_DELETE_MBOX));
	GW_CHECK(acl_parse("d", &r) == 0 &&
		 r == (ACL_DELETE_MBOX | ACL_DELETE_MSG | ACL_EXPUNGE));
	GW_CHECK(acl_parse("lrcd", &r) == 0 && strcmp(acl_format(r, buf), "lrkxte") == 0);
	GW_CHECK(acl_parse("lrswipkxtecd", &r) == 0 &&
		 strcmp(acl_format(r, buf), "lrswipkxte") == 0);
	GW_CHECK(acl_parse("lz", &r) == -1);
	GW_CHECK(acl_parse("L", &r) == -1);
	GW_CHECK(acl_parse("l r", &r) == -1);
	GW_CHECK(acl_parse("arl", &r) == 0 && strcmp(acl_format(r, buf), "lra") == 0);
	GW_CHECK(strcmp(acl_format(0, buf), "") == 0);
	GW_CHECK(strcmp(acl_format(ACL_ALL, buf), "lrswipkxtea") == 0);
	GW_CHECK(strcmp(acl_format(0xffffffff, buf), "lrswipkxtea") == 0);
	/* each letter is its own bit, in order */
	for (int i = 0; i < 11; i++) {
		char one[2] = { "lrswipkxtea"[i], '\0' };

		GW_CHECK(acl_parse(one, &r) == 0 && r == 1u << i);
		GW_CHECK(strcmp(acl_format(1u << i, buf), one) == 0);
	}
}

static void test_matrix(void)
{
	int64_t owner, grantee, member, stranger, grp, outer, inbox, sent, mod0, mod1;
	struct collection *c;
	struct acl_entry *list;
	const char *err = NULL;
	int64_t *owners;
	size_t n;

	GW_CHECK(domain_add(db, "acl.test", &err) == 1);
	owner = add("owner@acl.test", PRINCIPAL_USER);
	grantee = add("grantee@acl.test", PRINCIPAL_USER);
	member = add("member@acl.test", PRINCIPAL_USER);
	stranger = add("stranger@acl.test", PRINCIPAL_USER);
	grp = add("grp@acl.test", PRINCIPAL_GROUP);
	outer = add("outer@acl.test", PRINCIPAL_GROUP);
	GW_CHECK(member_add(db, "grp@acl.test", "member@acl.test", NULL, &err) == 1);
	GW_CHECK(member_add(db, "outer@acl.test", "grp@acl.test", NULL, &err) == 1);
	GW_CHECK(collection_get_by_name(db, ar, owner, COLL_MAIL, "INBOX", &c) == 1);
	inbox = c->id;
	GW_CHECK(collection_get_by_name(db, ar, owner, COLL_MAIL, "Sent", &c) == 1);
	sent = c->id;

	/* the owner has everything, nobody else anything */
	GW_CHECK(rights(owner, owner, inbox) == ACL_ALL);
	GW_CHECK(rights(owner, owner, 0) == ACL_ALL);
	GW_CHECK(acl_check(db, owner, owner, inbox, ACL_ALL) == 1);
	GW_CHECK(rights(grantee, owner, inbox) == 0);
	GW_CHECK(rights(stranger, owner, 0) == 0);
	GW_CHECK(rights(0, owner, inbox) == 0);
	GW_CHECK(acl_check(db, grantee, owner, inbox, ACL_READ) == 0);
	GW_CHECK(acl_check(db, grantee, owner, inbox, 0) == 1);

	/* every single right on one collection: exactly that right there */
	for (int i = 0; i < 11; i++) {
		uint32_t bit = 1u << i;

		GW_CHECK(acl_set(db, owner, inbox, "grantee@acl.test", bit, &err) == 1);
		GW_CHECK(rights(grantee, owner, inbox) == bit);
		GW_CHECK(acl_check(db, grantee, owner, inbox, bit) == 1);
		GW_CHECK(acl_check(db, grantee, owner, inbox, bit | ACL_ADMIN) ==
			 (bit == ACL_ADMIN ? 1 : 0));
		GW_CHECK(acl_check(db, grantee, owner, inbox, ACL_ALL & ~bit) == 0);
		GW_CHECK(rights(grantee, owner, sent) == 0);
		GW_CHECK(rights(grantee, owner, 0) == 0);
		GW_CHECK(rights(stranger, owner, inbox) == 0);
		GW_CHECK(rights(member, owner, inbox) == 0);
	}
	GW_CHECK(acl_set(db, owner, inbox, "grantee@acl.test", 0, &err) == 1);
	GW_CHECK(rights(grantee, owner, inbox) == 0);
	GW_CHECK(acl_list(db, ar, owner, inbox, &list, &n) == 0 && n == 0);

	/* account-wide entries reach every collection; union with the
	 * collection's own entry */
	GW_CHECK(acl_set(db, owner, 0, "Grantee@ACL.test", ACL_LOOKUP | ACL_READ, &err) == 1);
	GW_CHECK(rights(grantee, owner, inbox) == (ACL_LOOKUP | ACL_READ));
	GW_CHECK(rights(grantee, owner, sent) == (ACL_LOOKUP | ACL_READ));
	GW_CHECK(rights(grantee, owner, 0) == (ACL_LOOKUP | ACL_READ));
	GW_CHECK(acl_set(db, owner, inbox, "grantee@acl.test", ACL_WRITE | ACL_SEEN, &err) == 1);
	GW_CHECK(rights(grantee, owner, inbox) ==
		 (ACL_LOOKUP | ACL_READ | ACL_WRITE | ACL_SEEN));
	GW_CHECK(rights(grantee, owner, sent) == (ACL_LOOKUP | ACL_READ));
	GW_CHECK(rights(stranger, owner, inbox) == 0);
	/* rights on someone else's account say nothing about the owner's */
	GW_CHECK(rights(owner, grantee, 0) == 0);

	/* groups, nested */
	GW_CHECK(acl_set(db, owner, sent, "grp@acl.test", ACL_LOOKUP | ACL_INSERT, &err) == 1);
	GW_CHECK(rights(member, owner, sent) == (ACL_LOOKUP | ACL_INSERT));
	GW_CHECK(rights(member, owner, inbox) == 0);
	GW_CHECK(rights(grp, owner, sent) == (ACL_LOOKUP | ACL_INSERT));
	GW_CHECK(rights(stranger, owner, sent) == 0);
	GW_CHECK(acl_set(db, owner, 0, "outer@acl.test", ACL_POST, &err) == 1);
	GW_CHECK(rights(member, owner, sent) == (ACL_LOOKUP | ACL_INSERT | ACL_POST));
	GW_CHECK(rights(member, owner, inbox) == ACL_POST);
	GW_CHECK(rights(stranger, owner, inbox) == 0);
	GW_CHECK(member_remove(db, "grp@acl.test", "member@acl.test", &err) == 1);
	GW_CHECK(rights(member, owner, sent) == 0);
	GW_CHECK(member_add(db, "grp@acl.test", "member@acl.test", NULL, &err) == 1);
	/* a user in a shared mailbox's member list is not a group member */
	add("box@acl.test", PRINCIPAL_SHARED);
	GW_CHECK(member_add(db, "box@acl.test", "stranger@acl.test", "l", &err) == 1);
	GW_CHECK(rights(stranger, owner, sent) == 0);

	/* anyone and authenticated */
	GW_CHECK(acl_set(db, owner, sent, "anyone", ACL_LOOKUP, &err) == 1);
	GW_CHECK(acl_set(db, owner, sent, "authenticated", ACL_READ, &err) == 1);
	GW_CHECK(rights(stranger, owner, sent) == (ACL_LOOKUP | ACL_READ));
	GW_CHECK(rights(0, owner, sent) == ACL_LOOKUP);
	GW_CHECK(rights(-5, owner, sent) == ACL_LOOKUP);
	GW_CHECK(rights(stranger, owner, inbox) == 0);
	GW_CHECK(rights(member, owner, sent) ==
		 (ACL_LOOKUP | ACL_READ | ACL_INSERT | ACL_POST));
	GW_CHECK(acl_list(db, ar, owner, sent, &list, &n) == 0 && n == 3);
	if (n == 3) {
		GW_CHECK(strcmp(list[0].grantee, "grp@acl.test") == 0 && list[0].grantee_id == grp &&
			 list[0].rights == (ACL_LOOKUP | ACL_INSERT));
		GW_CHECK(strcmp(list[1].grantee, "anyone") == 0 &&
			 list[1].grantee_id == ACL_GRANTEE_ANYONE && list[1].rights == ACL_LOOKUP);
		GW_CHECK(strcmp(list[2].grantee, "authenticated") == 0 &&
			 list[2].grantee_id == ACL_GRANTEE_AUTHENTICATED);
	}
	GW_CHECK(acl_set(db, owner, sent, "anyone", 0, &err) == 1);
	GW_CHECK(rights(0, owner, sent) == 0);
	GW_CHECK(rights(stranger, owner, sent) == ACL_READ);

	/* bad input */
	GW_CHECK(acl_set(db, owner, sent, "nobody@acl.test", ACL_READ, &err) == 0 &&
		 strcmp(err, "no such principal: nobody@acl.test") == 0);
	GW_CHECK(acl_set(db, owner, sent, "", ACL_READ, &err) == 0);
	GW_CHECK(acl_set(db, owner, sent, "x\r\n* BYE@acl.test", ACL_READ, &err) == 0 &&
		 strcmp(err, "no such principal") == 0);
	GW_CHECK(acl_set(db, owner, sent, "gr\xc3\xa4ntee@acl.test", ACL_READ, &err) == 0);
	GW_CHECK(acl_set(db, owner, 999999, "grantee@acl.test", ACL_READ, &err) == 0 &&
		 strcmp(err, "no such collection") == 0);
	/* another account's collection id is no collection of this owner */
	GW_CHECK(collection_get_by_name(db, ar, grantee, COLL_MAIL, "INBOX", &c) == 1);
	GW_CHECK(acl_set(db, owner, c->id, "stranger@acl.test", ACL_READ, &err) == 0);
	GW_CHECK(acl_set(db, 999999, 0, "grantee@acl.test", ACL_READ, &err) == 0);

	/* every change takes the owner's next counter value and stamps the
	 * collection */
	mod0 = changelog_current(db, owner);
	GW_CHECK(acl_set(db, owner, inbox, "stranger@acl.test", ACL_LOOKUP, &err) == 1);
	mod1 = changelog_current(db, owner);
	GW_CHECK(mod1 == mod0 + 1);
	GW_CHECK(collection_get(db, ar, owner, inbox, &c) == 1 && c->modseq == mod1);
	GW_CHECK(acl_set(db, owner, 0, "stranger@acl.test", ACL_LOOKUP, &err) == 1);
	GW_CHECK(changelog_current(db, owner) == mod1 + 1);
	GW_CHECK(acl_set(db, owner, 0, "stranger@acl.test", 0, &err) == 1);
	GW_CHECK(changelog_current(db, owner) == mod1 + 2);
	GW_CHECK(acl_set(db, owner, inbox, "nobody@acl.test", ACL_LOOKUP, &err) == 0);
	GW_CHECK(changelog_current(db, owner) == mod1 + 2);

	/* shared-with: owners where some row gives the lookup right */
	GW_CHECK(acl_shared_with(db, ar, grantee, &owners, &n) == 0 && n == 1 &&
		 owners[0] == owner);
	GW_CHECK(acl_shared_with(db, ar, member, &owners, &n) == 0 && n == 1 &&
		 owners[0] == owner);
	GW_CHECK(acl_shared_with(db, ar, owner, &owners, &n) == 0 && n == 0);
	GW_CHECK(acl_set(db, owner, inbox, "stranger@acl.test", 0, &err) == 1);
	/* stranger: "l" on box (member), "r" on owner's Sent via authenticated */
	GW_CHECK(acl_shared_with(db, ar, stranger, &owners, &n) == 0 && n == 1);
	GW_CHECK(acl_set(db, owner, sent, "authenticated", ACL_LOOKUP | ACL_READ, &err) == 1);
	GW_CHECK(acl_shared_with(db, ar, stranger, &owners, &n) == 0 && n == 2);
	GW_CHECK(acl_shared_with(db, ar, 0, &owners, &n) == 0 && n == 0);

	/* entries of a deleted collection go with it */
	GW_CHECK(collection_delete(db, owner, sent, &err) == 1);
	GW_CHECK(acl_list(db, ar, owner, sent, &list, &n) == 0 && n == 0);
	GW_CHECK(rights(member, owner, sent) == ACL_POST);   /* account-wide only */

	/* and a removed grantee's entries with it */
	GW_CHECK(principal_remove(db, "grantee@acl.test", &err) == 1);
	GW_CHECK(acl_list(db, ar, owner, 0, &list, &n) == 0 && n == 1 &&
		 strcmp(list[0].grantee, "outer@acl.test") == 0);
	GW_CHECK(acl_list(db, ar, owner, inbox, &list, &n) == 0 && n == 0);
	(void)outer;
}

int main(void)
{
	db = gwtest_db("acl");
	bu_log_open(NULL, BU_LOG_WARNING);
	ar = bu_arena_create(0);
	test_parse_format();
	test_matrix();
	bu_arena_destroy(&ar);
	bu_db_destroy(&db);
	return gwtest_status();
}

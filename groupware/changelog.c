/*
 * changelog.c - the one change counter per account (accounts.modseq),
 * notifications and tombstones (ARCHITECTURE.md, "The one idea").
 *
 * changelog_next() row-locks the account until the transaction ends, so
 * two writers to one account take strictly increasing values in commit
 * order: a reader that saw counter N has seen every change <= N. Notifies
 * go through pg_notify and are delivered at COMMIT (never for a rolled-back
 * change).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "groupware/collection.h"
#include "server/core/db.h"

struct i64str {
	char s[24];
};

static struct i64str i64s(int64_t v)
{
	struct i64str r;

	snprintf(r.s, sizeof(r.s), "%" PRId64, v);
	return r;
}

static int64_t one_i64(struct bu_db *db, const char *sql, const char *p1)
{
	const char *params[1] = { p1 };
	PGresult *res = bu_db_query(db, sql, 1, params);
	int64_t v = -1;

	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

int64_t changelog_next(struct bu_db *db, int64_t account_id)
{
	return one_i64(db,
		       "UPDATE accounts SET modseq = modseq + 1 WHERE id = $1"
		       " RETURNING modseq",
		       i64s(account_id).s);
}

int64_t changelog_current(struct bu_db *db, int64_t account_id)
{
	return one_i64(db, "SELECT modseq FROM accounts WHERE id = $1",
		       i64s(account_id).s);
}

int changelog_notify(struct bu_db *db, int64_t account_id, int64_t collection_id)
{
	struct i64str a = i64s(account_id), c = i64s(collection_id);
	const char *params[2] = { a.s, c.s };

	if (bu_db_exec(db, "SELECT pg_notify('bureau', $1::text || ' ' || $2::text)",
		       2, params) < 0)
		return -1;
	bu_db_note_change(db, account_id, collection_id);
	return 0;
}

int changelog_tombstone(struct bu_db *db, int64_t account_id, int64_t collection_id,
			const char *kind, int64_t item_uid, const char *name, int64_t modseq)
{
	struct i64str a = i64s(account_id), c = i64s(collection_id),
		u = i64s(item_uid), m = i64s(modseq);
	const char *params[6] = { a.s, c.s, m.s, kind, u.s, name };

	bu_assert(kind != NULL);
	return bu_db_exec(db,
			  "INSERT INTO tombstones (account_id, collection_id, modseq,"
			  " kind, item_uid, name) VALUES ($1, $2, $3, $4, $5, $6)",
			  6, params);
}

/*
 * collection.h - every folder-like thing: mail folders, calendars, address
 * books, task lists; and the change log every protocol's sync state reads.
 *
 * Mail folder names are full paths with '/' as hierarchy separator, stored
 * as UTF-8 ("Archive/2026"); INBOX is always "INBOX". (Modified UTF-7 is the
 * IMAP layer's business.)
 *
 * The change log (changelog.c): each account has one counter
 * (accounts.modseq). Every write takes changelog_next() inside its
 * transaction, stamps the changed row with it and the collection's modseq,
 * and calls changelog_notify() (pg_notify, delivered at COMMIT).
 * Deletes leave a tombstone row stamped with the counter.
 */
#ifndef GW_COLLECTION_H
#define GW_COLLECTION_H

#include "server/core/util.h"

struct bu_db;

enum collection_kind {
	COLL_MAIL,
	COLL_CALENDAR,
	COLL_ADDRESSBOOK,
	COLL_TASKS,
};
const char *collection_kind_name(enum collection_kind k);  /* "mail" ... */

struct collection {
	int64_t account_id;
	int64_t id;
	enum collection_kind kind;
	char *name;              /* full path for mail; display name otherwise */
	char *special_use;       /* "\\Sent" ... or NULL */
	uint32_t uidvalidity;
	uint32_t uidnext;        /* mail: next UID to assign */
	int64_t modseq;          /* highest modseq of anything in it */
	int64_t created_modseq;
	bool subscribed;         /* IMAP LSUB/LIST (SUBSCRIBED), owner's view */
	char *color;             /* calendars, may be NULL */
	char *description;       /* may be NULL */
};

/* Return values of collection_* (and principal_*) functions: 1 done/found,
 * 0 refused with a user-facing message in *error_r (not found, name
 * exists, bad name, "INBOX cannot be deleted"), -1 database error. *error_r
 * points to a per-thread buffer valid until the next call on the thread.
 * These functions do not check ACLs: callers call acl_check() first. */

/* Create inside the caller's transaction, stamped with `modseq` (from
 * changelog_next()). */
int collection_insert_tx(struct bu_db *db, int64_t account_id, enum collection_kind kind,
			 const char *name, const char *special_use, int64_t modseq,
			 int64_t *id_r);
/* Create; fails with 0 when the name exists. *id_r set. Bumps the
 * account's counter (folder hierarchy changes are changes too). */
int collection_create(struct bu_db *db, int64_t account_id, enum collection_kind kind,
		      const char *name, const char *special_use, int64_t *id_r,
		      const char **error_r);
int collection_get(struct bu_db *db, struct bu_arena *a, int64_t account_id,
		   int64_t id, struct collection **c_r);
int collection_get_by_name(struct bu_db *db, struct bu_arena *a, int64_t account_id,
			   enum collection_kind kind, const char *name,
			   struct collection **c_r);
/* all collections of a kind (kind < 0: every kind), ordered by name */
int collection_list(struct bu_db *db, struct bu_arena *a, int64_t account_id, int kind,
		    struct collection **list_r, size_t *n_r);
/* Rename (mail: children move with it, RFC 3501 6.3.5; renaming INBOX
 * moves its messages to a new folder and leaves INBOX empty). */
int collection_rename(struct bu_db *db, int64_t account_id, int64_t id,
		      const char *new_name, const char **error_r);
/* Delete with its content; leaves a tombstone. */
int collection_delete(struct bu_db *db, int64_t account_id, int64_t id,
		      const char **error_r);
int collection_set_subscribed(struct bu_db *db, int64_t account_id, int64_t id, bool on);
int collection_set_special_use(struct bu_db *db, int64_t account_id, int64_t id,
			       const char *special_use);
/* Collections deleted after modseq `since` (tombstones), for FolderSync and
 * DAV sync of homes: ids and names. */
int collection_deleted_since(struct bu_db *db, struct bu_arena *a, int64_t account_id,
			     int64_t since, int64_t **ids_r, char ***names_r, size_t *n_r);

/* ---- change log (changelog.c) ---- */
/* Next value of the account's counter (row-locks the account until commit;
 * call inside a transaction). -1 on error. */
int64_t changelog_next(struct bu_db *db, int64_t account_id);
/* Current value without bumping. -1 on error. */
int64_t changelog_current(struct bu_db *db, int64_t account_id);
/* pg_notify('bureau', 'account collection'); delivered on COMMIT. */
int changelog_notify(struct bu_db *db, int64_t account_id, int64_t collection_id);
/* Record a deleted item: kind "message"/"event"/"contact"/"collection";
 * item_uid is the IMAP UID or 0; name the DAV resource name or NULL. */
int changelog_tombstone(struct bu_db *db, int64_t account_id, int64_t collection_id,
			const char *kind, int64_t item_uid, const char *name, int64_t modseq);

#endif

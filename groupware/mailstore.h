/*
 * mailstore.h - messages in mail collections.
 *
 * Raw bytes are stored once per account, content-addressed (sha256) in
 * mail_blobs; a message row per (account, collection, uid) refers to its
 * blob and carries modseq, flags, keywords, dates, size and what
 * mime_parse() found at delivery (serialized structure, summary fields,
 * search text). FETCH never re-parses.
 *
 * Rights: callers pass `viewer` (the logged-in principal). Every function
 * checks the ACL itself (acl_check) and returns MS_NOPERM when the viewer
 * lacks the right; owners pass trivially. \Seen is per user: for a viewer
 * who is not the owner it is kept in mail_seen, and every function that
 * reads or writes flags merges it in.
 *
 * Return values: >= 0 success (counts where noted), or a negative
 * enum ms_err. Every write is one transaction: it takes changelog_next(),
 * stamps rows with it, bumps the collection's modseq, and notifies.
 */
#ifndef GW_MAILSTORE_H
#define GW_MAILSTORE_H

#include "server/core/util.h"
#include "collection.h"

struct bu_db;

enum ms_err {
	MS_ERR = -1,          /* database/internal: temporary failure */
	MS_NOTFOUND = -2,     /* no such collection / message */
	MS_NOPERM = -3,       /* ACL says no */
	MS_OVERQUOTA = -4,    /* quota exceeded */
	MS_EXISTS = -5,       /* name exists */
	MS_TOOBIG = -6,       /* message over the size limit */
	MS_MODIFIED = -7,     /* UNCHANGEDSINCE test failed (see store) */
};

/* system flags as bits */
enum {
	MF_SEEN = 1 << 0,
	MF_ANSWERED = 1 << 1,
	MF_FLAGGED = 1 << 2,
	MF_DELETED = 1 << 3,
	MF_DRAFT = 1 << 4,
	MF_RECENT = 1 << 5,   /* never stored; IMAP session-local */
};

/* One message as a mailbox view sees it. Keywords are a NULL-terminated
 * arena array (never NULL; may be empty). */
struct ms_msg {
	uint32_t uid;
	int64_t modseq;
	uint32_t flags;
	char **keywords;
};

/* A mailbox opened by a viewer (SELECT/EXAMINE). */
struct ms_mailbox {
	int64_t account_id;       /* owner */
	int64_t collection_id;
	char *name;
	uint32_t uidvalidity;
	uint32_t uidnext;
	int64_t highestmodseq;
	uint32_t rights;          /* viewer's effective ACL rights */
	struct ms_msg *msgs;      /* ascending UID */
	size_t n_msgs;
	char **keywords;          /* keywords in use in the mailbox (FLAGS), NULL-terminated */
};

/* Resolve a folder for a viewer. `owner_id` is the account that holds it.
 * Needs ACL_LOOKUP (owners: always). */
int ms_folder_resolve(struct bu_db *db, struct bu_arena *a, int64_t viewer,
		      int64_t owner_id, const char *name, struct collection **c_r);

/* Open: all messages (uid, modseq, flags incl. per-user \Seen, keywords).
 * Needs ACL_READ. */
int ms_mailbox_open(struct bu_db *db, struct bu_arena *a, int64_t viewer,
		    int64_t owner_id, int64_t collection_id, struct ms_mailbox **mb_r);

/* What changed since modseq `since` (exclusive): messages whose modseq is
 * greater (new ones included) ascending by UID, and UIDs expunged since
 * (from tombstones), ascending; plus current uidnext/highestmodseq.
 * `since` 0 with expunged: every tombstone. */
struct ms_changes {
	struct ms_msg *changed;
	size_t n_changed;
	uint32_t *expunged;
	size_t n_expunged;
	uint32_t uidnext;
	int64_t highestmodseq;
	uint32_t uidvalidity;
	char **keywords;          /* current keyword set (NULL-terminated) */
};
int ms_mailbox_changes(struct bu_db *db, struct bu_arena *a, int64_t viewer,
		       int64_t owner_id, int64_t collection_id, int64_t since,
		       struct ms_changes *ch_r);

/* STATUS: counts without listing. */
struct ms_status {
	uint32_t messages, recent, unseen, uidnext, uidvalidity;
	int64_t highestmodseq;
	int64_t size;             /* STATUS=SIZE: sum of RFC822.SIZE */
	uint32_t deleted;         /* count of \Deleted (RFC 9051 DELETED) */
};
int ms_mailbox_status(struct bu_db *db, int64_t viewer, int64_t owner_id,
		      int64_t collection_id, struct ms_status *st_r);

/* ---- append / deliver ---------------------------------------------- */

struct ms_append {
	const uint8_t *data;
	size_t len;
	uint32_t flags;            /* MF_* (MF_RECENT ignored) */
	const char *const *keywords; /* NULL-terminated or NULL */
	int64_t internaldate;      /* unix seconds; 0 = now */
};
/* Append n messages atomically (MULTIAPPEND): all or none. Needs ACL_INSERT
 * (and ACL_SEEN/ACL_WRITE for flags, silently dropped otherwise as RFC 4314
 * says). Checks quota (STORAGE and MESSAGE) of the owner. Fills uids_r[n];
 * *uidvalidity_r for APPENDUID. */
int ms_append(struct bu_db *db, int64_t viewer, int64_t owner_id, int64_t collection_id,
	      const struct ms_append *msgs, size_t n, uint32_t *uidvalidity_r,
	      uint32_t *uids_r);

/* ---- fetch ------------------------------------------------------------ */

enum {
	MSF_META = 1 << 0,       /* internaldate, savedate, emailid, threadid (uid,
	                          * modseq, flags, keywords, size: always) */
	MSF_STRUCTURE = 1 << 1,  /* serialized MIME tree -> structure/structure_len */
	MSF_RAW = 1 << 2,        /* raw bytes */
	MSF_PREVIEW = 1 << 3,
	/* raw bytes of the first messages only, while their sizes add up to
	 * MS_FETCH_RAW_FIRST (the first one always): raw is NULL for the
	 * others, to be fetched with MSF_RAW. One query for a small FETCH of
	 * bodies, a bounded result for a big one. */
	MSF_RAW_FIRST = 1 << 4,
};
#define MS_FETCH_RAW_FIRST ((int64_t)2 * 1024 * 1024)
struct ms_fetch {
	uint32_t uid;
	int64_t modseq;
	uint32_t flags;
	char **keywords;
	int64_t internaldate;
	int64_t savedate;          /* 0 = NIL */
	int64_t size;
	char *emailid;             /* RFC 8474 OBJECTID */
	char *threadid;
	char *structure;           /* mime_serialize() output */
	size_t structure_len;
	const uint8_t *raw;        /* arena (MSF_RAW_FIRST: NULL when not loaded) */
	size_t raw_len;
	char *preview;
};
/* Fetch the given UIDs (ascending; absent ones are skipped) with the parts
 * named by `what`. Needs ACL_READ. Results in UID order, *n_r <= n. */
int ms_fetch(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	     int64_t collection_id, const uint32_t *uids, size_t n, unsigned what,
	     struct ms_fetch **res_r, size_t *n_r);
/* Marking \Seen on FETCH BODY[] without PEEK is ms_store(ADD, MF_SEEN). */

/* ---- store ----------------------------------------------------------- */

enum ms_store_mode { MS_STORE_ADD, MS_STORE_REMOVE, MS_STORE_REPLACE };
struct ms_store_result {
	struct ms_msg *changed;     /* messages whose flags changed (new state) */
	size_t n_changed;
	uint32_t *modified;         /* UIDs that failed UNCHANGEDSINCE */
	size_t n_modified;
};
/* Change flags/keywords of uids. Returns the number changed (never
 * MS_MODIFIED: UIDs failing UNCHANGEDSINCE are listed in res_r->modified).
 * A STORE that changes nothing takes no modseq. unchangedsince < 0: no test
 * (CONDSTORE off). Rights: \Seen needs s, \Deleted t, others w; flags the viewer may not
 * change are left alone silently (RFC 4314 section 4). */
int ms_store(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	     int64_t collection_id, const uint32_t *uids, size_t n,
	     enum ms_store_mode mode, uint32_t flags, const char *const *keywords,
	     int64_t unchangedsince, struct ms_store_result *res_r);

/* ---- copy / move / expunge ----------------------------------------- */

/* Returns the number copied. Copy (move=false) or move uids into another folder (maybe another
 * account's, e.g. a shared mailbox). Needs r on source, i on target; move
 * also needs t+e on source. Fills dst_uids_r[*n_r] in the same order as the
 * copied source UIDs (src_uids_r); *dst_uidvalidity_r for COPYUID. */
int ms_copy(struct bu_db *db, struct bu_arena *a, int64_t viewer,
	    int64_t src_owner, int64_t src_coll, const uint32_t *uids, size_t n,
	    int64_t dst_owner, int64_t dst_coll, bool move,
	    uint32_t **src_uids_r, uint32_t **dst_uids_r, size_t *n_r,
	    uint32_t *dst_uidvalidity_r);
/* Returns the number expunged. Expunge messages flagged \Deleted; uids NULL = all of them, else only
 * those in uids (UID EXPUNGE). Needs e. Fills the expunged UIDs. */
int ms_expunge(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	       int64_t collection_id, const uint32_t *uids, size_t n,
	       uint32_t **expunged_r, size_t *n_r);

/* ---- search / sort / thread (mail_search.c, mail_thread.c) ---------- */

enum ms_search_op {
	MSS_ALL, MSS_AND, MSS_OR, MSS_NOT,
	MSS_UIDSET,        /* uids[] */
	MSS_FLAG,          /* num = MF_* mask: has all of them */
	MSS_NOFLAG,        /* num = MF_* mask: has none of them */
	MSS_KEYWORD, MSS_UNKEYWORD,   /* str */
	MSS_BEFORE, MSS_ON, MSS_SINCE,             /* internal date, num = day start (unix) */
	MSS_SENTBEFORE, MSS_SENTON, MSS_SENTSINCE, /* Date: header */
	MSS_SAVEDBEFORE, MSS_SAVEDON, MSS_SAVEDSINCE, MSS_SAVEDATESUPPORTED,
	MSS_OLDER, MSS_YOUNGER,                    /* seconds, num */
	MSS_LARGER, MSS_SMALLER,                   /* num */
	MSS_MODSEQ,                                /* num: modseq >= num */
	MSS_HEADER,        /* str = field name (lower-case), str2 = substring ("" = exists) */
	MSS_FROM, MSS_TO, MSS_CC, MSS_BCC, MSS_SUBJECT, /* str: substring, case-insensitive */
	MSS_BODY, MSS_TEXT,                        /* str */
	MSS_EMAILID, MSS_THREADID,                 /* str */
};
struct ms_search {
	enum ms_search_op op;
	struct ms_search *kids;  /* AND: n_kids >= 0; OR: 2; NOT: 1 */
	size_t n_kids;
	const char *str, *str2;
	int64_t num;
	const uint32_t *uids;    /* MSS_UIDSET: ascending */
	size_t n_uids;
};
enum ms_sort_key {
	MSK_ARRIVAL, MSK_CC, MSK_DATE, MSK_FROM, MSK_SIZE, MSK_SUBJECT, MSK_TO,
	MSK_DISPLAYFROM, MSK_DISPLAYTO,
};
struct ms_sort {
	enum ms_sort_key key;
	bool reverse;
};
/* Returns the count. UIDs matching q (ascending UID unless sort given: then in sort order with
 * UID as the final tie-break). Needs r. */
int ms_search(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	      int64_t collection_id, const struct ms_search *q,
	      const struct ms_sort *sort, size_t n_sort, uint32_t **uids_r, size_t *n_r);

/* THREAD (RFC 5256): REFERENCES or ORDEREDSUBJECT over the messages
 * matching q. Result: a forest; each node has a UID (0 = dummy parent). */
struct ms_thread {
	uint32_t uid;
	struct ms_thread *children;   /* first child */
	struct ms_thread *next;       /* next sibling */
};
enum ms_thread_algo { MS_THREAD_REFERENCES, MS_THREAD_ORDEREDSUBJECT };
int ms_thread(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	      int64_t collection_id, const struct ms_search *q, enum ms_thread_algo algo,
	      struct ms_thread **roots_r);

/* ---- quota ------------------------------------------------------------ */
struct ms_quota {
	int64_t storage_used, storage_limit;    /* bytes; limit 0 = none */
	int64_t messages_used, messages_limit;
};
int ms_quota_get(struct bu_db *db, int64_t account_id, struct ms_quota *q_r);

/* ---- metadata (RFC 5464) --------------------------------------------- */
/* collection_id 0 = server/account-level entries. Entry names are
 * "/private/..." (per viewer) or "/shared/...". value NULL deletes. */
int ms_metadata_set(struct bu_db *db, int64_t viewer, int64_t owner_id, int64_t collection_id,
		    const char *entry, const uint8_t *value, size_t value_len);
struct ms_meta_entry { char *entry; uint8_t *value; size_t value_len; };
/* entries at or below `entry` up to depth (0, 1, -1=infinity); returns
 * the count. Errors: bad entry name MS_NOPERM, too many entries
 * MS_OVERQUOTA, value over 64 KiB MS_TOOBIG. Metadata writes take no modseq. */
int ms_metadata_get(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
		    int64_t collection_id, const char *entry, int depth,
		    struct ms_meta_entry **list_r, size_t *n_r);

/* ---- delivery (SMTP, LMTP, ActiveSync SendMail all call this) -------- */
/* Deliver to principal's folder (NULL = INBOX; unknown folder = INBOX),
 * atomically, notify. An account that does not exist gives MS_ERR. *uid_r set. Quota exceeded -> MS_OVERQUOTA. */
int ms_deliver(struct bu_db *db, int64_t account_id, const char *folder,
	       const uint8_t *data, size_t len, uint32_t flags, uint32_t *uid_r);

/* Rename INBOX (RFC 3501 6.3.5): its messages move to a new folder
 * new_name, keeping UIDs and per-user \Seen; INBOX stays, empty. */
int ms_rename_inbox(struct bu_db *db, int64_t account_id, const char *new_name,
		    int64_t *new_id_r, const char **error_r);

#endif

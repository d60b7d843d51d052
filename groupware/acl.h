/*
 * acl.h - one rights model (RFC 4314 letters) for every protocol.
 *
 * Rights are held per (owner account, collection or 0 = whole account,
 * grantee). Grantee is a principal id, or the pseudo grantees "anyone" and
 * "authenticated". Effective rights of a principal are the union over the
 * collection's entries and the account-wide entries, for the principal
 * itself, every group it belongs to, "authenticated" and "anyone".
 * The owner always has every right on its own account.
 *
 * WebDAV mapping (RFC 3744 privileges): read = l r; write-content = w i t e
 * (and k to create); bind = k; unbind = x; write-acl = a.
 * ActiveSync sees a shared folder when it has l r.
 */
#ifndef GW_ACL_H
#define GW_ACL_H

#include "server/core/util.h"

struct bu_db;

enum {
	ACL_LOOKUP = 1u << 0,  /* l */
	ACL_READ = 1u << 1,    /* r */
	ACL_SEEN = 1u << 2,    /* s */
	ACL_WRITE = 1u << 3,   /* w: flags other than \Seen and \Deleted */
	ACL_INSERT = 1u << 4,  /* i */
	ACL_POST = 1u << 5,    /* p */
	ACL_CREATE = 1u << 6,  /* k: create child collections */
	ACL_DELETE_MBOX = 1u << 7, /* x */
	ACL_DELETE_MSG = 1u << 8,  /* t: \Deleted */
	ACL_EXPUNGE = 1u << 9,     /* e */
	ACL_ADMIN = 1u << 10,      /* a */
	ACL_ALL = (1u << 11) - 1,
};
#define ACL_GRANTEE_ANYONE (-1)
#define ACL_GRANTEE_AUTHENTICATED (-2)

/* "lrswipkxtea" <-> bits. Obsolete "c" maps to k x and "d" to x t e
 * (RFC 4314 section 2.1.1). Returns -1 on an unknown letter. */
int acl_parse(const char *letters, uint32_t *rights_r);
/* writes letters in canonical order into out (>= 16 bytes); returns out */
char *acl_format(uint32_t rights, char *out);

/* Effective rights of principal on (owner, collection). collection 0 =
 * account-wide only. 0 ok / -1 error. */
int acl_rights(struct bu_db *db, int64_t principal_id, int64_t owner_id,
	       int64_t collection_id, uint32_t *rights_r);
/* 1 = all of `required` held, 0 = not, -1 = error. The one check every
 * protocol calls before it reads or writes someone's data. */
int acl_check(struct bu_db *db, int64_t principal_id, int64_t owner_id,
	      int64_t collection_id, uint32_t required);

struct acl_entry {
	int64_t grantee_id;        /* principal id or ACL_GRANTEE_* */
	char *grantee;             /* address, "anyone" or "authenticated" */
	uint32_t rights;
};
/* grantee: an address, "anyone" or "authenticated". rights 0 = delete.
 * Bumps the owner's change counter and notifies. */
int acl_set(struct bu_db *db, int64_t owner_id, int64_t collection_id,
	    const char *grantee, uint32_t rights, const char **error_r);
int acl_list(struct bu_db *db, struct bu_arena *a, int64_t owner_id,
	     int64_t collection_id, struct acl_entry **list_r, size_t *n_r);
/* Accounts (owner ids) where principal has any right via any path: for
 * IMAP "Other Users"/"Shared" namespaces and DAV home discovery. */
int acl_shared_with(struct bu_db *db, struct bu_arena *a, int64_t principal_id,
		    int64_t **owner_ids_r, size_t *n_r);

#endif

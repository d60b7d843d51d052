/*
 * principal.h - domains, accounts (users, shared mailboxes, resources,
 * groups), aliases, group members and app passwords.
 *
 * Every function takes a struct bu_db (one thread's connection) and, where it
 * returns data, an arena that owns the results. Return values: 1 = done /
 * found, 0 = not found (or, for add/remove, "no such ..." which the caller
 * reports), -1 = error with *error_r set to a one-line message fit for an
 * operator ("domain example.test does not exist; add it with 'bureauctl
 * domain add example.test'"). Addresses are compared case-insensitively and
 * stored lower-case.
 */
#ifndef GW_PRINCIPAL_H
#define GW_PRINCIPAL_H

#include "server/core/util.h"

struct bu_db;

enum principal_kind {
	PRINCIPAL_USER,
	PRINCIPAL_SHARED,     /* shared mailbox: no password, members get rights */
	PRINCIPAL_RESOURCE,   /* room / equipment: has a calendar */
	PRINCIPAL_GROUP,      /* members; grantee in ACLs */
};
const char *principal_kind_name(enum principal_kind k);   /* "user" ... */
int principal_kind_parse(const char *s, enum principal_kind *k_r);

struct principal {
	int64_t id;
	enum principal_kind kind;
	char *address;          /* primary address, "alice@example.test" */
	char *localpart;
	char *domain;
	char *display_name;     /* may be "" */
	bool disabled;
	int64_t quota_storage;  /* bytes; 0 = unlimited */
	int64_t quota_messages; /* 0 = unlimited */
	int64_t created;        /* unix seconds */
};

struct domain_info {
	int64_t id;
	char *name;
	char *catchall;         /* address or NULL */
	int64_t accounts;
};

/* ---- domains ---- */
int domain_add(struct bu_db *db, const char *name, const char **error_r);
int domain_remove(struct bu_db *db, const char *name, bool force, const char **error_r);
int domain_list(struct bu_db *db, struct bu_arena *a, struct domain_info **list_r,
		size_t *n_r, const char **error_r);
/* catch-all: mail to unknown localparts of domain goes to address (NULL clears) */
int domain_set_catchall(struct bu_db *db, const char *domain, const char *address,
			const char **error_r);

/* ---- accounts ---- */
struct principal_new {
	const char *address;
	enum principal_kind kind;
	const char *password;      /* users only; NULL = no password login */
	const char *display_name;
	int64_t quota_storage, quota_messages;
	const char *scheme;        /* password scheme, NULL = default yescrypt */
	int min_password_length;   /* policy; 0 = none */
};
/* Creates the account and its default collections (users and shared: INBOX,
 * Drafts, Sent, Trash, Junk, Archive, calendar "Calendar", task list
 * "Tasks", address book "Contacts"; resources: a calendar; groups: none),
 * in one transaction. *id_r = new id. */
int principal_add(struct bu_db *db, const struct principal_new *p, int64_t *id_r,
		  const char **error_r);
int principal_remove(struct bu_db *db, const char *address, const char **error_r);
/* Look up by primary address or alias. 1 found / 0 not / -1 error. */
int principal_lookup(struct bu_db *db, struct bu_arena *a, const char *address,
		     struct principal **p_r);
int principal_get(struct bu_db *db, struct bu_arena *a, int64_t id, struct principal **p_r);
/* kind < 0: all kinds */
int principal_list(struct bu_db *db, struct bu_arena *a, const char *domain, int kind,
		   struct principal **list_r, size_t *n_r, const char **error_r);
int principal_set_password(struct bu_db *db, const char *address, const char *password,
			   const char *scheme, int min_length, const char **error_r);
int principal_set_disabled(struct bu_db *db, const char *address, bool disabled,
			   const char **error_r);
int principal_set_quota(struct bu_db *db, const char *address, int64_t storage,
			int64_t messages, const char **error_r);
/* Resolve a delivery address: aliases, then catch-all. 1/0/-1. */
int principal_resolve_rcpt(struct bu_db *db, struct bu_arena *a, const char *address,
			   struct principal **p_r);

/* ---- aliases ---- */
int alias_add(struct bu_db *db, const char *alias, const char *target, const char **error_r);
int alias_remove(struct bu_db *db, const char *alias, const char **error_r);
int alias_list(struct bu_db *db, struct bu_arena *a, const char *target, char ***list_r,
	       size_t *n_r, const char **error_r);

/* ---- groups and shared-mailbox members ---- */
/* Adds member to group (kind group) or to shared mailbox (kind shared: the
 * member gets rights "lrswipkxtecd" on the whole account unless rights given). */
int member_add(struct bu_db *db, const char *group, const char *member,
	       const char *rights, const char **error_r);
int member_remove(struct bu_db *db, const char *group, const char *member,
		  const char **error_r);
int member_list(struct bu_db *db, struct bu_arena *a, const char *group,
		char ***list_r, size_t *n_r, const char **error_r);
/* groups (ids) a principal belongs to, transitively; for ACL checks */
int principal_groups(struct bu_db *db, struct bu_arena *a, int64_t principal_id,
		     int64_t **ids_r, size_t *n_r);

/* ---- app passwords ---- */
struct app_password {
	int64_t id;
	char *name;          /* "Alice's phone" */
	int64_t created;
	int64_t last_used;   /* 0 = never */
};
/* Generates a random password, stores its hash and returns the password once
 * in *password_r (arena). */
int app_password_add(struct bu_db *db, struct bu_arena *a, const char *address,
		     const char *name, int64_t *id_r, char **password_r, const char **error_r);
int app_password_list(struct bu_db *db, struct bu_arena *a, const char *address,
		      struct app_password **list_r, size_t *n_r, const char **error_r);
int app_password_revoke(struct bu_db *db, const char *address, int64_t id,
			const char **error_r);

#endif

/*
 * mail_metadata.c - RFC 5464 METADATA on mailboxes and on the account
 * ("server" entries, collection 0).
 *
 * Entry names are case-insensitive and kept lower-case with their
 * "/private" or "/shared" prefix; a /private entry belongs to the viewer
 * who set it (owner_user = viewer), a /shared one to everybody
 * (owner_user = 0). Rights (RFC 5464 3.3 with RFC 4314): reading and
 * writing /private entries need "l" and "r", writing /shared entries needs
 * "w" too; on the account level non-owners read with the account-wide
 * "l r" and write /shared only with "a". The owner may do everything.
 *
 * Limits: a value is at most MS_META_VALUE_MAX bytes (MS_TOOBIG, METADATA
 * MAXSIZE) and a mailbox holds at most MS_META_ENTRIES_MAX entries per
 * owner_user (MS_OVERQUOTA, METADATA TOOMANY); RFC 5464 4.3 asks for at
 * least 1024 bytes and 10 entries. Invalid entry names get MS_NOPERM.
 * Metadata is not mail content: it takes no modseq.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "groupware/acl.h"
#include "groupware/mailstore_private.h"
#include "server/core/db.h"

#define MS_META_VALUE_MAX ((size_t)64 * 1024)
#define MS_META_ENTRIES_MAX 500
#define MS_META_NAME_MAX 1024

/* Lower-case copy of a valid entry name, or NULL. RFC 5464 3.2: starts
 * with /private or /shared, no "*" "%", no "//", no trailing "/", only
 * printable ASCII. With allow_root, "/private" and "/shared" themselves
 * are accepted (as GETMETADATA starting points). */
static char *md_entry_norm(struct bu_arena *a, const char *entry, bool allow_root,
			   bool *shared_r)
{
	size_t len;
	char *out;

	if (entry == NULL)
		return NULL;
	len = strlen(entry);
	if (len < 2 || len > MS_META_NAME_MAX || entry[len - 1] == '/')
		return NULL;
	out = bu_arena_alloc(a, len + 1);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)entry[i];

		if (c < 0x20 || c > 0x7e || c == '*' || c == '%')
			return NULL;
		if (c == '/' && i > 0 && entry[i - 1] == '/')
			return NULL;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[len] = '\0';
	if (strncmp(out, "/private/", 9) == 0 || (allow_root && strcmp(out, "/private") == 0)) {
		*shared_r = false;
	} else if (strncmp(out, "/shared/", 8) == 0 ||
		   (allow_root && strcmp(out, "/shared") == 0)) {
		*shared_r = true;
	} else {
		return NULL;
	}
	return out;
}

/* LIKE pattern of what is below entry (escape _ and \; % cannot occur) */
static char *md_below(struct bu_arena *a, const char *entry, const char *suffix)
{
	struct bu_buf b;
	char *out;

	bu_buf_init(&b, 0);
	for (const char *s = entry; *s != '\0'; s++) {
		if (*s == '_' || *s == '\\' || *s == '%')
			bu_buf_append_byte(&b, '\\');
		bu_buf_append_byte(&b, (uint8_t)*s);
	}
	bu_buf_append_str(&b, suffix);
	out = bu_arena_strdup(a, bu_buf_cstr(&b));
	bu_buf_deinit(&b);
	return out;
}

static uint32_t md_needed(int64_t collection_id, bool shared, bool write)
{
	if (!write || !shared)
		return ACL_LOOKUP | ACL_READ;
	return collection_id == 0 ? ACL_ADMIN : (ACL_LOOKUP | ACL_READ | ACL_WRITE);
}

int ms_metadata_set(struct bu_db *db, int64_t viewer, int64_t owner_id, int64_t collection_id,
		    const char *entry, const uint8_t *value, size_t value_len)
{
	struct bu_arena *a;
	struct ms_params p;
	uint32_t rights;
	bool shared = false;
	char *name;
	PGresult *r;
	int ret = 0;

	if (collection_id < 0)
		return MS_NOTFOUND;
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	a = bu_arena_create(0);
	name = md_entry_norm(a, entry, false, &shared);
	if (name == NULL) {
		ret = MS_NOPERM;
		goto out;
	}
	if ((rights & md_needed(collection_id, shared, true)) != md_needed(collection_id, shared, true)) {
		ret = MS_NOPERM;
		goto out;
	}
	if (value != NULL && value_len > MS_META_VALUE_MAX) {
		ret = MS_TOOBIG;
		goto out;
	}
	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	ms_param_i64(&p, shared ? 0 : viewer);
	ms_param(&p, name);
	if (value == NULL) {
		r = ms_query(db, "DELETE FROM mail_metadata WHERE account_id = $1"
			     " AND collection_id = $2 AND owner_user = $3 AND entry = $4", &p);
		if (r == NULL) {
			ret = MS_ERR;
			goto out;
		}
		PQclear(r);
		if (collection_id != 0) {
			ret = ms_collection_exists(db, owner_id, collection_id);
			ret = ret < 0 ? MS_ERR : ret == 0 ? MS_NOTFOUND : 0;
		}
		goto out;
	}
	ms_param_bin(&p, value, value_len);
	ms_param_i64(&p, MS_META_ENTRIES_MAX);
	/* upsert, unless it would be one entry too many or the folder is gone */
	r = ms_query(db,
		     "INSERT INTO mail_metadata (account_id, collection_id, owner_user, entry, value)"
		     " SELECT $1::bigint, $2::bigint, $3::bigint, $4::text, $5::bytea"
		     " WHERE ($2 = 0 OR EXISTS (SELECT 1 FROM collections"
		     "   WHERE account_id = $1 AND id = $2 AND kind = 'mail'))"
		     " AND ((SELECT count(*) FROM mail_metadata WHERE account_id = $1"
		     "   AND collection_id = $2 AND owner_user = $3) < $6"
		     "  OR EXISTS (SELECT 1 FROM mail_metadata WHERE account_id = $1"
		     "   AND collection_id = $2 AND owner_user = $3 AND entry = $4))"
		     " ON CONFLICT (account_id, collection_id, owner_user, entry)"
		     " DO UPDATE SET value = EXCLUDED.value RETURNING 1", &p);
	if (r == NULL) {
		ret = MS_ERR;
		goto out;
	}
	if (PQntuples(r) == 0) {
		ret = collection_id == 0 ? 1 : ms_collection_exists(db, owner_id, collection_id);
		ret = ret < 0 ? MS_ERR : ret == 0 ? MS_NOTFOUND : MS_OVERQUOTA;
	}
	PQclear(r);
out:
	bu_arena_destroy(&a);
	return ret;
}

int ms_metadata_get(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
		    int64_t collection_id, const char *entry, int depth,
		    struct ms_meta_entry **list_r, size_t *n_r)
{
	struct ms_params p;
	struct ms_meta_entry *list;
	uint32_t rights;
	bool shared = false;
	char *name;
	const char *sql;
	PGresult *r;
	int rows, ret;

	*list_r = NULL;
	*n_r = 0;
	if (collection_id < 0)
		return MS_NOTFOUND;
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	if ((rights & md_needed(collection_id, false, false)) != md_needed(collection_id, false, false))
		return MS_NOPERM;
	name = md_entry_norm(a, entry, true, &shared);
	if (name == NULL)
		return MS_NOPERM;
	ms_params_init(&p, a);
	ms_param_i64(&p, owner_id);
	ms_param_i64(&p, collection_id);
	ms_param_i64(&p, shared ? 0 : viewer);
	ms_param(&p, name);
	if (depth == 0) {
		sql = "SELECT entry, value FROM mail_metadata WHERE account_id = $1"
			" AND collection_id = $2 AND owner_user = $3 AND entry = $4";
	} else if (depth == 1) {
		ms_param(&p, md_below(a, name, "/%"));
		ms_param(&p, md_below(a, name, "/%/%"));
		sql = "SELECT entry, value FROM mail_metadata WHERE account_id = $1"
			" AND collection_id = $2 AND owner_user = $3 AND (entry = $4"
			" OR (entry LIKE $5 AND entry NOT LIKE $6)) ORDER BY entry";
	} else {
		ms_param(&p, md_below(a, name, "/%"));
		sql = "SELECT entry, value FROM mail_metadata WHERE account_id = $1"
			" AND collection_id = $2 AND owner_user = $3 AND (entry = $4"
			" OR entry LIKE $5) ORDER BY entry";
	}
	r = ms_query_binres(db, sql, &p);
	if (r == NULL)
		return MS_ERR;
	ms_arena_own_result(a, r);
	rows = PQntuples(r);
	if (rows == 0 && collection_id != 0) {
		ret = ms_collection_exists(db, owner_id, collection_id);
		if (ret <= 0)
			return ret < 0 ? MS_ERR : MS_NOTFOUND;
	}
	list = bu_arena_alloc(a, bu_size_mul((size_t)rows + 1, sizeof(*list)));
	for (int i = 0; i < rows; i++) {
		list[i].entry = PQgetvalue(r, i, 0);
		list[i].value = (uint8_t *)PQgetvalue(r, i, 1);
		list[i].value_len = (size_t)PQgetlength(r, i, 1);
	}
	*list_r = list;
	*n_r = (size_t)rows;
	return rows;
}

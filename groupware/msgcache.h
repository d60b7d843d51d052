/*
 * msgcache.h - what never changes about a stored message, kept in memory.
 *
 * A message is (account, folder, UID): UIDs are never reused in a folder
 * (a new UIDVALIDITY means a new folder), and the bytes, MIME tree, size,
 * internal and save dates, EMAILID/THREADID and preview of a message never
 * change once it is stored. Flags, keywords and modseq do change: they are
 * not here. So an entry, once made, is right for as long as it exists; the
 * only question a reader must answer itself is whether the message still
 * exists (the IMAP session knows that from its own view and the change
 * generations).
 *
 * Entries are reference counted: a reader keeps its entry while it writes
 * the response even if the cache evicts it meanwhile. Eviction is LRU per
 * shard, to stay under cache.message_bytes (0 = no cache). Thread-safe.
 */
#ifndef BUREAU_GROUPWARE_MSGCACHE_H
#define BUREAU_GROUPWARE_MSGCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "groupware/mailstore.h"

struct mc_entry {
	int64_t account_id;
	int64_t collection_id;
	/* uid, internaldate, savedate, size, emailid, threadid, preview ("" when
	 * none), structure and raw; modseq, flags and keywords are unset */
	struct ms_fetch f;
};

/* Byte budget (0 = off, the default until called); also empties it. */
void mc_configure(int64_t max_bytes);
bool mc_enabled(void);
/* A reference to the entry, or NULL. */
struct mc_entry *mc_get(int64_t account_id, int64_t collection_id, uint32_t uid);
void mc_release(struct mc_entry *e);
/* Remember f (its raw bytes and structure must be there; copied). A
 * message larger than 1/64 of the budget is not kept. */
void mc_put(int64_t account_id, int64_t collection_id, const struct ms_fetch *f);
/* For /metrics and tests. */
void mc_stats(int64_t *bytes_r, int64_t *entries_r, int64_t *hits_r, int64_t *misses_r);

#endif

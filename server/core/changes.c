/*
 * changes.c - process-wide change generations, so that a session can tell
 * without a query that nothing it shows can have changed.
 *
 * Every write that sends changelog_notify() also bumps, once its COMMIT
 * has succeeded, the generation of the account it changed (bu_db_commit
 * does that for the calls it saw, bu_db_note_change); the notification hub
 * bumps the same generation for every NOTIFY it receives, which covers
 * writes by other processes (bureauctl, a second bureaud). A notification
 * without a collection (principal or group changes: rights may have moved)
 * and the broadcast after a hub reconnect bump the epoch, which every
 * account's generation includes.
 *
 * Accounts hash onto CHANGES_SLOTS counters: two accounts that share a slot
 * only cost each other a re-check. bu_changes_gen() returns slot + epoch;
 * both only grow, so an unchanged sum means that neither moved.
 *
 * The protocol: a reader loads the generation, then reads its snapshot; if
 * it later loads the same generation again, no write to that account has
 * committed in between in this process, nor (up to the hub's delivery
 * delay, well under a second) in any other.
 */
#include <stdatomic.h>

#include "server/core/db.h"

#define CHANGES_SLOTS 4096

static _Atomic uint64_t changes_slot[CHANGES_SLOTS];
static _Atomic uint64_t changes_epoch;

static size_t changes_hash(int64_t account_id)
{
	uint64_t h = (uint64_t)account_id * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 52) & (CHANGES_SLOTS - 1);
}

uint64_t bu_changes_gen(int64_t account_id)
{
	return atomic_load(&changes_slot[changes_hash(account_id)]) +
	       atomic_load(&changes_epoch);
}

void bu_changes_bump(int64_t account_id, int64_t collection_id)
{
	if (account_id <= 0 || collection_id <= 0)
		atomic_fetch_add(&changes_epoch, 1);
	if (account_id > 0)
		atomic_fetch_add(&changes_slot[changes_hash(account_id)], 1);
}

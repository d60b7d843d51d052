/*
 * commands.c - the IMAP command table (STYLE.md 50): name, handler, the
 * states a command is allowed in, whether it has a UID form, and whether
 * EXPUNGE responses must be held back while it runs (RFC 3501 7.4.1:
 * FETCH, STORE, SEARCH and, by the same reasoning, SORT and THREAD, whose
 * replies carry sequence numbers). Sorted by name for bsearch.
 */
#include <stdlib.h>
#include <string.h>

#include "imap_int.h"

#define ANY (IMAP_CMD_NOAUTH | IMAP_CMD_AUTH)
#define AUTH IMAP_CMD_AUTH
#define SEL IMAP_CMD_SELECTED
#define UID IMAP_CMD_UID
#define NOEXP IMAP_CMD_NO_EXPUNGE

static const struct imap_cmd_def commands[] = {
	{ "APPEND", imap_cmd_append, AUTH },
	{ "AUTHENTICATE", imap_cmd_authenticate, IMAP_CMD_NOAUTH },
	{ "CAPABILITY", imap_cmd_capability, ANY },
	{ "CHECK", imap_cmd_check, SEL },
	{ "CLOSE", imap_cmd_close, SEL },
	{ "COMPRESS", imap_cmd_compress, AUTH },
	{ "COPY", imap_cmd_copy, SEL | UID },
	{ "CREATE", imap_cmd_create, AUTH },
	{ "DELETE", imap_cmd_delete, AUTH },
	{ "DELETEACL", imap_cmd_deleteacl, AUTH },
	{ "ENABLE", imap_cmd_enable, AUTH },
	{ "EXAMINE", imap_cmd_examine, AUTH },
	{ "EXPUNGE", imap_cmd_expunge, SEL | UID },
	{ "FETCH", imap_cmd_fetch, SEL | UID | NOEXP },
	{ "GETACL", imap_cmd_getacl, AUTH },
	{ "GETMETADATA", imap_cmd_getmetadata, AUTH },
	{ "GETQUOTA", imap_cmd_getquota, AUTH },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, AUTH },
	{ "ID", imap_cmd_id, ANY },
	{ "IDLE", imap_cmd_idle, AUTH },
	{ "LIST", imap_cmd_list, AUTH },
	{ "LISTRIGHTS", imap_cmd_listrights, AUTH },
	{ "LOGIN", imap_cmd_login, IMAP_CMD_NOAUTH },
	{ "LOGOUT", imap_cmd_logout, ANY },
	{ "LSUB", imap_cmd_lsub, AUTH },
	{ "MOVE", imap_cmd_move, SEL | UID },
	{ "MYRIGHTS", imap_cmd_myrights, AUTH },
	{ "NAMESPACE", imap_cmd_namespace, AUTH },
	{ "NOOP", imap_cmd_noop, ANY },
	{ "NOTIFY", imap_cmd_notify, AUTH },
	{ "RENAME", imap_cmd_rename, AUTH },
	{ "REPLACE", imap_cmd_replace, SEL | UID },
	{ "SEARCH", imap_cmd_search, SEL | UID | NOEXP },
	{ "SELECT", imap_cmd_select, AUTH },
	{ "SETACL", imap_cmd_setacl, AUTH },
	{ "SETMETADATA", imap_cmd_setmetadata, AUTH },
	{ "SETQUOTA", imap_cmd_setquota, AUTH },
	{ "SORT", imap_cmd_sort, SEL | UID | NOEXP },
	{ "STARTTLS", imap_cmd_starttls, IMAP_CMD_NOAUTH },
	{ "STATUS", imap_cmd_status, AUTH },
	{ "STORE", imap_cmd_store, SEL | UID | NOEXP },
	{ "SUBSCRIBE", imap_cmd_subscribe, AUTH },
	{ "THREAD", imap_cmd_thread, SEL | UID | NOEXP },
	{ "UNSELECT", imap_cmd_unselect, SEL },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, AUTH },
};

static int def_cmp(const void *key, const void *elem)
{
	const struct imap_cmd_def *d = elem;

	return strcmp(key, d->name);
}

const struct imap_cmd_def *imap_command_find(const char *name)
{
	if (name == NULL)
		return NULL;
	return bsearch(name, commands, BU_N_ELEMENTS(commands), sizeof(commands[0]), def_cmp);
}

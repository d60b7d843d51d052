/*
 * mail_deliver.c - final delivery into a mailbox (SMTP, LMTP and
 * ActiveSync SendMail's copy to Sent all come through here).
 *
 * The folder is looked up by name inside the same statement that reserves
 * the UID (a missing or unknown folder means INBOX), the message is
 * appended as its owner, and the transaction commits before the caller
 * says 250: a message that was acknowledged is stored.
 */
#include <string.h>
#include <strings.h>

#include "groupware/mailstore_private.h"

int ms_deliver(struct bu_db *db, int64_t account_id, const char *folder,
	       const uint8_t *data, size_t len, uint32_t flags, uint32_t *uid_r)
{
	struct bu_arena *a;
	struct ms_append m;
	const char *name = folder;
	uint32_t uid = 0;
	int ret;

	if (name == NULL || *name == '\0')
		name = "INBOX";
	a = bu_arena_create(0);
	/* INBOX is case-insensitive, also as the superior of a child */
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/'))
		name = bu_arena_printf(a, "INBOX%s", name + 5);
	memset(&m, 0, sizeof(m));
	m.data = data;
	m.len = len;
	m.flags = flags;
	ret = ms_append_internal(db, account_id, account_id, 0, name, &m, 1, NULL, &uid);
	bu_arena_destroy(&a);
	if (ret < 0)
		return ret;
	if (uid_r != NULL)
		*uid_r = uid;
	return 0;
}

/*
 * pop3.h - POP3 (RFC 1939) with STLS (RFC 2595) and CAPA (RFC 2449).
 *
 * For now the session greets, answers CAPA, STLS and QUIT, and refuses
 * everything else with "-ERR [SYS/PERM]": mailbox access over POP3 is a later
 * piece of work. Serves both pop3 (STLS) and pop3s (implicit TLS).
 */
#ifndef POP3_H
#define POP3_H

#include "server/core/net.h"

extern const struct bu_proto_ops pop3_proto_ops;

#endif

/*
 * smtp.h - SMTP (RFC 5321), submission (RFC 6409) and LMTP (RFC 2033).
 *
 * For now the sessions greet, answer EHLO/HELO (LHLO for LMTP), NOOP, RSET,
 * QUIT and STARTTLS (RFC 3207, smtp and submission), and refuse MAIL, RCPT
 * and DATA with 554 5.3.2: delivery is a later piece of work.
 * smtp_proto_ops serves smtp, submission and submissions (implicit TLS);
 * lmtp_proto_ops serves lmtp.
 */
#ifndef SMTP_H
#define SMTP_H

#include "server/core/net.h"

extern const struct bu_proto_ops smtp_proto_ops;
extern const struct bu_proto_ops lmtp_proto_ops;

#endif

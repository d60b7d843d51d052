#!/usr/bin/env bash
# tests/bench/dovecot.sh - a private Dovecot instance for the IMAP bench.
#
#   dovecot.sh install                      apt-get install dovecot-imapd if missing
#   dovecot.sh start DIR PORT USER:PASS...  config + state in DIR, IMAP on 127.0.0.1:PORT
#   dovecot.sh stop DIR                     TERM (then KILL) the master started in DIR
#   dovecot.sh version
#
# Runs as root (Dovecot drops privileges itself). Everything it writes is under
# DIR: dovecot.conf, the passwd-file, maildirs, base_dir, logs, dovecot.pid.
# It never touches a system Dovecot (own instance_name, base_dir, ports).
#
# Configuration: Debian's defaults (maildir, mail_fsync=optimized, no FTS
# plugin, no auth cache) with the performance settings Dovecot's
# documentation recommends for many connections: imap-login in
# high-performance mode (service_count=0, one process per core), an imap
# process per connection. Passwords are stored as yescrypt hashes ({CRYPT}),
# the same hash and cost bureaud uses, so LOGIN costs the same work on both.
# Environment: DOVECOT_MAIL_FORMAT (maildir|sdbox|mdbox, default maildir),
# DOVECOT_MAX_CONNS (imap process_limit, default 2048).
set -euo pipefail

die() { echo "dovecot.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (Dovecot drops privileges itself)"

HOST=127.0.0.1

install_dovecot() {
	if [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ]; then
		return 0
	fi
	echo "dovecot.sh: installing dovecot-imapd" >&2
	# keep the package's maintainer scripts from starting a system Dovecot
	local made_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null || {
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null
	} || rc=$?
	[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
	[ "$rc" = 0 ] || die "apt-get install dovecot-imapd failed"
	if [ -d /run/systemd/system ]; then
		systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
	fi
}

# yescrypt hash with libcrypt's default cost (what bureaud's password.scheme
# default produces), through ctypes: no extra package needed
yescrypt() {
	/usr/bin/python3 - "$1" <<'PY'
import ctypes, ctypes.util, sys
lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
lib.crypt_gensalt.restype = ctypes.c_char_p
lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
lib.crypt.restype = ctypes.c_char_p
lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
salt = lib.crypt_gensalt(b"$y$", 0, None, 0)
h = lib.crypt(sys.argv[1].encode(), salt)
if not salt or not h or not h.startswith(b"$y$"):
    sys.exit("yescrypt not available in libcrypt")
print(h.decode())
PY
}

wait_port() { # port seconds
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

start() {
	local D=$1 PORT=$2
	shift 2
	[ -n "$D" ] && [ -n "$PORT" ] || die "usage: dovecot.sh start DIR PORT USER:PASS..."
	install_dovecot
	D=$(readlink -f "$D")
	if [ -f "$D/dovecot.pid" ] && kill -0 "$(cat "$D/dovecot.pid")" 2>/dev/null; then
		die "already running in $D (pid $(cat "$D/dovecot.pid"))"
	fi
	if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then die "port $PORT already in use"; fi
	mkdir -p "$D/run" "$D/state" "$D/mail" "$D/log"
	chmod 755 "$D"
	chown mail:mail "$D/mail"
	: > "$D/users"
	local u
	for u in "$@"; do
		printf '%s:{CRYPT}%s\n' "${u%%:*}" "$(yescrypt "${u#*:}")" >> "$D/users"
	done
	chown root:dovecot "$D/users"
	chmod 640 "$D/users"
	local loc
	case ${DOVECOT_MAIL_FORMAT:-maildir} in
	maildir) loc="maildir:$D/mail/%n/Maildir" ;;
	sdbox) loc="sdbox:$D/mail/%n/sdbox" ;;
	mdbox) loc="mdbox:$D/mail/%n/mdbox" ;;
	*) die "DOVECOT_MAIL_FORMAT must be maildir, sdbox or mdbox" ;;
	esac
	local maxc=${DOVECOT_MAX_CONNS:-2048} cores
	cores=$(nproc)
	cat > "$D/dovecot.conf" <<EOF
# written by tests/bench/dovecot.sh
protocols = imap
listen = $HOST
base_dir = $D/run
state_dir = $D/state
instance_name = bureau-bench-dovecot
log_path = $D/log/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
mail_location = $loc
mail_uid = mail
mail_gid = mail
first_valid_uid = 8
first_valid_gid = 8
mail_max_userip_connections = 100000
default_process_limit = $maxc
default_client_limit = $((maxc * 4))
default_vsz_limit = 1G
default_login_user = dovenull
default_internal_user = dovecot
passdb {
  driver = passwd-file
  args = scheme=CRYPT username_format=%n $D/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$D/mail/%n
}
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    address = $HOST
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = $cores
  client_limit = $((maxc + 100))
}
service imap {
  process_limit = $maxc
}
service auth {
  client_limit = $((maxc * 2 + 100))
}
service anvil {
  client_limit = $((maxc * 2 + 100))
}
EOF
	/usr/sbin/dovecot -c "$D/dovecot.conf" -F >> "$D/log/stdout.log" 2>&1 &
	echo $! > "$D/dovecot.pid"
	if ! wait_port "$PORT" 20; then
		tail -20 "$D/log/dovecot.log" "$D/log/stdout.log" >&2 || true
		stop "$D"
		die "Dovecot did not open port $PORT"
	fi
	echo "dovecot: pid $(cat "$D/dovecot.pid") imap $HOST:$PORT state $D"
}

stop() {
	local D=$1 pid i
	[ -f "$D/dovecot.pid" ] || return 0
	pid=$(cat "$D/dovecot.pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$D/dovecot.pid"
}

cmd=${1:-}
shift || true
case $cmd in
install) install_dovecot ;;
start) start "$@" ;;
stop) [ -n "${1:-}" ] || die "usage: dovecot.sh stop DIR"; stop "$1" ;;
version) install_dovecot; /usr/sbin/dovecot --version ;;
*) sed -n '2,21p' "$0"; exit 2 ;;
esac

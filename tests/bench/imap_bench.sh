#!/usr/bin/env bash
# imap_bench.sh - the same IMAP workload against bureaud and against Dovecot,
# on this machine, in one run; then 10,000 IDLE sessions held by one bureaud
# with its memory measured. Not a test: ./dev test does not run it.
#
#   sudo tests/bench/imap_bench.sh            # build/ by default
#   sudo BUREAU_BUILD_DIR=build-rel N=10000 CLIENTS=50 DURATION=30 IDLE_N=10000 \
#        OUT=/tmp/imap-bench tests/bench/imap_bench.sh
#
# What it does (see tests/bench/README.md):
#   1. apt-get installs dovecot-core and dovecot-imapd if they are missing (the
#      packaged service is kept from starting and never touched);
#   2. generates the corpus (gen_corpus.py, N messages, fixed seed);
#   3. starts Dovecot (maildir) and bureaud (its embedded PostgreSQL) as our
#      own processes on free 127.0.0.1 high ports, with state under $OUT;
#   4. runs imap_bench.py against both, then idle_bench.py against bureaud;
#   5. prints the side-by-side table (compare.py) and writes it, with every
#      JSON result, to $OUT.
# It stops only the processes it started (by PID) and leaves $OUT behind.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUREAU_BUILD_DIR:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
N=${N:-10000}
CLIENTS=${CLIENTS:-50}
PROCS=${PROCS:-2}
DURATION=${DURATION:-30}
IDLE_N=${IDLE_N:-10000}
OUT=${OUT:-${TMPDIR:-/tmp}/bureau-imap-bench}
PHASES=${PHASES:-login,append,select,fetch_all,fetch_body,fetch_range,search,store,sort,thread,concurrent}
HOST=127.0.0.1
PASSWORD=bench-password-1
SERVICE_USER=bureau

say() { printf '%s\n' "$*" >&2; }
die() { say "imap_bench: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get; Dovecot and bureaud drop privileges themselves)"
[ -x "$BUILD/server/bureaud" ] || die "$BUILD/server/bureaud not found: build first or set BUREAU_BUILD_DIR"
command -v python3 >/dev/null || die "python3 is needed"

# ---------------------------------------------------------------- packages
if ! command -v dovecot >/dev/null 2>&1 || [ ! -e /usr/lib/dovecot/imap ]; then
	say "== installing dovecot-core dovecot-imapd"
	POLICY=/usr/sbin/policy-rc.d
	OWN_POLICY=0
	if [ ! -e "$POLICY" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$POLICY"
		chmod 755 "$POLICY"
		OWN_POLICY=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		dovecot-core dovecot-imapd >/dev/null ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends dovecot-core dovecot-imapd >/dev/null; }
	[ "$OWN_POLICY" = 1 ] && rm -f "$POLICY"
fi
DOVECOT_VERSION=$(dovecot --version 2>/dev/null | cut -d' ' -f1)

# ---------------------------------------------------------------- limits
# 10,000 IDLE sessions need more than 10,000 descriptors, in bureaud and in
# the client; both inherit this.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt "$((IDLE_N + 200))" ] || say "warning: open-file limit $(ulimit -n) < IDLE_N + 200"

mkdir -p "$OUT"
chmod 755 "$OUT"

# ---------------------------------------------------------------- corpus
CORPUS=$OUT/corpus
if [ ! -f "$CORPUS/manifest.json" ] ||
	! python3 -c "import json,sys; sys.exit(json.load(open('$CORPUS/manifest.json'))['count'] != $N)"; then
	say "== generating $N messages into $CORPUS"
	rm -rf "$CORPUS"
	python3 "$HERE/gen_corpus.py" --out "$CORPUS" --count "$N" --jobs "$(nproc)" >/dev/null
fi

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # port seconds
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	die "port $1 did not open within $2 s"
}

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 1 100); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

# ---------------------------------------------------------------- Dovecot
D=$OUT/dovecot
rm -rf "$D"
mkdir -p "$D/run" "$D/state" "$D/mail" "$D/log"
chown mail:mail "$D/mail"
chmod 755 "$D"
DPORT=$(free_port)
echo "alice:{PLAIN}$PASSWORD" >"$D/users"
chown root:dovecot "$D/users"
chmod 640 "$D/users"
cat >"$D/dovecot.conf" <<EOF
# written by tests/bench/imap_bench.sh
protocols = imap
listen = $HOST
base_dir = $D/run
state_dir = $D/state
instance_name = bench-dovecot
log_path = $D/log/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
mail_location = maildir:$D/mail/%n/Maildir
mail_uid = mail
mail_gid = mail
first_valid_uid = 8
first_valid_gid = 8
mail_max_userip_connections = 1000
default_process_limit = 1000
default_client_limit = 4000
default_login_user = dovenull
default_internal_user = dovecot
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $D/users
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
    port = $DPORT
  }
  inet_listener imaps {
    port = 0
  }
}
service imap {
  process_limit = 1024
}
EOF
/usr/sbin/dovecot -c "$D/dovecot.conf" -F >>"$D/log/stdout.log" 2>&1 &
PIDS+=($!)
wait_port "$DPORT" 20
say "== Dovecot $DOVECOT_VERSION on $HOST:$DPORT (pid ${PIDS[-1]})"

# ---------------------------------------------------------------- bureaud
if ! id "$SERVICE_USER" >/dev/null 2>&1; then
	useradd --system --user-group --home-dir /nonexistent --no-create-home \
		--shell /usr/sbin/nologin "$SERVICE_USER"
fi
B=$OUT/bureau
rm -rf "$B"
mkdir -p "$B/state"
chown "$SERVICE_USER:" "$B/state"
chmod 700 "$B/state"
chmod 755 "$B"
BPORT=$(free_port)
HPORT=$(free_port)
cat >"$B/bureau.conf" <<EOF
# written by tests/bench/imap_bench.sh
state_dir = $B/state
listen.address = $HOST
user = $SERVICE_USER
imap.port = $BPORT
http.port = $HPORT
imaps.port = 0
pop3.port = 0
pop3s.port = 0
smtp.port = 0
submission.port = 0
submissions.port = 0
lmtp.port = 0
https.port = 0
auth.allow_plaintext_loopback = true
limits.max_sessions_per_ip = 0
log.level = warning
# the IDLE phase logs in 10,000 times: a cheaper hash than yescrypt
password.scheme = sha512
EOF
"$BUILD/server/bureaud" -c "$B/bureau.conf" >>"$B/bureaud.log" 2>&1 &
BUREAU_PID=$!
PIDS+=("$BUREAU_PID")
wait_port "$BPORT" 120
for _ in $(seq 1 300); do
	curl -fsS "http://$HOST:$HPORT/health" >/dev/null 2>&1 && break
	sleep 0.2
done
CTL=("$BUILD/server/bureauctl" -c "$B/bureau.conf")
"${CTL[@]}" domain add example.test >/dev/null
"${CTL[@]}" user add alice@example.test --password "$PASSWORD" >/dev/null
say "== bureaud $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') on $HOST:$BPORT (pid $BUREAU_PID)"

# ---------------------------------------------------------------- runs
COMMON=(--corpus "$CORPUS" --n "$N" --clients "$CLIENTS" --procs "$PROCS" --duration "$DURATION"
	--phases "$PHASES" --mailbox bench)
say "== Dovecot"
python3 "$HERE/imap_bench.py" --port "$DPORT" --user alice --password "$PASSWORD" \
	--label Dovecot --json "$OUT/dovecot.json" "${COMMON[@]}" | tee "$OUT/dovecot.txt"
say "== bureaud"
python3 "$HERE/imap_bench.py" --port "$BPORT" --user alice@example.test --password "$PASSWORD" \
	--label bureaud --json "$OUT/bureau.json" "${COMMON[@]}" | tee "$OUT/bureau.txt"
IDLE_ARGS=()
if [ "$IDLE_N" -gt 0 ]; then
	say "== $IDLE_N IDLE sessions on bureaud"
	python3 "$HERE/idle_bench.py" --port "$BPORT" --user alice@example.test --password "$PASSWORD" \
		--pid "$BUREAU_PID" --n "$IDLE_N" --json "$OUT/idle.json" | tee "$OUT/idle.txt"
	IDLE_ARGS=(--idle "$OUT/idle.json")
fi

{
	echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr);" \
		"Dovecot $DOVECOT_VERSION (maildir), bureaud with its embedded PostgreSQL" \
		"($("$BUILD/server/bureaud" --version 2>/dev/null || echo build $(basename "$BUILD")));" \
		"$N messages ($(python3 -c "import json; print(round(json.load(open('$CORPUS/manifest.json'))['bytes'] / 1e6))") MB)," \
		"$CLIENTS clients for $DURATION s."
	echo
} >"$OUT/results.md"
python3 "$HERE/compare.py" --a "$OUT/dovecot.json" --b "$OUT/bureau.json" "${IDLE_ARGS[@]}" \
	>>"$OUT/results.md"
cat "$OUT/results.md"
say "== results in $OUT (results.md, *.json, logs)"

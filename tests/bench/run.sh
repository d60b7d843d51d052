#!/usr/bin/env bash
# tests/bench/run.sh - IMAP benchmark: bureaud against Dovecot, same workload,
# same machine, one run. Results: a table on stdout and JSON in a results dir.
#
#   sudo tests/bench/run.sh            (root: bureaud runs its embedded
#                                       PostgreSQL as user bureau, Dovecot
#                                       drops to its own users)
#
# Steps (each bounded; the whole run stops at BENCH_TIME_LIMIT):
#   1. build bureaud (meson release build with assertions, in BUREAU_BUILD_DIR)
#   2. generate the corpus (gen_corpus.py; cached by count/seed/version)
#   3. bureaud on a free 127.0.0.1 port, embedded PostgreSQL, state in a temp
#      dir; users alice@bench.test and bob0..bob9@bench.test
#   4. imap_load.py run against it (APPEND, SELECT, FETCH, SEARCH, SORT,
#      THREAD, STORE, 50-client mix), server CPU per line
#   5. idle_hold.py: BENCH_IDLE_CONNS IDLE connections, bureaud's memory,
#      wake-up by APPEND; then bureaud is stopped
#   6. Dovecot (dovecot.sh: apt-get installs dovecot-imapd if missing) on
#      another free port, the same workload, a smaller IDLE run; stopped
#   7. imap_load.py compare: the table (ratio per line) and summary.json
# Everything started here is stopped on exit (trap), by the PIDs recorded.
#
# Environment (defaults in brackets):
#   BENCH_MESSAGES [10000]  corpus size = messages appended
#   BENCH_CLIENTS [50]      concurrent clients in the mix
#   BENCH_DURATION [30]     seconds of the mix
#   BENCH_IDLE_CONNS [10000]       IDLE connections held on bureaud (0: skip)
#   BENCH_IDLE_USERS [10]          users they are spread over
#   BENCH_DOVECOT_IDLE_CONNS [1000] IDLE connections on Dovecot (0: skip)
#   BENCH_SKIP_DOVECOT [0]  1: bureaud only
#   BENCH_TIME_LIMIT [1200] seconds for the whole run
#   BENCH_RESULTS [$BUREAU_BUILD_DIR/bench-results/DATE]
#   BENCH_CORPUS [$BUREAU_BUILD_DIR/bench-corpus-N]
#   BENCH_KEEP [0]          1: keep the servers' state dirs (logs, databases)
#   BENCH_PERF [0]          1: perf record -g bureaud during its workload
#   BUREAU_BUILD_DIR [build-bench]
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
BENCH=$ROOT/tests/bench
PY=/usr/bin/python3
SERVICE_USER=bureau

N=${BENCH_MESSAGES:-10000}
CLIENTS=${BENCH_CLIENTS:-50}
DURATION=${BENCH_DURATION:-30}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
IDLE_USERS=${BENCH_IDLE_USERS:-10}
DOVECOT_IDLE_CONNS=${BENCH_DOVECOT_IDLE_CONNS:-1000}
SKIP_DOVECOT=${BENCH_SKIP_DOVECOT:-0}
TIME_LIMIT=${BENCH_TIME_LIMIT:-1200}
BUILD=${BUREAU_BUILD_DIR:-$ROOT/build-bench}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
RESULTS=${BENCH_RESULTS:-$BUILD/bench-results/$(date +%Y%m%d-%H%M%S)}
CORPUS=${BENCH_CORPUS:-$BUILD/bench-corpus-$N}
SEED=42
DOMAIN=bench.test
PASS_A=alice-pass-1
PASS_B=bob-pass-1

say() { printf '[%4ds] %s\n' "$SECONDS" "$*"; }
die() { say "run.sh: $*" >&2; exit 1; }
remaining() { local r=$((TIME_LIMIT - SECONDS)); [ "$r" -gt 5 ] && echo "$r" || echo 5; }
# run a step with at most min(remaining time, $1) seconds
bounded() {
	local cap=$1 r
	shift
	r=$(remaining)
	[ "$cap" -lt "$r" ] && r=$cap
	timeout --signal=TERM --kill-after=15 "$r" "$@"
}

[ "$(id -u)" = 0 ] || die "run as root (bureaud runs its PostgreSQL as user $SERVICE_USER; Dovecot drops privileges)"
[ -x "$PY" ] || die "$PY is needed"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bureau-bench.XXXXXX")
chmod 755 "$WORK"
mkdir -p "$RESULTS"
BUREAUD_PID=
PG_DATA=
DOVECOT_DIR=$WORK/dovecot
PERF_PID=
LOAD_PID=

stop_bureaud() {
	local i pgpid=
	if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
		pgpid=$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
	fi
	if [ -n "$BUREAUD_PID" ] && kill -0 "$BUREAUD_PID" 2>/dev/null; then
		kill -TERM "$BUREAUD_PID" 2>/dev/null || true
		for ((i = 0; i < 300; i++)); do kill -0 "$BUREAUD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$BUREAUD_PID" 2>/dev/null && kill -KILL "$BUREAUD_PID" 2>/dev/null || true
	fi
	BUREAUD_PID=
	# bureaud stops its PostgreSQL; if it could not, stop that postmaster
	if [ -n "$pgpid" ] && kill -0 "$pgpid" 2>/dev/null; then
		kill -QUIT "$pgpid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do kill -0 "$pgpid" 2>/dev/null || break; sleep 0.1; done
	fi
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	[ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null || true
	if [ -n "$PERF_PID" ] && kill -0 "$PERF_PID" 2>/dev/null; then
		kill -INT "$PERF_PID" 2>/dev/null || true
		wait "$PERF_PID" 2>/dev/null || true
	fi
	stop_bureaud
	[ -d "$DOVECOT_DIR" ] && "$BENCH/dovecot.sh" stop "$DOVECOT_DIR" || true
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "state kept in $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port seconds
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------ limits
# one fd per connection on both sides, plus margin
want_fds=$((IDLE_CONNS + 1000))
[ "$want_fds" -lt 4096 ] && want_fds=4096
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want_fds" ]; then
	ulimit -Hn "$want_fds" 2>/dev/null || true
	hard=$(ulimit -Hn)
fi
if [ "$hard" = unlimited ] || [ "$hard" -ge "$want_fds" ]; then
	ulimit -Sn "$want_fds"
else
	ulimit -Sn "$hard"
	if [ "$IDLE_CONNS" -gt $((hard - 200)) ]; then
		say "open-file limit is $hard (hard): IDLE test reduced from $IDLE_CONNS to $((hard - 200)) connections"
		IDLE_CONNS=$((hard - 200))
	fi
fi

# ------------------------------------------------------------ machine
{
	echo "date: $(date -Is)"
	echo "host: $(uname -srm)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "root fs: $(findmnt -no FSTYPE,SOURCE / 2>/dev/null || true)"
	echo "tmp fs: $(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || true)"
	echo "lo mtu: $(cat /sys/class/net/lo/mtu 2>/dev/null || echo ?)"
	echo "python: $("$PY" --version 2>&1)"
	echo "postgresql: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
	echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -) $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) changed files"
	echo "settings: messages=$N clients=$CLIENTS duration=${DURATION}s idle=$IDLE_CONNS/$IDLE_USERS users dovecot_idle=$DOVECOT_IDLE_CONNS"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RESULTS/machine.txt"
cat "$RESULTS/machine.txt"
# other work on the machine skews every number: sample the load during the run
(while :; do echo "$(date +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 10; done > "$RESULTS/loadavg.txt") &
LOAD_PID=$!
if awk -v n="$(nproc)" '{ exit !($1 > n * 0.5) }' /proc/loadavg; then
	say "WARNING: load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores before the run: other work will skew the numbers"
fi

# ------------------------------------------------------------ build
say "building bureaud in $BUILD"
if [ ! -f "$BUILD/build.ninja" ]; then
	bounded 300 meson setup "$BUILD" "$ROOT" --buildtype=release -Db_ndebug=false > "$RESULTS/build.log" 2>&1 ||
		{ tail -30 "$RESULTS/build.log"; die "meson setup failed"; }
fi
bounded 600 ninja -C "$BUILD" server/bureaud server/bureauctl >> "$RESULTS/build.log" 2>&1 ||
	{ tail -30 "$RESULTS/build.log"; die "build failed (see $RESULTS/build.log)"; }
BUREAUD=$BUILD/server/bureaud
BUREAUCTL=$BUILD/server/bureauctl

# ------------------------------------------------------------ corpus
corpus_ok() {
	[ -f "$CORPUS/manifest.json" ] && "$PY" - "$CORPUS/manifest.json" "$N" "$SEED" "$BENCH/gen_corpus.py" <<'PY'
import json, re, sys
m = json.load(open(sys.argv[1]))
v = int(re.search(r"^GENERATOR_VERSION = (\d+)", open(sys.argv[4]).read(), re.M).group(1))
sys.exit(0 if (m.get("count"), m.get("seed"), m.get("generator_version")) == (int(sys.argv[2]), int(sys.argv[3]), v) else 1)
PY
}
if corpus_ok; then
	say "corpus: reusing $CORPUS"
else
	say "corpus: generating $N messages in $CORPUS"
	rm -rf "$CORPUS"
	bounded 600 "$PY" "$BENCH/gen_corpus.py" --out "$CORPUS" --count "$N" --seed "$SEED" > "$RESULTS/corpus.log" ||
		die "corpus generation failed"
fi
cp "$CORPUS/manifest.json" "$RESULTS/corpus-manifest.json"

# ------------------------------------------------------------ bureaud
getent passwd "$SERVICE_USER" >/dev/null ||
	useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"

B=$WORK/bureaud
mkdir -p "$B/var"
chown "$SERVICE_USER:" "$B/var"
chmod 755 "$B"
BPORT=$(free_port)
"$BUREAUD" --write-config "$B/bureau.conf" -o state_dir="$B/var" -o imap.port="$BPORT" \
	-o imaps.port=0 -o pop3.port=0 -o pop3s.port=0 -o smtp.port=0 -o submission.port=0 \
	-o submissions.port=0 -o lmtp.port=0 -o http.port=0 -o https.port=0 \
	-o auth.allow_plaintext_loopback=true -o log.level=warning -o log.file="$B/bureaud.log" \
	-o limits.max_sessions_per_ip=$((IDLE_CONNS + CLIENTS + 100)) >/dev/null
cp "$B/bureau.conf" "$RESULTS/bureau.conf"
PG_DATA=$B/var/pg/data
say "bureaud: starting on 127.0.0.1:$BPORT (state $B)"
BUREAU_SCHEMA_DIR=$ROOT/schema "$BUREAUD" -c "$B/bureau.conf" > "$B/stdout.log" 2>&1 &
BUREAUD_PID=$!
wait_port "$BPORT" 60 || { tail -20 "$B/stdout.log" "$B/bureaud.log" 2>/dev/null; die "bureaud did not open its IMAP port"; }
# the port opens before the database is ready: retry the first bureauctl
for ((i = 0; i < 120; i++)); do
	"$BUREAUCTL" -c "$B/bureau.conf" domain add "$DOMAIN" > /dev/null 2>&1 && break
	kill -0 "$BUREAUD_PID" 2>/dev/null || die "bureaud exited (see $B/bureaud.log)"
	sleep 0.5
done
[ "$i" -lt 120 ] || die "bureauctl could not reach bureaud's database"
"$BUREAUCTL" -c "$B/bureau.conf" user add "alice@$DOMAIN" --password "$PASS_A" > /dev/null
for ((i = 0; i < IDLE_USERS; i++)); do
	"$BUREAUCTL" -c "$B/bureau.conf" user add "bob$i@$DOMAIN" --password "$PASS_B" > /dev/null
done
PG_PID=$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null || echo)
say "bureaud: pid $BUREAUD_PID, PostgreSQL postmaster pid ${PG_PID:-?}"

if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
	perf record -g -F 499 -o "$RESULTS/bureaud.perf.data" -p "$BUREAUD_PID" > "$RESULTS/perf.log" 2>&1 &
	PERF_PID=$!
fi
say "bureaud: workload"
bounded 480 "$PY" "$BENCH/imap_load.py" run --port "$BPORT" --user "alice@$DOMAIN" --password "$PASS_A" \
	--corpus "$CORPUS" --n "$N" --clients "$CLIENTS" --duration "$DURATION" --label bureaud \
	--cpu-pids "$BUREAUD_PID${PG_PID:+,$PG_PID}" --json "$RESULTS/bureaud.json" 2>&1 | tee "$RESULTS/bureaud.txt" || true
if [ -n "$PERF_PID" ]; then
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=
fi
if [ "$IDLE_CONNS" -gt 0 ]; then
	say "bureaud: $IDLE_CONNS IDLE connections"
	bounded 600 "$PY" "$BENCH/idle_hold.py" --port "$BPORT" --user "bob{}@$DOMAIN" --users "$IDLE_USERS" \
		--password "$PASS_B" --conns "$IDLE_CONNS" --server-pid "$BUREAUD_PID" --pg-data "$PG_DATA" \
		--max-seconds $(($(remaining) > 600 ? 540 : $(remaining) - 20)) --label bureaud \
		--json "$RESULTS/bureaud-idle.json" 2>&1 | tee "$RESULTS/bureaud-idle.txt" || true
fi
grep -v '^$' "$B/bureaud.log" 2>/dev/null | tail -200 > "$RESULTS/bureaud.log" || true
stop_bureaud
say "bureaud: stopped"

# ------------------------------------------------------------ Dovecot
if [ "$SKIP_DOVECOT" != 1 ]; then
	DPORT=$(free_port)
	users=("alice:$PASS_A")
	for ((i = 0; i < IDLE_USERS; i++)); do users+=("bob$i:$PASS_B"); done
	DOVECOT_MAX_CONNS=$((DOVECOT_IDLE_CONNS + CLIENTS + 200)) \
		bounded 300 "$BENCH/dovecot.sh" start "$DOVECOT_DIR" "$DPORT" "${users[@]}" || die "Dovecot did not start"
	echo "dovecot: $(/usr/sbin/dovecot --version)" >> "$RESULTS/machine.txt"
	cp "$DOVECOT_DIR/dovecot.conf" "$RESULTS/dovecot.conf"
	DPID=$(cat "$DOVECOT_DIR/dovecot.pid")
	say "dovecot: workload"
	bounded 480 "$PY" "$BENCH/imap_load.py" run --port "$DPORT" --user alice --password "$PASS_A" \
		--corpus "$CORPUS" --n "$N" --clients "$CLIENTS" --duration "$DURATION" --label dovecot \
		--cpu-pids "$DPID" --json "$RESULTS/dovecot.json" 2>&1 | tee "$RESULTS/dovecot.txt" || true
	if [ "$DOVECOT_IDLE_CONNS" -gt 0 ] && [ "$(remaining)" -gt 60 ]; then
		say "dovecot: $DOVECOT_IDLE_CONNS IDLE connections"
		bounded 300 "$PY" "$BENCH/idle_hold.py" --port "$DPORT" --user "bob{}" --users "$IDLE_USERS" \
			--password "$PASS_B" --conns "$DOVECOT_IDLE_CONNS" --server-pid "$DPID" \
			--max-seconds $(($(remaining) > 300 ? 240 : $(remaining) - 20)) --label dovecot \
			--json "$RESULTS/dovecot-idle.json" 2>&1 | tee "$RESULTS/dovecot-idle.txt" || true
	fi
	tail -200 "$DOVECOT_DIR/log/dovecot.log" > "$RESULTS/dovecot.log" 2>/dev/null || true
	"$BENCH/dovecot.sh" stop "$DOVECOT_DIR"
	say "dovecot: stopped"
fi

# ------------------------------------------------------------ table
kill "$LOAD_PID" 2>/dev/null || true
LOAD_PID=
echo "load average samples (1/5/15 min, every 10 s): max 1-min $(awk '{ if ($2 > m) m = $2 } END { print m }' "$RESULTS/loadavg.txt")" >> "$RESULTS/machine.txt"
echo
"$PY" "$BENCH/imap_load.py" compare "$RESULTS/bureaud.json" "$RESULTS/dovecot.json" \
	--idle "$RESULTS/bureaud-idle.json" --idle-b "$RESULTS/dovecot-idle.json" \
	--text "$RESULTS/table.txt" --markdown "$RESULTS/table.md" --json "$RESULTS/summary.json" || true
echo
say "results in $RESULTS (table.txt, table.md, summary.json, bureaud.json, dovecot.json, *-idle.json)"

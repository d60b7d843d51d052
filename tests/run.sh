#!/usr/bin/env bash
# tests/run.sh - the whole test suite, as CI runs it (./dev test calls this).
#
#   tests/run.sh [PART...]     PART: unit e2e asan fuzz (default: all of them)
#
#   unit  meson setup/reconfigure build/ + ninja, then `meson test` with a
#         throwaway PostgreSQL cluster in BUREAU_TEST_DB
#   e2e   pytest tests/e2e against build/server/bureaud
#   asan  the same unit tests and e2e suite on an ASan+UBSan build (build-asan/)
#   fuzz  clang build (build-fuzz/) of tests/fuzz/fuzz_*.c, each run
#         FUZZ_SECONDS (30) on tests/fuzz/corpus/<name without fuzz_>/
#
# Environment: PYTEST_ARGS (extra pytest arguments, e.g. "-k throttle -x"),
# FUZZ_SECONDS, E2E_TIMEOUT (seconds for one pytest run, default 1500).
#
# Counting: every meson test, pytest test and fuzz target is one test; a build
# or a runner that crashes counts as one failure; a part that cannot run
# (no tests, no clang, no fuzz targets) counts as nothing. The last line of
# output is exactly "N passed, N failed"; the exit status is 1 if N failed > 0.
set -u
set -o pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT" || exit 2

PY=/usr/bin/python3              # Debian's python (has python3-pytest)
SERVICE_USER=bureau
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
E2E_TIMEOUT=${E2E_TIMEOUT:-1500}
export PYTHONDONTWRITEBYTECODE=1

PASSED=0
FAILED=0
SKIPPED=0
FAILURES=()

if [ "$#" -gt 0 ]; then
	PARTS=" $* "
else
	PARTS=" unit e2e asan fuzz "
fi
want() { [[ "$PARTS" == *" $1 "* ]]; }

say() { printf '%s\n' "$*"; }
section() { printf '\n==== %s ====\n' "$*"; }

# count P F S [label-of-failure...]
count() {
	PASSED=$((PASSED + $1))
	FAILED=$((FAILED + $2))
	SKIPPED=$((SKIPPED + $3))
	shift 3
	local l
	for l in "$@"; do FAILURES+=("$l"); done
}
fail_part() { count 0 1 0 "$1"; say "!! $1"; }

is_root() { [ "$(id -u)" = 0 ]; }
as_service_user() {
	if is_root; then
		runuser -u "$SERVICE_USER" -- "$@"
	else
		"$@"
	fi
}

# ---------------------------------------------------------------------------
# cleanup: clusters we started (by data dir) and anything else registered
# ---------------------------------------------------------------------------
PG_DIR=""
PGBIN=""
cleanup() {
	if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
		as_service_user "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ -n "$PG_DIR" ]; then
		rm -rf "$PG_DIR"
	fi
	PG_DIR=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

if is_root && ! getent passwd "$SERVICE_USER" >/dev/null; then
	useradd --system --user-group --home-dir /nonexistent --no-create-home \
		--shell /usr/sbin/nologin "$SERVICE_USER"
fi

find_pgbin() {
	local d
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	return 1
}

# A throwaway cluster for the unit tests: unix socket only, trust, as the
# service user. Tests create their own databases in it.
start_unit_pg() {
	[ -n "$PG_DIR" ] && return 0
	PGBIN=$(find_pgbin) || { say "no PostgreSQL server binaries under /usr/lib/postgresql"; return 1; }
	PG_DIR=$(mktemp -d /tmp/bureau-unit-pg.XXXXXX) || return 1
	is_root && chown "$SERVICE_USER:" "$PG_DIR"
	chmod 0700 "$PG_DIR"
	if ! as_service_user "$PGBIN/initdb" -D "$PG_DIR/data" -U bureau --auth=trust \
		-E UTF8 --locale=C.UTF-8 -N >"$PG_DIR/initdb.log" 2>&1; then
		cat "$PG_DIR/initdb.log"
		return 1
	fi
	cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$PG_DIR'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
	if ! as_service_user "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" \
		-w -t 60 start >/dev/null; then
		tail -n 30 "$PG_DIR/postgres.log"
		return 1
	fi
	export BUREAU_TEST_DB="host=$PG_DIR dbname=postgres user=bureau"
	say "unit test database: $BUREAU_TEST_DB"
}

# setup_build DIR [meson options...]: setup, or reconfigure an existing dir
# (meson.build keeps only files that exist, so new files need a reconfigure)
setup_build() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" && return 0
		say "reconfigure of $dir failed; wiping it"
		meson setup --wipe "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi
}

# run_unit BUILDDIR LABEL [TIMEOUT-MULTIPLIER]: meson test, counted from testlog.json
run_unit() {
	local dir=$1 label=$2 mult=${3:-1}
	if ! start_unit_pg; then
		fail_part "$label: could not start PostgreSQL for the unit tests"
		unset BUREAU_TEST_DB
	fi
	local log=$dir/meson-logs/testlog.json
	rm -f "$log"
	local rc=0
	meson test -C "$dir" --print-errorlogs --timeout-multiplier "$mult" || rc=$?
	if [ ! -f "$log" ]; then
		if [ "$rc" != 0 ]; then
			fail_part "$label: meson test exited $rc without a test log"
		else
			say "$label: no unit tests defined"
		fi
		return
	fi
	local counts
	counts=$("$PY" - "$log" <<'EOF'
import json, sys
p = f = s = 0
names = []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    line = line.strip()
    if not line:
        continue
    try:
        t = json.loads(line)
    except ValueError:
        continue
    r = str(t.get("result", "")).upper().split(".")[-1]
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
        names.append("%s(%s)" % (t.get("name", "?"), r))
print(p, f, s, " ".join(names))
EOF
) || counts="0 1 0 testlog-unreadable"
	local p f s names
	read -r p f s names <<<"$counts"
	say "$label: $p passed, $f failed, $s skipped"
	local labels=()
	local n
	for n in $names; do labels+=("$label $n"); done
	count "$p" "$f" "$s" "${labels[@]}"
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		fail_part "$label: meson test exited $rc"
	fi
}

# run_e2e BUILDDIR LABEL: pytest tests/e2e, counted from its junit xml
run_e2e() {
	local dir=$1 label=$2
	if [ ! -x "$dir/server/bureaud" ] || [ ! -x "$dir/server/bureauctl" ]; then
		fail_part "$label: $dir/server/bureaud or bureauctl was not built"
		return
	fi
	if ! "$PY" -c 'import pytest' 2>/dev/null; then
		fail_part "$label: $PY has no pytest (apt-get install python3-pytest)"
		return
	fi
	local xml=$dir/e2e-junit.xml
	rm -f "$xml"
	local rc=0
	# shellcheck disable=SC2086  # PYTEST_ARGS is split on purpose
	BUREAU_BUILD_DIR=$ROOT/$dir timeout --kill-after=30 "$E2E_TIMEOUT" \
		"$PY" -m pytest -c tests/e2e/pytest.ini --rootdir tests/e2e tests/e2e \
		--junitxml="$xml" ${PYTEST_ARGS:-} || rc=$?
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		fail_part "$label: pytest killed after ${E2E_TIMEOUT}s"
	fi
	if [ ! -f "$xml" ]; then
		case "$rc" in
		5) say "$label: no e2e tests collected" ;;
		124 | 137) ;;
		*) fail_part "$label: pytest exited $rc without a report" ;;
		esac
		return
	fi
	local counts
	counts=$("$PY" - "$xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
p = f = s = 0
names = []
root = ET.parse(sys.argv[1]).getroot()
for case in root.iter("testcase"):
    kinds = {child.tag for child in case}
    name = case.get("name", "?")
    if kinds & {"failure", "error"}:
        f += 1
        names.append(name)
    elif "skipped" in kinds:
        s += 1
    else:
        p += 1
# collection errors appear as testsuite errors without a testcase
for suite in root.iter("testsuite"):
    errs = int(suite.get("errors", "0") or 0)
    counted = sum(1 for c in suite.iter("testcase") if any(x.tag == "error" for x in c))
    if errs > counted:
        f += errs - counted
        names.append("collection-error")
print(p, f, s, " ".join(names))
EOF
) || counts="0 1 0 junit-unreadable"
	local p f s names
	read -r p f s names <<<"$counts"
	say "$label: $p passed, $f failed, $s skipped"
	local labels=()
	local n
	for n in $names; do labels+=("$label $n"); done
	count "$p" "$f" "$s" "${labels[@]}"
	if [ "$f" = 0 ] && [ "$rc" != 0 ] && [ "$rc" != 5 ] && [ "$rc" != 124 ] && [ "$rc" != 137 ]; then
		fail_part "$label: pytest exited $rc"
	fi
}

run_fuzz() {
	local clang
	clang=$(command -v clang || true)
	if [ -z "$clang" ]; then
		say "fuzz: clang not installed; skipped"
		return
	fi
	local srcs=()
	local f
	for f in tests/fuzz/fuzz_*.c; do
		[ -f "$f" ] && srcs+=("$f")
	done
	if [ "${#srcs[@]}" -eq 0 ]; then
		say "fuzz: no fuzz targets yet"
		return
	fi
	# every library gets coverage instrumentation (fuzzer-no-link) and the
	# sanitizers; each target adds -fsanitize=fuzzer itself.
	if ! CC=$clang setup_build build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dwerror=false -Dc_args=-fsanitize=fuzzer-no-link; then
		fail_part "fuzz: meson setup build-fuzz failed"
		return
	fi
	local src name short bin corpus run_dir rc
	for src in "${srcs[@]}"; do
		name=$(basename "$src" .c)
		short=${name#fuzz_}
		if ! ninja -C build-fuzz "tests/fuzz/$name"; then
			fail_part "fuzz $name: build failed"
			continue
		fi
		bin=build-fuzz/tests/fuzz/$name
		if [ ! -x "$bin" ]; then
			fail_part "fuzz $name: $bin missing after build"
			continue
		fi
		corpus=tests/fuzz/corpus/$short
		run_dir=build-fuzz/corpus-run/$short
		mkdir -p "$run_dir" build-fuzz/artifacts
		local args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048
			-print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$name-" "$run_dir")
		[ -d "$corpus" ] && args+=("$corpus")
		local dict
		for dict in "tests/fuzz/$short.dict" "tests/fuzz/$name.dict"; do
			[ -f "$dict" ] && args=(-dict="$dict" "${args[@]}")
		done
		say "fuzz $name: ${FUZZ_SECONDS}s on ${corpus}"
		rc=0
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			timeout --kill-after=10 $((FUZZ_SECONDS * 3 + 60)) "$bin" "${args[@]}" \
			>"build-fuzz/$name.log" 2>&1 || rc=$?
		if [ "$rc" = 0 ]; then
			tail -n 8 "build-fuzz/$name.log"
			count 1 0 0
		else
			tail -n 60 "build-fuzz/$name.log"
			fail_part "fuzz $name: exit $rc (see build-fuzz/$name.log, artifacts in build-fuzz/artifacts/)"
		fi
	done
}

# ---------------------------------------------------------------------------
START=$(date +%s)

if want unit || want e2e; then
	section "build (build/)"
	if setup_build build && ninja -C build; then
		if want unit; then
			section "unit tests (build/)"
			run_unit build unit
		fi
		if want e2e; then
			section "e2e tests (build/)"
			run_e2e build e2e
		fi
	else
		fail_part "build: meson/ninja failed in build/"
	fi
fi

if want asan; then
	section "ASan+UBSan build (build-asan/)"
	# -Dwerror=false: GCC's warnings under -fsanitize have false positives
	# (e.g. "null format string"); build/ already enforces the warnings.
	if setup_build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false &&
	   ninja -C build-asan; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
		export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		export BUREAU_E2E_TIMEOUT_SCALE=3
		section "unit tests (build-asan/)"
		run_unit build-asan asan-unit 3
		section "e2e tests (build-asan/)"
		run_e2e build-asan asan-e2e
		unset ASAN_OPTIONS UBSAN_OPTIONS BUREAU_E2E_TIMEOUT_SCALE
	else
		fail_part "asan: meson/ninja failed in build-asan/"
	fi
fi

if want fuzz; then
	section "fuzz smoke (build-fuzz/)"
	run_fuzz
fi

cleanup
trap - EXIT INT TERM

section "summary ($(($(date +%s) - START)) s)"
if [ "${#FAILURES[@]}" -gt 0 ]; then
	say "failed:"
	for f in "${FAILURES[@]}"; do say "  $f"; done
fi
[ "$SKIPPED" -gt 0 ] && say "($SKIPPED skipped)"
say "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

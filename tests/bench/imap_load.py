#!/usr/bin/python3
"""IMAP workload for comparing servers: one script, any server, stdlib only.

    imap_load.py run --port P --user U --password PW --corpus DIR --label NAME \\
                     [--n 10000] [--clients 50] [--duration 30] --json OUT.json
    imap_load.py compare A.json B.json [--idle IDLE.json] [--markdown OUT.md] [--json OUT.json]

`run` drives one server through these lines, in this order (each bounded in
repetitions and seconds; see --line-budget):

  login          connect + LOGIN + LOGOUT
  append         APPEND the first --n corpus messages to a fresh mailbox over
                 one connection (LITERAL+ when offered; INTERNALDATE = Date:)
  settle         (with --cpu-pids) wait --settle-min seconds and until the
                 server is idle, and report its background work (time, CPU)
                 apart: the other lines measure the server in steady state
  select         SELECT of the full mailbox (the first one is reported apart)
  fetch_all      FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE) (first one apart)
  fetch_body     UID FETCH <uid> BODY.PEEK[] of random messages, one per command
  fetch_body50   UID FETCH <50 consecutive uids> BODY.PEEK[]
  search_*       UID SEARCH TEXT/BODY/SUBJECT/FROM/HEADER/SINCE/LARGER/UNSEEN
  sort_*         UID SORT by DATE, REVERSE ARRIVAL, SUBJECT, FROM, SIZE, and
                 SORT (DATE) with a SUBJECT criterion
  thread_*       UID THREAD REFERENCES and ORDEREDSUBJECT
  store_*        UID STORE +FLAGS on one message; STORE 1:* +FLAGS / -FLAGS
  mix            --clients concurrent sessions (threads in --procs processes),
                 each LOGIN + SELECT, then for --duration seconds a weighted
                 mix: 35% FETCH of a 20-message range (UID FLAGS ENVELOPE),
                 20% UID FETCH BODY.PEEK[], 15% UID STORE +/-FLAGS, 10% NOOP,
                 5% STATUS, 5% UID SEARCH SUBJECT, 5% APPEND of a small
                 message, 5% UID FETCH BODYSTRUCTURE

Every command's latency is measured from sending it to its tagged reply.
ops/s of a sequential line is n / (sum of latencies). Results (hit counts,
SORT orders, THREAD trees) are mapped from UIDs to corpus indices (via
APPENDUID) and hashed, so `compare` can tell whether two servers returned the
same answer; planted-token searches are checked against manifest.json.
With --cpu-pids, the CPU time (user+system) of those processes and all their
descendants is recorded per line (server CPU per operation).

The client is a small IMAP reader on plain sockets (TCP_NODELAY set), much
cheaper than imaplib, but it is still Python sharing the machine's cores
with the server: compare servers measured with the same client on the same
machine, not absolute numbers across machines.
"""
import argparse
import email.utils
import glob
import hashlib
import json
import multiprocessing as mp
import os
import random
import re
import signal
import socket
import sys
import threading
import time


# --------------------------------------------------------------------------
# a minimal blocking IMAP client
# --------------------------------------------------------------------------
class ImapError(Exception):
    pass


def quote(s):
    if isinstance(s, str):
        s = s.encode()
    return b'"' + s.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class Client:
    """One connection. cmd() sends a tagged command and returns the untagged
    responses (each one complete, literals inline) and the tagged line."""

    def __init__(self, host, port, timeout=60.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.tagn = 0
        self.literal_plus = False
        self.caps = set()
        greeting = self.read_response()
        if not greeting.startswith(b"* OK") and not greeting.startswith(b"* PREAUTH"):
            raise ImapError(f"greeting: {greeting[:200]!r}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        if self.pos == len(self.buf):
            self.buf.clear()
            self.pos = 0
        elif self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        data = self.sock.recv(1 << 18)
        if not data:
            raise ImapError("connection closed by server")
        self.buf += data

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i + 2])
                self.pos = i + 2
                return line
            self._fill()

    def _take(self, n):
        while len(self.buf) - self.pos < n:
            self._fill()
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return b

    def read_response(self):
        parts = []
        while True:
            line = self._line()
            parts.append(line)
            if not line.endswith(b"}\r\n"):
                break
            o = line.rfind(b"{")
            num = line[o + 1:-3].rstrip(b"+")
            if o < 0 or not num.isdigit():
                break
            parts.append(self._take(int(num)))
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def cmd(self, text, literal=None, ok_only=True):
        self.tagn += 1
        tag = b"T%d" % self.tagn
        if isinstance(text, str):
            text = text.encode()
        untagged = []
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        elif self.literal_plus:
            self.sock.sendall(b"%s %s {%d+}\r\n%s\r\n" % (tag, text, len(literal), literal))
        else:
            self.sock.sendall(b"%s %s {%d}\r\n" % (tag, text, len(literal)))
            while True:
                r = self.read_response()
                if r.startswith(b"+"):
                    break
                if r.startswith(tag + b" "):
                    raise ImapError(f"{text[:60]!r}: {r[:200]!r}")
                untagged.append(r)
            self.sock.sendall(literal + b"\r\n")
        while True:
            r = self.read_response()
            if r.startswith(tag + b" "):
                status = r[len(tag) + 1:len(tag) + 4]
                if ok_only and status != b"OK ":
                    raise ImapError(f"{text[:80]!r}: {r[:300]!r}")
                return untagged, r
            untagged.append(r)

    def login(self, user, password):
        self.cmd(b"LOGIN " + quote(user) + b" " + quote(password))
        unt, _ = self.cmd("CAPABILITY")
        for r in unt:
            if r.startswith(b"* CAPABILITY "):
                self.caps = set(r[13:].strip().upper().split())
        self.literal_plus = b"LITERAL+" in self.caps
        return self

    def logout(self):
        try:
            self.cmd("LOGOUT", ok_only=False)
        except (ImapError, OSError):
            pass
        self.close()


def connect(a, timeout=None):
    return Client(a.host, a.port, timeout or a.op_timeout).login(a.user, a.password)


# --------------------------------------------------------------------------
# response parsing and result digests
# --------------------------------------------------------------------------
def numbers_after(untagged, word):
    prefix = b"* " + word + b" "
    out = []
    for r in untagged:
        if r.startswith(prefix) or r.rstrip() == prefix.rstrip():
            for t in r[len(prefix):].split():
                if t.isdigit():
                    out.append(int(t))
    return out


def count_fetch(untagged):
    n = 0
    for r in untagged:
        if r.startswith(b"* ") and b" FETCH (" in r[:40]:
            n += 1
    return n


def fetch_bytes(untagged):
    return sum(len(r) for r in untagged)


THREAD_TOK = re.compile(rb"\(|\)|\d+")


def thread_canonical(untagged, uid2idx):
    """THREAD response with UIDs replaced by corpus indices, as text."""
    out = []
    for r in untagged:
        if r.startswith(b"* THREAD"):
            for t in THREAD_TOK.findall(r[8:]):
                if t in (b"(", b")"):
                    out.append(t.decode())
                else:
                    out.append(str(uid2idx.get(int(t), "u" + t.decode())) + " ")
    return "".join(out)


def digest(obj):
    return hashlib.sha256(json.dumps(obj).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------
# timing helpers
# --------------------------------------------------------------------------
def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def ms(x):
    return None if x is None else round(x * 1000, 3)


def summary(lat, total=None):
    total = sum(lat) if total is None else total
    return {"n": len(lat), "total_s": round(total, 4),
            "ops_per_s": round(len(lat) / total, 2) if total > 0 and lat else None,
            "p50_ms": ms(pct(lat, 50)), "p99_ms": ms(pct(lat, 99)), "max_ms": ms(max(lat) if lat else None)}


CLK = os.sysconf("SC_CLK_TCK")


def tree_cpu(roots):
    """CPU seconds (user+system, plus reaped children) of the processes in
    roots and all their live descendants."""
    if not roots:
        return None
    parent, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(b")") + 2:].split()
        pid = int(d)
        parent[pid] = int(rest[1])
        cpu[pid] = sum(int(x) for x in rest[11:15]) / CLK
    total = 0.0
    for pid in cpu:
        p = pid
        for _ in range(64):
            if p in roots:
                total += cpu[pid]
                break
            p = parent.get(p, 0)
            if p <= 1:
                break
    return total


class Line:
    """Bounded repetition of one measured command."""

    def __init__(self, a, key, title, cpu_each=False):
        self.a, self.key, self.title = a, key, title
        self.cpu_each = cpu_each and bool(a.cpu_roots)
        self.cpu_acc = 0.0
        self.lat = []
        self.extra = {}
        self.error = None
        self.cpu0 = tree_cpu(a.cpu_roots)
        self.t0 = time.monotonic()
        self.wall0 = time.perf_counter()

    def more(self, i, max_n, min_n=3):
        if i >= max_n:
            return False
        if i < min_n:
            return True
        return time.monotonic() - self.t0 < self.a.line_budget

    def time(self, fn):
        c0 = tree_cpu(self.a.cpu_roots) if self.cpu_each else 0.0
        t = time.perf_counter()
        r = fn()
        self.lat.append(time.perf_counter() - t)
        if self.cpu_each:
            self.cpu_acc += tree_cpu(self.a.cpu_roots) - c0
        return r

    def done(self, res, total=None, show=""):
        s = summary(self.lat, total)
        s["title"] = self.title
        s.update(self.extra)
        cpu1 = tree_cpu(self.a.cpu_roots)
        if self.cpu_each:
            cpu1 = self.cpu0 + self.cpu_acc
        if cpu1 is not None and self.lat:
            s["server_cpu_s"] = round(cpu1 - self.cpu0, 3)
            s["server_cpu_ms_per_op"] = round((cpu1 - self.cpu0) * 1000 / len(self.lat), 3)
        if self.error:
            s["error"] = self.error
        res["lines"][self.key] = s
        ops = f"{s['ops_per_s']:>9.1f}" if s["ops_per_s"] else f"{'-':>9}"
        cpu = f" srvcpu/op={s['server_cpu_ms_per_op']:.2f}ms" if "server_cpu_ms_per_op" in s else ""
        print(f"{self.title:<44} n={s['n']:<5} ops/s={ops} p50={s['p50_ms'] or 0:>9.2f} "
              f"p99={s['p99_ms'] or 0:>9.2f} ms{cpu} {show}"
              + (f" ERROR {self.error}" if self.error else ""), flush=True)
        return s


def guarded(fn):
    """Run one phase; a server error ends that phase, not the run."""
    def run(a, res, st):
        try:
            fn(a, res, st)
        except (ImapError, OSError) as e:
            msg = str(e)[:300]
            print(f"{fn.__name__}: ERROR {msg}", flush=True)
            res["errors"].append(f"{fn.__name__}: {msg}")
    run.__name__ = fn.__name__
    return run


# --------------------------------------------------------------------------
# phases
# --------------------------------------------------------------------------
def mbox(a):
    return quote(a.mailbox)


@guarded
def ph_login(a, res, st):
    ln = Line(a, "login", "connect+LOGIN+LOGOUT")
    i = 0
    while ln.more(i, a.repeat_login, 10):
        def once():
            c = Client(a.host, a.port, a.op_timeout)
            c.cmd(b"LOGIN " + quote(a.user) + b" " + quote(a.password))
            c.cmd("LOGOUT")
            c.close()
        ln.time(once)
        i += 1
    ln.done(res)


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DATE_HDR = re.compile(rb"^Date:[ \t]*([^\r\n]+)", re.M | re.I)


def internal_date(path, idx):
    """The message's Date: as an IMAP date-time (what a migration tool sets
    as INTERNALDATE), so that ARRIVAL order is the same on every server."""
    with open(path, "rb") as f:
        head = f.read(16384)
    m = DATE_HDR.search(head.split(b"\r\n\r\n", 1)[0])
    try:
        d = email.utils.parsedate_to_datetime(m.group(1).decode("ascii", "replace"))
        off = int(d.utcoffset().total_seconds() // 60) if d.utcoffset() is not None else 0
    except (AttributeError, TypeError, ValueError):
        return None
    sign = "+" if off >= 0 else "-"
    return (f'"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year:04d} {d.hour:02d}:{d.minute:02d}:{d.second:02d} '
            f'{sign}{abs(off) // 60:02d}{abs(off) % 60:02d}"').encode()


@guarded
def ph_append(a, res, st):
    files = sorted(glob.glob(os.path.join(a.corpus, "*.eml")))[: a.n]
    if not files:
        raise SystemExit(f"no *.eml in {a.corpus}")
    c = connect(a)
    c.cmd(b"DELETE " + mbox(a), ok_only=False)
    c.cmd(b"CREATE " + mbox(a))
    uid2idx = {}
    dates = [internal_date(p, i) for i, p in enumerate(files, 1)]
    ln = Line(a, "append", f"APPEND {len(files)} msgs (1 connection)")
    nbytes = 0
    t_end = time.monotonic() + a.append_budget
    t0 = time.perf_counter()
    for idx, path in enumerate(files, 1):
        with open(path, "rb") as f:
            raw = f.read()
        q = b"APPEND " + mbox(a) + (b" " + dates[idx - 1] if dates[idx - 1] else b"")
        _, tagged = ln.time(lambda: c.cmd(q, literal=raw))
        nbytes += len(raw)
        m = re.search(rb"\[APPENDUID \d+ (\d+)\]", tagged)
        if m:
            uid2idx[int(m.group(1))] = idx
        if time.monotonic() > t_end:
            ln.error = f"stopped after {a.append_budget:.0f}s at {idx} messages"
            break
    total = time.perf_counter() - t0
    if not uid2idx:  # no UIDPLUS: assume UIDs in append order
        unt, _ = c.cmd(b"SELECT " + mbox(a))
        unt, _ = c.cmd("UID SEARCH ALL")
        uid2idx = {u: i for i, u in enumerate(sorted(numbers_after(unt, b"SEARCH")), 1)}
    c.logout()
    ln.extra.update({"bytes": nbytes, "MB_per_s": round(nbytes / total / 1e6, 2),
                     "appended": len(ln.lat)})
    ln.done(res, total, f"{nbytes / total / 1e6:.1f} MB/s, {nbytes / 1e6:.0f} MB")
    st["uid2idx"] = uid2idx
    res["appended"] = len(ln.lat)


def ph_settle(a, res, st):
    """Let the server finish what a bulk import leaves behind before the
    other lines run: wait at least --settle-min seconds (PostgreSQL's
    autovacuum launcher wakes every 60 s) and until the server's processes
    have been idle (under 3% of a core) for 3 s, at most --settle-max.
    The time and server CPU spent are reported apart instead of being
    charged to whatever line runs next."""
    if not a.cpu_roots:
        return
    t0 = time.monotonic()
    c0 = prev = tree_cpu(a.cpu_roots)
    quiet = 0
    while time.monotonic() - t0 < a.settle_max:
        if quiet >= 3 and time.monotonic() - t0 >= a.settle_min:
            break
        time.sleep(1.0)
        c = tree_cpu(a.cpu_roots)
        quiet = quiet + 1 if c - prev < 0.03 else 0
        prev = c
    s = {"wall_s": round(time.monotonic() - t0, 1), "server_cpu_s": round(prev - c0, 2), "quiet": quiet >= 3,
         "min_s": a.settle_min}
    res["settle"] = s
    print(f"{'settle: wait after APPEND':<44} {s['wall_s']}s wall, {s['server_cpu_s']}s server CPU"
          + ("" if s["quiet"] else " (still busy: gave up)"), flush=True)


def ensure_uidmap(a, st, c):
    if st.get("uid2idx"):
        return
    unt, _ = c.cmd("UID SEARCH ALL")
    st["uid2idx"] = {u: i for i, u in enumerate(sorted(numbers_after(unt, b"SEARCH")), 1)}


@guarded
def ph_select(a, res, st):
    c = connect(a)
    first = Line(a, "select_first", "SELECT (first after APPEND)")
    unt, _ = first.time(lambda: c.cmd(b"SELECT " + mbox(a)))
    exists = [int(m.group(1)) for m in (re.match(rb"\* (\d+) EXISTS", r) for r in unt) if m]
    first.extra["exists"] = exists[-1] if exists else None
    first.done(res, show=f"exists={first.extra['exists']}")
    ln = Line(a, "select", "SELECT (again)")
    i = 0
    while ln.more(i, a.repeat * 2):
        ln.time(lambda: c.cmd(b"SELECT " + mbox(a)))
        i += 1
    ln.done(res)
    res["checks"]["exists"] = first.extra["exists"]
    c.logout()


@guarded
def ph_fetch_all(a, res, st):
    c = connect(a)
    c.cmd(b"SELECT " + mbox(a))
    q = b"FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)"
    first = Line(a, "fetch_all_first", "FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE) first")
    unt, _ = first.time(lambda: c.cmd(q))
    n = count_fetch(unt)
    first.extra.update({"messages": n, "bytes": fetch_bytes(unt)})
    first.done(res, show=f"{n} msgs, {fetch_bytes(unt) / 1e6:.1f} MB")
    ln = Line(a, "fetch_all", "FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)")
    i = 0
    while ln.more(i, a.repeat):
        unt, _ = ln.time(lambda: c.cmd(q))
        i += 1
    ln.extra["messages"] = n
    ln.extra["msgs_per_s"] = round(n / pct(ln.lat, 50), 1) if ln.lat else None
    ln.done(res, show=f"{ln.extra['msgs_per_s']} msgs/s")
    res["checks"]["fetch_all_count"] = n
    c.logout()


@guarded
def ph_fetch_body(a, res, st):
    c = connect(a)
    c.cmd(b"SELECT " + mbox(a))
    ensure_uidmap(a, st, c)
    uids = sorted(st["uid2idx"])
    rng = random.Random(1)
    ln = Line(a, "fetch_body", "UID FETCH <1 uid> BODY.PEEK[]")
    nbytes, i = 0, 0
    while ln.more(i, a.sample):
        unt, _ = ln.time(lambda: c.cmd(b"UID FETCH %d (BODY.PEEK[])" % rng.choice(uids)))
        nbytes += fetch_bytes(unt)
        i += 1
    ln.extra["MB_per_s"] = round(nbytes / sum(ln.lat) / 1e6, 2)
    ln.done(res, show=f"{ln.extra['MB_per_s']} MB/s")
    ln = Line(a, "fetch_body50", "UID FETCH <50 uids> BODY.PEEK[]")
    nbytes, i, nmsg = 0, 0, 0
    while ln.more(i, max(5, a.sample // 20)):
        lo = rng.randrange(0, max(1, len(uids) - 50))
        unt, _ = ln.time(lambda: c.cmd(b"UID FETCH %d:%d (BODY.PEEK[])" % (uids[lo], uids[min(len(uids) - 1, lo + 49)])))
        nbytes += fetch_bytes(unt)
        nmsg += count_fetch(unt)
        i += 1
    ln.extra["MB_per_s"] = round(nbytes / sum(ln.lat) / 1e6, 2)
    ln.extra["msgs_per_s"] = round(nmsg / sum(ln.lat), 1)
    ln.done(res, show=f"{ln.extra['msgs_per_s']} msgs/s, {ln.extra['MB_per_s']} MB/s")
    c.logout()


SEARCHES = [
    ("search_text_rare", "UID SEARCH TEXT zebracorn", "TEXT zebracorn", "zebracorn"),
    ("search_text_common", "UID SEARCH TEXT marmotlantern", "TEXT marmotlantern", "marmotlantern"),
    ("search_body", "UID SEARCH BODY quokkaflux", "BODY quokkaflux", "quokkaflux"),
    ("search_subject", "UID SEARCH SUBJECT invoice", "SUBJECT invoice", None),
    ("search_from", "UID SEARCH FROM example.org", "FROM example.org", None),
    ("search_header", "UID SEARCH HEADER List-Id dev", "HEADER List-Id dev", None),
    ("search_since", "UID SEARCH SINCE 1-Jan-2024", "SINCE 1-Jan-2024", None),
    ("search_larger", "UID SEARCH LARGER 100000", "LARGER 100000", None),
    ("search_unseen", "UID SEARCH UNSEEN", "UNSEEN", None),
]


@guarded
def ph_search(a, res, st):
    c = connect(a)
    c.cmd(b"SELECT " + mbox(a))
    ensure_uidmap(a, st, c)
    m = st["uid2idx"]
    for key, title, crit, token in SEARCHES:
        ln = Line(a, key, title)
        hits = None
        i = 0
        try:
            while ln.more(i, a.repeat):
                unt, _ = ln.time(lambda: c.cmd("UID SEARCH " + crit))
                hits = sorted(m.get(u, -u) for u in numbers_after(unt, b"SEARCH"))
                i += 1
        except ImapError as e:
            ln.error = str(e)[:200]
        chk = {"hits": None if hits is None else len(hits), "digest": digest(hits)}
        res["results"][key] = hits
        if token and a.manifest:
            chk["expected"] = a.manifest["token_messages"].get(token)
        ln.extra["hits"] = chk["hits"]
        res["checks"][key] = chk
        ln.done(res, show=f"hits={chk['hits']}" + (f" (expected {chk['expected']})" if "expected" in chk else ""))
    c.logout()


SORTS = [
    ("sort_date", "UID SORT (DATE) ALL", "(DATE) UTF-8 ALL"),
    ("sort_arrival_rev", "UID SORT (REVERSE ARRIVAL) ALL", "(REVERSE ARRIVAL) UTF-8 ALL"),
    ("sort_subject", "UID SORT (SUBJECT) ALL", "(SUBJECT) UTF-8 ALL"),
    ("sort_from", "UID SORT (FROM) ALL", "(FROM) UTF-8 ALL"),
    ("sort_size", "UID SORT (SIZE) ALL", "(SIZE) UTF-8 ALL"),
    ("sort_date_subject", "UID SORT (DATE) SUBJECT invoice", "(DATE) UTF-8 SUBJECT invoice"),
]
THREADS = [
    ("thread_references", "UID THREAD REFERENCES ALL", "REFERENCES UTF-8 ALL"),
    ("thread_orderedsubject", "UID THREAD ORDEREDSUBJECT ALL", "ORDEREDSUBJECT UTF-8 ALL"),
]


@guarded
def ph_sort(a, res, st):
    c = connect(a)
    c.cmd(b"SELECT " + mbox(a))
    ensure_uidmap(a, st, c)
    m = st["uid2idx"]
    for key, title, args in SORTS:
        ln = Line(a, key, title)
        order = None
        i = 0
        try:
            while ln.more(i, a.repeat):
                unt, _ = ln.time(lambda: c.cmd("UID SORT " + args))
                order = [m.get(u, -u) for u in numbers_after(unt, b"SORT")]
                i += 1
        except ImapError as e:
            ln.error = str(e)[:200]
        res["checks"][key] = {"hits": None if order is None else len(order), "digest": digest(order)}
        res["results"][key] = order
        ln.done(res, show=f"n={0 if order is None else len(order)}")
    c.logout()


@guarded
def ph_thread(a, res, st):
    c = connect(a)
    c.cmd(b"SELECT " + mbox(a))
    ensure_uidmap(a, st, c)
    for key, title, args in THREADS:
        ln = Line(a, key, title)
        canon = None
        i = 0
        try:
            while ln.more(i, a.repeat):
                unt, _ = ln.time(lambda: c.cmd("UID THREAD " + args))
                canon = thread_canonical(unt, st["uid2idx"])
                i += 1
        except ImapError as e:
            ln.error = str(e)[:200]
        res["checks"][key] = {"hits": None if canon is None else len(canon), "digest": digest(canon)}
        res["results"][key] = canon
        ln.done(res, show=f"{len(canon or '')} chars")
    c.logout()


@guarded
def ph_store(a, res, st):
    c = connect(a)
    c.cmd(b"SELECT " + mbox(a))
    ensure_uidmap(a, st, c)
    uids = sorted(st["uid2idx"])
    rng = random.Random(2)
    ln = Line(a, "store_single", "UID STORE <1 uid> +FLAGS (\\Flagged)")
    i = 0
    while ln.more(i, a.sample):
        ln.time(lambda: c.cmd(b"UID STORE %d +FLAGS (\\Flagged)" % rng.choice(uids)))
        i += 1
    ln.done(res)
    # +FLAGS then -FLAGS, alternately: every timed STORE changes every message
    lines = {op: Line(a, f"store_all_{'add' if op == '+' else 'remove'}", f"STORE 1:* {op}FLAGS (\\Seen)",
                      cpu_each=True) for op in ("+", "-")}
    n, i = 0, 0
    while lines["+"].more(i, a.repeat_bulk, 1):
        for op, ln in lines.items():
            unt, _ = ln.time(lambda: c.cmd(f"STORE 1:* {op}FLAGS (\\Seen)"))
            n = count_fetch(unt)
        i += 1
    for ln in lines.values():
        ln.extra["fetch_responses"] = n
        ln.done(res, show=f"{n} FETCH responses")
    c.logout()


# ---------------------------------------------------------------- the mix
SMALL_MSG = (b"From: Load Gen <load@example.com>\r\nTo: bench@example.com\r\n"
             b"Subject: concurrent append %d\r\nMessage-ID: <mix%d.%d@example.com>\r\n"
             b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
             + b"hello world, this is a short body line.\r\n" * 30)
MIX = [("fetch_range_env", 35), ("fetch_body", 20), ("store_flag", 15), ("noop", 10),
       ("status", 5), ("search_subject", 5), ("append_small", 5), ("fetch_bodystructure", 5)]
SUBJECT_WORDS = [b"invoice", b"lunch", b"report", b"meeting", b"budget", b"security", b"release", b"design"]


def mix_client(a, cid, uids, start_at, end_at, out, errors):
    rng = random.Random(1000 + cid)
    names = [o for o, w in MIX for _ in range(w)]
    lat = {o: [] for o, _ in MIX}
    lat["login_select"] = []
    try:
        t = time.perf_counter()
        c = connect(a)
        unt, _ = c.cmd(b"SELECT " + mbox(a))
        lat["login_select"].append(time.perf_counter() - t)
    except (ImapError, OSError) as e:
        errors.append(f"client {cid} connect: {e}"[:300])
        out.append(lat)
        return
    exists = len(uids)
    box = mbox(a)
    while time.time() < start_at:
        time.sleep(0.005)
    n = 0
    while time.time() < end_at:
        op = rng.choice(names)
        if op == "fetch_range_env":
            lo = rng.randint(1, max(1, exists - 19))
            q, lit = b"FETCH %d:%d (UID FLAGS ENVELOPE)" % (lo, lo + 19), None
        elif op == "fetch_body":
            q, lit = b"UID FETCH %d (BODY.PEEK[])" % rng.choice(uids), None
        elif op == "store_flag":
            q, lit = b"UID STORE %d %sFLAGS (\\Flagged)" % (rng.choice(uids), rng.choice([b"+", b"-"])), None
        elif op == "noop":
            q, lit = b"NOOP", None
        elif op == "status":
            q, lit = b"STATUS INBOX (MESSAGES UNSEEN UIDNEXT)", None
        elif op == "search_subject":
            q, lit = b"UID SEARCH SUBJECT " + rng.choice(SUBJECT_WORDS), None
        elif op == "append_small":
            q, lit = b"APPEND " + box, SMALL_MSG % (n, cid, n)
        else:
            q, lit = b"UID FETCH %d (BODYSTRUCTURE)" % rng.choice(uids), None
        t = time.perf_counter()
        try:
            c.cmd(q, literal=lit)
            lat[op].append(time.perf_counter() - t)
        except ImapError as e:
            errors.append(f"client {cid} {op}: {e}"[:300])
        except OSError as e:
            errors.append(f"client {cid} {op}: {e}"[:300])
            break
        n += 1
    c.logout()
    out.append(lat)


def mix_proc(a, ids, uids, start_at, end_at, q):
    out, errors = [], []
    ths = [threading.Thread(target=mix_client, args=(a, cid, uids, start_at, end_at, out, errors))
           for cid in ids]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    q.put((out, errors))


@guarded
def ph_mix(a, res, st):
    c = connect(a)
    c.cmd(b"SELECT " + mbox(a))
    ensure_uidmap(a, st, c)
    c.logout()
    uids = sorted(st["uid2idx"])
    procs = max(1, min(a.procs, a.clients))
    ids = [list(range(p, a.clients, procs)) for p in range(procs)]
    start_at = time.time() + max(3.0, a.clients * 0.06)
    end_at = start_at + a.duration
    q = mp.Queue()
    ps = [mp.Process(target=mix_proc, args=(a, ids[p], uids, start_at, end_at, q), daemon=True)
          for p in range(procs)]
    cpu0 = None
    for p in ps:
        p.start()
    while time.time() < start_at:
        time.sleep(0.01)
    cpu0 = tree_cpu(a.cpu_roots)
    outs, errors = [], []
    for _ in ps:
        o, e = q.get(timeout=a.duration + a.op_timeout + 60)
        outs += o
        errors += e
    cpu1 = tree_cpu(a.cpu_roots)
    for p in ps:
        p.join()
    merged = {}
    for lat in outs:
        for k, v in lat.items():
            merged.setdefault(k, []).extend(v)
    all_lat = [x for k, v in merged.items() if k != "login_select" for x in v]
    s = summary(all_lat, a.duration)
    s["title"] = f"mix: {a.clients} clients, {a.duration:.0f}s, all ops"
    s["clients"] = a.clients
    s["errors"] = len(errors)
    s["error_samples"] = errors[:5]
    if cpu0 is not None:
        s["server_cpu_s"] = round(cpu1 - cpu0, 3)
        s["server_cpu_ms_per_op"] = round((cpu1 - cpu0) * 1000 / max(1, len(all_lat)), 3)
        s["server_cpu_util"] = round((cpu1 - cpu0) / a.duration, 2)
    res["lines"]["mix"] = s
    print(f"{s['title']:<44} n={s['n']:<5} ops/s={s['ops_per_s'] or 0:>9.1f} p50={s['p50_ms'] or 0:>9.2f} "
          f"p99={s['p99_ms'] or 0:>9.2f} ms errors={len(errors)}", flush=True)
    for k in ["login_select"] + [o for o, _ in MIX]:
        v = merged.get(k, [])
        ps_ = summary(v, a.duration)
        ps_["title"] = f"  mix: {k}"
        if k == "login_select":
            ps_["ops_per_s"] = None
        res["lines"]["mix_" + k] = ps_
        print(f"{ps_['title']:<44} n={ps_['n']:<5} ops/s={ps_['ops_per_s'] or 0:>9.1f} "
              f"p50={ps_['p50_ms'] or 0:>9.2f} p99={ps_['p99_ms'] or 0:>9.2f} ms", flush=True)
    for e in errors[:5]:
        print("  error:", e, flush=True)


PHASES = {"login": ph_login, "append": ph_append, "settle": ph_settle, "select": ph_select, "fetch_all": ph_fetch_all,
          "fetch_body": ph_fetch_body, "search": ph_search, "sort": ph_sort, "thread": ph_thread,
          "store": ph_store, "mix": ph_mix}


def cmd_run(a):
    if not (a.host.startswith("127.") or a.host in ("localhost", "::1")):
        sys.exit("refusing a non-loopback host")
    a.cpu_roots = set(int(p) for p in a.cpu_pids.split(",") if p.strip()) if a.cpu_pids else set()
    a.manifest = None
    if a.corpus and os.path.exists(os.path.join(a.corpus, "manifest.json")):
        with open(os.path.join(a.corpus, "manifest.json")) as f:
            a.manifest = json.load(f)
    res = {"label": a.label, "host": a.host, "port": a.port, "n": a.n, "mailbox": a.mailbox,
           "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
           "lines": {}, "checks": {}, "results": {}, "errors": []}
    print(f"# imap_load {a.label} {a.host}:{a.port} user={a.user} mailbox={a.mailbox}", flush=True)
    st = {}
    t0 = time.monotonic()
    try:
        for ph in a.phases.split(","):
            ph = ph.strip()
            if ph not in PHASES:
                sys.exit(f"unknown phase {ph}")
            PHASES[ph](a, res, st)
    finally:
        res["elapsed_s"] = round(time.monotonic() - t0, 1)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)


# --------------------------------------------------------------------------
# compare: the table
# --------------------------------------------------------------------------
ORDER = (["login", "append", "select_first", "select", "fetch_all_first", "fetch_all", "fetch_body",
          "fetch_body50"] + [k for k, *_ in SEARCHES] + [k for k, *_ in SORTS] + [k for k, *_ in THREADS]
         + ["store_single", "store_all_add", "store_all_remove", "mix"]
         + ["mix_" + o for o, _ in MIX])


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float) and v >= 1000:
        return f"{v:.0f}"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def result_mark(key, ca, cb):
    x, y = ca.get(key), cb.get(key)
    if not x or not y:
        return ""
    s = "same" if x.get("digest") == y.get("digest") else f"DIFF {x.get('hits')}/{y.get('hits')}"
    exp = x.get("expected")
    if exp is not None:
        s += f", exp {exp}: " + ("ok" if x.get("hits") == exp else f"A={x.get('hits')}") + \
             ("" if y.get("hits") == exp else f" B={y.get('hits')}")
    return s


def load(path):
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"label": "", "lines": {}, "checks": {}, "results": {}, "errors": [f"no results ({path})"]}


def first_diff(x, y):
    """Where two result lists/strings part, with a little context."""
    if x is None or y is None:
        return "missing"
    n = min(len(x), len(y))
    k = next((i for i in range(n) if x[i] != y[i]), n)
    if k == n and len(x) == len(y):
        return "same"
    if isinstance(x, str):
        return f"at char {k}: ...{x[max(0, k - 30):k + 30]!r} vs ...{y[max(0, k - 30):k + 30]!r}"
    return f"at position {k} of {len(x)}/{len(y)}: {x[max(0, k - 2):k + 4]} vs {y[max(0, k - 2):k + 4]}"


def cmd_compare(a):
    A, B = load(a.a), load(a.b)
    la, lb = A["lines"], B["lines"]
    na, nb = A["label"] or "A", B["label"] or "B"
    rows, slower = [], []
    for key in ORDER + [k for k in la if k not in ORDER]:
        if key not in la and key not in lb:
            continue
        x, y = la.get(key, {}), lb.get(key, {})
        title = x.get("title") or y.get("title") or key
        per_op_mix = key.startswith("mix_")
        ra, rb = x.get("ops_per_s"), y.get("ops_per_s")
        ratio = round(ra / rb, 2) if ra and rb and not per_op_mix else None
        pa, pb = x.get("p50_ms"), y.get("p50_ms")
        lat_ratio = round(pb / pa, 2) if pa and pb else None
        err = "; ".join(e for e in (x.get("error"), y.get("error")) if e)
        row = {"key": key, "title": title, "a_ops": ra, "a_p50": pa, "a_p99": x.get("p99_ms"),
               "b_ops": rb, "b_p50": pb, "b_p99": y.get("p99_ms"), "ratio": ratio, "p50_ratio": lat_ratio,
               "a_cpu": x.get("server_cpu_ms_per_op"), "b_cpu": y.get("server_cpu_ms_per_op"),
               "result": result_mark(key, A["checks"], B["checks"]), "error": err}
        rows.append(row)
        if (ratio is not None and ratio < 1.0) or (per_op_mix and lat_ratio is not None and lat_ratio < 1.0):
            slower.append(key)
    hdr = (f"{'line':<44} | {na + ' ops/s':>14} {'p50':>8} {'p99':>8} | {nb + ' ops/s':>14} {'p50':>8} "
           f"{'p99':>8} | {'ops x':>6} {'p50 x':>6} | {'cpu/op ms':>13} | result")
    lines = [hdr, "-" * len(hdr)]
    for r in rows:
        flag = "<" if (r["ratio"] if r["ratio"] is not None else r["p50_ratio"] or 1) < 1.0 else " "
        cpu = f"{fmt(r['a_cpu'], 2)}/{fmt(r['b_cpu'], 2)}" if r["a_cpu"] is not None or r["b_cpu"] is not None else "-"
        lines.append(f"{r['title'][:44]:<44} | {fmt(r['a_ops']):>14} {fmt(r['a_p50'], 2):>8} {fmt(r['a_p99'], 2):>8} | "
                     f"{fmt(r['b_ops']):>14} {fmt(r['b_p50'], 2):>8} {fmt(r['b_p99'], 2):>8} | "
                     f"{fmt(r['ratio'], 2):>6} {fmt(r['p50_ratio'], 2):>6}{flag}| {cpu:>13} | {r['result']}"
                     + (f" ERROR: {r['error'][:120]}" if r["error"] else ""))
    lines.append("")
    lines.append(f"ops x = {na} ops/s / {nb} ops/s; p50 x = {nb} p50 / {na} p50 (both >= 1.00: {na} at least as "
                 f"fast); '<' marks a line where {na} is slower. p50/p99 in ms. cpu/op = server CPU ms per "
                 f"operation, {na} including its PostgreSQL / {nb} including all its processes. Mix per-op "
                 f"lines: ops/s is that op's share of the mix, compare latency.")
    lines.append(f"lines where {na} is slower: {len(slower)} of {len(rows)}" + (": " + ", ".join(slower) if slower else ""))
    lat_only = [r["key"] for r in rows if r["key"] not in slower and r["p50_ratio"] is not None and r["p50_ratio"] < 1.0]
    if lat_only:
        lines.append(f"lines where {na}'s throughput is not lower but its p50 is higher: " + ", ".join(lat_only))
    for lbl, R in ((na, A), (nb, B)):
        if R.get("settle"):
            st_ = R["settle"]
            lines.append(f"after APPEND, {lbl}: waited {st_['wall_s']} s (at least {st_.get('min_s')} s, then until "
                         f"idle), {st_['server_cpu_s']} s of server CPU in that time"
                         + ("" if st_["quiet"] else " (still busy: gave up waiting)"))
    diffs = []
    for key in ORDER:
        if key in A.get("results", {}) or key in B.get("results", {}):
            d = first_diff(A.get("results", {}).get(key), B.get("results", {}).get(key))
            if d != "same":
                diffs.append(f"  {key}: {d}")
    if diffs:
        lines.append(f"results that differ ({na} vs {nb}, corpus message numbers):")
        lines += diffs
    idle, idle_b = load(a.idle) if a.idle else None, load(a.idle_b) if a.idle_b else None
    if idle and "target" in idle:
        lines.append(f"IDLE {na}: " + idle_summary(idle))
    if idle_b and "target" in idle_b:
        lines.append(f"IDLE {nb}: " + idle_summary(idle_b))
    for lbl, R in ((na, A), (nb, B)):
        for e in R.get("errors", []):
            lines.append(f"{lbl} error: {e}")
    print("\n".join(lines))
    if a.text:
        with open(a.text, "w") as f:
            f.write("\n".join(lines) + "\n")
    out = {"a": na, "b": nb, "rows": rows, "slower": slower, "settle": [A.get("settle"), B.get("settle")], "result_diffs": diffs, "idle": idle,
           "idle_b": idle_b, "a_errors": A.get("errors", []), "b_errors": B.get("errors", [])}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(f"| line | {na} ops/s | p50 ms | p99 ms | {nb} ops/s | p50 ms | p99 ms | ops ratio | "
                    f"p50 ratio | server CPU ms/op ({na} / {nb}) | results |\n"
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
            for r in rows:
                def mark(v):
                    return f"**{fmt(v, 2)}**" if v is not None and v < 1.0 else fmt(v, 2)
                cpu = f"{fmt(r['a_cpu'], 2)} / {fmt(r['b_cpu'], 2)}"
                res_ = r["result"] + (f" error: {r['error'][:80]}" if r["error"] else "")
                f.write(f"| {r['title'].replace('|', '/')} | {fmt(r['a_ops'])} | {fmt(r['a_p50'], 2)} | "
                        f"{fmt(r['a_p99'], 2)} | {fmt(r['b_ops'])} | {fmt(r['b_p50'], 2)} | {fmt(r['b_p99'], 2)} | "
                        f"{mark(r['ratio'])} | {mark(r['p50_ratio'])} | {cpu} | {res_} |\n")


def idle_summary(d):
    s = (f"{d.get('idling', 0)}/{d.get('target')} connections idling; main process RSS "
         f"{d.get('server_rss_mib')} MiB (baseline {d.get('server_rss_base_mib')} MiB, "
         f"{d.get('server_kib_per_conn')} KiB per connection)")
    if d.get("mem_idle", {}).get("server_tree_processes", 0) > 1:
        s += (f"; all {d['mem_idle']['server_tree_processes']} server processes PSS "
              f"{d.get('server_tree_pss_mib')} MiB ({d.get('server_tree_kib_per_conn')} KiB per connection)")
    if d.get("pg_pss_mib") is not None:
        s += f"; embedded PostgreSQL {d.get('pg_processes')} processes, PSS {d.get('pg_pss_mib')} MiB"
    if d.get("wake"):
        w = d["wake"]
        s += (f"; APPEND woke {w.get('woken')}/{w.get('expected')} watchers, p50 {w.get('p50_ms')} ms, "
              f"p99 {w.get('p99_ms')} ms, max {w.get('max_ms')} ms; spurious wakes {w.get('spurious')}")
    s += "; under 1 GiB: " + ("yes" if d.get("under_1gib") else "NO")
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="drive one server")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--password", required=True)
    r.add_argument("--corpus", required=True, help="directory of *.eml from gen_corpus.py")
    r.add_argument("--n", type=int, default=10000, help="messages to append")
    r.add_argument("--mailbox", default="bench")
    r.add_argument("--label", default="")
    r.add_argument("--phases", default=",".join(PHASES))
    r.add_argument("--repeat", type=int, default=5, help="max repetitions of a whole-mailbox command")
    r.add_argument("--repeat-bulk", type=int, default=3)
    r.add_argument("--repeat-login", type=int, default=100)
    r.add_argument("--sample", type=int, default=1000, help="max repetitions of a one-message command")
    r.add_argument("--line-budget", type=float, default=15.0,
                   help="seconds after which a line stops repeating (once it has its minimum)")
    r.add_argument("--append-budget", type=float, default=300.0)
    r.add_argument("--settle-min", type=float, default=65.0,
                   help="shortest wait after APPEND (0: only wait until idle)")
    r.add_argument("--settle-max", type=float, default=150.0,
                   help="longest wait for the server to go idle after APPEND")
    r.add_argument("--clients", type=int, default=50)
    r.add_argument("--procs", type=int, default=2)
    r.add_argument("--duration", type=float, default=30.0)
    r.add_argument("--op-timeout", type=float, default=120.0)
    r.add_argument("--cpu-pids", default="", help="comma-separated root PIDs of the server's processes")
    r.add_argument("--json")
    c = sub.add_parser("compare", help="table of two run JSONs")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--idle", help="idle_hold.py JSON of A")
    c.add_argument("--idle-b", help="idle_hold.py JSON of B")
    c.add_argument("--text", help="write the table here too")
    c.add_argument("--markdown")
    c.add_argument("--json")
    a = ap.parse_args()
    if a.cmd == "run":
        # a TERM (the caller's time limit) still writes the JSON of what ran
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        socket.setdefaulttimeout(a.op_timeout)
        cmd_run(a)
    else:
        cmd_compare(a)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Hold N concurrent IMAP IDLE connections from one process; measure the
server's memory while they idle; check that an APPEND wakes the watchers.

    idle_hold.py --port P --user 'bob{}@bench.test' --users 10 --password PW \\
                 --conns 10000 --server-pid PID [--pg-data DIR] [--json OUT]

Connection i logs in as --user with {} replaced by i % --users (no {}: one
user for all), SELECTs INBOX and sends IDLE; at most --batch connections are
in that handshake at a time (non-blocking sockets, one selector, TCP_NODELAY).
Once all are idling (or --connect-budget runs out) it waits --settle seconds
and reads the server's memory:

  server   VmRSS/VmHWM/RssAnon/Threads/open fds of --server-pid, and the PSS
           of it and its descendants (smaps_rollup); memory per connection =
           (RSS now - RSS before the first connection) / connections
  pg       with --pg-data: the embedded PostgreSQL (postmaster.pid in that
           directory) and its backends, counted apart: the limit in the
           target is the daemon's own memory

Then another connection APPENDs a message to the INBOX of the first user;
every IDLE connection of that user must receive "* N EXISTS" within
--wake-timeout (latency from sending the APPEND), and no connection of
another user may (spurious). A sample then sends DONE and must get the
tagged OK. Bounded by --max-seconds; stdlib only.
"""
import argparse
import atexit
import errno
import json
import os
import re
import resource
import selectors
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imap_load import Client, quote  # noqa: E402

EXISTS = re.compile(rb"^\* \d+ EXISTS\r?$", re.M)

CONNECTING, GREETING, LOGIN, SELECT, IDLE_WAIT, IDLING, DONE_WAIT, FINISHED, FAILED = range(9)


class Conn:
    __slots__ = ("i", "sock", "state", "buf", "user", "t_start", "t_login", "t_exists", "got_exists")

    def __init__(self, i, user):
        self.i = i
        self.user = user
        self.sock = None
        self.state = CONNECTING
        self.buf = b""
        self.t_start = 0.0
        self.t_login = 0.0
        self.t_exists = None
        self.got_exists = False


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "VmSize"):
                    out[k + "_kib"] = int(v.split()[0])
                elif k == "Threads":
                    out["threads"] = int(v)
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid):
    return proc_status(pid).get("VmRSS_kib", 0)


def descendants(root):
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    st = f.read()
                parent[int(d)] = int(st[st.rfind(b")") + 2:].split()[1])
            except OSError:
                pass
    out = []
    for pid in parent:
        p = pid
        for _ in range(64):
            if p == root:
                out.append(pid)
                break
            p = parent.get(p, 0)
            if p <= 1:
                break
    return out


def memory(a):
    m = {"server": proc_status(a.server_pid)}
    tree = descendants(a.server_pid)
    m["server_tree_processes"] = len(tree)
    m["server_tree_pss_kib"] = sum(pss_kib(p) for p in tree)
    m["server_tree_rss_kib"] = sum(rss_kib(p) for p in tree)
    if a.pg_data:
        try:
            with open(os.path.join(a.pg_data, "postmaster.pid")) as f:
                pg = int(f.readline())
            pgs = descendants(pg)
            m["pg_processes"] = len(pgs)
            m["pg_pss_kib"] = sum(pss_kib(p) for p in pgs)
            m["pg_rss_kib"] = sum(rss_kib(p) for p in pgs)
        except (OSError, ValueError):
            pass
    return m


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True, help="login name; {} is replaced by i %% --users")
    ap.add_argument("--users", type=int, default=1)
    ap.add_argument("--password", required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=200, help="connections in the handshake at once")
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--pg-data", help="embedded PostgreSQL data directory (has postmaster.pid)")
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--wake-timeout", type=float, default=30.0)
    ap.add_argument("--done-sample", type=int, default=200)
    ap.add_argument("--connect-budget", type=float, default=420.0)
    ap.add_argument("--max-seconds", type=float, default=540.0)
    ap.add_argument("--limit-mib", type=float, default=1024.0)
    ap.add_argument("--label", default="")
    ap.add_argument("--json")
    a = ap.parse_args()
    if not (a.host.startswith("127.") or a.host == "::1"):
        sys.exit("refusing a non-loopback host")
    t_begin = time.monotonic()
    deadline = t_begin + a.max_seconds
    nofile = raise_nofile(a.conns + 64)
    target = a.conns
    if nofile < a.conns + 64:
        target = max(1, nofile - 64)
        print(f"idle_hold: open-file limit {nofile}: holding {target} connections, not {a.conns}",
              file=sys.stderr, flush=True)

    def user_of(i):
        return a.user.replace("{}", str(i % a.users)) if "{}" in a.user else a.user

    res = {"label": a.label, "target": a.conns, "attempted": target, "users": a.users,
           "server_pid": a.server_pid, "limit_mib": a.limit_mib}
    if a.json:
        def dump():
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
        atexit.register(dump)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # reset the peak RSS (VmHWM) so that it covers this test only
    try:
        with open(f"/proc/{a.server_pid}/clear_refs", "w") as f:
            f.write("5")
        res["hwm_reset"] = True
    except OSError:
        res["hwm_reset"] = False
    res["mem_before"] = memory(a)
    base_rss = res["mem_before"]["server"].get("VmRSS_kib", 0)
    base_tree = res["mem_before"]["server_tree_pss_kib"]
    print(f"idle_hold {a.label}: server pid {a.server_pid} RSS before {base_rss / 1024:.1f} MiB; "
          f"opening {target} IDLE connections ({a.users} user(s), batch {a.batch})", flush=True)

    sel = selectors.DefaultSelector()
    conns = [Conn(i, user_of(i)) for i in range(target)]
    login_lat = []
    failures = []
    next_i = 0
    in_handshake = 0
    idling = 0
    t_conn0 = time.monotonic()
    connect_deadline = min(deadline, t_conn0 + a.connect_budget)
    last_report = t_conn0

    def fail(c, why):
        nonlocal in_handshake
        if c.state == FAILED:
            return
        if c.state in (CONNECTING, GREETING, LOGIN, SELECT, IDLE_WAIT):
            in_handshake -= 1
        c.state = FAILED
        if len(failures) < 20:
            failures.append(f"conn {c.i}: {why}")
        else:
            failures.append("")
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def send(c, data):
        try:
            c.sock.send(data)  # small commands: fit in an empty socket buffer
        except OSError as e:
            fail(c, f"send: {e}")

    def start(c):
        nonlocal in_handshake
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c.sock = s
        c.t_start = time.monotonic()
        in_handshake += 1
        err = s.connect_ex((a.host, a.port))
        if err not in (0, errno.EINPROGRESS):
            fail(c, f"connect: {os.strerror(err)}")
            return
        c.state = CONNECTING
        sel.register(s, selectors.EVENT_WRITE, c)

    def on_line(c, line):
        nonlocal in_handshake, idling
        if c.state == GREETING:
            if line.startswith(b"* OK"):
                c.state = LOGIN
                c.t_login = time.monotonic()
                send(c, b"a LOGIN " + quote(c.user) + b" " + quote(a.password) + b"\r\n")
            else:
                fail(c, f"greeting {line[:80]!r}")
        elif c.state == LOGIN:
            if line.startswith(b"a OK"):
                login_lat.append(time.monotonic() - c.t_login)
                c.state = SELECT
                send(c, b"b SELECT INBOX\r\n")
            elif line.startswith(b"a "):
                fail(c, f"login {line[:80]!r}")
        elif c.state == SELECT:
            if line.startswith(b"b OK"):
                c.state = IDLE_WAIT
                send(c, b"c IDLE\r\n")
            elif line.startswith(b"b "):
                fail(c, f"select {line[:80]!r}")
        elif c.state == IDLE_WAIT:
            if line.startswith(b"+"):
                c.state = IDLING
                in_handshake -= 1
                idling += 1
            elif line.startswith(b"c "):
                fail(c, f"idle {line[:80]!r}")
        elif c.state in (IDLING, DONE_WAIT):
            if EXISTS.match(line) and c.t_exists is None and wake_t0 is not None:
                c.t_exists = time.monotonic()
            if c.state == DONE_WAIT and line.startswith(b"c "):
                c.state = FINISHED if line.startswith(b"c OK") else FAILED
        if line.startswith(b"* BYE"):
            fail(c, f"bye {line[:80]!r}")

    def on_event(c, mask):
        if c.state == CONNECTING:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(c, f"connect: {os.strerror(err)}")
                return
            c.state = GREETING
            sel.modify(c.sock, selectors.EVENT_READ, c)
            return
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            fail(c, f"recv: {e}")
            return
        if not data:
            fail(c, "closed by server")
            return
        c.buf += data
        while True:
            k = c.buf.find(b"\r\n")
            if k < 0:
                break
            line, c.buf = c.buf[:k], c.buf[k + 2:]
            on_line(c, line)
            if c.state == FAILED:
                return

    wake_t0 = None
    # ------------------------------------------------------------ connect all
    while time.monotonic() < connect_deadline:
        while next_i < target and in_handshake < a.batch:
            start(conns[next_i])
            next_i += 1
        if next_i >= target and in_handshake == 0:
            break
        for key, mask in sel.select(timeout=0.5):
            on_event(key.data, mask)
        now = time.monotonic()
        if now - last_report > 10:
            last_report = now
            print(f"  {idling} idling, {in_handshake} in handshake, {len(failures)} failed, "
                  f"{now - t_conn0:.0f}s", flush=True)
    t_connect = time.monotonic() - t_conn0
    res["idling"] = idling
    res["failed"] = len(failures)
    res["failure_samples"] = [f for f in failures if f][:10]
    res["connect_s"] = round(t_connect, 1)
    res["connect_per_s"] = round(idling / t_connect, 1) if t_connect > 0 else None
    login_lat.sort()
    if login_lat:
        res["login_p50_ms"] = round(login_lat[len(login_lat) // 2] * 1000, 2)
        res["login_p99_ms"] = round(login_lat[int(len(login_lat) * 0.99)] * 1000, 2)
    print(f"  {idling}/{target} idling after {t_connect:.1f}s ({res['connect_per_s']}/s), "
          f"{len(failures)} failed; LOGIN p50 {res.get('login_p50_ms')} ms", flush=True)
    for f in res["failure_samples"][:5]:
        print("  failure:", f, flush=True)

    # ------------------------------------------------------ memory while idle
    t_settle = time.monotonic() + a.settle
    while time.monotonic() < t_settle:
        for key, mask in sel.select(timeout=0.2):
            on_event(key.data, mask)
    mem = memory(a)
    res["mem_idle"] = mem
    srv = mem["server"]
    rss = srv.get("VmRSS_kib", 0)
    res["server_rss_mib"] = round(rss / 1024, 1)
    res["server_rss_base_mib"] = round(base_rss / 1024, 1)
    res["server_hwm_mib"] = round(srv.get("VmHWM_kib", 0) / 1024, 1)
    res["server_tree_pss_mib"] = round(mem["server_tree_pss_kib"] / 1024, 1)
    res["server_kib_per_conn"] = round((rss - base_rss) / idling, 1) if idling else None
    res["server_tree_kib_per_conn"] = round((mem["server_tree_pss_kib"] - base_tree) / idling, 1) if idling else None
    if "pg_pss_kib" in mem:
        res["pg_processes"] = mem["pg_processes"]
        res["pg_pss_mib"] = round(mem["pg_pss_kib"] / 1024, 1)
    res["under_1gib"] = bool(idling == a.conns and rss / 1024 < a.limit_mib)
    print(f"  server RSS {rss / 1024:.1f} MiB (HWM {res['server_hwm_mib']}, threads {srv.get('threads')}, "
          f"fds {srv.get('fds')}), {res['server_kib_per_conn']} KiB/connection; process tree PSS "
          f"{res['server_tree_pss_mib']} MiB"
          + (f"; PostgreSQL {mem['pg_processes']} processes PSS {res['pg_pss_mib']} MiB" if "pg_pss_kib" in mem else ""),
          flush=True)

    # ------------------------------------------------------------------ wake
    user0 = user_of(0)
    watchers = [c for c in conns if c.state == IDLING and c.user == user0]
    others = [c for c in conns if c.state == IDLING and c.user != user0]
    wake = {"user": user0, "expected": len(watchers)}
    if watchers and time.monotonic() < deadline:
        try:
            w = Client(a.host, a.port, 60).login(user0, a.password)
            msg = (b"From: waker@example.com\r\nTo: " + user0.encode() + b"\r\nSubject: wake up\r\n"
                   b"Message-ID: <wake.%d@example.com>\r\n\r\nwake\r\n" % os.getpid())
            wake_t0 = time.monotonic()
            w.cmd(b"APPEND INBOX", literal=msg)
            wake["append_ms"] = round((time.monotonic() - wake_t0) * 1000, 2)
            wait_end = min(deadline, wake_t0 + a.wake_timeout)
            while time.monotonic() < wait_end:
                for key, mask in sel.select(timeout=0.2):
                    on_event(key.data, mask)
                if all(c.t_exists is not None for c in watchers if c.state != FAILED):
                    break
            # a moment more for spurious wakes of other users' sessions
            t_more = time.monotonic() + 1.0
            while time.monotonic() < t_more:
                for key, mask in sel.select(timeout=0.2):
                    on_event(key.data, mask)
            w.logout()
        except Exception as e:  # noqa: report, do not hide the memory numbers
            wake["error"] = str(e)[:300]
        lat = sorted(c.t_exists - wake_t0 for c in watchers if c.t_exists is not None)
        wake["woken"] = len(lat)
        wake["spurious"] = sum(1 for c in others if c.t_exists is not None)
        if lat:
            wake["p50_ms"] = round(lat[len(lat) // 2] * 1000, 1)
            wake["p99_ms"] = round(lat[int(len(lat) * 0.99)] * 1000, 1)
            wake["max_ms"] = round(lat[-1] * 1000, 1)
        print(f"  APPEND to {user0}: woke {wake['woken']}/{wake['expected']} "
              f"(p50 {wake.get('p50_ms')} ms, p99 {wake.get('p99_ms')} ms, max {wake.get('max_ms')} ms), "
              f"spurious {wake['spurious']}" + (f", error {wake['error']}" if "error" in wake else ""), flush=True)
    res["wake"] = wake

    # --------------------------------------------------- DONE on a sample
    sample = [c for c in conns if c.state == IDLING][: a.done_sample]
    for c in sample:
        c.state = DONE_WAIT
        send(c, b"DONE\r\n")
    t_end = min(deadline, time.monotonic() + 20)
    while time.monotonic() < t_end and any(c.state == DONE_WAIT for c in sample):
        for key, mask in sel.select(timeout=0.2):
            on_event(key.data, mask)
    res["done_ok"] = sum(1 for c in sample if c.state == FINISHED)
    res["done_sample"] = len(sample)
    print(f"  DONE answered OK by {res['done_ok']}/{len(sample)}", flush=True)

    # ------------------------------------------------------- close, re-measure
    for c in conns:
        if c.sock is not None and c.state != FAILED:
            try:
                sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
    time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
    res["mem_after_close"] = memory(a)
    res["server_rss_after_close_mib"] = round(res["mem_after_close"]["server"].get("VmRSS_kib", 0) / 1024, 1)
    res["elapsed_s"] = round(time.monotonic() - t_begin, 1)
    print(f"  after closing all: server RSS {res['server_rss_after_close_mib']} MiB; "
          f"{res['elapsed_s']}s in all", flush=True)
    ok = idling == target and wake.get("woken") == wake.get("expected") and not wake.get("spurious")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

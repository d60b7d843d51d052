#!/usr/bin/env python3
"""IMAP load/bench, Python 3 standard library only (imaplib, threads, multiprocessing).

The same script runs against every server: give host/port/user/password.
tests/bench/imap_bench.sh runs it against bureaud and Dovecot in one go.

    imap_bench.py --port 10143 --user alice@example.test --password PW \
                  --corpus CORPUS_DIR [--n 10000] [--mailbox bench] \
                  [--phases login,append,select,fetch_all,fetch_body,fetch_range,search,
                            store,sort,thread,concurrent] \
                  [--clients 50] [--procs 2] [--duration 30] [--json out.json] [--label bureau]

Phases (all bounded in count and time):
  login       connect + LOGIN + LOGOUT, --repeat-login times
  append      empty the mailbox (DELETE + CREATE), then APPEND the first N corpus
              messages one by one over one connection
  select      SELECT the mailbox --repeat times (the first SELECT reported apart)
  fetch_all   FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE), --repeat times
  fetch_body  UID FETCH <uid> BODY.PEEK[] for --sample random messages
  fetch_range UID FETCH of 500 consecutive messages' BODY.PEEK[] in one command
  search      UID SEARCH on text/body/header/date/size/flag criteria, --repeat each
              (hits of the planted tokens are checked against manifest.json)
  store       UID STORE +FLAGS (\\Flagged) on --sample random messages, then
              STORE 1:* +FLAGS (\\Seen) and -FLAGS (\\Seen) over the whole mailbox
  sort        SORT (SUBJECT), (REVERSE DATE), (FROM) over the mailbox
  thread      THREAD REFERENCES and ORDEREDSUBJECT over the mailbox
  concurrent  --clients sessions (spread over --procs processes, threads inside)
              each LOGIN+SELECT, then a weighted mix for --duration seconds:
              35% FETCH 20-message range (FLAGS ENVELOPE), 20% UID FETCH BODY.PEEK[],
              15% UID STORE +/-FLAGS, 10% NOOP, 5% STATUS INBOX, 5% UID SEARCH
              SUBJECT, 5% APPEND small message, 5% UID FETCH BODYSTRUCTURE
Reports ops/s and latency percentiles (ms) per phase/op; --json writes all numbers.
The client is Python: on a small machine it competes with the server for CPU, so
compare servers with the same client on the same machine, not absolute numbers.
Clients set TCP_NODELAY (imaplib sends an APPEND literal and its CRLF in two
writes; with Nagle on, each APPEND would wait for a delayed ACK).
"""
import argparse
import glob
import imaplib
import json
import multiprocessing as mp
import os
import random
import re
import socket
import sys
import threading
import time

FETCH_START = re.compile(rb"^\d+ \(")


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def summary(lat, total_s=None, n_ops=None):
    n = len(lat) if n_ops is None else n_ops
    total = total_s if total_s is not None else sum(lat)
    return {"n": n, "total_s": round(total, 4), "ops_per_s": round(n / total, 2) if total > 0 else None,
            "p50_ms": round(pct(lat, 50) * 1000, 3), "p95_ms": round(pct(lat, 95) * 1000, 3),
            "p99_ms": round(pct(lat, 99) * 1000, 3), "max_ms": round(max(lat) * 1000, 3) if lat else None}


def line(name, s, extra=""):
    ops = f"{s['ops_per_s']:>10.1f}" if s.get("ops_per_s") else f"{'-':>10}"
    print(f"{name:<28} n={s['n']:<6} total={s['total_s']:>8.3f}s ops/s={ops} "
          f"p50={s['p50_ms']:>8.2f} p95={s['p95_ms']:>8.2f} p99={s['p99_ms']:>8.2f} max={s['max_ms'] or 0:>8.2f} ms {extra}",
          flush=True)


def ok(typ, data, what):
    if typ != "OK":
        raise RuntimeError(f"{what}: {typ} {data!r}"[:300])
    return data


class IMAP(imaplib.IMAP4):
    """imaplib with TCP_NODELAY: imaplib writes an APPEND literal and its closing
    CRLF in separate send() calls; with Nagle on, that CRLF waits for the server's
    delayed ACK (~40 ms), an artifact of the client, not of the server."""
    nodelay = True

    def _create_socket(self, timeout):
        s = super()._create_socket(timeout)
        if self.nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


def connect(a, timeout=120):
    IMAP.nodelay = not a.nagle
    m = IMAP(a.host, a.port, timeout=timeout)
    ok(*m.login(a.user, a.password), "LOGIN")
    return m


def count_fetch(data):
    n = 0
    for item in data:
        head = item[0] if isinstance(item, tuple) else item
        if isinstance(head, bytes) and FETCH_START.match(head):
            n += 1
    return n


def quote_mbox(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_corpus(a):
    files = sorted(glob.glob(os.path.join(a.corpus, "*.eml")))
    if not files:
        sys.exit(f"no *.eml in {a.corpus}: run gen_corpus.py first")
    files = files[: a.n]
    return [open(f, "rb").read() for f in files]


def all_uids(m, mbox):
    ok(*m.select(quote_mbox(mbox)), "SELECT")
    typ, data = m.uid("SEARCH", None, "ALL")
    ok(typ, data, "UID SEARCH ALL")
    return [int(x) for x in data[0].split()]


# --------------------------------------------------------------------- phases
def ph_login(a, res):
    lat = []
    t_end = time.monotonic() + a.max_phase_s
    for _ in range(a.repeat_login):
        t = time.perf_counter()
        m = connect(a)
        m.logout()
        lat.append(time.perf_counter() - t)
        if time.monotonic() > t_end:
            break
    s = summary(lat)
    res["login"] = s
    line("login (connect+LOGIN+LOGOUT)", s)


def ph_append(a, res):
    msgs = load_corpus(a)
    m = connect(a)
    if a.mailbox.upper() == "INBOX":
        typ, data = m.select("INBOX")
        if int(data[0] or 0) > 0:
            m.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
            m.expunge()
    else:
        m.delete(quote_mbox(a.mailbox))  # may fail if absent: fine
        ok(*m.create(quote_mbox(a.mailbox)), "CREATE")
    lat, nbytes = [], 0
    t0 = time.perf_counter()
    t_end = time.monotonic() + a.max_phase_s
    for raw in msgs:
        t = time.perf_counter()
        ok(*m.append(quote_mbox(a.mailbox), None, None, raw), "APPEND")
        lat.append(time.perf_counter() - t)
        nbytes += len(raw)
        if time.monotonic() > t_end:
            print(f"append: stopped after {a.max_phase_s}s", file=sys.stderr)
            break
    total = time.perf_counter() - t0
    m.logout()
    s = summary(lat, total)
    s["MB_per_s"] = round(nbytes / total / 1e6, 2)
    s["bytes"] = nbytes
    res["append"] = s
    line("append", s, f"{s['MB_per_s']} MB/s ({nbytes / 1e6:.1f} MB)")


def ph_select(a, res):
    m = connect(a)
    first = None
    lat = []
    for i in range(a.repeat + 1):
        t = time.perf_counter()
        typ, data = m.select(quote_mbox(a.mailbox))
        ok(typ, data, "SELECT")
        dt = time.perf_counter() - t
        if i == 0:
            first = dt
        else:
            lat.append(dt)
        try:
            m.unselect()
        except Exception:  # noqa: server without UNSELECT
            m.close()
    exists = int(data[0])
    m.logout()
    s = summary(lat)
    s["first_ms"] = round(first * 1000, 3)
    s["exists"] = exists
    res["select"] = s
    line("select", s, f"first={first * 1000:.2f} ms exists={exists}")


def ph_fetch_all(a, res):
    m = connect(a)
    typ, data = m.select(quote_mbox(a.mailbox))
    exists = int(data[0])
    lat = []
    got = 0
    for _ in range(a.repeat):
        t = time.perf_counter()
        typ, data = m.fetch("1:*", "(FLAGS ENVELOPE BODYSTRUCTURE)")
        lat.append(time.perf_counter() - t)
        ok(typ, data, "FETCH")
        got = count_fetch(data)
    m.logout()
    s = summary(lat)
    s["messages"] = got
    s["msgs_per_s"] = round(got / pct(lat, 50), 1) if lat else None
    res["fetch_all"] = s
    line("fetch 1:* FLAGS ENV BODYSTR", s, f"{got}/{exists} msgs, {s['msgs_per_s']} msgs/s (median run)")


def ph_fetch_body(a, res):
    m = connect(a)
    uids = all_uids(m, a.mailbox)
    rng = random.Random(1)
    sample = [rng.choice(uids) for _ in range(min(a.sample, len(uids) * 4))]
    lat, nbytes = [], 0
    t0 = time.perf_counter()
    for uid in sample:
        t = time.perf_counter()
        typ, data = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
        lat.append(time.perf_counter() - t)
        ok(typ, data, "UID FETCH BODY")
        for item in data:
            if isinstance(item, tuple):
                nbytes += len(item[1])
    total = time.perf_counter() - t0
    m.logout()
    s = summary(lat, total)
    s["MB_per_s"] = round(nbytes / total / 1e6, 2)
    res["fetch_body"] = s
    line("uid fetch BODY.PEEK[]", s, f"{s['MB_per_s']} MB/s")


SEARCHES = [
    ("TEXT zebracorn", ("TEXT", "zebracorn")),
    ("BODY quokkaflux", ("BODY", "quokkaflux")),
    ("TEXT marmotlantern", ("TEXT", "marmotlantern")),
    ("SUBJECT invoice", ("SUBJECT", "invoice")),
    ("FROM example.org", ("FROM", "example.org")),
    ("HEADER List-Id dev", ("HEADER", "List-Id", "dev")),
    ("SINCE 1-Jan-2024", ("SINCE", "1-Jan-2024")),
    ("LARGER 100000", ("LARGER", "100000")),
    ("UNSEEN", ("UNSEEN",)),
    ("OR FLAGGED SUBJECT lunch", ("OR", "FLAGGED", "SUBJECT", "lunch")),
]


def ph_search(a, res):
    m = connect(a)
    ok(*m.select(quote_mbox(a.mailbox)), "SELECT")
    out = {}
    expect = {}
    mf = os.path.join(a.corpus or "", "manifest.json")
    if a.corpus and os.path.exists(mf) and a.n >= json.load(open(mf))["count"]:
        expect = json.load(open(mf)).get("token_messages", {})
    for name, crit in SEARCHES:
        lat, hits = [], None
        for _ in range(a.repeat):
            t = time.perf_counter()
            typ, data = m.uid("SEARCH", *crit)
            lat.append(time.perf_counter() - t)
            ok(typ, data, "UID SEARCH " + name)
            hits = len(data[0].split()) if data and data[0] else 0
        s = summary(lat)
        s["hits"] = hits
        tok = crit[-1] if crit[0] in ("TEXT", "BODY") else None
        if tok in expect:
            s["expected_hits"] = expect[tok]
        out[name] = s
        line("uid search " + name, s, f"hits={hits}" + (f" (planted {expect[tok]})" if tok in expect else ""))
    m.logout()
    res["search"] = out


def ph_store(a, res):
    m = connect(a)
    uids = all_uids(m, a.mailbox)
    rng = random.Random(2)
    sample = rng.sample(uids, min(a.sample, len(uids)))
    lat = []
    t0 = time.perf_counter()
    for uid in sample:
        t = time.perf_counter()
        ok(*m.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)"), "UID STORE")
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    s = summary(lat, total)
    res["store_single"] = s
    line("uid store +FLAGS \\Flagged", s)
    bulk = {"+FLAGS": [], "-FLAGS": []}
    for _ in range(a.repeat_bulk):  # all unseen -> time +FLAGS -> all seen -> time -FLAGS
        for op in ("+FLAGS", "-FLAGS"):
            t = time.perf_counter()
            ok(*m.store("1:*", op, "(\\Seen)"), "STORE 1:*")
            bulk[op].append(time.perf_counter() - t)
    for op in ("+FLAGS", "-FLAGS"):
        bulk[op] = summary(bulk[op])
        line(f"store 1:* {op} \\Seen", bulk[op], f"({len(uids)} msgs)")
    # leave \Flagged on the sample, \Seen cleared
    m.logout()
    res["store_bulk"] = bulk


def ph_fetch_range(a, res):
    m = connect(a)
    uids = all_uids(m, a.mailbox)
    lat, nbytes, got = [], 0, 0
    span = min(500, len(uids))
    rng = random.Random(3)
    for _ in range(a.repeat):
        k = rng.randint(0, max(0, len(uids) - span))
        t = time.perf_counter()
        typ, data = m.uid("FETCH", f"{uids[k]}:{uids[k + span - 1]}", "(BODY.PEEK[])")
        lat.append(time.perf_counter() - t)
        ok(typ, data, "UID FETCH range")
        got = count_fetch(data)
        nbytes = sum(len(item[1]) for item in data if isinstance(item, tuple))
    m.logout()
    s = summary(lat)
    s["messages"] = got
    s["MB_per_s"] = round(nbytes / pct(lat, 50) / 1e6, 2) if lat else None
    res["fetch_range"] = s
    line(f"uid fetch {span} BODY.PEEK[]", s, f"{got} msgs, {s['MB_per_s']} MB/s (median run)")


SORTS = [("SUBJECT", "(SUBJECT)"), ("REVERSE DATE", "(REVERSE DATE)"), ("FROM", "(FROM)")]


def ph_sort(a, res):
    m = connect(a)
    ok(*m.select(quote_mbox(a.mailbox)), "SELECT")
    out = {}
    for name, crit in SORTS:
        lat, n = [], 0
        for _ in range(a.repeat):
            t = time.perf_counter()
            typ, data = m.sort(crit, "UTF-8", "ALL")
            lat.append(time.perf_counter() - t)
            ok(typ, data, "SORT " + name)
            n = len(data[0].split()) if data and data[0] else 0
        s = summary(lat)
        s["messages"] = n
        out[name] = s
        line("sort " + name, s, f"{n} msgs")
    m.logout()
    res["sort"] = out


def ph_thread(a, res):
    m = connect(a)
    ok(*m.select(quote_mbox(a.mailbox)), "SELECT")
    out = {}
    for algo in ("REFERENCES", "ORDEREDSUBJECT"):
        lat, roots = [], 0
        for _ in range(a.repeat):
            t = time.perf_counter()
            typ, data = m.thread(algo, "UTF-8", "ALL")
            lat.append(time.perf_counter() - t)
            ok(typ, data, "THREAD " + algo)
            depth, roots = 0, 0
            for ch in (data[0] or b""):
                if ch == 40:
                    if depth == 0:
                        roots += 1
                    depth += 1
                elif ch == 41:
                    depth -= 1
        s = summary(lat)
        s["threads"] = roots
        out[algo] = s
        line("thread " + algo, s, f"{roots} threads")
    m.logout()
    res["thread"] = out


# ----------------------------------------------------------------- concurrent
SMALL_MSG = (b"From: Load Gen <load@example.com>\r\nTo: alice@example.com\r\n"
             b"Subject: concurrent append %d\r\nMessage-ID: <c%d.%d@example.com>\r\n"
             b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"hello world, this is a short body line.\r\n" * 30)
OPS = [("fetch_range_env", 35), ("fetch_body", 20), ("store_flag", 15), ("noop", 10),
       ("status", 5), ("search_subject", 5), ("append_small", 5), ("fetch_bodystructure", 5)]
WORDS = ["invoice", "lunch", "report", "meeting", "budget", "security", "release", "design"]


def client_loop(a, cid, uids, start_at, end_at, out, errors):
    rng = random.Random(1000 + cid)
    names = [o for o, w in OPS for _ in range(w)]
    lat = {o: [] for o, _ in OPS}
    lat["login_select"] = []
    try:
        t = time.perf_counter()
        m = connect(a, timeout=a.op_timeout)
        ok(*m.select(quote_mbox(a.mailbox)), "SELECT")
        lat["login_select"].append(time.perf_counter() - t)
    except Exception as e:  # noqa
        errors.append(f"client {cid} connect: {e}")
        out.append(lat)
        return
    exists = len(uids)
    while time.time() < start_at:
        time.sleep(0.005)
    n = 0
    while time.time() < end_at and n < a.max_ops_per_client:
        op = rng.choice(names)
        t = time.perf_counter()
        try:
            if op == "fetch_range_env":
                lo = rng.randint(1, max(1, exists - 19))
                ok(*m.fetch(f"{lo}:{lo + 19}", "(UID FLAGS ENVELOPE)"), op)
            elif op == "fetch_body":
                ok(*m.uid("FETCH", str(rng.choice(uids)), "(BODY.PEEK[])"), op)
            elif op == "store_flag":
                ok(*m.uid("STORE", str(rng.choice(uids)), rng.choice(["+FLAGS", "-FLAGS"]), "(\\Flagged)"), op)
            elif op == "noop":
                ok(*m.noop(), op)
            elif op == "status":
                ok(*m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)"), op)
            elif op == "search_subject":
                ok(*m.uid("SEARCH", "SUBJECT", rng.choice(WORDS)), op)
            elif op == "append_small":
                ok(*m.append(quote_mbox(a.mailbox), None, None, SMALL_MSG % (n, cid, n)), op)
            elif op == "fetch_bodystructure":
                ok(*m.uid("FETCH", str(rng.choice(uids)), "(BODYSTRUCTURE)"), op)
            lat[op].append(time.perf_counter() - t)
        except Exception as e:  # noqa
            errors.append(f"client {cid} {op}: {e}"[:300])
            if isinstance(e, (OSError, imaplib.IMAP4.abort)):
                break
        n += 1
    try:
        m.logout()
    except Exception:  # noqa
        pass
    out.append(lat)


def proc_main(a, ids, uids, start_at, end_at, q):
    out, errors = [], []
    ths = [threading.Thread(target=client_loop, args=(a, cid, uids, start_at, end_at, out, errors))
           for cid in ids]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    q.put((out, errors))


def ph_concurrent(a, res):
    m = connect(a)
    uids = all_uids(m, a.mailbox)
    m.logout()
    procs = max(1, min(a.procs, a.clients))
    ids = [list(range(p, a.clients, procs)) for p in range(procs)]
    # give every client time to connect before the measured window opens
    start_at = time.time() + max(3.0, a.clients * 0.05)
    end_at = start_at + a.duration
    q = mp.Queue()
    ps = [mp.Process(target=proc_main, args=(a, ids[p], uids, start_at, end_at, q)) for p in range(procs)]
    for p in ps:
        p.start()
    outs, errors = [], []
    for _ in ps:
        o, e = q.get(timeout=a.duration + a.op_timeout + 120)
        outs += o
        errors += e
    for p in ps:
        p.join()
    merged = {}
    for lat in outs:
        for k, v in lat.items():
            merged.setdefault(k, []).extend(v)
    total_ops = sum(len(v) for k, v in merged.items() if k != "login_select")
    r = {"clients": a.clients, "procs": procs, "duration_s": a.duration, "total_ops": total_ops,
         "ops_per_s": round(total_ops / a.duration, 1), "errors": len(errors),
         "error_samples": errors[:5], "per_op": {}}
    all_lat = [x for k, v in merged.items() if k != "login_select" for x in v]
    r["all"] = summary(all_lat, a.duration)
    print(f"concurrent: {a.clients} clients / {procs} procs, {a.duration}s: {total_ops} ops, "
          f"{r['ops_per_s']} ops/s, errors={len(errors)}", flush=True)
    line("  all ops", r["all"])
    for k in ["login_select"] + [o for o, _ in OPS]:
        if merged.get(k):
            s = summary(merged[k], a.duration)
            if k == "login_select":
                s["ops_per_s"] = None
            r["per_op"][k] = s
            line("  " + k, s)
    for e in errors[:5]:
        print("  error:", e)
    res["concurrent"] = r


PHASES = {"login": ph_login, "append": ph_append, "select": ph_select, "fetch_all": ph_fetch_all,
          "fetch_body": ph_fetch_body, "fetch_range": ph_fetch_range, "search": ph_search,
          "store": ph_store, "sort": ph_sort, "thread": ph_thread, "concurrent": ph_concurrent}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--corpus", help="directory of *.eml (gen_corpus.py); needed for append")
    ap.add_argument("--n", type=int, default=10000, help="messages to append")
    ap.add_argument("--mailbox", default="bench")
    ap.add_argument("--phases", default="login,append,select,fetch_all,fetch_body,fetch_range,search,"
                                        "store,sort,thread,concurrent")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--repeat-bulk", type=int, default=3)
    ap.add_argument("--repeat-login", type=int, default=50)
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--max-ops-per-client", type=int, default=100000)
    ap.add_argument("--op-timeout", type=float, default=60.0)
    ap.add_argument("--max-phase-s", type=float, default=600.0)
    ap.add_argument("--nagle", action="store_true", help="leave Nagle on in the client (default: TCP_NODELAY)")
    ap.add_argument("--json")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1") and not a.host.startswith("127."):
        sys.exit("refusing non-loopback host")
    socket.setdefaulttimeout(a.op_timeout)
    res = {"label": a.label, "host": a.host, "port": a.port, "n": a.n, "mailbox": a.mailbox,
           "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count()}
    print(f"# imap_bench {a.label} {a.host}:{a.port} user={a.user} mailbox={a.mailbox}", flush=True)
    for ph in a.phases.split(","):
        ph = ph.strip()
        if ph not in PHASES:
            sys.exit(f"unknown phase {ph}")
        PHASES[ph](a, res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()

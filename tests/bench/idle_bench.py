#!/usr/bin/env python3
"""Hold many IMAP IDLE sessions open against one server and measure what they
cost it: the resident memory (VmRSS) of the server process before and after,
per connection, and whether a change reaches every idling session.

    idle_bench.py --port 10143 --user alice@example.test --password PW \\
                  --pid SERVER_PID [--n 10000] [--batch 200] [--json out.json]

Each connection logs in, SELECTs INBOX and sends IDLE; once all of them are
idling (the server answered "+"), the RSS of --pid (and of its children, when
--children is given) is read from /proc, then one message is APPENDed over
another connection and every idling session must see "* n EXISTS" within
--notify-timeout seconds (the time until the last one saw it is reported).
Then all send DONE and LOGOUT. Standard library only (asyncio). Raise the
open-file limit first (ulimit -n) for both this process and the server.
"""
import argparse
import asyncio
import json
import os
import resource
import sys
import time


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children_of(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Session:
    def __init__(self, i: int):
        self.i = i
        self.reader = None
        self.writer = None
        self.saw_exists_at = None

    async def line(self, timeout: float) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), timeout)

    async def until_tagged(self, tag: bytes, timeout: float) -> bytes:
        while True:
            ln = await self.line(timeout)
            if not ln:
                raise ConnectionError("closed")
            if ln.startswith(tag + b" "):
                if not ln.startswith(tag + b" OK"):
                    raise RuntimeError(ln.decode(errors="replace").strip())
                return ln

    async def open(self, a) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(a.host, a.port, limit=1 << 20), a.timeout)
        await self.line(a.timeout)                                    # greeting
        self.writer.write(f"a LOGIN {quote(a.user)} {quote(a.password)}\r\n".encode())
        await self.until_tagged(b"a", a.timeout)
        self.writer.write(b"b SELECT INBOX\r\n")
        await self.until_tagged(b"b", a.timeout)
        self.writer.write(b"c IDLE\r\n")
        while True:
            ln = await self.line(a.timeout)
            if ln.startswith(b"+"):
                return
            if not ln or ln.startswith(b"c "):
                raise RuntimeError(f"IDLE refused: {ln!r}")

    async def wait_exists(self, timeout: float, t0: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                ln = await self.line(max(0.01, end - time.monotonic()))
            except asyncio.TimeoutError:
                return
            if not ln:
                return
            if ln.startswith(b"* ") and ln.rstrip().endswith(b"EXISTS"):
                self.saw_exists_at = time.monotonic() - t0
                return

    async def close(self, timeout: float) -> None:
        try:
            self.writer.write(b"DONE\r\nd LOGOUT\r\n")
            await asyncio.wait_for(self.writer.drain(), timeout)
            self.writer.close()
        except Exception:  # noqa: BLE001
            pass


async def append_one(a) -> None:
    r, w = await asyncio.open_connection(a.host, a.port)
    await r.readline()
    msg = (b"From: idle-bench@example.org\r\nTo: someone@example.org\r\n"
           b"Subject: wake up\r\n\r\nhello\r\n")
    w.write(f"a LOGIN {quote(a.user)} {quote(a.password)}\r\n".encode())
    while not (await r.readline()).startswith(b"a "):
        pass
    w.write(b"b APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    while True:
        ln = await r.readline()
        if ln.startswith(b"b "):
            assert ln.startswith(b"b OK"), ln
            break
    w.write(b"c LOGOUT\r\n")
    await w.drain()
    w.close()


async def main_async(a) -> dict:
    pids = [a.pid] + (children_of(a.pid) if a.children else [])
    rss0 = sum(rss_kib(p) for p in pids)
    sessions = [Session(i) for i in range(a.n)]
    errors, failed = [], set()
    t0 = time.monotonic()
    for k in range(0, a.n, a.batch):
        batch = sessions[k:k + a.batch]
        res = await asyncio.gather(*(s.open(a) for s in batch), return_exceptions=True)
        for s, r in zip(batch, res):
            if isinstance(r, Exception):
                errors.append(f"session {s.i}: {r!r}")
                failed.add(s.i)
        if len(errors) > 50:
            break
    opened = time.monotonic() - t0
    ok = [s for s in sessions if s.writer is not None and s.i not in failed]
    await asyncio.sleep(2)                       # let the server settle
    pids = [a.pid] + (children_of(a.pid) if a.children else [])
    rss1 = sum(rss_kib(p) for p in pids)
    t1 = time.monotonic()
    await append_one(a)
    await asyncio.gather(*(s.wait_exists(a.notify_timeout, t1) for s in ok))
    seen = [s.saw_exists_at for s in ok if s.saw_exists_at is not None]
    await asyncio.gather(*(s.close(a.timeout) for s in sessions if s.writer is not None))
    out = {
        "connections": a.n, "idling": len(ok), "errors": len(errors), "error_samples": errors[:5],
        "open_s": round(opened, 2), "rss_before_kib": rss0, "rss_idle_kib": rss1,
        "rss_per_conn_kib": round((rss1 - rss0) / max(1, len(ok)), 2),
        "notified": len(seen), "notify_all_s": round(max(seen), 3) if seen else None,
        "notify_p50_s": round(sorted(seen)[len(seen) // 2], 3) if seen else None,
    }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--pid", type=int, required=True, help="server process to measure")
    ap.add_argument("--children", action="store_true", help="add the RSS of its children")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--notify-timeout", type=float, default=60)
    ap.add_argument("--json")
    a = ap.parse_args()
    if not (a.host.startswith("127.") or a.host in ("localhost", "::1")):
        sys.exit("refusing non-loopback host")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.n + 100
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))
        except (ValueError, OSError):
            pass
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
            sys.exit(f"open-file limit {soft} < {need}: raise it (ulimit -n)")
    out = asyncio.run(main_async(a))
    print(f"idle: {out['idling']}/{out['connections']} sessions idling (opened in {out['open_s']} s, "
          f"errors {out['errors']}); server RSS {out['rss_before_kib'] / 1024:.1f} MiB -> "
          f"{out['rss_idle_kib'] / 1024:.1f} MiB = {out['rss_per_conn_kib']:.1f} KiB per session; "
          f"new mail seen by {out['notified']} sessions, the last after {out['notify_all_s']} s "
          f"(p50 {out['notify_p50_s']} s)", flush=True)
    for e in out["error_samples"]:
        print("  error:", e)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

"""Hostile and broken IMAP clients against bureaud, on raw sockets.

The rule under test (ARCHITECTURE.md, "Limits everywhere"): bad input
gets the protocol's own error and the session goes on; a client that
floods is slowed or dropped, never the server. So every test here ends
by checking that the same session (or, where the RFC says the session
ends, a fresh one) still works, and the fixture fails the test if
bureaud died or a sanitizer complained.

Covered: unknown commands, commands in the wrong state, bad syntax
(unbalanced parentheses, bad sequence sets, NUL and bare CR in a line,
bad tags, deep nesting, bad literal announcements), a command line over
limits.max_line, synchronizing and non-synchronizing literals over the
limit, a client that disconnects in the middle of a literal, a client
that stops reading while FETCHing large bodies (bureaud's memory stays
bounded), a client that pipelines megabytes of commands without reading
the answers, pipelined garbage, plaintext pipelined behind STARTTLS,
1,000 pipelined NOOPs, a flood of bad commands (BYE after the limit, BAD
replies counted in a row), commands pipelined behind AUTHENTICATE, a
refused literal and LOGOUT, a flood of connections from one address, a
FETCH of absent UIDs, LOGIN with a 100 KB password, AUTHENTICATE with
invalid base64, IDLE ended by garbage, garbage inside COMPRESS and TLS.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import ssl
import threading
import time

import pytest

from bureau_fixture import DEFAULT_PASSWORD, timeout_scale
from imap_transcript import Conn, parse_script, run_script, tls_context

pytestmark = pytest.mark.imap

ALICE = "alice@example.test"
MAX_BAD = 20          # IMAP_MAX_BAD_COMMANDS


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

class Client:
    """Raw IMAP client: responses are bytes without the final CRLF,
    literals inline."""

    def __init__(self, b, tls: bool = False, timeout: float = 15):
        self.b = b
        self.c = Conn("c", b.ports["imaps" if tls else "imap"], tls, timeout * timeout_scale())
        self.greeting = self.resp()

    @property
    def sock(self):
        return self.c.sock

    def send(self, data: bytes | str) -> None:
        self.c.send(data.encode() if isinstance(data, str) else data)

    def resp(self, timeout: float | None = None) -> bytes | None:
        return self.c.response(timeout)

    def until(self, tag: str) -> tuple[list[bytes], bytes]:
        untagged = []
        while True:
            r = self.resp()
            if r is None:
                raise AssertionError(f"no tagged reply for {tag}; so far {untagged[-10:]}")
            if r.startswith(tag.encode() + b" "):
                return untagged, r
            untagged.append(r)

    def cmd(self, tag: str, text: str | bytes) -> tuple[list[bytes], bytes]:
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def ok(self, tag: str, text: str | bytes) -> list[bytes]:
        u, t = self.cmd(tag, text)
        assert t.startswith(tag.encode() + b" OK"), (t, u[-5:])
        return u

    def login(self, user: str = ALICE, password: str = DEFAULT_PASSWORD) -> "Client":
        self.ok("L", f'LOGIN "{user}" "{password}"')
        return self

    def eof(self, timeout: float = 10) -> list[bytes]:
        """Read until the server closes; the responses seen."""
        got = []
        deadline = time.monotonic() + timeout * timeout_scale()
        while time.monotonic() < deadline:
            try:
                r = self.resp(1)
            except (EOFError, ConnectionResetError, BrokenPipeError):
                return got
            if r is not None:
                got.append(r)
        raise AssertionError(f"the server did not close the connection; got {got[-10:]}")

    def close(self) -> None:
        self.c.close()


def server(bureau_factory, pg, fresh_db, **config):
    b = bureau_factory(database_url=pg.url(fresh_db), config=config).start()
    b.add_user(ALICE, DEFAULT_PASSWORD)
    return b


def alive(b) -> None:
    """bureaud still answers a new session completely."""
    c = Client(b)
    assert c.greeting.startswith(b"* OK"), c.greeting
    c.login()
    c.ok("z1", "SELECT INBOX")
    c.ok("z2", "LOGOUT")
    c.close()
    assert b.running()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def message(i: int, size: int) -> bytes:
    head = (f"From: Sender <s{i}@example.org>\r\nTo: {ALICE}\r\nSubject: big {i}\r\n"
            f"Message-ID: <big{i}@example.org>\r\n\r\n").encode()
    line = (b"%d " % i) + b"x" * 74 + b"\r\n"
    body = line * (size // len(line) + 1)
    return head + body[:size - len(head) - 2] + b"\r\n"


def append(c: Client, msg: bytes, mailbox: str = "INBOX") -> None:
    c.send(b"A APPEND " + mailbox.encode() + b" {%d+}\r\n" % len(msg) + msg + b"\r\n")
    _, t = c.until("A")
    assert t.startswith(b"A OK"), t


# ---------------------------------------------------------------------------
# unknown commands, wrong state, syntax
# ---------------------------------------------------------------------------

def test_unknown_and_wrong_state(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b)
    _, t = c.cmd("a1", "FROBNICATE")
    assert t.startswith(b"a1 BAD "), t
    _, t = c.cmd("a2", "XYZZY arg (list) \"str\"")
    assert t.startswith(b"a2 BAD "), t
    # not before login
    for tag, cmd in (("a3", "SELECT INBOX"), ("a4", "LIST \"\" *"), ("a5", "FETCH 1 FLAGS"),
                     ("a6", "IDLE"), ("a7", "ENABLE CONDSTORE"), ("a8", "APPEND INBOX {1+}\r\nx")):
        _, t = c.cmd(tag, cmd)
        assert t.startswith(tag.encode() + b" BAD "), t
    c.ok("a9", "NOOP")
    c.login()
    c.close()
    # (a fresh session: BAD replies are counted, IMAP_MAX_BAD_COMMANDS)
    c = Client(b).login()
    # not after login
    for tag, cmd in (("b1", "LOGIN a b"), ("b2", "AUTHENTICATE PLAIN"), ("b3", "STARTTLS"),
                     ("b4", "FETCH 1 FLAGS"), ("b5", "STORE 1 +FLAGS (\\Seen)"),
                     ("b6", "EXPUNGE"), ("b7", "CLOSE"), ("b8", "UID SEARCH ALL")):
        _, t = c.cmd(tag, cmd)
        assert t.startswith(tag.encode() + b" BAD "), t
    # UID with a command that has no UID form, or alone
    for tag, cmd in (("c1", "UID NOOP"), ("c2", "UID"), ("c3", "UID LIST \"\" *")):
        _, t = c.cmd(tag, cmd)
        assert t.startswith(tag.encode() + b" BAD "), t
    c.close()
    c = Client(b).login()
    # arguments where none are taken
    for tag, cmd in (("d1", "NOOP now"), ("d2", "CAPABILITY please"), ("d3", "LOGOUT x")):
        _, t = c.cmd(tag, cmd)
        assert t.startswith(tag.encode() + b" BAD "), t
    c.ok("d4", "SELECT INBOX")
    c.ok("d5", "NOOP")
    c.ok("d6", "LOGOUT")
    c.close()
    alive(b)


def test_bad_syntax_session_goes_on(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    msg = message(1, 2000)
    append(c, msg)
    c.ok("s0", "SELECT INBOX")
    cases = [
        b"e1 FETCH 1 (FLAGS",                    # unbalanced (
        b"e2 FETCH 1 FLAGS)",                    # unbalanced )
        b"e3 FETCH 1:x FLAGS",                   # bad sequence set
        b"e4 FETCH 0 FLAGS",                     # 0 is not a sequence number
        b"e5 FETCH 1,,2 FLAGS",
        b"e6 FETCH * FLAGS x",                   # trailing junk
        b"e7 NO\x00OP",                          # NUL in the line
        b"e8 SELECT \"IN\x00BOX\"",              # NUL in a quoted string
        b"e9 SELECT \"INBOX",                    # unterminated quoted string
        b"e10 SELECT \"IN\\BOX\"",               # bad escape
        b"e11 LIST \"\" \"*\"\"",                # junk quote
        b"e12 STORE 1 +FLAGS (\\Bogus)",         # unknown system flag
        b"e13 STORE 1 +FLAGS (\\Recent)",        # \Recent cannot be stored
        b"e14 SEARCH ((((((((((((ALL",           # unbalanced in SEARCH
        b"e15 FETCH 1 BODY[HEADER.FIELDS (DATE]",  # unbalanced in a section
        b"e16 FETCH 1 (" + b"(" * 200 + b")" * 200 + b")",   # too deep
        b"e17 APPEND INBOX {-1}",                # bad literal announcement
        b"e18 APPEND INBOX {1x}",
        b"e19 LOGIN {3} x",                      # literal not at the end
    ]
    for line in cases:
        tag = line.split(b" ")[0].decode()
        c.send(line + b"\r\n")
        _, t = c.until(tag)
        assert t.startswith(tag.encode() + b" BAD") or (
            tag in ("e12", "e13") and t.startswith(tag.encode() + b" NO")), (line, t)
        # bad commands are counted: keep below the limit
        if tag in ("e9", "e18"):
            c.close()
            c = Client(b).login()
            c.ok("s1", "SELECT INBOX")
    # a bare CR inside the line
    c.send(b"f1 NOOP\rf2 NOOP\r\n")
    _, t = c.until("f1")
    assert t.startswith(b"f1 BAD"), t
    # a bad tag: the reply is tagged "*"
    c.send(b"f+3 NOOP\r\n")
    r = c.resp()
    assert r.startswith(b"* BAD") or r.startswith(b"f+3 BAD"), r
    # an empty line is ignored, a line of spaces is not a command
    c.send(b"\r\n")
    c.ok("f4", "NOOP")
    # the message is unchanged and the session works
    u = c.ok("f5", "FETCH 1 (FLAGS RFC822.SIZE)")
    assert any(b"RFC822.SIZE %d" % len(msg) in x for x in u), u
    c.ok("f6", "LOGOUT")
    c.close()
    alive(b)


# ---------------------------------------------------------------------------
# limits: line and literal
# ---------------------------------------------------------------------------

def test_line_over_max_line(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db, **{"limits.max_line": "2K"})
    c = Client(b)
    # before login
    _, t = c.cmd("a1", "LOGIN " + "x" * 5000 + " y")
    assert t.startswith(b"a1 BAD [TOOBIG]"), t
    c.login()
    c.ok("a2", "SELECT INBOX")
    _, t = c.cmd("a3", "FETCH 1:* (" + " ".join(["FLAGS"] * 1000) + ")")
    assert t.startswith(b"a3 BAD [TOOBIG]"), t
    c.ok("a4", "NOOP")
    # far over the limit, in many pieces, no line end for a while
    c.send(b"a5 LIST \"\" ")
    for _ in range(64):
        c.send(b"y" * 65536)
    c.send(b"\r\n")
    _, t = c.until("a5")
    assert t.startswith(b"a5 BAD [TOOBIG]"), t
    c.ok("a6", "NOOP")
    # megabytes without any line end and without a tag: "* BAD"
    c.send(b"z" * (4 << 20) + b"\r\n")
    r = c.resp()
    assert r.startswith(b"* BAD [TOOBIG]"), r
    c.ok("a7", "NOOP")
    # a line just under the limit is fine
    u = c.ok("a8", 'LIST "" "' + "n" * 1900 + '"')
    assert u == [], u
    c.ok("a9", "LOGOUT")
    c.close()
    alive(b)


def test_sync_literal_over_limit(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db, **{"limits.max_literal": "64K"})
    c = Client(b)
    # before login the literal limit is 64 KiB whatever max_literal says
    c.send(b"a1 LOGIN {200000}\r\n")
    r = c.resp()
    assert r.startswith(b"a1 BAD [TOOBIG]") or r.startswith(b"a1 NO [TOOBIG]"), r
    c.login()
    c.send(b"a2 APPEND INBOX {100000}\r\n")
    r = c.resp()
    # no "+": the client must not send the octets
    assert r.startswith(b"a2 BAD [TOOBIG]") or r.startswith(b"a2 NO [TOOBIG]"), r
    c.ok("a3", "NOOP")
    # an absurd size
    c.send(b"a4 APPEND INBOX {99999999999999999999999}\r\n")
    r = c.resp()
    assert r.startswith(b"a4 BAD [TOOBIG]") or r.startswith(b"a4 NO [TOOBIG]"), r
    # literals that together exceed the per-command total (MULTIAPPEND)
    c.send(b"a5 APPEND INBOX {60000}\r\n")
    r = c.resp()
    n = 0
    while r.startswith(b"+") and n < 10:
        n += 1
        head = b"Subject: x\r\n\r\n"
        c.send(head + b"x" * (60000 - len(head)) + b" {60000}\r\n")
        r = c.resp()
    assert 1 < n < 10, (n, r)
    assert r.startswith(b"a5 BAD [TOOBIG]") or r.startswith(b"a5 NO [TOOBIG]"), r
    u = c.ok("a5b", "STATUS INBOX (MESSAGES)")
    assert u == [b"* STATUS INBOX (MESSAGES 0)"], u
    c.ok("a6", "SELECT INBOX")
    c.ok("a7", "LOGOUT")
    c.close()
    alive(b)


def test_nonsync_literal_over_limit_closes(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db, **{"limits.max_literal": "64K"})
    c = Client(b).login()
    c.send(b"a1 APPEND INBOX {100000+}\r\n")
    # the client goes on sending: the server must not read it as commands
    try:
        c.send(b"a2 CREATE Injected\r\n" * 2000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got = c.eof()
    assert got and got[0].startswith(b"a1 BAD [TOOBIG]"), got
    assert any(x.startswith(b"* BYE") for x in got), got
    assert not any(x.startswith(b"a2 ") for x in got), got
    c.close()
    c = Client(b).login()
    u = c.ok("b1", 'LIST "" "Injected"')
    assert u == [], u
    c.close()
    # before login too
    c = Client(b)
    c.send(b"a1 LOGIN {100000+}\r\n")
    got = c.eof()
    assert got and got[0].startswith(b"a1 BAD [TOOBIG]"), got
    c.close()
    alive(b)


def test_disconnect_mid_literal(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    other = Client(b).login()
    other.ok("o1", "SELECT INBOX")
    for k in range(5):
        c = Client(b).login()
        if k % 2 == 0:
            c.send(b"a1 APPEND INBOX {100000}\r\n")
            assert c.resp().startswith(b"+")
            c.send(b"x" * 40000)
        else:
            c.send(b"a1 APPEND INBOX (\\Seen) {100000+}\r\n" + b"y" * 30000)
        time.sleep(0.1)
        if k == 4:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    # in the middle of a LOGIN literal, and of a line
    c = Client(b)
    c.send(b"a1 LOGIN {10}\r\n")
    c.resp()
    c.send(b"abc")
    c.close()
    c = Client(b)
    c.send(b"a1 LOGIN alice")
    c.close()
    # the session that stayed is unaffected and nothing was stored
    u = other.ok("o3", "NOOP")
    assert not any(b"EXISTS" in x for x in u), u
    u = other.ok("o4", "STATUS INBOX (MESSAGES)")
    assert u == [b"* STATUS INBOX (MESSAGES 0)"], u
    other.ok("o5", "LOGOUT")
    alive(b)


# ---------------------------------------------------------------------------
# slow readers and floods
# ---------------------------------------------------------------------------

def test_slow_reader_memory_bounded(bureau_factory, pg, fresh_db):
    """A client asks for ~128 MiB of bodies and stops reading: bureaud
    stops producing (it holds a bounded amount of output per session)."""
    b = server(bureau_factory, pg, fresh_db)
    size = 4 << 20
    c = Client(b, timeout=60).login()
    for i in range(8):
        append(c, message(i, size))
    c.ok("s", "SELECT INBOX")
    # warm up: one full fetch read completely, so caches and pools exist
    u = c.ok("w", "FETCH 1:* (BODY.PEEK[])")
    assert len(u) == 8
    time.sleep(0.5)
    before = rss_kib(b.pid)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    c.send(b"f1 FETCH 1:* (BODY.PEEK[])\r\nf2 FETCH 1:* (BODY.PEEK[])\r\n"
           b"f3 UID FETCH 1:* (BODY.PEEK[])\r\nf4 FETCH 1:* (RFC822)\r\n")
    peak = before
    for _ in range(int(6 * timeout_scale())):
        time.sleep(0.5)
        peak = max(peak, rss_kib(b.pid))
    # a second, idle client is served meanwhile
    d = Client(b).login()
    d.ok("d1", "STATUS INBOX (MESSAGES)")
    d.close()
    grown_mib = (peak - before) / 1024
    # 128 MiB were asked for; a bounded server holds a few messages' worth
    assert grown_mib < 48, f"bureaud grew by {grown_mib:.0f} MiB for one slow reader"
    # now read it all: every body arrives intact
    total = 0
    for tag in ("f1", "f2", "f3", "f4"):
        u, t = c.until(tag)
        assert t.startswith(tag.encode() + b" OK"), t
        assert len(u) == 8, (tag, len(u))
        for x in u:
            m = re.search(rb"\{(\d+)\}\r\n", x)
            assert m and int(m.group(1)) == size, x[:200]
            total += int(m.group(1))
    assert total == 32 * size
    c.ok("z", "LOGOUT")
    c.close()
    alive(b)


def test_pipelined_flood_without_reading(bureau_factory, pg, fresh_db):
    """Megabytes of small commands whose answers are never read: the
    server must stop reading (or drop the client), not queue gigabytes."""
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    before = rss_kib(b.pid)
    chunk = b"a CAPABILITY\r\n" * 20000          # 280 KB in, ~20 MB out
    sent = 0
    stop = threading.Event()

    def writer():
        nonlocal sent
        c.sock.settimeout(2)
        try:
            while not stop.is_set() and sent < 200 * len(chunk):
                c.sock.sendall(chunk)
                sent += len(chunk)
        except (socket.timeout, OSError):
            pass

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    peak = before
    deadline = time.monotonic() + 10 * timeout_scale()
    while t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.3)
        peak = max(peak, rss_kib(b.pid))
    stop.set()
    t.join(5)
    peak = max(peak, rss_kib(b.pid))
    grown_mib = (peak - before) / 1024
    assert grown_mib < 64, (f"bureaud grew by {grown_mib:.0f} MiB while a client sent "
                            f"{sent >> 20} MiB of commands without reading")
    c.close()
    alive(b)


def test_thousand_pipelined_noops(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    c.send("".join(f"n{i} NOOP\r\n" for i in range(1000)).encode())
    for i in range(1000):
        _, t = c.until(f"n{i}")
        assert t.startswith(f"n{i} OK".encode()), t
    # selected: every NOOP goes through a worker, still in order
    c.ok("s", "SELECT INBOX")
    c.send("".join(f"m{i} NOOP\r\n" for i in range(1000)).encode())
    for i in range(1000):
        u, t = c.until(f"m{i}")
        assert t.startswith(f"m{i} OK".encode()), t
        assert u == [], u
    c.ok("z", "LOGOUT")
    c.close()


def test_pipelined_garbage(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    lines = [b"g1 NOOP", b"garbage", b"g2 SELECT INBOX", b"))))", b"g3 FROB (",
             b"\x01\x02\x03", b"g4 NOOP", b"g5 FETCH x:y FLAGS", b"\xff\xfe INBOX",
             b"g6 NOOP"]
    c.send(b"\r\n".join(lines) + b"\r\n")
    tags = []
    while len(tags) < len(lines):
        r = c.resp()
        assert r is not None, tags
        if r.startswith(b"* ") and not r.startswith(b"* BAD"):
            continue
        tags.append(r.split(b" ")[:2])
    good = [t for t in tags if t[1] == b"OK"]
    assert good == [[b"g1", b"OK"], [b"g2", b"OK"], [b"g4", b"OK"], [b"g6", b"OK"]], tags
    assert len([t for t in tags if t[1] == b"BAD"]) == 6, tags
    # replies in the order sent ("garbage" is a tag without a command)
    order = [t[0] for t in tags if t[0] != b"*"]
    assert order == [b"g1", b"garbage", b"g2", b"g3", b"g4", b"g5", b"g6"], tags
    c.ok("g7", "LOGOUT")
    c.close()


def test_flood_of_bad_commands_gets_bye(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    c.ok("a", "NOOP")
    c.send(b"".join(b"x%d BOGUS\r\n" % i for i in range(MAX_BAD + 30)))
    got = c.eof()
    bads = [x for x in got if b" BAD " in x and not x.startswith(b"* BYE")]
    assert len(bads) == MAX_BAD, got
    assert got[len(bads)].startswith(b"* BYE"), got
    assert not any(x.startswith(b"x%d " % MAX_BAD) for x in got), got
    c.close()
    # BAD replies count when they come in a row: a client that now and
    # then sends something unknown is not flooding
    c = Client(b).login()
    c.send(b"".join(b"y%d BOGUS\r\ny%dn NOOP\r\n" % (i, i) for i in range(3 * MAX_BAD)))
    for i in range(3 * MAX_BAD):
        _, t = c.until(f"y{i}n")
        assert t.startswith(f"y{i}n OK".encode()), t
    c.close()
    # syntax errors count too, and so does garbage before login
    c = Client(b)
    c.send(b"".join(b"y%d FETCH (\r\n" % i for i in range(MAX_BAD + 5)))
    got = c.eof()
    assert sum(1 for x in got if b" BAD " in x) == MAX_BAD, got
    assert any(x.startswith(b"* BYE") for x in got), got
    c.close()
    alive(b)


def test_pipelined_edges(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db, **{"limits.max_literal": "64K"})
    c = Client(b)
    # AUTHENTICATE and its response in one write, then more commands
    plain = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + DEFAULT_PASSWORD.encode())
    c.send(b"a1 AUTHENTICATE PLAIN\r\n" + plain + b"\r\na2 SELECT INBOX\r\na3 NOOP\r\n")
    assert c.resp().startswith(b"+")
    for tag in ("a1", "a2", "a3"):
        _, t = c.until(tag)
        assert t.startswith(tag.encode() + b" OK"), t
    # IDLE and DONE in one write: selected (a sync task runs first), and not
    for k in range(2):
        c.send(b"i1 IDLE\r\nDONE\r\ni2 NOOP\r\n")
        assert c.resp().startswith(b"+")
        for tag in ("i1", "i2"):
            _, t = c.until(tag)
            assert t.startswith(tag.encode() + b" OK"), t
        if k == 0:
            c.ok("i3", "UNSELECT")
    # a refused synchronizing literal does not eat the next command
    c.send(b"b1 APPEND INBOX {900000}\r\nb2 NOOP\r\n")
    _, t = c.until("b1")
    assert b"[TOOBIG]" in t, t
    _, t = c.until("b2")
    assert t.startswith(b"b2 OK"), t
    # nothing after LOGOUT is run
    c.send(b"c1 LOGOUT\r\nc2 CREATE AfterLogout\r\nc3 NOOP\r\n")
    got = c.eof()
    assert got[-1].startswith(b"c1 OK"), got
    assert not any(x.startswith(b"c2") or x.startswith(b"c3") for x in got), got
    c.close()
    c = Client(b).login()
    u = c.ok("d1", 'LIST "" AfterLogout')
    assert u == [], u
    c.close()


def test_connection_flood(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db, **{"limits.max_sessions_per_ip": 5})
    held = [Client(b) for _ in range(5)]
    refused = 0
    for _ in range(20):
        try:
            s = socket.create_connection(("127.0.0.1", b.ports["imap"]), timeout=5)
            s.settimeout(5)
            data = s.recv(100)
            if not data:
                refused += 1
            s.close()
        except OSError:
            refused += 1
    assert refused == 20, refused
    # the sessions that got in work
    for i, c in enumerate(held):
        c.ok(f"h{i}", "NOOP")
        c.close()
    time.sleep(0.5)
    alive(b)


def test_list_pattern_backtracking(bureau_factory, pg, fresh_db):
    """A LIST pattern built to make a naive wildcard matcher backtrack
    exponentially must be answered at once."""
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    long_name = "a" * 60
    c.ok("c1", f"CREATE {long_name}")
    c.ok("c2", f"CREATE {'a/' * 20}b")
    for tag, pattern in (("l1", "*a" * 25 + "b"), ("l2", "%a" * 25 + "b"),
                         ("l3", "*%" * 30 + "c"), ("l4", "*/*" * 20 + "z")):
        t0 = time.monotonic()
        u, t = c.cmd(tag, f'LIST "" "{pattern}"')
        took = time.monotonic() - t0
        assert t.startswith(tag.encode() + b" OK"), t
        assert u == [], u
        assert took < 3 * timeout_scale(), f"LIST {pattern!r} took {took:.1f}s"
    # and the matcher still matches what it should
    u = c.ok("l5", 'LIST "" "*a*a*a%"')
    assert any(x.endswith(long_name.encode()) for x in u), u
    u = c.ok("l6", 'LIST "" "a/%/%"')
    assert len(u) == 1 and u[0].endswith(b'"/" a/a/a'), u
    c.ok("z", "LOGOUT")
    c.close()


def test_search_deep_nesting(bureau_factory, pg, fresh_db):
    """SEARCH keys nest without parentheses (NOT NOT ..., OR OR ...): a
    64 KiB line of them must not exhaust a worker's stack."""
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    append(c, message(1, 300))
    c.ok("s", "SELECT INBOX")
    n = 15000
    _, t = c.cmd("n1", "SEARCH " + "NOT " * n + "ALL")
    assert t.startswith(b"n1 OK") or t.startswith(b"n1 BAD") or t.startswith(b"n1 NO"), t
    _, t = c.cmd("n2", "SEARCH " + "OR " * 10000 + "ALL " * 10001)
    assert t.startswith(b"n2 OK") or t.startswith(b"n2 BAD") or t.startswith(b"n2 NO"), t
    _, t = c.cmd("n3", "SEARCH " + "(" * 60 + "ALL" + ")" * 60)
    assert t.startswith(b"n3 OK") or t.startswith(b"n3 BAD"), t
    c.ok("n4", "NOOP")
    c.close()
    alive(b)


ODD_COMMANDS = [
    # session and mailbox commands with odd but parseable arguments
    "ID ()", "ID (\"name\")", "ID (\"name\" \"x\" \"name\" \"y\")",
    "ID (" + " ".join(f'"k{i}" "v"' for i in range(31)) + ")",
    "ID (\"" + "k" * 31 + "\" \"v\")", "ID (\"name\" \"" + "v" * 1025 + "\")",
    "ID (NIL NIL)", "ID ((\"a\" \"b\"))", "ENABLE", "ENABLE (CONDSTORE)",
    "ENABLE \"CONDSTORE\"", "ENABLE FOO BAR QRESYNC", "NAMESPACE x",
    "COMPRESS", "COMPRESS GZIP", "COMPRESS DEFLATE DEFLATE",
    "SELECT", "SELECT INBOX ()", "SELECT INBOX (FOO)", "SELECT INBOX (QRESYNC)",
    "SELECT INBOX (QRESYNC (0 0))", "SELECT INBOX (QRESYNC (1 x))",
    "SELECT INBOX (QRESYNC (1 1 1:x))", "SELECT INBOX (QRESYNC (1 1 1:5 (1 2 3)))",
    "SELECT INBOX (CONDSTORE CONDSTORE)", "SELECT (INBOX)", "SELECT NIL",
    "EXAMINE \"\"", "SELECT \"Other Users\"", "SELECT \"Other Users/\"",
    "SELECT \"Other Users/nobody@nowhere/INBOX\"", "SELECT \"Shared/x/y\"",
    "SELECT &", "SELECT &AOk", "SELECT &-&-", "SELECT \"a//b\"",
    "CREATE", "CREATE \"\"", "CREATE /", "CREATE \"x/\"", "CREATE INBOX/",
    "CREATE \"Other Users/x\"", "CREATE \"Shared/x\"", "CREATE x (USE (\\Bogus))",
    "CREATE y (USE (\\Sent \\Sent))", "CREATE z (FOO)", "CREATE " + "d/" * 200 + "e",
    "DELETE", "DELETE Nowhere", "DELETE \"\"", "RENAME", "RENAME a", "RENAME Nowhere x",
    "RENAME INBOX INBOX", "RENAME Sent Sent/child", "RENAME x x/y/z",
    "SUBSCRIBE", "UNSUBSCRIBE Nowhere", "SUBSCRIBE \"Other Users/a@b/c\"",
    "LIST", "LIST \"\"", "LIST () \"\" *", "LIST (FOO) \"\" *", "LIST \"\" ()",
    "LIST \"\" (\"*\" \"%\" INBOX)", "LIST \"\" * RETURN", "LIST \"\" * RETURN (FOO)",
    "LIST \"\" * RETURN (STATUS)", "LIST \"\" * RETURN (STATUS ())",
    "LIST \"\" * RETURN (STATUS (FOO))", "LIST (RECURSIVEMATCH) \"\" *",
    "LIST (REMOTE SUBSCRIBED SPECIAL-USE) \"\" * RETURN (CHILDREN SUBSCRIBED SPECIAL-USE)",
    "LIST \"Other Users/\" *", "LIST \"\" \"Other Users/*/*\"", "LIST \"\" \"Shared/*\"",
    "LIST \"\" \"*\" RETURN (STATUS (MESSAGES SIZE DELETED MAILBOXID APPENDLIMIT))",
    "LSUB", "LSUB \"\" \"\"", "LSUB \"\" \"Other Users/*\"",
    "STATUS", "STATUS INBOX", "STATUS INBOX ()", "STATUS INBOX (FOO)", "STATUS INBOX MESSAGES",
    "STATUS Nowhere (MESSAGES)", "STATUS \"Other Users/x@y/INBOX\" (MESSAGES)",
    "STATUS INBOX (MESSAGES MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE "
    "HIGHESTMODSEQ APPENDLIMIT MAILBOXID)",
    # ACL (RFC 4314)
    "GETACL", "GETACL Nowhere", "SETACL INBOX", "SETACL INBOX anyone",
    "SETACL INBOX anyone lr", "SETACL INBOX anyone +", "SETACL INBOX anyone -",
    "SETACL INBOX anyone zzz", "SETACL INBOX nobody@nowhere.test lr",
    "SETACL INBOX \"" + "u" * 5000 + "\" lr", "SETACL INBOX -anyone lr",
    "DELETEACL INBOX", "DELETEACL INBOX nobody", "DELETEACL Nowhere anyone",
    "LISTRIGHTS INBOX", "LISTRIGHTS INBOX anyone", "LISTRIGHTS Nowhere anyone",
    "MYRIGHTS", "MYRIGHTS Nowhere", "MYRIGHTS \"Other Users\"",
    # QUOTA (RFC 9208)
    "GETQUOTA", "GETQUOTA \"\"", "GETQUOTA nonexistent-root", "GETQUOTAROOT",
    "GETQUOTAROOT Nowhere", "SETQUOTA \"\" (STORAGE 1)", "SETQUOTA \"\" (FOO 1)",
    "SETQUOTA \"\" (STORAGE x)", "SETQUOTA \"\" STORAGE",
    # METADATA (RFC 5464)
    "GETMETADATA", "GETMETADATA INBOX", "GETMETADATA INBOX ()", "GETMETADATA INBOX foo",
    "GETMETADATA INBOX /private", "GETMETADATA INBOX /private/", "GETMETADATA INBOX //x",
    "GETMETADATA INBOX /private/*", "GETMETADATA (DEPTH 5) INBOX /private/x",
    "GETMETADATA (DEPTH infinity MAXSIZE -1) INBOX /private/x",
    "GETMETADATA (MAXSIZE 99999999999999999999) \"\" /private/x",
    "GETMETADATA (FOO) INBOX /private/x", "GETMETADATA Nowhere /private/x",
    "SETMETADATA INBOX", "SETMETADATA INBOX ()", "SETMETADATA INBOX (/private/x)",
    "SETMETADATA INBOX (/private/x \"v\" /private/x NIL)",
    "SETMETADATA INBOX (/shared/vendor/x/" + "y" * 2000 + " \"v\")",
    "SETMETADATA INBOX (/private/x (a b))", "SETMETADATA \"\" (/private/comment NIL)",
    "SETMETADATA INBOX (/other/x \"v\")",
    # NOTIFY (RFC 5465)
    "NOTIFY", "NOTIFY SET", "NOTIFY SET STATUS", "NOTIFY SET ()", "NOTIFY SET (SELECTED)",
    "NOTIFY SET (SELECTED ())", "NOTIFY SET (SELECTED NONE)",
    "NOTIFY SET (SELECTED (MessageNew))", "NOTIFY SET (FOO (MessageNew MessageExpunge))",
    "NOTIFY SET (SUBTREE (MessageNew MessageExpunge))",
    "NOTIFY SET (SUBTREE () (MessageNew MessageExpunge))",
    "NOTIFY SET (MAILBOXES (INBOX Nowhere &) (MessageNew MessageExpunge))",
    "NOTIFY SET (PERSONAL (MessageNew (FOO BAR) MessageExpunge))",
    "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (SELECTED (MessageNew MessageExpunge))",
    "NOTIFY SET (INBOXES (MailboxName)) (PERSONAL (SubscriptionChange))",
    "NOTIFY NONE x", "NOTIFY NONE",
    # IDLE / UNSELECT / CLOSE with arguments
    "IDLE now", "UNSELECT x", "CHECK x",
]


def test_odd_arguments_everywhere(bureau_factory, pg, fresh_db):
    """Every session and mailbox command with missing, extra, malformed or
    out-of-range arguments: each gets one tagged OK/NO/BAD and the session
    (and the daemon, under the sanitizers) goes on."""
    b = server(bureau_factory, pg, fresh_db)
    b.add_user("bob@example.test", DEFAULT_PASSWORD)
    c = Client(b).login()
    c.ok("s0", "SELECT INBOX")
    for i, cmd in enumerate(ODD_COMMANDS):
        tag = f"o{i}"
        u, t = c.cmd(tag, cmd)
        assert re.match(rb"o\d+ (OK|NO|BAD)( |$)", t), (cmd, t)
        assert not any(x.startswith(b"* BYE") for x in u), (cmd, u)
        # BAD replies in a row would end the session: interleave a NOOP
        if t.split(b" ")[1] == b"BAD":
            c.ok(f"p{i}", "NOOP")
        if c.c.eof:
            raise AssertionError(f"session ended after {cmd!r}")
        if tag == "o0" or i % 40 == 39:
            # back to a known state now and then
            c.cmd(f"q{i}", "SELECT INBOX")
    c.ok("z", "LOGOUT")
    c.close()
    alive(b)


# ---------------------------------------------------------------------------
# FETCH of absent messages
# ---------------------------------------------------------------------------

def test_fetch_absent_uid(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    append(c, message(1, 500))
    c.ok("s", "SELECT INBOX")
    # RFC 3501 6.4.8: a UID set with no existing message is not an error
    for tag, cmd in (("u1", "UID FETCH 999 (FLAGS)"), ("u2", "UID FETCH 2:999 (FLAGS BODY[])"),
                     ("u3", "UID STORE 999 +FLAGS (\\Seen)"), ("u4", "UID SEARCH UID 999"),
                     ("u5", "UID FETCH 4294967295 (UID)")):
        u, t = c.cmd(tag, cmd)
        assert t.startswith(tag.encode() + b" OK"), (cmd, t)
        assert not any(b"FETCH" in x for x in u), (cmd, u)
    u, t = c.cmd("u6", "UID COPY 999 Trash")
    assert t.startswith(b"u6 OK") or t.startswith(b"u6 NO"), t
    assert not any(b"EXPUNGE" in x for x in u), u
    # a sequence number beyond EXISTS is an error (RFC 3501 9, seq-number)
    _, t = c.cmd("s1", "FETCH 2 (FLAGS)")
    assert t.startswith(b"s1 BAD") or t.startswith(b"s1 NO"), t
    u = c.ok("s2", "FETCH 1 (UID)")
    assert u == [b"* 1 FETCH (UID 1)"], u
    c.ok("z", "LOGOUT")
    c.close()


# ---------------------------------------------------------------------------
# authentication abuse
# ---------------------------------------------------------------------------

def test_login_with_100k_password(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    big = "p" * 100_000
    c = Client(b)
    # quoted: over the 64 KiB line limit
    _, t = c.cmd("a1", f'LOGIN "{ALICE}" "{big}"')
    assert t.startswith(b"a1 BAD [TOOBIG]"), t
    # synchronizing literal: refused without "+"
    c.send(f'a2 LOGIN "{ALICE}" {{{len(big)}}}\r\n'.encode())
    r = c.resp()
    assert r.startswith(b"a2 BAD [TOOBIG]") or r.startswith(b"a2 NO [TOOBIG]"), r
    # a long but acceptable password is simply wrong
    c.send(f'a3 LOGIN "{ALICE}" {{60000+}}\r\n'.encode() + b"p" * 60000 + b"\r\n")
    _, t = c.until("a3")
    assert t.startswith(b"a3 NO"), t
    c.login()
    c.ok("a4", "LOGOUT")
    c.close()
    # the same through AUTHENTICATE: a response line over the limit
    c = Client(b)
    c.send(b"b1 AUTHENTICATE PLAIN\r\n")
    assert c.resp().startswith(b"+")
    c.send(base64.b64encode(b"\0" + ALICE.encode() + b"\0" + b"p" * 100_000) + b"\r\n")
    _, t = c.until("b1")
    assert t.startswith(b"b1 BAD") or t.startswith(b"b1 NO"), t
    c.login()
    c.close()
    # non-synchronizing: refused and the connection closes
    c = Client(b)
    c.send(f'c1 LOGIN "{ALICE}" {{{len(big)}+}}\r\n{big}\r\n'.encode())
    got = c.eof()
    assert got and got[0].startswith(b"c1 BAD [TOOBIG]"), got
    c.close()
    alive(b)


def test_authenticate_bad_base64(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b)
    for tag, ir in (("a1", "!!!notbase64"), ("a2", "AGFsaWNl="), ("a3", "abc"),
                    ("a4", "YQ==YQ==")):
        _, t = c.cmd(tag, f"AUTHENTICATE PLAIN {ir}")
        assert t.startswith(tag.encode() + b" BAD"), (ir, t)
    # the continuation form
    c.send(b"b1 AUTHENTICATE PLAIN\r\n")
    assert c.resp().startswith(b"+")
    c.send(b"%%% not base64 %%%\r\n")
    _, t = c.until("b1")
    assert t.startswith(b"b1 BAD"), t
    # a NUL inside the response line
    c.send(b"b2 AUTHENTICATE PLAIN\r\n")
    assert c.resp().startswith(b"+")
    c.send(b"AGFs\x00aWNl\r\n")
    _, t = c.until("b2")
    assert t.startswith(b"b2 BAD") and b"TOOBIG" not in t, t
    # cancelled
    c.send(b"b3 AUTHENTICATE PLAIN\r\n")
    assert c.resp().startswith(b"+")
    c.send(b"*\r\n")
    _, t = c.until("b3")
    assert t.startswith(b"b3 BAD"), t
    # valid base64, not a PLAIN message
    _, t = c.cmd("b4", "AUTHENTICATE PLAIN " + base64.b64encode(b"no nuls here").decode())
    assert t.startswith(b"b4 NO"), t
    # an unknown mechanism
    _, t = c.cmd("b5", "AUTHENTICATE X-UNKNOWN")
    assert t.startswith(b"b5 NO") or t.startswith(b"b5 BAD"), t
    # and then a real login in the same session
    plain = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + DEFAULT_PASSWORD.encode()).decode()
    c.ok("b6", f"AUTHENTICATE PLAIN {plain}")
    c.ok("b7", "SELECT INBOX")
    c.close()


# ---------------------------------------------------------------------------
# IDLE, STARTTLS, COMPRESS, TLS
# ---------------------------------------------------------------------------

def test_idle_then_garbage(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    c.ok("s", "SELECT INBOX")
    c.send(b"i1 IDLE\r\n")
    assert c.resp().startswith(b"+")
    c.send(b"NOT DONE AT ALL\r\n")
    _, t = c.until("i1")
    assert t.startswith(b"i1 BAD"), t
    c.ok("n1", "NOOP")
    # a command instead of DONE ends IDLE with BAD too; it is not run
    c.send(b"i2 IDLE\r\n")
    assert c.resp().startswith(b"+")
    c.send(b"x1 CREATE NotWanted\r\n")
    _, t = c.until("i2")
    assert t.startswith(b"i2 BAD"), t
    u = c.ok("n2", 'LIST "" NotWanted')
    assert u == [], u
    # a long line without an end during IDLE
    c.send(b"i3 IDLE\r\n")
    assert c.resp().startswith(b"+")
    c.send(b"D" * 100_000 + b"\r\n")
    _, t = c.until("i3")
    assert t.startswith(b"i3 BAD"), t
    # whatever the rest of that line became, the session answers
    c.send(b"n3 NOOP\r\n")
    while True:
        r = c.resp()
        assert r is not None
        if r.startswith(b"n3 "):
            assert r.startswith(b"n3 OK"), r
            break
    # done in lower case is fine (RFC 2177 says "DONE", case-insensitive atom)
    c.send(b"i4 IDLE\r\n")
    assert c.resp().startswith(b"+")
    c.send(b"done\r\n")
    _, t = c.until("i4")
    assert t.startswith(b"i4 OK"), t
    c.ok("z", "LOGOUT")
    c.close()


def test_starttls_discards_pipelined_plaintext(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b)
    c.send(f'a STARTTLS\r\nb LOGIN "{ALICE}" "{DEFAULT_PASSWORD}"\r\nc CREATE Injected\r\n'.encode())
    r = c.resp()
    assert r.startswith(b"a OK"), r
    assert c.c.buf == b"", c.c.buf
    c.c.sock = tls_context().wrap_socket(c.c.sock)
    u, t = c.cmd("d", "CAPABILITY")
    # still not logged in: the pipelined LOGIN was dropped
    assert t.startswith(b"d OK"), t
    assert any(b"AUTH=PLAIN" in x for x in u) and not any(b"STARTTLS" in x for x in u), u
    assert not any(x.startswith(b"b ") or x.startswith(b"c ") for x in u), u
    _, t = c.cmd("e", "SELECT INBOX")
    assert t.startswith(b"e BAD"), t
    c.login()
    u = c.ok("f", 'LIST "" Injected')
    assert u == [], u
    _, t = c.cmd("g", "STARTTLS")
    assert t.startswith(b"g BAD"), t
    c.close()


def test_garbage_in_compress_and_tls(bureau_factory, pg, fresh_db):
    b = server(bureau_factory, pg, fresh_db)
    c = Client(b).login()
    c.ok("a", "COMPRESS DEFLATE")
    c.sock.sendall(os.urandom(4096))
    c.eof()
    c.close()
    # plaintext on the implicit-TLS port
    s = socket.create_connection(("127.0.0.1", b.ports["imaps"]), timeout=10)
    s.sendall(b"a LOGIN alice secret\r\n" * 10)
    s.settimeout(10)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
    # a TLS client that stops after the handshake starts
    s = socket.create_connection(("127.0.0.1", b.ports["imaps"]), timeout=10)
    s.sendall(b"\x16\x03\x01\x00\xff" + b"\x01" * 20)
    s.close()
    alive(b)
    c = Client(b, tls=True).login()
    c.ok("t", "NOOP")
    c.close()


# ---------------------------------------------------------------------------
# a hostile transcript, to show the same through the runner
# ---------------------------------------------------------------------------

HOSTILE_SCRIPT = r"""
!user alice
!config limits.max_line = 1K
A: connect
A<= * OK $*
A> a1 FROBNICATE
A<= a1 BAD $*
A> a2 FETCH 1 FLAGS
A<= a2 BAD $*
A: login alice
A> a3 SELECT INBOX
A< a3 OK [READ-WRITE] $*
A> a4 FETCH 1:x (FLAGS)
A<= a4 BAD $*
A>> a5 LIST "" $/x/\r\n
A<= a5 BAD $*
A> a6 UID FETCH 77 (FLAGS)
A<= a6 OK $*
A> a7 NOOP
A<= a7 OK $*
"""


def test_hostile_transcript(bureau_factory, pg, fresh_db):
    script = parse_script(HOSTILE_SCRIPT.replace("$/x/", "x" * 3000), "<hostile>")
    b = bureau_factory(database_url=pg.url(fresh_db), config=dict(script.config)).start()
    run_script(script, b.ports, lambda a, p: b.add_user(a, p), timeout=10 * timeout_scale())

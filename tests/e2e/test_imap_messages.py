"""End-to-end tests of the IMAP message commands against a real bureaud:
APPEND (MULTIAPPEND, CATENATE, REPLACE, APPENDUID, TRYCREATE, TOOBIG),
FETCH (every item and section, BINARY, CONDSTORE/QRESYNC), STORE, SEARCH
(every key, ESEARCH, SEARCHRES, IMAP4rev2), SORT, THREAD, COPY/MOVE,
EXPUNGE, two sessions seeing each other's changes at the allowed points,
and the hard-MIME corpus (tests/mime-corpus) appended and fetched back byte
for byte with a well-formed BODYSTRUCTURE.

The server is driven with Python's imaplib and with a small raw-socket
client written here (RawImap) where the exact responses and their order
matter; BODYSTRUCTURE and ENVELOPE are read with a small s-expression
reader written here too. No server code is used to check the server.
"""

from __future__ import annotations

import datetime
import email.utils
import imaplib
import itertools
import re
import socket
import time
from pathlib import Path

import pytest

from bureau_fixture import REPO, Bureau

pytestmark = pytest.mark.imap

PASSWORD = "imap-test-password-1"
CORPUS = REPO / "tests" / "mime-corpus"
_counter = itertools.count(1)


# ---------------------------------------------------------------------------
# a raw IMAP client (test side), and an s-expression reader
# ---------------------------------------------------------------------------

class Lit:
    """A literal argument, sent as a non-synchronizing literal (LITERAL+)."""

    def __init__(self, data: bytes, binary: bool = False):
        self.data = data
        self.binary = binary


class RawImap:
    """Line/literal level IMAP client: cmd() returns (untagged, tagged) where
    untagged is the list of complete responses (literals inline, without
    the trailing CRLF) in the order received and tagged the tagged line
    without the tag (e.g. b"OK [APPENDUID 1 5] done")."""

    def __init__(self, port: int, timeout: float = 60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.n = 0
        self.greeting = self.read_response()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data

    def read_line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return line
            self._fill()

    def read_bytes(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self) -> bytes:
        out = b""
        while True:
            line = self.read_line()
            out += line
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if not m:
                return out[:-2]
            out += self.read_bytes(int(m.group(1)))

    def send(self, *parts) -> str:
        self.n += 1
        tag = f"T{self.n}"
        data = tag.encode() + b" "
        for p in parts:
            if isinstance(p, Lit):
                data += (b"~" if p.binary else b"") + b"{%d+}\r\n" % len(p.data) + p.data
            elif isinstance(p, bytes):
                data += p
            else:
                data += p.encode()
        self.sock.sendall(data + b"\r\n")
        return tag

    def wait(self, tag: str) -> tuple[list[bytes], bytes]:
        untagged = []
        while True:
            r = self.read_response()
            if r.startswith(tag.encode() + b" "):
                return untagged, r[len(tag) + 1:]
            untagged.append(r)

    def cmd(self, *parts) -> tuple[list[bytes], bytes]:
        return self.wait(self.send(*parts))

    def ok(self, *parts) -> list[bytes]:
        u, t = self.cmd(*parts)
        assert t.startswith(b"OK"), f"{parts!r}: {t!r}\n{u!r}"[:2000]
        return u

    def login(self, user: str, password: str = PASSWORD) -> "RawImap":
        self.ok(f'LOGIN "{user}" "{password}"')
        return self


def sexp(data: bytes, pos: int = 0):
    """Read one value: list, string/literal (bytes), NIL (None) or atom
    (bytes; 'BODY[...]<n>' stays one atom). Returns (value, new pos)."""
    while pos < len(data) and data[pos:pos + 1] == b" ":
        pos += 1
    c = data[pos:pos + 1]
    if c == b"(":
        out, pos = [], pos + 1
        while True:
            while data[pos:pos + 1] == b" ":
                pos += 1
            if data[pos:pos + 1] == b")":
                return out, pos + 1
            if pos >= len(data):
                raise ValueError("unterminated list")
            v, pos = sexp(data, pos)
            out.append(v)
    if c == b'"':
        out, pos = bytearray(), pos + 1
        while data[pos:pos + 1] != b'"':
            if data[pos:pos + 1] == b"\\":
                pos += 1
            if pos >= len(data):
                raise ValueError("unterminated string")
            out += data[pos:pos + 1]
            pos += 1
        return bytes(out), pos + 1
    m = re.compile(rb"~?\{(\d+)\}\r\n").match(data, pos)
    if m:
        n = int(m.group(1))
        return data[m.end():m.end() + n], m.end() + n
    start = pos
    depth = 0
    while pos < len(data):
        ch = data[pos:pos + 1]
        if ch == b"[":
            depth += 1
        elif ch == b"]":
            depth -= 1
        elif depth == 0 and ch in (b" ", b"(", b")"):
            break
        pos += 1
    if pos == start:
        raise ValueError(f"unexpected {data[pos:pos + 20]!r}")
    atom = data[start:pos]
    return (None if atom.upper() == b"NIL" else atom), pos


def parse_fetch(resp: bytes) -> tuple[int, dict]:
    """b'* 3 FETCH (UID 7 FLAGS (\\Seen) ...)' -> (3, {b'UID': b'7', ...})"""
    m = re.match(rb"\* (\d+) FETCH ", resp)
    assert m, resp[:200]
    items, end = sexp(resp, m.end())
    assert end == len(resp), f"trailing bytes after FETCH: {resp[end:end + 80]!r}"
    assert len(items) % 2 == 0, items
    d = {}
    for k, v in zip(items[::2], items[1::2]):
        d[k.upper() if b"[" not in k else k] = v
    return int(m.group(1)), d


def fetches(untagged: list[bytes]) -> dict[int, dict]:
    out = {}
    for r in untagged:
        if re.match(rb"\* \d+ FETCH ", r):
            seq, d = parse_fetch(r)
            out.setdefault(seq, {}).update(d)
    return out


def fetch_by_uid(untagged: list[bytes]) -> dict[int, dict]:
    return {int(d[b"UID"]): d for d in fetches(untagged).values() if b"UID" in d}


def search_nums(untagged: list[bytes], word: bytes = b"SEARCH") -> list[int]:
    for r in untagged:
        if r.startswith(b"* " + word):
            rest = r[len(word) + 2:].split(b"(")[0]
            return [int(x) for x in rest.split()]
    raise AssertionError(f"no {word!r} response in {untagged!r}")


def esearch(untagged: list[bytes]) -> dict:
    for r in untagged:
        if r.startswith(b"* ESEARCH"):
            toks = r.split()
            d: dict = {"UID": False}
            i = 2
            if toks[i].startswith(b"(TAG"):
                d["TAG"] = toks[i + 1].rstrip(b")").strip(b'"').decode()
                i += 2
            while i < len(toks):
                k = toks[i].decode().upper()
                if k == "UID":
                    d["UID"] = True
                    i += 1
                    continue
                d[k] = toks[i + 1].decode()
                i += 2
            return d
    raise AssertionError(f"no ESEARCH in {untagged!r}")


def expand_set(s: str) -> list[int]:
    out = []
    for part in s.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            out += list(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


def code_of(tagged: bytes) -> bytes:
    m = re.match(rb"\w+ \[([^\]]*)\]", tagged)
    return m.group(1) if m else b""


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(pg):
    """One bureaud for the module; every test makes its own users."""
    db = pg.create_database("imapmsg")
    b = Bureau(database_url=pg.url(db), name="imapmsg")
    b.start()
    try:
        yield b
    finally:
        died = b.died_unexpectedly()
        tail = b.log_tail(60)
        if b.running():
            b.stop(timeout=30)
        reports = b.sanitizer_reports()
        b.destroy()
        assert died is None, f"bureaud exited on its own with status {died}\n{tail}"
        assert not reports, "sanitizer report:\n" + "\n".join(reports[:20])


def new_user(b: Bureau, prefix: str = "u") -> str:
    addr = f"{prefix}{next(_counter)}-{int(time.time() * 1000) % 100000}@example.test"
    b.add_user(addr, PASSWORD)
    return addr


@pytest.fixture
def user(srv) -> str:
    return new_user(srv)


@pytest.fixture
def raw(srv, user):
    c = RawImap(srv.ports["imap"]).login(user)
    yield c
    c.close()


def imap_client(b: Bureau, user: str) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", b.ports["imap"], timeout=60)
    c.login(user, PASSWORD)
    return c


# ---------------------------------------------------------------------------
# messages used below
# ---------------------------------------------------------------------------

def simple_msg(subject="Hello", frm="Alice Example <alice@example.org>",
               to="Bob <bob@example.net>", body="Hello Bob.\r\n", date=None, extra=""):
    date = date or "Mon, 12 Jan 2004 09:00:00 +0000"
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <{abs(hash((subject, body, date))) }@example.org>\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{body}").encode()


INNER = (b"From: Carol <carol@example.com>\r\n"
         b"To: Dave <dave@example.com>\r\n"
         b"Subject: inner message\r\n"
         b"Date: Tue, 13 Jan 2004 10:00:00 +0100\r\n"
         b"Message-ID: <inner@example.com>\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
         b"\r\n"
         b"--alt\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"\r\n"
         b"inner plain\r\n"
         b"--alt\r\n"
         b"Content-Type: text/html; charset=utf-8\r\n"
         b"\r\n"
         b"<p>inner html</p>\r\n"
         b"--alt--\r\n")

PAYLOAD = bytes(range(256)) * 3          # binary, with NULs
import base64 as _b64                    # noqa: E402
B64 = _b64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
QP_TEXT = "Gr\u00fc\u00dfe, caf\u00e9 = 100%\r\n".encode("utf-8")
QP_ENC = b"Gr=C3=BC=C3=9Fe, caf=C3=A9 =3D 100%\r\n"

MULTI = (b"From: \"Alice Example\" <alice@example.org>\r\n"
         b"Sender: Secretary <sec@example.org>\r\n"
         b"Reply-To: replies@example.org\r\n"
         b"To: Bob <bob@example.net>, undisclosed-recipients:;\r\n"
         b"Cc: Team: carol@example.com, dave@example.com;\r\n"
         b"Bcc: hidden@example.net\r\n"
         b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and a \"quoted\" word\r\n"
         b"Date: Wed, 14 Jan 2004 11:30:00 -0500\r\n"
         b"Message-ID: <multi@example.org>\r\n"
         b"In-Reply-To: <parent@example.org>\r\n"
         b"X-Custom: one\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
         b"\r\n"
         b"preamble\r\n"
         b"--outer\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n"
         b"Content-Language: en, de\r\n"
         b"\r\n" + QP_ENC +
         b"--outer\r\n"
         b"Content-Type: message/rfc822\r\n"
         b"Content-Description: forwarded\r\n"
         b"\r\n" + INNER +
         b"--outer\r\n"
         b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
         b"Content-Transfer-Encoding: base64\r\n"
         b"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
         b"Content-ID: <part3@example.org>\r\n"
         b"\r\n" + B64 +
         b"--outer\r\n"
         b"Content-Type: application/x-weird\r\n"
         b"Content-Transfer-Encoding: x-uuencode\r\n"
         b"\r\n"
         b"begin 644 x\r\nend\r\n"
         b"--outer--\r\n"
         b"epilogue\r\n")


def append(c: RawImap, msg: bytes, mailbox="INBOX", flags="", date=None) -> int:
    parts = [f"APPEND {mailbox} "]
    if flags:
        parts.append(f"({flags}) ")
    if date:
        parts.append(f'"{date}" ')
    parts.append(Lit(msg))
    u, t = c.cmd(*parts)
    assert t.startswith(b"OK"), t
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", t)
    assert m, t
    return int(m.group(2))


def body_of(d: dict, key: bytes):
    for k, v in d.items():
        if k.upper() == key.upper():
            return v
    raise KeyError(f"{key!r} not in {list(d)!r}")


# ---------------------------------------------------------------------------
# APPEND
# ---------------------------------------------------------------------------

def test_append_flags_date_appenduid(srv, user):
    c = imap_client(srv, user)
    msg = simple_msg()
    typ, data = c.append("INBOX", r"(\Flagged \Draft $Label1)",
                         '"14-Jul-2021 10:20:30 +0200"', msg)
    assert typ == "OK", data
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert m, data
    uidvalidity, uid = int(m.group(1)), int(m.group(2))
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    assert int(c.response("UIDVALIDITY")[1][0]) == uidvalidity
    typ, data = c.uid("FETCH", str(uid), "(FLAGS INTERNALDATE RFC822.SIZE)")
    assert typ == "OK"
    flags = imaplib.ParseFlags(data[0])
    assert set(flags) == {rb"\Flagged", rb"\Draft", b"$Label1"}
    assert f"RFC822.SIZE {len(msg)}".encode() in data[0]
    t = imaplib.Internaldate2tuple(data[0])
    assert time.mktime(t) == datetime.datetime(2021, 7, 14, 8, 20, 30,
                                               tzinfo=datetime.timezone.utc).timestamp()
    c.logout()


def test_multiappend_all_or_nothing(srv, user, raw):
    msgs = [simple_msg(subject=f"multi {i}") for i in range(5)]
    parts = ["APPEND INBOX "]
    for i, m in enumerate(msgs):
        if i:
            parts.append(" ")
        parts += ["(\\Seen) ", Lit(m)]
    u, t = raw.cmd(*parts)
    assert t.startswith(b"OK"), t
    m = re.search(rb"\[APPENDUID (\d+) (\S+)\]", t)
    assert m and len(expand_set(m.group(2).decode())) == 5
    # one bad message (a bad flag) in the middle: nothing is stored
    u, t = raw.cmd("APPEND INBOX ", Lit(msgs[0]), " (\\Recent) ", Lit(msgs[1]))
    assert t.startswith(b"BAD"), t
    u = raw.ok("STATUS INBOX (MESSAGES)")
    assert b"MESSAGES 5" in u[0]


def test_append_to_missing_mailbox_trycreate(raw):
    u, t = raw.cmd("APPEND NoSuchBox ", Lit(simple_msg()))
    assert t.startswith(b"NO") and code_of(t) == b"TRYCREATE", t
    u, t = raw.cmd("APPEND INBOX/also/missing ", Lit(simple_msg()))
    assert t.startswith(b"NO") and code_of(t) == b"TRYCREATE", t


def test_append_literal_over_limit_toobig(pg, bureau_factory):
    b = bureau_factory(database_url=pg.url(pg.create_database("imaplimit")),
                       config={"limits.max_literal": "16K"}).start()
    addr = new_user(b)
    c = RawImap(b.ports["imap"]).login(addr)
    # a synchronizing literal over the limit is refused before it is sent
    tag = c.send("APPEND INBOX {100000}")
    r = c.read_response()
    assert r.startswith(tag.encode() + b" BAD") or r.startswith(tag.encode() + b" NO"), r
    assert b"TOOBIG" in r, r
    # the session goes on
    c.ok("NOOP")
    u, t = c.cmd("APPEND INBOX ", Lit(b"Subject: small\r\n\r\nok\r\n"))
    assert t.startswith(b"OK"), t
    # the limit is advertised
    u = c.ok("CAPABILITY")
    assert b"APPENDLIMIT=16384" in u[0], u
    c.close()


def test_append_over_quota(srv):
    addr = new_user(srv)
    srv.ctl("user", "quota", addr, "--messages", "2", check=True)
    c = RawImap(srv.ports["imap"]).login(addr)
    append(c, simple_msg(subject="q1"))
    append(c, simple_msg(subject="q2"))
    u, t = c.cmd("APPEND INBOX ", Lit(simple_msg(subject="q3")))
    assert t.startswith(b"NO") and code_of(t) == b"OVERQUOTA", t
    c.close()


def test_append_binary_literal8(raw):
    msg = (b"Subject: binary\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n" + bytes(range(256)))
    u, t = raw.cmd("APPEND INBOX ", Lit(msg, binary=True))
    assert t.startswith(b"OK"), t
    raw.ok("SELECT INBOX")
    f = fetches(raw.ok("FETCH 1 (BODY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1])"))[1]
    assert body_of(f, b"BODY[]") == msg
    assert body_of(f, b"BINARY[1]") == bytes(range(256))
    assert int(body_of(f, b"BINARY.SIZE[1]")) == 256


def test_catenate(raw):
    uid = append(raw, MULTI)
    u = raw.ok("SELECT INBOX")
    uv = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(u)).group(1))
    head = b"From: me@example.org\r\nSubject: catenated\r\n\r\nSee the attachment:\r\n"
    u, t = raw.cmd("APPEND INBOX CATENATE (TEXT ", Lit(head),
                   f' URL "/INBOX;UIDVALIDITY={uv}/;UID={uid}/;SECTION=1"',
                   " TEXT ", Lit(b"\r\n-- \r\nend\r\n"),
                   f' URL "/INBOX/;UID={uid}/;SECTION=HEADER.FIELDS%20(Subject)"',
                   f' URL "imap://u@localhost/INBOX/;UID={uid}/;PARTIAL=0.4")')
    assert t.startswith(b"OK"), t
    new_uid = int(re.search(rb"APPENDUID \d+ (\d+)", t).group(1))
    f = fetch_by_uid(raw.ok(f"UID FETCH {new_uid} BODY.PEEK[]"))[new_uid]
    subject_hdr = [ln for ln in MULTI.split(b"\r\n") if ln.startswith(b"Subject:")][0]
    expect = head + QP_ENC[:-2] + b"\r\n-- \r\nend\r\n" + subject_hdr + b"\r\n\r\n" + MULTI[:4]
    assert body_of(f, b"BODY[]") == expect
    # a URL with the wrong UIDVALIDITY, or to a missing message
    for url in (f"/INBOX;UIDVALIDITY={uv + 1}/;UID={uid}", f"/INBOX/;UID={uid + 100}",
                "/NoSuchBox/;UID=1", "http://example.org/"):
        u, t = raw.cmd("APPEND INBOX CATENATE (TEXT ", Lit(b"x"), f' URL "{url}")')
        assert t.startswith(b"NO") and code_of(t).startswith(b"BADURL"), (url, t)


def test_replace(raw):
    raw.ok("CREATE MyDrafts")
    a = append(raw, simple_msg(subject="draft v1"), "MyDrafts", "\\Draft")
    append(raw, simple_msg(subject="other"), "MyDrafts")
    raw.ok("SELECT MyDrafts")
    u, t = raw.cmd("REPLACE 1 MyDrafts (\\Draft \\Seen) ", Lit(simple_msg(subject="draft v2")))
    assert t.startswith(b"OK"), t
    joined = b"\n".join(u)
    assert re.search(rb"\* OK \[APPENDUID \d+ (\d+)\]", joined), u
    assert b"* 1 EXPUNGE" in u, u
    u = raw.ok("UID SEARCH SUBJECT draft")
    uids = search_nums(u)
    assert len(uids) == 1 and uids[0] != a
    # UID REPLACE of a message that is not there
    u, t = raw.cmd("UID REPLACE 99999 MyDrafts ", Lit(simple_msg(subject="x")))
    assert t.startswith(b"NO"), t
    u, t = raw.cmd(f"UID REPLACE {uids[0]} MyDrafts ", Lit(simple_msg(subject="draft v3")))
    assert t.startswith(b"OK"), t
    assert any(re.match(rb"\* \d+ EXPUNGE", r) for r in u), u


# ---------------------------------------------------------------------------
# FETCH
# ---------------------------------------------------------------------------

def test_fetch_envelope_and_bodystructure(raw):
    uid = append(raw, MULTI)
    raw.ok("SELECT INBOX")
    f = fetch_by_uid(raw.ok(f"UID FETCH {uid} (ENVELOPE BODYSTRUCTURE BODY)"))[uid]
    env = f[b"ENVELOPE"]
    assert len(env) == 10
    date, subject, frm, sender, reply_to, to, cc, bcc, irt, mid = env
    assert date == b"Wed, 14 Jan 2004 11:30:00 -0500"
    assert subject == b'=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and a "quoted" word'
    assert frm == [[b"Alice Example", None, b"alice", b"example.org"]]
    assert sender == [[b"Secretary", None, b"sec", b"example.org"]]
    assert reply_to == [[None, None, b"replies", b"example.org"]]
    # a group with no members: start marker and end marker
    assert to[0] == [b"Bob", None, b"bob", b"example.net"]
    assert to[1] == [None, None, b"undisclosed-recipients", None]
    assert to[2] == [None, None, None, None]
    assert cc == [[None, None, b"Team", None],
                  [None, None, b"carol", b"example.com"],
                  [None, None, b"dave", b"example.com"],
                  [None, None, None, None]]
    assert bcc == [[None, None, b"hidden", b"example.net"]]
    assert irt == b"<parent@example.org>" and mid == b"<multi@example.org>"

    bs = f[b"BODYSTRUCTURE"]
    # multipart/mixed: 4 parts, then subtype and extension data
    parts = [p for p in bs if isinstance(p, list)]
    assert len(parts) >= 4
    assert bs[4].upper() == b"MIXED"
    assert [x.lower() for x in bs[5]] == [b"boundary", b"outer"]
    text = bs[0]
    assert [text[0].upper(), text[1].upper()] == [b"TEXT", b"PLAIN"]
    # the CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1)
    assert text[5].upper() == b"QUOTED-PRINTABLE" and int(text[6]) == len(QP_ENC) - 2
    assert int(text[7]) == 1
    assert text[10] == [b"en", b"de"]         # language list
    rfc = bs[1]
    assert [rfc[0].upper(), rfc[1].upper()] == [b"MESSAGE", b"RFC822"]
    assert rfc[4] == b"forwarded" and int(rfc[6]) == len(INNER) - 2
    assert rfc[7][1] == b"inner message"      # its envelope
    inner = rfc[8]
    assert inner[2].upper() == b"ALTERNATIVE"
    assert int(rfc[9]) in (INNER.count(b"\r\n") - 1, INNER.count(b"\r\n"))
    att = bs[2]
    assert [att[0].upper(), att[1].upper()] == [b"APPLICATION", b"OCTET-STREAM"]
    assert att[3] == b"<part3@example.org>"
    assert att[5].upper() == b"BASE64" and int(att[6]) == len(B64) - 2
    assert att[8][0].upper() == b"ATTACHMENT" and att[8][1][1] == b"data.bin"
    # BODY: the same without extension data
    body = f[b"BODY"]
    assert len([p for p in body if isinstance(p, list)]) == 4 and len(body) == 5
    assert len(body[0]) == 8


def test_fetch_macros(raw):
    uid = append(raw, simple_msg())
    raw.ok("SELECT INBOX")
    for macro, keys in (("ALL", {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"}),
                        ("FAST", {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"}),
                        ("FULL", {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE",
                                  b"BODY"})):
        f = fetches(raw.ok(f"FETCH 1 {macro}"))[1]
        assert set(f) == keys, (macro, f.keys())
    f = fetch_by_uid(raw.ok(f"UID FETCH {uid} FAST"))[uid]
    assert b"UID" in f     # UID FETCH always says UID
    u, t = raw.cmd("FETCH 1 (FLAGS ALL)")
    assert t.startswith(b"BAD"), t


def test_fetch_sections(raw):
    uid = append(raw, MULTI)
    raw.ok("SELECT INBOX")
    hdr_end = MULTI.index(b"\r\n\r\n") + 4
    header, text = MULTI[:hdr_end], MULTI[hdr_end:]
    items = ("BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME] "
             "BODY.PEEK[2] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] "
             "BODY.PEEK[2.2.MIME] BODY.PEEK[3] BODY.PEEK[9] BODY.PEEK[]<0.10> "
             "BODY.PEEK[]<100000000.5> BODY.PEEK[HEADER.FIELDS (subject FROM x-custom)] "
             "BODY.PEEK[HEADER.FIELDS.NOT (Subject From X-Custom)] "
             "BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] RFC822.HEADER RFC822.SIZE")
    f = fetches(raw.ok(f"FETCH 1 ({items})"))[1]
    assert body_of(f, b"BODY[HEADER]") == header
    assert body_of(f, b"BODY[TEXT]") == text
    assert body_of(f, b"BODY[1]") == QP_ENC[:-2]
    assert body_of(f, b"BODY[1.MIME]") == (b"Content-Type: text/plain; charset=utf-8\r\n"
                                            b"Content-Transfer-Encoding: quoted-printable\r\n"
                                            b"Content-Language: en, de\r\n\r\n")
    assert body_of(f, b"BODY[2]") == INNER[:-2]
    ih = INNER.index(b"\r\n\r\n") + 4
    assert body_of(f, b"BODY[2.HEADER]") == INNER[:ih]
    assert body_of(f, b"BODY[2.TEXT]") == INNER[ih:-2]
    assert body_of(f, b"BODY[2.1]") == b"inner plain"
    assert body_of(f, b"BODY[2.2.MIME]") == b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    assert body_of(f, b"BODY[3]") == B64[:-2]
    assert body_of(f, b"BODY[9]") is None
    assert body_of(f, b"BODY[]<0>") == MULTI[:10]
    assert body_of(f, b"BODY[]<100000000>") == b""
    fields = body_of(f, b"BODY[HEADER.FIELDS (subject FROM x-custom)]")
    assert fields.split(b"\r\n")[:3] == [ln for ln in header.split(b"\r\n")
                                         if ln.split(b":")[0].lower() in
                                         (b"from", b"subject", b"x-custom")]
    assert fields.endswith(b"\r\n\r\n")
    notf = body_of(f, b"BODY[HEADER.FIELDS.NOT (Subject From X-Custom)]")
    assert b"Subject:" not in notf and b"Sender:" in notf and notf.endswith(b"\r\n\r\n")
    assert body_of(f, b"BODY[2.HEADER.FIELDS (SUBJECT)]") == b"Subject: inner message\r\n\r\n"
    assert f[b"RFC822.HEADER"] == header
    # nothing of that set \Seen
    f = fetches(raw.ok("FETCH 1 (FLAGS)"))[1]
    assert rb"\Seen" not in f[b"FLAGS"]
    # BODY[TEXT] does, and FLAGS comes with it
    f = fetches(raw.ok("FETCH 1 (BODY[TEXT]<0.8>)"))[1]
    assert rb"\Seen" in f[b"FLAGS"] and body_of(f, b"BODY[TEXT]<0>") == text[:8]
    f = fetches(raw.ok("FETCH 1 (RFC822 RFC822.TEXT)"))[1]
    assert f[b"RFC822"] == MULTI and f[b"RFC822.TEXT"] == text
    # bad section syntax
    for bad in ("BODY[0]", "BODY[1.]", "BODY[HEADER.FIELDS]", "BODY[MIME]", "BODY[1]<5>",
                "BODY[1]<0.0>", "BINARY[HEADER]", "BODY[TEXT", "X-GM-LABELS"):
        u, t = raw.cmd(f"FETCH 1 ({bad})")
        assert t.startswith(b"BAD"), (bad, t)


def test_fetch_binary(raw):
    uid = append(raw, MULTI)
    raw.ok("SELECT INBOX")
    u = raw.ok(f"UID FETCH {uid} (BINARY.PEEK[3] BINARY.SIZE[3] BINARY.PEEK[1] "
               "BINARY.SIZE[1] BINARY.PEEK[3]<0.16>)")
    f = fetch_by_uid(u)[uid]
    assert body_of(f, b"BINARY[3]") == PAYLOAD
    assert int(body_of(f, b"BINARY.SIZE[3]")) == len(PAYLOAD)
    assert body_of(f, b"BINARY[1]") == QP_TEXT[:-2]
    assert int(body_of(f, b"BINARY.SIZE[1]")) == len(QP_TEXT) - 2
    assert body_of(f, b"BINARY[3]<0>") == PAYLOAD[:16]
    # binary data with NULs comes as literal8
    assert any(b"BINARY[3] ~{" in r for r in u), u[0][:200]
    # an encoding nobody can decode
    u, t = raw.cmd(f"UID FETCH {uid} (BINARY.PEEK[4])")
    assert t.startswith(b"NO") and code_of(t) == b"UNKNOWN-CTE", t


def test_fetch_misc_items(raw):
    uid = append(raw, simple_msg(body="Preview text of this message.\r\n"))
    uid2 = append(raw, simple_msg(body="Another message.\r\n"))
    raw.ok("SELECT INBOX")
    u = raw.ok("FETCH 1:2 (EMAILID THREADID SAVEDATE PREVIEW MODSEQ UID)")
    f = fetches(u)
    assert f[1][b"UID"] == str(uid).encode() and f[2][b"UID"] == str(uid2).encode()
    assert isinstance(f[1][b"EMAILID"], list) and f[1][b"EMAILID"][0]
    assert f[1][b"EMAILID"] != f[2][b"EMAILID"]
    assert f[1][b"SAVEDATE"] is not None
    assert f[1][b"PREVIEW"].startswith(b"Preview text")
    assert int(f[1][b"MODSEQ"][0]) > 0
    f = fetches(raw.ok("FETCH 1 (PREVIEW (LAZY))"))[1]
    assert f[b"PREVIEW"].startswith(b"Preview text")


def test_fetch_errors_and_absent(raw):
    append(raw, simple_msg())
    u, t = raw.cmd("FETCH 1 (FLAGS)")
    assert t.startswith(b"BAD"), t          # no mailbox selected
    raw.ok("SELECT INBOX")
    u = raw.ok("UID FETCH 424242 (FLAGS)")
    assert not any(b"FETCH" in r for r in u), u
    for bad in ("0", "2", "abc", "1:", "*:0x", "1,,2"):
        u, t = raw.cmd(f"FETCH {bad} (FLAGS)")
        assert t.startswith(b"BAD"), (bad, t)
    u, t = raw.cmd("FETCH 1 (FLAGS")
    assert t.startswith(b"BAD"), t
    u, t = raw.cmd("FETCH 1 (NOSUCHITEM)")
    assert t.startswith(b"BAD"), t
    raw.ok("NOOP")     # the session survives


def test_fetch_many_streams(srv, raw):
    n = 1200
    msgs = [simple_msg(subject=f"bulk {i}", body=f"body {i}\r\n" * (1 + i % 7)) for i in range(n)]
    for k in range(0, n, 400):
        parts = ["APPEND INBOX"]
        for m in msgs[k:k + 400]:
            parts += [" ", Lit(m)]
        u, t = raw.cmd(*parts)
        assert t.startswith(b"OK"), t
    raw.ok("SELECT INBOX")
    t0 = time.monotonic()
    u = raw.ok("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)")
    dt = time.monotonic() - t0
    f = fetches(u)
    assert sorted(f) == list(range(1, n + 1))
    assert f[n][b"ENVELOPE"][1] == f"bulk {n - 1}".encode()
    assert dt < 20, f"FETCH of {n} envelopes took {dt:.1f}s"
    u = raw.ok("UID FETCH 1:* (BODY.PEEK[])")
    bodies = {int(d[b"UID"]): body_of(d, b"BODY[]") for d in fetches(u).values()}
    assert [bodies[k] for k in sorted(bodies)] == msgs


# ---------------------------------------------------------------------------
# STORE
# ---------------------------------------------------------------------------

def test_store(raw, srv, user):
    for i in range(3):
        append(raw, simple_msg(subject=f"s{i}"))
    raw.ok("SELECT INBOX")
    f = fetches(raw.ok("STORE 1 +FLAGS (\\Flagged \\Answered)"))
    assert set(f[1][b"FLAGS"]) == {rb"\Flagged", rb"\Answered"}
    f = fetches(raw.ok("STORE 1 -FLAGS (\\Answered)"))
    assert f[1][b"FLAGS"] == [rb"\Flagged"]
    f = fetches(raw.ok("STORE 1:2 FLAGS (\\Draft)"))
    assert f[1][b"FLAGS"] == [rb"\Draft"] and f[2][b"FLAGS"] == [rb"\Draft"]
    # flags without parentheses
    f = fetches(raw.ok("STORE 3 +FLAGS \\Seen \\Flagged"))
    assert set(f[3][b"FLAGS"]) == {rb"\Seen", rb"\Flagged"}
    # .SILENT: no FETCH at all
    u = raw.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    assert not any(b"FETCH" in r for r in u), u
    # a new keyword: FLAGS is announced before it is used
    u = raw.ok("UID STORE 1:* +FLAGS ($Important)")
    i_flags = next(i for i, r in enumerate(u) if r.startswith(b"* FLAGS"))
    i_fetch = next(i for i, r in enumerate(u) if b"FETCH" in r)
    assert i_flags < i_fetch and b"$Important" in u[i_flags]
    f = fetches(u)
    assert all(b"UID" in d and b"$Important" in d[b"FLAGS"] for d in f.values())
    assert len(f) == 3
    # the flags are persistent
    c2 = RawImap(srv.ports["imap"]).login(user)
    c2.ok("EXAMINE INBOX")
    f = fetches(c2.ok("FETCH 1:* (FLAGS)"))
    assert set(f[3][b"FLAGS"]) == {rb"\Seen", rb"\Flagged", rb"\Deleted", b"$Important"}
    # read-only
    u, t = c2.cmd("STORE 1 +FLAGS (\\Seen)")
    assert t.startswith(b"NO"), t
    c2.close()
    # bad flags and items
    for bad in ("STORE 1 +FLAGS (\\Recent)", "STORE 1 +FLAGS (\\Bogus)",
                "STORE 1 BOGUS (\\Seen)", "STORE 1 +FLAGS", "STORE 7 +FLAGS (\\Seen)"):
        u, t = raw.cmd(bad)
        assert t.startswith(b"BAD"), (bad, t)


def test_condstore(raw):
    for i in range(3):
        append(raw, simple_msg(subject=f"c{i}"))
    u = raw.ok("ENABLE CONDSTORE")
    assert any(b"ENABLED" in r and b"CONDSTORE" in r for r in u), u
    u = raw.ok("SELECT INBOX")
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(u)).group(1))
    f = fetches(raw.ok("FETCH 1:* (MODSEQ)"))
    ms = {s: int(d[b"MODSEQ"][0]) for s, d in f.items()}
    assert max(ms.values()) <= hms
    # conditional store that passes
    u = raw.ok(f"STORE 1 (UNCHANGEDSINCE {ms[1]}) +FLAGS (\\Flagged)")
    f = fetches(u)
    new1 = int(f[1][b"MODSEQ"][0])
    assert new1 > hms and rb"\Flagged" in f[1][b"FLAGS"]
    # one fails: MODIFIED names it (sequence numbers for STORE)
    u, t = raw.cmd(f"STORE 1:2 (UNCHANGEDSINCE {ms[2]}) +FLAGS (\\Seen)")
    assert t.startswith(b"OK") and code_of(t) == b"MODIFIED 1", t
    f = fetches(u)
    assert 2 in f and 1 not in f
    # UID STORE names UIDs
    uids = {s: int(d[b"UID"]) for s, d in fetches(raw.ok("FETCH 1:* (UID)")).items()}
    u, t = raw.cmd(f"UID STORE {uids[1]} (UNCHANGEDSINCE 1) +FLAGS (\\Answered)")
    assert code_of(t) == f"MODIFIED {uids[1]}".encode(), t
    # .SILENT under CONDSTORE still reports the new MODSEQ, not the flags
    u = raw.ok("STORE 3 +FLAGS.SILENT (\\Answered)")
    f = fetches(u)
    assert b"MODSEQ" in f[3] and b"FLAGS" not in f[3]
    m3 = int(f[3][b"MODSEQ"][0])
    # CHANGEDSINCE returns only what changed after
    f = fetches(raw.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {m3 - 1})"))
    assert set(f) == {3} and b"MODSEQ" in f[3]
    # SEARCH MODSEQ with the highest modseq of the result
    u = raw.ok(f"SEARCH MODSEQ {new1}")
    line = [r for r in u if r.startswith(b"* SEARCH")][0]
    assert re.search(rb"\(MODSEQ (\d+)\)", line) and int(
        re.search(rb"\(MODSEQ (\d+)\)", line).group(1)) == m3
    assert set(search_nums(u)) == {1, 2, 3}
    u = raw.ok(f'SEARCH MODSEQ "/flags/\\\\draft" all {m3}')
    assert search_nums(u) == [3]
    u = raw.ok(f"UID SEARCH RETURN (MAX) MODSEQ {new1}")
    e = esearch(u)
    assert int(e["MODSEQ"]) == m3


def test_qresync(srv, user, raw):
    for i in range(4):
        append(raw, simple_msg(subject=f"q{i}"))
    raw.ok("ENABLE QRESYNC")
    u = raw.ok("SELECT INBOX")
    joined = b" ".join(u)
    uv = int(re.search(rb"UIDVALIDITY (\d+)", joined).group(1))
    m0 = int(re.search(rb"HIGHESTMODSEQ (\d+)", joined).group(1))
    uids = sorted(int(d[b"UID"]) for d in fetches(raw.ok("FETCH 1:* (UID)")).values())
    raw.ok(f"UID STORE {uids[1]} +FLAGS.SILENT (\\Deleted)")
    u, t = raw.cmd("EXPUNGE")
    assert t.startswith(b"OK") and b"HIGHESTMODSEQ" in t, t
    assert f"* VANISHED {uids[1]}".encode() in u, u
    assert not any(b"EXPUNGE" in r for r in u), u
    raw.ok(f"UID STORE {uids[2]} +FLAGS (\\Flagged)")
    # UID FETCH ... (CHANGEDSINCE m0 VANISHED)
    u = raw.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m0} VANISHED)")
    assert u[0] == f"* VANISHED (EARLIER) {uids[1]}".encode(), u
    f = fetch_by_uid(u)
    assert uids[2] in f and uids[0] not in f
    # VANISHED only with UID FETCH
    u, t = raw.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {m0} VANISHED)")
    assert t.startswith(b"BAD"), t
    # another session resynchronizes with SELECT (QRESYNC ...)
    c2 = RawImap(srv.ports["imap"]).login(user)
    c2.ok("ENABLE QRESYNC")
    u = c2.ok(f"SELECT INBOX (QRESYNC ({uv} {m0}))")
    assert any(r.startswith(b"* VANISHED (EARLIER)") and str(uids[1]).encode() in r for r in u), u
    assert uids[2] in fetch_by_uid(u)
    c2.close()


# ---------------------------------------------------------------------------
# SEARCH, SORT, THREAD
# ---------------------------------------------------------------------------

def _search_fixture(c: RawImap) -> list[int]:
    """Six messages with known fields; returns their UIDs."""
    specs = [
        dict(subject="Invoice March", frm="Alice <alice@example.org>", to="bob@example.net",
             body="please pay the zebracorn invoice\r\n", date="Mon, 01 Mar 2021 10:00:00 +0000",
             extra="Cc: carol@example.com\r\nX-Priority: 1\r\n", idate="01-Mar-2021 10:00:00 +0000",
             flags="\\Seen \\Answered"),
        dict(subject="Lunch", frm="Bob <bob@example.net>", to="alice@example.org",
             body="lunch at noon?\r\n" * 40, date="Tue, 02 Mar 2021 12:00:00 +0000",
             extra="Bcc: secret@example.com\r\n", idate="02-Mar-2021 12:00:00 +0000",
             flags="\\Flagged"),
        dict(subject="Re: Invoice March", frm="Carol <carol@example.com>", to="alice@example.org",
             body="paid\r\n", date="Wed, 03 Mar 2021 09:00:00 +0000", extra="",
             idate="03-Mar-2021 09:00:00 +0000", flags="\\Deleted $Work"),
        dict(subject="Gr\u00fc\u00dfe aus M\u00fcnchen", frm="Dave <dave@example.com>",
             to="alice@example.org", body="Sch\u00f6ne Gr\u00fc\u00dfe\r\n",
             date="Thu, 04 Mar 2021 08:00:00 +0000", extra="", idate="04-Mar-2021 08:00:00 +0000",
             flags="\\Draft"),
        dict(subject="Report", frm="Eve <eve@example.org>", to="team@example.org",
             body="quarterly numbers\r\n", date="Fri, 05 Mar 2021 07:00:00 +0000", extra="",
             idate="05-Mar-2021 07:00:00 +0000", flags=""),
        dict(subject="Recent", frm="Frank <frank@example.org>", to="alice@example.org",
             body="just now\r\n", date=email.utils.format_datetime(
                 datetime.datetime.now(datetime.timezone.utc)), extra="", idate=None, flags=""),
    ]
    uids = []
    for s in specs:
        raw_subject = s["subject"]
        hdr_subject = raw_subject
        if any(ord(ch) > 127 for ch in raw_subject):
            hdr_subject = "=?UTF-8?B?" + _b64.b64encode(raw_subject.encode()).decode() + "?="
        body = s["body"]
        msg = (f"From: {s['frm']}\r\nTo: {s['to']}\r\nSubject: {hdr_subject}\r\n"
               f"Date: {s['date']}\r\nMessage-ID: <{hdr_subject[:6]}{len(uids)}@x>\r\n{s['extra']}"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body.encode()
        uids.append(append(c, msg, flags=s["flags"], date=s["idate"]))
    return uids


def test_search_keys(raw):
    uids = _search_fixture(raw)
    raw.ok("SELECT INBOX")

    def s(crit, *lits):
        u = raw.ok("SEARCH " + crit, *lits) if not lits else raw.ok("SEARCH ", *lits)
        return search_nums(u)

    cases = {
        "ALL": [1, 2, 3, 4, 5, 6],
        "ANSWERED": [1], "UNANSWERED": [2, 3, 4, 5, 6],
        "DELETED": [3], "UNDELETED": [1, 2, 4, 5, 6],
        "DRAFT": [4], "UNDRAFT": [1, 2, 3, 5, 6],
        "FLAGGED": [2], "UNFLAGGED": [1, 3, 4, 5, 6],
        "SEEN": [1], "UNSEEN": [2, 3, 4, 5, 6],
        "KEYWORD $Work": [3], "UNKEYWORD $Work": [1, 2, 4, 5, 6],
        "BCC secret": [2], "CC carol": [1],
        "FROM alice": [1], "FROM EXAMPLE.COM": [3, 4], "TO team": [5],
        "SUBJECT invoice": [1, 3], 'SUBJECT "re: invoice"': [3],
        "BODY zebracorn": [1], "BODY noon": [2], "TEXT zebracorn": [1], "TEXT Carol": [1, 3],
        "HEADER X-Priority 1": [1], 'HEADER X-Priority ""': [1], "HEADER Subject lunch": [2],
        "BEFORE 2-Mar-2021": [1], "ON 02-Mar-2021": [2], "SINCE 4-Mar-2021": [4, 5, 6],
        "SENTBEFORE 2-Mar-2021": [1], "SENTON 3-Mar-2021": [3], "SENTSINCE 5-Mar-2021": [5, 6],
        "LARGER 600": [2], "SMALLER 400": [1, 3, 4, 5, 6],
        "NOT SEEN": [2, 3, 4, 5, 6], "OR FLAGGED DRAFT": [2, 4],
        "(SEEN ANSWERED)": [1], "OR (FROM alice) (FROM bob)": [1, 2],
        "2:4": [2, 3, 4], "5:*": [5, 6], "1,3,9": [1, 3],
        f"UID {uids[1]}:{uids[2]}": [2, 3],
        "YOUNGER 3600": [6], "OLDER 3600": [1, 2, 3, 4, 5],
        "SAVEDATESUPPORTED": [1, 2, 3, 4, 5, 6],
        "SAVEDSINCE 1-Jan-2020": [1, 2, 3, 4, 5, 6], "SAVEDBEFORE 1-Jan-2020": [],
        "NOT OR SEEN FLAGGED UNDELETED": [4, 5, 6],
        "RECENT": [], "NEW": [], "OLD": [1, 2, 3, 4, 5, 6],
        "CHARSET UTF-8 ALL": [1, 2, 3, 4, 5, 6], "CHARSET US-ASCII SUBJECT lunch": [2],
    }
    for crit, expect in cases.items():
        assert s(crit) == expect, crit
    # UTF-8 strings in a literal
    assert search_nums(raw.ok("SEARCH CHARSET UTF-8 SUBJECT ", Lit("M\u00fcnchen".encode()))) == [4]
    assert search_nums(raw.ok("SEARCH CHARSET UTF-8 BODY ", Lit("Sch\u00f6ne".encode()))) == [4]
    # EMAILID / THREADID
    f = fetches(raw.ok("FETCH 2 (EMAILID THREADID)"))[2]
    eid = f[b"EMAILID"][0].decode()
    assert s(f"EMAILID {eid}") == [2]
    if f[b"THREADID"] is not None:
        assert 2 in s(f"THREADID {f[b'THREADID'][0].decode()}")
    # UID SEARCH answers UIDs
    assert search_nums(raw.ok("UID SEARCH SUBJECT invoice")) == [uids[0], uids[2]]
    # unsupported charset, bad keys
    u, t = raw.cmd("SEARCH CHARSET KOI8-R ALL")
    assert t.startswith(b"NO") and code_of(t) == b"BADCHARSET (UTF-8 US-ASCII)", t
    for bad in ("SEARCH", "SEARCH BOGUS", "SEARCH BEFORE 32-Mar-2021", "SEARCH LARGER x",
                "SEARCH OR SEEN", "SEARCH NOT", "SEARCH HEADER X", "SEARCH (SEEN",
                "SEARCH YOUNGER 0"):
        u, t = raw.cmd(bad)
        assert t.startswith(b"BAD"), (bad, t)


def test_search_recent_for_new_arrivals(srv, user, raw):
    append(raw, simple_msg(subject="old one"))
    raw.ok("SELECT INBOX")
    c2 = RawImap(srv.ports["imap"]).login(user)
    append(c2, simple_msg(subject="new one"))
    c2.close()
    u = raw.ok("NOOP")
    assert b"* 2 EXISTS" in u, u
    assert search_nums(raw.ok("SEARCH RECENT")) == [2]
    assert search_nums(raw.ok("SEARCH NEW")) == [2]
    assert search_nums(raw.ok("SEARCH OLD")) == [1]


def test_esearch_and_searchres(raw):
    uids = _search_fixture(raw)
    raw.ok("SELECT INBOX")
    e = esearch(raw.ok("SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN"))
    assert (e["MIN"], e["MAX"], e["COUNT"], expand_set(e["ALL"])) == ("2", "6", "5", [2, 3, 4, 5, 6])
    assert e["UID"] is False and e["TAG"].startswith("T")
    e = esearch(raw.ok("UID SEARCH RETURN () SUBJECT invoice"))
    assert e["UID"] is True and expand_set(e["ALL"]) == [uids[0], uids[2]]
    e = esearch(raw.ok("SEARCH RETURN (COUNT) SUBJECT nothing-like-this"))
    assert e["COUNT"] == "0" and "MIN" not in e and "ALL" not in e
    # SAVE alone: no ESEARCH; then use "$"
    u = raw.ok("SEARCH RETURN (SAVE) SUBJECT invoice")
    assert not any(r.startswith(b"* ESEARCH") or r.startswith(b"* SEARCH") for r in u), u
    f = fetches(raw.ok("FETCH $ (UID)"))
    assert sorted(int(d[b"UID"]) for d in f.values()) == [uids[0], uids[2]]
    assert search_nums(raw.ok("SEARCH $ SEEN")) == [1]
    assert search_nums(raw.ok("UID SEARCH UID $")) == [uids[0], uids[2]]
    # SAVE with MIN and MAX keeps just those
    raw.ok("SEARCH RETURN (SAVE MIN MAX) ALL")
    assert search_nums(raw.ok("SEARCH $")) == [1, 6]
    # a failed search with SAVE empties "$"
    raw.cmd("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
    assert search_nums(raw.ok("SEARCH $")) == []
    # STORE and COPY accept "$" too
    raw.ok("SEARCH RETURN (SAVE) FROM bob")
    f = fetches(raw.ok("STORE $ +FLAGS (\\Answered)"))
    assert list(f) == [2]


def test_imap4rev2_search_is_esearch(raw):
    _search_fixture(raw)
    raw.ok("ENABLE IMAP4rev2")
    raw.ok("SELECT INBOX")
    u = raw.ok("SEARCH FLAGGED")
    assert not any(r.startswith(b"* SEARCH") for r in u), u
    assert expand_set(esearch(u)["ALL"]) == [2]
    u = raw.ok("SEARCH SUBJECT no-such-thing")
    e = esearch(u)
    assert "ALL" not in e


def _sort_fixture(c: RawImap) -> list[int]:
    rows = [  # subject, from, date (day of March 2021), body size
        ("Beta", "zed@example.org", 5, 100),
        ("Re: alpha", "Anna <anna@example.org>", 3, 2000),
        ("Alpha", "mike@example.org", 4, 400),
        ("[list] Fwd: gamma", "Bert <bert@example.org>", 1, 10),
        ("RE: Beta", "\"Zack\" <aaron@example.org>", 2, 1000),
        ("alpha (fwd)", "Carl <carl@example.org>", 6, 4000),
    ]
    uids = []
    for subj, frm, day, size in rows:
        msg = simple_msg(subject=subj, frm=frm, body="x" * size + "\r\n",
                         date=f"{['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][day - 1]}, "
                              f"0{day} Mar 2021 10:00:00 +0000")
        uids.append(append(c, msg, date=f"0{7 - day}-Apr-2021 10:00:00 +0000"))
    return uids


def test_sort(raw):
    uids = _sort_fixture(raw)
    raw.ok("SELECT INBOX")

    def sort(crit, search="ALL", uid=False):
        u = raw.ok(("UID " if uid else "") + f"SORT ({crit}) UTF-8 {search}")
        return search_nums(u, b"SORT")

    # base subjects: beta, alpha, alpha, gamma, beta, alpha
    assert sort("SUBJECT") == [2, 3, 6, 1, 5, 4]
    assert sort("REVERSE SUBJECT") == [4, 1, 5, 2, 3, 6]
    assert sort("DATE") == [4, 5, 2, 3, 1, 6]
    assert sort("REVERSE DATE") == [6, 1, 3, 2, 5, 4]
    assert sort("ARRIVAL") == [6, 1, 3, 2, 5, 4]
    assert sort("SIZE") == [4, 1, 3, 5, 2, 6]
    # FROM sorts by the address's mailbox, DISPLAYFROM by the display name
    assert sort("FROM") == [5, 2, 4, 6, 3, 1]
    assert sort("DISPLAYFROM") == [2, 4, 6, 3, 5, 1]
    assert sort("SUBJECT REVERSE DATE") == [6, 3, 2, 1, 5, 4]
    assert sort("SUBJECT", "SMALLER 1500") == [3, 1, 5, 4]
    assert sort("SIZE", uid=True) == [uids[i] for i in (3, 0, 2, 4, 1, 5)]
    # ESORT
    e = esearch(raw.ok("SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL"))
    assert (e["MIN"], e["MAX"], e["COUNT"]) == ("4", "6", "6")
    assert e["ALL"] == "4:5,2:3,1,6"
    for bad in ("SORT (BOGUS) UTF-8 ALL", "SORT (REVERSE) UTF-8 ALL", "SORT SUBJECT UTF-8 ALL",
                "SORT (SUBJECT) UTF-8", "SORT (SUBJECT)"):
        u, t = raw.cmd(bad)
        assert t.startswith(b"BAD"), (bad, t)
    u, t = raw.cmd("SORT (SUBJECT) ISO-2022-JP ALL")
    assert t.startswith(b"NO") and code_of(t).startswith(b"BADCHARSET"), t


def _thread_fixture(c: RawImap) -> list[int]:
    rows = [  # message-id, references, subject, day
        ("1@x", "", "A", 1),
        ("2@x", "<1@x>", "Re: A", 2),
        ("3@x", "", "B", 3),
        ("4@x", "<1@x> <2@x>", "Re: A", 4),
        ("5@x", "<3@x>", "Re: B", 5),
        ("6@x", "", "C", 6),
        ("7@x", "<1@x>", "Re: A", 7),
    ]
    uids = []
    for mid, refs, subj, day in rows:
        extra = f"References: {refs}\r\nIn-Reply-To: {refs.split()[-1]}\r\n" if refs else ""
        msg = (f"From: t@example.org\r\nSubject: {subj}\r\nMessage-ID: <{mid}>\r\n{extra}"
               f"Date: 0{day} Mar 2021 10:00:00 +0000\r\n\r\nbody\r\n").encode()
        uids.append(append(c, msg))
    return uids


def test_thread(raw):
    uids = _thread_fixture(raw)
    raw.ok("SELECT INBOX")
    u = raw.ok("THREAD REFERENCES UTF-8 ALL")
    assert u[-1] == b"* THREAD (1 (2 4)(7))(3 5)(6)", u
    u = raw.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert u[-1] == b"* THREAD (1 (2)(4)(7))(3 5)(6)", u
    u = raw.ok("UID THREAD REFERENCES UTF-8 ALL")
    expect = "(%d (%d %d)(%d))(%d %d)(%d)" % (uids[0], uids[1], uids[3], uids[6], uids[2],
                                              uids[4], uids[5])
    assert u[-1] == b"* THREAD " + expect.encode(), u
    # with a search: the thread of what matches
    u = raw.ok("THREAD REFERENCES UTF-8 NOT SUBJECT B")
    assert u[-1] == b"* THREAD (1 (2 4)(7))(6)", u
    u, t = raw.cmd("THREAD BOGUS UTF-8 ALL")
    assert t.startswith(b"BAD"), t


# ---------------------------------------------------------------------------
# COPY, MOVE, EXPUNGE
# ---------------------------------------------------------------------------

def test_copy_and_move(raw):
    uids = [append(raw, simple_msg(subject=f"m{i}"), flags="\\Flagged" if i == 0 else "")
            for i in range(4)]
    raw.ok("CREATE CopyTarget")
    raw.ok("SELECT INBOX")
    u, t = raw.cmd("COPY 1:2 CopyTarget")
    m = re.match(rb"OK \[COPYUID (\d+) (\S+) (\S+)\]", t)
    assert m, t
    assert expand_set(m.group(2).decode()) == uids[:2]
    dst = expand_set(m.group(3).decode())
    assert len(dst) == 2
    u = raw.ok("STATUS CopyTarget (MESSAGES)")
    assert b"MESSAGES 2" in u[0]
    # the copy keeps flags
    raw.ok("EXAMINE CopyTarget")
    f = fetch_by_uid(raw.ok(f"UID FETCH {dst[0]} (FLAGS)"))
    assert rb"\Flagged" in f[dst[0]][b"FLAGS"]
    raw.ok("SELECT INBOX")
    # MOVE: untagged COPYUID, then EXPUNGE, then the tagged OK
    u, t = raw.cmd("MOVE 2:3 CopyTarget")
    assert t.startswith(b"OK"), t
    assert re.match(rb"\* OK \[COPYUID \d+ \S+ \S+\]", u[0]), u
    assert u[1:3] == [b"* 2 EXPUNGE", b"* 2 EXPUNGE"], u
    u = raw.ok("STATUS CopyTarget (MESSAGES)")
    assert b"MESSAGES 4" in u[0]
    u, t = raw.cmd(f"UID MOVE {uids[3]} CopyTarget")
    assert t.startswith(b"OK") and u[1] == b"* 2 EXPUNGE", (u, t)
    # missing target; read-only source
    u, t = raw.cmd("COPY 1 Nowhere")
    assert code_of(t) == b"TRYCREATE", t
    u, t = raw.cmd("MOVE 1 Nowhere")
    assert code_of(t) == b"TRYCREATE", t
    raw.ok("EXAMINE INBOX")
    u, t = raw.cmd("MOVE 1 CopyTarget")
    assert t.startswith(b"NO"), t
    raw.ok("COPY 1 CopyTarget")     # copying out of a read-only mailbox is fine
    # UID COPY of nothing is OK without COPYUID
    u, t = raw.cmd("UID COPY 999999 CopyTarget")
    assert t.startswith(b"OK") and b"COPYUID" not in t, t


def test_expunge(raw):
    uids = [append(raw, simple_msg(subject=f"e{i}")) for i in range(6)]
    raw.ok("SELECT INBOX")
    raw.ok("STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
    u = raw.ok("EXPUNGE")
    # each EXPUNGE takes effect before the next one
    assert [r for r in u if b"EXPUNGE" in r] == [b"* 2 EXPUNGE", b"* 2 EXPUNGE", b"* 3 EXPUNGE"], u
    raw.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    # UID EXPUNGE removes only the given ones
    u = raw.ok(f"UID EXPUNGE {uids[3]}")
    assert [r for r in u if b"EXPUNGE" in r] == [b"* 2 EXPUNGE"], u
    assert search_nums(raw.ok("UID SEARCH ALL")) == [uids[0], uids[5]]
    raw.ok("EXAMINE INBOX")
    u, t = raw.cmd("EXPUNGE")
    assert t.startswith(b"NO"), t


# ---------------------------------------------------------------------------
# two sessions
# ---------------------------------------------------------------------------

def test_two_sessions_see_each_other(srv, user, raw):
    for i in range(3):
        append(raw, simple_msg(subject=f"t{i}"))
    a = raw
    b = RawImap(srv.ports["imap"]).login(user)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
    f = fetches(b.ok("NOOP"))
    assert rb"\Flagged" in f[1][b"FLAGS"]
    # A expunges message 2
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    u = a.ok("EXPUNGE")
    assert b"* 2 EXPUNGE" in u
    # B may not learn of it during FETCH, STORE or SEARCH ...
    for cmd in ("FETCH 1:3 (FLAGS)", "STORE 3 +FLAGS.SILENT (\\Seen)", "SEARCH ALL"):
        u = b.ok(cmd)
        assert not any(b"EXPUNGE" in r for r in u), (cmd, u)
    # ... its message numbers stay as they were
    assert search_nums(b.ok("SEARCH ALL")) == [1, 3]
    # and learns of it at NOOP
    u = b.ok("NOOP")
    assert b"* 2 EXPUNGE" in u, u
    # new mail shows up at the next allowed point
    append(a, simple_msg(subject="t3"))
    u = b.ok("NOOP")
    assert b"* 3 EXISTS" in u, u
    # a UID command may report the expunge right away
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    u = b.ok("UID FETCH 1:* (FLAGS)")
    assert b"* 1 EXPUNGE" in u, u
    b.close()


# ---------------------------------------------------------------------------
# the hard-MIME corpus
# ---------------------------------------------------------------------------

def _corpus_trees() -> dict[str, str]:
    """tree lines of tests/mime-corpus/expect.txt by file name"""
    out, cur = {}, None
    p = CORPUS / "expect.txt"
    if not p.exists():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\[(.+)\]$", line)
        if m:
            cur = m.group(1)
        elif line.startswith("tree = ") and cur:
            out[cur] = line[7:]
    return out


def _parse_tree(s: str, i: int = 0):
    """'multipart/mixed:1:2(a/b:3:4 ...)' / 'message/rfc822:5:6{...}'"""
    m = re.compile(r"([^:\s(){}]+)/([^:\s(){}]+):(\d+):(\d+)").match(s, i)
    assert m, s[i:]
    node = {"type": m.group(1).lower(), "subtype": m.group(2).lower(),
            "size": int(m.group(3)), "lines": int(m.group(4)), "kids": [], "msg": None}
    i = m.end()
    if i < len(s) and s[i] == "(":
        i += 1
        while s[i] != ")":
            kid, i = _parse_tree(s, i)
            node["kids"].append(kid)
            while s[i] == " ":
                i += 1
        i += 1
    elif i < len(s) and s[i] == "{":
        node["msg"], i = _parse_tree(s, i + 1)
        assert s[i] == "}"
        i += 1
    return node, i


def _check_bodystructure(bs, expect=None, depth=0):
    """Well-formed per RFC 3501 7.4.2 (and equal to the expected tree)."""
    assert isinstance(bs, list) and bs, bs
    assert depth < 200
    if isinstance(bs[0], list):
        kids = []
        i = 0
        while i < len(bs) and isinstance(bs[i], list):
            kids.append(bs[i])
            i += 1
        assert i < len(bs) and isinstance(bs[i], bytes), "multipart without subtype"
        subtype = bs[i].lower()
        ext = bs[i + 1:]
        assert len(ext) in (0, 4), ext    # params, disposition, language, location
        if ext:
            assert ext[0] is None or isinstance(ext[0], list)
        if expect is not None:
            assert expect["type"] == "multipart" and subtype == expect["subtype"].encode(), (
                subtype, expect)
            assert len(kids) == max(1, len(expect["kids"])), (len(kids), expect)
        for k, kid in enumerate(kids):
            _check_bodystructure(kid, expect["kids"][k] if expect and expect["kids"] else None,
                                 depth + 1)
        return
    assert len(bs) >= 7, bs
    typ, sub, params, cid, desc, enc, size = bs[:7]
    assert isinstance(typ, bytes) and isinstance(sub, bytes) and isinstance(enc, bytes)
    assert params is None or (isinstance(params, list) and len(params) % 2 == 0)
    assert cid is None or isinstance(cid, bytes)
    assert desc is None or isinstance(desc, bytes)
    n = int(size)
    rest = bs[7:]
    if typ.lower() == b"message" and sub.lower() in (b"rfc822", b"global"):
        env, inner, lines = rest[0], rest[1], int(rest[2])
        assert isinstance(env, list) and len(env) == 10, env
        _check_bodystructure(inner, expect["msg"] if expect else None, depth + 1)
        rest = rest[3:]
        if expect:
            assert lines == expect["lines"]
    elif typ.lower() == b"text":
        lines = int(rest[0])
        rest = rest[1:]
        if expect:
            assert lines == expect["lines"], (bs, expect)
    assert len(rest) in (0, 4), rest       # md5, disposition, language, location
    if expect is not None:
        assert (typ.lower().decode(), sub.lower().decode()) == (expect["type"], expect["subtype"]), (
            bs[:2], expect)
        assert n == expect["size"], (bs, expect)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.eml")), ids=lambda p: p.name)
def test_mime_corpus_roundtrip(srv, path: Path):
    addr = new_user(srv, "corpus")
    c = RawImap(srv.ports["imap"]).login(addr)
    data = path.read_bytes()
    if not data:
        # a message of no bytes is refused, as Dovecot does
        u, t = c.cmd("APPEND INBOX ", Lit(data))
        assert t.startswith(b"NO"), t
        c.close()
        return
    uid = append(c, data)
    c.ok("SELECT INBOX")
    f = fetch_by_uid(c.ok(f"UID FETCH {uid} (BODY.PEEK[] RFC822.SIZE BODYSTRUCTURE ENVELOPE BODY)"))[uid]
    assert body_of(f, b"BODY[]") == data, "BODY[] differs from the file"
    assert int(f[b"RFC822.SIZE"]) == len(data)
    assert isinstance(f[b"ENVELOPE"], list) and len(f[b"ENVELOPE"]) == 10
    trees = _corpus_trees()
    expect = _parse_tree(trees[path.name])[0] if path.name in trees else None
    _check_bodystructure(f[b"BODYSTRUCTURE"], expect)
    _check_bodystructure(f[b"BODY"], expect)
    # every leaf section can be fetched, as BODY and as BINARY where decodable
    f2 = fetches(c.ok(f"FETCH 1 (BODY.PEEK[1] BODY.PEEK[HEADER] BODY.PEEK[TEXT])"))[1]
    hdr, text = body_of(f2, b"BODY[HEADER]"), body_of(f2, b"BODY[TEXT]")
    assert hdr + text == data
    c.close()


def _cache_hits(b: Bureau) -> int:
    status, _, body = b.http_get("/metrics")
    assert status == 200
    m = re.search(r"^bureau_message_cache_hits (\d+)$", body.decode() if isinstance(body, bytes) else body, re.M)
    assert m, "bureau_message_cache_hits missing from /metrics"
    return int(m.group(1))


FETCH_STATIC = ("(BODY.PEEK[] BODYSTRUCTURE ENVELOPE BODY RFC822.SIZE INTERNALDATE EMAILID THREADID "
                "SAVEDATE PREVIEW BODY.PEEK[HEADER] BODY.PEEK[TEXT]<3.40> BODY.PEEK[1.MIME])")


def test_message_cache_serves_the_same_bytes(srv):
    """The first FETCH after SELECT reads the database; the same FETCH again
    comes from the message cache (the hit counter moves) and must be byte
    for byte the same, for every message of the hard-MIME corpus. A FETCH
    with FLAGS never comes from the cache."""
    addr = new_user(srv, "mcache")
    c = RawImap(srv.ports["imap"]).login(addr)
    n = 0
    for path in sorted(CORPUS.glob("*.eml")):
        data = path.read_bytes()
        if data:
            append(c, data)
            n += 1
    c.ok("SELECT INBOX")
    first = c.ok(f"UID FETCH 1:* {FETCH_STATIC}")
    h0 = _cache_hits(srv)
    second = c.ok(f"UID FETCH 1:* {FETCH_STATIC}")
    h1 = _cache_hits(srv)
    assert h1 - h0 >= n, (h0, h1, n)
    assert second == first
    one = c.ok("UID FETCH 2 (BODY.PEEK[])")
    assert _cache_hits(srv) > h1
    # FLAGS: the database answers (and \Seen set by a non-PEEK FETCH shows)
    h2 = _cache_hits(srv)
    c.ok("UID FETCH 2 (FLAGS BODY.PEEK[])")
    seen = c.ok("UID FETCH 2 (BODY[])")
    assert any(b"\\Seen" in x for x in seen), seen
    assert _cache_hits(srv) == h2
    c.close()


def test_message_cache_not_stale_after_expunge(srv):
    """Another session expunges: our next FETCH must not serve the cached
    message as if nothing happened once we have been told (UID FETCH reports
    the expunge and returns nothing for the UID)."""
    addr = new_user(srv, "mstale")
    a = RawImap(srv.ports["imap"]).login(addr)
    b = RawImap(srv.ports["imap"]).login(addr)
    uid = append(a, b"Subject: x\r\n\r\nbody\r\n")
    a.ok("SELECT INBOX")
    a.ok(f"UID FETCH {uid} (BODY.PEEK[])")
    a.ok(f"UID FETCH {uid} (BODY.PEEK[])")          # cached now
    b.ok("SELECT INBOX")
    b.ok(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    u = a.ok(f"UID FETCH {uid} (BODY.PEEK[])")
    assert any(x.endswith(b"EXPUNGE") for x in u), u
    assert not any(b"FETCH" in x for x in u), u
    a.close()
    b.close()

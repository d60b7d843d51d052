"""IMAP session, authentication, mailbox and namespace commands against a
real bureaud: Python's imaplib where it can speak the command, a raw
socket where the test is about bytes on the wire (pipelining, STARTTLS
injection, COMPRESS, limits, unsolicited responses).

Covers: CAPABILITY before and after login, LOGIN (ok, wrong, throttled,
LOGINDISABLED without TLS), AUTHENTICATE PLAIN (SASL-IR, continuation,
cancel), STARTTLS (and that plaintext pipelined behind it is discarded),
IMAPS, ID, ENABLE, NAMESPACE, LIST / LSUB / LIST-EXTENDED / LIST-STATUS /
SPECIAL-USE, CREATE (USE), RENAME with children, DELETE, SUBSCRIBE,
STATUS, SELECT / EXAMINE / UNSELECT / CLOSE, CONDSTORE / QRESYNC select,
IDLE, NOTIFY, ACL with a second and a third user, a shared mailbox, QUOTA,
METADATA, COMPRESS=DEFLATE, modified UTF-7 and UTF8=ACCEPT names, and the
error paths: unknown command, wrong state, literal and line over the
limit, too many bad commands, the pre-auth timeout.
"""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import ssl
import time
import zlib

import pytest

from bureau_fixture import DEFAULT_PASSWORD, Bureau

pytestmark = pytest.mark.imap

# commands imaplib does not know
for _name in ("ID", "NOTIFY", "GETMETADATA", "SETMETADATA", "LISTRIGHTS", "COMPRESS"):
    imaplib.Commands.setdefault(_name, ("NONAUTH", "AUTH", "SELECTED"))

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.test"

MESSAGE = (b"From: Bob <bob@example.test>\r\nTo: Alice <alice@example.test>\r\n"
           b"Subject: hello\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
           b"Message-ID: <m1@example.test>\r\n\r\nHello Alice.\r\n")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

class Raw:
    """A line-oriented IMAP client on a plain socket. Lines are bytes
    without CRLF; a literal at the end of a line is read and appended."""

    def __init__(self, port: int, tls: bool = False, timeout: float = 10):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            s = Bureau.tls_context().wrap_socket(s)
        self.sock = s
        self.buf = b""
        self.inflate = None
        self.deflate = None
        self.greeting = self.line()

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        if self.inflate is not None:
            chunk = self.inflate.decompress(chunk)
        self.buf += chunk

    def _raw_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def line(self) -> bytes:
        line = self._raw_line()
        while True:
            m = re.search(rb"~?\{(\d+)\}$", line)
            if not m:
                return line
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            line += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            line += self._raw_line()

    def until(self, tag: str) -> list[bytes]:
        """Lines up to and including the one tagged tag."""
        out = []
        while True:
            line = self.line()
            out.append(line)
            if line.startswith(tag.encode() + b" "):
                return out

    def cmd(self, tag: str, text: str | bytes) -> list[bytes]:
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def login(self, user: str, password: str = DEFAULT_PASSWORD) -> None:
        r = self.cmd("L", f'LOGIN "{user}" "{password}"')
        assert r[-1].startswith(b"L OK"), r

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def tagged(lines: list[bytes]) -> bytes:
    return lines[-1]


def run(c: imaplib.IMAP4, name: str, *args: str) -> tuple[str, list]:
    """imaplib: any command, returning (status, tagged text) and leaving the
    untagged responses in c.untagged_responses."""
    return c._simple_command(name, *args)


def untagged(c: imaplib.IMAP4, name: str) -> list:
    return c.untagged_responses.pop(name, [])


def list_names(lines) -> list[str]:
    """Mailbox names from imaplib LIST data."""
    names = []
    for item in lines:
        if item is None:
            continue
        if isinstance(item, tuple):
            names.append(item[1].decode())
            continue
        m = re.match(rb'\((.*?)\) "/" (.*)$', item)
        assert m, item
        n = m.group(2)
        if n.startswith(b'"'):
            n = n[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        names.append(n.decode())
    return names


def list_attrs(lines) -> dict[str, set[str]]:
    out = {}
    for item in lines:
        if item is None or isinstance(item, tuple):
            continue
        m = re.match(rb'\((.*?)\) "/" (.*?)( \(.*\))?$', item)
        assert m, item
        n = m.group(2)
        if n.startswith(b'"'):
            n = n[1:-1]
        out[n.decode()] = set(m.group(1).decode().split())
    return out


def make_user(b: Bureau, address: str) -> str:
    b.add_user(address, DEFAULT_PASSWORD)
    return address


def login(b: Bureau, address: str, tls: bool = False) -> imaplib.IMAP4:
    c = b.imap(tls=tls)
    c.login(address, DEFAULT_PASSWORD)
    return c


@pytest.fixture
def alice(bureau):
    make_user(bureau, ALICE)
    c = login(bureau, ALICE)
    yield c
    try:
        c.logout()
    except Exception:       # noqa: BLE001
        pass


# ---------------------------------------------------------------------------
# greeting, capabilities, login
# ---------------------------------------------------------------------------

def test_capability_before_and_after_login(bureau):
    make_user(bureau, ALICE)
    c = bureau.imap()
    assert c.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1")
    assert b"Bureau IMAP ready." in c.welcome
    typ, data = c.capability()
    pre = set(data[0].decode().split())
    assert {"IMAP4rev1", "STARTTLS", "AUTH=PLAIN", "SASL-IR", "ID", "ENABLE",
            "IDLE", "LITERAL+"} <= pre
    assert "LOGINDISABLED" not in pre           # loopback is allowed in tests
    assert "ACL" not in pre                     # the full list comes after login
    typ, data = c.login(ALICE, DEFAULT_PASSWORD)
    assert typ == "OK" and b"[CAPABILITY " in data[0]
    typ, data = c.capability()
    post = set(data[0].decode().split())
    for cap in ("IMAP4rev1", "IMAP4rev2", "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE",
                "CONDSTORE", "QRESYNC", "ESEARCH", "SEARCHRES", "SORT", "THREAD=REFERENCES",
                "THREAD=ORDEREDSUBJECT", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE",
                "CREATE-SPECIAL-USE", "STATUS=SIZE", "BINARY", "QUOTA", "ACL", "RIGHTS=texk",
                "MULTIAPPEND", "UTF8=ACCEPT", "COMPRESS=DEFLATE", "NOTIFY", "METADATA",
                "METADATA-SERVER", "OBJECTID", "PREVIEW", "SAVEDATE", "REPLACE", "CATENATE",
                "LITERAL+", "IDLE", "ID", "ENABLE", "CHILDREN"):
        assert cap in post, cap
    assert any(x.startswith("APPENDLIMIT=") for x in post)
    assert "STARTTLS" not in post and "AUTH=PLAIN" not in post
    c.logout()


def test_login_ok_wrong_and_throttled(bureau_factory, pg, fresh_db):
    b = bureau_factory(database_url=pg.url(fresh_db),
                       config={"auth.fail_limit": 3, "auth.fail_window": 300}).start()
    make_user(b, ALICE)
    assert b.can_login_imap(ALICE, DEFAULT_PASSWORD)
    r = Raw(b.ports["imap"])
    out = r.cmd("a1", f'LOGIN {ALICE} wrong-password')
    assert tagged(out) == b"a1 NO [AUTHENTICATIONFAILED] Authentication failed."
    out = r.cmd("a2", 'LOGIN nobody@example.test whatever')
    assert tagged(out) == b"a2 NO [AUTHENTICATIONFAILED] Authentication failed."
    # the session goes on after a failure
    assert tagged(r.cmd("a3", "NOOP")).startswith(b"a3 OK")
    for i in range(3):
        r.cmd(f"w{i}", f"LOGIN {ALICE} wrong-again")
    out = r.cmd("a4", f'LOGIN {ALICE} "{DEFAULT_PASSWORD}"')
    assert tagged(out) == b"a4 NO [UNAVAILABLE] Too many failed logins; try again later."
    r.close()


def test_logindisabled_without_tls(bureau_factory, pg, fresh_db):
    b = bureau_factory(database_url=pg.url(fresh_db),
                       config={"auth.allow_plaintext_loopback": False}).start()
    make_user(b, ALICE)
    r = Raw(b.ports["imap"])
    assert b"LOGINDISABLED" in r.greeting and b"AUTH=PLAIN" not in r.greeting
    out = r.cmd("a1", f'LOGIN {ALICE} "{DEFAULT_PASSWORD}"')
    assert tagged(out).startswith(b"a1 NO [PRIVACYREQUIRED]")
    ir = base64.b64encode(f"\0{ALICE}\0{DEFAULT_PASSWORD}".encode()).decode()
    assert tagged(r.cmd("a2", f"AUTHENTICATE PLAIN {ir}")).startswith(b"a2 NO [PRIVACYREQUIRED]")
    r.close()
    # over TLS it works
    c = b.imap()
    c.starttls(ssl_context=Bureau.tls_context())
    typ, data = c.capability()
    assert b"AUTH=PLAIN" in data[0] and b"LOGINDISABLED" not in data[0]
    assert c.login(ALICE, DEFAULT_PASSWORD)[0] == "OK"
    c.logout()
    c = b.imap(tls=True)
    assert c.login(ALICE, DEFAULT_PASSWORD)[0] == "OK"
    c.logout()


def test_authenticate_plain(bureau):
    make_user(bureau, ALICE)
    good = base64.b64encode(f"\0{ALICE}\0{DEFAULT_PASSWORD}".encode()).decode()
    # SASL-IR
    r = Raw(bureau.ports["imap"])
    out = r.cmd("a1", f"AUTHENTICATE PLAIN {good}")
    assert tagged(out).startswith(b"a1 OK [CAPABILITY ")
    r.close()
    # continuation
    r = Raw(bureau.ports["imap"])
    r.send("a1 AUTHENTICATE PLAIN\r\n")
    assert r.line() == b"+ "
    r.send(good + "\r\n")
    assert tagged(r.until("a1")).startswith(b"a1 OK")
    assert tagged(r.cmd("a2", "SELECT INBOX")).startswith(b"a2 OK [READ-WRITE]")
    r.close()
    # cancel
    r = Raw(bureau.ports["imap"])
    r.send("a1 AUTHENTICATE PLAIN\r\n")
    assert r.line() == b"+ "
    r.send("*\r\n")
    assert tagged(r.until("a1")).startswith(b"a1 BAD")
    # wrong password, authzid, "=", bad base64, unknown mechanism
    bad = base64.b64encode(f"\0{ALICE}\0nope".encode()).decode()
    assert tagged(r.cmd("a2", f"AUTHENTICATE PLAIN {bad}")).startswith(
        b"a2 NO [AUTHENTICATIONFAILED]")
    proxy = base64.b64encode(f"{BOB}\0{ALICE}\0{DEFAULT_PASSWORD}".encode()).decode()
    assert tagged(r.cmd("a3", f"AUTHENTICATE PLAIN {proxy}")).startswith(b"a3 NO")
    assert tagged(r.cmd("a4", "AUTHENTICATE PLAIN =")).startswith(b"a4 NO")
    assert tagged(r.cmd("a5", "AUTHENTICATE PLAIN !!!!")).startswith(b"a5 BAD")
    assert tagged(r.cmd("a6", "AUTHENTICATE CRAM-MD5")).startswith(b"a6 NO")
    # imaplib's own AUTHENTICATE (continuation) works too
    c = bureau.imap()
    typ, _ = c.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{DEFAULT_PASSWORD}".encode())
    assert typ == "OK"
    c.logout()
    r.close()


def test_starttls_and_injection(bureau):
    make_user(bureau, ALICE)
    c = bureau.imap()
    assert c.starttls(ssl_context=Bureau.tls_context())[0] == "OK"
    typ, data = c.capability()
    assert b"STARTTLS" not in data[0]
    assert c.login(ALICE, DEFAULT_PASSWORD)[0] == "OK"
    c.logout()

    # plaintext pipelined behind STARTTLS must not be executed after the
    # handshake (RFC 3501 6.2.1, the CVE-2011-0411 family)
    s = socket.create_connection(("127.0.0.1", bureau.ports["imap"]), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a STARTTLS\r\nb CAPABILITY\r\nc LOGIN " + ALICE.encode() + b" "
              + DEFAULT_PASSWORD.encode() + b"\r\n")
    assert f.readline().startswith(b"a OK")
    t = Bureau.tls_context().wrap_socket(s)
    t.sendall(b"d NOOP\r\n")
    got = b""
    while b"d OK" not in got:
        chunk = t.recv(4096)
        assert chunk
        got += chunk
    assert b"b " not in got and b"c " not in got and b"CAPABILITY" not in got
    t.sendall(b"e CAPABILITY\r\n")
    got = b""
    while b"e OK" not in got:
        got += t.recv(4096)
    assert b"AUTH=PLAIN" in got     # still not logged in
    t.close()

    # STARTTLS twice, and on imaps
    c = bureau.imap(tls=True)
    with pytest.raises(imaplib.IMAP4.error):
        c._simple_command("STARTTLS")
    c.logout()


def test_imaps(bureau):
    make_user(bureau, ALICE)
    c = bureau.imap(tls=True)
    assert b"STARTTLS" not in c.welcome
    assert c.login(ALICE, DEFAULT_PASSWORD)[0] == "OK"
    assert c.select("INBOX")[0] == "OK"
    c.logout()


# ---------------------------------------------------------------------------
# ID, ENABLE, NAMESPACE, NOOP
# ---------------------------------------------------------------------------

def test_id_enable_namespace(alice):
    c = alice
    typ, _ = run(c, "ID", '("name" "pytest" "version" "1.0")')
    assert typ == "OK"
    idr = untagged(c, "ID")
    assert idr and b'"name" "Bureau"' in idr[0]
    assert run(c, "ID", "NIL")[0] == "OK"
    with pytest.raises(imaplib.IMAP4.error):
        run(c, "ID", '("name")')
    typ, data = c.enable("CONDSTORE")
    assert typ == "OK"
    assert untagged(c, "ENABLED") == [b"CONDSTORE"]
    c._simple_command("ENABLE", "QRESYNC", "X-UNKNOWN")
    assert untagged(c, "ENABLED") == [b"QRESYNC"]
    typ, data = c.namespace()
    assert typ == "OK"
    assert data[0] == b'(("" "/")) (("Other Users/" "/")) (("Shared/" "/"))'
    assert c.noop()[0] == "OK"


# ---------------------------------------------------------------------------
# mailboxes
# ---------------------------------------------------------------------------

def test_list_variants(alice):
    c = alice
    typ, data = c.list()
    attrs = list_attrs(data)
    assert "INBOX" in attrs
    for name, use in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                      ("Junk", "\\Junk"), ("Archive", "\\Archive")):
        assert use in attrs[name], (name, attrs[name])
    assert "\\HasNoChildren" in attrs["INBOX"]
    # LIST "" "" gives the delimiter
    typ, data = c.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']
    assert c.create("Projects/2026/Q1")[0] == "OK"
    typ, data = c.list('""', "%")
    attrs = list_attrs(data)
    assert "Projects" in attrs and "Projects/2026" not in attrs
    assert "\\HasChildren" in attrs["Projects"]
    typ, data = c.list("Projects/", "%")
    assert list_names(data) == ["Projects/2026"]
    typ, data = c.list('""', "Projects/*")
    assert list_names(data) == ["Projects/2026", "Projects/2026/Q1"]
    typ, data = c.list('""', "inbox")
    assert list_names(data) == ["INBOX"]
    # LIST-EXTENDED: selection SPECIAL-USE, return STATUS
    typ, data = run(c, "LIST", "(SPECIAL-USE)", '""', "*", "RETURN",
                    "(SPECIAL-USE STATUS (MESSAGES UNSEEN SIZE))")
    assert typ == "OK"
    lines = untagged(c, "LIST")
    names = list_names(lines)
    assert sorted(names) == ["Archive", "Drafts", "Junk", "Sent", "Trash"]
    status = untagged(c, "STATUS")
    assert len(status) == 5
    assert all(re.search(rb"\(MESSAGES 0 UNSEEN 0 SIZE 0\)", s) for s in status), status
    # multiple patterns
    typ, _ = run(c, "LIST", '""', '("INBOX" "Sent")')
    assert sorted(list_names(untagged(c, "LIST"))) == ["INBOX", "Sent"]
    # return SUBSCRIBED, CHILDREN
    typ, _ = run(c, "LIST", '""', "%", "RETURN", "(SUBSCRIBED CHILDREN)")
    attrs = list_attrs(untagged(c, "LIST"))
    assert "\\Subscribed" in attrs["INBOX"]
    # bad syntax
    with pytest.raises(imaplib.IMAP4.error):
        run(c, "LIST", "(RECURSIVEMATCH)", '""', "*")
    with pytest.raises(imaplib.IMAP4.error):
        run(c, "LIST", '""', "*", "RETURN", "(BOGUS)")


def test_create_rename_delete_subscribe(alice):
    c = alice
    typ, data = run(c, "CREATE", "Old-Stuff", "(USE (\\Archive))")
    assert typ == "OK", data
    typ, data = c.list('""', "Old-Stuff")
    assert "\\Archive" in list_attrs(data)["Old-Stuff"]
    typ, data = run(c, "CREATE", "Bad-Use", "(USE (\\Flagged))")
    assert typ == "NO" and b"[USEATTR]" in data[0]
    typ, data = c.create("Old-Stuff")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
    typ, data = c.create("INBOX")
    assert typ == "NO"
    typ, data = c.create("Trailing/")
    assert typ == "OK"
    assert "Trailing" in list_names(c.list('""', "Trailing")[1])
    # rename with children
    for name in ("P/C1", "P/C2", "P/C2/G"):
        assert c.create(name)[0] == "OK"
    assert c.rename("P", "Q")[0] == "OK"
    names = list_names(c.list('""', "*")[1])
    assert {"Q", "Q/C1", "Q/C2", "Q/C2/G"} <= set(names)
    assert not any(n == "P" or n.startswith("P/") for n in names)
    typ, data = c.rename("Q", "Sent")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
    typ, data = c.rename("Nope", "Whatever")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    # delete a parent: the children stay, the name becomes \Noselect
    assert c.delete("Q")[0] == "OK"
    attrs = list_attrs(c.list('""', "Q*")[1])
    assert "\\Noselect" in attrs["Q"] and "Q/C1" in attrs
    typ, data = c.delete("Q")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    typ, data = c.delete("INBOX")
    assert typ == "NO"
    # subscriptions
    assert c.unsubscribe("Q/C1")[0] == "OK"
    lsub = list_names(c.lsub('""', "*")[1])
    assert "INBOX" in lsub and "Q/C1" not in lsub
    assert c.subscribe("Q/C1")[0] == "OK"
    assert "Q/C1" in list_names(c.lsub('""', "*")[1])
    assert c.unsubscribe("Q/C1")[0] == "OK"
    assert c.unsubscribe("Q/C2")[0] == "OK"
    # LSUB "%" returns the unsubscribed parent of a subscribed child as \Noselect
    attrs = list_attrs(c.lsub('""', "Q/%")[1])
    assert attrs.get("Q/C2") == {"\\Noselect"}, attrs
    typ, _ = run(c, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "Q/%")
    lines = untagged(c, "LIST")
    assert any(b"CHILDINFO" in x and b"Q/C2" in x for x in lines), lines
    typ, data = c.subscribe("Nope")
    assert typ == "NO"


def test_utf7_and_utf8_names(alice):
    c = alice
    assert c.create("Entw&APw-rfe")[0] == "OK"
    assert "Entw&APw-rfe" in list_names(c.list('""', "Entw*")[1])
    with pytest.raises(imaplib.IMAP4.error):
        c.create("Bad&Jjo")                 # unterminated mUTF-7: BAD
    assert c.status("Entw&APw-rfe", "(MESSAGES)")[0] == "OK"
    r_typ, _ = run(c, "ENABLE", "UTF8=ACCEPT")
    assert r_typ == "OK"
    typ, data = run(c, "LIST", '""', "Entw*")
    raw = b" ".join(x if isinstance(x, bytes) else x[1] for x in untagged(c, "LIST"))
    assert "Entwürfe".encode() in raw


def test_status_and_select(alice, bureau):
    c = alice
    typ, data = c.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ "
                                  "SIZE DELETED APPENDLIMIT MAILBOXID)")
    assert typ == "OK"
    s = data[0].decode()
    for item in ("MESSAGES 0", "UNSEEN 0", "SIZE 0", "DELETED 0", "UIDNEXT ", "UIDVALIDITY ",
                 "HIGHESTMODSEQ ", "APPENDLIMIT ", "MAILBOXID (F"):
        assert item in s, s
    with pytest.raises(imaplib.IMAP4.error):
        c.status("INBOX", "(BOGUS)")
    typ, data = c.status("Nope", "(MESSAGES)")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    # SELECT
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"0"]
    assert untagged(c, "FLAGS")
    ok = untagged(c, "OK")
    joined = b" ".join(ok)
    for code in (b"PERMANENTFLAGS", b"UIDVALIDITY", b"UIDNEXT", b"HIGHESTMODSEQ", b"MAILBOXID"):
        assert code in joined, joined
    # EXAMINE is read-only
    typ, data = c.select("Sent", readonly=True)
    assert typ == "OK"
    r = Raw(bureau.ports["imap"])
    r.login(ALICE)
    assert tagged(r.cmd("e", "EXAMINE INBOX")) == b"e OK [READ-ONLY] EXAMINE completed"
    assert tagged(r.cmd("s", "SELECT INBOX")) == b"s OK [READ-WRITE] SELECT completed"
    r.close()
    # a failed SELECT leaves no mailbox selected
    typ, data = c.select("Nope")
    assert typ == "NO"
    with pytest.raises(imaplib.IMAP4.error):
        c._simple_command("UNSELECT")
    assert c.select("INBOX")[0] == "OK"
    assert c.unselect()[0] == "OK"
    assert c.select("INBOX")[0] == "OK"
    assert c.close()[0] == "OK"
    with pytest.raises(imaplib.IMAP4.error):
        c._simple_command("CHECK")


def test_select_sees_appends_and_close_expunges(bureau, alice):
    c = alice
    assert c.append("INBOX", None, None, MESSAGE)[0] == "OK"
    assert c.append("INBOX", "(\\Seen)", None, MESSAGE)[0] == "OK"
    typ, data = c.select("INBOX")
    assert data == [b"2"]
    ok = b" ".join(untagged(c, "OK"))
    assert b"[UNSEEN 1]" in ok
    c.untagged_responses.clear()
    # a second session appends: NOOP reports EXISTS and RECENT
    d = login(bureau, ALICE)
    assert d.append("INBOX", None, None, MESSAGE)[0] == "OK"
    c.noop()
    assert untagged(c, "EXISTS") == [b"3"]
    assert untagged(c, "RECENT") == [b"1"]
    # the other session flags one: NOOP reports FETCH FLAGS
    d.select("INBOX")
    d.store("1", "+FLAGS", "(\\Flagged)")
    c.noop()
    fetches = untagged(c, "FETCH")
    assert any(b"\\Flagged" in f for f in fetches), fetches
    # CLOSE expunges \Deleted silently
    d.store("1", "+FLAGS", "(\\Deleted)")
    d.logout()
    typ, data = c.close()
    assert typ == "OK"
    assert not untagged(c, "EXPUNGE")
    typ, data = c.select("INBOX")
    assert data == [b"2"]


def test_condstore_qresync_select(bureau, alice):
    c = alice
    for _ in range(3):
        c.append("INBOX", None, None, MESSAGE)
    c.enable("QRESYNC")
    typ, data = c.select("INBOX")
    ok = b" ".join(untagged(c, "OK"))
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", ok).group(1))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", ok).group(1))
    c.store("2", "+FLAGS", "(\\Deleted)")
    c.expunge()
    c.store("1", "+FLAGS", "(\\Seen)")
    c.unselect()
    r = Raw(bureau.ports["imap"])
    r.login(ALICE)
    r.cmd("e", "ENABLE QRESYNC")
    out = r.cmd("s", f"SELECT INBOX (QRESYNC ({uidvalidity} {hms} 1:3))")
    assert tagged(out).startswith(b"s OK [READ-WRITE]")
    assert b"* VANISHED (EARLIER) 2" in out, out
    assert any(re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", x) for x in out), out
    # wrong UIDVALIDITY: nothing extra; QRESYNC without ENABLE is BAD
    out = r.cmd("t", f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {hms}))")
    assert not any(b"VANISHED" in x for x in out)
    assert any(b"[CLOSED]" in x for x in out)
    r.close()
    r = Raw(bureau.ports["imap"])
    r.login(ALICE)
    assert tagged(r.cmd("s", f"SELECT INBOX (QRESYNC ({uidvalidity} {hms}))")).startswith(b"s BAD")
    out = r.cmd("c", "SELECT INBOX (CONDSTORE)")
    assert any(b"HIGHESTMODSEQ" in x for x in out)
    out = r.cmd("f", "FETCH 1 (FLAGS MODSEQ)")
    assert any(b"MODSEQ (" in x for x in out), out
    # RFC 7162 3.1: flag changes report UID and MODSEQ from now on
    out = r.cmd("g", "STORE 1 +FLAGS (\\Flagged)")
    assert any(b"MODSEQ (" in x for x in out), out
    r.close()


# ---------------------------------------------------------------------------
# IDLE and NOTIFY
# ---------------------------------------------------------------------------

def test_idle_sees_append_from_second_connection(bureau, alice):
    r = Raw(bureau.ports["imap"])
    r.login(ALICE)
    assert tagged(r.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    r.send("i IDLE\r\n")
    assert r.line() == b"+ idling"
    assert alice.append("INBOX", None, None, MESSAGE)[0] == "OK"
    r.sock.settimeout(10)
    line = r.line()
    assert line == b"* 1 EXISTS", line
    assert r.line() == b"* 1 RECENT"
    # a flag change by someone else
    alice.select("INBOX")
    alice.store("1", "+FLAGS", "(\\Flagged)")
    line = r.line()
    assert re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged \\Recent\)\)", line), line
    # an expunge
    alice.store("1", "+FLAGS", "(\\Deleted)")
    alice.expunge()
    seen = []
    while b"EXPUNGE" not in b" ".join(seen):
        seen.append(r.line())
    assert b"* 1 EXPUNGE" in seen
    r.send("DONE\r\n")
    assert tagged(r.until("i")) == b"i OK IDLE terminated"
    # IDLE without a selected mailbox, and a bad continuation
    r.cmd("u", "UNSELECT")
    r.send("j IDLE\r\n")
    assert r.line() == b"+ idling"
    r.send("NOT-DONE\r\n")
    assert tagged(r.until("j")).startswith(b"j BAD")
    assert tagged(r.cmd("k", "NOOP")).startswith(b"k OK")
    r.close()


def test_notify(bureau, alice):
    r = Raw(bureau.ports["imap"])
    r.login(ALICE)
    assert tagged(r.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    out = r.cmd("n", "NOTIFY SET (STATUS) (SELECTED (MessageNew MessageExpunge FlagChange)) "
                     "(PERSONAL (MessageNew MessageExpunge MailboxName SubscriptionChange))")
    assert tagged(out) == b"n OK NOTIFY completed"
    assert any(x.startswith(b"* STATUS Sent ") for x in out), out   # (STATUS)
    assert not any(x.startswith(b"* STATUS INBOX ") for x in out)   # selected: no STATUS
    r.sock.settimeout(10)
    # a message in a non-selected mailbox: STATUS, without any command
    alice.append("Sent", None, None, MESSAGE)
    line = r.line()
    assert line.startswith(b"* STATUS Sent (MESSAGES 1 "), line
    # in the selected mailbox: EXISTS
    alice.append("INBOX", None, None, MESSAGE)
    assert r.line() == b"* 1 EXISTS"
    # a new mailbox: LIST
    alice.create("Fresh")
    line = r.line()
    while not line.startswith(b"* LIST"):
        line = r.line()
    assert line.endswith(b'"/" Fresh'), line
    alice.rename("Fresh", "Fresher")
    line = r.line()
    assert b"Fresher" in line and b"OLDNAME" in line, line
    alice.delete("Fresher")
    line = r.line()
    assert line.startswith(b"* LIST (\\NonExistent)"), line
    assert tagged(r.cmd("x", "NOTIFY NONE")).startswith(b"x OK")
    out = r.cmd("y", 'NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))')
    assert tagged(out).startswith(b"y NO [BADEVENT")
    out = r.cmd("z", 'NOTIFY SET (PERSONAL (MessageNew))')
    assert tagged(out).startswith(b"z BAD")
    r.close()


# ---------------------------------------------------------------------------
# sharing: ACL, Other Users, Shared
# ---------------------------------------------------------------------------

def test_notify_message_new_fetch_attributes(bureau, alice):
    """RFC 5465 5.2: MessageNew with fetch attributes sends them for a new
    message of the selected mailbox right after the EXISTS, without any
    command, and never sets \\Seen (a BODY[] without PEEK reads as PEEK)."""
    r = Raw(bureau.ports["imap"])
    r.login(ALICE)
    assert tagged(r.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    out = r.cmd("n", "NOTIFY SET (SELECTED (MessageNew (UID FLAGS RFC822.SIZE "
                     "BODY[HEADER.FIELDS (SUBJECT)]) MessageExpunge))")
    assert tagged(out) == b"n OK NOTIFY completed", out
    r.sock.settimeout(10)
    alice.append("INBOX", None, None, MESSAGE)
    assert r.line() == b"* 1 EXISTS"
    line = r.line()
    while line == b"* 1 RECENT":
        line = r.line()
    # Raw.line() appends a literal and the rest of its line
    m = re.match(rb"\* 1 FETCH \((.*)\{(\d+)\}\r\n(.*)\)$", line, re.S)
    assert m, line
    head = m.group(1)
    assert b"UID 1 " in head and b"RFC822.SIZE %d" % len(MESSAGE) in head, head
    assert b"\\Seen" not in head, head
    assert b"BODY[HEADER.FIELDS (SUBJECT)]" in head, head
    assert m.group(3) == b"Subject: hello\r\n\r\n", line
    # not \Seen afterwards either
    out = r.cmd("f", "FETCH 1 (FLAGS)")
    assert not any(b"\\Seen" in x for x in out), out
    # a bad fetch attribute list is refused
    out = r.cmd("b", "NOTIFY SET (SELECTED (MessageNew (NOSUCHITEM) MessageExpunge))")
    assert tagged(out).startswith(b"b BAD"), out
    r.close()


def test_acl_other_users(bureau):
    for u in (ALICE, BOB, CAROL):
        make_user(bureau, u)
    a = login(bureau, ALICE)
    assert a.create("Team")[0] == "OK"
    assert a.setacl("Team", BOB, "lrs")[0] == "OK"
    typ, data = a.getacl("Team")
    assert typ == "OK"
    acl = data[0].decode()
    assert f"{ALICE} lrswipkxtea" in acl and f"{BOB} lrs" in acl, acl
    assert a.setacl("Team", BOB, "+wi")[0] == "OK"
    assert f"{BOB} lrswi" in a.getacl("Team")[1][0].decode()
    assert a.setacl("Team", BOB, "-w")[0] == "OK"
    assert f"{BOB} lrsi" in a.getacl("Team")[1][0].decode()
    typ, data = run(a, "LISTRIGHTS", "Team", BOB)
    assert typ == "OK"
    assert untagged(a, "LISTRIGHTS")[0].endswith(b'"" l r s w i p k x t e a')
    typ, data = a.myrights("Team")
    assert data[0].endswith(b"lrswipkxtea")
    assert a.setacl("Team", ALICE, "l")[0] == "NO"
    assert a.setacl("Team", "nobody@example.test", "lr")[0] == "NO"
    with pytest.raises(imaplib.IMAP4.error):
        a.setacl("Team", BOB, "lrz")
    a.append("Team", None, None, MESSAGE)

    shared = f"Other Users/{ALICE}/Team"
    qshared = f'"{shared}"'      # imaplib does not quote names with spaces
    b = login(bureau, BOB)
    names = list_names(b.list('""', "*")[1])
    assert shared in names
    attrs = list_attrs(b.list('""', "%")[1])
    assert "\\HasChildren" in attrs["Other Users"] and (
        "\\Noselect" in attrs["Other Users"] or "\\NonExistent" in attrs["Other Users"])
    assert list_names(b.list('"Other Users/"', "%")[1]) == [f"Other Users/{ALICE}"]
    typ, data = b.myrights(qshared)
    assert data[0].endswith(b"lrsi")
    typ, data = b.select(qshared)
    assert typ == "OK" and data == [b"1"]
    typ, data = b.getacl(qshared)
    assert typ == "NO" and b"[NOPERM]" in data[0]
    assert b.status(qshared, "(MESSAGES)")[0] == "OK"
    typ, data = b.delete(qshared)
    assert typ == "NO"
    typ, data = b.create(f'"Other Users/{ALICE}/Team/Sub"')
    assert typ == "NO" and b"[NOPERM]" in data[0]
    b.unselect()
    # alice's other folders stay invisible
    typ, data = b.select(f'"Other Users/{ALICE}/INBOX"')
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]

    # a stranger sees nothing
    c = login(bureau, CAROL)
    assert not any(n.startswith("Other Users") for n in list_names(c.list('""', "*")[1]))
    typ, data = c.select(qshared)
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    c.logout()

    # with k, bob may create below it; DELETEACL takes everything away
    assert a.setacl("Team", BOB, "lrsk")[0] == "OK"
    assert b.create(f'"Other Users/{ALICE}/Team/Sub"')[0] == "OK"
    assert "Team/Sub" in list_names(a.list('""', "Team/*")[1])
    assert a.deleteacl("Team", BOB)[0] == "OK"
    # Team/Sub inherited bob's rights: Team is now only its superior
    attrs = list_attrs(b.list('""', "*")[1])
    assert "\\Noselect" in attrs[shared] and f"{shared}/Sub" in attrs
    typ, data = b.select(qshared)
    assert typ == "NO"
    b.logout()
    a.logout()


def test_shared_mailbox(bureau):
    make_user(bureau, BOB)
    make_user(bureau, CAROL)
    team = "team@example.test"
    bureau.ctl("shared", "add", team, "--member", BOB, check=True)
    b = login(bureau, BOB)
    names = list_names(b.list('""', "*")[1])
    assert f"Shared/{team}/INBOX" in names, names
    assert "Shared" in list_names(b.list('""', "%")[1])
    typ, data = b.select(f"Shared/{team}/INBOX")
    assert typ == "OK"
    assert b.append(f"Shared/{team}/INBOX", None, None, MESSAGE)[0] == "OK"
    b.noop()
    assert untagged(b, "EXISTS")
    typ, data = b.getquotaroot(f"Shared/{team}/INBOX")
    assert typ == "OK"
    c = login(bureau, CAROL)
    assert not any(n.startswith("Shared/") for n in list_names(c.list('""', "*")[1]))
    c.logout()
    b.logout()


# ---------------------------------------------------------------------------
# QUOTA, METADATA
# ---------------------------------------------------------------------------

def test_quota(bureau):
    make_user(bureau, ALICE)
    c = login(bureau, ALICE)
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK"            # no limits: no quota root
    bureau.ctl("user", "quota", ALICE, "--storage", "10M", "--messages", "1000", check=True)
    c.append("INBOX", None, None, MESSAGE)
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK"
    flat = [x for x in data if x is not None]
    joined = b" ".join(y if isinstance(y, bytes) else b" ".join(y) for y in flat)
    assert b'INBOX ""' in joined, data
    assert re.search(rb'"" \(STORAGE 1 10240 MESSAGE 1 1000\)', joined), data
    typ, data = c.getquota('""')
    assert typ == "OK" and re.search(rb"STORAGE 1 10240", data[0])
    typ, data = c.setquota('""', "(STORAGE 100)")
    assert typ == "NO" and b"[NOPERM]" in data[0]
    typ, data = c.getquota('"Other Users/nobody@example.test"')
    assert typ == "NO"
    c.logout()


def test_metadata(alice):
    c = alice
    typ, data = run(c, "SETMETADATA", "INBOX", '(/private/comment "my inbox")')
    assert typ == "OK"
    typ, data = run(c, "GETMETADATA", "INBOX", "/private/comment")
    assert typ == "OK"
    md = untagged(c, "METADATA")
    assert md == [b'INBOX (/private/comment "my inbox")'], md
    # server level
    assert run(c, "SETMETADATA", '""', '(/shared/vendor/test/x "1" /private/vendor/test/y "2")')[0] == "OK"
    run(c, "GETMETADATA", "(DEPTH infinity)", '""', "/private")
    md = b" ".join(untagged(c, "METADATA"))
    assert b'/private/vendor/test/y "2"' in md and b"/shared" not in md
    # missing entry: NIL
    run(c, "GETMETADATA", "INBOX", "/private/nothing")
    assert untagged(c, "METADATA") == [b"INBOX (/private/nothing NIL)"]
    # MAXSIZE
    typ, data = run(c, "GETMETADATA", "(MAXSIZE 3)", "INBOX", "/private/comment")
    assert typ == "OK" and b"[METADATA LONGENTRIES 8]" in data[0], data
    c.untagged_responses.clear()
    # delete
    assert run(c, "SETMETADATA", "INBOX", "(/private/comment NIL)")[0] == "OK"
    run(c, "GETMETADATA", "INBOX", "/private/comment")
    assert untagged(c, "METADATA") == [b"INBOX (/private/comment NIL)"]
    with pytest.raises(imaplib.IMAP4.error):
        run(c, "SETMETADATA", "INBOX", '(/bogus/x "1")')
    typ, data = run(c, "SETMETADATA", "Nope", '(/private/x "1")')
    assert typ == "NO"


# ---------------------------------------------------------------------------
# wire-level: COMPRESS, pipelining, limits, errors, timeouts
# ---------------------------------------------------------------------------

def test_compress_deflate(bureau):
    make_user(bureau, ALICE)
    r = Raw(bureau.ports["imap"])
    r.login(ALICE)
    out = r.cmd("z", "COMPRESS DEFLATE")
    assert tagged(out) == b"z OK DEFLATE active"
    r.deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    r.inflate = zlib.decompressobj(-15)
    assert not r.buf
    out = r.cmd("a", "LIST \"\" *")
    assert tagged(out).startswith(b"a OK")
    assert any(b"INBOX" in x for x in out)
    out = r.cmd("b", "CAPABILITY")
    assert b"COMPRESS=DEFLATE" not in out[0]
    assert tagged(r.cmd("c", "COMPRESS DEFLATE")).startswith(b"c NO [COMPRESSIONACTIVE]")
    assert tagged(r.cmd("d", "SELECT INBOX")).startswith(b"d OK")
    r.close()


def test_pipelining(bureau):
    make_user(bureau, ALICE)
    r = Raw(bureau.ports["imap"])
    r.send(f'a LOGIN {ALICE} "{DEFAULT_PASSWORD}"\r\nb SELECT INBOX\r\nc LIST "" INBOX\r\n'
           "d STATUS Sent (MESSAGES)\r\ne NOOP\r\nf UNSELECT\r\ng LOGOUT\r\n")
    order = []
    while True:
        try:
            line = r.line()
        except EOFError:
            break
        if line[:1] != b"*":
            order.append(line.split(b" ")[0])
    assert order == [b"a", b"b", b"c", b"d", b"e", b"f", b"g"]


def test_errors_and_limits(bureau_factory, pg, fresh_db):
    b = bureau_factory(database_url=pg.url(fresh_db),
                       config={"limits.max_literal": "4K", "limits.max_line": "2K"}).start()
    make_user(b, ALICE)
    r = Raw(b.ports["imap"])
    assert tagged(r.cmd("a1", "FROBNICATE")) == b"a1 BAD [CLIENTBUG] Unknown command"
    assert tagged(r.cmd("a2", "SELECT INBOX")).startswith(b"a2 BAD")
    assert tagged(r.cmd("a3", "UID NOOP")).startswith(b"a3 BAD")
    assert tagged(r.cmd("a4", 'LOGIN "unterminated')).startswith(b"a4 BAD")
    # pre-auth literal limit (64 KiB at most before login)
    r.send("a5 LOGIN {70000}\r\n")
    assert tagged(r.until("a5")).startswith(b"a5 BAD [TOOBIG]")
    assert tagged(r.cmd("a6", "NOOP")).startswith(b"a6 OK")
    # a synchronizing literal: "+" then the data
    r.send("a7 LOGIN {%d}\r\n" % len(ALICE))
    assert r.line().startswith(b"+ ")
    r.send(ALICE + " {%d+}\r\n%s\r\n" % (len(DEFAULT_PASSWORD), DEFAULT_PASSWORD))
    assert tagged(r.until("a7")).startswith(b"a7 OK")
    # logged in: the configured literal limit
    assert tagged(r.cmd("b1", "FETCH 1 FLAGS")).startswith(b"b1 BAD")    # no mailbox
    r.send("b2 APPEND INBOX {5000}\r\n")
    assert tagged(r.until("b2")).startswith(b"b2 BAD [TOOBIG]")
    assert tagged(r.cmd("b3", "NOOP")).startswith(b"b3 OK")
    # line over the limit
    out = r.cmd("b4", "LIST \"\" " + "x" * 3000)
    assert tagged(out).startswith(b"b4 BAD [TOOBIG]")
    assert tagged(r.cmd("b5", "NOOP")).startswith(b"b5 OK")
    # a bad line with a non-synchronizing literal: the literal is skipped
    r.send("b6 NOOP ) {5+}\r\nb7 X\r\nb8 NOOP\r\n")
    out = r.until("b8")
    assert b"b6 BAD" in out[0] and not any(x.startswith(b"b7") for x in out)
    # a non-synchronizing literal over the limit ends the session
    r.send("b9 APPEND INBOX {9000+}\r\n")
    out = []
    with pytest.raises(EOFError):
        while True:
            out.append(r.line())
    assert any(x.startswith(b"b9 BAD [TOOBIG]") for x in out), out
    r.close()

    # too many bad commands
    r = Raw(b.ports["imap"])
    got = []
    with pytest.raises(EOFError):
        for i in range(25):
            r.send(f"x{i} BOGUS\r\n")
        while True:
            got.append(r.line())
    assert b"* BYE Too many invalid commands" in got
    assert sum(1 for x in got if b" BAD " in x) == 20
    r.close()


def test_preauth_timeout(bureau_factory, pg, fresh_db):
    b = bureau_factory(database_url=pg.url(fresh_db),
                       config={"limits.preauth_timeout": 1}).start()
    r = Raw(b.ports["imap"])
    time.sleep(2.5)
    r.sock.settimeout(5)
    assert r.line() == b"* BYE Autologout; idle for too long"
    with pytest.raises((EOFError, OSError)):
        r.line()
    r.close()


def test_logout(bureau):
    make_user(bureau, ALICE)
    r = Raw(bureau.ports["imap"])
    out = r.cmd("a", "LOGOUT")
    assert out == [b"* BYE Logging out", b"a OK Logout completed"]
    with pytest.raises((EOFError, OSError)):
        r.line()


def test_big_literal_append(alice):
    """A literal far larger than the connection's input buffer streams into
    the command (APPENDLIMIT is 64 MiB by default)."""
    c = alice
    body = (b"x" * 76 + b"\r\n") * (24 * 1024 * 1024 // 78)
    msg = MESSAGE.replace(b"Hello Alice.\r\n", body)
    typ, data = c.append("INBOX", None, None, msg)
    assert typ == "OK", data
    typ, data = c.status("INBOX", "(MESSAGES SIZE)")
    assert f"SIZE {len(msg)}".encode() in data[0], data


def test_idle_timeout_after_login(bureau_factory, pg, fresh_db):
    b = bureau_factory(database_url=pg.url(fresh_db),
                       config={"limits.idle_timeout": 1}).start()
    make_user(b, ALICE)
    r = Raw(b.ports["imap"])
    r.login(ALICE)
    time.sleep(2.5)
    r.sock.settimeout(5)
    assert r.line() == b"* BYE Autologout; idle for too long"
    r.close()


def test_rename_inbox_moves_messages(alice):
    """RFC 3501 6.3.5: renaming INBOX moves its messages to the new name and
    leaves INBOX in place, empty."""
    c = alice
    c.append("INBOX", None, None, MESSAGE)
    c.append("INBOX", None, None, MESSAGE)
    assert c.rename("INBOX", "Old-Inbox")[0] == "OK"
    assert b"MESSAGES 0" in c.status("INBOX", "(MESSAGES)")[1][0]
    assert b"MESSAGES 2" in c.status("Old-Inbox", "(MESSAGES)")[1][0]
    typ, data = c.rename("Sent", "INBOX")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]


def test_imap4rev2_select(bureau):
    make_user(bureau, ALICE)
    r = Raw(bureau.ports["imap"])
    r.login(ALICE)
    out = r.cmd("a", "SELECT INBOX")
    assert b"* 0 RECENT" in out
    out = r.cmd("b", "ENABLE IMAP4rev2")
    assert b"* ENABLED IMAP4rev2" in out
    out = r.cmd("c", "SELECT INBOX")
    assert tagged(out).startswith(b"c OK [READ-WRITE]")
    assert b'* LIST () "/" INBOX' in out
    assert not any(b"RECENT" in x or b"[UNSEEN" in x for x in out), out
    assert b"* OK [CLOSED] Previous mailbox closed" in out
    r.close()

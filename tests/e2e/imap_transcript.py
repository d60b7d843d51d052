"""A small IMAP transcript runner, in the spirit of Dovecot's imaptest
scripts: plain-text files of client lines and expected server lines, with
wildcards and captured values, over one or more raw connections.

Nothing here speaks IMAP with the server's own code: the runner writes the
client's bytes as given and compares the server's bytes with patterns.

Script syntax (one directive per line; '#' starts a comment line; blank
lines are ignored):

  Set-up (before the first connection is used):
    !config KEY = VALUE       bureau.conf setting for this script's daemon
    !user NAME [PASSWORD]     create NAME@example.test; sets $NAME to the
                              address, $NAME_pw to the password and
                              $NAME_plain to the SASL PLAIN response
                              (base64 of NUL address NUL password)
    !set VAR VALUE            a variable
    !message NAME             a message, up to a line "!end"; lines are
    ...                       joined with CRLF (a final CRLF is added);
    !end                      $NAME_len is its size in octets

  Connections (names are words: A, B, c1 ...):
    A: connect [tls]          open a connection (imap, or imaps with tls);
                              the greeting is the first response to expect
    A: login NAME             LOGIN as user NAME and expect OK (skipping
                              untagged responses, the greeting included)
    A: starttls               TLS handshake now (after "OK Begin TLS")
    A: compress               start DEFLATE both ways (after the OK)
    A: close                  the client closes the socket
    A: eof                    the server must close the connection (no
                              more lines)
    A: silent [SECONDS]       nothing may arrive for SECONDS (0.5)
    A: drain [SECONDS]        read and forget lines until SECONDS of quiet
                              or the end of the connection
    A: sleep SECONDS          pause the script
    A: expect-closed-or-eof   the connection is gone or closes (reset ok)

  Client lines:
    A> LINE                   send LINE + CRLF; $VAR is substituted; a
                              token %{MSG} becomes a synchronizing literal
                              of message MSG (the runner waits for "+"),
                              %+{MSG} a non-synchronizing one
    A>> BYTES                 send exactly BYTES after Python string
                              escapes (\\r \\n \\x00 ...); no CRLF added

  Expected server responses (a block is consecutive lines of one
  connection):
    A< PATTERN                the next response matching PATTERN; untagged
                              responses before it that match nothing in
                              the block are allowed (and recorded)
    A<= PATTERN               the very next response must match
    A<* PATTERN               some response of the block, in any order
    A<! PATTERN               no response of the block may match
  A block reads responses until every ordered (< and <=) expectation has
  matched; a tagged or continuation response that matches nothing fails
  the block, and so does an unmatched <* line at the end.

  Patterns: the response (literals inline, rendered as {N}"escaped data"
  with \\r \\n \\t \\" \\\\ and \\xNN escapes) must match entirely.
    $*          any text (also empty)
    $NAME       first use: capture one token (no space, parenthesis,
                bracket or quote); later uses: the captured value
    ${NAME}     the same, delimited
    $/REGEX/    a Python regular expression (without '/')
    $(K V ...)  a parenthesized list of key/value pairs in any order
                (FETCH items, STATUS items); V is a pattern; a key "$*"
                allows further pairs
    $$          a dollar sign
  Everything else is compared byte for byte (case matters).
"""

from __future__ import annotations

import base64
import os
import re
import socket
import sys
import ssl
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

DOMAIN = "example.test"
DEFAULT_PASSWORD = "correct-horse-battery"


class TranscriptError(AssertionError):
    """The server did not answer as the script expects."""


# ---------------------------------------------------------------------------
# script
# ---------------------------------------------------------------------------

@dataclass
class Step:
    lineno: int
    conn: str
    kind: str            # "verb", "send", "raw", "expect"
    text: str            # verb line / client line / pattern
    mode: str = ""       # expect: "<", "<=", "<*", "<!"


@dataclass
class Script:
    path: str
    config: dict[str, str] = field(default_factory=dict)
    users: list[tuple[str, str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    messages: dict[str, bytes] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)


_STEP_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(:|>>|>|<=|<\*|<!|<)(?: (.*))?$")


def parse_script(text: str, path: str = "<script>") -> Script:
    sc = Script(path=path)
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        lineno = i + 1
        i += 1
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("!"):
            word, _, rest = line[1:].partition(" ")
            rest = rest.strip()
            if word == "config":
                k, eq, v = rest.partition("=")
                if not eq:
                    raise ValueError(f"{path}:{lineno}: !config KEY = VALUE")
                sc.config[k.strip()] = v.strip()
            elif word == "user":
                parts = rest.split()
                if not parts:
                    raise ValueError(f"{path}:{lineno}: !user NAME [PASSWORD]")
                pw = parts[1] if len(parts) > 1 else DEFAULT_PASSWORD
                sc.users.append((parts[0], pw))
            elif word == "set":
                k, _, v = rest.partition(" ")
                sc.variables[k] = v
            elif word == "message":
                body = []
                while i < len(lines) and lines[i].rstrip("\r\n") != "!end":
                    body.append(lines[i].rstrip("\r\n"))
                    i += 1
                if i >= len(lines):
                    raise ValueError(f"{path}:{lineno}: !message without !end")
                i += 1
                sc.messages[rest] = ("\r\n".join(body) + "\r\n").encode()
            else:
                raise ValueError(f"{path}:{lineno}: unknown directive !{word}")
            continue
        m = _STEP_RE.match(line)
        if not m:
            raise ValueError(f"{path}:{lineno}: cannot parse {line!r}")
        conn, op, rest = m.group(1), m.group(2), m.group(3) or ""
        if op == ":":
            sc.steps.append(Step(lineno, conn, "verb", rest.strip()))
        elif op == ">":
            sc.steps.append(Step(lineno, conn, "send", rest))
        elif op == ">>":
            sc.steps.append(Step(lineno, conn, "raw", rest))
        else:
            sc.steps.append(Step(lineno, conn, "expect", rest, op))
    return sc


def load_script(path: Path) -> Script:
    return parse_script(path.read_text(encoding="utf-8"), str(path))


# ---------------------------------------------------------------------------
# patterns
# ---------------------------------------------------------------------------

_TOKEN_CHARS = r"[^\s()\[\]\"]+"
# a parenthesized group up to five levels deep; quoted strings (and so
# rendered literals) may hold anything
_Q = r'"(?:[^"\\]|\\.)*"'
_BAL = r"[^()\"]"
for _ in range(5):
    _BAL = rf"(?:[^()\"]|{_Q}|\((?:{_BAL})*\))"
BALANCED = rf"\((?:{_BAL})*\)"


def render(resp: bytes) -> str:
    """A response as text for matching: literals become {N}"escaped"."""
    out = []
    i = 0
    while i < len(resp):
        m = re.compile(rb"(~?)\{(\d+)\}\r\n").search(resp, i)
        if not m:
            out.append(resp[i:].decode("utf-8", "replace"))
            break
        out.append(resp[i:m.start()].decode("utf-8", "replace"))
        n = int(m.group(2))
        data = resp[m.end():m.end() + n]
        out.append(m.group(1).decode() + "{%d}" % n + '"' + escape(data) + '"')
        i = m.end() + n
    return "".join(out)


def escape(data: bytes) -> str:
    out = []
    for b in data:
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\r":
            out.append("\\r")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif 0x20 <= b < 0x7f:
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def split_items(s: str) -> list[str]:
    """Top-level tokens of a list body: quoted strings, rendered literals,
    parenthesized groups, atoms (an atom with '[' runs to the matching ']'
    and takes a following <...>)."""
    toks = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == " ":
            i += 1
            continue
        st = i
        if c == "$" and s[i + 1:i + 2] == "(":
            i += 1
            c = "("
        if c == '"' or (c in "{~" and re.match(r"~?\{[^}\s]*\}\"", s[i:])):
            if c != '"':
                i = s.index('"', i)
            i += 1
            while i < n and s[i] != '"':
                i += 2 if s[i] == "\\" else 1
            i += 1
        elif c == "(":
            depth = 0
            while i < n:
                if s[i] == '"':
                    i += 1
                    while i < n and s[i] != '"':
                        i += 2 if s[i] == "\\" else 1
                elif s[i] == "(":
                    depth += 1
                elif s[i] == ")":
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
        else:
            while i < n and s[i] not in " ()\"":
                if s[i] == "[":
                    depth = 0
                    while i < n:
                        if s[i] == "[":
                            depth += 1
                        elif s[i] == "]":
                            depth -= 1
                            if depth == 0:
                                break
                        i += 1
                i += 1
            if i == st:     # a stray character
                i += 1
        toks.append(s[st:i])
    return toks


class Pattern:
    """One expected-response pattern, compiled against the variables known
    when it is used."""

    def __init__(self, text: str, variables: dict[str, str]):
        self.text = text
        self.unordered: list[str] = []     # bodies of $( ... ) in group order
        self.newvars: list[str] = []
        self.regex = re.compile(self._compile(text, variables) + r"\Z", re.S)

    def _compile(self, text: str, variables: dict[str, str]) -> str:
        out = []
        i = 0
        seen_here: set[str] = set()
        while i < len(text):
            c = text[i]
            if c != "$":
                out.append(re.escape(c))
                i += 1
                continue
            nxt = text[i + 1:i + 2]
            if nxt == "$":
                out.append(re.escape("$"))
                i += 2
            elif nxt == "*":
                out.append(".*?")
                i += 2
            elif nxt == "/":
                j = text.index("/", i + 2)
                out.append("(?:" + text[i + 2:j] + ")")
                i = j + 1
            elif nxt == "(":
                depth, j = 0, i + 1
                while j < len(text):
                    if text[j] == '"':
                        j += 1
                        while j < len(text) and text[j] != '"':
                            j += 2 if text[j] == "\\" else 1
                    elif text[j] == "(":
                        depth += 1
                    elif text[j] == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                if j >= len(text):
                    raise ValueError(f"unbalanced $( in {text!r}")
                gname = f"__u{len(self.unordered)}"
                self.unordered.append(text[i + 2:j])
                out.append(f"(?P<{gname}>{BALANCED})")
                i = j + 1
            else:
                if nxt == "{":
                    j = text.index("}", i)
                    name = text[i + 2:j]
                    i = j + 1
                else:
                    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i + 1:])
                    if not m:
                        raise ValueError(f"bad $ in pattern {text!r}")
                    name = m.group(0)
                    i += 1 + len(name)
                if name in variables:
                    out.append(re.escape(variables[name]))
                elif name in seen_here:
                    out.append(f"(?P={name})")
                else:
                    seen_here.add(name)
                    self.newvars.append(name)
                    out.append(f"(?P<{name}>{_TOKEN_CHARS})")
        return "".join(out)

    def match(self, line: str, variables: dict[str, str]) -> dict[str, str] | None:
        """Captured variables if line matches, else None."""
        m = self.regex.match(line)
        if m is None:
            return None
        got = {k: v for k, v in m.groupdict().items() if not k.startswith("__u")}
        known = dict(variables)
        known.update(got)
        for k, body in enumerate(self.unordered):
            sub = match_pairs(body, m.group(f"__u{k}"), known)
            if sub is None:
                return None
            known.update(sub)
            got.update(sub)
        return got


def match_pairs(pattern_body: str, value: str, variables: dict[str, str]) -> dict[str, str] | None:
    """value is "(k v k v ...)"; pattern_body "K P K P ..." in any order."""
    items = split_items(value[1:-1])
    if len(items) % 2:
        return None
    have = {}
    for k in range(0, len(items), 2):
        key = items[k].upper()
        if key in have:
            return None
        have[key] = items[k + 1]
    ptoks = split_items(pattern_body)
    extras_ok = False
    wanted = []
    k = 0
    while k < len(ptoks):
        if ptoks[k] == "$*":
            extras_ok = True
            k += 1
            continue
        if k + 1 >= len(ptoks):
            raise ValueError(f"odd $( ) pattern {pattern_body!r}")
        wanted.append((ptoks[k].upper(), ptoks[k + 1]))
        k += 2
    got: dict[str, str] = {}
    known = dict(variables)
    for key, vpat in wanted:
        if key not in have:
            return None
        sub = Pattern(vpat, known).match(have[key], known)
        if sub is None:
            return None
        got.update(sub)
        known.update(sub)
    if not extras_ok and len(have) != len(wanted):
        return None
    return got


# ---------------------------------------------------------------------------
# connections
# ---------------------------------------------------------------------------

class Conn:
    def __init__(self, name: str, port: int, tls: bool, timeout: float,
                 journal: list[str] | None = None):
        self.name = name
        self.journal = journal if journal is not None else []
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            self.sock = tls_context().wrap_socket(self.sock)
        self.buf = b""
        self.eof = False
        self.comp: object | None = None
        self.decomp: object | None = None
        self.log: list[str] = []

    # raw I/O
    def send(self, data: bytes) -> None:
        self.log.append("C: " + escape(data)[:500])
        self.journal.append(f"{self.name}> " + escape(data)[:500])
        if self.comp is not None:
            data = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self, timeout: float) -> bool:
        """Read more; False on timeout; EOFError at the end."""
        if self.eof:
            raise EOFError(f"{self.name}: connection closed by the server")
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise EOFError(f"{self.name}: connection closed by the server")
        if self.decomp is not None:
            data = self.decomp.decompress(data)
        self.buf += data
        return True

    def _line(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return line
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                return None

    def _bytes(self, n: int, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, timeout: float | None = None) -> bytes | None:
        """One complete response (literals inline, no final CRLF), or None
        on timeout."""
        timeout = self.timeout if timeout is None else timeout
        out = b""
        while True:
            line = self._line(timeout)
            if line is None:
                if out:
                    raise TranscriptError(f"{self.name}: response cut off: {out[:300]!r}")
                return None
            out += line
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if not m:
                r = out[:-2]
                self.log.append("S: " + render(r)[:500])
                self.journal.append(f"{self.name}< " + render(r)[:500])
                return r
            data = self._bytes(int(m.group(1)), timeout)
            if data is None:
                raise TranscriptError(f"{self.name}: literal cut off after {out[:300]!r}")
            out += data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------------------
# runner
# ---------------------------------------------------------------------------

class Runner:
    """Runs a Script against ports {"imap": N, "imaps": M}; users must have
    been created already (add_user callback in run_script)."""

    def __init__(self, script: Script, ports: dict[str, int], timeout: float = 10.0):
        self.sc = script
        self.ports = ports
        self.timeout = timeout
        self.vars: dict[str, str] = dict(script.variables)
        self.conns: dict[str, Conn] = {}
        self.lineno = 0
        self.journal: list[str] = []     # every line sent and received

    def fail(self, msg: str, conn: Conn | None = None) -> None:
        where = f"{self.sc.path}:{self.lineno}"
        tail = ""
        if conn is not None:
            tail = "\n--- transcript of " + conn.name + " (last 40) ---\n" + "\n".join(conn.log[-40:])
        raise TranscriptError(f"{where}: {msg}{tail}")

    def conn(self, name: str) -> Conn:
        c = self.conns.get(name)
        if c is None:
            self.fail(f"connection {name} is not open")
        return c

    # substitution in client lines
    def subst(self, text: str) -> str:
        def rep(m: re.Match) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(2)
            if name not in self.vars:
                self.fail(f"unknown variable ${name}")
            return self.vars[name]
        return re.sub(r"\$\$|\$\{([^}]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)", rep, text)

    def run(self) -> None:
        try:
            steps = self.sc.steps
            k = 0
            while k < len(steps):
                st = steps[k]
                self.lineno = st.lineno
                if st.kind == "expect":
                    block = [st]
                    while (k + 1 < len(steps) and steps[k + 1].kind == "expect"
                           and steps[k + 1].conn == st.conn):
                        k += 1
                        block.append(steps[k])
                    self.expect_block(block)
                elif st.kind == "send":
                    self.send_line(st)
                elif st.kind == "raw":
                    c = self.conn(st.conn)
                    data = self.subst(st.text).encode("latin-1").decode("unicode_escape")
                    c.send(data.encode("latin-1"))
                else:
                    self.verb(st)
                k += 1
        finally:
            for c in self.conns.values():
                c.close()
            if os.environ.get("IMAP_TRANSCRIPT_DUMP"):
                print(f"=== {self.sc.path}", file=sys.stderr)
                print("\n".join(self.journal), file=sys.stderr)

    def send_line(self, st: Step) -> None:
        c = self.conn(st.conn)
        text = self.subst(st.text)
        parts = re.split(r"(%\+?\{[A-Za-z0-9_]+\})", text)
        out = b""
        for p in parts:
            m = re.fullmatch(r"%(\+?)\{([A-Za-z0-9_]+)\}", p)
            if not m:
                out += p.encode("utf-8")
                continue
            msg = self.sc.messages.get(m.group(2))
            if msg is None:
                self.fail(f"unknown message {m.group(2)}")
            if m.group(1):
                out += b"{%d+}\r\n" % len(msg) + msg
            else:
                out += b"{%d}\r\n" % len(msg)
                c.send(out)
                out = b""
                r = c.response()
                if r is None or not r.startswith(b"+"):
                    self.fail(f"expected a continuation request, got {r!r}", c)
                out = msg
        c.send(out + b"\r\n")

    def verb(self, st: Step) -> None:
        words = self.subst(st.text).split()
        if not words:
            self.fail("empty verb")
        v, args = words[0], words[1:]
        name = st.conn
        if v == "connect":
            tls = bool(args) and args[0] == "tls"
            if name in self.conns:
                self.conns[name].close()
            c = Conn(name, self.ports["imaps" if tls else "imap"], tls, self.timeout,
                     self.journal)
            self.conns[name] = c
        elif v == "login":
            c = self.conn(name)
            user = args[0]
            addr, pw = self.vars[user], self.vars[f"{user}_pw"]
            c.send(f'L0 LOGIN "{addr}" "{pw}"\r\n'.encode())
            while True:
                r = c.response()
                if r is None:
                    self.fail("no answer to LOGIN", c)
                if r.startswith(b"L0 "):
                    if not r.startswith(b"L0 OK"):
                        self.fail(f"login failed: {r!r}", c)
                    break
        elif v == "starttls":
            c = self.conn(name)
            if c.buf:
                self.fail(f"data after STARTTLS's OK before the handshake: {c.buf!r}", c)
            c.sock = tls_context().wrap_socket(c.sock)
        elif v == "compress":
            c = self.conn(name)
            c.comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
            c.decomp = zlib.decompressobj(-15)
            if c.buf:
                c.buf = c.decomp.decompress(c.buf)
        elif v == "close":
            self.conn(name).close()
            del self.conns[name]
        elif v in ("eof", "expect-closed-or-eof"):
            c = self.conn(name)
            if c.eof and not c.buf:
                return
            try:
                r = c.response()
            except EOFError:
                return
            except OSError:
                if v == "expect-closed-or-eof":
                    return
                raise
            self.fail(f"expected the server to close, got {r!r}" if r is not None
                      else "expected the server to close, it stays open", c)
        elif v == "silent":
            c = self.conn(name)
            secs = float(args[0]) if args else 0.5
            try:
                r = c.response(secs)
            except EOFError:
                self.fail("expected silence, the server closed", c)
            if r is not None:
                self.fail(f"expected silence, got {render(r)!r}", c)
        elif v == "drain":
            c = self.conn(name)
            secs = float(args[0]) if args else 0.5
            try:
                while c.response(secs) is not None:
                    pass
            except EOFError:
                pass
        elif v == "sleep":
            time.sleep(float(args[0]))
        else:
            self.fail(f"unknown verb {v!r}")

    def expect_block(self, block: list[Step]) -> None:
        c = self.conn(block[0].conn)
        ordered = [s for s in block if s.mode in ("<", "<=")]
        anyorder = [s for s in block if s.mode == "<*"]
        forbidden = [s for s in block if s.mode == "<!"]
        found_any = [False] * len(anyorder)
        pos = 0
        seen: list[str] = []

        def pending() -> list[str]:
            return ([s.text for s in ordered[pos:]]
                    + [s.text for s, f in zip(anyorder, found_any) if not f])

        while pos < len(ordered) or not all(found_any):
            self.lineno = ordered[pos].lineno if pos < len(ordered) else anyorder[0].lineno
            try:
                r = c.response()
            except EOFError as e:
                self.fail(f"{e}; still expecting {pending()}; got in this block: {seen}", c)
            if r is None:
                self.fail(f"timed out waiting for {pending()}; got in this block: {seen}", c)
            line = render(r)
            seen.append(line)
            for s in forbidden:
                if Pattern(s.text, self.vars).match(line, self.vars) is not None:
                    self.lineno = s.lineno
                    self.fail(f"forbidden response {line!r} (pattern {s.text!r})", c)
            if pos < len(ordered):
                st = ordered[pos]
                got = Pattern(st.text, self.vars).match(line, self.vars)
                if got is not None:
                    self.vars.update(got)
                    pos += 1
                    continue
                if st.mode == "<=":
                    self.fail(f"expected {st.text!r} next, got {line!r}", c)
            hit = False
            for k, s in enumerate(anyorder):
                if not found_any[k]:
                    got = Pattern(s.text, self.vars).match(line, self.vars)
                    if got is not None:
                        self.vars.update(got)
                        found_any[k] = True
                        hit = True
                        break
            if hit:
                continue
            if not line.startswith("* "):
                self.fail(f"unexpected response {line!r} while expecting {pending()}", c)
            # an extra untagged response: allowed


def run_script(script: Script, ports: dict[str, int],
               add_user: Callable[[str, str], None], timeout: float = 10.0) -> Runner:
    """Create the script's users, then run it. Returns the runner (its
    vars hold the captures) or raises TranscriptError."""
    r = Runner(script, ports, timeout)
    for name, pw in script.users:
        addr = f"{name}@{DOMAIN}"
        add_user(addr, pw)
        r.vars[name] = addr
        r.vars[f"{name}_pw"] = pw
        r.vars[f"{name}_plain"] = base64.b64encode(f"\0{addr}\0{pw}".encode()).decode()
    for name, msg in script.messages.items():
        r.vars[f"{name}_len"] = str(len(msg))
    r.run()
    return r

"""Real IMAP clients from Debian against bureaud: mbsync (isync),
offlineimap3 and mutt.

mbsync and offlineimap sync a mailbox of 1,000 messages (generated here,
deterministically, with the email module, and stored with MULTIAPPEND)
down to a maildir; then flags change on both sides (maildir file names
renamed, files deleted, a new file added; STORE and EXPUNGE on the server
through imaplib), they sync again and both sides must agree: the same
messages with the same flags. mutt reads a message over IMAP in batch
mode (driven through a pseudo-terminal) and pipes it to a file, which must
be the message as appended.

A client's test is skipped only when its binary is missing. Plaintext
login is allowed on loopback by the fixture's configuration.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import os
import pty
import random
import re
import select
import shutil
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from test_imap_messages import (PASSWORD, Lit, RawImap, new_user,
                                srv)  # noqa: F401  (srv is the module fixture)

pytestmark = pytest.mark.imap

N_MESSAGES = 1000
FLAG_OF_LETTER = {"S": r"\Seen", "F": r"\Flagged", "R": r"\Answered", "D": r"\Draft"}
LETTER_OF_FLAG = {v: k for k, v in FLAG_OF_LETTER.items()}
COMPARED = set(FLAG_OF_LETTER.values())


# ---------------------------------------------------------------------------
# corpus and state
# ---------------------------------------------------------------------------

def make_messages(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    words = ("alpha beta gamma delta report invoice meeting lunch budget schedule "
             "server backup release review draft notes").split()
    out = []
    for i in range(n):
        m = EmailMessage(policy=email.policy.SMTP)
        m["From"] = f"Sender {i % 17} <sender{i % 17}@example.org>"
        m["To"] = "owner@example.test"
        m["Subject"] = f"{rng.choice(words)} {rng.choice(words)} #{i}"
        m["Date"] = email.utils.format_datetime(
            email.utils.localtime().replace(year=2024, month=1 + i % 12, day=1 + i % 28,
                                            hour=i % 24, minute=i % 60, second=0, microsecond=0))
        m["Message-ID"] = f"<sync-{seed}-{i}@example.org>"
        body = " ".join(rng.choice(words) for _ in range(rng.randint(20, 400)))
        m.set_content(body + "\n")
        if i % 5 == 0:
            m.add_attachment(rng.randbytes(rng.randint(100, 3000)), maintype="application",
                             subtype="octet-stream", filename=f"file{i}.bin")
        out.append(m.as_bytes())
    return out


def fill_inbox(b, user: str, msgs: list[bytes]) -> None:
    c = RawImap(b.ports["imap"]).login(user)
    for k in range(0, len(msgs), 250):
        parts = ["APPEND INBOX"]
        for i, m in enumerate(msgs[k:k + 250]):
            # a few start out seen or flagged on the server
            j = k + i
            flags = "\\Seen" if j % 3 == 0 else "\\Flagged" if j % 7 == 0 else ""
            parts += [f" ({flags}) ", Lit(m)]
        c.ok(*parts)
    c.close()


def server_state(b, user: str) -> dict[str, set[str]]:
    """Message-ID -> flags (the compared ones) on the server."""
    c = RawImap(b.ports["imap"]).login(user)
    c.ok("EXAMINE INBOX")
    u = c.ok("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    c.close()
    out = {}
    for r in u:
        m = re.search(rb"FLAGS \(([^)]*)\)", r)
        mid = re.search(rb"Message-ID:\s*(<[^>]+>)", r, re.I)
        if m and mid:
            flags = {f.decode() for f in m.group(1).split()} & COMPARED
            out[mid.group(1).decode()] = flags
    return out


def maildir_files(path: Path) -> list[Path]:
    return [p for sub in ("cur", "new") if (path / sub).is_dir() for p in (path / sub).iterdir()
            if p.is_file()]


def file_flags(p: Path) -> set[str]:
    if ":2," not in p.name:
        return set()
    return {FLAG_OF_LETTER[ch] for ch in p.name.split(":2,", 1)[1] if ch in FLAG_OF_LETTER}


def file_msgid(p: Path) -> str:
    with p.open("rb") as f:
        head = f.read(8192)
    m = re.search(rb"^Message-ID:\s*(<[^>]+>)", head, re.I | re.M)
    assert m, f"no Message-ID in {p}"
    return m.group(1).decode()


def maildir_state(path: Path) -> dict[str, set[str]]:
    return {file_msgid(p): file_flags(p) for p in maildir_files(path)}


def set_file_flags(p: Path, flags: set[str]) -> Path:
    """Rename a maildir file to carry exactly these flags (into cur/)."""
    base = p.name.split(":2,", 1)[0]
    letters = "".join(sorted(LETTER_OF_FLAG[f] for f in flags))
    keep = "".join(ch for ch in (p.name.split(":2,", 1)[1] if ":2," in p.name else "")
                   if ch not in FLAG_OF_LETTER)
    new = p.parent.parent / "cur" / f"{base}:2,{''.join(sorted(letters + keep))}"
    p.rename(new)
    return new


def change_both_sides(b, user: str, local: Path) -> dict[str, set[str]]:
    """Flag changes and deletions on both sides; returns the expected final
    state (Message-ID -> flags) once they are merged."""
    expect = server_state(b, user)
    files = sorted(maildir_files(local), key=lambda p: file_msgid(p))
    by_id = {file_msgid(p): p for p in files}
    ids = sorted(expect, key=lambda s: int(re.search(r"-(\d+)@", s).group(1)))
    rng = random.Random(99)
    rng.shuffle(ids)
    local_seen, local_flag, local_del = ids[0:20], ids[20:40], ids[40:50]
    srv_seen, srv_flag, srv_unseen, srv_del = ids[50:70], ids[70:90], ids[90:110], ids[110:120]
    # client side: rename files, delete some
    for mid in local_seen:
        set_file_flags(by_id[mid], file_flags(by_id[mid]) | {r"\Seen"})
        expect[mid] = expect[mid] | {r"\Seen"}
    for mid in local_flag:
        p = next(q for q in maildir_files(local) if file_msgid(q) == mid)
        set_file_flags(p, file_flags(p) | {r"\Flagged"})
        expect[mid] = expect[mid] | {r"\Flagged"}
    for mid in local_del:
        next(q for q in maildir_files(local) if file_msgid(q) == mid).unlink()
        del expect[mid]
    # a new message written by the client
    new_id = "<written-locally@example.org>"
    (local / "new").mkdir(exist_ok=True)
    (local / "new" / f"{int(time.time())}.local1.host").write_bytes(
        b"From: me@example.org\nTo: you@example.org\nSubject: written locally\n"
        b"Message-ID: " + new_id.encode() + b"\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nhi\n")
    expect[new_id] = set()
    # server side, through imaplib
    c = imaplib.IMAP4("127.0.0.1", b.ports["imap"], timeout=60)
    c.login(user, PASSWORD)
    c.select("INBOX")

    def uids_of(mids):
        out = []
        for mid in mids:
            typ, data = c.uid("SEARCH", "HEADER", "Message-ID", mid)
            assert typ == "OK" and data[0], (mid, data)
            out.append(data[0].split()[0].decode())
        return ",".join(out)

    assert c.uid("STORE", uids_of(srv_seen), "+FLAGS", r"(\Seen)")[0] == "OK"
    assert c.uid("STORE", uids_of(srv_flag), "+FLAGS", r"(\Flagged)")[0] == "OK"
    assert c.uid("STORE", uids_of(srv_unseen), "-FLAGS", r"(\Seen)")[0] == "OK"
    assert c.uid("STORE", uids_of(srv_del), "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    c.logout()
    for mid in srv_seen:
        expect[mid] = expect[mid] | {r"\Seen"}
    for mid in srv_flag:
        expect[mid] = expect[mid] | {r"\Flagged"}
    for mid in srv_unseen:
        expect[mid] = expect[mid] - {r"\Seen"}
    for mid in srv_del:
        del expect[mid]
    return expect


def run(cmd: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{cmd[0]} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def assert_converged(b, user: str, local: Path, expect: dict[str, set[str]]) -> None:
    srv_now = server_state(b, user)
    loc_now = maildir_state(local)
    assert set(srv_now) == set(loc_now), (
        f"only on the server: {sorted(set(srv_now) - set(loc_now))[:10]}, "
        f"only local: {sorted(set(loc_now) - set(srv_now))[:10]}")
    diff = {k: (srv_now[k], loc_now[k]) for k in srv_now if srv_now[k] != loc_now[k]}
    assert not diff, f"{len(diff)} messages differ (server, local): {list(diff.items())[:10]}"
    assert set(srv_now) == set(expect), (sorted(set(srv_now) ^ set(expect))[:10])
    wrong = {k: (srv_now[k], expect[k]) for k in expect if srv_now[k] != expect[k]}
    assert not wrong, f"{len(wrong)} messages not as expected (got, want): {list(wrong.items())[:10]}"


@pytest.fixture
def mailbox_1000(srv):
    user = new_user(srv, "sync")
    msgs = make_messages(N_MESSAGES)
    fill_inbox(srv, user, msgs)
    return user, msgs


# ---------------------------------------------------------------------------
# mbsync
# ---------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
def test_mbsync_sync_and_converge(srv, mailbox_1000, tmp_path):
    user, msgs = mailbox_1000
    maildir = tmp_path / "mail"
    maildir.mkdir()
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(f"""
IMAPAccount bureau
Host 127.0.0.1
Port {srv.ports['imap']}
User {user}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN
PipelineDepth 20

IMAPStore remote
Account bureau

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel bureau
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync All
Expunge Both
SyncState *
""")
    t0 = time.monotonic()
    run(["mbsync", "-c", str(cfg), "-q", "bureau"])
    first = time.monotonic() - t0
    local = maildir / "INBOX"
    files = maildir_files(local)
    assert len(files) == N_MESSAGES
    # the bytes arrived intact (mbsync keeps CRLF as LF on disk and adds
    # its own X-TUID header while it syncs)
    got = {file_msgid(p): re.sub(rb"(?m)^X-TUID: .*\n", b"", p.read_bytes()) for p in files}
    for m in msgs[:50]:
        mid = re.search(rb"Message-ID: (<[^>]+>)", m).group(1).decode()
        assert got[mid].replace(b"\r\n", b"\n") == m.replace(b"\r\n", b"\n")
    assert_converged(srv, user, local, server_state(srv, user))
    expect = change_both_sides(srv, user, local)
    run(["mbsync", "-c", str(cfg), "-q", "bureau"])
    assert_converged(srv, user, local, expect)
    # and once more: nothing left to do, nothing changes
    run(["mbsync", "-c", str(cfg), "-q", "bureau"])
    assert_converged(srv, user, local, expect)
    assert first < 120, f"first sync of {N_MESSAGES} messages took {first:.1f}s"


# ---------------------------------------------------------------------------
# offlineimap
# ---------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("offlineimap") is None, reason="offlineimap not installed")
def test_offlineimap_sync_and_converge(srv, mailbox_1000, tmp_path):
    user, msgs = mailbox_1000
    maildir = tmp_path / "mail"
    maildir.mkdir()
    cfg = tmp_path / "offlineimaprc"
    cfg.write_text(f"""
[general]
accounts = bureau
metadata = {tmp_path}/meta
ui = quiet

[Account bureau]
localrepository = local
remoterepository = remote
synclabels = no

[Repository local]
type = Maildir
localfolders = {maildir}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {srv.ports['imap']}
remoteuser = {user}
remotepass = {PASSWORD}
ssl = no
starttls = no
folderfilter = lambda f: f == 'INBOX'
maxconnections = 1
""")
    cmd = ["offlineimap", "-c", str(cfg), "-o", "-u", "quiet"]
    run(cmd)
    local = maildir / "INBOX"
    files = maildir_files(local)
    assert len(files) == N_MESSAGES
    assert_converged(srv, user, local, server_state(srv, user))
    expect = change_both_sides(srv, user, local)
    run(cmd)
    assert_converged(srv, user, local, expect)
    run(cmd)
    assert_converged(srv, user, local, expect)


# ---------------------------------------------------------------------------
# mutt
# ---------------------------------------------------------------------------

def drive_pty(cmd: list[str], env: dict, done, timeout: float = 60) -> str:
    """Run cmd on a pseudo-terminal until done() or timeout; return what it
    printed (for the failure message)."""
    pid, fd = pty.fork()
    if pid == 0:    # child
        try:
            os.execvpe(cmd[0], cmd, env)
        finally:
            os._exit(127)
    out = b""
    end = time.monotonic() + timeout
    status = None
    try:
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                out += data
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                status = st
                break
            if done():
                # give mutt a moment to sync and exit on its own
                for _ in range(50):
                    wpid, st = os.waitpid(pid, os.WNOHANG)
                    if wpid == pid:
                        status = st
                        break
                    try:
                        if select.select([fd], [], [], 0.1)[0]:
                            out += os.read(fd, 65536)
                    except OSError:
                        pass
                break
    finally:
        if status is None:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
        os.close(fd)
    return out.decode("utf-8", "replace")


@pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt not installed")
def test_mutt_reads_a_message(srv, tmp_path):
    user = new_user(srv, "mutt")
    msgs = make_messages(5, seed=11)
    fill_inbox(srv, user, msgs)
    out = tmp_path / "piped.eml"
    port = srv.ports["imap"]
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(f"""
set imap_user="{user}"
set imap_pass="{PASSWORD}"
set ssl_starttls=no
set ssl_force_tls=no
set folder="imap://127.0.0.1:{port}/"
set spoolfile="imap://127.0.0.1:{port}/INBOX"
set header_cache=""
set message_cachedir=""
set sort=mailbox-order
set pipe_decode=no
set wait_key=no
set quit=yes
set move=no
set mark_old=no
set mail_check=60
set imap_keepalive=60
set timeout=600
set record=""
set editor="true"
""")
    env = dict(os.environ, TERM="xterm", HOME=str(tmp_path), LANG="C.UTF-8")
    # show it (marks it read), back to the index, pipe it, quit (syncs)
    push = f'push "<display-message><exit><pipe-message>cat > {out}<enter><quit>"'
    transcript = drive_pty(["mutt", "-n", "-F", str(muttrc), "-e", push], env,
                           done=lambda: out.exists() and out.stat().st_size > 0, timeout=60)
    assert out.exists() and out.stat().st_size > 0, f"mutt piped nothing:\n{transcript[-2000:]}"
    time.sleep(0.5)
    got = out.read_bytes()
    # mutt opens at the first unread message; it keeps LF line ends
    mid = re.search(rb"(?m)^Message-ID: (<[^>]+>)", got).group(1)
    want = next(m for m in msgs if mid in m)
    assert got.replace(b"\r\n", b"\n") == want.replace(b"\r\n", b"\n")
    # reading it marked it \Seen on the server (mutt's STORE when it quits)
    c = RawImap(srv.ports["imap"]).login(user)
    c.ok("EXAMINE INBOX")
    u = c.ok("SEARCH SEEN HEADER Message-ID " + mid.decode())
    assert any(r.startswith(b"* SEARCH ") for r in u), u
    c.close()

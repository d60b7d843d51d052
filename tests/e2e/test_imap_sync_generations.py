"""Changes reach a selected mailbox although the per-command sync is skipped
while nothing changed (server/core/changes.c, docs/DECISIONS.md "Change
generations").

- in one bureaud, a change is reported at the very next command of another
  session (the writer's COMMIT moves the generation before its tagged OK);
- from a second bureaud on the same database (and from bureauctl), a change
  is reported once the notification hub has delivered it: at the latest a
  few seconds later, without the session doing anything else than NOOP;
- a session that stays quiet gets nothing twice.
"""
from __future__ import annotations

import re
import time

from bureau_fixture import DEFAULT_PASSWORD
from test_imap_session import Raw, tagged

ALICE = "alice@example.test"
BOB = "bob@example.test"
MESSAGE = (b"From: alice@example.test\r\nTo: alice@example.test\r\n"
           b"Subject: generations\r\nMessage-ID: <gen@example.test>\r\n\r\nhello\r\n")


def append(r: Raw, tag: str, mailbox: str = "INBOX") -> None:
    r.send(f"{tag} APPEND {mailbox} {{{len(MESSAGE)}+}}\r\n".encode() + MESSAGE + b"\r\n")
    assert tagged(r.until(tag)).startswith(f"{tag} OK".encode())


def noop_until(r: Raw, pattern: bytes, seconds: float = 10) -> list[bytes]:
    """NOOP every 50 ms until an untagged line matches; all lines seen."""
    seen: list[bytes] = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        out = r.cmd(f"n{i}", "NOOP")
        assert tagged(out).startswith(f"n{i} OK".encode()) or b"BYE" in b"".join(out), out
        seen += out[:-1]
        if any(re.match(pattern, x) for x in out):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} within {seconds} s: {seen}")


def selected(port: int, user: str, mailbox: str = "INBOX") -> Raw:
    r = Raw(port)
    r.login(user, DEFAULT_PASSWORD)
    assert tagged(r.cmd("s", f"SELECT {mailbox}")).startswith(b"s OK")
    # one command after SELECT: from here on the sync may be skipped
    assert r.cmd("w", "NOOP") == [b"w OK NOOP completed"]
    return r


def test_same_process_change_is_reported_at_the_next_command(bureau):
    bureau.add_user(ALICE, DEFAULT_PASSWORD)
    port = bureau.ports["imap"]
    reader, writer = selected(port, ALICE), selected(port, ALICE)
    for round_ in range(20):
        append(writer, f"a{round_}")
        # no sleep: the very next command must report it
        out = reader.cmd(f"r{round_}", "NOOP")
        assert f"* {round_ + 1} EXISTS".encode() in out, (round_, out)
        out = reader.cmd(f"q{round_}", "NOOP")
        assert out == [f"q{round_} OK NOOP completed".encode()], out   # nothing twice
    assert tagged(writer.cmd("f", "STORE 3 +FLAGS (\\Flagged)")).startswith(b"f OK")
    out = reader.cmd("g", "FETCH 1 (FLAGS)")
    assert any(re.match(rb"\* 3 FETCH \((UID 3 )?FLAGS \(\\Flagged", x) for x in out), out
    reader.close()
    writer.close()


def test_change_from_another_bureaud_reaches_a_quiet_session(pg, fresh_db, bureau_factory):
    url = pg.url(fresh_db)
    one = bureau_factory(database_url=url).start()
    two = bureau_factory(database_url=url).start()
    one.add_user(ALICE, DEFAULT_PASSWORD)
    reader = selected(one.ports["imap"], ALICE)
    writer = selected(two.ports["imap"], ALICE)

    append(writer, "a")
    seen = noop_until(reader, rb"\* 1 EXISTS")
    assert b"* 1 EXISTS" in seen
    assert tagged(writer.cmd("f", "STORE 1 +FLAGS (\\Answered)")).startswith(b"f OK")
    noop_until(reader, rb"\* 1 FETCH \((UID 1 )?FLAGS \(\\Answered")
    assert tagged(writer.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)")).startswith(b"d OK")
    assert tagged(writer.cmd("e", "EXPUNGE")).startswith(b"e OK")
    noop_until(reader, rb"\* 1 EXPUNGE")
    # and then quiet again
    assert reader.cmd("z", "NOOP") == [b"z OK NOOP completed"]
    reader.close()
    writer.close()


def test_rights_revoked_by_bureauctl_end_the_selection(bureau):
    bureau.add_user(ALICE, DEFAULT_PASSWORD)
    bureau.add_user(BOB, DEFAULT_PASSWORD)
    owner = selected(bureau.ports["imap"], ALICE)
    append(owner, "a")
    bureau.ctl("grant", f"{ALICE}/INBOX", BOB, "lr", check=True)
    name = f'"Other Users/{ALICE}/INBOX"'
    bob = selected(bureau.ports["imap"], BOB, name)
    assert tagged(bob.cmd("f", "FETCH 1 (FLAGS)")).startswith(b"f OK")
    bureau.ctl("revoke", f"{ALICE}/INBOX", BOB, check=True)
    seen = noop_until(bob, rb"\* BYE ")
    assert any(x.startswith(b"* BYE") for x in seen), seen
    owner.close()

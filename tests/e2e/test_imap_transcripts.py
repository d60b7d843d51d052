"""Every IMAP transcript in tests/e2e/transcripts/*.txt as one test case.

A transcript (syntax: imap_transcript.py) replays what a real client sends,
byte for byte, and checks the shape of each response. Each script runs
against its own bureaud on a fresh database, with the script's !config
settings, so scripts cannot disturb one another.

A second group of tests checks the runner itself: a transcript that
expects the wrong thing must fail, so a passing script means something.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bureau_fixture import timeout_scale
from imap_transcript import TranscriptError, load_script, parse_script, run_script

pytestmark = pytest.mark.imap

HERE = Path(__file__).resolve().parent
SCRIPTS = sorted((HERE / "transcripts").glob("*.txt"))


def _run(bureau_factory, pg, fresh_db, script):
    b = bureau_factory(database_url=pg.url(fresh_db), config=dict(script.config)).start()
    return run_script(script, {"imap": b.ports["imap"], "imaps": b.ports["imaps"]},
                      lambda addr, pw: b.add_user(addr, pw),
                      timeout=10.0 * timeout_scale()), b


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_transcript(bureau_factory, pg, fresh_db, path):
    _run(bureau_factory, pg, fresh_db, load_script(path))


# ---- the runner can fail ---------------------------------------------------

BAD_SCRIPTS = {
    "wrong_tagged": """
!user alice
A: connect
A> a1 NOOP
A< a1 NO $*
""",
    "missing_untagged": """
!user alice
A: connect
A> a1 CAPABILITY
A<* * CAPABILITY $* XYZZY-NOT-OFFERED$*
A< a1 OK $*
""",
    "forbidden_seen": """
!user alice
A: connect
A> a1 CAPABILITY
A<! * CAPABILITY $*
A< a1 OK $*
""",
    "strict_next": """
!user alice
A: connect
A> a1 CAPABILITY
A<= a1 OK $*
""",
    "capture_mismatch": """
!user alice
A: connect
A: login alice
A> a1 SELECT INBOX
A< * OK [UIDVALIDITY $uv] $*
A< a1 OK $*
A> a2 STATUS INBOX (UIDVALIDITY)
A< * STATUS INBOX (UIDVALIDITY 1$uv)
A< a2 OK $*
""",
    "unordered_items": """
!user alice
A: connect
A: login alice
A> a1 STATUS INBOX (MESSAGES UIDNEXT)
A< * STATUS INBOX $(MESSAGES 0 UIDNEXT $n UNSEEN 0)
A< a1 OK $*
""",
    "silence": """
!user alice
A: connect
A>> a1 NOOP\\r\\n
A: silent 1
""",
}


@pytest.mark.parametrize("name", sorted(BAD_SCRIPTS))
def test_runner_detects_mismatch(bureau_factory, pg, fresh_db, name):
    script = parse_script(BAD_SCRIPTS[name], f"<{name}>")
    with pytest.raises(TranscriptError):
        _run(bureau_factory, pg, fresh_db, script)


def test_runner_captures(bureau_factory, pg, fresh_db):
    script = parse_script("""
!user alice
A: connect
A: login alice
A> a1 SELECT INBOX
A< * OK [UIDVALIDITY $uv] $*
A< a1 OK [READ-WRITE] $*
A> a2 STATUS INBOX (UIDVALIDITY MESSAGES)
A< * STATUS INBOX $(UIDVALIDITY $uv MESSAGES $m)
A< a2 OK $*
""", "<captures>")
    r, _ = _run(bureau_factory, pg, fresh_db, script)
    assert r.vars["uv"].isdigit() and r.vars["m"] == "0"

"""Authorization matrix over IMAP (RFC 4314 rights) against a real bureaud.

Principals: the owner of a folder, a grantee holding "lr" plus one more
right (and, separately, each right alone), and a stranger with nothing.
Operations: SELECT, FETCH (and the implicit \\Seen), STORE \\Seen /
\\Deleted / a keyword, APPEND, COPY into, EXPUNGE, CREATE of a child,
DELETE, SETACL, MYRIGHTS; and \\Seen kept per user on a shared folder.
Grants are made with `bureauctl grant` and with IMAP SETACL.

Design choice checked here: a mailbox of another account is visible only
with the l right; without it every command answers as if it did not exist
(RFC 4314 section 4 allows hiding), so a right alone without l gives
nothing, except k: CREATE of a child needs only k on the parent.
"""

from __future__ import annotations

import re

import pytest

from test_imap_messages import (Lit, PASSWORD, RawImap, code_of, fetches, new_user, simple_msg,
                                srv)  # noqa: F401  (srv is the module fixture)

pytestmark = pytest.mark.imap

RIGHTS = "lrswipkxtea"


def q(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def other(owner: str, folder: str) -> str:
    return f"Other Users/{owner}/{folder}"


def session(b, user) -> RawImap:
    return RawImap(b.ports["imap"]).login(user)


def ok(t: bytes) -> bool:
    return t.startswith(b"OK")


def setup_folder(b, owner: str, folder: str, n: int = 3) -> None:
    c = session(b, owner)
    c.ok(f"CREATE {q(folder)}")
    for i in range(n):
        c.ok(f"APPEND {q(folder)} ", Lit(simple_msg(subject=f"{folder} {i}")))
    # one message already flagged \Deleted, for EXPUNGE to have work
    c.ok(f"SELECT {q(folder)}")
    c.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    c.close()


def grant(b, owner: str, folder: str, grantee: str, rights: str) -> None:
    b.ctl("grant", f"{owner}/{folder}", grantee, rights, check=True)


def run_matrix(b, owner: str, folder: str, user: str) -> dict[str, bool]:
    """Every operation once, in an order where earlier ones do not spoil
    later ones; True where the server said OK."""
    name = other(owner, folder)
    res: dict[str, bool] = {}
    c = session(b, user)
    mine = session(b, user)
    mine.ok("APPEND INBOX ", Lit(simple_msg(subject="to copy")))
    mine.ok("SELECT INBOX")
    u, t = c.cmd(f"MYRIGHTS {q(name)}")
    res["myrights"] = ok(t)
    if ok(t):
        line = [r for r in u if r.startswith(b"* MYRIGHTS")][0]
        res["myrights_value"] = line.split()[-1].decode()
    u, t = c.cmd(f"SELECT {q(name)}")
    res["select"] = ok(t)
    readonly = b"READ-ONLY" in t
    if res["select"]:
        u, t = c.cmd("FETCH 1 (BODY[])")
        res["fetch"] = ok(t) and bool(fetches(u))
        f = fetches(c.ok("FETCH 1 (FLAGS)"))
        res["fetch_sets_seen"] = rb"\Seen" in f[1][b"FLAGS"]
        res["readonly"] = readonly
        u, t = c.cmd("STORE 2 +FLAGS (\\Seen)")
        res["store_seen"] = ok(t)
        u, t = c.cmd("STORE 2 +FLAGS (\\Deleted)")
        res["store_deleted"] = ok(t)
        u, t = c.cmd("STORE 2 +FLAGS ($Label)")
        res["store_keyword"] = ok(t)
        f = fetches(c.ok("FETCH 2 (FLAGS)"))[2][b"FLAGS"]
        # what a refused STORE left: nothing
        assert (rb"\Seen" in f) == res["store_seen"], f
        assert (rb"\Deleted" in f) == res["store_deleted"], f
        assert (b"$Label" in f) == res["store_keyword"], f
        u, t = c.cmd("EXPUNGE")
        res["expunge"] = ok(t)
        if ok(t):
            assert any(b"EXPUNGE" in r for r in u), u
        c.ok("UNSELECT")
    u, t = c.cmd(f"APPEND {q(name)} ", Lit(simple_msg(subject="appended by grantee")))
    res["append"] = ok(t)
    u, t = mine.cmd(f"COPY 1 {q(name)}")
    res["copy_into"] = ok(t)
    u, t = c.cmd(f"CREATE {q(name + '/child')}")
    res["create_child"] = ok(t)
    u, t = c.cmd(f"SETACL {q(name)} anyone l")
    res["setacl"] = ok(t)
    u, t = c.cmd(f"DELETE {q(name)}")
    res["delete"] = ok(t)
    c.close()
    mine.close()
    return res


def expected_with_lr(x: str) -> dict[str, bool]:
    r = set("lr" + x)
    writable = bool(r & set("swite"))
    return {
        "myrights": True,
        "select": True,
        "fetch": True,
        "fetch_sets_seen": "s" in r,
        "readonly": not writable,
        "store_seen": "s" in r,
        "store_deleted": "t" in r,
        "store_keyword": "w" in r,
        "expunge": "e" in r,
        "append": "i" in r,
        "copy_into": "i" in r,
        "create_child": "k" in r,
        "setacl": "a" in r,
        "delete": "x" in r,
    }


@pytest.mark.parametrize("extra", [""] + [x for x in RIGHTS if x not in "lr"],
                         ids=lambda x: "lr" + x)
def test_grantee_lr_plus_one_right(srv, extra):
    owner, grantee = new_user(srv, "owner"), new_user(srv, "grantee")
    folder = f"Team{extra or 'base'}"
    setup_folder(srv, owner, folder)
    grant(srv, owner, folder, grantee, "lr" + extra)
    res = run_matrix(srv, owner, folder, grantee)
    exp = expected_with_lr(extra)
    got = {k: res.get(k) for k in exp}
    assert got == exp, f"rights lr{extra}: {got} != {exp}"
    assert set(res["myrights_value"]) == set("lr" + extra), res["myrights_value"]


@pytest.mark.parametrize("right", list(RIGHTS))
def test_grantee_single_right(srv, right):
    owner, grantee = new_user(srv, "owner"), new_user(srv, "grantee")
    folder = f"Solo{right}"
    setup_folder(srv, owner, folder)
    grant(srv, owner, folder, grantee, right)
    res = run_matrix(srv, owner, folder, grantee)
    # without l the folder is not there; with l alone it is there but
    # cannot be selected (no r), and nothing else is allowed but CREATE with k
    assert res["select"] is False
    for op in ("append", "copy_into", "setacl", "delete"):
        assert res[op] is False, (right, op, res)
    # CREATE needs only k on the parent (RFC 4314 4), no lookup
    assert res["create_child"] == (right == "k"), res
    assert res["myrights"] == (right == "l"), res
    c = session(srv, grantee)
    u = c.ok('LIST "" "Other Users/*"')
    listed = any(folder.encode() in r for r in u)
    assert listed == (right == "l"), (right, u)
    c.close()


def test_owner_can_do_everything(srv):
    owner = new_user(srv, "owner")
    setup_folder(srv, owner, "Mine")
    c = session(srv, owner)
    c.ok('SELECT "Mine"')
    c.ok("FETCH 1 (BODY[])")
    c.ok("STORE 2 +FLAGS (\\Seen \\Deleted $Label)")
    u = c.ok("EXPUNGE")
    assert sum(b"EXPUNGE" in r for r in u) == 2
    c.ok('APPEND "Mine" ', Lit(simple_msg()))
    c.ok('CREATE "Mine/child"')
    c.ok('SETACL "Mine" anyone lr')
    c.ok('UNSELECT')
    c.ok('DELETE "Mine/child"')
    c.ok('DELETE "Mine"')
    c.close()


def test_stranger_sees_nothing(srv):
    owner, stranger = new_user(srv, "owner"), new_user(srv, "stranger")
    setup_folder(srv, owner, "Private")
    name = other(owner, "Private")
    c = session(srv, stranger)
    mine = session(srv, stranger)
    mine.ok("APPEND INBOX ", Lit(simple_msg()))
    mine.ok("SELECT INBOX")
    for cmd in (f"SELECT {q(name)}", f"EXAMINE {q(name)}", f"STATUS {q(name)} (MESSAGES)",
                f"GETACL {q(name)}", f"MYRIGHTS {q(name)}", f"SETACL {q(name)} anyone lr",
                f"DELETE {q(name)}", f"CREATE {q(name + '/x')}"):
        u, t = c.cmd(cmd)
        assert t.startswith(b"NO"), (cmd, t)
        # no difference between "exists, not yours" and "does not exist"
        assert b"NOPERM" not in t or cmd.startswith("CREATE"), (cmd, t)
    u, t = c.cmd(f"APPEND {q(name)} ", Lit(simple_msg()))
    assert t.startswith(b"NO"), t
    u, t = mine.cmd(f"COPY 1 {q(name)}")
    assert t.startswith(b"NO"), t
    u = c.ok('LIST "" "*"')
    assert not any(b"Private" in r for r in u), u
    c.close()
    mine.close()


def test_setacl_over_imap_and_anyone(srv):
    owner, someone = new_user(srv, "owner"), new_user(srv, "someone")
    setup_folder(srv, owner, "Public")
    o = session(srv, owner)
    o.ok('SETACL "Public" anyone lr')
    u = o.ok('GETACL "Public"')
    assert any(b"anyone lr" in r for r in u), u
    c = session(srv, someone)
    u, t = c.cmd(f"SELECT {q(other(owner, 'Public'))}")
    assert t.startswith(b"OK") and b"READ-ONLY" in t, t
    u, t = c.cmd("STORE 1 +FLAGS (\\Flagged)")
    assert t.startswith(b"NO"), t
    o.ok('DELETEACL "Public" anyone')
    c.ok("UNSELECT")
    u, t = c.cmd(f"SELECT {q(other(owner, 'Public'))}")
    assert t.startswith(b"NO"), t
    o.close()
    c.close()


def test_seen_is_per_user(srv):
    owner, grantee = new_user(srv, "owner"), new_user(srv, "grantee")
    setup_folder(srv, owner, "Together")
    grant(srv, owner, "Together", grantee, "lrsw")
    o = session(srv, owner)
    g = session(srv, grantee)
    o.ok('SELECT "Together"')
    g.ok(f"SELECT {q(other(owner, 'Together'))}")
    g.ok("STORE 1 +FLAGS (\\Seen \\Flagged)")
    o.ok("STORE 2 +FLAGS (\\Seen)")
    fo = fetches(o.ok("FETCH 1:2 (FLAGS)"))
    fg = fetches(g.ok("FETCH 1:2 (FLAGS)"))
    assert rb"\Seen" not in fo[1][b"FLAGS"] and rb"\Flagged" in fo[1][b"FLAGS"]
    assert rb"\Seen" in fo[2][b"FLAGS"]
    assert rb"\Seen" in fg[1][b"FLAGS"] and rb"\Seen" not in fg[2][b"FLAGS"]
    # reading a body sets \Seen for the reader only
    g.ok("FETCH 3 (BODY[TEXT])")
    assert rb"\Seen" in fetches(g.ok("FETCH 3 (FLAGS)"))[3][b"FLAGS"]
    assert rb"\Seen" not in fetches(o.ok("FETCH 3 (FLAGS)"))[3][b"FLAGS"]
    # searches follow the same view
    u = g.ok("SEARCH SEEN")
    assert [r for r in u if r.startswith(b"* SEARCH")] == [b"* SEARCH 1 3"], u
    u = o.ok("SEARCH SEEN")
    assert [r for r in u if r.startswith(b"* SEARCH")] == [b"* SEARCH 2"], u
    o.close()
    g.close()

"""End-to-end tests of the foundation: start-up, the embedded and an external
PostgreSQL, recovery from a database restart, concurrent migration, clean
shutdown, bureauctl, login throttling, TLS on every port, /metrics and
--check-config.

Every test talks to a real bureaud (tests/e2e/bureau_fixture.py) with
clients nobody here wrote: bureauctl's exit codes and JSON, Python's imaplib
and http.client, openssl s_client, psql.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time

import pytest

from bureau_fixture import (REPO, Bureau, BureauError, DEFAULT_PASSWORD, build_dir,
                            free_port, json_items, json_strings, pids_mentioning, poll,
                            timeout_scale)

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


def schema_files() -> list:
    return sorted((REPO / "schema").glob("[0-9]*.sql"))


def assert_one_line_error(r: subprocess.CompletedProcess, code: int = 1) -> None:
    """bureauctl failed with exit status code and one line on stderr."""
    assert r.returncode == code, (f"expected exit {code}, got {r.returncode}\n"
                                  f"stdout: {r.stdout}\nstderr: {r.stderr}")
    err = r.stderr.strip()
    assert err, "no error message on stderr"
    assert "\n" not in err, f"error message is not one line:\n{err}"


def listed(b: Bureau, *args) -> set[str]:
    """Every string in bureauctl --json ARGS (lower-cased)."""
    return {s.lower() for s in json_strings(b.ctl_json(*args))}


# ---------------------------------------------------------------------------
# start-up, databases, shutdown
# ---------------------------------------------------------------------------

def test_embedded_default_keeps_data_across_restart(embedded_bureau):
    b = embedded_bureau
    b.add_user(ALICE, DEFAULT_PASSWORD)
    assert ALICE in listed(b, "user", "list")
    b.restart()
    assert ALICE in listed(b, "user", "list")
    assert DOMAIN in listed(b, "domain", "list")
    # the cluster lives in the state dir
    assert list(b.state_dir.glob("**/PG_VERSION")), "no PostgreSQL cluster under state_dir"


def test_health(bureau):
    status, _, body = bureau.http_get("/health")
    assert status == 200, body


def test_external_database_url_unix_socket(pg, fresh_db, bureau):
    b = bureau       # database.url = postgresql:///<fresh_db>?host=<socket dir>...
    db = fresh_db
    b.add_user(ALICE, DEFAULT_PASSWORD)
    assert ALICE in listed(b, "user", "list", DOMAIN)
    # the data went to that database, migrated to the last schema file
    assert int(pg.psql("SELECT count(*) FROM schema_version", db=db)) == len(schema_files())
    # and no embedded cluster was created
    assert not list(b.state_dir.glob("**/PG_VERSION"))


def test_external_database_url_tcp(pg, bureau_factory):
    db = pg.create_database("tcp")
    b = bureau_factory(database_url=pg.tcp_url(db)).start()
    b.add_user(ALICE, DEFAULT_PASSWORD)
    assert ALICE in listed(b, "user", "list")
    assert int(pg.psql("SELECT count(*) FROM schema_version", db=db)) == len(schema_files())


def test_recovers_when_postgresql_restarts(pg_cluster, bureau_factory):
    cluster = pg_cluster()
    db = cluster.create_database("recover")
    b = bureau_factory(database_url=cluster.url(db)).start()
    b.add_user(ALICE, DEFAULT_PASSWORD)
    assert b.can_login_imap(ALICE, DEFAULT_PASSWORD)
    pid = b.pid

    cluster.stop_server("immediate")
    # while the database is down, the daemon stays up and answers
    time.sleep(1)
    assert b.running(), "bureaud exited when PostgreSQL went away\n" + b.log_tail()
    assert not b.can_login_imap(ALICE, DEFAULT_PASSWORD)
    cluster.start_server()

    deadline = 30 * timeout_scale()
    poll(lambda: b.can_login_imap(ALICE, DEFAULT_PASSWORD), deadline,
         interval=0.5, what="IMAP LOGIN after PostgreSQL came back")
    poll(lambda: b.http_get("/health")[0] == 200, deadline, what="/health 200")
    assert b.running() and b.pid == pid, "bureaud was restarted instead of reconnecting"
    # and writes work again
    b.ctl("user", "add", BOB, "--password", DEFAULT_PASSWORD, check=True)
    assert b.can_login_imap(BOB, DEFAULT_PASSWORD)


def test_concurrent_start_migrates_once(pg, bureau_factory):
    db = pg.create_database("concurrent")
    url = pg.url(db)
    b1 = bureau_factory(database_url=url, name="first")
    b2 = bureau_factory(database_url=url, name="second")
    b1.start(wait=False)
    b2.start(wait=False)
    b1.wait_ready()
    b2.wait_ready()
    n = len(schema_files())
    assert n > 0, "no schema/*.sql files"
    assert int(pg.psql("SELECT count(*) FROM schema_version", db=db)) == n
    # both serve the same data
    b1.add_user(ALICE, DEFAULT_PASSWORD)
    assert ALICE in listed(b2, "user", "list")
    assert b1.http_get("/health")[0] == 200
    assert b2.http_get("/health")[0] == 200


def test_sigterm_exits_cleanly(embedded_bureau):
    b = embedded_bureau
    rc = b.stop(signal.SIGTERM)
    assert rc == 0, b.log_tail()
    assert re.search(r"\bevent=shutdown\b", b.log_text()), b.log_tail()
    # the embedded PostgreSQL stopped with it
    poll(lambda: not [p for p in pids_mentioning(str(b.state_dir))], 10 * timeout_scale(),
         what="the embedded PostgreSQL to exit")


def test_sigterm_exits_cleanly_external_db(bureau):
    rc = bureau.stop(signal.SIGTERM)
    assert rc == 0, bureau.log_tail()
    assert re.search(r"\bevent=shutdown\b", bureau.log_text(since_start=True)), bureau.log_tail()


def test_restart_after_kill9_embedded(embedded_bureau):
    """A crash (SIGKILL) leaves the embedded postmaster behind; the next
    start must cope and keep the data."""
    b = embedded_bureau
    b.add_user(ALICE, DEFAULT_PASSWORD)
    b.kill9()
    b.start()
    assert ALICE in listed(b, "user", "list")


# ---------------------------------------------------------------------------
# bureauctl
# ---------------------------------------------------------------------------

def test_ctl_domains(bureau):
    b = bureau
    r = b.ctl("domain", "add", DOMAIN)
    assert r.returncode == 0, r.stderr
    assert DOMAIN in listed(b, "domain", "list")
    assert_one_line_error(b.ctl("domain", "add", DOMAIN))              # duplicate
    assert_one_line_error(b.ctl("domain", "remove", "nowhere.test"))   # unknown
    b.ctl("domain", "add", "other.test", check=True)
    assert {DOMAIN, "other.test"} <= listed(b, "domain", "list")
    b.ctl("domain", "remove", "other.test", check=True)
    assert "other.test" not in listed(b, "domain", "list")
    assert DOMAIN in listed(b, "domain", "list")


def test_ctl_users(bureau):
    b = bureau
    # unknown domain, then the domain
    assert_one_line_error(b.ctl("user", "add", ALICE, "--password", DEFAULT_PASSWORD))
    b.ctl("domain", "add", DOMAIN, check=True)
    # password policy: minimum length 8 by default
    assert_one_line_error(b.ctl("user", "add", ALICE, "--password", "short"))
    b.ctl("user", "add", ALICE, "--password", DEFAULT_PASSWORD, "--name", "Alice Liddell",
          "--quota-storage", "1G", "--quota-messages", "1000", check=True)
    assert_one_line_error(b.ctl("user", "add", ALICE, "--password", DEFAULT_PASSWORD))  # duplicate
    assert_one_line_error(b.ctl("user", "add", "ALICE@Example.Test", "--password",
                                DEFAULT_PASSWORD))   # addresses are case-insensitive
    b.ctl("user", "add", BOB, "--password", DEFAULT_PASSWORD, check=True)

    assert {ALICE, BOB} <= listed(b, "user", "list")
    assert len(json_items(b.ctl_json("user", "list", DOMAIN))) >= 2

    assert_one_line_error(b.ctl("user", "passwd", ALICE, "--password", "short"))
    b.ctl("user", "passwd", ALICE, "--password", "another-long-password", check=True)
    assert_one_line_error(b.ctl("user", "passwd", "nobody@example.test", "--password",
                                "another-long-password"))
    b.ctl("user", "disable", ALICE, check=True)
    b.ctl("user", "enable", ALICE, check=True)
    assert_one_line_error(b.ctl("user", "disable", "nobody@example.test"))

    b.ctl("user", "remove", BOB, check=True)
    assert BOB not in listed(b, "user", "list")
    assert_one_line_error(b.ctl("user", "remove", BOB))
    # a domain with accounts in it is not removed silently
    assert ALICE in listed(b, "user", "list")


def test_ctl_aliases(bureau):
    b = bureau
    b.add_user(ALICE)
    alias = f"postmaster@{DOMAIN}"
    b.ctl("alias", "add", alias, ALICE, check=True)
    assert alias in listed(b, "alias", "list", ALICE)
    assert alias in listed(b, "alias", "list")
    assert_one_line_error(b.ctl("alias", "add", alias, ALICE))                       # duplicate
    assert_one_line_error(b.ctl("alias", "add", f"x@{DOMAIN}", f"nobody@{DOMAIN}"))  # no target
    assert_one_line_error(b.ctl("alias", "add", "x@nowhere.test", ALICE))            # no domain
    assert_one_line_error(b.ctl("alias", "add", ALICE, ALICE))    # an account's own address
    b.ctl("alias", "remove", alias, check=True)
    assert alias not in listed(b, "alias", "list", ALICE)
    assert_one_line_error(b.ctl("alias", "remove", alias))


def test_ctl_shared_mailbox(bureau):
    b = bureau
    b.add_user(ALICE)
    b.add_user(BOB)
    info = f"info@{DOMAIN}"
    b.ctl("shared", "add", info, "--name", "Information", "--member", ALICE, check=True)
    assert ALICE in listed(b, "rights", info)
    b.ctl("shared", "member", "add", info, BOB, "--rights", "lrs", check=True)
    rights = listed(b, "rights", info)
    assert BOB in rights and "lrs" in rights
    b.ctl("shared", "member", "remove", info, ALICE, check=True)
    assert ALICE not in listed(b, "rights", info)
    assert_one_line_error(b.ctl("shared", "member", "add", info, f"nobody@{DOMAIN}"))
    assert_one_line_error(b.ctl("shared", "add", info))     # duplicate
    # a shared mailbox has no password: nobody logs in as it
    assert not b.can_login_imap(info, "")
    b.ctl("shared", "remove", info, check=True)
    assert_one_line_error(b.ctl("shared", "remove", info))


def test_ctl_groups(bureau):
    b = bureau
    b.add_user(ALICE)
    staff = f"staff@{DOMAIN}"
    b.ctl("group", "add", staff, check=True)
    assert staff in listed(b, "group", "list")
    b.ctl("group", "member", "add", staff, ALICE, check=True)
    assert_one_line_error(b.ctl("group", "member", "add", staff, f"nobody@{DOMAIN}"))
    assert_one_line_error(b.ctl("group", "add", staff))       # duplicate
    b.ctl("group", "member", "remove", staff, ALICE, check=True)
    assert_one_line_error(b.ctl("group", "member", "remove", staff, ALICE))


def test_ctl_grant_revoke(bureau):
    b = bureau
    b.add_user(ALICE)
    b.add_user(BOB)
    b.ctl("grant", f"{ALICE}/INBOX", BOB, "lr", check=True)
    rights = listed(b, "rights", f"{ALICE}/INBOX")
    assert BOB in rights and "lr" in rights
    b.ctl("grant", ALICE, BOB, "lrs", check=True)           # the whole account
    assert BOB in listed(b, "rights", ALICE)
    b.ctl("revoke", f"{ALICE}/INBOX", BOB, check=True)
    assert BOB not in listed(b, "rights", f"{ALICE}/INBOX")
    b.ctl("revoke", ALICE, BOB, check=True)
    assert BOB not in listed(b, "rights", ALICE)
    assert_one_line_error(b.ctl("grant", f"{ALICE}/INBOX", f"nobody@{DOMAIN}", "lr"))
    assert_one_line_error(b.ctl("grant", f"{ALICE}/No Such Folder", BOB, "lr"))
    assert_one_line_error(b.ctl("grant", f"{ALICE}/INBOX", BOB, "lr!?"))   # not RFC 4314 letters


def test_ctl_app_passwords(bureau):
    b = bureau
    b.add_user(ALICE)
    added = b.ctl_json("app-password", "add", ALICE, "Alice's phone")
    if isinstance(added, list):
        added = added[0]
    pw, pw_id = added["password"], added["id"]
    assert len(pw) >= 16
    assert "alice's phone" in listed(b, "app-password", "list", ALICE)
    assert pw not in b.ctl("app-password", "list", ALICE, check=True).stdout  # shown once only
    assert b.can_login_imap(ALICE, pw)
    b.ctl("app-password", "revoke", ALICE, pw_id, check=True)
    assert not b.can_login_imap(ALICE, pw)
    assert b.can_login_imap(ALICE, DEFAULT_PASSWORD)
    assert_one_line_error(b.ctl("app-password", "revoke", ALICE, pw_id))
    assert_one_line_error(b.ctl("app-password", "add", f"nobody@{DOMAIN}", "x"))


def test_ctl_usage_errors(bureau):
    b = bureau
    for args in (["frobnicate"], ["user"], ["user", "add"], ["domain", "add"],
                 ["user", "add", ALICE, "--password"]):
        r = b.ctl(*args)
        assert r.returncode == 2, f"bureauctl {' '.join(args)}: exit {r.returncode}, {r.stderr}"
        assert r.stderr.strip(), f"bureauctl {' '.join(args)}: no usage message on stderr"


def test_ctl_database_unreachable(bureau_factory):
    dead = free_port()      # nothing listens there
    b = bureau_factory(database_url=f"postgresql://bureau@127.0.0.1:{dead}/nothing?connect_timeout=3")
    assert_one_line_error(b.ctl("domain", "list"), code=3)


def test_passwd_disable_take_effect(bureau, user):
    b = bureau
    address, password = user
    assert b.can_login_imap(address, password)
    b.ctl("user", "passwd", address, "--password", "a-new-password", check=True)
    assert not b.can_login_imap(address, password)
    assert b.can_login_imap(address, "a-new-password")
    b.ctl("user", "disable", address, check=True)
    assert not b.can_login_imap(address, "a-new-password")
    b.ctl("user", "enable", address, check=True)
    assert b.can_login_imap(address, "a-new-password")


# ---------------------------------------------------------------------------
# auth throttling
# ---------------------------------------------------------------------------

def test_wrong_passwords_are_throttled(pg, fresh_db, bureau_factory):
    limit = 3
    b = bureau_factory(database_url=pg.url(fresh_db),
                       config={"auth.fail_limit": limit}).start()
    b.add_user(ALICE, DEFAULT_PASSWORD)
    assert b.can_login_imap(ALICE, DEFAULT_PASSWORD)
    for _ in range(limit + 1):
        assert not b.can_login_imap(ALICE, "wrong-password")
    # past the limit, even the right password is refused for the window
    assert not b.can_login_imap(ALICE, DEFAULT_PASSWORD)
    assert "event=auth" in b.log_text()


# ---------------------------------------------------------------------------
# TLS, HTTP
# ---------------------------------------------------------------------------

def s_client(port: int, starttls: str | None = None) -> subprocess.CompletedProcess:
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost"]
    if starttls:
        cmd += ["-starttls", starttls]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30 * timeout_scale())


TLS_CASES = [
    ("imaps", None), ("pop3s", None), ("submissions", None), ("https", None),
    ("imap", "imap"), ("pop3", "pop3"), ("smtp", "smtp"), ("submission", "smtp"),
]


@pytest.mark.parametrize("service,starttls", TLS_CASES, ids=[s for s, _ in TLS_CASES])
def test_tls_handshake(bureau, service, starttls):
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    r = s_client(bureau.ports[service], starttls)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert re.search(r"Cipher is (?!\(NONE\))\S+", out), out
    assert re.search(r"TLSv1\.[23]", out), out


def test_https_health(bureau):
    status, _, body = bureau.http_get("/health", tls=True)
    assert status == 200, body


PROM_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? '
                         r'(-?[0-9.]+([eE][-+]?[0-9]+)?|[-+]?Inf|NaN)( -?[0-9]+)?$')


def test_metrics_prometheus(bureau, user):
    b = bureau
    b.can_login_imap(*user)      # some traffic to count
    status, headers, body = b.http_get("/metrics")
    assert status == 200, body
    assert headers.get("content-type", "").startswith("text/plain"), headers
    text = body.decode()
    samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert any(ln.startswith("bureau_") for ln in samples), text[:2000]
    assert re.search(r"^# TYPE bureau_\S+ (counter|gauge|histogram|summary|untyped)$", text, re.M)
    bad = [ln for ln in samples if not PROM_SAMPLE.match(ln)]
    assert not bad, f"not Prometheus text format: {bad[:5]}"


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------

def bureaud_cmd(*args) -> subprocess.CompletedProcess:
    """Run build/server/bureaud ARGS (no daemon: --check-config, --write-config)."""
    return subprocess.run([str(build_dir() / "server" / "bureaud"), *map(str, args)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=60 * timeout_scale(), cwd=str(REPO))


def test_check_config_reports_bad_key_with_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("# a comment\n"
                    "listen.address = 127.0.0.1\n"
                    "\n"
                    "imap.port = 11143\n"
                    "no.such.key = 1\n", encoding="utf-8")
    r = bureaud_cmd("-c", conf, "--check-config")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert ":5:" in out and "no.such.key" in out, out

    conf.write_text("imap.port = 70000\n", encoding="utf-8")
    r = bureaud_cmd("-c", conf, "--check-config")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert ":1:" in out and "imap.port" in out, out


def test_write_config_then_check_config(tmp_path):
    conf = tmp_path / "bureau.conf"
    r = bureaud_cmd("--write-config", conf, "-o", f"state_dir={tmp_path}/var",
                    "-o", "imap.port=1143", "-o", "auth.allow_plaintext_loopback=true")
    assert r.returncode == 0, r.stderr
    text = conf.read_text()
    assert re.search(r"^\s*imap\.port\s*=\s*1143\s*$", text, re.M), text
    # every key is documented in the sample: many commented lines
    assert text.count("#") > 10
    r = bureaud_cmd("-c", conf, "--check-config")
    assert r.returncode == 0, r.stdout + r.stderr


def test_bad_option_value_refuses_to_start(tmp_path):
    r = bureaud_cmd("--write-config", tmp_path / "x.conf", "-o", "imap.port=notaport")
    assert r.returncode != 0
    assert "imap.port" in r.stdout + r.stderr


def test_start_fails_cleanly_on_busy_port(bureau, bureau_factory, pg):
    """A port already in use: bureaud says which one and exits non-zero."""
    db = pg.create_database("busy")
    busy = bureau.ports["http"]
    other = bureau_factory(database_url=pg.url(db), config={"http.port": busy})
    other.expect_exit()
    with pytest.raises(BureauError):
        other.start(timeout=30)
    assert other.proc.returncode not in (0, None)
    assert str(busy) in other.log_text(), other.log_tail()
    assert bureau.http_get("/health")[0] == 200      # the first one is unharmed

"""Throwaway PostgreSQL clusters and bureaud instances for the e2e tests.

Two classes, used through the fixtures in conftest.py:

PgCluster
    A private PostgreSQL cluster (initdb + pg_ctl from /usr/lib/postgresql/*/bin)
    in a temporary directory: trust authentication, superuser role ``bureau``,
    a Unix socket in that directory and, optionally, a TCP listener on a free
    127.0.0.1 port. When the tests run as root it runs as the service user
    ``bureau`` (PostgreSQL refuses root). ``create_database()`` makes a fresh
    database and ``url()`` / ``tcp_url()`` give the ``database.url`` for it.

Bureau
    One bureaud: a config file (every service on a free loopback port found by
    binding port 0, plaintext login allowed on loopback, a temporary state_dir
    owned by the service user), the process, its log, and helpers:

        b = Bureau(database_url=pg.url(db), config={"auth.fail_limit": 3})
        b.start()                      # waits for event=ready (or /health)
        b.ports["imap"]                # every service's port
        b.ctl("domain", "add", "example.test")     # CompletedProcess
        b.ctl_json("user", "list")     # parsed --json output (asserts exit 0)
        b.add_user("alice@example.test", "alice-password")  # adds the domain too
        with b.imap_login("alice@example.test", "alice-password") as imap: ...
        b.http_get("/health")          # (status, headers, body)
        b.stop()                       # SIGTERM, returns the exit status
        b.kill9(); b.restart(); b.log_text()

The binaries come from $BUREAU_BUILD_DIR (default: build/ at the top of the
tree), so the same tests run against the ASan build. Nothing here speaks a
protocol with the server's own code: tests use imaplib, http.client, openssl.

Environment:
    BUREAU_BUILD_DIR           build directory (default <repo>/build)
    BUREAU_E2E_TIMEOUT_SCALE   multiply start/stop timeouts (ASan: 3)
    BUREAU_E2E_KEEP=1          keep temporary directories for inspection
    BUREAU_E2E_TMPDIR          where temporary directories go (default /tmp)
"""

from __future__ import annotations

import contextlib
import http.client
import imaplib
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

REPO = Path(__file__).resolve().parents[2]
SERVICE_USER = "bureau"
PG_SUPERUSER = "bureau"       # role name in every test cluster
SERVICES = ("imap", "imaps", "pop3", "pop3s", "smtp", "submission",
            "submissions", "lmtp", "http", "https")
TLS_SERVICES = ("imaps", "pop3s", "submissions", "https")
DEFAULT_PASSWORD = "correct-horse-battery"

SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",            # UBSan
    "WARNING: ThreadSanitizer",
)


class BureauError(AssertionError):
    """A daemon or cluster did not do what the harness asked."""


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def timeout_scale() -> float:
    try:
        return max(1.0, float(os.environ.get("BUREAU_E2E_TIMEOUT_SCALE", "1")))
    except ValueError:
        return 1.0


def build_dir() -> Path:
    d = os.environ.get("BUREAU_BUILD_DIR")
    return Path(d).resolve() if d else REPO / "build"


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_service_user() -> None:
    """Create the system user bureau (root only) if it does not exist."""
    if not is_root():
        return
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent",
                        "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                       check=True)


def as_service_user(cmd: list[str]) -> list[str]:
    """Prefix cmd so that it runs as the service user when we are root."""
    if is_root():
        return ["runuser", "-u", SERVICE_USER, "--"] + cmd
    return cmd


def chown_service_user(path: Path) -> None:
    if is_root():
        pw = pwd.getpwnam(SERVICE_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def make_tmpdir(prefix: str, mode: int = 0o755) -> Path:
    base = os.environ.get("BUREAU_E2E_TMPDIR", "/tmp")
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    d.chmod(mode)
    return d


def remove_tree(path: Path | None) -> None:
    if path is None or os.environ.get("BUREAU_E2E_KEEP") == "1":
        return
    shutil.rmtree(path, ignore_errors=True)


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bind port 0), never
    the same twice in one test session."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise BureauError("no free port found")


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pg_bindir() -> Path:
    """Newest /usr/lib/postgresql/N/bin with initdb and pg_ctl."""
    cands = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            try:
                cands.append((int(d.parent.name), d))
            except ValueError:
                cands.append((0, d))
    if not cands:
        raise BureauError("PostgreSQL server binaries not found under /usr/lib/postgresql "
                          "(apt-get install postgresql, or ./dev test)")
    return max(cands)[1]


def pids_mentioning(text: str) -> list[int]:
    """PIDs of processes whose command line contains text (a unique temp path)."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(p.name))
    return found


def kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def json_strings(obj: Any) -> Iterator[str]:
    """Every string (keys and values) in a parsed JSON document, so tests can
    ask "is alice@example.test in this listing" whatever its exact shape."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from json_strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from json_strings(v)
    elif obj is not None:
        yield str(obj)


def json_items(obj: Any) -> list[Any]:
    """The list inside a listing: the document itself if it is a list, else
    the first list value of an object (e.g. {"users": [...]})."""
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        for v in obj.values():
            if isinstance(v, list):
                return v
        return [obj]
    return [obj]


def poll(fn, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Call fn() until it returns a truthy value (returned) or timeout passes
    (BureauError naming what, with the last exception if any)."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:      # noqa: BLE001 - we report it below
            last_exc = e
        if time.monotonic() >= deadline:
            raise BureauError(f"timed out after {timeout:.0f}s waiting for {what}"
                              + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

class PgCluster:
    """A throwaway PostgreSQL cluster. start() it, destroy() it."""

    _db_counter = itertools.count(1)

    def __init__(self, tcp: bool = True, name: str = "pg"):
        self.tcp = tcp
        self.name = name
        self.bindir = pg_bindir()
        self.dir: Path | None = None
        self.port = free_port() if tcp else 5432   # the socket file is named for the port
        self.running = False

    # paths
    @property
    def datadir(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    @property
    def sockdir(self) -> Path:
        assert self.dir is not None
        return self.dir

    @property
    def logfile(self) -> Path:
        assert self.dir is not None
        return self.dir / "postgres.log"

    def _run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(as_service_user(cmd), capture_output=True, text=True, **kw)

    def start(self) -> "PgCluster":
        ensure_service_user()
        self.dir = make_tmpdir(f"bureau-{self.name}-", 0o700)
        chown_service_user(self.dir)
        r = self._run([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", PG_SUPERUSER,
                       "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "-N"], timeout=120)
        if r.returncode != 0:
            raise BureauError(f"initdb failed:\n{r.stdout}\n{r.stderr}")
        listen = "127.0.0.1" if self.tcp else ""
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write(f"\nlisten_addresses = '{listen}'\n"
                    f"port = {self.port}\n"
                    f"unix_socket_directories = '{self.sockdir}'\n"
                    "max_connections = 300\n"
                    # fsync off is safe for tests that kill PostgreSQL (the
                    # OS keeps what was written); synchronous_commit must
                    # stay on, or an immediate shutdown loses the commits
                    # of the last 200 ms (what a "250 after commit" test
                    # or a restart test relies on)
                    "fsync = off\nsynchronous_commit = on\nfull_page_writes = off\n")
        self.start_server()
        return self

    def start_server(self) -> None:
        """pg_ctl start (again, after stop_server)."""
        r = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l",
                       str(self.logfile), "-w", "-t", "60", "start"], timeout=120)
        if r.returncode != 0:
            tail = self.logfile.read_text(errors="replace")[-3000:] if self.logfile.exists() else ""
            raise BureauError(f"pg_ctl start failed:\n{r.stdout}\n{r.stderr}\n{tail}")
        self.running = True

    def stop_server(self, mode: str = "fast") -> None:
        """pg_ctl stop -m fast|smart|immediate."""
        r = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode,
                       "-w", "-t", "60", "stop"], timeout=120)
        if r.returncode != 0:
            raise BureauError(f"pg_ctl stop failed:\n{r.stdout}\n{r.stderr}")
        self.running = False

    def destroy(self) -> None:
        if self.dir is None:
            return
        if self.running or (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop_server("immediate")
        kill_pids(pids_mentioning(str(self.dir)))
        remove_tree(self.dir)
        self.dir = None

    # connection strings
    def conninfo(self, db: str = "postgres") -> str:
        return f"host={self.sockdir} port={self.port} dbname={db} user={PG_SUPERUSER}"

    def url(self, db: str) -> str:
        """database.url over the Unix socket."""
        return f"postgresql:///{db}?host={self.sockdir}&port={self.port}&user={PG_SUPERUSER}"

    def tcp_url(self, db: str) -> str:
        """database.url over TCP on 127.0.0.1."""
        if not self.tcp:
            raise BureauError("this cluster has no TCP listener")
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "postgres", check: bool = True) -> str:
        """Run sql with psql (unaligned, tuples only); returns stdout stripped."""
        r = subprocess.run([str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", str(self.sockdir), "-p", str(self.port), "-U", PG_SUPERUSER,
                            "-d", db, "-c", sql], capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise BureauError(f"psql failed ({sql!r} on {db}): {r.stderr.strip()}")
        return r.stdout.strip()

    def create_database(self, hint: str = "e2e") -> str:
        """CREATE DATABASE with a fresh, valid name derived from hint."""
        base = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_")[:40] or "e2e"
        name = f"{base}_{os.getpid()}_{next(self._db_counter)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name


# ---------------------------------------------------------------------------
# bureaud
# ---------------------------------------------------------------------------

class Bureau:
    """One bureaud with its own config, state dir, ports and log."""

    def __init__(self, database_url: str | None = None, config: dict[str, Any] | None = None,
                 name: str = "bureau", bindir: Path | None = None):
        self.bindir = Path(bindir) if bindir else build_dir()
        self.bureaud = self.bindir / "server" / "bureaud"
        self.bureauctl = self.bindir / "server" / "bureauctl"
        for b in (self.bureaud, self.bureauctl):
            if not os.access(b, os.X_OK):
                raise BureauError(f"{b} not found: build first (./dev test, or "
                                  f"meson setup build && ninja -C build), or set BUREAU_BUILD_DIR")
        ensure_service_user()
        self.name = name
        self.workdir = make_tmpdir(f"bureau-{name}-", 0o755)   # service user must traverse it
        self.state_dir = self.workdir / "state"
        self.state_dir.mkdir(mode=0o700)
        chown_service_user(self.state_dir)
        self.conf_path = self.workdir / "bureau.conf"
        self.log_path = self.workdir / "bureaud.log"
        self.ports: dict[str, int] = {svc: free_port() for svc in SERVICES}
        self.database_url = database_url
        self.config: dict[str, Any] = {
            "state_dir": str(self.state_dir),
            "listen.address": "127.0.0.1",
            "user": SERVICE_USER if is_root() else "",
            "auth.allow_plaintext_loopback": True,
            "log.level": "info",
        }
        for svc, port in self.ports.items():
            self.config[f"{svc}.port"] = port
        if database_url:
            self.config["database.url"] = database_url
        if config:
            self.config.update(config)
        self.proc: subprocess.Popen | None = None
        self._log_offset = 0
        self._log_fh = None
        self._expect_exit = False      # set when we stop/kill it on purpose
        self._exit_expected_next = False
        self.exits: list[int] = []     # exit statuses of every run so far
        self.write_config()

    # -- config ----------------------------------------------------------
    @staticmethod
    def _fmt(v: Any) -> str:
        """A value in bureau.conf syntax: bare, or in double quotes when it is
        empty or holds '#', '"' or outer spaces."""
        if isinstance(v, bool):
            return "true" if v else "false"
        v = str(v)
        if v == "" or "#" in v or '"' in v or v != v.strip():
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return v

    def write_config(self) -> None:
        """(Re)write bureau.conf from self.config ("key = value" lines)."""
        lines = [f"# bureaud e2e instance {self.name}"]
        lines += [f"{k} = {self._fmt(v)}" for k, v in self.config.items()]
        self.conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.conf_path.chmod(0o644)

    # -- process ---------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait: bool = True, timeout: float = 60) -> "Bureau":
        if self.running():
            raise BureauError("already running")
        self.write_config()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log_fh = open(self.log_path, "ab")
        self._expect_exit = self._exit_expected_next
        self._exit_expected_next = False
        self.proc = subprocess.Popen([str(self.bureaud), "-c", str(self.conf_path)],
                                     cwd=str(REPO), stdin=subprocess.DEVNULL,
                                     stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the log of this run says event=ready or /health answers 200;
        BureauError with the log tail if the daemon dies or time runs out."""
        deadline = time.monotonic() + timeout * timeout_scale()
        while True:
            if self.proc is None or self.proc.poll() is not None:
                rc = self.proc.returncode if self.proc else None
                self._expect_exit = True      # reported here, not again at teardown
                raise BureauError(f"bureaud exited with status {rc} during start-up\n"
                                  f"{self.log_tail()}")
            if "event=ready" in self.log_text(since_start=True):
                return
            with contextlib.suppress(Exception):
                if self.http_get("/health", timeout=1)[0] == 200:
                    return
            if time.monotonic() >= deadline:
                raise BureauError(f"bureaud not ready after {timeout * timeout_scale():.0f}s\n"
                                  f"{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send sig, wait for the exit and return its status (a negative
        number is the signal that killed it). Kills it and raises if it does
        not exit within timeout."""
        if self.proc is None:
            raise BureauError("not started")
        if self.proc.poll() is None:
            self._expect_exit = True
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * timeout_scale())
            except subprocess.TimeoutExpired:
                self.kill9()
                raise BureauError(f"bureaud did not exit within {timeout * timeout_scale():.0f}s "
                                  f"of signal {sig}\n{self.log_tail()}") from None
        return self._reaped()

    def kill9(self) -> int:
        """SIGKILL bureaud itself (a crash: whatever it started is left behind)."""
        if self.proc is None:
            raise BureauError("not started")
        if self.proc.poll() is None:
            self._expect_exit = True
            self.proc.kill()
            self.proc.wait(30)
        return self._reaped()

    def _reaped(self) -> int:
        assert self.proc is not None
        rc = self.proc.returncode
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
            self.exits.append(rc)
        return rc

    def restart(self, timeout: float = 60) -> "Bureau":
        rc = self.stop()
        if rc != 0:
            raise BureauError(f"bureaud exited with status {rc} on SIGTERM\n{self.log_tail()}")
        return self.start(timeout=timeout)

    def expect_exit(self) -> None:
        """The next run is expected to exit by itself (a start that must
        fail): teardown does not report it as a crash."""
        self._exit_expected_next = True
        if self.running():
            self._expect_exit = True

    def died_unexpectedly(self) -> int | None:
        """Exit status if bureaud exited without being asked to, else None."""
        if self.proc is not None and not self._expect_exit and self.proc.poll() is not None:
            return self.proc.returncode
        return None

    def destroy(self) -> None:
        """Stop (SIGTERM, then SIGKILL), kill what it left behind (its
        embedded PostgreSQL after a kill9), remove the temporary files."""
        if self.running():
            try:
                self.stop(timeout=20)
            except BureauError:
                pass
        if self.proc is not None:
            self._reaped()
        # an embedded postmaster left by kill9: immediate shutdown, then kill
        for pidfile in self.state_dir.glob("**/postmaster.pid"):
            with contextlib.suppress(Exception):
                kill_pids([int(pidfile.read_text().split()[0])], signal.SIGQUIT)
        for _ in range(50):
            if not pids_mentioning(str(self.workdir)):
                break
            time.sleep(0.1)
        kill_pids(pids_mentioning(str(self.workdir)))
        remove_tree(self.workdir)

    # -- log -------------------------------------------------------------
    def log_text(self, since_start: bool = False) -> str:
        """The whole log (every run), or only this run's with since_start."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            if since_start:
                f.seek(self._log_offset)
            return f.read().decode("utf-8", errors="replace")

    def log_tail(self, n: int = 60) -> str:
        lines = self.log_text().splitlines()
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + "\n".join(lines[-n:])

    def sanitizer_reports(self) -> list[str]:
        text = self.log_text()
        return [line for line in text.splitlines() if any(p in line for p in SANITIZER_PATTERNS)]

    # -- bureauctl -------------------------------------------------------
    def ctl(self, *args: Any, json_output: bool = False, check: bool = False,
            input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """bureauctl -c CONF [--json] ARGS...; check=True raises on non-zero."""
        cmd = [str(self.bureauctl), "-c", str(self.conf_path)]
        if json_output:
            cmd.append("--json")
        cmd += [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           timeout=timeout * timeout_scale(), cwd=str(REPO))
        if check and r.returncode != 0:
            raise BureauError(f"{' '.join(cmd[3:])} exited {r.returncode}: "
                              f"{r.stderr.strip()}{r.stdout.strip()}")
        return r

    def ctl_json(self, *args: Any) -> Any:
        """bureauctl --json ARGS..., asserted to exit 0, stdout parsed."""
        r = self.ctl(*args, json_output=True, check=True)
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise BureauError(f"bureauctl --json {' '.join(map(str, args))} printed no JSON "
                              f"({e}):\n{r.stdout}") from None

    def add_domain(self, domain: str) -> str:
        """Add domain unless it exists."""
        if domain not in set(json_strings(self.ctl_json("domain", "list"))):
            self.ctl("domain", "add", domain, check=True)
        return domain

    def add_user(self, address: str, password: str = DEFAULT_PASSWORD, *extra: Any) -> str:
        """Add a user (and its domain if needed); returns the address."""
        self.add_domain(address.rsplit("@", 1)[1])
        self.ctl("user", "add", address, "--password", password, *extra, check=True)
        return address

    # -- clients ---------------------------------------------------------
    @staticmethod
    def tls_context() -> ssl.SSLContext:
        """A client context that accepts the self-signed test certificate."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def imap(self, tls: bool = False, timeout: float = 10) -> imaplib.IMAP4:
        """A connected, unauthenticated IMAP client (imaplib)."""
        if tls:
            return imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"],
                                     ssl_context=self.tls_context(), timeout=timeout)
        return imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=timeout)

    @contextlib.contextmanager
    def imap_login(self, user: str, password: str, tls: bool = False) -> Iterator[imaplib.IMAP4]:
        """Logged-in imaplib client; logs out on exit. Raises imaplib.IMAP4.error on NO."""
        c = self.imap(tls=tls)
        try:
            c.login(user, password)
            yield c
        finally:
            with contextlib.suppress(Exception):
                c.logout()
            with contextlib.suppress(Exception):
                c.shutdown()

    def can_login_imap(self, user: str, password: str) -> bool:
        """True when IMAP LOGIN succeeds, False when it is refused or dropped."""
        try:
            with self.imap_login(user, password):
                return True
        except (imaplib.IMAP4.error, OSError, EOFError):
            return False

    def http_get(self, path: str, tls: bool = False, timeout: float = 10,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET path on the HTTP (or HTTPS) port: (status, headers, body)."""
        if tls:
            conn = http.client.HTTPSConnection("127.0.0.1", self.ports["https"], timeout=timeout,
                                               context=self.tls_context())
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.ports["http"], timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def __repr__(self) -> str:
        return f"<Bureau {self.name} pid={self.pid} state={self.state_dir}>"

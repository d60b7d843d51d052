"""pytest fixtures for the end-to-end tests (see bureau_fixture.py).

    pg               (session)  a throwaway PostgreSQL cluster, Unix socket + TCP
    pg_cluster       (function) factory: a private cluster for a test that
                                stops or breaks it (pg_cluster(tcp=False))
    bureau_factory   (function) factory: Bureau(**kwargs), not started; every
                                instance is stopped and removed after the test
    bureau           (function) a started bureaud on a fresh database of `pg`
    embedded_bureau  (function) a started bureaud with its embedded PostgreSQL
    user             (function) (address, password) of a user on `bureau`

After a test, each instance it made is stopped; the test then fails (as an
error in teardown) if bureaud died without being asked to or if a sanitizer
report is in its log (the ASan build). When a test fails, the tail of every
instance's log is attached to the report.
"""

from __future__ import annotations

import pytest

from bureau_fixture import DEFAULT_PASSWORD, Bureau, PgCluster


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster(tcp=True, name="pg").start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_cluster():
    made: list[PgCluster] = []

    def make(tcp: bool = False, name: str = "pgx") -> PgCluster:
        c = PgCluster(tcp=tcp, name=name)
        made.append(c)
        return c.start()

    yield make
    for c in made:
        c.destroy()


@pytest.fixture
def bureau_factory(request):
    instances: list[Bureau] = []
    request.node.bureau_instances = instances

    def make(**kwargs) -> Bureau:
        kwargs.setdefault("name", f"b{len(instances) + 1}")
        b = Bureau(**kwargs)
        instances.append(b)
        return b

    yield make

    problems = []
    for b in instances:
        mine = []
        died = b.died_unexpectedly()
        if died is not None:
            mine.append(f"{b.name}: bureaud exited on its own with status {died}")
        try:
            if b.running():
                b.stop(timeout=20)
        except Exception as e:      # noqa: BLE001
            mine.append(f"{b.name}: {e}")
        reports = b.sanitizer_reports()
        if reports:
            mine.append(f"{b.name}: sanitizer report in the log:\n  " + "\n  ".join(reports[:20]))
        if mine and not getattr(request.node, "bureau_tail_attached", False):
            mine.append(b.log_tail(80))
        problems += mine
        b.destroy()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def fresh_db(pg, request) -> str:
    """Name of a new, empty database on the session cluster."""
    return pg.create_database(request.node.name)


@pytest.fixture
def bureau(pg, fresh_db, bureau_factory) -> Bureau:
    return bureau_factory(database_url=pg.url(fresh_db)).start()


@pytest.fixture
def embedded_bureau(bureau_factory) -> Bureau:
    return bureau_factory().start()


@pytest.fixture
def user(bureau) -> tuple[str, str]:
    address = "alice@example.test"
    bureau.add_user(address, DEFAULT_PASSWORD)
    return address, DEFAULT_PASSWORD


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when == "call":
        item.bureau_tail_attached = True
        for b in getattr(item, "bureau_instances", []):
            rep.sections.append((f"bureaud log ({b.name})", b.log_tail(80)))

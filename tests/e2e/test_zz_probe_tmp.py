import os, sys
sys.path.insert(0, "/work/main/tests/e2e")
from imap_transcript import load_script, run_script
from bureau_fixture import timeout_scale
def test_probe(bureau_factory, pg, fresh_db):
    sc = load_script(__import__("pathlib").Path(os.environ["PROBE"]))
    b = bureau_factory(database_url=pg.url(fresh_db), config=dict(sc.config)).start()
    try:
        r = run_script(sc, b.ports, lambda a, p: b.add_user(a, p))
    finally:
        pass
    for c in r.conns.values(): pass

#!/usr/bin/env python3
"""Side-by-side table of two imap_bench.py --json results (and the IDLE
numbers of idle_bench.py), as Markdown.

    compare.py --a dovecot.json --b bureau.json [--idle idle.json] [--out results.md]

Every line: ops/s, p50 and p99 (ms) of both servers and the ratio of their
ops/s (B / A: above 1 means B is faster).
"""
import argparse
import json


def rows(res):
    """(name, summary) for every measured line, in a stable order."""
    out = []

    def add(name, s):
        if isinstance(s, dict) and "n" in s:
            out.append((name, s))

    add("connect + LOGIN + LOGOUT", res.get("login"))
    add("APPEND (one message per command)", res.get("append"))
    add("SELECT", res.get("select"))
    add("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)", res.get("fetch_all"))
    add("UID FETCH n BODY.PEEK[] (one message)", res.get("fetch_body"))
    add("UID FETCH 500 messages BODY.PEEK[]", res.get("fetch_range"))
    for k, s in (res.get("search") or {}).items():
        add(f"UID SEARCH {k}", s)
    add("UID STORE +FLAGS one message", res.get("store_single"))
    for k, s in (res.get("store_bulk") or {}).items():
        add(f"STORE 1:* {k} (\\Seen)", s)
    for k, s in (res.get("sort") or {}).items():
        add(f"SORT {k}", s)
    for k, s in (res.get("thread") or {}).items():
        add(f"THREAD {k}", s)
    conc = res.get("concurrent") or {}
    if conc.get("all"):
        add(f"{conc.get('clients')} clients mixed: all operations", conc["all"])
        for k, s in (conc.get("per_op") or {}).items():
            if k != "login_select":
                add(f"{conc.get('clients')} clients mixed: {k}", s)
    return out


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="reference server results (Dovecot)")
    ap.add_argument("--b", required=True, help="our server results (bureaud)")
    ap.add_argument("--idle")
    ap.add_argument("--out")
    x = ap.parse_args()
    a, b = json.load(open(x.a)), json.load(open(x.b))
    la, lb = a.get("label") or "A", b.get("label") or "B"
    ra, rb = dict(rows(a)), dict(rows(b))
    names = [n for n, _ in rows(b)] + [n for n, _ in rows(a) if n not in rb]
    lines = [f"| operation | {la} ops/s | {la} p50 ms | {la} p99 ms | {lb} ops/s | {lb} p50 ms "
             f"| {lb} p99 ms | {lb}/{la} ops/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in names:
        sa, sb = ra.get(n, {}), rb.get(n, {})
        oa, ob = sa.get("ops_per_s"), sb.get("ops_per_s")
        ratio = f"{ob / oa:.2f}" if oa and ob else "-"
        extra = ""
        if "hits" in sb or "hits" in sa:
            extra = f" (hits {sa.get('hits', '-')} / {sb.get('hits', '-')}"
            if "expected_hits" in sb:
                extra += f", planted {sb['expected_hits']}"
            extra += ")"
        lines.append(f"| {n}{extra} | {fmt(oa)} | {fmt(sa.get('p50_ms'), 2)} | {fmt(sa.get('p99_ms'), 2)} "
                     f"| {fmt(ob)} | {fmt(sb.get('p50_ms'), 2)} | {fmt(sb.get('p99_ms'), 2)} | {ratio} |")
    for lab, r in ((la, a), (lb, b)):
        c = r.get("concurrent") or {}
        if c:
            lines.append("")
            lines.append(f"{lab}: {c.get('clients')} clients for {c.get('duration_s')} s: "
                         f"{c.get('total_ops')} operations, {c.get('ops_per_s')} ops/s, "
                         f"{c.get('errors')} errors")
    if x.idle:
        i = json.load(open(x.idle))
        lines.append("")
        lines.append(f"IDLE ({lb}): {i['idling']}/{i['connections']} sessions idling at once, "
                     f"server RSS {i['rss_before_kib'] / 1024:.1f} MiB before, "
                     f"{i['rss_idle_kib'] / 1024:.1f} MiB with them "
                     f"({i['rss_per_conn_kib']:.1f} KiB per session); one APPEND reached "
                     f"{i['notified']} of them, the last after {i['notify_all_s']} s "
                     f"(p50 {i['notify_p50_s']} s).")
    text = "\n".join(lines) + "\n"
    print(text)
    if x.out:
        with open(x.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()

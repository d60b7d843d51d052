#!/usr/bin/python3
"""Deterministic corpus of varied RFC 5322 / MIME messages for the IMAP bench.

Standard library only. Writes DIR/NNNNN.eml (CRLF line endings, ready for
APPEND) and DIR/manifest.json (counts, sizes and the planted search tokens,
so the bench can check hit counts).

    gen_corpus.py --out DIR [--count 10000] [--seed 42] [--jobs N]

Every message is derived from (seed, index) alone, so the output does not
depend on --jobs and the same arguments give the same bytes everywhere.

Mix, roughly: 30% text/plain (some quoted-printable, some ISO-8859-1), 25%
multipart/alternative text+HTML, 30% multipart/mixed with 1-3 attachments
(PDF/PNG/JPEG/ZIP-like binaries, CSV, ICS, text; a few of 200-600 KB), 5%
forwarded message/rfc822, 10% mailing-list mail. RFC 2047 UTF-8 names and
subjects, dates over three years in several time zones, and threads: about a
third of the messages reply to one of the 200 before them (In-Reply-To,
References, "Re:"/"RE:"/"Fwd:"/"[list]" subject prefixes), for SORT and
THREAD. Planted tokens (zebracorn ~1%, quokkaflux ~5%, marmotlantern ~20%)
give exact expected SEARCH hits.
"""
import argparse
import datetime
import email.utils
import html
import json
import multiprocessing as mp
import os
import random
import sys
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, default

GENERATOR_VERSION = 3

FIRST = ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan",
         "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent",
         "Victor", "Walter", "Zoë", "Jürgen", "François", "Søren", "Łukasz", "Ðorđe",
         "Ana María", "Hiroshi", "Мария", "Αλέξανδρος", "محمد"]
LAST = ["Smith", "Jones", "Müller", "García", "Rossi", "Dubois", "Kowalski", "Novák",
        "Andersson", "Tanaka", "Иванова", "Παπαδόπουλος", "O'Brien", "van der Berg"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com",
           "lists.example.org", "corp.example", "uni.example.edu"]
TOPICS = ["quarterly report", "invoice", "meeting notes", "project kickoff",
          "server migration", "budget review", "holiday schedule", "release 2.4",
          "security advisory", "customer feedback", "design review", "lunch",
          "your order", "conference travel", "hiring plan", "Überweisung",
          "Réunion d'équipe", "会议纪要", "Отчёт за квартал", "postmortem"]
WORDS = ("the of and to in is that for it as was with be by on not he this are or "
         "his from at which but have an they you were her she there been one all "
         "we their has would when if so no will can more about other into some "
         "could them than time only new its also two may after first any these "
         "mailbox server calendar contact invoice payment deadline schedule draft "
         "attachment review approve budget forecast revenue customer support ticket "
         "deploy rollback database index query latency throughput replication "
         "backup restore quota folder message thread reply forward archive").split()
# rare tokens planted in the first paragraph of the body, for SEARCH checks
TOKENS = {"zebracorn": 0.01, "quokkaflux": 0.05, "marmotlantern": 0.20}
REPLY_PREFIXES = ["Re: ", "Re: ", "Re: ", "RE: ", "Re: Re: ", "Fwd: ", "[dev] Re: "]
TZ_OFFSETS = [0, 0, 60, 60, 120, -300, -240, -420, 330, 540, -180]
BASE_DATE = datetime.datetime(2022, 1, 1, tzinfo=datetime.timezone.utc)
THREAD_WINDOW = 200


def rng_for(seed, i, what):
    return random.Random(f"bureau-corpus:{seed}:{i}:{what}")


def person(rng):
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    local = "".join(c for c in name.split()[0].lower() if c.isascii() and c.isalpha()) or "user"
    return Address(display_name=name, username=f"{local}{rng.randint(1, 99)}",
                   domain=rng.choice(DOMAINS))


class Meta:
    """Header facts of message i that later replies need: computed for every
    index in order (cheap), so workers agree without sharing state."""
    __slots__ = ("mid", "refs", "root_subject", "domain", "date")


def build_metas(seed, count):
    metas = [None] * (count + 1)
    for i in range(1, count + 1):
        r = rng_for(seed, i, "meta")
        m = Meta()
        m.domain = r.choice(DOMAINS)
        m.mid = f"<{i}.{r.getrandbits(48):012x}@{m.domain}>"
        m.date = BASE_DATE + datetime.timedelta(seconds=r.randint(0, 3 * 365 * 86400))
        if i > 1 and r.random() < 0.35:
            p = metas[r.randint(max(1, i - THREAD_WINDOW), i - 1)]
            m.refs = (p.refs + [p.mid])[-20:]
            m.root_subject = p.root_subject
            # a reply is later than what it answers
            m.date = p.date + datetime.timedelta(seconds=r.randint(60, 5 * 86400))
        else:
            m.refs = []
            m.root_subject = f"{r.choice(TOPICS)} #{r.randint(1, 500)}"
        metas[i] = m
    return metas


def paragraph(rng, n_words, planted):
    words = [rng.choice(WORDS) for _ in range(n_words)]
    for tok in planted:
        words.insert(rng.randrange(len(words) + 1), tok)
    lines, cur = [], []
    for w in words:
        cur.append(w)
        if len(cur) >= rng.randint(8, 14):
            lines.append(" ".join(cur))
            cur = []
    if cur:
        lines.append(" ".join(cur))
    text = "\n".join(lines)
    return text[0].upper() + text[1:] + "."


def body_text(rng, planted, paras=None):
    paras = paras or rng.randint(1, 6)
    ps = [paragraph(rng, rng.randint(20, 120), planted if k == 0 else []) for k in range(paras)]
    if rng.random() < 0.3:
        ps.append("Ünïcödé check: naïve café, Straße, 日本語, Ελληνικά, ©2024 – “quotes”.")
    if rng.random() < 0.4:
        ps.append("-- \nSent from a test corpus generator\nPhone: +1 555 0100")
    return "\n\n".join(ps) + "\n"


def html_of(text):
    paras = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in text.split("\n\n"))
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>p{font-family:sans-serif}"
            "</style></head><body>\n" + paras + "</body></html>\n")


MAGIC = {"pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
         "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"}
MIME_OF = {"pdf": ("application", "pdf"), "png": ("image", "png"), "jpg": ("image", "jpeg"),
           "zip": ("application", "zip")}


def binary_blob(rng, kind, size):
    head = MAGIC[kind]
    return head + rng.randbytes(max(0, size - len(head)))


def attachment_size(rng):
    r = rng.random()
    if r < 0.03:
        return rng.randint(200_000, 600_000)
    if r < 0.25:
        return rng.randint(20_000, 120_000)
    return rng.randint(1_000, 20_000)


def ics_text(rng, uid):
    start = datetime.datetime(2025, 1, 1, 9) + datetime.timedelta(days=rng.randint(0, 700),
                                                                   hours=rng.randint(0, 8))
    end = start + datetime.timedelta(minutes=rng.choice([30, 60, 90]))
    f = "%Y%m%dT%H%M%S"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bureau//bench corpus//EN\r\n"
            "METHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n"
            f"DTSTART;TZID=Europe/Berlin:{start.strftime(f)}\r\n"
            f"DTEND;TZID=Europe/Berlin:{end.strftime(f)}\r\n"
            "SUMMARY:Planning meeting\r\nORGANIZER:mailto:alice@example.com\r\n"
            "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.com\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


def make_message(seed, i, metas):
    meta = metas[i]
    rng = rng_for(seed, i, "body")
    sender = person(rng)
    sender = Address(display_name=sender.display_name, username=sender.username, domain=meta.domain)
    msg = EmailMessage(policy=default)
    msg["From"] = sender
    msg["To"] = [person(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    if rng.random() < 0.3:
        msg["Cc"] = [person(rng) for _ in range(rng.randint(1, 4))]
    tz = datetime.timezone(datetime.timedelta(minutes=rng.choice(TZ_OFFSETS)))
    msg["Date"] = email.utils.format_datetime(meta.date.astimezone(tz))
    msg["Message-ID"] = meta.mid
    planted = [t for t, p in TOKENS.items() if rng.random() < p]
    if meta.refs:
        msg["In-Reply-To"] = meta.refs[-1]
        msg["References"] = " ".join(meta.refs)
        subject = rng.choice(REPLY_PREFIXES) + meta.root_subject
    else:
        subject = meta.root_subject
    if "zebracorn" in planted and rng.random() < 0.5:
        subject += " zebracorn"
    msg["Subject"] = subject
    msg["MIME-Version"] = "1.0"
    if rng.random() < 0.5:
        msg["X-Mailer"] = rng.choice(["Thunderbird 115.3", "Apple Mail (2.3731)",
                                      "Microsoft Outlook 16.0", "Roundcube Webmail/1.6",
                                      "K-9 Mail for Android"])
    for h in range(rng.randint(1, 4)):
        msg.add_header("Received", f"from mx{h}.{meta.domain} (mx{h}.{meta.domain} "
                       f"[192.0.2.{rng.randint(1, 254)}]) by mail.example.net with ESMTPS id "
                       f"{rng.getrandbits(40):010x}; {email.utils.format_datetime(meta.date)}")
    text = body_text(rng, planted)
    kind = rng.random()
    if kind < 0.30:
        cte = "quoted-printable" if rng.random() < 0.5 else None
        charset = "iso-8859-1" if rng.random() < 0.15 else "utf-8"
        try:
            msg.set_content(text, charset=charset, cte=cte)
        except UnicodeEncodeError:
            msg.set_content(text, cte=cte)
        shape = "text"
    elif kind < 0.55:
        msg.set_content(text)
        msg.add_alternative(html_of(text), subtype="html")
        shape = "alternative"
    elif kind < 0.85:
        msg.set_content(text)
        if rng.random() < 0.5:
            msg.add_alternative(html_of(text), subtype="html")
        for _ in range(rng.randint(1, 3)):
            what = rng.choice(["pdf", "png", "jpg", "zip", "csv", "ics", "txt"])
            if what in MIME_OF:
                mt = MIME_OF[what]
                base = rng.choice(["report", "scan", "photo", "Rechnung_Nr", "données"])
                msg.add_attachment(binary_blob(rng, what, attachment_size(rng)), maintype=mt[0],
                                   subtype=mt[1], filename=f"{base}_{rng.randint(1, 999)}.{what}")
            elif what == "csv":
                rows = "\n".join(f"{k},{rng.choice(WORDS)},{rng.randint(0, 10**6)},{rng.random():.4f}"
                                 for k in range(rng.randint(20, 2000)))
                msg.add_attachment("id,name,amount,ratio\n" + rows + "\n", subtype="csv",
                                   filename="data.csv")
            elif what == "ics":
                msg.add_attachment(ics_text(rng, f"{i}-{rng.getrandbits(32):08x}@example.com"),
                                   subtype="calendar", filename="invite.ics",
                                   params={"method": "REQUEST"})
            else:
                msg.add_attachment(body_text(rng, [], 4), filename="notes.txt")
        shape = "mixed"
    elif kind < 0.90:
        inner = EmailMessage(policy=default)
        inner["From"] = person(rng)
        inner["To"] = sender
        inner["Subject"] = rng.choice(TOPICS)
        inner["Date"] = email.utils.format_datetime(meta.date)
        inner["Message-ID"] = f"<inner.{i}@{meta.domain}>"
        inner.set_content(body_text(rng, []))
        msg.set_content("Forwarding this, see below.\n\n" + text)
        msg.add_attachment(inner)
        shape = "forward"
    else:
        msg.set_content(text + "\n_______________________________________________\n"
                        f"dev mailing list\ndev@{meta.domain}\n")
        msg["List-Id"] = f"<dev.{meta.domain}>"
        msg["List-Unsubscribe"] = f"<mailto:dev-leave@{meta.domain}>"
        msg["Precedence"] = "list"
        shape = "list"
    # the generator draws MIME boundaries from the global random module
    random.seed(f"bureau-corpus:{seed}:{i}:boundary")
    return msg.as_bytes(policy=SMTP), planted, shape


_metas = None


def _init(seed, count):
    global _metas
    _metas = build_metas(seed, count)


def _work(args):
    seed, out, lo, hi = args
    res = []
    for i in range(lo, hi):
        raw, planted, shape = make_message(seed, i, _metas)
        with open(os.path.join(out, f"{i:05d}.eml"), "wb") as f:
            f.write(raw)
        res.append((i, len(raw), planted, shape))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    if not 1 <= a.count <= 99999:
        sys.exit("--count must be 1..99999")
    os.makedirs(a.out, exist_ok=True)
    step = 250
    chunks = [(a.seed, a.out, lo, min(lo + step, a.count + 1)) for lo in range(1, a.count + 1, step)]
    if a.jobs > 1:
        with mp.Pool(a.jobs, initializer=_init, initargs=(a.seed, a.count)) as pool:
            results = [r for part in pool.imap(_work, chunks) for r in part]
    else:
        _init(a.seed, a.count)
        results = [r for c in chunks for r in _work(c)]
    counts = {t: 0 for t in TOKENS}
    shapes, sizes = {}, []
    for _i, size, planted, shape in results:
        for t in planted:
            counts[t] += 1
        shapes[shape] = shapes.get(shape, 0) + 1
        sizes.append(size)
    sizes.sort()
    manifest = {"generator_version": GENERATOR_VERSION, "count": a.count, "seed": a.seed,
                "bytes": sum(sizes), "size_median": sizes[len(sizes) // 2],
                "size_p95": sizes[int(len(sizes) * 0.95)], "size_max": sizes[-1],
                "shapes": shapes, "token_messages": counts}
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()

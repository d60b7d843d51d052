#!/usr/bin/env python3
"""Generate a deterministic corpus of varied, realistic RFC 5322 / MIME messages
for the IMAP benchmark (tests/bench/imap_bench.sh).

Python 3 standard library only (email package). Output: DIR/NNNNN.eml with CRLF
line endings (ready for IMAP APPEND) and DIR/manifest.json, which records the
counts and the search tokens planted in the corpus, so that the benchmark can
check SEARCH hit counts on every server.

    gen_corpus.py --out DIR [--count 10000] [--seed 42]

Mix (by design, roughly): 30% text/plain (some quoted-printable, some
ISO-8859-1), 25% multipart/alternative text+HTML, 30% multipart/mixed with 1-3
attachments (PDF/PNG/CSV/ZIP-like/ICS, a few of 200-600 KB), 5% forwarded
message/rfc822, 10% mailing-list style; RFC 2047 encoded UTF-8 names and
subjects, threads (In-Reply-To/References), Cc, dates spread over 3 years.
The same seed gives the same bytes on every machine.
"""
import argparse
import json
import os
import random
import email.utils
from email.message import EmailMessage
from email.policy import SMTP, default
from email.headerregistry import Address
import datetime

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
          "Re: your order", "conference travel", "hiring plan", "Überweisung",
          "Réunion d'équipe", "会议纪要", "Отчёт за квартал", "postmortem"]
WORDS = ("the of and to in is that for it as was with be by on not he this are or "
         "his from at which but have an they you were her she there been one all "
         "we their has would when if so no will can more about other into some "
         "could them than time only new its also two may after first any these "
         "mailbox server calendar contact invoice payment deadline schedule draft "
         "attachment review approve budget forecast revenue customer support ticket "
         "deploy rollback database index query latency throughput replication "
         "backup restore quota folder message thread reply forward archive").split()
# Rare tokens planted for SEARCH benchmarks (approximate frequencies):
TOKENS = {"zebracorn": 0.01, "quokkaflux": 0.05, "marmotlantern": 0.20}


def person(rng):
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    user = ("".join(c for c in name.split()[0].lower() if c.isascii() and c.isalpha())
            or "user") + str(rng.randint(1, 99))
    return Address(display_name=name, username=user, domain=rng.choice(DOMAINS))


def paragraph(rng, n_words, planted):
    words = [rng.choice(WORDS) for _ in range(n_words)]
    for tok in planted:
        words.insert(rng.randrange(len(words) + 1), tok)
    out, line = [], []
    for w in words:
        line.append(w)
        if len(line) >= rng.randint(8, 14):
            out.append(" ".join(line)); line = []
    if line:
        out.append(" ".join(line))
    text = "\n".join(out)
    return text[0].upper() + text[1:] + "."


def body_text(rng, planted, paras=None):
    paras = paras or rng.randint(1, 6)
    ps = [paragraph(rng, rng.randint(20, 120), planted if i == 0 else []) for i in range(paras)]
    if rng.random() < 0.3:
        ps.append("Ünïcödé check: naïve café, Straße, 日本語, Ελληνικά, ©2024 – “quotes”.")
    if rng.random() < 0.4:
        ps.append("-- \nSent from a test corpus generator\nPhone: +1 555 0100")
    return "\n\n".join(ps) + "\n"


def html_of(text):
    import html
    paras = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in text.split("\n\n"))
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>p{font-family:sans-serif}"
            "</style></head><body>\n" + paras + "</body></html>\n")


def fake_binary(rng, kind, size):
    head = {"pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"}[kind]
    return head + rng.randbytes(max(0, size - len(head)))


def attachment_size(rng):
    r = rng.random()
    if r < 0.03:
        return rng.randint(200_000, 600_000)
    if r < 0.25:
        return rng.randint(20_000, 120_000)
    return rng.randint(1_000, 20_000)


def ics_attachment(rng, uid):
    start = datetime.datetime(2025, 1, 1, 9) + datetime.timedelta(days=rng.randint(0, 700), hours=rng.randint(0, 8))
    end = start + datetime.timedelta(minutes=rng.choice([30, 60, 90]))
    fmt = "%Y%m%dT%H%M%S"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bureau//bench corpus//EN\r\nMETHOD:REQUEST\r\n"
            "BEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n"
            f"DTSTART;TZID=Europe/Berlin:{start.strftime(fmt)}\r\n"
            f"DTEND;TZID=Europe/Berlin:{end.strftime(fmt)}\r\n"
            "SUMMARY:Planning meeting\r\nORGANIZER:mailto:alice@example.com\r\n"
            "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.com\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


def make_message(rng, i, threads, base_date):
    sender, to = person(rng), [person(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    planted = [t for t, p in TOKENS.items() if rng.random() < p]
    topic = rng.choice(TOPICS)
    msg = EmailMessage(policy=default)
    msg["From"] = sender
    msg["To"] = to
    if rng.random() < 0.3:
        msg["Cc"] = [person(rng) for _ in range(rng.randint(1, 4))]
    date = base_date + datetime.timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
    msg["Date"] = email.utils.format_datetime(date)
    domain = sender.domain
    mid = f"<{i}.{rng.getrandbits(48):012x}@{domain}>"
    msg["Message-ID"] = mid
    subject = f"{topic} #{rng.randint(1, 500)}"
    if threads and rng.random() < 0.35:
        parent = rng.choice(threads)
        msg["In-Reply-To"] = parent[0]
        msg["References"] = " ".join(parent[1] + [parent[0]])[-900:]
        subject = "Re: " + parent[2]
        threads.append((mid, parent[1] + [parent[0]], parent[2]))
    else:
        threads.append((mid, [], subject))
    if len(threads) > 200:
        threads.pop(0)
    if "zebracorn" in planted and rng.random() < 0.5:
        subject += " zebracorn"
    msg["Subject"] = subject
    msg["MIME-Version"] = "1.0"
    if rng.random() < 0.1:
        msg["List-Id"] = f"<dev.{domain}>"
        msg["List-Unsubscribe"] = f"<mailto:dev-leave@{domain}>"
        msg["Precedence"] = "list"
    if rng.random() < 0.5:
        msg["X-Mailer"] = rng.choice(["Thunderbird 115.3", "Apple Mail (2.3731)", "Microsoft Outlook 16.0",
                                      "Roundcube Webmail/1.6", "K-9 Mail for Android"])
    for h in range(rng.randint(1, 4)):
        msg.add_header("Received", f"from mx{h}.{domain} (mx{h}.{domain} [192.0.2.{rng.randint(1, 254)}]) "
                       f"by mail.example.net with ESMTPS id {rng.getrandbits(40):010x}; "
                       f"{email.utils.format_datetime(date)}")
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
            # make it mixed(alternative(text,html), attachments...)
        for _ in range(rng.randint(1, 3)):
            what = rng.choice(["pdf", "png", "jpg", "zip", "csv", "ics", "txt"])
            if what in ("pdf", "png", "jpg", "zip"):
                mt = {"pdf": ("application", "pdf"), "png": ("image", "png"), "jpg": ("image", "jpeg"),
                      "zip": ("application", "zip")}[what]
                msg.add_attachment(fake_binary(rng, what, attachment_size(rng)), maintype=mt[0],
                                   subtype=mt[1], filename=f"{rng.choice(['report', 'scan', 'photo', 'Rechnung_Nr', 'données'])}"
                                   f"_{rng.randint(1, 999)}.{what}")
            elif what == "csv":
                rows = "\n".join(f"{k},{rng.choice(WORDS)},{rng.randint(0, 10**6)},{rng.random():.4f}"
                                 for k in range(rng.randint(20, 2000)))
                msg.add_attachment("id,name,amount,ratio\n" + rows + "\n", subtype="csv", filename="data.csv")
            elif what == "ics":
                msg.add_attachment(ics_attachment(rng, f"{i}-{rng.getrandbits(32):08x}@example.com"),
                                   subtype="calendar", filename="invite.ics", params={"method": "REQUEST"})
            else:
                msg.add_attachment(body_text(rng, [], 4), filename="notes.txt")
        shape = "mixed"
    elif kind < 0.90:
        inner = EmailMessage(policy=default)
        inner["From"] = person(rng); inner["To"] = sender
        inner["Subject"] = rng.choice(TOPICS); inner["Date"] = email.utils.format_datetime(date)
        inner["Message-ID"] = f"<inner.{i}@{domain}>"
        inner.set_content(body_text(rng, []))
        msg.set_content("Forwarding this, see below.\n\n" + text)
        msg.add_attachment(inner)  # message/rfc822
        msg.replace_header("Subject", "Fwd: " + str(inner["Subject"]))
        shape = "forward"
    else:
        msg.set_content(text + "\n_______________________________________________\n"
                        f"dev mailing list\ndev@{domain}\n")
        if "List-Id" not in msg:
            msg["List-Id"] = f"<dev.{domain}>"
        shape = "list"
    return msg, planted, shape


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    threads, counts, shapes, total = [], {t: 0 for t in TOKENS}, {}, 0
    base_date = datetime.datetime(2022, 1, 1, tzinfo=datetime.timezone.utc)
    for i in range(1, a.count + 1):
        msg, planted, shape = make_message(rng, i, threads, base_date)
        raw = msg.as_bytes(policy=SMTP)  # CRLF
        with open(os.path.join(a.out, f"{i:05d}.eml"), "wb") as f:
            f.write(raw)
        for t in planted:
            counts[t] += 1
        shapes[shape] = shapes.get(shape, 0) + 1
        total += len(raw)
    manifest = {"count": a.count, "seed": a.seed, "bytes": total, "shapes": shapes,
                "token_messages": counts}
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()

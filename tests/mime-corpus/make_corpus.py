#!/usr/bin/env python3
# Builds tests/mime-corpus/*.eml and expect.txt:
#   python3 tests/mime-corpus/make_corpus.py tests/mime-corpus
# Each message is written out by hand below. Expected trees of well-formed
# messages come from the construction (the bytes of every part are known
# here), those of broken ones are written out by hand, as are the decoded
# values; nothing is taken from the parser's output.
import os, sys, base64, quopri
OUT = sys.argv[1]
CRLF = b"\r\n"
expect = []

def lines(b):
    return b.count(b"\n") + (1 if b and not b.endswith(b"\n") else 0)

class P:
    def __init__(self, raw, tree, body_len=None):
        self.raw = raw; self.tree = tree

def leaf(ctype, body, hdrs=b"", nl=CRLF, tree_type=None):
    h = b""
    if ctype is not None:
        h += b"Content-Type: " + ctype + nl
    h += hdrs
    raw = h + nl + body
    t = tree_type or ctype.split(b";")[0].strip().lower().decode()
    return P(raw, "%s:%d:%d" % (t, len(body), lines(body)))

def multi(subtype, boundary, parts, hdrs=b"", nl=CRLF, preamble=b"", epilogue=b"", close=True, ctype=None):
    body = preamble
    for i, p in enumerate(parts):
        if i > 0 or preamble:
            body += nl
        body += b"--" + boundary + nl + p.raw
    if close:
        body += nl + b"--" + boundary + b"--" + nl + epilogue
    ct = ctype or (b"multipart/" + subtype + b'; boundary="' + boundary + b'"')
    raw = b"Content-Type: " + ct + nl + hdrs + nl + body
    t = "multipart/%s:%d:%d(%s)" % (subtype.decode(), len(body), lines(body), " ".join(p.tree for p in parts))
    return P(raw, t)

def message(hdrs, inner, nl=CRLF):
    """message/rfc822 part wrapping inner (a P whose raw is a full message)"""
    raw = b"Content-Type: message/rfc822" + nl + hdrs + nl + inner.raw
    t = "message/rfc822:%d:%d{%s}" % (len(inner.raw), lines(inner.raw), inner.tree)
    return P(raw, t)

def top(hdrs, p):
    """a top-level message: RFC 5322 header fields + the part's MIME header and body"""
    return P(hdrs + p.raw, p.tree)

def write(name, data, **keys):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    expect.append((name, keys))

STD = (b"From: Alice Example <alice@example.org>\r\nTo: bob@example.net\r\n"
       b"Date: Mon, 12 Jan 2004 10:00:00 +0100\r\nMessage-ID: <m1@example.org>\r\n"
       b"MIME-Version: 1.0\r\n")

# 01 simple
body = b"Hello Bob,\r\n\r\nthis is a test.\r\n"
m = top(STD + b"Subject: Hello world\r\n", leaf(b"text/plain; charset=us-ascii", body))
write("01-simple.eml", m.raw, tree=m.tree, subject="Hello world", base="Hello world",
      date="1073898000", msgid="m1@example.org", from_="Alice Example <alice@example.org>",
      from_sort="alice", from_display="Alice Example", preview="Hello Bob, this is a test.",
      attach="0", **{"section.1": "text/plain:%d" % len(body)})

# 02 nested mixed > alternative > related
png = base64.encodebytes(bytes(range(256)) * 4).replace(b"\n", b"\r\n")
html = b"<html><head><title>T</title><style>p{}</style></head><body><p>Hi &amp; welcome&nbsp;to <b>Bureau</b></p><img src=\"cid:img1\"></body></html>\r\n"
rel = multi(b"related", b"rel-0001", [
    leaf(b"text/html; charset=utf-8", html),
    leaf(b"image/png; name=logo.png", png, hdrs=b"Content-Transfer-Encoding: base64\r\nContent-ID: <img1>\r\nContent-Disposition: inline; filename=logo.png\r\n"),
])
alt = multi(b"alternative", b"alt-0001", [
    leaf(b"text/plain; charset=utf-8", b"Hi & welcome to Bureau\r\n"),
    rel,
])
pdf = base64.encodebytes(b"%PDF-1.4 fake pdf " * 50).replace(b"\n", b"\r\n")
mixed = multi(b"mixed", b"mix-0001", [alt, leaf(b"application/pdf; name=\"report.pdf\"", pdf,
    hdrs=b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Description: The report\r\n")],
    preamble=b"This is a multi-part message in MIME format.", epilogue=b"epilogue text\r\n")
m = top(STD + b"Subject: Re: [list] Fwd: nested\r\n", mixed)
write("02-nested.eml", m.raw, tree=m.tree, subject="Re: [list] Fwd: nested", base="nested",
      preview="Hi & welcome to Bureau", attach="1",
      **{"section.1.2.1": "text/html:%d" % len(html), "section.2": "application/pdf:%d" % len(pdf),
         "section.1.2.2": "image/png:%d" % len(png), "section.3": "NIL", "section.1.3": "NIL",
         "search": "welcome", "nosearch": "p{}",
         "param.2.name": "report.pdf", "disp.2": "attachment", "dparam.2.filename": "report.pdf",
         "desc.2": "The report", "id.1.2.2": "<img1>", "enc.1.2.2": "base64"})

# 03 forward as message/rfc822 with attachments inside
inner_mixed = multi(b"mixed", b"inner-b", [
    leaf(b"text/plain", b"original text\r\nsecond line\r\n"),
    leaf(b"application/octet-stream", base64.encodebytes(b"\x00\x01binary" * 30).replace(b"\n", b"\r\n"),
         hdrs=b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=data.bin\r\n"),
])
inner = top(b"From: Carol <carol@example.com>\r\nSubject: =?utf-8?q?Original_=C3=BCber?=\r\nDate: 1 Feb 2003 08:00 GMT\r\nMIME-Version: 1.0\r\n", inner_mixed)
fwd = multi(b"mixed", b"outer-b", [
    leaf(b"text/plain", b"see below\r\n"),
    message(b"Content-Disposition: inline\r\n", inner),
])
m = top(STD + b"Subject: Fwd: Original (fwd)\r\n", fwd)
write("03-forward.eml", m.raw, tree=m.tree, subject="Fwd: Original (fwd)", base="Original", attach="1",
      preview="see below",
      **{"section.2.1": "text/plain:%d" % len(b"original text\r\nsecond line\r\n"), "section.2.2": "application/octet-stream",
         "section.2.3": "NIL", "section.2": "message/rfc822", "search": "original text",
         "search2": "Original über", "section.2.1.1": "NIL",
         "env.2.subject": "=?utf-8?q?Original_=C3=BCber?=", "env.2.from": "Carol|carol|example.com"})

# 04 digest: parts without Content-Type are message/rfc822
d1 = top(b"From: a@example.com\r\nSubject: first\r\n", leaf(None, b"one\r\n", tree_type="text/plain"))
d2 = top(b"From: b@example.com\r\nSubject: second\r\n", leaf(None, b"two\r\n", tree_type="text/plain"))
def digest_item(inner):
    return P(b"\r\n" + inner.raw, "message/rfc822:%d:%d{%s}" % (len(inner.raw), lines(inner.raw), inner.tree))
dig = multi(b"digest", b"dig", [digest_item(d1), digest_item(d2), leaf(b"text/plain", b"trailer\r\n")])
m = top(STD + b"Subject: Digest\r\n", dig)
write("04-digest.eml", m.raw, tree=m.tree, subject="Digest",
      **{"section.2.1": "text/plain:5", "env.1.subject": "first", "env.2.subject": "second",
         "search": "two"})

# 05 boundary never occurs -> one empty text/plain child
body = b"--wrong\r\nContent-Type: text/plain\r\n\r\nhello\r\n--wrong--\r\n"
m = P(STD + b"Subject: broken\r\nContent-Type: multipart/mixed; boundary=\"right\"\r\n\r\n" + body,
      "multipart/mixed:%d:%d(text/plain:0:0)" % (len(body), lines(body)))
write("05-boundary-absent.eml", m.raw, tree=m.tree, subject="broken", **{"section.1": "text/plain:0", "section.2": "NIL"})

# 06 multipart without boundary parameter
body = b"just some text\r\n"
m = P(STD + b"Subject: no boundary\r\nContent-Type: multipart/alternative\r\n\r\n" + body,
      "multipart/alternative:%d:%d(text/plain:0:0)" % (len(body), lines(body)))
write("06-no-boundary-param.eml", m.raw, tree=m.tree, subject="no boundary")

# 07 boundary never closed: the last part runs to the end
p2 = b"second part without close\r\nmore\r\n"
body = b"--b1\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b1\r\nContent-Type: text/plain\r\n\r\n" + p2
m = P(STD + b"Subject: unclosed\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" + body,
      "multipart/mixed:%d:%d(text/plain:5:1 text/plain:%d:%d)" % (len(body), lines(body), len(p2), lines(p2)))
write("07-unclosed.eml", m.raw, tree=m.tree, subject="unclosed", **{"section.2": "text/plain:%d" % len(p2)})

# 08 inner boundary has the outer one as prefix
inner = multi(b"alternative", b"frontier-inner", [leaf(b"text/plain", b"a\r\n"), leaf(b"text/html", b"<p>a</p>\r\n")])
outer = multi(b"mixed", b"frontier", [inner, leaf(b"text/plain", b"tail\r\n")])
m = top(STD + b"Subject: prefix\r\n", outer)
write("08-boundary-prefix.eml", m.raw, tree=m.tree, subject="prefix")

# 09 inner boundary equal to the outer one: the outer split wins; finite tree
body = (b"--same\r\nContent-Type: multipart/alternative; boundary=same\r\n\r\n"
        b"--same\r\nContent-Type: text/plain\r\n\r\ninner1\r\n"
        b"--same\r\nContent-Type: text/html\r\n\r\ninner2\r\n"
        b"--same--\r\n"
        b"--same\r\nContent-Type: text/plain\r\n\r\nouter2\r\n--same--\r\n")
# outer parts: [alt header only], [text/plain inner1], [text/html inner2]; close after inner2.
m = P(STD + b"Subject: same\r\nContent-Type: multipart/mixed; boundary=same\r\n\r\n" + body,
      "multipart/mixed:%d:%d(multipart/alternative:0:0(text/plain:0:0) text/plain:6:1 text/html:6:1)" % (len(body), lines(body)))
write("09-boundary-same.eml", m.raw, tree=m.tree, subject="same")

# 10 bare LF everywhere
LF = b"\n"
alt = multi(b"alternative", b"lf", [leaf(b"text/plain", b"plain\nline2\n", nl=LF), leaf(b"text/html", b"<b>x</b>\n", nl=LF)], nl=LF)
m = top(b"From: lf@example.com\nSubject: bare LF\nMIME-Version: 1.0\n", alt)
write("10-bare-lf.eml", m.raw, tree=m.tree, subject="bare LF", preview="plain line2")

# 11 mixed CRLF / LF; header/body separator "\r\n\n"
b1 = b"crlf line\r\nlf line\nlast"
m = P(b"From: mix@example.com\r\nSubject: mixed\nContent-Type: text/plain\r\n\n" + b1,
      "text/plain:%d:%d" % (len(b1), lines(b1)))
write("11-mixed-eol.eml", m.raw, tree=m.tree, subject="mixed", preview="crlf line lf line last")

# 12 NUL bytes in header and body
b1 = b"before\x00after\r\n\x00\r\n"
m = P(b"From: nul@example.com\r\nSubject: nul\x00byte\r\nX-Junk: \x00\x00\r\n\r\n" + b1,
      "text/plain:%d:%d" % (len(b1), lines(b1)))
write("12-nul.eml", m.raw, tree=m.tree, subject="nulbyte", preview="beforeafter", search="beforeafter")

# 13 raw 8-bit latin1 header
m = P(b"From: J\xfcrgen M\xfcller <jm@example.de>\r\nSubject: Gr\xfc\xdfe aus K\xf6ln\r\n\r\nText\r\n",
      "text/plain:6:1")
write("13-latin1-header.eml", m.raw, tree=m.tree, subject="Grüße aus Köln",
      from_="Jürgen Müller <jm@example.de>", from_display="Jürgen Müller")

# 14 raw UTF-8 headers (RFC 6532)
m = P("From: \"Zoë Ünïcode\" <zoe@example.com>\r\nTo: 日本 <nihon@example.jp>\r\nSubject: Ünïcödé ✓ 日本語\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnaïve café\r\n".encode(),
      "text/plain:%d:1" % len("naïve café\r\n".encode()))
write("14-utf8-header.eml", m.raw, tree=m.tree, subject="Ünïcödé ✓ 日本語",
      from_="Zoë Ünïcode <zoe@example.com>", to="日本 <nihon@example.jp>", preview="naïve café")

# 15 encoded words: utf-8 B+Q adjacent (joined), split multibyte sequence
m = P(b"From: =?UTF-8?B?w4lsb2TDrWU=?= <e@example.com>\r\n"
      b"Subject: =?utf-8?B?w5xiZXI=?= =?utf-8?Q?_die_Br=C3=BCcke?=\r\n =?utf-8?q?_=E2=82?= =?utf-8?q?=AC?= plain\r\n\r\nx\r\n",
      "text/plain:3:1")
write("15-ew-utf8.eml", m.raw, tree=m.tree, subject="Über die Brücke € plain", from_="Élodíe <e@example.com>",
      **{"env.subject": "=?utf-8?B?w5xiZXI=?= =?utf-8?Q?_die_Br=C3=BCcke?= =?utf-8?q?_=E2=82?= =?utf-8?q?=AC?= plain",
         "env.from": "=?UTF-8?B?w4lsb2TDrWU=?=|e|example.com"})

# 16 iso-8859-1, iso-8859-2, iso-8859-15
m = P(b"From: =?ISO-8859-1?Q?Andr=E9_Pirard?= <PIRARD@vm1.ulg.ac.be>\r\n"
      b"To: =?iso-8859-2?q?P=F8=EDli=B9_=BEluou=E8k=FD?= <kun@example.cz>\r\n"
      b"Subject: =?iso-8859-15?q?Preis:_100_=A4?=\r\n\r\nx\r\n", "text/plain:3:1")
write("16-ew-latin.eml", m.raw, tree=m.tree, subject="Preis: 100 €",
      from_="André Pirard <PIRARD@vm1.ulg.ac.be>", from_sort="pirard",
      to="Příliš žluoučký <kun@example.cz>")

# 17 koi8-r and windows-1252, malformed words left alone
m = P(b"From: =?koi8-r?B?8NLJ18XU?= <privet@example.ru>\r\n"
      b"Subject: =?windows-1252?Q?=93quoted=94_=96_dash?= =?bogus =?utf-8?x?abc?= =?utf-8?q?unterminated\r\n\r\nx\r\n",
      "text/plain:3:1")
write("17-ew-koi8-cp1252.eml", m.raw, tree=m.tree,
      subject="\u201cquoted\u201d \u2013 dash =?bogus =?utf-8?x?abc?= =?utf-8?q?unterminated",
      from_="Привет <privet@example.ru>")

# 18 Shift_JIS (through iconv) and an unknown charset
sj = "日本語".encode("shift_jis")
m = P(b"Subject: =?shift_jis?B?" + base64.b64encode(sj) + b"?= =?x-unknown?q?ok=FF?=\r\n\r\nx\r\n",
      "text/plain:3:1")
write("18-ew-sjis.eml", m.raw, tree=m.tree, subject="日本語ok\ufffd")

# 19 RFC 2231 parameters
att = base64.encodebytes(b"euro").replace(b"\n", b"\r\n")
p1 = leaf(b"application/octet-stream;\r\n name*0*=utf-8'en'%E2%82%AC%20;\r\n name*1=\"rates \";\r\n name*2*=%C3%A4.pdf", att,
          hdrs=b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n filename*=UTF-8''%E2%82%AC%20rates.pdf\r\n")
p2 = leaf(b"text/plain; charset*=us-ascii'en'us-ascii; format=flowed (comment)", b"body\r\n",
          hdrs=b"Content-Disposition: inline; filename*=iso-8859-1''caf%E9.txt; filename=\"fallback.txt\"\r\n")
mp = multi(b"mixed", b"2231", [p1, p2])
m = top(STD + b"Subject: rfc2231\r\n", mp)
write("19-rfc2231.eml", m.raw, tree=m.tree, subject="rfc2231", attach="1",
      **{"param.1.name": "€ rates ä.pdf", "dparam.1.filename": "€ rates.pdf",
         "dparam.2.filename": "café.txt", "param.2.charset": "us-ascii", "param.2.format": "flowed",
         "disp.2": "inline", "search": "€ rates.pdf"})

# 20 base64 with whitespace and garbage
text = "Grüße aus dem Süden, base64 decoded correctly.\n".encode("utf-8")
enc = base64.b64encode(text)
garbled = b"  " + enc[:10] + b" \t*!\r\n" + enc[10:30] + b"\r\n\r\n" + enc[30:] + b"\r\n====\r\n"
m = P(b"From: b@example.com\r\nSubject: b64\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: BASE64\r\n\r\n" + garbled,
      "text/plain:%d:%d" % (len(garbled), lines(garbled)))
write("20-base64-garbage.eml", m.raw, tree=m.tree, subject="b64", preview="Grüße aus dem Süden, base64 decoded correctly.",
      decoded1=text.decode(), **{"enc.1": "base64"})

# 21 quoted-printable soft breaks, lower-case hex, trailing white space, bad escapes
qp = (b"J'interdis aux marchands de vanter trop leurs marchandises. Car ils se font=\r\n"
      b" vite p=C3=A9dagogues et t'enseignent comme but ce qui n'est par essence qu=  \r\n"
      b"'un moyen, et te trompant ainsi sur la route =e2=82=ac =ZZ = end   \r\n"
      b"last line=\r\n")
dec = ("J'interdis aux marchands de vanter trop leurs marchandises. Car ils se font"
       " vite pédagogues et t'enseignent comme but ce qui n'est par essence qu"
       "'un moyen, et te trompant ainsi sur la route € =ZZ = end\r\nlast line")
m = P(b"Subject: qp\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp,
      "text/plain:%d:%d" % (len(qp), lines(qp)))
write("21-qp.eml", m.raw, tree=m.tree, subject="qp", decoded1=dec)

# 22 1 MB single line
big = b"A" * (1024 * 1024)
m = P(b"Subject: long line\r\n\r\n" + big, "text/plain:%d:1" % len(big))
write("22-long-line.eml", m.raw, tree=m.tree, subject="long line", preview="A" * 200)

# 23 header only (with separator, empty body)
m = P(b"From: h@example.com\r\nSubject: header only\r\n\r\n", "text/plain:0:0")
write("23-header-only.eml", m.raw, tree=m.tree, subject="header only", preview="", **{"section.1": "text/plain:0"})

# 24 empty message
write("24-empty.eml", b"", tree="text/plain:0:0", subject="", **{"section.1": "text/plain:0", "section.2": "NIL"})

# 25 no header/body separator: everything is header
m = b"From: n@example.com\r\nSubject: no separator\r\nX-Last: no newline"
write("25-no-separator.eml", m, tree="text/plain:0:0", subject="no separator", hdrlen=str(len(m)))

# 26 huge number of parts (capped at MIME_MAX_PARTS)
parts = [leaf(b"text/plain", b"p%d\r\n" % i) for i in range(3000)]
mp = multi(b"mixed", b"many", parts)
m = top(STD + b"Subject: many parts\r\n", mp)
write("26-many-parts.eml", m.raw, subject="many parts", parts="2000", children="1999",
      **{"section.1999": "text/plain:%d" % len(b"p1998\r\n"), "section.2000": "NIL"})

# 27 100 nested multiparts
raw = leaf(b"text/plain", b"deep\r\n").raw
for i in range(100):
    raw = b"Content-Type: multipart/mixed; boundary=\"d%d\"\r\n\r\n--d%d\r\n" % (i, i) + raw + b"\r\n--d%d--\r\n" % i
write("27-deep-multipart.eml", b"Subject: deep\r\n" + raw, subject="deep", depth="31",
      leaf_type="application/octet-stream")

# 28 100 nested message/rfc822
raw = b"Subject: level 100\r\n\r\ninnermost\r\n"
for i in range(99, 0, -1):
    raw = b"Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n" % i + raw
write("28-deep-rfc822.eml", raw, subject="level 1", depth="31", leaf_type="application/octet-stream",
      **{"section.1.1.1": "message/rfc822", "env.1.subject": "level 2"})

# 29 garbage Content-Type and Content-Transfer-Encoding
m = P(b"Subject: garbage ctype\r\nContent-Type: ;;;garbage///\r\nContent-Transfer-Encoding: \r\n\r\nbody\r\n", "text/plain:6:1")
write("29-garbage-ctype.eml", m.raw, tree=m.tree, subject="garbage ctype", **{"enc.1": "7bit", "param.1.charset": "us-ascii"})

# 30 addresses: groups, comments, route, missing domain, quoted names
m = P(b"From: \"Doe, John\" <john.doe@example.com> (work)\r\n"
      b"To: undisclosed-recipients:;\r\n"
      b"Cc: friends: pete@example.com (Pete Smith), \"Mary Q.\" <@relay.example:mary@example.org>;, root, <>\r\n"
      b"Bcc: =?utf-8?q?J=C3=B6rg?= <jorg@example.de>, broken@, \"unterminated <x@y>\r\n"
      b"Reply-To: Joe Q. Public <john.q.public@example.com>\r\n"
      b"Subject: [PATCH 1/2] Re: Fw: re: addresses [fwd: hi] (fwd)\r\n\r\nbody\r\n", "text/plain:6:1")
write("30-addresses.eml", m.raw, tree=m.tree, subject="[PATCH 1/2] Re: Fw: re: addresses [fwd: hi] (fwd)",
      base="addresses [fwd: hi]", from_="Doe, John <john.doe@example.com>", from_sort="john.doe",
      from_display="Doe, John",
      **{"env.from": "Doe, John|john.doe|example.com",
         "env.to": "G:undisclosed-recipients;E",
         "env.cc": "G:friends;Pete Smith|pete|example.com;Mary Q.|mary|example.org@@relay.example;E;NIL|root|NIL;NIL||NIL",
         "env.bcc": "=?utf-8?q?J=C3=B6rg?=|jorg|example.de;NIL|broken|NIL;NIL|unterminated <x@y>|NIL",
         "env.reply-to": "Joe Q. Public|john.q.public|example.com",
         "bcc": "Jörg <jorg@example.de>, broken, unterminated <x@y>"})

# 31 HTML only, entities, script
html = (b"<!DOCTYPE html><html><head><meta charset=iso-8859-1><title>Title</title></head><body>\r\n"
        b"<script>var x = '<p>';</script><!-- comment --><p>Caf\xe9 &lt;b&gt; &quot;quoted&quot; &#8364;5 &#x41;&amp;B</p>\r\n"
        b"<div>second&nbsp;&nbsp;block</div><p title=\"a>b\">third</p></body></html>\r\n")
m = P(b"Subject: html\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n" + html, "text/html:%d:%d" % (len(html), lines(html)))
write("31-html.eml", m.raw, tree=m.tree, subject="html",
      preview="Café <b> \"quoted\" €5 A&B second block third", search="Café <b>", nosearch="var x")

# 32 boundary lines with transport padding, preamble and epilogue that look like parts
body = (b"preamble --pad not a boundary\r\n--pad  \t\r\nContent-Type: text/plain\r\n\r\none\r\n"
        b"--padding\r\nnot a delimiter line\r\n"
        b"--pad\r\n\r\ntwo\r\n--pad-- \r\n--pad\r\nepilogue part\r\n")
one = b"one\r\n--padding\r\nnot a delimiter line"
m = P(STD + b"Subject: padding\r\nContent-Type: multipart/mixed; boundary=pad\r\n\r\n" + body,
      "multipart/mixed:%d:%d(text/plain:%d:%d text/plain:3:1)" % (len(body), lines(body), len(one), lines(one)))
write("32-boundary-padding.eml", m.raw, tree=m.tree, subject="padding")

# 33 message/global and Content-Language/Location/MD5
inner = P("From: ü@example.com\r\nSubject: globál\r\n\r\nhi\r\n".encode(), "text/plain:4:1")
mg = P(b"Content-Type: message/global\r\nContent-Language: en, de\r\nContent-Location: http://example.com/x\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\n" + inner.raw,
       "message/global:%d:%d{text/plain:4:1}" % (len(inner.raw), lines(inner.raw)))
mp = multi(b"mixed", b"g", [mg])
m = top(STD + b"Subject: global\r\n", mp)
write("33-message-global.eml", m.raw, tree=m.tree, subject="global",
      **{"lang.1": "en, de", "loc.1": "http://example.com/x", "md5.1": "Q2hlY2sgSW50ZWdyaXR5IQ==",
         "env.1.subject": "globál", "section.1.1": "text/plain:4"})

# 34 empty parts and a delimiter right at the start, CR-only junk
body = b"--e\r\n--e\r\n\r\n--e\r\nContent-Type: text/plain\r\n\r\n\r\n--e--"
m = P(b"Subject: empties\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n" + body,
      "multipart/mixed:%d:%d(text/plain:0:0 text/plain:0:0 text/plain:0:0)" % (len(body), lines(body)))
write("34-empty-parts.eml", m.raw, tree=m.tree, subject="empties")

with open(os.path.join(OUT, "expect.txt"), "w", encoding="utf-8") as f:
    f.write("# Expected results for tests/unit/test_mime.c (one [file] block per message).\n")
    f.write("# Generated with the messages by make_corpus.py: edit there, not here.\n")
    f.write("# tree: type/subtype:body_len:lines, multipart children in (...), the\n")
    f.write("# message inside message/rfc822 in {...}. section.N: the part that\n")
    f.write("# mime_find_part returns (type/subtype[:body_len]) or NIL. Other keys: see\n")
    f.write("# check_key() in test_mime.c.\n")
    for name, keys in expect:
        f.write("\n[%s]\n" % name)
        for k, v in keys.items():
            if k.endswith("_"):
                k = k[:-1]
            v = v.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
            f.write("%s = %s\n" % (k, v))
print(len(expect), "messages")

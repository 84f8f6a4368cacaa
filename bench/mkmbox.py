#!/usr/bin/env python3
"""mkmbox.py N OUT: a deterministic mbox of N varied messages (plain, text with a
base64 attachment, non-ASCII headers, replies with References), for imaptest's
stress mode (mbox=OUT) and, through messages(), for bench/mailbox_ops.py.

The same seed gives the same messages on every machine, so that every server
measured gets the same mailbox: about 1 in 3 carries an attachment of 0.2-20
KB, names include "Carol Chen" (SEARCH FROM "carol") and bodies are drawn from
a small vocabulary that includes "budget" (SEARCH BODY "budget").
"""
import base64
import email.utils
import random
import sys

WORDS = "mail calendar password server account meeting budget report draft review plan team".split()
NAMES = ["Alice Adams", "Bob Brown", "Carol Chen", "Dave Dunn", "山田 太郎", "Émile Zola"]
EPOCH = 1600000000


def _addr(nm):
    if nm.isascii():
        return email.utils.formataddr((nm, nm.split()[0].lower() + "@example.org"))
    return "=?UTF-8?B?%s?= <u%d@example.org>" % (base64.b64encode(nm.encode()).decode(), len(nm))


def messages(n):
    """Yields (unix time, message) for n messages; lines end in LF."""
    r = random.Random(7)
    for i in range(n):
        frm = r.choice(NAMES)
        to = r.choice(NAMES)
        subj = " ".join(r.choice(WORDS) for _ in range(r.randint(2, 7)))
        if i % 5 == 0 and i:
            subj = "Re: " + subj
        when = EPOCH + i * 3571
        date = email.utils.formatdate(when, localtime=False)
        body = "\n".join(" ".join(r.choice(WORDS) for _ in range(r.randint(5, 14))) for _ in range(r.randint(3, 60)))
        m = [f"From: {_addr(frm)}\nTo: {_addr(to)}\nSubject: {subj}\nDate: {date}\nMessage-ID: <m{i}@example.org>\n"]
        if i % 5 == 0 and i:
            m.append(f"In-Reply-To: <m{i-1}@example.org>\nReferences: <m{i-1}@example.org>\n")
        m.append("MIME-Version: 1.0\n")
        if i % 3 == 0:
            att = base64.encodebytes(bytes(r.getrandbits(8) for _ in range(r.randint(200, 20000)))).decode()
            m.append('Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\nContent-Type: text/plain; charset=utf-8\n\n%s\n--b%d\nContent-Type: application/octet-stream; name="a.bin"\nContent-Transfer-Encoding: base64\n\n%s--b%d--\n\n' % (i, i, body, i, att, i))
        else:
            m.append("Content-Type: text/plain; charset=utf-8\n\n" + body.replace("\nFrom ", "\n>From ") + "\n\n")
        yield when, "".join(m)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mkmbox.py N OUT")
    n, out = int(sys.argv[1]), sys.argv[2]
    with open(out, "w", newline="") as f:
        for when, msg in messages(n):
            f.write(f"From sender@example.org {email.utils.formatdate(when)[:-6]}\n")
            f.write(msg)


if __name__ == "__main__":
    main()

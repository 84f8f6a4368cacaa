#!/usr/bin/env python3
"""Mailbox operations on one large mailbox, timed from a real client (python's
imaplib), against one IMAP server or several in alternation.

How to run (any IMAP server on loopback; the user needs LOGIN):

  # one server: fill a mailbox of 10,000 messages, then time the operations
  python3 bench/mailbox_ops.py all --target postern 127.0.0.1:1143 USER PASSWORD -n 10000

  # several servers measured in alternation (what bench/run.sh imap does):
  python3 bench/mailbox_ops.py all -n 10000 --rounds 3 \\
      --target postern-sqlite 127.0.0.1:20701 USER PASSWORD \\
      --target dovecot 127.0.0.1:20702 USER PASSWORD --json out.json --markdown out.md

  # the operations only, on a mailbox already filled (e.g. by an earlier `load`):
  python3 bench/mailbox_ops.py ops --target postern 127.0.0.1:1143 USER PASSWORD
  python3 bench/mailbox_ops.py nagle --target postern 127.0.0.1:1143 USER PASSWORD -k 200

Subcommands: `load` (recreate the mailbox and APPEND n messages, timed), `ops`
(the operations below, best of --rounds), `nagle` (APPEND without TCP_NODELAY,
per-message ms), `all` (load, then ops and nagle). With several targets, `load`
fills each in turn and every round of `ops`/`nagle` measures each target once,
the order rotating from round to round, so that a machine whose speed drifts
(other builds on the same cores) weighs on every server alike.

The messages are bench/mkmbox.py's (deterministic: the same mailbox on every
server). APPEND carries the message's date as INTERNALDATE and \\Seen on 2 in 3
messages, so that SEARCH UNSEEN has work. Every connection sets TCP_NODELAY
except the `nagle` one: imaplib sends a literal and its closing CRLF in two
writes, which is what a client that does not set it meets (Nagle's algorithm
against the server's delayed ACK).

The operations (each timed alone, from sending the command to its tagged
reply; best of --rounds):
  select          SELECT (a fresh connection each round)
  uid_fetch_flags UID FETCH 1:* (UID FLAGS)
  uid_fetch_flags_wire
                  the same command, its response read off the socket up to
                  the tagged reply and not parsed: imaplib spends some 3.7 us
                  of python per response line, so that at 10,000 lines and
                  more the figure above is mostly the client's and the same
                  for every server; this one is the server's
  fetch_last_200  FETCH n-199:n (ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)
  search_from     UID SEARCH FROM "carol"
  search_body     UID SEARCH BODY "budget"
  search_unseen   UID SEARCH UNSEEN
  store_1000      STORE 1:1000 +FLAGS.SILENT (\\Seen), then -FLAGS.SILENT (\\Seen): both
  status          STATUS (MESSAGES UNSEEN UIDNEXT) from a second connection with
                  nothing selected
The result counts (messages found, fetched) are printed too: servers that
disagree on them are not doing the same work.

Loading 100,000 messages by one APPEND at a time takes minutes per server:
--conns N appends from N connections at once (same messages, same method for
every server; UIDs then follow arrival, not generation order). Dovecot's
Maildir takes hours to fill by APPEND at 100,000 (each APPEND slower as the
folder grows): --maildir NAME ROOT writes the same messages, dates and flags
straight into NAME's Maildir folder (generation order) and lets Dovecot index
them at a first, untimed SELECT.
"""
import argparse
import imaplib
import json
import socket
import sys
import threading
import time
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkmbox  # noqa: E402

OPS = [
    ("select", "SELECT"),
    ("uid_fetch_flags", "UID FETCH 1:* (UID FLAGS)"),
    ("uid_fetch_flags_wire", "UID FETCH 1:* (UID FLAGS), received whole, not parsed"),
    ("fetch_last_200", "FETCH last 200 (ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)"),
    ("search_from", 'UID SEARCH FROM "carol"'),
    ("search_body", 'UID SEARCH BODY "budget"'),
    ("search_unseen", "UID SEARCH UNSEEN"),
    ("store_1000", "STORE +FLAGS.SILENT then -FLAGS.SILENT (\\Seen) on 1:1000"),
    ("status", "STATUS (MESSAGES UNSEEN UIDNEXT)"),
]


class Target:
    def __init__(self, name, addr, user, password):
        self.name = name
        host, _, port = addr.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port)
        self.user, self.password = user, password

    def connect(self, nodelay=True):
        m = imaplib.IMAP4(self.host, self.port)
        if nodelay:
            m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        m.login(self.user, self.password)
        return m


def ok(typ, data, what):
    if typ != "OK":
        raise SystemExit("%s: %s %r" % (what, typ, data))
    return data


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


def quote(mailbox):
    return '"%s"' % mailbox


def prepared(n):
    """The n messages as APPEND arguments (CRLF, flags, date), made once."""
    out = []
    for i, (when, msg) in enumerate(mkmbox.messages(n)):
        flags = "(\\Seen)" if i % 3 else None
        out.append((flags, imaplib.Time2Internaldate(when), msg.replace("\n", "\r\n").encode()))
    return out


def recreate(t, mailbox):
    m = t.connect()
    m.delete(quote(mailbox))  # may not exist
    ok(*m.create(quote(mailbox)), "CREATE " + mailbox)
    m.logout()


def fill_maildir(t, mailbox, root, n):
    """Writes the n messages straight into the Maildir++ folder of mailbox
    under root, as files of cur/ (\\Seen in the name's flags, the date as the
    file's mtime, which Dovecot takes for INTERNALDATE), owned by the owner
    of root, then SELECTs the mailbox once so that the server indexes them
    before anything is timed. Returns the seconds it took."""
    start = time.perf_counter()
    folder = os.path.join(root, "." + mailbox)
    st = os.stat(root)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    for i, (when, msg) in enumerate(mkmbox.messages(n)):
        name = os.path.join(folder, "cur", "%d.M%dP1.postern-bench:2,%s" % (1000000000 + i, i, "S" if i % 3 else ""))
        with open(name, "w", newline="") as f:
            f.write(msg)
        os.utime(name, (when, when))
    for dirpath, dirnames, filenames in os.walk(folder):
        for x in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            os.chown(x, st.st_uid, st.st_gid)
    m = t.connect()
    ok(*m.select(quote(mailbox)), "SELECT after the Maildir fill")
    m.logout()
    return time.perf_counter() - start


def append_all(t, mailbox, msgs, conns=1, nodelay=True):
    """APPENDs msgs from conns connections; returns the seconds it took."""
    errors = []

    def worker(part):
        try:
            m = t.connect(nodelay)
            for flags, date, body in part:
                ok(*m.append(quote(mailbox), flags, date, body), "APPEND")
            m.logout()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    parts = [msgs[i::conns] for i in range(conns)]
    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    took = time.perf_counter() - start
    if errors:
        raise SystemExit("%s: APPEND failed: %r" % (t.name, errors[0]))
    return took


def count(data):
    return len(data[0].split()) if data and data[0] else 0


def unparsed(m, command):
    """Sends command on imaplib connection m and reads its response off the
    socket, unparsed, up to its tagged OK; returns the untagged lines."""
    tag = m._new_tag()
    m.send(tag + b" " + command + b"\r\n")
    end = b"\r\n" + tag + b" "
    chunks, tail = [], b"\r\n"
    while True:
        d = m.sock.recv(1 << 20)
        if not d:
            raise SystemExit("connection closed during %r" % command)
        chunks.append(d)
        tail = (tail + d)[-4096:]
        if tail.endswith(b"\r\n"):
            i = tail.rfind(end)
            if i >= 0 and tail.find(b"\r\n", i + len(end)) == len(tail) - 2:
                break
    data = b"".join(chunks)
    i = data.rfind(end)
    if not data[i + len(end):].startswith(b"OK"):
        raise SystemExit("%r: %r" % (command, data[i:]))
    return data.count(b"\r\n* ") + data.startswith(b"* ")


def run_ops(t, mailbox):
    """One round of the operations; returns {op: (seconds, result count)}."""
    res = {}
    m = t.connect()
    s, data = timed(lambda: m.select(quote(mailbox)))
    n = int(ok(*data, "SELECT")[0])
    res["select"] = (s, n)
    s, (typ, data) = timed(lambda: m.uid("FETCH", "1:*", "(UID FLAGS)"))
    res["uid_fetch_flags"] = (s, len(ok(typ, data, "UID FETCH")))
    s, lines = timed(lambda: unparsed(m, b"UID FETCH 1:* (UID FLAGS)"))
    res["uid_fetch_flags_wire"] = (s, lines)
    lo = max(1, n - 199)
    s, (typ, data) = timed(lambda: m.fetch("%d:%d" % (lo, n), "(ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)"))
    res["fetch_last_200"] = (s, len([d for d in ok(typ, data, "FETCH") if d != b")"]))
    for op, crit in (("search_from", ("FROM", '"carol"')), ("search_body", ("BODY", '"budget"')), ("search_unseen", ("UNSEEN",))):
        s, (typ, data) = timed(lambda: m.uid("SEARCH", *crit))
        res[op] = (s, count(ok(typ, data, op)))
    hi = min(1000, n)

    def store():
        ok(*m.store("1:%d" % hi, "+FLAGS.SILENT", "(\\Seen)"), "STORE +")
        return ok(*m.store("1:%d" % hi, "-FLAGS.SILENT", "(\\Seen)"), "STORE -")

    s, _ = timed(store)
    res["store_1000"] = (s, hi)
    m2 = t.connect()
    s, (typ, data) = timed(lambda: m2.status(quote(mailbox), "(MESSAGES UNSEEN UIDNEXT)"))
    res["status"] = (s, ok(typ, data, "STATUS")[0].decode(errors="replace"))
    m2.logout()
    m.logout()
    return res


def run_nagle(t, msgs):
    """APPENDs msgs without TCP_NODELAY to a scratch mailbox; ms per message."""
    box = "bench-nagle"
    recreate(t, box)
    s = append_all(t, box, msgs, nodelay=False)
    m = t.connect()
    m.delete(quote(box))
    m.logout()
    return s * 1000 / len(msgs)


def rotate(seq, k):
    k %= len(seq)
    return seq[k:] + seq[:k]


def fmt_s(s):
    if s >= 10:
        return "%.1f s" % s
    if s >= 1:
        return "%.2f s" % s
    return "%.1f ms" % (s * 1000) if s < 0.01 else "%.0f ms" % (s * 1000)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["load", "ops", "nagle", "all"])
    p.add_argument("--target", nargs=4, action="append", metavar=("NAME", "HOST:PORT", "USER", "PASSWORD"), required=True)
    p.add_argument("-n", type=int, default=10000, help="messages in the mailbox (default 10000)")
    p.add_argument("-k", type=int, default=200, help="messages appended without TCP_NODELAY (default 200; 0 leaves that out of `all`)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of ops and nagle; the best is kept (default 3)")
    p.add_argument("--conns", type=int, default=1, help="connections that load the mailbox (default 1)")
    p.add_argument("--mailbox", default="bench")
    p.add_argument("--maildir", nargs=2, action="append", metavar=("NAME", "ROOT"),
                   help="fill target NAME's mailbox by writing the messages into the user's Maildir++ ROOT instead of by APPEND (no APPEND figure for it)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", help="write a table here")
    a = p.parse_args()
    targets = [Target(*x) for x in a.target]
    results = {"n": a.n, "k": a.k, "rounds": a.rounds, "conns": a.conns, "targets": {t.name: {} for t in targets}}

    if a.cmd in ("load", "all"):
        msgs = prepared(a.n)
        maildirs = dict(a.maildir or [])
        for t in targets:
            recreate(t, a.mailbox)
            if t.name in maildirs:
                s = fill_maildir(t, a.mailbox, maildirs[t.name], a.n)
                print("%-20s wrote %d messages into its Maildir (not an APPEND figure): %s" % (t.name, a.n, fmt_s(s)), flush=True)
                continue
            s = append_all(t, a.mailbox, msgs, a.conns)
            results["targets"][t.name]["append_all"] = s
            print("%-20s APPEND %d messages (%d connection%s): %s" % (t.name, a.n, a.conns, "s" * (a.conns > 1), fmt_s(s)), flush=True)
        del msgs
    if a.cmd in ("ops", "all"):
        best = {t.name: {} for t in targets}
        for r in range(a.rounds):
            for t in rotate(targets, r):
                res = run_ops(t, a.mailbox)
                print("%-20s round %d: %s" % (t.name, r + 1, " ".join("%s=%s" % (op, fmt_s(v[0])) for op, v in res.items())), flush=True)
                for op, v in res.items():
                    if op not in best[t.name] or v[0] < best[t.name][op][0]:
                        best[t.name][op] = v
        for t in targets:
            for op, (s, c) in best[t.name].items():
                results["targets"][t.name][op] = s
                results["targets"][t.name][op + "_result"] = c
    if a.cmd == "nagle" or a.cmd == "all" and a.k > 0:
        msgs = prepared(a.k)
        for r in range(a.rounds):
            for t in rotate(targets, r):
                ms = run_nagle(t, msgs)
                print("%-20s round %d: APPEND without TCP_NODELAY %.2f ms/message" % (t.name, r + 1, ms), flush=True)
                old = results["targets"][t.name].get("append_nagle_ms")
                results["targets"][t.name]["append_nagle_ms"] = ms if old is None else min(old, ms)

    # The result counts must agree between servers, or they did different work.
    for op, _ in OPS:
        seen = {results["targets"][t.name].get(op + "_result") for t in targets} - {None}
        if op != "status" and len(seen) > 1:
            print("warning: %s: the servers disagree on the result: %s" % (op, {t.name: results["targets"][t.name].get(op + "_result") for t in targets}), file=sys.stderr)

    table = markdown(results, targets)
    print(table)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(table)


def markdown(results, targets):
    names = [t.name for t in targets]
    rows = []
    if any("append_all" in results["targets"][x] for x in names):
        rows.append(("append_all", "APPEND %s messages%s" % (format(results["n"], ","), " (%d connections)" % results["conns"] if results["conns"] > 1 else "")))
    rows += OPS
    rows.append(("append_nagle_ms", "APPEND without TCP_NODELAY, ms per message (%d messages)" % results["k"]))
    ref = names[-1]
    head = ["operation"] + names + ["%s / %s" % (x, ref) for x in names[:-1]]
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for op, label in rows:
        vals = [results["targets"][x].get(op) for x in names]
        if all(v is None for v in vals):
            continue
        cells = ["–" if v is None else ("%.2f" % v if op == "append_nagle_ms" else fmt_s(v)) for v in vals]
        r = vals[-1]
        ratios = ["–" if v is None or not r else "%.2f" % (v / r) for v in vals[:-1]]
        out.append("| " + " | ".join([label] + cells + ratios) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()

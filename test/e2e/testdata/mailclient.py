#!/usr/bin/python3
"""Third-party mail clients for the e2e tests: Python's own imaplib, poplib
and smtplib, driven by JSON so that one interpreter start serves many
attempts.

    mailclient.py login  < [{"client", "host", "port", "src", "user",
                             "password", "tls"}, ...]
        prints [{"ok": bool, "error": str}, ...] in the same order.
        client: imap-login | imap-plain | pop3-user | smtp (smtplib login()) |
        smtp-login (AUTH LOGIN)
        tls: "none" | "starttls" | "implicit"; src: the loopback address the
        client binds to (the server throttles failures per client IP).

    mailclient.py send < {"host", "port", "user", "password", "from", "to",
                          "subject", "body"}
        submits one message with smtplib over STARTTLS.

    mailclient.py imap < {"host", "port", "src", "user", "password", "tls",
                          "commands": [["select", "INBOX"], ["uid", "FETCH", ...], ...]}
        logs in with imaplib and calls each command as a method of the
        client (imaplib.IMAP4.<name>(*args)); prints [{"typ", "data"}, ...]
        with bytes as Latin-1 strings and tuples as lists.

    mailclient.py pop3 < {"host", "port", "src", "user", "password", "tls",
                          "commands": [["stat"], ["retr", 1], ["quit"], ...]}
        the same with poplib.POP3 (USER/PASS login).

    mailclient.py tls11 < {"host", "port"}
        tries a TLS 1.1 handshake (ciphers opened up so that the refusal
        comes from the server, not from this client's OpenSSL defaults) and
        prints {"ok": bool, "error": str, "version": str}.

The server's certificate is self-signed: every TLS context here is
unverified on purpose.
"""

import imaplib
import json
import poplib
import smtplib
import socket
import ssl
import sys
import warnings

TIMEOUT = 30


def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def bound(cls, src, implicit_tls=False):
    """A subclass of imaplib.IMAP4 or poplib.POP3 whose socket binds to src,
    wrapped in TLS from the start when implicit_tls (IMAP4_SSL and POP3_SSL
    take no source address)."""

    class Bound(cls):
        def _create_socket(self, timeout):
            sock = socket.create_connection((self.host, self.port), timeout, source_address=(src, 0))
            if implicit_tls:
                return unverified().wrap_socket(sock, server_hostname=self.host)
            return sock

    return Bound


def imap_client(a):
    c = bound(imaplib.IMAP4, a["src"], a["tls"] == "implicit")(a["host"], a["port"], timeout=TIMEOUT)
    if a["tls"] == "starttls":
        c.starttls(ssl_context=unverified())
    return c


def pop3_client(a):
    c = bound(poplib.POP3, a["src"], a["tls"] == "implicit")(a["host"], a["port"], timeout=TIMEOUT)
    if a["tls"] == "starttls":
        c.stls(context=unverified())
    return c


def smtp_client(a):
    src = (a["src"], 0)
    if a["tls"] == "implicit":
        c = smtplib.SMTP_SSL(a["host"], a["port"], timeout=TIMEOUT, source_address=src, context=unverified())
        c.ehlo()
        return c
    c = smtplib.SMTP(a["host"], a["port"], timeout=TIMEOUT, source_address=src)
    c.ehlo()
    if a["tls"] == "starttls":
        c.starttls(context=unverified())
        c.ehlo()
    return c


def plain(user, password):
    return ("\0" + user + "\0" + password).encode()


def attempt(a):
    client, user, password = a["client"], a["user"], a["password"]
    if client in ("imap-login", "imap-plain"):
        c = imap_client(a)
        try:
            if client == "imap-login":
                c.login(user, password)
            else:
                c.authenticate("PLAIN", lambda _: plain(user, password))
            typ, _ = c.select("INBOX")
            if typ != "OK":
                raise RuntimeError("SELECT INBOX: " + typ)
        finally:
            try:
                c.logout()
            except Exception:
                pass
        return
    if client == "pop3-user":
        c = pop3_client(a)
        try:
            c.user(user)
            c.pass_(password)
            c.stat()
        finally:
            try:
                c.quit()
            except Exception:
                pass
        return
    if client in ("smtp", "smtp-login"):
        c = smtp_client(a)
        try:
            if client == "smtp":
                # What applications call: picks PLAIN from the EHLO list
                # (and tries LOGIN after a PLAIN failure).
                c.login(user, password)
            else:
                c.user, c.password = user, password
                # smtplib's auth() counts 503 as success; only 235 is one here.
                code, msg = c.auth("LOGIN", c.auth_login, initial_response_ok=False)
                if code != 235:
                    raise smtplib.SMTPAuthenticationError(code, msg)
        finally:
            try:
                c.quit()
            except Exception:
                pass
        return
    raise ValueError("unknown client " + client)


def login():
    out = []
    for a in json.load(sys.stdin):
        try:
            attempt(a)
            out.append({"ok": True, "error": ""})
        except Exception as e:  # every failure is a result, not a crash
            out.append({"ok": False, "error": type(e).__name__ + ": " + str(e)})
    json.dump(out, sys.stdout)


def send():
    a = json.load(sys.stdin)
    c = smtplib.SMTP(a["host"], a["port"], timeout=TIMEOUT)
    c.ehlo()
    c.starttls(context=unverified())
    c.ehlo()
    c.login(a["user"], a["password"])
    msg = "From: {0}\r\nTo: {1}\r\nSubject: {2}\r\n\r\n{3}\r\n".format(a["from"], a["to"], a["subject"], a["body"])
    c.sendmail(a["from"], [a["to"]], msg.encode())
    c.quit()
    json.dump({"ok": True}, sys.stdout)


def plain_data(v):
    """v with bytes as Latin-1 strings and tuples as lists, for JSON."""
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if isinstance(v, (list, tuple)):
        return [plain_data(x) for x in v]
    return v


def imap():
    a = json.load(sys.stdin)
    c = imap_client(a)
    c.login(a["user"], a["password"])
    out = []
    for name, *args in a["commands"]:
        typ, data = getattr(c, name)(*args)
        out.append({"typ": typ, "data": plain_data(data)})
    c.logout()
    json.dump(out, sys.stdout)


def pop3():
    a = json.load(sys.stdin)
    c = pop3_client(a)
    c.user(a["user"])
    c.pass_(a["password"])
    out = []
    for name, *args in a["commands"]:
        out.append(plain_data(getattr(c, name)(*args)))
    json.dump(out, sys.stdout)


def tls11():
    # TLS 1.1 is deprecated in Python too; that is the point of the test.
    warnings.simplefilter("ignore", DeprecationWarning)
    a = json.load(sys.stdin)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        with socket.create_connection((a["host"], a["port"]), TIMEOUT) as sock:
            with ctx.wrap_socket(sock) as s:
                json.dump({"ok": True, "error": "", "version": s.version()}, sys.stdout)
    except Exception as e:
        json.dump({"ok": False, "error": type(e).__name__ + ": " + str(e), "version": ""}, sys.stdout)


if __name__ == "__main__":
    {"login": login, "send": send, "imap": imap, "pop3": pop3, "tls11": tls11}[sys.argv[1]]()

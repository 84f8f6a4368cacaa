package e2e

import (
	"encoding/base64"
	"strings"
	"testing"
)

// dialogue is one raw login exchange: it returns every line the server
// sent, greeting included.
type dialogue struct {
	name     string
	listener string
	want     string // the generic failure reply must contain this
	run      func(c *lineConn, user, password string) string
}

func saslPlain(authz, user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + password))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// imapQuote is an IMAP quoted string (RFC 9051 §4.3) of s, which has no CR,
// LF or NUL.
func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var loginDialogues = []dialogue{
	{"IMAP LOGIN", "imap", "a1 NO [AUTHENTICATIONFAILED]", func(c *lineConn, u, p string) string {
		return c.line() + c.cmd("a1 LOGIN "+imapQuote(u)+" "+imapQuote(p), "a1 ")
	}},
	{"IMAP AUTHENTICATE PLAIN (SASL-IR)", "imap", "a1 NO [AUTHENTICATIONFAILED]", func(c *lineConn, u, p string) string {
		return c.line() + c.cmd("a1 AUTHENTICATE PLAIN "+saslPlain("", u, p), "a1 ")
	}},
	{"IMAP AUTHENTICATE PLAIN (continuation)", "imap", "a1 NO [AUTHENTICATIONFAILED]", func(c *lineConn, u, p string) string {
		return c.line() + c.cmd("a1 AUTHENTICATE PLAIN", "+") + c.cmd(saslPlain("", u, p), "a1 ")
	}},
	{"POP3 USER/PASS", "pop3", "-ERR [AUTH]", func(c *lineConn, u, p string) string {
		return c.line() + c.cmd("USER "+u, "") + c.cmd("PASS "+p, "")
	}},
	{"POP3 AUTH PLAIN", "pop3", "-ERR [AUTH]", func(c *lineConn, u, p string) string {
		return c.line() + c.cmd("AUTH PLAIN "+saslPlain("", u, p), "")
	}},
	{"SMTP AUTH PLAIN", "submission", "535 5.7.8 ", func(c *lineConn, u, p string) string {
		return c.until("220 ") + c.cmd("EHLO client.example", "250 ") + c.cmd("AUTH PLAIN "+saslPlain("", u, p), "")
	}},
	{"SMTP AUTH LOGIN", "submission", "535 5.7.8 ", func(c *lineConn, u, p string) string {
		return c.until("220 ") + c.cmd("EHLO client.example", "250 ") + c.cmd("AUTH LOGIN", "334 ") +
			c.cmd(b64(u), "334 ") + c.cmd(b64(p), "")
	}},
}

// otherLast returns p with its last character changed (to "x", or "y" when
// it already is "x": the test must never send the right password).
func otherLast(p string) string {
	if strings.HasSuffix(p, "x") {
		return p[:len(p)-1] + "y"
	}
	return p[:len(p)-1] + "x"
}

// testFailureReplies: an unknown user, a wrong password and a main password
// refused by policy (enforced domain, and setting on) get byte-identical
// replies, read raw from the socket (SPEC §5; checklist 2.3, 2.4). Each
// dialogue comes from its own address, so no throttling delay differs.
func (f *mailFixture) testFailureReplies(t *testing.T) {
	creds := []struct{ what, user, password string }{
		{"unknown user", "nobody@example.com", f.aliceApp.Password},
		{"unknown domain", "alice@nowhere.example", f.aliceApp.Password},
		{"wrong password", f.alice.Email, otherLast(f.aliceApp.Password)},
		{"main password, enforced domain", f.alice.Email, f.alice.Main},
		{"main password, setting on", f.carol.Email, f.carol.Main},
		{"inactive app password, setting off", f.bob.Email, f.bobInactive.Password},
	}
	for _, d := range loginDialogues {
		t.Run(d.name, func(t *testing.T) {
			var first string
			for i, cr := range creds {
				c := dial(t, f.srv.Addr(d.listener))
				got := d.run(c, cr.user, cr.password)
				c.Close()
				if i == 0 {
					first = got
					last := got[strings.LastIndex(strings.TrimSuffix(got, "\r\n"), "\n")+1:]
					if !strings.HasPrefix(last, d.want) {
						t.Errorf("%s: final reply %q, want %q…", cr.what, last, d.want)
					}
					continue
				}
				if got != first {
					t.Errorf("%s: the server said\n%q\nbut for %s\n%q", cr.what, got, creds[0].what, first)
				}
			}
		})
	}
}

package e2e

import (
	"strings"
	"testing"
)

// saslCase is a malformed (or, for contrast, well-formed) authentication
// exchange: steps are sent one line each; every step but the last must get
// a continuation.
type saslCase struct {
	name  string
	steps []string
	// want: "generic" for exactly the protocol's ordinary failure reply
	// (the same bytes as for a wrong password), else a prefix of the reply.
	want string
}

// saslProto is how one protocol frames an exchange.
type saslProto struct {
	listener string
	hello    func(c *lineConn)
	final    func(c *lineConn) string // reads the final reply
	cont     string                   // prefix of a continuation
	cases    func(user, password, b64bad string) []saslCase
}

func testMalformedSASL(t *testing.T, srv *Server, user, password string) {
	const bad = "!!!not-base64!!!"
	other := "bob@legacy.example"
	plainCases := func(verb string, syntax string) func(u, p, bad string) []saslCase {
		return func(u, p, bad string) []saslCase {
			return []saslCase{
				{"bad base64", []string{verb + " " + bad}, syntax},
				{"bad base64 after a continuation", []string{verb, bad}, syntax},
				{"cancelled", []string{verb, "*"}, syntax},
				{"no NUL at all", []string{verb + " " + b64(u+p)}, "generic"},
				{"one NUL only", []string{verb + " " + b64(u+"\x00"+p)}, "generic"},
				{"three NULs", []string{verb + " " + b64("\x00"+u+"\x00"+p+"\x00")}, "generic"},
				{"empty password", []string{verb + " " + saslPlain("", u, "")}, "generic"},
				{"empty authcid", []string{verb + " " + saslPlain(u, "", p)}, "generic"},
				// RFC 4616 §2: an authzid other than the authcid needs an
				// authorisation the server does not grant — with the right
				// password, the ordinary failure and no hint.
				{"authzid is another member", []string{verb + " " + saslPlain(other, u, p)}, "generic"},
				{"authzid is an unknown user", []string{verb + " " + saslPlain("root", u, p)}, "generic"},
				{"NUL inside the password", []string{verb + " " + saslPlain("", u, p[:10]+"\x00"+p[10:])}, "generic"},
			}
		}
	}
	protos := []saslProto{
		{
			listener: "imap", cont: "+",
			hello: func(c *lineConn) { c.line() },
			final: func(c *lineConn) string {
				for {
					if l := c.line(); strings.HasPrefix(l, "a1 ") || strings.HasPrefix(l, "* BYE") {
						return l
					}
				}
			},
			cases: func(u, p, bad string) []saslCase {
				cs := plainCases("a1 AUTHENTICATE PLAIN", "a1 BAD")(u, p, bad)
				return append(cs,
					saslCase{"authzid equal to the authcid", []string{"a1 AUTHENTICATE PLAIN " + saslPlain(u, u, p)}, "a1 OK"},
					saslCase{"LOGIN without a password", []string{"a1 LOGIN " + u}, "a1 BAD"},
					saslCase{"LOGIN with a NUL in a quoted string", []string{"a1 LOGIN " + u + " \"a\x00b\""}, "a1 BAD"},
					saslCase{"unknown mechanism", []string{"a1 AUTHENTICATE CRAM-MD5"}, "a1 NO"},
				)
			},
		},
		{
			listener: "pop3", cont: "+",
			hello: func(c *lineConn) { c.line() },
			final: func(c *lineConn) string { return c.line() },
			cases: func(u, p, bad string) []saslCase {
				cs := plainCases("AUTH PLAIN", "-ERR")(u, p, bad)
				return append(cs,
					saslCase{"authzid equal to the authcid", []string{"AUTH PLAIN " + saslPlain(u, u, p)}, "+OK"},
					saslCase{"PASS without USER", []string{"PASS " + p}, "-ERR"},
					saslCase{"unknown mechanism", []string{"AUTH CRAM-MD5"}, "-ERR"},
				)
			},
		},
		{
			listener: "submission", cont: "334 ",
			hello: func(c *lineConn) {
				c.until("220 ")
				c.cmd("EHLO client.example", "250 ")
			},
			final: func(c *lineConn) string { return c.line() },
			cases: func(u, p, bad string) []saslCase {
				// RFC 4954 §4: undecodable base64 and "*" get 501.
				cs := plainCases("AUTH PLAIN", "501 ")(u, p, bad)
				cs[0].want, cs[1].want = "501 5.5.2", "501 5.5.2"
				return append(cs,
					saslCase{"authzid equal to the authcid", []string{"AUTH PLAIN " + saslPlain(u, u, p)}, "235 "},
					saslCase{"LOGIN: bad base64 user name", []string{"AUTH LOGIN", bad}, "501 5.5.2"},
					saslCase{"LOGIN: bad base64 password", []string{"AUTH LOGIN", b64(u), bad}, "501 5.5.2"},
					saslCase{"LOGIN: cancelled at the user name", []string{"AUTH LOGIN", "*"}, "501 "},
					saslCase{"LOGIN: cancelled at the password", []string{"AUTH LOGIN", b64(u), "*"}, "501 "},
					saslCase{"LOGIN: bad base64 initial response", []string{"AUTH LOGIN " + bad}, "501 5.5.2"},
					saslCase{"LOGIN: NUL-separated authzid in the user name", []string{"AUTH LOGIN", b64(other + "\x00" + u), b64(p)}, "generic"},
					saslCase{"LOGIN: empty password", []string{"AUTH LOGIN", b64(u), ""}, "generic"},
					saslCase{"LOGIN: password plus a CRLF-split second line", []string{"AUTH LOGIN", b64(u), b64(p + "\r\nRSET")}, "generic"},
					saslCase{"LOGIN with an initial response", []string{"AUTH LOGIN " + b64(u), b64(p)}, "235 "},
					saslCase{"unknown mechanism", []string{"AUTH CRAM-MD5"}, "504 "},
				)
			},
		},
	}
	for _, proto := range protos {
		t.Run(proto.listener, func(t *testing.T) {
			// The ordinary failure, for "generic" cases to equal.
			generic := runSASL(t, srv, proto, nil, user, "wrong password")
			for _, tc := range proto.cases(user, password, bad) {
				got := runSASL(t, srv, proto, tc.steps, user, password)
				switch {
				case tc.want == "generic" && got != generic:
					t.Errorf("%s: %q, want the ordinary failure %q", tc.name, got, generic)
				case tc.want != "generic" && !strings.HasPrefix(got, tc.want):
					t.Errorf("%s: %q, want %q…", tc.name, got, tc.want)
				}
			}
		})
	}
}

// runSASL runs one exchange on a fresh connection from a fresh address.
// With no steps it runs a PLAIN exchange of user and password (the
// ordinary failure when the password is wrong).
func runSASL(t *testing.T, srv *Server, p saslProto, steps []string, user, password string) string {
	t.Helper()
	if len(steps) == 0 {
		verb := map[string]string{"imap": "a1 AUTHENTICATE PLAIN ", "pop3": "AUTH PLAIN ", "submission": "AUTH PLAIN "}[p.listener]
		steps = []string{verb + saslPlain("", user, password)}
	}
	c := dial(t, srv.Addr(p.listener))
	defer c.Close()
	p.hello(c)
	for _, s := range steps[:len(steps)-1] {
		if r := c.cmd(s, ""); !strings.HasPrefix(r, p.cont) {
			return r // refused early: that is the final reply
		}
	}
	c.send(steps[len(steps)-1] + "\r\n")
	return p.final(c)
}

package imapserver

import (
	"context"
	"testing"
	"time"
)

// ENVELOPE lists address groups with their start and end markers (RFC 3501
// §7.4.2), and SEARCH FROM/TO find addresses written with comments, as
// Dovecot does (imaptest's fetch-envelope and search-addresses).
func TestEnvelopeGroupsAndAddressSearch(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	inbox := e.inbox(t).ID
	for _, m := range []string{
		"From: user@domain (Real Name)\r\nTo: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\nCc: undisclosed-recipients:;\r\n\r\nbody\r\n",
		"From: <user-from (comment)@ (comment) domain.org>\r\nTo: <@route:user@domain>\r\n\r\nbody\r\n",
		"From: \"Name\" <user-from@domain.org> (comment)\r\n\r\nbody\r\n",
		"From: other@domain.org\r\n\r\nbody\r\n",
	} {
		if _, err := e.mail.Append(context.Background(), inbox, nil, time.Time{}, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, e.addr)
	c.login()
	c.ok("a1", "EXAMINE INBOX")
	wantLines(t, "ENVELOPE", c.ok("a2", "FETCH 1:2 ENVELOPE"),
		`* 1 FETCH (UID 1 ENVELOPE (NIL NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) `+
			`((NIL NIL "group" NIL) (NIL NIL "g1" "d1.org") (NIL NIL "g2" "d2.org") (NIL NIL NIL NIL) (NIL NIL "group2" NIL) (NIL NIL "g3" "d3.org") (NIL NIL NIL NIL)) `+
			`((NIL NIL "undisclosed-recipients" NIL) (NIL NIL NIL NIL)) NIL NIL NIL))`,
		`* 2 FETCH (UID 2 ENVELOPE (NIL NIL ((NIL NIL "user-from" "domain.org")) ((NIL NIL "user-from" "domain.org")) ((NIL NIL "user-from" "domain.org")) `+
			`((NIL "@route" "user" "domain")) NIL NIL NIL NIL))`,
		"a2 OK FETCH completed")
	wantLines(t, "SEARCH FROM", c.ok("a3", "SEARCH FROM user-from@domain.org")[:1], "* SEARCH 2 3")
	wantLines(t, "SEARCH FROM a name", c.ok("a4", `SEARCH FROM "real name"`)[:1], "* SEARCH 1")
	wantLines(t, "SEARCH TO a group", c.ok("a5", "SEARCH TO group2")[:1], "* SEARCH 1")
	wantLines(t, "SEARCH FROM raw text", c.ok("a6", `SEARCH FROM "(comment)"`)[:1], "* SEARCH 2 3")
}

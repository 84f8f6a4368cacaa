package smtpserver

import (
	"strings"
	"testing"
)

// TestFromMustBeOwn: a message whose From: or Sender: names anyone but the
// authenticated member is refused at the end of DATA, byte for byte, and
// nothing is delivered; the member's own address passes whatever its case,
// display name or encoding, and a message without From: gets one.
func TestFromMustBeOwn(t *testing.T) {
	e := newEnv(t)
	const (
		forged = "550 5.7.1 The From: address must be your own address <alice@example.test>\r\n"
		sender = "550 5.7.1 The Sender: address must be your own address <alice@example.test>\r\n"
		unread = "550 5.7.1 The From: field cannot be read as addresses; it must hold your own address <alice@example.test>\r\n"
		ok     = "250 2.0.0 Message accepted and delivered\r\n"
	)
	cases := []struct {
		name, header, want string
	}{
		{"forged", "From: Bob <bob@other.test>\r\n", forged},
		{"forged bare", "From: bob@other.test\r\n", forged},
		{"own and another", "From: alice@example.test, bob@other.test\r\n", forged},
		{"another and own", "From: Bob <bob@other.test>, Alice <alice@example.test>\r\n", forged},
		{"group of another", "From: Team: bob@other.test;\r\n", forged},
		{"empty group", "From: undisclosed-recipients:;\r\n", unread},
		{"empty", "From:\r\n", unread},
		{"unparseable", "From: bob@other.test <alice@example.test>\r\n", unread},
		{"two fields, second forged", "From: alice@example.test\r\nFrom: bob@other.test\r\n", forged},
		{"lower-case field name", "from: bob@other.test\r\n", forged},
		{"space before colon", "From : bob@other.test\r\n", forged},
		{"folded", "From: Bob\r\n <bob@other.test>\r\n", forged},
		{"after a malformed line", "Subject: x\r\nnot a field\r\nFrom: bob@other.test\r\n", forged},
		{"encoded word address is no address", "From: =?utf-8?q?alice=40example.test?= <bob@other.test>\r\n", forged},
		{"long s is not s", "From: alice@example.te\u017ft\r\n", forged},
		{"other local part", "From: alicex@example.test\r\n", forged},
		{"tag of another", "From: bob+alice@other.test\r\n", forged},
		{"own with a plus tag", "From: Alice <alice+news@example.test>\r\n", ok},
		{"forged Sender", "From: alice@example.test\r\nSender: bob@other.test\r\n", sender},
		{"own", "From: alice@example.test\r\n", ok},
		{"own with display name", "From: \"Alice A.\" <alice@example.test>\r\n", ok},
		{"own in other case", "From: Alice <ALICE@Example.TEST>\r\n", ok},
		{"own with encoded display name", "From: =?utf-8?b?QWxpY2Ug8J+Yig==?= <alice@example.test>\r\n", ok},
		{"own with comment", "From: alice@example.test (Alice)\r\n", ok},
		{"own twice", "From: alice@example.test, Alice <alice@example.test>\r\nSender: alice@example.test\r\n", ok},
		{"own in a group", "From: Me: alice@example.test;\r\n", ok},
		{"From only in the body", "Subject: x\r\n\r\nFrom: bob@other.test\r\n", ok},
		{"no From", "Subject: x\r\n", ok},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.inbox(e.bob))
			c := dial(t, e.addr)
			c.login(e.alice.Email, alicePass)
			c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
			c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
			c.wantCmd("DATA", "354 ")
			c.send(tc.header + "To: bob@other.test\r\n\r\nhi\r\n.\r\n")
			if got := c.reply(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			c.wantCmd("NOOP", "250 ")
			box := e.inbox(e.bob)
			if tc.want != ok {
				if len(box) != before {
					t.Fatalf("refused, yet delivered")
				}
				return
			}
			if len(box) != before+1 {
				t.Fatalf("accepted, yet %d delivered", len(box)-before)
			}
			got := box[len(box)-1]
			if !strings.HasSuffix(got, tc.header+"To: bob@other.test\r\n\r\nhi\r\n") {
				t.Fatalf("stored %q", got)
			}
			from, _ := identityFields([]byte(got))
			if tc.name == "no From" && (len(from) != 1 || from[0] != "<alice@example.test>") {
				t.Fatalf("added From: %q in %q", from, got)
			}
		})
	}
}

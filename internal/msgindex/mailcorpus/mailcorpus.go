// Package mailcorpus is a set of varied messages for tests and benchmarks
// of what reads messages (the message index, IMAP FETCH, SEARCH, SORT and
// THREAD): plain, multipart, attachments, encoded words, groups, folded and
// broken headers, nested messages, 8-bit text.
package mailcorpus

import (
	"fmt"
	"strings"
)

// Messages are the fixed corpus, each with CRLF line ends.
func Messages() [][]byte {
	var out [][]byte
	for _, m := range fixed {
		out = append(out, []byte(strings.ReplaceAll(strings.TrimLeft(m, "\n"), "\n", "\r\n")))
	}
	return out
}

var fixed = []string{`
From: Carol Example <carol@example.org>
To: alice@example.com
Subject: Budget for Q3
Date: Mon, 02 Jan 2006 15:04:05 -0700
Message-ID: <q3@example.org>

The budget is attached below.
`, `
From: "Dave (work)" <dave@example.net> (the boss)
To: undisclosed-recipients:;
Cc: Friends: ann@example.com, "Bob B" <bob@example.com>;, carol@example.org
Subject: Re: [list] Re: Fwd: Budget for Q3 (fwd)
Date: Tue, 03 Jan 2006 01:00:00 +0900
Message-ID: <r1@example.net>
In-Reply-To: <q3@example.org>
References: <q3@example.org>

> The budget is attached below.
Thanks.
`, `
From: =?UTF-8?B?SsO8cmdlbg==?= <juergen@example.de>
To: =?ISO-8859-1?Q?Andr=E9?= <andre@example.fr>
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=
Date: Wed, 04 Jan 2006 10:00:00 +0100
Message-ID: <gruss@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Sch=C3=B6ne Gr=C3=BC=C3=9Fe, das Bud=
get ist fertig.
`, `
From: eve@example.com
To: alice@example.com
Subject: photos
Date: Thu, 05 Jan 2006 12:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/plain; charset=us-ascii

See the   photos
   attached.
--b2
Content-Type: text/html; charset=us-ascii

<html><style>p{}</style><p>See the <b>photos</b> attached.</p></html>
--b2--
--b1
Content-Type: image/png; name="a.png"
Content-Disposition: attachment; filename="a.png"
Content-Transfer-Encoding: base64

iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA
--b1--
`, `
From: frank@example.com
To: alice@example.com
Subject: forwarded
Date: Fri, 06 Jan 2006 08:00:00 -0500
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

Forwarding this.
--outer
Content-Type: message/rfc822

From: grace@example.com
To: frank@example.com
Subject: inner budget
Date: Thu, 05 Jan 2006 08:00:00 -0500

Inner text with BUDGET words.
--outer--
`, `
Subject: no from, no date
X-Note: base64 encoded body follows
Content-Transfer-Encoding: base64

YnVkZ2V0IGhpZGRlbiBpbiBiYXNlNjQK
`, `
From: heidi@example.com
To: alice@example.com,
 bob@example.com,
	carol@example.org
Subject: a folded
 subject line
Date: Sat, 07 Jan 2006 09:00:00 +0000

Body with a K (Kelvin sign) budget-free: ` + "\u212a" + `ELVIN and ` + "\u0130" + `.
`, `
From: ivan@example.com
To: alice@example.com
Subject: Latin-1 raw ` + "\xe9t\xe9" + `
Date: not a date
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

Caf` + "\xe9" + ` budget ` + "\xff\xfe" + `
`, `
From: judy@example.com
To: alice@example.com
Subject: html only
Date: Sun, 08 Jan 2006 23:59:59 +1400
Content-Type: text/html; charset=utf-8

<html><head><script>var budget=1;</script></head><body><h1>Hello</h1><p>World &amp; more</p></body></html>
`, `
From: mallory@example.com
To: alice@example.com
Subject: broken header line without colon
this is not a header
Date: Mon, 09 Jan 2006 10:00:00 +0000

body
`, `
From: oscar@example.com
To: alice@example.com
Subject: empty body
Date: Mon, 09 Jan 2006 10:00:00 +0000

`, `
From: peggy@example.com, trent@example.com
Sender: secretary@example.com
Reply-To: list@example.com
To: "Group Member" <a@example.com>
Bcc: hidden@example.com
Subject: [announce] RE: re: FW: weekly report
Date: 10 Jan 2006 10:00 GMT
Message-ID: <weekly@example.com>
In-Reply-To: <older@example.com> <oldest@example.com>
References: <oldest@example.com> <older@example.com>

weekly numbers
`, `
From: =?utf-8?q?M=C3=BCller?= <müller@bücher.example>
To: "Jörg" <jörg@example.de>
Subject: Bücher, raw UTF-8
Date: Tue, 11 Jan 2006 11:00:00 +0100
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="u"

--u
Content-Type: text/plain; charset=utf-8

Die Bücher sind da.
--u
Content-Type: application/pdf; name="Bücher.pdf"
Content-Disposition: attachment; filename="Bücher.pdf"

%PDF-1.4
--u--
`, `
From: <user-from (comment)@ (comment) domain.org>
To: user-to@domain.org (RealTo)
Subject: Re: Budget for Q3
Date: Wed, 12 Jan 2006 12:00:00 +0000
Message-ID: <r2@domain.org>
References: <q3@example.org> <r1@example.net>

comments around the address
`,
}

// Varied returns message n of a deterministic stream of varied messages
// (benchmarks fill mailboxes of 10,000 and 100,000 with it): senders,
// subjects, threads, sizes and structures vary; seed picks the stream.
func Varied(seed uint64, n int) []byte {
	r := &stream{state: seed ^ uint64(n)*0x9e3779b97f4a7c15}
	people := []string{"carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"}
	words := []string{"budget", "meeting", "report", "lunch", "plan", "review", "invoice", "draft", "travel", "update", "status", "notes"}
	from := people[r.IntN(len(people))]
	to := people[r.IntN(len(people))]
	thread := r.IntN(n/4 + 1)
	subject := fmt.Sprintf("%s %s #%d", words[r.IntN(len(words))], words[r.IntN(len(words))], thread)
	if r.IntN(3) == 0 {
		subject = "Re: " + subject
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s <%s@example.com>\r\nTo: %s@example.org\r\n", strings.ToUpper(from[:1])+from[1:], from, to)
	if r.IntN(4) == 0 {
		fmt.Fprintf(&b, "Cc: %s@example.net\r\n", people[r.IntN(len(people))])
	}
	fmt.Fprintf(&b, "Subject: %s\r\nDate: Mon, %02d Jan 2024 %02d:%02d:00 +0000\r\n", subject, 1+r.IntN(28), r.IntN(24), r.IntN(60))
	fmt.Fprintf(&b, "Message-ID: <m%d.%d@example.com>\r\n", seed, n)
	if n > 0 && r.IntN(3) == 0 {
		parent := r.IntN(n)
		fmt.Fprintf(&b, "In-Reply-To: <m%d.%d@example.com>\r\nReferences: <m%d.%d@example.com>\r\n", seed, parent, seed, parent)
	}
	text := func(k int) string {
		var t strings.Builder
		for i := 0; i < k; i++ {
			if i > 0 && i%12 == 0 {
				t.WriteString("\r\n")
			} else if i > 0 {
				t.WriteByte(' ')
			}
			t.WriteString(words[r.IntN(len(words))])
		}
		return t.String()
	}
	switch r.IntN(4) {
	case 0, 1:
		fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", text(20+r.IntN(400)))
	case 2:
		fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\n%s\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>%s</p>\r\n--alt--\r\n", text(50), text(50))
	default:
		fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: text/plain\r\n\r\n%s\r\n--mix\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--mix--\r\n",
			text(30), strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n", 1+r.IntN(60)))
	}
	return []byte(b.String())
}

// stream is splitmix64: the same messages for the same seed on every run
// and machine. Postern keeps math/rand out of its code (secrets come from
// crypto/rand only), and a test corpus needs no more than this.
type stream struct{ state uint64 }

func (s *stream) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// IntN returns a number in [0, n).
func (s *stream) IntN(n int) int { return int(s.next() % uint64(n)) }

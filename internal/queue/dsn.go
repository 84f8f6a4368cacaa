package queue

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"mime"
	"net/textproto"
	"strings"
	"time"
)

// reported is a recipient a DSN reports on.
type reported struct {
	Recipient
	Outcome
	gaveUp bool // failed because the queue gave up, not by a permanent reply
}

// report is a delivery status notification (RFC 3464) to the sender's
// INBOX: a human part in the member's language, the machine-readable
// message/delivery-status part, and the original message's header.
type report struct {
	Hostname   string
	Sender     Sender
	Arrival    time.Time
	Now        time.Time
	Original   []byte
	Recipients []reported
	Delayed    bool      // a delay notice ("delayed"), else a bounce ("failed")
	RetryUntil time.Time // delay notices: when the queue gives up
}

// texts are the human part's words, by language.
var texts = map[string]map[string]string{
	"en": {
		"subject.failed":  "Undelivered mail returned to sender",
		"subject.delayed": "Delayed mail (still being retried)",
		"intro.failed":    "Your message could not be delivered to the following recipients. It will not be tried again.",
		"intro.delayed":   "Your message has not yet been delivered to the following recipients. Delivery will be retried until %s; you need do nothing now.",
		"gave_up":         "gave up after trying since %s",
		"reply":           "The receiving server said",
		"outro":           "The header of your message is attached.",
	},
	"ja": {
		"subject.failed":  "配信できなかったメールの返送",
		"subject.delayed": "配信が遅れているメール（再試行中）",
		"intro.failed":    "次の宛先にメールを配信できませんでした。これ以上の再試行は行いません。",
		"intro.delayed":   "次の宛先へのメールはまだ配信されていません。%s まで再試行します。今は何もする必要はありません。",
		"gave_up":         "%s から試みましたが断念しました",
		"reply":           "受信側サーバーの応答",
		"outro":           "元のメールのヘッダーを添付します。",
	},
}

func (r report) text(key string) string {
	lang := r.Sender.Language
	if _, ok := texts[lang]; !ok {
		lang = "en"
	}
	return texts[lang][key]
}

// status is the RFC 3463 status of a reported recipient.
func (p reported) status() string {
	if p.Enhanced != "" {
		return p.Enhanced
	}
	if p.Permanent {
		return "5.0.0"
	}
	return "4.0.0"
}

// build renders the report.
func (r report) build() []byte {
	var b bytes.Buffer
	boundary := "dsn-" + strings.ToLower(rand.Text()[:20])
	kind := "failed"
	if r.Delayed {
		kind = "delayed"
	}
	date := r.Now.Format(time.RFC1123Z)
	crlf := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	crlf("From: Mail Delivery System <MAILER-DAEMON@%s>", r.Hostname)
	crlf("To: <%s>", r.Sender.Email)
	crlf("Subject: %s", encodeWord(r.text("subject."+kind)))
	crlf("Date: %s", date)
	crlf("Message-ID: <%s@%s>", strings.ToLower(rand.Text()), r.Hostname)
	crlf("Auto-Submitted: auto-replied") // RFC 3834: nobody answers it automatically
	crlf("MIME-Version: 1.0")
	crlf("Content-Type: multipart/report; report-type=delivery-status; boundary=\"%s\"", boundary)
	crlf("")
	crlf("--%s", boundary)
	crlf("Content-Type: text/plain; charset=utf-8")
	crlf("Content-Transfer-Encoding: 8bit")
	crlf("")
	if r.Delayed {
		crlf(r.text("intro."+kind), r.RetryUntil.UTC().Format(time.RFC1123))
	} else {
		crlf("%s", r.text("intro."+kind))
	}
	crlf("")
	for _, p := range r.Recipients {
		crlf("  <%s>", p.Address)
		if p.gaveUp {
			crlf("    "+r.text("gave_up"), r.Arrival.UTC().Format(time.RFC1123))
		}
		if p.Code != 0 {
			crlf("    %s: %d %s %s", r.text("reply"), p.Code, p.Enhanced, oneLine(p.Text))
		} else if p.Text != "" {
			crlf("    %s", oneLine(p.Text))
		}
		if p.RemoteMTA != "" {
			crlf("    (%s)", p.RemoteMTA)
		}
	}
	crlf("")
	crlf("%s", r.text("outro"))
	crlf("")
	crlf("--%s", boundary)
	crlf("Content-Type: message/delivery-status")
	crlf("")
	crlf("Reporting-MTA: dns; %s", r.Hostname)
	crlf("Arrival-Date: %s", r.Arrival.Format(time.RFC1123Z))
	for _, p := range r.Recipients {
		crlf("")
		crlf("Final-Recipient: rfc822; %s", p.Address)
		crlf("Action: %s", kind)
		crlf("Status: %s", p.status())
		if p.RemoteMTA != "" {
			crlf("Remote-MTA: dns; %s", p.RemoteMTA)
		}
		if p.Code != 0 {
			crlf("Diagnostic-Code: smtp; %d %s %s", p.Code, p.Enhanced, oneLine(p.Text))
		} else if p.Text != "" {
			crlf("Diagnostic-Code: x-postern; %s", oneLine(p.Text))
		}
		crlf("Last-Attempt-Date: %s", date)
		if r.Delayed {
			crlf("Will-Retry-Until: %s", r.RetryUntil.Format(time.RFC1123Z))
		}
	}
	crlf("")
	crlf("--%s", boundary)
	crlf("Content-Type: text/rfc822-headers")
	crlf("")
	b.Write(headerOf(r.Original))
	crlf("")
	crlf("--%s--", boundary)
	return b.Bytes()
}

// oneLine keeps a remote server's text on one printable line: it is put in
// header-like fields and must not add any.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 500 {
		s = s[:500]
	}
	return strings.TrimSpace(s)
}

// headerOf returns msg's header section, CRLF line ends, without the blank
// line that ends it.
func headerOf(msg []byte) []byte {
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg)))
	var b bytes.Buffer
	for {
		line, err := tr.ReadLine()
		if err != nil || line == "" {
			break
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// encodeWord RFC 2047-encodes a subject that is not ASCII.
func encodeWord(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return mime.BEncoding.Encode("utf-8", s)
		}
	}
	return s
}

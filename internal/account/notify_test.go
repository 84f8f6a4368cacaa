package account

import (
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"sort"
	"strings"
	"testing"
	"time"
)

// The header fields RenderMail writes; a hostile name must add none.
var wantHeaders = []string{"Auto-Submitted", "Content-Transfer-Encoding", "Content-Type", "Date",
	"From", "Message-Id", "Mime-Version", "Subject", "To"}

// parseNotification parses raw with net/mail and returns its header field
// names, decoded subject and decoded body.
func parseNotification(t *testing.T, raw []byte) (names []string, subject, body string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, raw)
	}
	for k := range msg.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject: %v", err)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return names, subject, string(b)
}

// TestRenderMailHostile: names and user agents that try to split headers or
// inject markup add no header field (docs/security.md).
func TestRenderMailHostile(t *testing.T) {
	m := Member{ID: 1, Email: "alice@example.com"}
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, name := range []string{
		`"><img src=x onerror=alert(1)>`,
		"X\r\nBcc: evil@x",
		"X\nBcc: evil@x\n\nbody",
		"=?utf-8?q?Bcc:_evil@x?=",
		"日本語\r\nX-Injected: 1",
	} {
		subject := "A third-party app password was created: " + name
		names, gotSubject, body := parseNotification(t, RenderMail(m, subject, "App name: "+name+"\n", at))
		if strings.Join(names, ",") != strings.Join(wantHeaders, ",") {
			t.Errorf("%q: header fields %v, want %v", name, names, wantHeaders)
		}
		// The decoded subject is exactly what was meant, also for a name
		// shaped like an RFC 2047 encoded-word (encodeSubject).
		if want := strings.Map(printable, subject); gotSubject != want {
			t.Errorf("%q: subject %q, want %q", name, gotSubject, want)
		}
		if !strings.Contains(body, "App name: ") {
			t.Errorf("%q: body %q", name, body)
		}
	}
}

// TestCreatedMessage: the notification of a creation carries the app name,
// time, IP, browser and the seed's advice with both links, and renders as a
// mail with the same subject.
func TestCreatedMessage(t *testing.T) {
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	s := &Service{Config: Config{BaseURL: "https://mail.example.com/"}, Now: func() time.Time { return now }}
	m := Member{ID: 7, Email: "alice@example.com"}
	p := AppPassword{ID: "0123456789abcdef", MemberID: 7, Name: `"><img src=x onerror=alert(1)>`, CreatedAt: now}
	by := Actor{Via: "web", IP: "203.0.113.7", UserAgent: "Mozilla/5.0\r\nBcc: evil@x"}
	msg := s.createdMessage(m, p, by, time.UTC)
	if msg.Kind != MsgAppPasswordCreated || msg.MemberID != 7 || !msg.CreatedAt.Equal(now) {
		t.Errorf("message %+v", msg)
	}
	for _, want := range []string{p.Name, "203.0.113.7", "Browser: Mozilla/5.0Bcc: evil@x", "Mar 1, 2025, 09:00 UTC",
		"If you did not create it yourself, delete it now and change your password",
		"https://mail.example.com/security/app-passwords", "https://mail.example.com/security/password"} {
		if !strings.Contains(msg.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, msg.Body)
		}
	}
	names, subject, body := parseNotification(t, msg.Mail)
	if strings.Join(names, ",") != strings.Join(wantHeaders, ",") {
		t.Errorf("header fields %v", names)
	}
	if subject != msg.Subject || !strings.Contains(subject, p.Name) {
		t.Errorf("mail subject %q, message subject %q", subject, msg.Subject)
	}
	if strings.ReplaceAll(body, "\r\n", "\n") != msg.Body {
		t.Errorf("mail body differs from the message:\n%q\n%q", body, msg.Body)
	}

	// A browser named for people, the time in the member's zone.
	tokyo, _ := LoadZone("Asia/Tokyo")
	chrome := Actor{Via: "web", IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"}
	for _, msg := range []Message{s.createdMessage(m, p, chrome, tokyo), s.deletedMessage(m, p, chrome, tokyo),
		s.settingMessage(m, true, chrome, tokyo), s.passwordMessage(m, false, chrome, tokyo)} {
		if !strings.Contains(msg.Body, "Browser: Chrome on Linux\n") || !strings.Contains(msg.Body, "Time: Mar 1, 2025, 18:00 JST\n") ||
			strings.Contains(msg.Body, "Mozilla") || strings.Contains(msg.Body, "UTC") {
			t.Errorf("%s body:\n%s", msg.Kind, msg.Body)
		}
	}

	deleted := s.deletedMessage(m, p, Actor{Via: "cli"}, time.UTC)
	if deleted.Kind != MsgAppPasswordDeleted || !strings.Contains(deleted.Body, p.Name) ||
		!strings.Contains(deleted.Body, "administrator") || !strings.Contains(deleted.Body, "change your password") {
		t.Errorf("deleted message %+v", deleted)
	}
}

package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/tlsconf"
)

// FuzzLoginServer drives the SASL LOGIN server with arbitrary client lines,
// decoded as the AUTH command decodes them. The check must see exactly the
// decoded username and password, only when both are acceptable, and every
// refusal must be the generic credential failure.
func FuzzLoginServer(f *testing.F) {
	f.Add(b64("alice@example.test"), b64("pw"), false)
	f.Add(b64("alice@example.test"), b64("pw"), true)
	f.Add("=", "", false)
	f.Add("=AAA", "AAA=BBB", false)
	f.Add(b64("a\x00b"), b64("\xff"), true)
	f.Add(b64(strings.Repeat("u", 300)), b64(strings.Repeat("p", 1025)), false)
	f.Fuzz(func(t *testing.T, userLine, passLine string, initial bool) {
		var gotUser, gotPass string
		calls := 0
		srv := newLoginServer(func(u, p string) error {
			calls++
			gotUser, gotPass = u, p
			return nil
		})
		user, uerr := decodeResponse(userLine)
		pass, perr := decodeResponse(passLine)
		if uerr != nil || perr != nil {
			return // the AUTH command answers 501 before LOGIN sees anything
		}
		if !initial {
			ch, done, err := srv.Next(nil)
			if err != nil || done || string(ch) != "Username:" {
				t.Fatalf("first step: %q %v %v", ch, done, err)
			}
		}
		ch, done, err := srv.Next(user)
		if err != nil {
			if !errors.Is(err, errCredentials) || !done || calls != 0 {
				t.Fatalf("username refused with %v (done %v, calls %d)", err, done, calls)
			}
			return
		}
		if done || string(ch) != "Password:" {
			t.Fatalf("second step: %q %v", ch, done)
		}
		_, done, err = srv.Next(pass)
		if !done {
			t.Fatal("not done after the password")
		}
		okField := func(b []byte, limit int) bool {
			return len(b) > 0 && len(b) <= limit && utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
		}
		want := okField(user, maxLoginUser) && okField(pass, maxLoginPassword)
		if want != (err == nil) || want != (calls == 1) {
			t.Fatalf("accept %v, err %v, calls %d", want, err, calls)
		}
		if err != nil && !errors.Is(err, errCredentials) {
			t.Fatalf("refusal %v is not the credential failure", err)
		}
		if want && (gotUser != string(user) || gotPass != string(pass)) {
			t.Fatal("check got other bytes than were sent")
		}
		if _, _, err := srv.Next([]byte("more")); !errors.Is(err, errCredentials) {
			t.Fatalf("a response after the end: %v", err)
		}
		if err != nil && strings.Contains(err.Error(), string(pass)) && len(pass) > 3 {
			t.Fatal("the error carries the password")
		}
	})
}

// FuzzDecodeResponse: only canonical base64 (or "=") is accepted, so the
// decoded bytes re-encode to exactly the line.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{"", "=", "=AAA", "AAA=BBB", "QUFB", "QUI=", "QUJ=", "QQ==", "QQ=", "QU FB", "QUFB\r\n", "Q\nUFB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := decodeResponse(s)
		if err != nil {
			return
		}
		if s == "=" {
			if len(b) != 0 {
				t.Fatalf("= decoded to %q", b)
			}
			return
		}
		if enc := base64.StdEncoding.EncodeToString(b); enc != s {
			t.Fatalf("%q decoded to %q, which encodes to %q", s, b, enc)
		}
	})
}

// FuzzParsePath: accepted paths are printable, and printing them back parses
// to the same result.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"FROM:<a@b.c>", "FROM: <a@b.c> SIZE=10 BODY=8BITMIME", "FROM:<>", "to:<@x,@y:a@b.c>",
		`FROM:<"a b>"@c.d>`, "FROM:<a@b.c", "FROM:<a@b.c>x", "FROM:<a\x00@b.c>", "FROM:<postmaster>", `FROM:<"\"@x>`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		addr, params, err := parsePath(arg, "FROM:")
		if err != nil {
			return
		}
		for _, p := range append([]string{addr}, params...) {
			for i := 0; i < len(p); i++ {
				if p[i] < ' ' || p[i] >= 0x7f {
					t.Fatalf("accepted control or non-ASCII octet in %q", p)
				}
			}
		}
		again := "FROM:<" + addr + ">"
		if len(params) > 0 {
			again += " " + strings.Join(params, " ")
		}
		addr2, params2, err := parsePath(again, "FROM:")
		if err != nil || addr2 != addr || strings.Join(params2, " ") != strings.Join(params, " ") {
			t.Fatalf("%q -> %q %q -> %q %q %v", arg, addr, params, addr2, params2, err)
		}
	})
}

// FuzzReadData checks readData against a plain reference: DATA ends at the
// first CRLF "." CRLF counting the DATA command's own CRLF, and a message is
// accepted only when every line ends in CRLF, has no other CR or LF, no NUL,
// and fits the limits.
func FuzzReadData(f *testing.F) {
	for _, s := range []string{".\r\n", "a\r\n.\r\n", "..a\r\n.\r\nX", "a\n.\n.\r\n", "a\r.\r\nb\r\n.\r\n",
		strings.Repeat("x", 40) + "\r\n.\r\n", "a\r\n\x00\r\n.\r\n", "\r\r\n.\r\n", "a\r\n.\r"} {
		f.Add(s)
	}
	const maxLine, maxSize = 32, 100
	f.Fuzz(func(t *testing.T, in string) {
		r := bufio.NewReaderSize(strings.NewReader(in), 64)
		body, verdict, err := readDataT(r, maxLine, maxSize)
		full := "\r\n" + in
		idx := strings.Index(full, "\r\n.\r\n")
		if idx < 0 {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("no terminator, got err %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("err %v", err)
		}
		rest, _ := io.ReadAll(r)
		if string(rest) != full[idx+5:] {
			t.Fatalf("left %q, want %q", rest, full[idx+5:])
		}
		msg := full[2 : idx+2]
		lines := strings.SplitAfter(msg, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		bad := strings.Count(msg, "\r") != strings.Count(msg, "\r\n") ||
			strings.Count(msg, "\n") != strings.Count(msg, "\r\n") || strings.Contains(msg, "\x00")
		var want strings.Builder
		for _, l := range lines {
			bad = bad || len(l) > maxLine
			want.WriteString(strings.TrimPrefix(l, "."))
		}
		switch {
		case bad:
			if verdict == nil || errors.Is(verdict, errTooBig) {
				t.Fatalf("%q accepted or misjudged (%v)", msg, verdict)
			}
		case want.Len() > maxSize:
			if !errors.Is(verdict, errTooBig) {
				t.Fatalf("size %d: verdict %v", want.Len(), verdict)
			}
		default:
			if verdict != nil || string(body) != want.String() {
				t.Fatalf("got %q %v, want %q", body, verdict, want.String())
			}
		}
	})
}

// memLookup and memMail are in-memory stand-ins, so that the session fuzzer
// runs thousands of sessions a second.
type memLookup struct{ members map[string]account.Member }

func (m memLookup) ResolveRecipient(_ context.Context, address string) (account.Recipient, error) {
	e, err := account.ParseEmail(address)
	if err != nil {
		return account.Recipient{}, err
	}
	if mem, ok := m.members[e]; ok {
		return account.Recipient{Address: e, Members: []account.Member{mem}}, nil
	}
	if !strings.HasSuffix(e, "@example.test") {
		return account.Recipient{}, account.Errorf(account.ENOTLOCAL, "not ours")
	}
	return account.Recipient{}, account.Errorf(account.ENOTFOUND, "nobody")
}

type memMail struct {
	mu sync.Mutex
	n  int
}

func (m *memMail) Quota(context.Context, int64) (mailstore.Quota, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return mailstore.Quota{Used: int64(m.n) * 100}, nil // every message counts 100 octets
}

func (m *memMail) DeliverAll(context.Context, []mailstore.Delivery) error {
	m.mu.Lock()
	m.n++
	m.mu.Unlock()
	return nil
}

// FuzzSession feeds arbitrary client input to a whole session: it must never
// panic or hang, and every line it writes must be a well-formed reply
// (RFC 5321 §4.2: three digits, then space or hyphen).
func FuzzSession(f *testing.F) {
	alice := account.Member{ID: 1, Email: "alice@example.test", State: account.StateActive}
	login := "EHLO x\r\nAUTH PLAIN " + plainIR("", alice.Email, alicePass) + "\r\n"
	fuzzSession(f, Submission, []string{
		"EHLO x\r\nQUIT\r\n",
		login + "MAIL FROM:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		login + "MAIL FROM:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nhi\n.\nMAIL FROM:<x>\r\n.\r\n",
		"EHLO x\r\nAUTH LOGIN\r\n" + b64(alice.Email) + "\r\n*\r\nAUTH LOGIN =\r\n",
		"EHLO x\r\nAUTH PLAIN\r\n=AAA\r\nSTARTTLS\r\nRSET\r\nHELP\r\nVRFY x\r\n\x00\r\r\n",
		login + "MAIL FROM:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 4\r\nhi\r\nBDAT 0 LAST\r\n",
	})
}

// FuzzSessionMX and FuzzSessionLMTP are FuzzSession for the receiving
// modes: no login, BDAT, SMTPUTF8, per-recipient replies.
func FuzzSessionMX(f *testing.F) {
	fuzzSession(f, MX, []string{
		"EHLO x\r\nMAIL FROM:<> SMTPUTF8\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<a@b.test>\r\nDATA\r\nhi\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<x@y.test>\r\nRCPT TO:<alice+t@example.test>\r\nBDAT 5\r\nhi\r\nBDAT 3 LAST\r\n\r\nX",
		"EHLO x\r\nBDAT 3 LAST\r\nabcDATA\r\nBDAT x\r\n",
	})
}

func FuzzSessionLMTP(f *testing.F) {
	fuzzSession(f, LMTP, []string{
		"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<alice+2@example.test>\r\nDATA\r\nhi\r\n.\r\n",
		"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nBDAT 2 LAST\r\nhi",
		"EHLO x\r\nLHLO x\r\nMAIL FROM:<\xc3\xa9@x.test> SMTPUTF8\r\n",
	})
}

// fuzzSession runs the session fuzzer on a server in mode, seeded with seeds.
func fuzzSession(f *testing.F, mode Mode, seeds []string) {
	alice := account.Member{ID: 1, Email: "alice@example.test", State: account.StateActive}
	fa := &fakeAuth{users: map[string]account.Member{alice.Email: alice}, pass: map[string]string{alice.Email: alicePass}}
	srv := New(Config{
		Mode: mode, Auth: fa, Recipients: memLookup{map[string]account.Member{alice.Email: alice}}, Mail: &memMail{},
		Hostname: "mx.example.test", MaxMessageBytes: 200, MaxDataLine: 64, IdleTimeout: 5 * time.Second,
		MaxHeaderBytes: 100, MaxHeaderFields: 4, Quota: 1000,
		Plaintext: tlsconf.PlaintextAlways, // net.Pipe has no loopback address
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	f.Cleanup(func() { srv.Close() })
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			newConn(srv, server, false).serve()
		}()
		var out bytes.Buffer
		read := make(chan struct{})
		go func() {
			defer close(read)
			io.Copy(&out, client)
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(in)
		client.Write([]byte("\r\n.\r\nQUIT\r\n"))
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		client.Close()
		<-read
		for _, l := range strings.SplitAfter(out.String(), "\r\n") {
			if l == "" {
				continue
			}
			if len(l) < 6 || !strings.HasSuffix(l, "\r\n") || l[3] != ' ' && l[3] != '-' ||
				strings.ContainsAny(l[:3], " -") || strings.ContainsAny(l[:len(l)-2], "\r\n") {
				t.Fatalf("malformed reply line %q", l)
			}
		}
	})
}

// The session fuzzer's seeds do log in and deliver: a fuzzer that never got
// past AUTH would test little.
func TestSessionSeedDelivers(t *testing.T) {
	alice := account.Member{ID: 1, Email: "alice@example.test", State: account.StateActive}
	mail := &memMail{}
	srv := New(Config{
		Auth:       &fakeAuth{users: map[string]account.Member{alice.Email: alice}, pass: map[string]string{alice.Email: alicePass}},
		Recipients: memLookup{map[string]account.Member{alice.Email: alice}}, Mail: mail, Plaintext: tlsconf.PlaintextAlways,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer srv.Close()
	client, server := net.Pipe()
	go newConn(srv, server, false).serve()
	go client.Write([]byte("EHLO x\r\nAUTH PLAIN " + plainIR("", alice.Email, alicePass) +
		"\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"))
	out, _ := io.ReadAll(client)
	mail.mu.Lock()
	n := mail.n
	mail.mu.Unlock()
	if !strings.Contains(string(out), "250 2.0.0 Message accepted") || n != 1 {
		t.Fatalf("session output %q, %d delivered", out, n)
	}
}

// FuzzBodyChunks checks that BDAT's content rules do not depend on where
// the chunks are cut: the message written in pieces gets the verdict and
// body of the message written whole, and a message accepted by DATA (as
// dot-stuffed lines) is accepted by BDAT with the same bytes.
func FuzzBodyChunks(f *testing.F) {
	for _, s := range []string{"a\r\n", "a\r", "\r\n\r\nb", "a:\r\n b\r\n\r\n", "a\nb", "\x00", "x: y\r\nz: w\r\n\r\nbody\r\n"} {
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, in string, cut uint8) {
		newW := func() *bodyWriter {
			return &bodyWriter{maxSize: 100, maxLine: 16, maxHeader: 40, maxFields: 3, lineStart: true}
		}
		whole := newW()
		whole.Write([]byte(in))
		wantBody, wantVerdict := whole.end()
		pieces := newW()
		step := int(cut%7) + 1
		for i := 0; i < len(in); i += step {
			pieces.Write([]byte(in[i:min(i+step, len(in))]))
		}
		body, verdict := pieces.end()
		if !errors.Is(verdict, wantVerdict) || string(body) != string(wantBody) {
			t.Fatalf("in %d-octet pieces: %q %v; whole: %q %v", step, body, verdict, wantBody, wantVerdict)
		}
		if verdict == nil && (strings.Count(in, "\r") != strings.Count(in, "\r\n") || strings.Count(in, "\n") != strings.Count(in, "\r\n") || strings.Contains(in, "\x00")) {
			t.Fatalf("%q accepted", in)
		}
	})
}

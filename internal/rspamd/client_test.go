package rspamd_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/rspamd"
)

// fake is an rspamd that records the request and answers with reply.
func fake(t *testing.T, status int, reply string) (*httptest.Server, *http.Request, *[]byte) {
	t.Helper()
	var got http.Request
	var body []byte
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = *r.Clone(context.Background())
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(s.Close)
	return s, &got, &body
}

// TestRequest: the envelope goes in rspamd's headers (one Rcpt per
// recipient, an IPv4-mapped address as IPv4), the message as the body.
func TestRequest(t *testing.T) {
	s, got, body := fake(t, 200, `{"action":"no action","score":1.5,"required_score":15,"symbols":{"B":{},"A":{}}}`)
	c, err := rspamd.New(rspamd.Config{URL: s.URL + "/", Password: "pw", SettingsID: "inbound", Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Check(context.Background(), rspamd.Message{
		IP: netip.MustParseAddr("::ffff:192.0.2.7"), Helo: "mx.example.org", From: "a@example.org",
		Rcpts: []string{"b@example.com", "c@example.com"}, Hostname: "mx.example.org", QueueID: "Q7",
		Body: []byte("Subject: x\r\n\r\nhello\r\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.Path != "/checkv2" || got.Method != "POST" {
		t.Errorf("%s %s", got.Method, got.URL.Path)
	}
	h := got.Header
	for k, want := range map[string]string{"IP": "192.0.2.7", "Helo": "mx.example.org", "From": "a@example.org",
		"Hostname": "mx.example.org", "Queue-Id": "Q7", "Settings-Id": "inbound", "Password": "pw"} {
		if h.Get(k) != want {
			t.Errorf("%s: %q, want %q", k, h.Get(k), want)
		}
	}
	if r := h.Values("Rcpt"); !slices.Equal(r, []string{"b@example.com", "c@example.com"}) {
		t.Errorf("Rcpt: %q", r)
	}
	if h.Get("User") != "" {
		t.Errorf("User sent without one: %q", h.Get("User"))
	}
	if string(*body) != "Subject: x\r\n\r\nhello\r\n" {
		t.Errorf("body %q", *body)
	}
	if v.Action != "no action" || v.Score != 1.5 || v.Required != 15 || !slices.Equal(v.Symbols, []string{"A", "B"}) {
		t.Errorf("verdict %+v", v)
	}
}

// TestBounds: a reply over 4 MiB, a slow rspamd, an HTTP error and a
// message over MaxSize are errors, and Decide turns each into the
// configured outcome (a message too large into an unchecked delivery).
func TestBounds(t *testing.T) {
	big := `{"action":"no action","symbols":{"` + strings.Repeat("A", 5<<20) + `":{}}}`
	huge, _, _ := fake(t, 200, big)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // then the server sees the client leave
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	broken, _, _ := fake(t, 500, `{"error":"something broke"}`)
	noAction, _, _ := fake(t, 200, `{"score":1}`)
	msg := rspamd.Message{Body: []byte("Subject: x\r\n\r\nhello\r\n")}
	for _, tc := range []struct {
		name, url string
		max       int
		want      string
	}{
		{"reply too large", huge.URL, 0, "reply larger than"},
		{"timeout", slow.URL, 0, "deadline exceeded"},
		{"HTTP 500", broken.URL, 0, "HTTP status 500: something broke"},
		{"no action", noAction.URL, 0, "without an action"},
		{"message too large", broken.URL, 10, "larger than the size limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, onErr := range []rspamd.OnError{rspamd.OnErrorTempFail, rspamd.OnErrorAccept} {
				// The slow rspamd answers after 10 s: only the timeout ends
				// the request before. The others have time to spare.
				timeout := time.Minute
				if tc.url == slow.URL {
					timeout = 200 * time.Millisecond
				}
				c, err := rspamd.New(rspamd.Config{URL: tc.url, Timeout: timeout, MaxSize: tc.max, OnError: onErr, Log: quiet})
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Check(context.Background(), msg)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Check: %v, want %q", err, tc.want)
				}
				d := c.Decide(context.Background(), msg)
				status := string(d.Prepend())
				switch {
				case tc.max > 0:
					if d.Outcome != rspamd.Inbox || status != "X-Spam-Status: Unknown (not checked: message too large)\r\n" {
						t.Errorf("%v: %v %q", onErr, d.Outcome, status)
					}
				case onErr == rspamd.OnErrorTempFail:
					if d.Outcome != rspamd.TempFail || d.Code != 451 || d.Enhanced != "4.7.1" {
						t.Errorf("%v: %v %d %s", onErr, d.Outcome, d.Code, d.Enhanced)
					}
				default:
					if d.Outcome != rspamd.Inbox || status != "X-Spam-Status: Unknown (filter unavailable)\r\n" {
						t.Errorf("%v: %v %q", onErr, d.Outcome, status)
					}
				}
			}
		})
	}
}

// TestLearnRequest: learning goes to the controller's /learnspam or
// /learnham with the password; rspamd's 208 ("already learnt") is no error;
// without a controller URL learning is off.
func TestLearnRequest(t *testing.T) {
	s, got, _ := fake(t, 200, `{"success":true}`)
	c, _ := rspamd.New(rspamd.Config{URL: "http://127.0.0.1:1", ControllerURL: s.URL, Password: "pw", Log: quiet})
	for _, spam := range []bool{true, false} {
		if err := c.Learn(context.Background(), spam, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "/learnspam", false: "/learnham"}[spam]
		if got.URL.Path != want || got.Header.Get("Password") != "pw" {
			t.Errorf("spam=%v: %s with password %q", spam, got.URL.Path, got.Header.Get("Password"))
		}
	}
	again, _, _ := fake(t, 208, `{"error":"<id> has been already learned as spam, ignore it"}`)
	c, _ = rspamd.New(rspamd.Config{URL: "http://127.0.0.1:1", ControllerURL: again.URL, Log: quiet})
	if err := c.Learn(context.Background(), true, []byte("x")); err != nil {
		t.Errorf("208: %v", err)
	}
	c, _ = rspamd.New(rspamd.Config{URL: "http://127.0.0.1:1", Log: quiet})
	if err := c.Learn(context.Background(), true, []byte("x")); !errors.Is(err, rspamd.ErrNoController) {
		t.Errorf("no controller: %v", err)
	}
}

// TestDecisionMapping: every action rspamd has, and one it might invent.
func TestDecisionMapping(t *testing.T) {
	for action, want := range map[string]rspamd.Outcome{
		"reject": rspamd.Refuse, "soft reject": rspamd.TempFail, "greylist": rspamd.TempFail,
		"add header": rspamd.Junk, "rewrite subject": rspamd.Junk, "no action": rspamd.Inbox,
		"some new action": rspamd.Junk,
	} {
		d := rspamd.Verdict{Action: action}.Decision()
		if d.Outcome != want {
			t.Errorf("%q: %v, want %v", action, d.Outcome, want)
		}
		code := map[rspamd.Outcome]int{rspamd.Refuse: 550, rspamd.TempFail: 451}[want]
		if d.Code != code {
			t.Errorf("%q: code %d, want %d", action, d.Code, code)
		}
	}
}

// TestApply: rspamd's milter block is followed (fields added, fields
// removed), forged X-Spam fields go whatever their case, a non-ASCII subject
// is encoded, nothing injects a line, and a header that cannot be parsed
// still gets the fields.
func TestApply(t *testing.T) {
	s, _, _ := fake(t, 200, `{"action":"rewrite subject","score":7,"required_score":15,"subject":"[SPAM] Grüße\r\nBcc: x@example.net",
		"symbols":{"S":{}},
		"milter":{"add_headers":{"X-Spamd-Bar":{"value":"+++++++","order":0},"X-Two":[{"value":"1"},"2"],"X-Spam-Evil":"No","Bad Name":"x"},
		          "remove_headers":{"X-Virus":0}}}`)
	c, _ := rspamd.New(rspamd.Config{URL: s.URL, Log: quiet})
	msg := []byte("X-SPAM-FLAG: NO\r\nSubject: Grüße\r\nX-Virus: clean\r\nFrom: a@example.org\r\nx-spam-status: No\r\n\r\nbody\r\nX-Spam-Status: in the body stays\r\n")
	d := c.Decide(context.Background(), rspamd.Message{Body: msg})
	if d.Outcome != rspamd.Junk {
		t.Fatalf("%v", d.Outcome)
	}
	out := string(d.Apply(msg))
	want := "X-Spam-Status: Yes, score=7.00 required=15.00\r\n" +
		"X-Spam-Action: rewrite subject\r\n" +
		"X-Spam-Symbols: S\r\n" +
		"X-Spam-Flag: YES\r\n" +
		"X-Spamd-Bar: +++++++\r\n" +
		"X-Two: 1\r\n" +
		"X-Two: 2\r\n" +
		"Subject: =?utf-8?q?[SPAM]_Gr=C3=BC=C3=9Fe__Bcc:_x@example.net?=\r\n" +
		"From: a@example.org\r\n" +
		"\r\nbody\r\nX-Spam-Status: in the body stays\r\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if p := string(d.Prepend()); !strings.HasPrefix(want, p) || !strings.HasSuffix(p, "X-Two: 2\r\n") {
		t.Errorf("Prepend: %q", p)
	}
	bad := []byte("no colon here\r\n\r\nbody\r\n")
	if out := string(rspamd.Verdict{Action: "no action"}.Decision().Apply(bad)); !strings.HasPrefix(out, "X-Spam-Status: No, score=0.00 required=0.00\r\nX-Spam-Action: no action\r\nno colon here\r\n") {
		t.Errorf("unparsed header: %q", out)
	}
}

// TestCallerGone: when the caller's context ends (the SMTP client left),
// nothing is delivered, even with OnErrorAccept: rspamd is not to blame.
func TestCallerGone(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(s.Close)
	c, _ := rspamd.New(rspamd.Config{URL: s.URL, OnError: rspamd.OnErrorAccept, Log: quiet})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if d := c.Decide(ctx, rspamd.Message{Body: []byte("Subject: x\r\n\r\nx\r\n")}); d.Outcome != rspamd.TempFail {
		t.Errorf("%v, want tempfail", d.Outcome)
	}
}

func TestParseOnError(t *testing.T) {
	for in, want := range map[string]rspamd.OnError{"tempfail": rspamd.OnErrorTempFail, "accept": rspamd.OnErrorAccept} {
		if got, err := rspamd.ParseOnError(in); err != nil || got != want || got.String() != in {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := rspamd.ParseOnError("reject"); err == nil {
		t.Error("reject: no error")
	}
}

package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServeHealthAndMetrics(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		srv := in.StartServer(t)
		if code, body := httpGet(t, srv.URL("/healthz")); code != 200 || body != "ok" {
			t.Errorf("/healthz: %d %q", code, body)
		}
		// Metrics are on their own listener only: never where members and
		// strangers reach the web UI.
		if code, _ := httpGet(t, srv.URL("/metrics")); code != 404 {
			t.Errorf("/metrics on the web listener: %d, want 404", code)
		}
		code, body := httpGet(t, srv.MetricsURL())
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "go_sql_open_connections"} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		srv.Stop(t)
		if !strings.Contains(srv.Stderr(), "shutting down") {
			t.Errorf("no graceful shutdown in the log:\n%s", srv.Stderr())
		}
	})
}

// TestServeListenerOff: an empty address turns a listener off; a port in use
// stops the start with a clear message.
func TestServeListenerOff(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	srv := in.StartServer(t, "--imap-addr", "")
	if _, ok := srv.Addrs["imap"]; ok {
		t.Error("imap listener running with an empty address")
	}
	r := in.Run(t, "serve", "--web-addr", srv.Addr("web"), "--metrics-addr=", "--imap-addr=", "--imaps-addr=", "--pop3-addr=",
		"--pop3s-addr=", "--submission-addr=", "--submissions-addr=")
	wantFail(t, r, 1, "cannot listen for web")
	r = in.Run(t, "serve", "--web-addr=", "--metrics-addr=", "--imap-addr=", "--imaps-addr=", "--pop3-addr=",
		"--pop3s-addr=", "--submission-addr=", "--submissions-addr=")
	wantFail(t, r, 1, "every listener is off")
	wantFail(t, in.Run(t, "serve", "--plaintext-auth", "sometimes"), 2, "--plaintext-auth")
	wantFail(t, in.Run(t, "serve", "--tls-cert", "/nonexistent.pem"), 1, "together")
}

// TestDemo: demo seeds its domains and members, prints their credentials,
// and a second run on the same data works and shows the same passwords.
func TestDemo(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	srv := in.Start(t, "demo")
	first := srv.Stdout()
	srv.Stop(t)
	for _, want := range []string{"alice@example.com", "bob@legacy.example", "carol@legacy.example", srv.URL("/"),
		"third-party app passwords only (enforced domain)", "the main password (setting off)", "third-party app passwords only (setting on)"} {
		if !strings.Contains(first, want) {
			t.Errorf("demo box lacks %q:\n%s", want, first)
		}
	}
	srv2 := in.Start(t, "demo")
	second := srv2.Stdout()
	srv2.Stop(t)
	pw := func(out, email string) string {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(strings.Trim(line, "│ ")); len(f) > 1 && f[0] == email {
				return f[1]
			}
		}
		return ""
	}
	for _, email := range []string{"alice@example.com", "bob@legacy.example", "carol@legacy.example"} {
		if p := pw(first, email); p == "" || p != pw(second, email) {
			t.Errorf("%s: password %q then %q", email, p, pw(second, email))
		}
	}
	var users []map[string]any
	in.RunJSON(t, &users, "user", "list")
	want := map[string]string{"alice@example.com": "enforced true", "bob@legacy.example": "optional false", "carol@legacy.example": "optional true"}
	if len(users) != 3 {
		t.Fatalf("users after two demo runs: %v", users)
	}
	for _, u := range users {
		got := u["policy"].(string) + " " + map[bool]string{true: "true", false: "false"}[u["use_app_passwords"].(bool)]
		if got != want[u["email"].(string)] {
			t.Errorf("%v: %s, want %s", u["email"], got, want[u["email"].(string)])
		}
	}
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The attacks of docs/security.md, replayed on the binary over loopback,
// with extra source addresses from 127.0.0.0/8.

// httpFrom is an HTTP client (with a cookie jar) whose connections come
// from the loopback address src.
func httpFrom(src string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// apiSignin posts a sign-in to the member API and returns the status, or 0
// when the request failed (timed out, cancelled).
func apiSignin(ctx context.Context, c *http.Client, srv *Server, email, pw string) int {
	b, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL("/api/v1/session"), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// imapTry logs in once over a new connection from src and returns the
// tagged reply, or an error (refused, timed out) without failing the test:
// it runs on goroutines.
func imapTry(addr, src, user, password string, timeout time.Duration) (string, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(greeting, "* OK") {
		return "", fmt.Errorf("greeting %q", greeting)
	}
	if _, err := fmt.Fprintf(c, "a1 LOGIN %s %s\r\n", imapQuote(user), imapQuote(password)); err != nil {
		return "", err
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(l, "a1 ") {
			fmt.Fprintf(c, "a2 LOGOUT\r\n")
			return strings.TrimRight(l, "\r\n"), nil
		}
	}
}

// TestAbuseNoOracle: an unknown user, a wrong password, the right main
// password refused by an enforced domain's policy, and the right app
// password of a suspended member get the same reply on every protocol, and
// nothing an outsider can read tells them apart: /metrics is not on the web
// listener and has no reason label, autoconfig does not look at the address.
func TestAbuseNoOracle(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	carol := addMember(t, in, "carol@example.com")
	carolApp := createAppPass(t, in, carol.Email, "Phone")
	in.MustRun(t, "user", "suspend", carol.Email)
	srv := in.StartServer(t)

	cases := []struct{ name, user, pw string }{
		{"unknown user", "nobody@example.com", "some password"},
		{"wrong password", alice.Email, "not the password"},
		{"main password refused by policy", alice.Email, alice.Main},
		{"suspended member's app password", carol.Email, carolApp.Password},
	}
	reply := map[string]map[string]string{}
	for _, c := range cases {
		r := map[string]string{}
		conn, imap := imapLogin(t, srv.Addr("imap"), nextSrc(), c.user, c.pw)
		conn.Close()
		r["imap"] = imap
		r["pop3"] = pop3Login(t, srv.Addr("pop3"), nextSrc(), c.user, c.pw)
		r["smtp"] = smtpLogin(t, srv.Addr("submission"), nextSrc(), c.user, c.pw)
		code, _, body := davDo(t, "PROPFIND", srv.URL("/dav/"), c.user, c.pw, "", "Depth", "0")
		r["dav"] = fmt.Sprintf("%d %s", code, body)
		reply[c.name] = r
	}
	for _, c := range cases[1:] {
		for proto, want := range reply[cases[0].name] {
			if got := reply[c.name][proto]; got != want {
				t.Errorf("%s: %s answers %q, an unknown user %q", proto, c.name, got, want)
			}
		}
	}

	if code, _ := httpGet(t, srv.URL("/metrics")); code != 404 {
		t.Errorf("/metrics on the web listener: %d, want 404", code)
	}
	code, body := httpGet(t, srv.MetricsURL())
	if code != 200 || !strings.Contains(body, `postern_auth_attempts_total{protocol="imap",result="fail"} 4`) {
		t.Fatalf("metrics listener: %d, no four failed IMAP attempts in:\n%s", code, body)
	}
	for _, leak := range []string{"reason", "unknown-user", "bad-password", "policy", "suspended"} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics mentions %q", leak)
		}
	}

	_, known := httpGet(t, srv.URL("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice@example.com"))
	_, unknown := httpGet(t, srv.URL("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=nobody@example.com"))
	if known != unknown || !strings.Contains(known, "<clientConfig") {
		t.Errorf("autoconfig differs for a known and an unknown address:\n%s\n---\n%s", known, unknown)
	}
	// Outlook's Autodiscover, by curl as Outlook posts it: the same for a
	// member and a stranger but for the address it echoes.
	autodiscover := func(email string) string {
		t.Helper()
		req := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">` +
			`<Request><EMailAddress>` + email + `</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
		out := runTool(t, nil, "", "curl", "-sS", "-X", "POST", "-H", "Content-Type: text/xml", "--data-binary", req, srv.URL("/Autodiscover/Autodiscover.xml"))
		return strings.ReplaceAll(out, email, "ADDRESS")
	}
	if known, unknown := autodiscover("alice@example.com"), autodiscover("nobody@example.com"); known != unknown ||
		!strings.Contains(known, "<Type>IMAP</Type>") || !strings.Contains(known, "<LoginName>ADDRESS</LoginName>") {
		t.Errorf("autodiscover differs for a known and an unknown address:\n%s\n---\n%s", known, unknown)
	}
	for _, path := range []string{"/healthz", "/readyz", "/.well-known/caldav", "/.well-known/carddav"} {
		a, ab := httpGet(t, srv.URL(path+"?user=alice@example.com"))
		b, bb := httpGet(t, srv.URL(path+"?user=nobody@example.com"))
		if a != b || ab != bb {
			t.Errorf("%s differs by address: %d %q / %d %q", path, a, ab, b, bb)
		}
	}
}

// TestAbuseSuccessTrick: an attacker who holds a working login of their own
// and uses it between guesses gets no more guesses per minute at another
// member's main password from one address than without it.
func TestAbuseSuccessTrick(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	in.MustRun(t, "domain", "add", "legacy.example", "--created", "2020-04-01")
	bob := addMember(t, in, "bob@legacy.example") // apps log in with his main password
	mallory := addMember(t, in, "mallory@example.com")
	mine := createAppPass(t, in, mallory.Email, "Attack tool")
	eve := addMember(t, in, "eve@legacy.example") // the attacker's too, by main password
	srv := in.StartServer(t, "--auth-max-delay", "2s")
	addr := srv.Addr("imap")

	const window = 12 * time.Second
	guesses := func(src string, trick bool) int {
		n := 0
		for deadline := time.Now().Add(window); time.Now().Before(deadline); {
			r, err := imapTry(addr, src, bob.Email, fmt.Sprintf("guess %s %d", src, n), 30*time.Second)
			if err != nil || !strings.HasPrefix(r, "a1 NO [AUTHENTICATIONFAILED]") {
				t.Fatalf("guess %d from %s: %q %v", n, src, r, err)
			}
			n++
			if trick {
				// Both an app password and a main password of the attacker's
				// own: the second goes through the throttle, and its success
				// forgives eve's failures alone.
				if r, err := imapTry(addr, src, mallory.Email, mine.Password, 30*time.Second); err != nil || !strings.HasPrefix(r, "a1 OK") {
					t.Fatalf("own app password: %q %v", r, err)
				}
				if r, err := imapTry(addr, src, eve.Email, eve.Main, 30*time.Second); err != nil || !strings.HasPrefix(r, "a1 OK") {
					t.Fatalf("own main password: %q %v", r, err)
				}
			}
		}
		return n
	}
	plain := guesses(nextSrc(), false)
	tricked := guesses(nextSrc(), true)
	t.Logf("guesses in %v from one address: %d plain, %d with a success between guesses", window, plain, tricked)
	if tricked > plain+1 {
		t.Errorf("the success trick gave %d guesses in %v, against %d without it", tricked, window, plain)
	}
	if plain > int(window/(2*time.Second))+3 {
		t.Errorf("%d guesses in %v at a 2 s delay: the throttle does not hold", plain, window)
	}
}

// TestAbuseAppPasswordDuringAttack: wrong secrets from 101 addresses pause
// the member's main password; the member's app password logs in on every
// protocol all the same, from an attacking address and a clean one, and the
// member gets one message.
func TestAbuseAppPasswordDuringAttack(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		in.MustRun(t, "domain", "add", "example.com")
		alice := addMember(t, in, "alice@example.com")
		app := createAppPass(t, in, alice.Email, "Phone")
		srv := in.StartServer(t)
		var attackers []string
		for i := range 101 {
			src := fmt.Sprintf("127.77.%d.%d", i/200, i%200+1)
			attackers = append(attackers, src)
			pw := fmt.Sprintf("wrong %d", i)
			var r string
			switch i % 3 {
			case 0:
				var c *lineConn
				c, r = imapLogin(t, srv.Addr("imap"), src, alice.Email, pw)
				c.Close()
			case 1:
				r = pop3Login(t, srv.Addr("pop3"), src, alice.Email, pw)
			default:
				r = smtpLogin(t, srv.Addr("submission"), src, alice.Email, pw)
			}
			if !strings.Contains(r, "NO [AUTHENTICATIONFAILED]") && !strings.HasPrefix(r, "-ERR [AUTH]") && !strings.HasPrefix(r, "535 ") {
				t.Fatalf("attack %d: %q", i, r)
			}
		}
		for _, src := range []string{attackers[100], nextSrc()} {
			c, r := imapLogin(t, srv.Addr("imap"), src, alice.Email, app.Password)
			c.Close()
			if !strings.HasPrefix(r, "a1 OK") {
				t.Errorf("IMAP from %s during the attack: %q", src, r)
			}
			if r := pop3Login(t, srv.Addr("pop3"), src, alice.Email, app.Password); !strings.HasPrefix(r, "+OK") {
				t.Errorf("POP3 from %s during the attack: %q", src, r)
			}
			if r := smtpLogin(t, srv.Addr("submission"), src, alice.Email, app.Password); !strings.HasPrefix(r, "235 ") {
				t.Errorf("SMTP from %s during the attack: %q", src, r)
			}
		}
		if code, _, _ := davDo(t, "PROPFIND", srv.URL("/dav/"), alice.Email, app.Password, "", "Depth", "0"); code != 207 {
			t.Errorf("DAV during the attack: %d", code)
		}
		// The main password is what the pause holds back, and the member is told once.
		n := 0
		for _, s := range messageSubjects(t, in, alice.Email) {
			if strings.Contains(s, "guessing your password") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d attack messages, want 1", n)
		}
	})
}

// TestAbuseWebKnownDevice: wrong web sign-ins from 12 addresses fill the
// account's sign-in schedule, so that a browser the member never used is
// told to wait; the member's own browser, which signed in before, signs in.
func TestAbuseWebKnownDevice(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	srv := in.StartServer(t)
	mine := httpFrom(nextSrc(), time.Minute)
	if code := apiSignin(context.Background(), mine, srv, alice.Email, alice.Main); code != 200 {
		t.Fatalf("first sign-in: %d", code)
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var attempts, refused atomic.Int64
	deadline := time.Now().Add(12 * time.Second)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpFrom(fmt.Sprintf("127.78.0.%d", i+1), 0)
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				code := apiSignin(ctx, c, srv, alice.Email, fmt.Sprintf("guess %d-%d", i, n))
				attempts.Add(1)
				if code == 429 {
					refused.Add(1)
					time.Sleep(10 * time.Millisecond) // refused at once: no need to spin
				}
			}
		}()
	}
	time.Sleep(time.Until(deadline))
	stranger := apiSignin(context.Background(), httpFrom(nextSrc(), time.Minute), srv, alice.Email, alice.Main)
	own := apiSignin(context.Background(), mine, srv, alice.Email, alice.Main)
	stop()
	wg.Wait()
	t.Logf("12 addresses made %d attempts in 12 s, %d refused with 429; a new browser then got %d, the member's %d",
		attempts.Load(), refused.Load(), stranger, own)
	if stranger != 429 {
		t.Errorf("a browser that never signed in got %d during the attack, want 429 (the attack must bite for this test to mean anything)", stranger)
	}
	if own != 200 {
		t.Errorf("the member's own browser got %d during the attack, want 200", own)
	}
}

// TestAbuseOfficeNAT: 64 clients behind one address log in with correct app
// passwords, over and over, for 60 s, beside a phone there retrying a
// deleted app password: none is throttled, refused or timed out.
func TestAbuseOfficeNAT(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	var creds [][2]string
	var stale appPass
	for i := range 13 {
		m := addMember(t, in, fmt.Sprintf("staff%d@example.com", i))
		for j := range 5 {
			p := createAppPass(t, in, m.Email, fmt.Sprintf("Device %d", j))
			if len(creds) == 64 {
				stale = p
				in.MustRun(t, "apppass", "delete", m.Email, p.ID)
				continue
			}
			creds = append(creds, [2]string{m.Email, p.Password})
		}
	}
	srv := in.StartServer(t)
	addr, office := srv.Addr("imap"), nextSrc()

	const run = 60 * time.Second
	deadline := time.Now().Add(run)
	var wg sync.WaitGroup
	var ok, staleFails atomic.Int64
	errs := make(chan string, 64)
	for _, c := range creds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				r, err := imapTry(addr, office, c[0], c[1], 10*time.Second) // a client's usual patience
				if err != nil || !strings.HasPrefix(r, "a1 OK") {
					errs <- fmt.Sprintf("%s: %q %v", c[0], r, err)
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(deadline) {
			if r, err := imapTry(addr, office, "staff12@example.com", stale.Password, 30*time.Second); err == nil && strings.HasPrefix(r, "a1 NO") {
				staleFails.Add(1)
			}
		}
	}()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a correct login from the office failed: %s", e)
	}
	t.Logf("64 clients from one address: %d correct logins in %v (%.0f/s); the stale phone failed %d times",
		ok.Load(), run, float64(ok.Load())/run.Seconds(), staleFails.Load())
	if strings.Contains(srv.SettledStderr(), "reason=throttled") {
		t.Error("the server throttled a login from the office")
	}
	if ok.Load() < 64 {
		t.Errorf("only %d logins", ok.Load())
	}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/internal/dnsrecords"
)

// quickstartOutput is what postern quickstart printed, in its parts.
type quickstartOutput struct {
	password string // the admin's one-time password
	dns      string // the records, as domain dns prints them
	unit     string
	next     string
}

func splitQuickstart(t *testing.T, out string) quickstartOutput {
	t.Helper()
	var q quickstartOutput
	m := regexp.MustCompile(`(?m)^One-time password of admin@example\.com: (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no one-time password in:\n%s", out)
	}
	q.password = m[1]
	parts := regexp.MustCompile(`(?m)^== .* ==\n\n`).Split(out, -1)
	if len(parts) != 4 {
		t.Fatalf("quickstart printed %d sections, want the summary, DNS, unit, next steps:\n%s", len(parts), out)
	}
	q.dns, q.unit, q.next = strings.TrimRight(parts[1], "\n"), parts[2], parts[3]
	return q
}

// zoneValue returns the value of the printed record of name and type.
func zoneValue(t *testing.T, zone, name, typ string) string {
	t.Helper()
	for _, l := range strings.Split(zone, "\n") {
		if f := strings.SplitN(l, "\t", 5); len(f) == 5 && f[0] == name+"." && f[3] == typ {
			return recordValue(f[3], f[4])
		}
	}
	t.Fatalf("no %s record of %s in:\n%s", typ, name, zone)
	return ""
}

// recordValue is a zone-file value as written, TXT strings joined.
func recordValue(typ, v string) string {
	if typ != "TXT" {
		return v
	}
	var s string
	for _, part := range regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(v, -1) {
		s += part[1]
	}
	return s
}

// hostGet fetches path from the web listener as if for the host name host.
func hostGet(t *testing.T, srv *Server, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL(path), nil)
	req.Host = host
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// cookieClient keeps the session cookie itself: with an https base URL the
// server marks it Secure, which a cookie jar never sends over the plain
// HTTP of the test's loopback (the TLS proxy's side in production).
type cookieClient struct {
	t       *testing.T
	srv     *Server
	cookies map[string]string
}

func (c *cookieClient) do(method, path string, body any) (int, string) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.srv.URL(path), r)
	req.Host = "mail.example.com"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	for _, ck := range res.Cookies() {
		c.cookies[ck.Name] = ck.Value
	}
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestQuickstart: quickstart on an empty folder writes a configuration
// that serve runs from alone, and prints what that server then serves: the
// MTA-STS policy of the printed id, the DKIM keys of the printed records,
// the host names of the autoconfig and SRV records; the admin signs in
// with the printed one-time password and administers the domain. A second
// quickstart changes nothing.
func TestQuickstart(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		data := filepath.Join(in.Data, "new") // does not exist yet
		args := []string{"quickstart", "mail.example.com", "admin@example.com", "--data", data, "--dns-resolver", "127.0.0.1:1", "--mta-sts-mode", "enforce"}
		for _, name := range listenerFlags {
			args = append(args, "--"+name+"-addr", "127.0.0.1:0")
		}
		if in.Database != "" {
			args = append(args, "--database", in.Database)
		}
		r := Run(t, nil, "", args...)
		if r.Code != 0 {
			t.Fatalf("quickstart: %s", r)
		}
		q := splitQuickstart(t, r.Stdout)
		if strings.Contains(r.Stderr, q.password) {
			t.Errorf("the one-time password is in the log:\n%s", r.Stderr)
		}
		if n := strings.Count(r.Stdout, q.password); n != 1 {
			t.Errorf("the one-time password is printed %d times", n)
		}
		config := filepath.Join(data, "postern.toml")
		written := readFile(t, config)
		for _, want := range []string{`mta-sts-mode = "enforce"`, `base-url = "https://mail.example.com"`, `mail-host = "mail.example.com"`, `data = "` + data + `"`} {
			if !strings.Contains(written, want) {
				t.Errorf("postern.toml lacks %s:\n%s", want, written)
			}
		}

		// The records are those of domain dns, which reads the file too.
		dns := Run(t, nil, "", "domain", "dns", "example.com", "--data", data)
		if dns.Code != 0 || strings.TrimRight(dns.Stdout, "\n") != q.dns {
			t.Errorf("domain dns prints:\n%s\nquickstart printed:\n%s", dns, q.dns)
		}
		var roles []struct{ Email, Role string }
		json.Unmarshal([]byte(Run(t, nil, "", "admin", "list", "--json", "--data", data).Stdout), &roles)
		if len(roles) != 1 || roles[0].Email != "admin@example.com" || roles[0].Role != "organisation" {
			t.Errorf("admins: %+v", roles)
		}

		// Never twice on one folder.
		if again := Run(t, nil, "", args...); again.Code != 1 || !strings.Contains(again.Stderr, "is not empty") {
			t.Errorf("second quickstart: %s", again)
		}
		if readFile(t, config) != written {
			t.Error("the second quickstart changed postern.toml")
		}

		// The unit is the packaged one with a command line that leaves
		// the settings to the file; systemd loads it.
		if !strings.Contains(q.unit, "\nExecStart=/usr/local/bin/postern serve --data "+data+"\n") || strings.Contains(q.unit, "--imap-addr") {
			t.Errorf("unit's ExecStart:\n%s", q.unit)
		}
		unitCopy := filepath.Join(t.TempDir(), "postern.service")
		if err := os.WriteFile(unitCopy, []byte(strings.Replace(q.unit, "ExecStart=/usr/local/bin/postern ", "ExecStart="+binary+" ", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(requireTool(t, "systemd-analyze"), "verify", "--man=no", unitCopy).CombinedOutput(); err != nil || len(out) != 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}

		// serve from the file alone: its listeners, its settings.
		srv := StartServer(t, nil, "serve", "--data", data)
		if _, ok := srv.Addrs["smtp"]; !ok {
			t.Errorf("serve did not take the MX listener from the file (off by default): %v", srv.Addrs)
		}

		code, policy := hostGet(t, srv, "mta-sts.example.com", "/.well-known/mta-sts.txt")
		if code != 200 || !strings.Contains(policy, "\nmode: enforce\r\n") || !strings.Contains(policy, "\nmx: "+strings.TrimSuffix(zoneValue(t, q.dns, "example.com", "MX"), ".")[3:]+"\r\n") {
			t.Errorf("MTA-STS policy: %d %q", code, policy)
		}
		if id := zoneValue(t, q.dns, "_mta-sts.example.com", "TXT"); id != "v=STSv1; id="+dnsrecords.MTASTSPolicyID(policy) {
			t.Errorf("printed %q, served the policy of id %s", id, dnsrecords.MTASTSPolicyID(policy))
		}
		web := strings.TrimSuffix(zoneValue(t, q.dns, "autoconfig.example.com", "CNAME"), ".")
		if mta := strings.TrimSuffix(zoneValue(t, q.dns, "mta-sts.example.com", "CNAME"), "."); web != "mail.example.com" || mta != web {
			t.Errorf("autoconfig → %s, mta-sts → %s", web, mta)
		}
		code, ac := hostGet(t, srv, "autoconfig.example.com", "/mail/config-v1.1.xml?emailaddress=admin%40example.com")
		imaps := strings.Fields(zoneValue(t, q.dns, "_imaps._tcp.example.com", "SRV"))
		if code != 200 || !strings.Contains(ac, "<hostname>"+strings.TrimSuffix(imaps[3], ".")+"</hostname>") ||
			!strings.Contains(ac, "<serverURL>https://"+web+"/dav/</serverURL>") {
			t.Errorf("autoconfig: %d\n%s", code, ac)
		}

		// The admin: the one-time password signs in, a new one is chosen,
		// and the console shows the domain's records with the printed keys.
		c := &cookieClient{t: t, srv: srv, cookies: map[string]string{}}
		if code, body := c.do("POST", "/api/v1/session", map[string]string{"email": "admin@example.com", "password": q.password}); code != 200 {
			t.Fatalf("sign in with the one-time password: %d %s", code, body)
		}
		if code, _ := c.do("GET", "/api/v1/me", nil); code != 403 {
			t.Errorf("before the new password: %d, want 403", code)
		}
		if code, body := c.do("PUT", "/api/v1/me/password", map[string]string{"current": q.password, "new": "the admin's own long passphrase"}); code != 204 {
			t.Fatalf("new password: %d %s", code, body)
		}
		// The console's records are the printed ones.
		code, page := c.do("GET", "/admin/domains/example.com/dns", nil)
		page = html.UnescapeString(page)
		if code != 200 {
			t.Fatalf("admin console: %d", code)
		}
		kinds := map[string]int{}
		for _, l := range strings.Split(q.dns, "\n") {
			f := strings.Split(l, "\t")
			if len(f) != 5 {
				continue
			}
			kinds[f[3]]++
			if strings.HasSuffix(f[0], "._domainkey.example.com.") {
				kinds["DKIM"]++
			}
			v := strings.TrimSuffix(recordValue(f[3], f[4]), ".")
			if !strings.Contains(page, "<code>"+strings.TrimSuffix(f[0], ".")+"</code>") || !strings.Contains(page, v) {
				t.Errorf("the console lacks the printed %s record of %s: %s", f[3], f[0], v)
			}
		}
		if kinds["DKIM"] == 0 || kinds["MX"] != 1 || kinds["CNAME"] != 3 {
			t.Errorf("printed records: %v\n%s", kinds, q.dns)
		}
		next := strings.ReplaceAll(q.next, " \\\n        ", " ")
		if !strings.Contains(next, "--data "+data+" apppass create admin@example.com --name Thunderbird\n") {
			t.Errorf("next steps:\n%s", next)
		}
	})
}

// demoCommand checks that every line the demo printed fits 80 columns and
// returns the app password command printed below its box, its continued
// lines joined.
func demoCommand(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("%d columns: %q", n, l)
		}
	}
	_, after, ok := strings.Cut(out, "A third-party app password from the command line:\n")
	if !ok {
		t.Fatalf("no app password command:\n%s", out)
	}
	var cmd strings.Builder
	for _, l := range strings.Split(after, "\n") {
		if !strings.HasPrefix(l, "  ") {
			break
		}
		cmd.WriteString(strings.TrimSuffix(strings.TrimSpace(l), `\`))
	}
	return cmd.String()
}

// runShell runs a command line as the reader would paste it, in dir.
func runShell(t *testing.T, dir, line string) string {
	t.Helper()
	c := exec.Command("sh", "-c", line)
	c.Dir = dir
	c.Env = cleanEnv(nil)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

// TestDemoFitsAndItsCommandRuns: the demo's output fits 80 columns, and the
// command it suggests works when pasted: the binary's path when it was
// started by path, go run when it is go run's temporary build.
func TestDemoFitsAndItsCommandRuns(t *testing.T) {
	t.Run("binary", func(t *testing.T) {
		in := NewSQLite(t)
		srv := in.Start(t, "demo")
		out := srv.Stdout()
		srv.Stop(t)
		cmd := demoCommand(t, out)
		if want := binary + " --data " + in.Data + " apppass create alice@example.com --name Thunderbird"; cmd != want {
			t.Fatalf("command %q, want %q", cmd, want)
		}
		wd, _ := os.Getwd()
		if out := runShell(t, wd, cmd); !strings.Contains(out, "alice@example.com") {
			t.Errorf("%s:\n%s", cmd, out)
		}
	})
	t.Run("go-run", func(t *testing.T) {
		// go run's build, kept in the build cache (GOCACHE/XX/HASH-d/postern),
		// run in the module's root.
		exe := filepath.Join(t.TempDir(), "go-build", "e0", "e0cbc160da94bda9d298ba3b5828a5238014fb58b2bf5fa3a468282e729c462b-d", "postern")
		b, err := os.ReadFile(binary)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		root, _ := filepath.Abs("../..")
		data := t.TempDir()
		args := []string{"demo", "--data", data, "--dns-resolver", "127.0.0.1:1"}
		for _, name := range listenerFlags {
			args = append(args, "--"+name+"-addr", "127.0.0.1:0")
		}
		c := exec.Command(exe, args...)
		c.Dir = root
		c.Env = cleanEnv(nil)
		var stdout syncBuffer
		c.Stdout, c.Stderr = &stdout, io.Discard
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		for deadline := time.Now().Add(90 * time.Second); !strings.Contains(stdout.String(), "\nready\n"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				c.Process.Kill()
				t.Fatalf("demo not ready:\n%s", stdout.String())
			}
		}
		c.Process.Signal(syscall.SIGTERM)
		if err := <-done; err != nil {
			t.Fatalf("demo after SIGTERM: %v", err)
		}
		cmd := demoCommand(t, stdout.String())
		if want := "go run ./cmd/postern --data " + data + " apppass create alice@example.com --name Thunderbird"; cmd != want {
			t.Fatalf("command %q, want %q", cmd, want)
		}
		if out := runShell(t, root, cmd); !strings.Contains(out, "alice@example.com") {
			t.Errorf("%s:\n%s", cmd, out)
		}
	})
}

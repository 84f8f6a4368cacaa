package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/postern/postern/internal/store/sqlstore"
)

// TestCLIBaseURLSaved: the base URL given to serve is saved in the database,
// and every later command, without --base-url, links its notices there
// instead of http://localhost:8080; a command's own --base-url wins for that
// command only; a bad one is refused before anything is saved. The real
// binary, both engines.
func TestCLIBaseURLSaved(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		if r := in.RunStdin(t, "a long enough password\n", "user", "add", "alice@example.com", "--password-stdin"); r.Code != 0 {
			t.Fatal(r)
		}
		// links returns the "delete" links of alice's newest notice.
		links := func() string {
			t.Helper()
			var body string
			withStore(t, in, func(ctx context.Context, db *sqlstore.DB) {
				m, err := db.MemberByEmail(ctx, "alice@example.com")
				if err != nil {
					t.Fatal(err)
				}
				msgs, err := db.Messages(ctx, m.ID)
				if err != nil || len(msgs) == 0 {
					t.Fatalf("messages: %v, %v", msgs, err)
				}
				body = msgs[0].Body
			})
			for _, line := range strings.Split(body, "\n") {
				if strings.Contains(line, "/security/app-passwords") {
					return strings.TrimSpace(line[strings.Index(line, "http"):])
				}
			}
			t.Fatalf("no link in:\n%s", body)
			return ""
		}
		in.MustRun(t, "apppass", "create", "alice@example.com", "--name", "Before")
		if got := links(); got != "http://localhost:8080/security/app-passwords" {
			t.Fatalf("before any serve: %s", got)
		}

		wantFail(t, in.Run(t, "serve", "--base-url", "ftp://mail.example.test", "--web-addr", "127.0.0.1:0"), 2, "--base-url")
		srv := in.StartServer(t, "--base-url", "https://mail.example.test/")
		srv.Stop(t)

		in.MustRun(t, "apppass", "create", "alice@example.com", "--name", "After")
		if got := links(); got != "https://mail.example.test/security/app-passwords" {
			t.Fatalf("after serve --base-url: %s", got)
		}
		in.MustRun(t, "apppass", "create", "alice@example.com", "--name", "Once", "--base-url", "https://other.example.test")
		if got := links(); got != "https://other.example.test/security/app-passwords" {
			t.Fatalf("with the command's own --base-url: %s", got)
		}
		in.MustRun(t, "apppass", "create", "alice@example.com", "--name", "Again")
		if got := links(); got != "https://mail.example.test/security/app-passwords" {
			t.Fatalf("a command's --base-url was saved: %s", got)
		}
		// The DNS records name the saved host too.
		if out := in.MustRun(t, "domain", "dns", "example.com"); !strings.Contains(out, "mail.example.test") {
			t.Errorf("domain dns without --base-url:\n%s", out)
		}
	})
}

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/store/sqlstore"
)

// TestWebSigninThroughTheGateway: on the binary, on both engines, wrong API
// sign-ins are login records of protocol "web" and count on the account's
// failure counter (the same counter that pauses third-party logins); the
// right password then signs in and resets it.
func TestWebSigninThroughTheGateway(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		alice := addMember(t, in, "alice@example.com")
		srv := in.StartServer(t)
		c := newWebClient(t, srv)
		for i := range 3 {
			if code, body := c.do("POST", "/api/v1/session", map[string]string{"email": alice.Email, "password": fmt.Sprintf("wrong %d", i)}); code != 401 {
				t.Fatalf("wrong sign-in %d: %d %s", i, code, body)
			}
		}
		var memberID int64
		waitFor(t, "web login records", 30*time.Second, func() string {
			var fails []string
			withStore(t, in, func(ctx context.Context, db *sqlstore.DB) {
				recs, err := db.LoginRecords(ctx, 0, true, 100)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					if r.Protocol == "web" && r.Username == alice.Email && r.Result == "fail" {
						fails = append(fails, r.Mechanism+" "+r.Reason+" "+r.IP)
						memberID = r.MemberID
					}
				}
			})
			if len(fails) != 3 {
				return fmt.Sprintf("%d web failures recorded: %v", len(fails), fails)
			}
			for _, f := range fails {
				if f != "API bad-password 127.0.0.1" {
					return "record " + f
				}
			}
			return ""
		})
		withStore(t, in, func(ctx context.Context, db *sqlstore.DB) {
			if st, err := db.AuthState(ctx, memberID); err != nil || st.Failures != 3 {
				t.Fatalf("account counter after 3 web failures: %+v %v", st, err)
			}
		})
		if code, body := c.do("POST", "/api/v1/session", map[string]string{"email": alice.Email, "password": alice.Main}); code != 200 {
			t.Fatalf("right password: %d %s", code, body)
		}
		withStore(t, in, func(ctx context.Context, db *sqlstore.DB) {
			if st, err := db.AuthState(ctx, memberID); err != nil || st.Failures != 0 {
				t.Fatalf("account counter after the right password: %+v %v", st, err)
			}
		})
		if logs := srv.Stdout() + srv.SettledStderr(); strings.Contains(logs, alice.Main) || strings.Contains(logs, "wrong 1") {
			t.Error("a password reached the server's log")
		}
	})
}

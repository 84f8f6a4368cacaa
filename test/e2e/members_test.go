package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// importJSON is the output of 'user import --json'.
type importJSON struct {
	DryRun  bool `json:"dry_run"`
	Created int  `json:"created"`
	Failed  int  `json:"failed"`
	Rows    []struct {
		Line            int    `json:"line"`
		Email           string `json:"email"`
		OK              bool   `json:"ok"`
		Error           string `json:"error"`
		Code            string `json:"code"`
		OneTimePassword string `json:"one_time_password"`
	} `json:"rows"`
}

// runImport runs user import --json, which exits 1 when a row is in error.
func runImport(t *testing.T, in *Instance, args ...string) (importJSON, time.Duration) {
	t.Helper()
	start := time.Now()
	r := in.Run(t, append([]string{"user", "import", "--json"}, args...)...)
	took := time.Since(start)
	var out importJSON
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("user import %v: %v\n%s", args, err, r)
	}
	if (r.Code != 0) != (out.Failed > 0) {
		t.Fatalf("user import %v: exit %d with %d failed rows\n%s", args, r.Code, out.Failed, r.Stderr)
	}
	return out, took
}

// TestUserImport10000: a file of 10,000 members (a few with their own
// password, the rest given a one-time one) and three bad rows. The dry run
// reports exactly the bad rows and creates nobody; the real run creates the
// 10,000 and skips them. The one-time password never logs in over IMAP,
// even in an optional domain whose member uses the main password there.
func TestUserImport10000(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "big.example")
		in.MustRun(t, "domain", "add", "old.example", "--created", "2020-01-01")
		var b strings.Builder
		b.WriteString("email,name,password\n")
		const n = 10_000
		for i := range n {
			pw := ""
			if i%1000 == 0 {
				pw = fmt.Sprintf("own password number %d", i)
			}
			fmt.Fprintf(&b, "m%05d@big.example,Member %05d,%s\n", i, i, pw)
		}
		b.WriteString("onetime@old.example,Old Timer,\n") // line n+2
		b.WriteString("not an address,,\n")               // n+3
		b.WriteString("m00007@big.example,Again,\n")      // n+4
		b.WriteString("x@nowhere.example,,\n")            // n+5
		file := filepath.Join(t.TempDir(), "members.csv")
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}

		dry, took := runImport(t, in, file, "--dry-run")
		t.Logf("%s: dry run of %d rows: %v", in.Engine, n+4, took)
		if !dry.DryRun || dry.Created != n+1 || dry.Failed != 3 {
			t.Fatalf("dry run: created %d failed %d", dry.Created, dry.Failed)
		}
		bad := map[int]string{}
		for _, r := range dry.Rows {
			if !r.OK {
				bad[r.Line] = r.Code
			}
			if r.OneTimePassword != "" {
				t.Fatal("a dry run generated a password")
			}
		}
		if len(bad) != 3 || bad[n+3] != "invalid" || bad[n+4] != "conflict" || bad[n+5] != "not_found" {
			t.Fatalf("dry run errors by line: %v", bad)
		}
		var none []map[string]any
		in.RunJSON(t, &none, "user", "list", "--domain", "big.example", "--limit", "1")
		if len(none) != 0 {
			t.Fatalf("the dry run created members: %v", none)
		}

		out, took := runImport(t, in, file)
		t.Logf("%s: imported %d members (%d rows in error) in %v", in.Engine, out.Created, out.Failed, took)
		if out.Created != n+1 || out.Failed != 3 {
			t.Fatalf("import: created %d failed %d", out.Created, out.Failed)
		}
		oneTime := ""
		for _, r := range out.Rows {
			if r.Email == "onetime@old.example" {
				oneTime = r.OneTimePassword
			}
			if r.OK && (r.OneTimePassword == "") != (r.Email == "m00000@big.example" || strings.HasSuffix(r.Email, "000@big.example")) {
				t.Fatalf("row %d %s: one-time password %q", r.Line, r.Email, r.OneTimePassword)
			}
		}
		var page []struct {
			Email, Name string
		}
		in.RunJSON(t, &page, "user", "list", "--query", "member 0999", "--limit", "20")
		if len(page) != 10 || page[0].Email != "m09990@big.example" {
			t.Fatalf("search by name: %+v", page)
		}
		in.RunJSON(t, &page, "user", "list", "--domain", "big.example", "--after", "m09997@big.example", "--limit", "20")
		if len(page) != 2 || page[1].Email != "m09999@big.example" {
			t.Fatalf("last page: %+v", page)
		}
		// A second import of the same file creates nobody.
		if again, _ := runImport(t, in, file, "--dry-run"); again.Created != 0 || again.Failed != n+4 {
			t.Fatalf("second dry run: created %d failed %d", again.Created, again.Failed)
		}

		srv := in.StartServer(t)
		c := dial(t, srv.Addr("imap"))
		c.line()
		if r := c.cmd("a1 LOGIN "+imapQuote("onetime@old.example")+" "+imapQuote(oneTime), "a1 "); !strings.Contains(r, "a1 NO") {
			t.Fatalf("IMAP login with a one-time password: %q", r)
		}
		c2 := dial(t, srv.Addr("imap"))
		c2.line()
		if r := c2.cmd("a1 LOGIN "+imapQuote("m00000@big.example")+" "+imapQuote("own password number 0"), "a1 "); !strings.Contains(r, "a1 NO") {
			t.Fatalf("IMAP login with the main password in an enforced domain: %q", r)
		}
	})
}

var existsRE = regexp.MustCompile(`\* (\d+) EXISTS`)

// inboxCount logs in over IMAP and returns how many messages INBOX holds;
// ok is false when the login fails.
func inboxCount(t *testing.T, addr, user, password string) (n int, ok bool) {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	c.line()
	if r := c.cmd("a1 LOGIN "+imapQuote(user)+" "+imapQuote(password), "a1 "); !strings.Contains(r, "a1 OK") {
		return 0, false
	}
	m := existsRE.FindStringSubmatch(c.cmd("a2 SELECT INBOX", "a2 OK"))
	if m == nil {
		t.Fatal("SELECT INBOX: no EXISTS")
	}
	n, _ = strconv.Atoi(m[1])
	return n, true
}

// TestUserDeleteAndRename: a rename keeps the member's mail and app
// passwords under the new address, closes the live IMAP session, and the
// old address no longer logs in; a delete closes the live IMAP session and
// takes the mail, the calendar and the app passwords (a member created
// again at the address starts empty).
func TestUserDeleteAndRename(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		addMember(t, in, "alice@example.com")
		ap := createAppPass(t, in, "alice@example.com", "Phone") // the notice is the first mail
		srv := in.StartServer(t)
		imap := srv.Addr("imap")
		cal := srv.URL("/dav/calendars/alice@example.com/default/")
		if code, _, body := davDo(t, "PUT", cal+"e.ics", "alice@example.com", ap.Password, davEvent("e1", "Meeting"), "Content-Type", "text/calendar"); code != 201 {
			t.Fatalf("PUT event: %d %s", code, body)
		}
		before, ok := inboxCount(t, imap, "alice@example.com", ap.Password)
		if !ok || before == 0 {
			t.Fatalf("INBOX before: %d %v", before, ok)
		}

		// Rename: the IDLE session closes; the mail follows.
		s := openIMAPIdle(t, imap, "alice@example.com", ap.Password)
		in.MustRun(t, "user", "rename", "alice@example.com", "alicia@example.com")
		select {
		case ev := <-s.closed:
			t.Logf("%s: IMAP session closed after the rename: %q", in.Engine, ev.tail)
		case <-time.After(revocationDeadline):
			t.Fatal("the IMAP session stayed open after the rename")
		}
		if _, ok := inboxCount(t, imap, "alice@example.com", ap.Password); ok {
			t.Fatal("the old address still logs in")
		}
		after, ok := inboxCount(t, imap, "alicia@example.com", ap.Password)
		if !ok || after != before+1 { // + the rename's notice
			t.Fatalf("INBOX after the rename: %d (had %d), login %v", after, before, ok)
		}
		cal = srv.URL("/dav/calendars/alicia@example.com/default/")
		if code, _, _ := davDo(t, "GET", cal+"e.ics", "alicia@example.com", ap.Password, ""); code != 200 {
			t.Fatalf("the event did not follow: %d", code)
		}

		// Delete: the IDLE session closes; everything goes.
		s = openIMAPIdle(t, imap, "alicia@example.com", ap.Password)
		if r := in.Run(t, "user", "delete", "alicia@example.com"); r.Code != 2 {
			t.Fatalf("delete without --yes: %s", r)
		}
		in.MustRun(t, "user", "delete", "alicia@example.com", "--yes")
		select {
		case <-s.closed:
		case <-time.After(revocationDeadline):
			t.Fatal("the IMAP session stayed open after the delete")
		}
		if _, ok := inboxCount(t, imap, "alicia@example.com", ap.Password); ok {
			t.Fatal("a deleted member logs in")
		}
		if r := in.Run(t, "apppass", "list", "alicia@example.com"); r.Code == 0 {
			t.Fatalf("apppass list of a deleted member: %s", r)
		}
		addMember(t, in, "alicia@example.com")
		ap2 := createAppPass(t, in, "alicia@example.com", "Phone")
		if n, ok := inboxCount(t, imap, "alicia@example.com", ap2.Password); !ok || n != 1 {
			t.Fatalf("the new member's INBOX: %d %v (only the new notice expected)", n, ok)
		}
		if code, _, _ := davDo(t, "GET", cal+"e.ics", "alicia@example.com", ap2.Password, ""); code != 404 {
			t.Fatalf("the old event is still there: %d", code)
		}
		if code, _, _ := davDo(t, "GET", cal+"e.ics", "alicia@example.com", ap.Password, ""); code != 401 {
			t.Fatalf("the old app password still works on DAV: %d", code)
		}
	})
}
